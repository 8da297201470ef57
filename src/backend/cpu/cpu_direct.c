/* A direct convolution over the kept filter elements (AVX2 + FMA, or AVX-512), for the CPU backend's
 * GEMM path: where im2col + OpenBLAS copy the input twice (the im2col matrix, then the GEMM's own
 * packing of it), this reads a zero-padded copy of the block's input rows and accumulates a few
 * output channels x two vectors of output pixels in registers, two loads and a broadcast per
 * channel for each kept element. So sampling's shrunken reduction costs only its multiply-adds. Used for stride-1 convolutions whose
 * output columns are all computed (exact rows or row perforation, with or without sampling), on
 * CPUs with AVX2 and FMA; the caller (cpu_conv.c) keeps im2col + GEMM otherwise. */
#include "backend/cpu/cpu_internal.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PT_DIRECT_X86 1
#endif

/* A micro-tile: nco output channels x 2 vectors of pixels (16 with AVX2, 32 with AVX-512) of one
 * row, each kept element two vector loads of the padded input and nco broadcasts of a weight:
 * enough independent FMAs to keep both FMA pipes busy (AVX2: 6 x 2 in 12 of its 16 registers;
 * AVX-512: 8 x 2 of 32, the broadcasts folded into the FMAs, and 8 divides the usual channel
 * counts). Maps one vector wide put two rows in a micro-tile; other rows under two vectors leave
 * lanes idle, and rows under 16 pixels (but 8) stay on im2col + GEMM. With AVX-512, maps 8 wide
 * whose rows are all computed run in "pairs": a 16-float vector holds two rows of 8 from a copy of
 * the input in which each line already holds two rows' 8 pixels under one tap column, so a
 * micro-tile is four rows, contiguous in the output. */
enum { NCO_MAX = 8, PX_MAX = 32 };

int pt__cpu_direct_available(void) {
#ifdef PT_DIRECT_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

static int avx512_available(void) {
#ifdef PT_DIRECT_X86
  const char *e = getenv("PT_CPU_DIRECT_ISA");
  return !(e && !strcmp(e, "avx2")) && __builtin_cpu_supports("avx512f");
#else
  return 0;
#endif
}

static int chunk_channels(const pt__cpu_direct_plan *pl, const pt_conv_desc *d);

int pt__cpu_direct_takes(const pt_conv_desc *d, int all_cols, pt__cpu_direct_plan *plan) {
  if (!pt__cpu_direct_available() || d->groups != 1 || d->sh != 1 || d->sw != 1 || !all_cols ||
      !(d->ow >= 16 || d->ow == 8))
    return 0;
  const int wide = avx512_available();
  /* row perforation on maps 8 wide: its rows are not pairs; im2col + an AVX-512 GEMM beat AVX2 there */
  if (wide && d->ow < 16 && d->perf_dir == PT_PERF_ROWS) return 0;
  plan->v = wide ? 16 : 8, plan->nco = wide ? 8 : 6, plan->px = 2 * plan->v, plan->two_rows = d->ow == plan->v;
  plan->pairs = wide && d->ow == 8;
  plan->chunk = chunk_channels(plan, d);
  return 1;
}

/* A padded input row: every micro-tile's pixels (one vector on maps one vector wide) plus the
 * filter's width. */
static int wpad_of(const pt__cpu_direct_plan *pl, const pt_conv_desc *d) {
  return (pl->two_rows ? pl->v : (d->ow + pl->px - 1) / pl->px * pl->px) + d->kw - 1;
}

/* Pairs: lines of the paired copy per (tap column, channel) for a block of nr rows: the 4-row
 * micro-tiles' (rounded up) plus the filter's height. */
static int pair_lines(int nr, int kh) { return (nr + 3) / 4 * 4 + kh; }

/* The offsets below are stored in the scratch's float array. */
_Static_assert(sizeof(int) == sizeof(float), "int offsets share the float scratch");

int64_t pt__cpu_direct_packed_size(const pt_conv_desc *d, int nk) { return (int64_t)d->cout * nk; }

/* w (cout, nk) -> wp: blocks of nco channels (the last one shorter), each (nk, block). */
void pt__cpu_direct_pack(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const float *w, int nk, float *wp) {
  for (int c0 = 0; c0 < d->cout; c0 += pl->nco) {
    const int nc = d->cout - c0 < pl->nco ? d->cout - c0 : pl->nco;
    float *dst = wp + (int64_t)c0 * nk;
    for (int t = 0; t < nk; t++)
      for (int l = 0; l < nc; l++) dst[(int64_t)t * nc + l] = w[(int64_t)(c0 + l) * nk + t];
  }
}

int64_t pt__cpu_direct_scratch(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, int span) {
  const int64_t input = pl->pairs ? (int64_t)d->kw * d->cin * pair_lines(span - d->kh + 1, d->kh) * 16
                                  : (int64_t)d->cin * span * wpad_of(pl, d);
  const int64_t prow = pl->pairs ? (int64_t)(pair_lines(span - d->kh + 1, d->kh) + 1) * (8 + d->kw - 1) : 0;
  return input + (int64_t)d->cin * d->kh * d->kw + d->cin + 1 + NCO_MAX * PX_MAX + prow + 16; /* + 16: alignment */
}

/* Half this CPU's L1 data cache (32 KB where it does not say). */
static int l1_half(void) {
  const long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE);
  return (int)((l1 >= 8192 && l1 <= (1 << 22) ? l1 : 32768) / 2);
}

/* Input channels a chunk of the reduction spans: a micro-tile's input lines for that many channels
 * (its rows, each 64-byte lines split by the unaligned loads) take at most half of L1, so they stay
 * there while every channel group's weights pass by; chunks of equal size. */
static int chunk_channels(const pt__cpu_direct_plan *pl, const pt_conv_desc *d) {
  const int rows = (pl->two_rows ? 2 : 1) + d->kh - 1, width = (pl->two_rows ? pl->v : pl->px) + d->kw - 1;
  const int per_channel = pl->pairs ? d->kw * (d->kh + 2) * 64 : rows * ((width + 15) / 16 + 1) * 64, half = l1_half();
  const int most = half / per_channel > 0 ? half / per_channel : 1;
  const int n = (d->cin + most - 1) / most;
  return (d->cin + n - 1) / n;
}

#ifdef PT_DIRECT_X86
/* Two vectors of pixels, the second s2 floats after the first in the input and o2 after it in the
 * output (the same row's next pixels, or the next row's on maps one vector wide): out[c * ldo + p]
 * and out[c * ldo + o2 + p] (c < C, p < one vector) = what they hold (accum) or bias[c] (0 without)
 * + the sum over the nk kept elements of src[off[t] + p] (+ s2) * w[t][c]. */
#define PT_DIRECT_MK(NAME, C, TGT, VT, LOAD, SET1, ZERO, FMA, STORE)                                    \
  __attribute__((target(TGT))) static void NAME(const float *src, int64_t s2, const int *off, int nk,  \
                                                const float *w, const float *bias, int accum, float *out,    \
                                                int64_t o2, int64_t ldo) {                                  \
    VT acc[C][2];                                                                                          \
    _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                                                  \
      if (accum) acc[c][0] = LOAD(out + c * ldo), acc[c][1] = LOAD(out + c * ldo + o2);                    \
      else acc[c][0] = acc[c][1] = bias ? SET1(bias[c]) : ZERO();                                          \
    }                                                                                                      \
    for (int t = 0; t < nk; t++, w += C) {                                                                 \
      const float *s = src + off[t];                                                                       \
      const VT x0 = LOAD(s), x1 = LOAD(s + s2);                                                            \
      _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                                                \
        const VT b = SET1(w[c]);                                                                           \
        acc[c][0] = FMA(x0, b, acc[c][0]);                                                                 \
        acc[c][1] = FMA(x1, b, acc[c][1]);                                                                 \
      }                                                                                                    \
    }                                                                                                      \
    _Pragma("GCC unroll 8") for (int c = 0; c < C; c++) {                                                  \
      STORE(out + c * ldo, acc[c][0]);                                                                     \
      STORE(out + c * ldo + o2, acc[c][1]);                                                                \
    }                                                                                                      \
  }
#define PT_MK2(C) PT_DIRECT_MK(mk2_##C, C, "avx2,fma", __m256, _mm256_loadu_ps, _mm256_set1_ps, _mm256_setzero_ps, \
                               _mm256_fmadd_ps, _mm256_storeu_ps)
#define PT_MK5(C) PT_DIRECT_MK(mk5_##C, C, "avx512f", __m512, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, \
                               _mm512_fmadd_ps, _mm512_storeu_ps)
PT_MK2(1)
PT_MK2(2)
PT_MK2(3)
PT_MK2(4)
PT_MK2(5)
PT_MK2(6)
PT_MK5(1)
PT_MK5(2)
PT_MK5(3)
PT_MK5(4)
PT_MK5(5)
PT_MK5(6)
PT_MK5(7)
PT_MK5(8)
typedef void (*mk_fn)(const float *, int64_t, const int *, int, const float *, const float *, int, float *,
                      int64_t, int64_t);
/* by vector width, then channels */
static const mk_fn MK2[NCO_MAX + 1] = {0, mk2_1, mk2_2, mk2_3, mk2_4, mk2_5, mk2_6, 0, 0};
static const mk_fn MK5[NCO_MAX + 1] = {0, mk5_1, mk5_2, mk5_3, mk5_4, mk5_5, mk5_6, mk5_7, mk5_8};

/* Input row iy of channel c into dst (width floats), zero-padded: dst[0] is input column -pw; all
 * zeros when iy is outside the input. */
static void pad_row(const pt_conv_desc *d, const float *x, int c, int iy, int width, float *dst) {
  if (iy < 0 || iy >= d->h) {
    memset(dst, 0, (size_t)width * sizeof *dst);
    return;
  }
  const int lo = d->pw < width ? d->pw : width, n = d->w < width - lo ? d->w : width - lo;
  memset(dst, 0, (size_t)lo * sizeof *dst);
  memcpy(dst + lo, x + ((int64_t)c * d->h + iy) * d->w, (size_t)n * sizeof *dst);
  memset(dst + lo + n, 0, (size_t)(width - lo - n) * sizeof *dst);
}

/* Pairs: the block's input from row iy0 on into xp (kw, cin, nl, 16): line (j, c, r) holds input
 * row iy0 + r, then row iy0 + r + 1, columns j - pw .. j - pw + 7 of each (zero outside the input).
 * Each channel's rows are zero-padded once into prow ((nl + 1) x (8 + kw - 1)), then cut. */
static void pad_pairs(const pt_conv_desc *d, const float *x, int iy0, int nl, float *xp, float *prow) {
  const int wp = 8 + d->kw - 1;
  for (int c = 0; c < d->cin; c++) {
    for (int r = 0; r <= nl; r++) pad_row(d, x, c, iy0 + r, wp, prow + (int64_t)r * wp);
    for (int j = 0; j < d->kw; j++) {
      float *dst = xp + ((int64_t)j * d->cin + c) * nl * 16;
      for (int r = 0; r < nl; r++, dst += 16) {
        memcpy(dst, prow + (int64_t)r * wp + j, 8 * sizeof *dst);
        memcpy(dst + 8, prow + (int64_t)(r + 1) * wp + j, 8 * sizeof *dst);
      }
    }
  }
}

/* The block's input rows iy0.. (span of them) into xp (cin, span, wpad), zero-padded: column 0 of xp
 * is input column -pw. */
static void pad_rows(const pt_conv_desc *d, const float *x, int iy0, int span, int wpad, float *xp) {
  for (int c = 0; c < d->cin; c++)
    for (int r = 0; r < span; r++) pad_row(d, x, c, iy0 + r, wpad, xp + ((int64_t)c * span + r) * wpad);
}
#endif

void pt__cpu_direct_block(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const int *krows, int nk,
                          const float *wp, const float *x, const int *rows, int nr, const float *bias, float *y,
                          float *scratch) {
#ifdef PT_DIRECT_X86
  const int wpad = wpad_of(pl, d), px = pl->px, v = pl->v, nco = pl->nco, two = pl->two_rows;
  const int span = rows[nr - 1] - rows[0] + d->kh, khw = d->kh * d->kw;
  const int64_t P = (int64_t)d->oh * d->ow;
  const mk_fn *mk = v == 16 ? MK5 : MK2;
  const int nl = pl->pairs ? pair_lines(nr, d->kh) : 0;
  const int64_t input = pl->pairs ? (int64_t)d->kw * d->cin * nl * 16 : (int64_t)d->cin * span * wpad;
  float *xp = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63); /* pairs: aligned lines */
  int *off = (int *)(xp + input), *chunk = off + (int64_t)d->cin * khw;
  float *tail = (float *)(chunk + d->cin + 1), *prow = tail + NCO_MAX * PX_MAX;
  if (pl->pairs) pad_pairs(d, x, rows[0] - d->ph, nl, xp, prow);
  else pad_rows(d, x, rows[0] - d->ph, span, wpad, xp);
  /* offsets of the kept elements (in channel order) and where each chunk of channels starts */
  const int cb = pl->chunk;
  int nch = 0;
  for (int t = 0; t < nk; t++) {
    const int k = krows[t], c = k / khw, ki = k % khw / d->kw, kj = k % d->kw;
    off[t] = pl->pairs ? (int)((((int64_t)kj * d->cin + c) * nl + ki) * 16) : (c * span + ki) * wpad + kj;
    if (t == 0 || c / cb != krows[t - 1] / khw / cb) chunk[nch++] = t;
  }
  chunk[nch] = nk;
  /* micro-tiles: pairs take four rows (two lines of the paired copy, 32 floats of the output) */
  for (int r = 0; r < nr; r += pl->pairs ? 4 : two ? 2 : 1) {
    const float *src;
    int64_t s2, o2;
    int rowpx; /* output floats from the tile's first row on that the tile covers */
    if (pl->pairs) {
      src = xp + (int64_t)r * 16, s2 = 32, o2 = 16, rowpx = nr - r < 4 ? (nr - r) * 8 : 32;
    } else {
      src = xp + (int64_t)(rows[r] - rows[0]) * wpad;
      /* the second vector: the row's next pixels, or the next computed row's (none after the last
       * row: it repeats the first, and only the first is kept) */
      const int pair = two && r + 1 < nr, dr = pair ? rows[r + 1] - rows[r] : 0;
      s2 = two ? (int64_t)dr * wpad : v, o2 = two ? (int64_t)dr * d->ow : v;
      rowpx = two ? (pair ? px : v) : d->ow;
    }
    for (int ox = 0; ox < d->ow; ox += pl->pairs ? d->ow : px) {
      const int np = two || pl->pairs ? rowpx : d->ow - ox < px ? d->ow - ox : px, full = np == px;
      float *o = y + (int64_t)rows[r] * d->ow + ox;
      if (full) /* chunk by chunk, every channel group on the chunk's input lines while they are in L1 */
        for (int q = 0; q < nch; q++) {
          const int t0 = chunk[q], n = chunk[q + 1] - t0;
          for (int c0 = 0; c0 < d->cout; c0 += nco) {
            const int nc = d->cout - c0 < nco ? d->cout - c0 : nco;
            mk[nc](src + (pl->pairs ? 0 : ox), s2, off + t0, n, wp + (int64_t)c0 * nk + (int64_t)t0 * nc,
                   bias ? bias + c0 : NULL, q > 0, o + (int64_t)c0 * P, o2, P);
          }
        }
      else /* a row's last pixels, a narrow map's last row or rows: through a small tile */
        for (int c0 = 0; c0 < d->cout; c0 += nco) {
          const int nc = d->cout - c0 < nco ? d->cout - c0 : nco;
          mk[nc](src + (pl->pairs ? 0 : ox), s2, off, nk, wp + (int64_t)c0 * nk, bias ? bias + c0 : NULL, 0, tail, v,
                 px);
          for (int l = 0; l < nc; l++) memcpy(o + (int64_t)(c0 + l) * P, tail + l * px, (size_t)np * sizeof *tail);
        }
    }
  }
#else
  (void)pl, (void)d, (void)krows, (void)nk, (void)wp, (void)x, (void)rows, (void)nr, (void)bias, (void)y;
  (void)scratch;
#endif
}
