/* The fused implicit-GEMM convolution (the GPU kernel issue): binary16 NHWC in and out, fp32
 * accumulation on tensor cores (mma.sync m16n8k16), no im2col matrix in global memory. Perforation
 * is fewer GEMM rows (only the kept output rows or columns are rows of M), sampling a shorter K (the
 * K table lists the kept (tap, channel) pairs), the exact convolution the same kernel with every
 * pair. Index math and fragment layouts: kernels/igemm_layout.h, whose loop nest tests/test_igemm.c
 * runs on the CPU with an emulated MMA.
 *
 * Version 1 (not yet timed on a GPU; not chosen by the backend until it is): a two-stage cp.async
 * pipeline of 16-byte chunks — a chunk of A is 8 consecutive K entries of one output pixel, loaded
 * at once when they are 8 channels of one tap, in bounds and 16-byte aligned (an exact convolution
 * with C % 8 == 0), element by element otherwise; B comes from weights gathered once into K-table
 * order (pt_k_igemm_weights), so its chunks are always whole. The fill of skipped rows or columns is
 * a second kernel. Kernel / launcher tiers as the other kernels/ files. */
#include "kernels/cuda_common.cuh"
#include "kernels/igemm_layout.h"
#include "kernels/mma_ptx.cuh"

#define PT_IG_LDS (PT_IG_BK + 8) /* halves per shared row: 80 bytes, rows 16-byte aligned for ldmatrix */

struct pt_ig_smem {
  __half a[2][PT_IG_BM * PT_IG_LDS];
  __half b[2][PT_IG_BN * PT_IG_LDS];
};

/* One stage's tiles: A (BM pixels x BK entries) and B (BN channels x BK entries) into buffer buf. */
__device__ __forceinline__ void pt__ig_load(pt_ig_smem *s, int buf, const pt_igemm_conv &g, const int *table,
                                            const __half *x, const __half *wk, int kpad, int m0, int n0, int k0) {
  const __half zero = __float2half_rn(0.0f);
  for (int q = threadIdx.x; q < PT_IG_BM * PT_IG_BK / 8; q += PT_IG_THREADS) { /* A: 4 chunks a thread */
    const int r = q / (PT_IG_BK / 8), kk = k0 + (q % (PT_IG_BK / 8)) * 8, m = m0 + r;
    __half *dst = &s->a[buf][r * PT_IG_LDS + (q % (PT_IG_BK / 8)) * 8];
    const int e0 = kk < g.kdim ? table[kk] : 0;
    const long long o0 = pt_igemm_a_offset(&g, m, kk, e0);
    const int whole = kk + 7 < g.kdim && o0 >= 0 && (o0 & 7) == 0 && table[kk + 7] == e0 + 7 && e0 % g.c + 7 < g.c;
    if (whole) {
      pt__cp_async16(dst, x + o0);
    } else if (m >= g.m || kk >= g.kdim) { /* past the GEMM: zeros, one 16-byte store */
      *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
    } else {
      for (int j = 0; j < 8; j++) {
        const long long o = kk + j < g.kdim ? pt_igemm_a_offset(&g, m, kk + j, table[kk + j]) : -1;
        dst[j] = o < 0 ? zero : x[o];
      }
    }
  }
  for (int q = threadIdx.x; q < PT_IG_BN * PT_IG_BK / 8; q += PT_IG_THREADS) { /* B: 2 chunks a thread */
    const int r = q / (PT_IG_BK / 8), kk = k0 + (q % (PT_IG_BK / 8)) * 8, n = n0 + r;
    __half *dst = &s->b[buf][r * PT_IG_LDS + (q % (PT_IG_BK / 8)) * 8];
    if (n < g.k && kk < kpad) pt__cp_async16(dst, wk + (long long)n * kpad + kk);
    else *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
  }
}

/* grid (blocks over M, blocks over N), PT_IG_THREADS threads; y: NHWC, g.k channels per pixel. */
__global__ void __launch_bounds__(PT_IG_THREADS) pt_k_conv_igemm(pt_igemm_conv g, const int *table, const __half *x,
                                                                 const __half *wk, int kpad, const float *bias,
                                                                 __half *y) {
  extern __shared__ __align__(16) unsigned char pt__ig_raw[];
  pt_ig_smem *s = reinterpret_cast<pt_ig_smem *>(pt__ig_raw);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int m0 = blockIdx.x * PT_IG_BM, n0 = blockIdx.y * PT_IG_BN;
  const int wm = pt_igemm_warp_m0(warp), wn = pt_igemm_warp_n0(warp);
  float acc[PT_IG_MI][PT_IG_NI][4];
  for (int i = 0; i < PT_IG_MI; i++)
    for (int j = 0; j < PT_IG_NI; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
  const int nk = (g.kdim + PT_IG_BK - 1) / PT_IG_BK;
  pt__ig_load(s, 0, g, table, x, wk, kpad, m0, n0, 0);
  pt__cp_async_commit();
  for (int kt = 0; kt < nk; kt++) {
    if (kt + 1 < nk) pt__ig_load(s, (kt + 1) & 1, g, table, x, wk, kpad, m0, n0, (kt + 1) * PT_IG_BK);
    pt__cp_async_commit();
    pt__cp_async_wait<1>(); /* this stage's group is in; the next one may still fly */
    __syncthreads();
    const __half *sa = s->a[kt & 1], *sb = s->b[kt & 1];
#pragma unroll
    for (int ks = 0; ks < PT_IG_BK; ks += 16) {
      unsigned a[PT_IG_MI][4], b[PT_IG_NI][2];
#pragma unroll
      for (int mi = 0; mi < PT_IG_MI; mi++)
        pt__ldmatrix_x4(a[mi], sa + (wm + 16 * mi + pt_ldm_a_row(lane)) * PT_IG_LDS + ks + pt_ldm_a_col(lane));
#pragma unroll
      for (int ni = 0; ni < PT_IG_NI; ni += 2) {
        unsigned r[4];
        pt__ldmatrix_x4(r, sb + (wn + 8 * ni + pt_ldm_b_n(lane)) * PT_IG_LDS + ks + pt_ldm_b_k(lane));
        b[ni][0] = r[0], b[ni][1] = r[1], b[ni + 1][0] = r[2], b[ni + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < PT_IG_MI; mi++)
#pragma unroll
        for (int ni = 0; ni < PT_IG_NI; ni++) pt__mma16816(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
    }
    __syncthreads(); /* the buffer computed here is loaded again two stages on */
  }
#pragma unroll
  for (int mi = 0; mi < PT_IG_MI; mi++)
#pragma unroll
    for (int ni = 0; ni < PT_IG_NI; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const int m = m0 + wm + 16 * mi + pt_mma_c_row(lane, i), n = n0 + wn + 8 * ni + pt_mma_c_col(lane, i);
        if (m >= g.m || n >= g.k) continue;
        int img, oy, ox;
        pt_igemm_pixel(&g, m, &img, &oy, &ox);
        y[(((long long)img * g.oh + oy) * g.ow + ox) * g.k + n] = __float2half_rn(acc[mi][ni][i] + (bias ? bias[n] : 0.0f));
      }
}

/* Weights (k, c, kh, kw) fp32 -> (k, kpad) binary16 in K-table order, times scale; zeros past kdim. */
__global__ void pt_k_igemm_weights(pt_igemm_conv g, const int *table, const float *w, float scale, int kpad,
                                   __half *wk) {
  PT__GRID_LOOP(i, (int64_t)g.k * kpad) {
    const int kk = (int)(i % kpad), n = (int)(i / kpad);
    const long long o = kk < g.kdim ? pt_igemm_b_offset(&g, kk, n, table[kk]) : -1;
    wk[i] = __float2half_rn(o < 0 ? 0.0f : w[o] * scale);
  }
}

/* The skipped rows or columns of y (NHWC), each from its neighbours (pt_km_perf_fill_src). */
__global__ void pt_k_igemm_fill(pt_igemm_conv g, __half *y) {
  const int rows = g.perf_dir == 1, len = rows ? g.oh : g.ow, other = rows ? g.ow : g.oh;
  const int skipped = len - (rows ? g.kr : g.kc);
  PT__GRID_LOOP(i, (int64_t)g.n * skipped * other * g.k) {
    const int n = (int)(i % g.k), j = (int)((i / g.k) % other), si = (int)((i / ((int64_t)g.k * other)) % skipped);
    const int img = (int)(i / ((int64_t)g.k * other * skipped));
    const int at = g.perf_offset + si * g.perf_stride; /* the si-th skipped index */
    int a, b;
    pt_km_perf_fill_src(at, len, &a, &b);
#define PT__YAT(p) y[(((long long)img * g.oh + (rows ? (p) : j)) * g.ow + (rows ? j : (p))) * g.k + n]
    PT__YAT(at) = a < 0 ? __float2half_rn(0.0f)
                        : __float2half_rn(0.5f * (__half2float(PT__YAT(a)) + __half2float(PT__YAT(b))));
#undef PT__YAT
  }
}

extern "C" {

size_t pt__cu_igemm_smem_bytes(void) { return sizeof(pt_ig_smem); }

pt_status pt__cu_igemm_weights(cudaStream_t stream, const pt_igemm_conv *g, const int *table, const float *w,
                               float scale, int kpad, void *wk) {
  pt_k_igemm_weights<<<pt__grid((int64_t)g->k * kpad, 256), 256, 0, stream>>>(*g, table, w, scale, kpad, (__half *)wk);
  return pt__launched("igemm_weights");
}

pt_status pt__cu_conv_igemm(cudaStream_t stream, const pt_igemm_conv *g, const int *table, const void *x,
                            const void *wk, int kpad, const float *bias, void *y) {
  const size_t smem = sizeof(pt_ig_smem); /* 30 KB: under the 48 KB that needs no opt-in */
  if (g->kdim <= 0 || g->kdim > PT_IG_KMAX || kpad % 8 || kpad < g->kdim)
    return pt__error(PT_EINVAL, "conv_igemm: %d K entries padded to %d (1 to %d, padded to a multiple of 8)", g->kdim,
                     kpad, PT_IG_KMAX);
  if (((uintptr_t)x | (uintptr_t)wk) & 15) /* 16-byte copies need 16-byte aligned tensors */
    return pt__error(PT_EINVAL, "conv_igemm: input or weights not 16-byte aligned");
  const dim3 grid((unsigned)pt_igemm_blocks_m(g), (unsigned)pt_igemm_blocks_n(g));
  pt_k_conv_igemm<<<grid, PT_IG_THREADS, smem, stream>>>(*g, table, (const __half *)x, (const __half *)wk, kpad, bias,
                                                         (__half *)y);
  PT__TRY(pt__launched("conv_igemm"));
  if (!g->perf_dir) return PT_OK;
  const int skipped = (g->perf_dir == 1 ? g->oh - g->kr : g->ow - g->kc);
  const int64_t n = (int64_t)g->n * skipped * (g->perf_dir == 1 ? g->ow : g->oh) * g->k;
  if (n > 0) pt_k_igemm_fill<<<pt__grid(n, 256), 256, 0, stream>>>(*g, (__half *)y);
  return pt__launched("igemm_fill");
}

} /* extern "C" */
