/* The fused implicit-GEMM convolution's index math (the GPU kernel issue; docs/design.md, "The
 * implicit-GEMM convolution's index math"): how a block and its warps walk the GEMM of a
 * convolution — M = the kept output pixels (perforation takes rows or columns out of M), N = output
 * channels, K = the kept (tap, input channel) pairs (sampling takes them out of K) — and where each
 * element of each fragment lives for mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 and
 * ldmatrix.sync.aligned.x4 / .x2 (.m8n8.b16), per the PTX ISA's "Matrix Fragments for
 * mma.m16n8k16". Pure PT_HD functions: the CUDA kernel calls them, and tests/test_igemm.c runs the
 * kernel's loop nest on the CPU with these functions and an emulated MMA and compares it with the
 * reference convolution, so the layouts are checked before any GPU time. Tensors are NHWC on the
 * GPU: an element of the input is x[((img * H + iy) * W + ix) * C + c]. */
#ifndef PT_IGEMM_LAYOUT_H
#define PT_IGEMM_LAYOUT_H

#include "knob_math.h"

/* ---- the fragments of one mma.m16n8k16 (lane 0..31; g = lane / 4, t = lane % 4) ---- */

/* A (16 x 16, row-major): 8 halves per lane, in registers a0..a3 two by two. */
PT_HD static inline int pt_mma_a_row(int lane, int i) { return (lane >> 2) + 8 * ((i >> 1) & 1); }
PT_HD static inline int pt_mma_a_col(int lane, int i) { return 2 * (lane & 3) + (i & 1) + 8 * (i >> 2); }
/* B (16 x 8, "col": k down, n across): 4 halves per lane in b0, b1. */
PT_HD static inline int pt_mma_b_k(int lane, int i) { return 2 * (lane & 3) + (i & 1) + 8 * (i >> 1); }
PT_HD static inline int pt_mma_b_n(int lane, int i) { return (void)i, lane >> 2; }
/* C and D (16 x 8, f32): 4 floats per lane. */
PT_HD static inline int pt_mma_c_row(int lane, int i) { return (lane >> 2) + 8 * (i >> 1); }
PT_HD static inline int pt_mma_c_col(int lane, int i) { return 2 * (lane & 3) + (i & 1); }

/* ---- ldmatrix (.m8n8.b16): lane l gives the address of row l % 8 of matrix l / 8; in register j
 * it receives row l / 4 of matrix j, columns 2 (l % 4) and 2 (l % 4) + 1 ---- */

/* The lane whose row address lane l's register j is read from, and the first column it gets. */
PT_HD static inline int pt_ldm_src_lane(int lane, int reg) { return 8 * reg + (lane >> 2); }
PT_HD static inline int pt_ldm_col(int lane) { return 2 * (lane & 3); }

/* Row addresses for the A operand of one 16 x 16 step of a row-major tile (ldmatrix.x4): matrix j
 * covers rows 8 (j % 2) .. + 7 and columns 8 (j / 2) .. + 7, so registers 0..3 are a0..a3. */
PT_HD static inline int pt_ldm_a_row(int lane) { return lane & 15; }
PT_HD static inline int pt_ldm_a_col(int lane) { return 8 * (lane >> 4); }
/* Row addresses for the B operands of two n8 blocks of a [n][k] tile (k contiguous; ldmatrix.x4):
 * matrices 0, 1 are n 0..7 at k 0 and 8 (b0, b1 of the first block), 2, 3 the same for n 8..15. */
PT_HD static inline int pt_ldm_b_n(int lane) { return (lane & 7) + 8 * (lane >> 4); }
PT_HD static inline int pt_ldm_b_k(int lane) { return 8 * ((lane >> 3) & 1); }

/* ---- the tile schedule ---- */

enum {
  PT_IG_BM = 128, /* output pixels per block */
  PT_IG_BN = 64,  /* output channels per block */
  PT_IG_BK = 32,  /* reduction slice per pipeline stage */
  PT_IG_WARPS_M = 2, PT_IG_WARPS_N = 2, /* 4 warps, each a 64 x 32 tile */
  PT_IG_WM = PT_IG_BM / PT_IG_WARPS_M, PT_IG_WN = PT_IG_BN / PT_IG_WARPS_N,
  PT_IG_MI = PT_IG_WM / 16, PT_IG_NI = PT_IG_WN / 8, /* mma tiles per warp */
  PT_IG_THREADS = 32 * PT_IG_WARPS_M * PT_IG_WARPS_N,
  PT_IG_KMAX = 16384 /* kept (tap, channel) pairs a kernel's table holds (1024 channels of 3x3 and more) */
};

/* One convolution as the kernel sees it (groups == 1; pt_igemm_fits says which it takes). */
typedef struct pt_igemm_conv {
  int n, c, h, w;          /* input, NHWC */
  int k, oh, ow;           /* output channels and size */
  int kh, kw, sh, sw, ph, pw;
  int perf_dir, perf_stride, perf_offset; /* pt_perf_dir (0 none, 1 rows, 2 columns) */
  int kr, kc;              /* kept output rows and columns */
  int m, kdim;             /* GEMM sizes: m = n x kr x kc; kdim = kept (tap, channel) pairs */
} pt_igemm_conv;

/* Fills the GEMM sizes of conv (its other fields set); kdim is the caller's (the K table's length). */
PT_HD static inline void pt_igemm_sizes(pt_igemm_conv *g, int kdim) {
  g->kr = g->perf_dir == 1 ? pt_km_perf_kept_count(g->oh, g->perf_stride, g->perf_offset) : g->oh;
  g->kc = g->perf_dir == 2 ? pt_km_perf_kept_count(g->ow, g->perf_stride, g->perf_offset) : g->ow;
  g->m = g->n * g->kr * g->kc;
  g->kdim = kdim;
}

/* GEMM row m (< g->m) -> output pixel: image, output row and column (kept rows/columns expanded). */
PT_HD static inline void pt_igemm_pixel(const pt_igemm_conv *g, int m, int *img, int *oy, int *ox) {
  const int per = g->kr * g->kc, r = (m % per) / g->kc, q = m % g->kc;
  *img = m / per;
  *oy = g->perf_dir == 1 ? pt_km_perf_kept_index(r, g->perf_stride, g->perf_offset) : r;
  *ox = g->perf_dir == 2 ? pt_km_perf_kept_index(q, g->perf_stride, g->perf_offset) : q;
}

/* The K table: the kept (tap, channel) pairs of a filter, tap-major (channels of one tap side by
 * side, so an exact convolution's K runs along NHWC's contiguous channels), each entry
 * tap * c + channel. Sampling (samp_every > 0) leaves out the dropped ones (pt_km_samp_dropped on the
 * flat index channel * kh * kw + tap). Returns the count (at most PT_IG_KMAX; -1 when more). */
PT_HD static inline int pt_igemm_k_table(int c, int kh, int kw, int samp_every, int samp_offset, int *table) {
  int n = 0;
  for (int tap = 0; tap < kh * kw; tap++)
    for (int ch = 0; ch < c; ch++) {
      if (samp_every && pt_km_samp_dropped(ch * kh * kw + tap, kh, kw, samp_every, samp_offset)) continue;
      if (n == PT_IG_KMAX) return -1;
      table[n++] = tap * c + ch;
    }
  return n;
}

/* A's element (m, kk) of the GEMM: the input pixel and channel it reads, or 0 for a zero (padding,
 * or m / kk past the end). entry: the K table's entry for kk. */
PT_HD static inline int pt_igemm_a_coords(const pt_igemm_conv *g, int m, int kk, int entry, int *img, int *iy, int *ix,
                                          int *ch) {
  if (m >= g->m || kk >= g->kdim) return 0;
  int oy, ox;
  pt_igemm_pixel(g, m, img, &oy, &ox);
  const int tap = entry / g->c;
  *ch = entry % g->c;
  *iy = pt_km_in_coord(oy, tap / g->kw, g->sh, g->ph), *ix = pt_km_in_coord(ox, tap % g->kw, g->sw, g->pw);
  return *iy >= 0 && *iy < g->h && *ix >= 0 && *ix < g->w;
}

/* The same element's offset in an NHWC input, or -1. */
PT_HD static inline long long pt_igemm_a_offset(const pt_igemm_conv *g, int m, int kk, int entry) {
  int img, iy, ix, ch;
  if (!pt_igemm_a_coords(g, m, kk, entry, &img, &iy, &ix, &ch)) return -1;
  return (((long long)img * g->h + iy) * g->w + ix) * g->c + ch;
}

/* B's element (kk, n): the weight offset it reads in PyTorch's (k, c, kh, kw) layout, or -1. */
PT_HD static inline long long pt_igemm_b_offset(const pt_igemm_conv *g, int kk, int n, int entry) {
  if (n >= g->k || kk >= g->kdim) return -1;
  const int tap = entry / g->c, ch = entry % g->c;
  return ((long long)n * g->c + ch) * g->kh * g->kw + tap;
}

/* Blocks of the grid: x over M, y over N. */
PT_HD static inline int pt_igemm_blocks_m(const pt_igemm_conv *g) { return (g->m + PT_IG_BM - 1) / PT_IG_BM; }
PT_HD static inline int pt_igemm_blocks_n(const pt_igemm_conv *g) { return (g->k + PT_IG_BN - 1) / PT_IG_BN; }
/* Warp w of a block: its first row and column in the block's tile. */
PT_HD static inline int pt_igemm_warp_m0(int warp) { return (warp % PT_IG_WARPS_M) * PT_IG_WM; }
PT_HD static inline int pt_igemm_warp_n0(int warp) { return (warp / PT_IG_WARPS_M) * PT_IG_WN; }

#endif
