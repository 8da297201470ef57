/* The fp32 implicit-GEMM convolution on CUDA cores (the GPU kernel issue's fp32 path): exact,
 * perforated (fewer GEMM rows) and sampled (a shorter K table) convolutions straight from the
 * backend's NCHW fp32 tensors, no im2col matrix, fp32 FMA only (within 1e-5 of the CPU). Maps:
 * kernels/igemm_simt.h; tests/test_igemm.c runs this loop nest on the CPU. A block is 128 pixels x
 * 64 channels; the K loop double-buffers 16-entry tiles in shared memory, the next tile's global loads
 * in registers while the current one is multiplied. Perforation's skipped outputs are a second kernel
 * over the biased neighbours (the CPU's order up to rounding). */
#include "kernels/cuda_common.cuh"
#include "kernels/igemm_simt.h"

/* w (k, c, kh, kw) -> wt (kdim, k): K-table order, k-major, times scale. */
__global__ void pt_k_simt_weights(pt_igemm_conv g, const int *table, const float *w, float scale, float *wt) {
  PT__GRID_LOOP(i, (int64_t)g.kdim * g.k) {
    const int n = (int)(i % g.k), kk = (int)(i / g.k);
    wt[i] = w[pt_igemm_b_offset(&g, kk, n, table[kk])] * scale;
  }
}

struct pt__simt_regs {
  float a[PT_SIMT_BM * PT_SIMT_BK / PT_SIMT_THREADS], b[PT_SIMT_BN * PT_SIMT_BK / PT_SIMT_THREADS];
};

/* The next tile's elements into registers; (in_m, img, iy0, ix0): this thread's A pixel. */
__device__ __forceinline__ void pt__simt_fetch(const pt_igemm_conv &g, const int *table, const float *x,
                                               const float *wt, int in_m, int img, int iy0, int ix0, int n0, int k0,
                                               pt__simt_regs &r) {
#pragma unroll
  for (int i = 0; i < PT_SIMT_BM * PT_SIMT_BK / PT_SIMT_THREADS; i++) {
    int kk, ml;
    pt_simt_a_elem(threadIdx.x, i, &kk, &ml);
    const long long o = in_m && k0 + kk < g.kdim ? pt_simt_a_at(&g, img, iy0, ix0, table[k0 + kk]) : -1;
    r.a[i] = o < 0 ? 0.0f : x[o];
  }
#pragma unroll
  for (int i = 0; i < PT_SIMT_BN * PT_SIMT_BK / PT_SIMT_THREADS; i++) {
    int kk, nl;
    pt_simt_b_elem(threadIdx.x, i, &kk, &nl);
    r.b[i] = k0 + kk < g.kdim && n0 + nl < g.k ? wt[(long long)(k0 + kk) * g.k + n0 + nl] : 0.0f;
  }
}

__device__ __forceinline__ void pt__simt_put(const pt__simt_regs &r, float (*as)[PT_SIMT_LDA], float (*bs)[PT_SIMT_LDB]) {
#pragma unroll
  for (int i = 0; i < PT_SIMT_BM * PT_SIMT_BK / PT_SIMT_THREADS; i++) {
    int kk, ml;
    pt_simt_a_elem(threadIdx.x, i, &kk, &ml);
    as[kk][ml] = r.a[i];
  }
#pragma unroll
  for (int i = 0; i < PT_SIMT_BN * PT_SIMT_BK / PT_SIMT_THREADS; i++) {
    int kk, nl;
    pt_simt_b_elem(threadIdx.x, i, &kk, &nl);
    bs[kk][nl] = r.b[i];
  }
}

/* grid (M blocks, N blocks), PT_SIMT_THREADS threads; y NCHW, kept outputs only (plus bias). */
__global__ void __launch_bounds__(PT_SIMT_THREADS, 2) pt_k_conv_simt(pt_igemm_conv g, const int *table, const float *x,
                                                                  const float *wt, const float *bias, float *y) {
  __shared__ __align__(16) float as[2][PT_SIMT_BK][PT_SIMT_LDA];
  __shared__ __align__(16) float bs[2][PT_SIMT_BK][PT_SIMT_LDB];
  const int m0 = blockIdx.x * PT_SIMT_BM, n0 = blockIdx.y * PT_SIMT_BN;
  const int tm = pt_simt_m0(threadIdx.x), tn = pt_simt_n0(threadIdx.x);
  float acc[PT_SIMT_TM][PT_SIMT_TN] = {{0.0f}};
  int kk0, ml, img = 0, iy0 = 0, ix0 = 0; /* this thread's A pixel (the same for all its loads) */
  pt_simt_a_elem(threadIdx.x, 0, &kk0, &ml);
  const int in_m = pt_simt_a_origin(&g, m0 + ml, &img, &iy0, &ix0);
  pt__simt_regs r;
  pt__simt_fetch(g, table, x, wt, in_m, img, iy0, ix0, n0, 0, r);
  pt__simt_put(r, as[0], bs[0]);
  __syncthreads();
  const int nk = (g.kdim + PT_SIMT_BK - 1) / PT_SIMT_BK;
  for (int kt = 0; kt < nk; kt++) {
    const int cur = kt & 1, more = kt + 1 < nk;
    if (more) pt__simt_fetch(g, table, x, wt, in_m, img, iy0, ix0, n0, (kt + 1) * PT_SIMT_BK, r);
#pragma unroll
    for (int kk = 0; kk < PT_SIMT_BK; kk++) {
      const float4 a0 = *reinterpret_cast<const float4 *>(&as[cur][kk][tm]);
      const float4 a1 = *reinterpret_cast<const float4 *>(&as[cur][kk][tm + 4]);
      const float4 b = *reinterpret_cast<const float4 *>(&bs[cur][kk][tn]);
      const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w}, bv[4] = {b.x, b.y, b.z, b.w};
#pragma unroll
      for (int i = 0; i < PT_SIMT_TM; i++)
#pragma unroll
        for (int j = 0; j < PT_SIMT_TN; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
    }
    if (more) pt__simt_put(r, as[cur ^ 1], bs[cur ^ 1]); /* last read in the previous step */
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < PT_SIMT_TN; j++) {
    const int n = n0 + tn + j;
    if (n >= g.k) continue;
    const float bn = bias ? bias[n] : 0.0f;
#pragma unroll
    for (int i = 0; i < PT_SIMT_TM; i++) {
      const int m = m0 + tm + i;
      if (m < g.m) y[pt_simt_y_offset(&g, m, n)] = acc[i][j] + bn;
    }
  }
}

/* The skipped rows or columns of y (NCHW fp32, biased), each from its biased neighbours; an axis of
 * one (nothing computed) gets the bias alone. */
__global__ void pt_k_simt_fill(pt_igemm_conv g, const float *bias, float *y) {
  const int rows = g.perf_dir == 1, len = rows ? g.oh : g.ow, other = rows ? g.ow : g.oh;
  const int skipped = len - (rows ? g.kr : g.kc);
  PT__GRID_LOOP(i, (int64_t)g.n * g.k * skipped * other) {
    const int j = (int)(i % other), si = (int)(i / other % skipped), n = (int)(i / ((int64_t)other * skipped) % g.k);
    const int img = (int)(i / ((int64_t)other * skipped * g.k)), at = g.perf_offset + si * g.perf_stride;
    int a, b;
    pt_km_perf_fill_src(at, len, &a, &b);
    float *plane = y + ((long long)img * g.k + n) * g.oh * g.ow;
#define PT__AT(p) plane[rows ? (long long)(p) * g.ow + j : (long long)j * g.ow + (p)]
    PT__AT(at) = a < 0 ? (bias ? bias[n] : 0.0f) : a == b ? PT__AT(a) : (PT__AT(a) + PT__AT(b)) / 2.0f;
#undef PT__AT
  }
}

extern "C" pt_status pt__cu_conv_simt(cudaStream_t stream, const pt_igemm_conv *g, const int *table, const float *x,
                                      const float *w, float scale, const float *bias, float *wt, float *y) {
  if (g->kdim <= 0 || g->m <= 0) return pt__error(PT_EUNSUPPORTED, "conv_simt: nothing to compute");
  pt_k_simt_weights<<<pt__grid((int64_t)g->kdim * g->k, 256), 256, 0, stream>>>(*g, table, w, scale, wt);
  PT__TRY(pt__launched("simt_weights"));
  const dim3 grid((unsigned)((g->m + PT_SIMT_BM - 1) / PT_SIMT_BM), (unsigned)((g->k + PT_SIMT_BN - 1) / PT_SIMT_BN));
  pt_k_conv_simt<<<grid, PT_SIMT_THREADS, 0, stream>>>(*g, table, x, wt, bias, y);
  PT__TRY(pt__launched("conv_simt"));
  if (!g->perf_dir) return PT_OK;
  const int64_t n = (int64_t)g->n * g->k * (g->perf_dir == 1 ? (g->oh - g->kr) * g->ow : (g->ow - g->kc) * g->oh);
  if (n > 0) pt_k_simt_fill<<<pt__grid(n, 256), 256, 0, stream>>>(*g, bias, y);
  return pt__launched("simt_fill");
}
