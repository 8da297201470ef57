/* The fused implicit-GEMM convolution (kernels/conv_igemm.cu) on a GPU against the reference the
 * CPU emulation of its loop nest also meets (naive_igemm_conv; tests/test_igemm.c): exact, row and
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
  pt_igemm_conv g = {n, c, h, wd, k, pt_km_out_size(h, ks, st, pad), pt_km_out_size(wd, ks, st, pad), ks, ks, st, st,
                     pad, pad, perf_dir, perf_stride, perf_offset, 0, 0, 0, 0};
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
