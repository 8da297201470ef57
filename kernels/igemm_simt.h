/* The fp32 implicit-GEMM convolution on CUDA cores (kernels/conv_simt.cu): the same GEMM as
 * igemm_layout.h (M = kept output pixels, N = output channels, K = the K table's kept (tap, channel)
 * pairs) read straight from the backend's NCHW fp32 tensors, in tiles of 128 pixels x 64 channels x
 * 16 entries; each of 256 threads accumulates 8 pixels x 4 channels in fp32 FMA (no TF32, so results
 * stay within 1e-5 of the CPU). Pure PT_HD maps shared with tests/test_igemm.c, which runs the loop
 * nest on the CPU and checks that every output has exactly one owner. */
#ifndef PT_IGEMM_SIMT_H
#define PT_IGEMM_SIMT_H

#include "igemm_layout.h"

enum {
  PT_SIMT_BM = 128, PT_SIMT_BN = 64, PT_SIMT_BK = 16, PT_SIMT_THREADS = 256,
  PT_SIMT_TM = 8, PT_SIMT_TN = 4, /* outputs per thread: pixels x channels */
  PT_SIMT_LDA = PT_SIMT_BM + 4, PT_SIMT_LDB = PT_SIMT_BN + 4 /* floats per k row of the tiles */
};

/* Thread t's first tile row (pixel) and column (channel); its outputs are rows m0 .. m0 + 7 and
 * columns n0 .. n0 + 3. */
PT_HD static inline int pt_simt_m0(int t) { return (t % (PT_SIMT_BM / PT_SIMT_TM)) * PT_SIMT_TM; }
PT_HD static inline int pt_simt_n0(int t) { return (t / (PT_SIMT_BM / PT_SIMT_TM)) * PT_SIMT_TN; }

/* The i-th element thread t loads of the A tile (k-major, BK x BM: 8 per thread, consecutive threads
 * on consecutive pixels so that NCHW reads coalesce; a thread's 8 share one pixel, ml = t % BM) and
 * of the B tile (BK x BN: 4 per thread). */
PT_HD static inline void pt_simt_a_elem(int t, int i, int *kk, int *ml) {
  const int e = t + PT_SIMT_THREADS * i;
  *kk = e / PT_SIMT_BM, *ml = e % PT_SIMT_BM;
}
PT_HD static inline void pt_simt_b_elem(int t, int i, int *kk, int *nl) {
  const int e = t + PT_SIMT_THREADS * i;
  *kk = e / PT_SIMT_BN, *nl = e % PT_SIMT_BN;
}

/* GEMM row m's pixel as its A loads need it, found once per thread: the image and the input
 * origin of its window; 0 when m is past the GEMM (its loads are zeros). */
PT_HD static inline int pt_simt_a_origin(const pt_igemm_conv *g, int m, int *img, int *iy0, int *ix0) {
  if (m >= g->m) return 0;
  int oy, ox;
  pt_igemm_pixel(g, m, img, &oy, &ox);
  *iy0 = oy * g->sh - g->ph, *ix0 = ox * g->sw - g->pw;
  return 1;
}

/* A's element at K-table entry `entry` for that pixel: its NCHW offset, or -1 for a zero. */
PT_HD static inline long long pt_simt_a_at(const pt_igemm_conv *g, int img, int iy0, int ix0, int entry) {
  const int tap = entry / g->c, ch = entry % g->c, iy = iy0 + tap / g->kw, ix = ix0 + tap % g->kw;
  if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) return -1;
  return (((long long)img * g->c + ch) * g->h + iy) * g->w + ix;
}

/* The NCHW offset of output pixel m (< g->m), channel n. */
PT_HD static inline long long pt_simt_y_offset(const pt_igemm_conv *g, int m, int n) {
  int img, oy, ox;
  pt_igemm_pixel(g, m, &img, &oy, &ox);
  return (((long long)img * g->k + n) * g->oh + oy) * g->ow + ox;
}

#endif
