/* The halo-tile implicit-GEMM convolution's plan and index math (kernels/conv_igemm_halo.cu; the GPU
 * kernel issue; docs/design.md, "The implicit-GEMM convolution's index math"). Pure PT_HD functions:
 * the kernel calls them, and tests/test_igemm.c runs the kernel's loop nest on the CPU with them and
 * an emulated MMA before any GPU time.
 *
 * What differs from igemm_layout.h's first kernel:
 *  - a block's 128 GEMM rows are a rectangle of kept output pixels — whole images (ipb of them), or
 *    tr kept rows x tc kept columns of one image — so the input it reads is one tile with its halo,
 *    fetched once per 16-channel chunk into shared memory; each tap is then a shifted view of that
 *    tile (ldmatrix takes a row address per lane), not a fresh load;
 *  - the reduction runs chunk by chunk (a pipeline stage is one chunk of 16 staged channels), each
 *    chunk against the taps it keeps;
 *  - sampling reorders the input channels by residue class modulo skip_every when it stages them
 *    (each class padded to a multiple of 8): whether Conv2dSampling keeps (channel, tap) depends only
 *    on the channel's class (the flat index is channel * kh * kw + tap), so each half of a chunk (8
 *    slots) lies in one class and keeps whole taps. A k step pairs the i-th kept tap of the low half
 *    with the i-th of the high half — ldmatrix takes the two halves' rows from different lanes, so
 *    the two taps' addresses differ at no cost — and partial taps merge into full k steps: K is
 *    exactly the kept fraction at 32+ channels for skip 2 (80 of 144 at 16 channels), and the plan
 *    keeps the channels in order (dropped pairs zero-weighted) where padding the classes would cost
 *    more than it saves;
 *  - perforation: a block holds whole kept column strips (rows) or row strips (columns), so it fills
 *    the skipped outputs between its own results in its epilogue; the output is written NCHW fp32 as
 *    the backend keeps tensors, with FP16Approx's roundings.
 * Staged input xs: (n, h, w, cp) binary16, channel slot pc holding channel pt_ig2_chan(p, pc) (zero
 * when -1). Gathered weights wk: (k, nblk * 16) binary16, block b = (chunk, tap) in chunk order. */
#ifndef PT_IGEMM_HALO_H
#define PT_IGEMM_HALO_H

#include <string.h>

#include "igemm_layout.h"

enum {
  PT_IG2_CH = 16,         /* staged channels per chunk (one mma k step per tap) */
  PT_IG2_STAGES = 3,      /* cp.async pipeline depth */
  PT_IG2_MAXTAPS = 64,    /* kh * kw a mask holds */
  PT_IG2_MAXCLS = 8,      /* skip_every a plan takes */
  PT_IG2_HALO_MAX = 1536, /* halo pixels per stage (48 KB) */
  PT_IG2_LDY = PT_IG_BN + 4, /* floats per pixel of the epilogue's staging tile */
  PT_IG2_RESIDENT_MAX = 80 * 1024, /* weight bytes kept in shared memory for the whole block */
  PT_IG2_SMEM_MAX = 200 * 1024
};

typedef struct pt_ig2_plan {
  pt_igemm_conv g;      /* the convolution (pt_igemm_sizes done; g.kdim = kept (tap, channel) pairs) */
  int fp16;             /* FP16Approx's roundings in the epilogue (the products are binary16 anyway) */
  int every, soff;      /* sampling's skip_every and offset (0: none) */
  int classes, cls_pad; /* channel classes and staged slots per class (a multiple of 8) */
  int cp, chunks, nblk; /* staged channels per pixel, chunks, kept (chunk, tap) blocks */
  unsigned long long mask[PT_IG2_MAXCLS]; /* taps kept by each class */
  int maxt;             /* most k steps of any chunk */
  int ipb, tr, tc;      /* a block: ipb images x tr kept rows x tc kept columns */
  int tiles_r, tiles_c; /* tiles per image (1 x 1 when a block holds whole images) */
  int hr, hc;           /* halo rows and columns per image slot */
  int blocks;           /* grid over M */
  int resident;         /* all of a block's weights in shared memory (else one chunk per stage) */
  int ldb;              /* halves per output channel of the weight tile */
  int a_halves, b_halves, smem; /* per stage (b: the resident tile when resident), total bytes */
} pt_ig2_plan;

/* Staged channel slot pc -> input channel, or -1 for padding. */
PT_HD static inline int pt_ig2_chan(const pt_ig2_plan *p, int pc) {
  const int r = pc / p->cls_pad, j = pc % p->cls_pad, c = r + p->classes * j;
  return r < p->classes && c < p->g.c ? c : -1;
}

/* Taps half-chunk h (staged slots 8h .. 8h + 7) keeps (bit t: tap t); 0 past the classes. */
PT_HD static inline unsigned long long pt_ig2_half_mask(const pt_ig2_plan *p, int h) {
  const int r = h * 8 / p->cls_pad;
  return r < p->classes ? p->mask[r] : 0;
}

PT_HD static inline int pt_ig2_popcount(unsigned long long m) {
#ifdef __CUDA_ARCH__
  return __popcll(m);
#else
  int n = 0;
  for (; m; m &= m - 1) n++;
  return n;
#endif
}

/* k steps of a chunk: its halves' kept taps side by side, the longer list's length. */
PT_HD static inline int pt_ig2_steps(const pt_ig2_plan *p, int chunk) {
  const int a = pt_ig2_popcount(pt_ig2_half_mask(p, 2 * chunk)), b = pt_ig2_popcount(pt_ig2_half_mask(p, 2 * chunk + 1));
  return a > b ? a : b;
}

/* The first block (k step) of a chunk in the block order (chunks in order, each with its steps). */
PT_HD static inline int pt_ig2_blk0(const pt_ig2_plan *p, int chunk) {
  int b = 0;
  for (int j = 0; j < chunk; j++) b += pt_ig2_steps(p, j);
  return b;
}

/* The i-th kept tap of mask m, or -1. */
PT_HD static inline int pt_ig2_nth_tap(unsigned long long m, int i) {
  for (; m && i > 0; i--) m &= m - 1;
  if (!m) return -1;
  int t = 0;
  while (!(m >> t & 1)) t++;
  return t;
}

/* Kept rows (columns) spanned by a tile of `len` kept indices from kept index k0: the input extent
 * (kept_index(last) - kept_index(first)) * stride + kernel. */
PT_HD static inline int pt_ig2_span(const pt_igemm_conv *g, int cols, int k0, int len) {
  const int kept = cols ? g->kc : g->kr, last = (k0 + len < kept ? k0 + len : kept) - 1;
  const int perf = g->perf_dir == (cols ? 2 : 1);
  const int a = perf ? pt_km_perf_kept_index(k0, g->perf_stride, g->perf_offset) : k0;
  const int b = perf ? pt_km_perf_kept_index(last, g->perf_stride, g->perf_offset) : last;
  return (b - a) * (cols ? g->sw : g->sh) + (cols ? g->kw : g->kh);
}

/* Output row (column) of kept row (column) k. */
PT_HD static inline int pt_ig2_out(const pt_igemm_conv *g, int cols, int k) {
  return g->perf_dir == (cols ? 2 : 1) ? pt_km_perf_kept_index(k, g->perf_stride, g->perf_offset) : k;
}

/* Fills the plan of conv g (its fields but kr..kdim set) with sampling (every, soff; 0: none).
 * Returns 0, or -1 when this kernel does not take the convolution (groups, taps, sizes, shared
 * memory): the backend then runs another variant. */
PT_HD static inline int pt_ig2_make(pt_ig2_plan *p, const pt_igemm_conv *conv, int fp16, int every, int soff) {
  memset(p, 0, sizeof *p);
  p->g = *conv;
  p->fp16 = fp16;
  p->every = every, p->soff = soff;
  pt_igemm_conv *g = &p->g;
  const int taps = g->kh * g->kw;
  if (taps > PT_IG2_MAXTAPS || every > PT_IG2_MAXCLS || every == 1 || g->n < 1 || g->c < 1 || g->k < 1) return -1;
  /* channels by class, or in order (classes == 1) when padding the classes costs more K than it saves */
  for (int pass = 0; pass < 2; pass++) {
    const int classes = pass == 0 ? 1 : every;
    if (pass == 1 && every == 0) break;
    pt_ig2_plan q = *p;
    q.classes = classes;
    q.cls_pad = ((g->c + classes - 1) / classes + 7) / 8 * 8;
    q.cp = (classes * q.cls_pad + PT_IG2_CH - 1) / PT_IG2_CH * PT_IG2_CH, q.chunks = q.cp / PT_IG2_CH;
    for (int r = 0; r < classes; r++) { /* class r's representative channel decides for all of it */
      unsigned long long m = 0;
      for (int t = 0; t < taps; t++)
        if (classes == 1 || !pt_km_samp_dropped(r * taps + t, g->kh, g->kw, every, soff)) m |= 1ull << t;
      q.mask[r] = r < g->c ? m : 0;
    }
    q.nblk = pt_ig2_blk0(&q, q.chunks);
    if (pass == 0 || q.nblk < p->nblk) *p = q;
  }
  long long kept = 0; /* the (channel, tap) pairs Conv2dSampling keeps: the GEMM's real K */
  for (int f = 0; f < g->c * taps; f++) kept += !every || !pt_km_samp_dropped(f, g->kh, g->kw, every, soff);
  for (int j = 0; j < p->chunks; j++)
    if (pt_ig2_steps(p, j) > p->maxt) p->maxt = pt_ig2_steps(p, j);
  pt_igemm_sizes(g, (int)kept);
  if (p->nblk < 1 || g->m < 1) return -1;
  /* the tile: whole images when they fit, else whole strips of the perforated axis */
  const int P = g->kr * g->kc;
  if (P <= PT_IG_BM) {
    p->ipb = PT_IG_BM / P, p->tr = g->kr, p->tc = g->kc;
  } else if (g->perf_dir == 1) {
    if (g->kr > PT_IG_BM) return -1;
    p->ipb = 1, p->tr = g->kr, p->tc = PT_IG_BM / g->kr;
  } else if (g->perf_dir == 2) {
    if (g->kc > PT_IG_BM) return -1;
    p->ipb = 1, p->tc = g->kc, p->tr = PT_IG_BM / g->kc;
  } else {
    p->ipb = 1, p->tc = g->kc < 16 ? g->kc : 16, p->tr = PT_IG_BM / p->tc;
  }
  p->tiles_r = (g->kr + p->tr - 1) / p->tr, p->tiles_c = (g->kc + p->tc - 1) / p->tc;
  for (int r0 = 0; r0 < g->kr; r0 += p->tr)
    if (pt_ig2_span(g, 0, r0, p->tr) > p->hr) p->hr = pt_ig2_span(g, 0, r0, p->tr);
  for (int q0 = 0; q0 < g->kc; q0 += p->tc)
    if (pt_ig2_span(g, 1, q0, p->tc) > p->hc) p->hc = pt_ig2_span(g, 1, q0, p->tc);
  if ((long long)p->ipb * p->hr * p->hc > PT_IG2_HALO_MAX) return -1;
  p->blocks = (g->n + p->ipb - 1) / p->ipb * p->tiles_r * p->tiles_c;
  p->a_halves = p->ipb * p->hr * p->hc * PT_IG2_CH;
  const long long res = (long long)PT_IG_BN * (p->nblk * PT_IG2_CH + 8) * 2;
  p->resident = res <= PT_IG2_RESIDENT_MAX;
  p->ldb = (p->resident ? p->nblk : p->maxt) * PT_IG2_CH + 8; /* rows 16 bytes off the banks of the last */
  p->b_halves = PT_IG_BN * p->ldb;
  long long bytes = 2ll * PT_IG2_STAGES * p->a_halves + 2ll * p->b_halves * (p->resident ? 1 : PT_IG2_STAGES);
  if (bytes < 4ll * PT_IG_BM * PT_IG2_LDY) bytes = 4ll * PT_IG_BM * PT_IG2_LDY; /* the epilogue reuses it */
  if (bytes > PT_IG2_SMEM_MAX) return -1;
  p->smem = (int)bytes;
  return 0;
}

/* Block bx's first image and its tile's first kept row and column. */
PT_HD static inline void pt_ig2_block(const pt_ig2_plan *p, int bx, int *img0, int *r0, int *q0) {
  const int per = p->tiles_r * p->tiles_c, t = bx % per;
  *img0 = bx / per * p->ipb;
  *r0 = t / p->tiles_c * p->tr;
  *q0 = t % p->tiles_c * p->tc;
}

/* The block's local GEMM row ml -> image slot, kept row and column (absolute); 0 when ml is
 * outside the convolution (its results are dropped). */
PT_HD static inline int pt_ig2_row(const pt_ig2_plan *p, int bx, int ml, int *slot, int *r, int *q) {
  int img0, r0, q0;
  pt_ig2_block(p, bx, &img0, &r0, &q0);
  const int per = p->tr * p->tc;
  *slot = ml / per, *r = r0 + ml % per / p->tc, *q = q0 + ml % p->tc;
  return *slot < p->ipb && img0 + *slot < p->g.n && *r < p->g.kr && *q < p->g.kc && *r < r0 + p->tr;
}

/* The halo's first input row and column for block bx (may be negative: padding). */
PT_HD static inline void pt_ig2_origin(const pt_ig2_plan *p, int bx, int *iy0, int *ix0) {
  int img0, r0, q0;
  pt_ig2_block(p, bx, &img0, &r0, &q0);
  *iy0 = pt_ig2_out(&p->g, 0, r0) * p->g.sh - p->g.ph;
  *ix0 = pt_ig2_out(&p->g, 1, q0) * p->g.sw - p->g.pw;
}

/* The halo pixel (image slot, row, column flattened) that local row ml reads at tap 0; add
 * pt_ig2_tap_off for another tap. Rows outside the convolution read pixel 0 (dropped anyway). */
PT_HD static inline int pt_ig2_a_pixel(const pt_ig2_plan *p, int bx, int ml) {
  int slot, r, q, img0, r0, q0;
  if (!pt_ig2_row(p, bx, ml, &slot, &r, &q)) return 0;
  pt_ig2_block(p, bx, &img0, &r0, &q0);
  const int hy = (pt_ig2_out(&p->g, 0, r) - pt_ig2_out(&p->g, 0, r0)) * p->g.sh;
  const int hx = (pt_ig2_out(&p->g, 1, q) - pt_ig2_out(&p->g, 1, q0)) * p->g.sw;
  return (slot * p->hr + hy) * p->hc + hx;
}
PT_HD static inline int pt_ig2_tap_off(const pt_ig2_plan *p, int tap) { return tap / p->g.kw * p->hc + tap % p->g.kw; }

/* Halves from the start of a stage's halo to 8 channels (half 0 or 1 of the chunk) of pixel hp: the
 * halves swap every 4 pixels, so 8 consecutive pixels' ldmatrix rows cover all 32 banks. */
PT_HD static inline int pt_ig2_a_at(int hp, int half) { return hp * PT_IG2_CH + 8 * (half ^ ((hp >> 2) & 1)); }

/* Where halo pixel hp comes from, for a block whose first image is img0 and whose halo starts at input
 * (iy0, ix0): the input (image, row, column), or 0 for a zero. */
PT_HD static inline int pt_ig2_halo_src_at(const pt_ig2_plan *p, int img0, int iy0, int ix0, int hp, int *img,
                                           int *iy, int *ix) {
  const int slot = hp / (p->hr * p->hc), rem = hp % (p->hr * p->hc);
  *img = img0 + slot, *iy = iy0 + rem / p->hc, *ix = ix0 + rem % p->hc;
  return *img < p->g.n && *iy >= 0 && *iy < p->g.h && *ix >= 0 && *ix < p->g.w;
}
PT_HD static inline int pt_ig2_halo_src(const pt_ig2_plan *p, int bx, int hp, int *img, int *iy, int *ix) {
  int img0, r0, q0, iy0, ix0;
  pt_ig2_block(p, bx, &img0, &r0, &q0);
  pt_ig2_origin(p, bx, &iy0, &ix0);
  return pt_ig2_halo_src_at(p, img0, iy0, ix0, hp, img, iy, ix);
}

/* Bytes of the staged input and of the gathered weights. */
PT_HD static inline long long pt_ig2_xs_bytes(const pt_ig2_plan *p) {
  return 2ll * p->g.n * p->g.h * p->g.w * p->cp;
}
PT_HD static inline long long pt_ig2_wk_bytes(const pt_ig2_plan *p) { return 2ll * p->g.k * p->nblk * PT_IG2_CH; }

/* Halves into a block's weight tile of output channel nl, block t of the tile (the chunk's t-th k
 * step when streamed; block t of the whole order when resident), k element kk. */
PT_HD static inline int pt_ig2_b_at(const pt_ig2_plan *p, int nl, int t, int kk) {
  return nl * p->ldb + t * PT_IG2_CH + kk;
}

/* Gathered weight (output channel n, block b, k element kk): the (k, c, kh, kw) offset it comes
 * from, or -1 for a zero (a padding slot, a step past a half's taps, or a pair sampling drops). */
PT_HD static inline long long pt_ig2_w_src(const pt_ig2_plan *p, int n, int b, int kk) {
  int chunk = 0, b0 = 0; /* the chunk holding block b */
  while (chunk + 1 < p->chunks && b0 + pt_ig2_steps(p, chunk) <= b) b0 += pt_ig2_steps(p, chunk++);
  const int half = 2 * chunk + kk / 8, tap = pt_ig2_nth_tap(pt_ig2_half_mask(p, half), b - b0);
  const int c = pt_ig2_chan(p, chunk * PT_IG2_CH + kk), taps = p->g.kh * p->g.kw;
  if (c < 0 || tap < 0 || (p->every && pt_km_samp_dropped(c * taps + tap, p->g.kh, p->g.kw, p->every, p->soff)))
    return -1;
  return ((long long)n * p->g.c + c) * taps + tap;
}

/* The NCHW fp32 output offset of output pixel (img, oy, ox), channel n. */
PT_HD static inline long long pt_ig2_y_at(const pt_igemm_conv *g, int img, int n, int oy, int ox) {
  return (((long long)img * g->k + n) * g->oh + oy) * g->ow + ox;
}

/* The skipped outputs a block fills: per image slot, (skipped index si, position j along the tile's
 * other axis). Their count per slot, and the one at e: output row/column, the local rows (ml) of
 * its two neighbours (equal for a copy; -1: zero), and the other coordinate. */
PT_HD static inline int pt_ig2_fill_count(const pt_ig2_plan *p) {
  const pt_igemm_conv *g = &p->g;
  if (!g->perf_dir) return 0;
  return g->perf_dir == 1 ? (g->oh - g->kr) * p->tc : (g->ow - g->kc) * p->tr;
}
PT_HD static inline void pt_ig2_fill_at(const pt_ig2_plan *p, int bx, int slot, int e, int *oy, int *ox, int *mla,
                                        int *mlb, int *valid) {
  const pt_igemm_conv *g = &p->g;
  int img0, r0, q0;
  pt_ig2_block(p, bx, &img0, &r0, &q0);
  const int rows = g->perf_dir == 1, other = rows ? p->tc : p->tr, si = e / other, j = e % other;
  const int len = rows ? g->oh : g->ow, at = g->perf_offset + si * g->perf_stride;
  int a, b;
  pt_km_perf_fill_src(at, len, &a, &b);
  const int per = p->tr * p->tc;
  if (rows) {
    *oy = at, *ox = pt_ig2_out(g, 1, q0 + j);
    *valid = img0 + slot < g->n && q0 + j < g->kc;
    *mla = a < 0 ? -1 : slot * per + pt_km_perf_compact_index(a, g->perf_stride, g->perf_offset) * p->tc + j;
    *mlb = a < 0 ? -1 : slot * per + pt_km_perf_compact_index(b, g->perf_stride, g->perf_offset) * p->tc + j;
  } else {
    *ox = at, *oy = pt_ig2_out(g, 0, r0 + j);
    *valid = img0 + slot < g->n && r0 + j < g->kr && j < p->tr;
    *mla = a < 0 ? -1 : slot * per + j * p->tc + pt_km_perf_compact_index(a, g->perf_stride, g->perf_offset);
    *mlb = a < 0 ? -1 : slot * per + j * p->tc + pt_km_perf_compact_index(b, g->perf_stride, g->perf_offset);
  }
}

#endif
