/* The implicit-GEMM convolutions on a GPU against the reference the CPU emulations of their loop
 * nests also meet (naive_igemm_conv; tests/test_igemm.c, test_igemm_halo.c): the first fused kernel
 * (kernels/conv_igemm.cu, NHWC binary16 in and out), the halo-tile kernel (conv_igemm_halo.cu) and
 * the fp32 CUDA-core one (conv_simt.cu), both NCHW fp32 in and out as the backend calls them. Exact, row and
 * column perforation at strides 2-4, sampling at every skip, odd sizes, channel counts that are not
 * multiples of 8 (the element-wise loads) and that are (the 16-byte cp.async ones), more pixels and
 * channels than a block, and vgg16's 64 -> 64 layer at 32x32. binary16 in and out, within 2e-3 of
 * the reference (normalised), the output poisoned with NaN before and a guard region after it
 * checked. Skips, with the reason, without a GPU. */
#include <criterion/criterion.h>
#include <cuda_runtime_api.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "backend/cuda/cuda_kernels.h"
#include "core/rng.h"
#include "naive.h"
#include "predtuner/tensor.h"

#define GUARD 256 /* halves */

static void need_gpu(void) {
  const char *why = "";
  if (pt__cuda_device_count(&why) == 0) cr_skip_test("no GPU: %s", why);
}

static void *up(const void *h, size_t bytes) {
  void *d = NULL;
  cr_assert_eq(cudaMalloc(&d, bytes ? bytes : 16), cudaSuccess);
  if (bytes) cr_assert_eq(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}

static void run_case(int n, int c, int h, int wd, int k, int ks, int st, int pad, int perf_dir, int perf_stride,
                     int perf_offset, int samp_every, int samp_offset) {
  pt_igemm_conv g = naive_igemm_shape(n, c, h, wd, k, ks, st, pad, perf_dir, perf_stride, perf_offset);
  int *table = malloc(PT_IG_KMAX * sizeof *table);
  const int kdim = pt_igemm_k_table(c, ks, ks, samp_every, samp_offset, table);
  cr_assert_gt(kdim, 0);
  pt_igemm_sizes(&g, kdim);
  const int kpad = (kdim + 7) / 8 * 8;
  const float scale = samp_every ? pt_km_samp_scale(samp_every, 1.0) : 1.0f;
  const size_t nx = (size_t)n * h * wd * c, nw = (size_t)k * c * ks * ks, ny = (size_t)n * g.oh * g.ow * k;
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc((size_t)k * sizeof *b);
  float *ref = malloc(ny * sizeof *ref), *got = malloc(ny * sizeof *got);
  uint16_t *xh = malloc(nx * sizeof *xh), *yh = malloc((ny + GUARD) * sizeof *yh);
  pt_rng r;
  pt_rng_seed(&r, (uint64_t)(n * 7 + c * 131 + h * 17 + k * 3 + perf_dir * 1009 + samp_every * 31));
  fill_uniform(&r, x, (int64_t)nx, -1, 1);
  fill_uniform(&r, w, (int64_t)nw, -0.5f, 0.5f);
  fill_uniform(&r, b, k, -0.2f, 0.2f);
  for (size_t i = 0; i < nx; i++) xh[i] = pt_f32_to_f16(x[i]), x[i] = pt_f16_to_f32(xh[i]);
  for (size_t i = 0; i < ny + GUARD; i++) yh[i] = i < ny ? 0x7e00 /* NaN */ : 0x3c00 /* 1.0: the guard */;
  void *dx = up(xh, nx * 2), *dwf = up(w, nw * 4), *db = up(b, (size_t)k * 4), *dt = up(table, (size_t)kdim * 4);
  void *dy = up(yh, (ny + GUARD) * 2), *dwk = NULL;
  cr_assert_eq(cudaMalloc(&dwk, (size_t)k * kpad * 2), cudaSuccess);
  cr_assert_eq(pt__cu_igemm_weights(0, &g, dt, dwf, scale, kpad, dwk), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt__cu_conv_igemm(0, &g, dt, dx, dwk, kpad, db, dy), PT_OK, "%s", pt_last_error());
  cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess, "%s", cudaGetErrorString(cudaGetLastError()));
  cr_assert_eq(cudaMemcpy(yh, dy, (ny + GUARD) * 2, cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < GUARD; i++) cr_assert_eq(yh[ny + i], 0x3c00, "a write past the output at %zu", i);
  for (size_t i = 0; i < ny; i++) got[i] = pt_f16_to_f32(yh[i]);
  naive_igemm_conv(&g, samp_every, samp_offset, scale, x, w, b, ref);
  const double err = norm_err(got, ref, (int64_t)ny); /* NaN left anywhere: +inf */
  cr_assert_lt(err, 2e-3, "n%d c%d %dx%d k%d %dx%d s%d p%d perf %d/%d/%d samp %d/%d: normalised error %g", n, c, h, wd,
               k, ks, ks, st, pad, perf_dir, perf_stride, perf_offset, samp_every, samp_offset, err);
  cudaFree(dx), cudaFree(dwf), cudaFree(db), cudaFree(dt), cudaFree(dy), cudaFree(dwk);
  free(x), free(w), free(b), free(ref), free(got), free(xh), free(yh), free(table);
}

Test(igemm_gpu, exact) {
  need_gpu();
  run_case(2, 3, 9, 7, 5, 3, 1, 1, 0, 0, 0, 0, 0);
  run_case(3, 20, 12, 11, 70, 3, 1, 1, 0, 0, 0, 0, 0);
  run_case(2, 64, 16, 16, 64, 3, 1, 1, 0, 0, 0, 0, 0);  /* 16-byte chunks */
  run_case(2, 32, 11, 13, 48, 3, 2, 1, 0, 0, 0, 0, 0);  /* stride 2 */
  run_case(2, 8, 3, 9, 8, 3, 1, 0, 0, 0, 0, 0, 0);      /* a 1-row output */
  run_case(1, 16, 7, 7, 9, 5, 1, 2, 0, 0, 0, 0, 0);     /* 5x5 */
  run_case(4, 64, 32, 32, 64, 3, 1, 1, 0, 0, 0, 0, 0);  /* vgg16's second layer */
}

Test(igemm_gpu, perforation) {
  need_gpu();
  for (int dir = 1; dir <= 2; dir++)
    for (int s = 2; s <= 4; s++)
      for (int o = 0; o < s; o++) {
        run_case(2, 16, 10, 9, 20, 3, 1, 1, dir, s, o, 0, 0);
        run_case(2, 64, 16, 16, 64, 3, 1, 1, dir, s, o, 0, 0);
      }
}

Test(igemm_gpu, sampling) {
  need_gpu();
  for (int every = 2; every <= 4; every++)
    for (int o = 0; o < every; o++) {
      run_case(2, 16, 9, 8, 24, 3, 1, 1, 0, 0, 0, every, o);
      run_case(2, 64, 16, 16, 64, 3, 1, 1, 0, 0, 0, every, o);
      run_case(1, 6, 8, 8, 8, 5, 1, 2, 0, 0, 0, every, o);
    }
}

/* The halo-tile (fp16) or the CUDA-core (fp32) kernel: x, y NCHW fp32, y poisoned with NaN and a
 * guard after it. */
static void run_nchw_case(int fp16, int n, int c, int h, int wd, int k, int ks, int st, int pad, int perf_dir,
                          int perf_stride, int perf_offset, int samp_every, int samp_offset) {
  pt_igemm_conv g = naive_igemm_shape(n, c, h, wd, k, ks, st, pad, perf_dir, perf_stride, perf_offset);
  int *table = malloc(PT_IG_KMAX * sizeof *table);
  const int kdim = pt_igemm_k_table(c, ks, ks, samp_every, samp_offset, table);
  pt_igemm_sizes(&g, kdim);
  pt_ig2_plan p;
  if (fp16) cr_assert_eq(pt_ig2_make(&p, &g, 1, samp_every, samp_offset), 0);
  const float scale = samp_every ? pt_km_samp_scale(samp_every, 1.0) : 1.0f;
  const size_t nx = (size_t)n * h * wd * c, nw = (size_t)k * c * ks * ks, ny = (size_t)n * g.oh * g.ow * k;
  float *x = malloc(nx * sizeof *x), *xc = malloc(nx * sizeof *xc), *w = malloc(nw * sizeof *w);
  float *b = malloc((size_t)k * sizeof *b), *ref = malloc(ny * sizeof *ref), *got = malloc((ny + GUARD) * sizeof *got);
  pt_rng r;
  pt_rng_seed(&r, (uint64_t)(n * 7 + c * 131 + h * 17 + k * 3 + perf_dir * 1009 + samp_every * 31 + fp16));
  fill_uniform(&r, x, (int64_t)nx, -1, 1);
  fill_uniform(&r, w, (int64_t)nw, -0.5f, 0.5f);
  fill_uniform(&r, b, k, -0.2f, 0.2f);
  if (fp16)
    for (size_t i = 0; i < nx; i++) x[i] = pt_round_f16(x[i]);
  for (int img = 0; img < n; img++) /* NHWC (the reference's) -> NCHW (the kernels') */
    for (int ch = 0; ch < c; ch++)
      for (int pix = 0; pix < h * wd; pix++) xc[((size_t)img * c + ch) * h * wd + pix] = x[((size_t)img * h * wd + pix) * c + ch];
  for (size_t i = 0; i < ny + GUARD; i++) got[i] = i < ny ? NAN : 7.0f;
  void *dx = up(xc, nx * 4), *dw = up(w, nw * 4), *db = up(b, (size_t)k * 4), *dy = up(got, (ny + GUARD) * 4);
  void *s1 = NULL, *s2 = NULL, *dt = NULL;
  if (fp16) {
    cr_assert_eq(cudaMalloc(&s1, (size_t)pt_ig2_xs_bytes(&p)), cudaSuccess);
    cr_assert_eq(cudaMalloc(&s2, (size_t)pt_ig2_wk_bytes(&p)), cudaSuccess);
    cr_assert_eq(pt__cu_conv_ig2(0, &p, dx, dw, scale, db, s1, s2, dy), PT_OK, "%s", pt_last_error());
  } else {
    dt = up(table, (size_t)kdim * 4);
    cr_assert_eq(cudaMalloc(&s1, (size_t)kdim * k * 4), cudaSuccess);
    cr_assert_eq(pt__cu_conv_simt(0, &g, dt, dx, dw, scale, db, s1, dy), PT_OK, "%s", pt_last_error());
  }
  cr_assert_eq(cudaDeviceSynchronize(), cudaSuccess, "%s", cudaGetErrorString(cudaGetLastError()));
  cr_assert_eq(cudaMemcpy(got, dy, (ny + GUARD) * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < GUARD; i++) cr_assert_eq(got[ny + i], 7.0f, "a write past the output at %zu", i);
  naive_igemm_conv(&g, samp_every, samp_offset, scale, x, w, b, ref);
  double num = 0, den = 0;
  for (int img = 0; img < n; img++)
    for (int o = 0; o < k; o++)
      for (int pix = 0; pix < g.oh * g.ow; pix++) {
        const double gv = got[((size_t)img * k + o) * g.oh * g.ow + pix], rv = ref[((size_t)img * g.oh * g.ow + pix) * k + o];
        num += (gv - rv) * (gv - rv), den += rv * rv; /* NaN left anywhere: NaN, which fails below */
      }
  const double err = sqrt(num / den);
  cr_assert(err < (fp16 ? 2e-3 : 1e-5), "%s n%d c%d %dx%d k%d %dx%d s%d p%d perf %d/%d/%d samp %d/%d: normalised error %g",
            fp16 ? "halo fp16" : "simt fp32", n, c, h, wd, k, ks, ks, st, pad, perf_dir, perf_stride, perf_offset,
            samp_every, samp_offset, err);
  cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy), cudaFree(s1), cudaFree(s2), cudaFree(dt);
  free(x), free(xc), free(w), free(b), free(ref), free(got), free(table);
}

Test(igemm_gpu, halo_and_simt_every_knob) {
  need_gpu();
  for (int fp16 = 0; fp16 <= 1; fp16++) {
    run_nchw_case(fp16, 2, 3, 9, 7, 5, 3, 1, 1, 0, 0, 0, 0, 0);
    run_nchw_case(fp16, 3, 20, 12, 11, 70, 3, 1, 1, 0, 0, 0, 0, 0);
    run_nchw_case(fp16, 2, 32, 11, 13, 48, 3, 2, 1, 0, 0, 0, 0, 0);
    run_nchw_case(fp16, 2, 8, 3, 9, 8, 3, 1, 0, 0, 0, 0, 0, 0);
    run_nchw_case(fp16, 1, 16, 7, 7, 9, 5, 1, 2, 0, 0, 0, 0, 0);
    run_nchw_case(fp16, 1, 130, 9, 10, 20, 3, 1, 1, 0, 0, 0, 0, 0); /* streamed weights */
    run_nchw_case(fp16, 4, 64, 32, 32, 64, 3, 1, 1, 0, 0, 0, 0, 0); /* vgg16's second layer */
    for (int dir = 1; dir <= 2; dir++)
      for (int s = 2; s <= 4; s++)
        for (int o = 0; o < s; o++) {
          run_nchw_case(fp16, 2, 16, 10, 9, 20, 3, 1, 1, dir, s, o, 0, 0);
          run_nchw_case(fp16, 2, 64, 32, 32, 64, 3, 1, 1, dir, s, o, 0, 0);
        }
    for (int every = 2; every <= 4; every++)
      for (int o = 0; o < every; o++) {
        run_nchw_case(fp16, 2, 16, 9, 8, 24, 3, 1, 1, 0, 0, 0, every, o);
        run_nchw_case(fp16, 2, 64, 16, 16, 64, 3, 1, 1, 0, 0, 0, every, o);
        run_nchw_case(fp16, 1, 6, 8, 8, 8, 5, 1, 2, 0, 0, 0, every, o);
      }
  }
}
