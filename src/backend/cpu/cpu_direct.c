/* A direct convolution over the kept filter elements (AVX2 + FMA, or AVX-512), for the CPU backend's
 * GEMM path: where im2col + OpenBLAS copy the input twice (the im2col matrix, then the GEMM's own
 * packing of it), this reads a zero-padded copy of the block's input rows and accumulates a few
 * output channels x two vectors of output pixels in registers, two loads and a broadcast per
 * channel for each kept element. So sampling's shrunken reduction costs only its multiply-adds. Used
 * for stride-1 convolutions whose output columns are all computed (exact rows or row perforation,
 * with or without sampling) and for column perforation, whose kept columns x = ph + stride * t are
 * computed phase by phase as rows of their own from a copy of the input split into the stride's
 * phases (so every load stays contiguous), on CPUs with AVX2 and FMA; the caller (cpu_conv.c)
 * keeps im2col + GEMM otherwise. */
#include "backend/cpu/cpu_internal.h"
#include "kernels/knob_math.h"
#include "predtuner/tensor.h"

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

/* Kept output columns of phase ph (x = ph + cs * t) of column perforation d. */
static int phase_width(const pt_conv_desc *d, int ph) {
  return ph < d->ow ? (d->ow - ph + d->perf_stride - 1) / d->perf_stride : 0;
}

/* Lanes a phase of m columns takes: one vector (two rows a micro-tile) on narrow maps, else whole
 * tiles. */
static int phase_lanes(const pt__cpu_direct_plan *pl, int m) { return pl->two_rows ? pl->v : (m + pl->px - 1) / pl->px * pl->px; }

/* Column perforation's plan (cs, lq, two_rows): 0 when a phase would leave over 1/4 of its lanes
 * idle (maps 16 wide at stride 2 with AVX-512: 8 of 16), or the offset is not below the stride. */
static int cols_plan(const pt_conv_desc *d, pt__cpu_direct_plan *pl) {
  const int s = d->perf_stride, o = d->perf_offset;
  if (s < 2 || o < 0 || o >= s) return 0;
  int lanes = 0, widest = 0;
  for (int ph = 0; ph < s; ph++)
    if (ph != o && phase_width(d, ph) > widest) widest = phase_width(d, ph);
  if (!widest) return 0;
  pl->two_rows = widest <= pl->v; /* every phase is then one vector wide */
  for (int ph = 0; ph < s; ph++) {
    const int m = phase_width(d, ph), n = phase_lanes(pl, m);
    if (ph == o || m == 0) continue;
    if (4 * m < 3 * n) return 0;
    lanes = n > lanes ? n : lanes;
  }
  /* a phase's loads reach lane (lanes - 1) + (s - 1 + kw - 1) / s of a phase of the copy; whole
   * vectors of 8 for the split */
  const int reach = lanes + (s + d->kw - 2) / s, all = (d->w + 2 * d->pw + s - 1) / s;
  pl->cs = s, pl->lq = ((reach > all ? reach : all) + 1 + 7) / 8 * 8, pl->lanes = lanes;
  return 1;
}

int pt__cpu_direct_takes(const pt_conv_desc *d, int all_cols, pt__cpu_direct_plan *plan) {
  if (!pt__cpu_direct_available() || d->groups != 1 || d->sh != 1 || d->sw != 1) return 0;
  const int wide = avx512_available();
  memset(plan, 0, sizeof *plan);
  plan->v = wide ? 16 : 8, plan->nco = wide ? 8 : 6, plan->px = 2 * plan->v;
  if (!all_cols) {
    if (d->perf_dir != PT_PERF_COLS || !cols_plan(d, plan)) return 0;
  } else {
    if (!(d->ow >= 16 || d->ow == 8)) return 0;
    /* row perforation on maps 8 wide: its rows are not pairs; im2col + an AVX-512 GEMM beat AVX2 there */
    if (wide && d->ow < 16 && d->perf_dir == PT_PERF_ROWS) return 0;
    plan->two_rows = d->ow == plan->v, plan->pairs = wide && d->ow == 8;
  }
  plan->chunk = chunk_channels(plan, d);
  return 1;
}

/* A padded input row: every micro-tile's pixels (one vector on maps one vector wide) plus the
 * filter's width. */
static int wpad_of(const pt__cpu_direct_plan *pl, const pt_conv_desc *d) {
  if (pl->cs) return pl->cs * pl->lq; /* the row's cs phases one after the other */
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
  /* column perforation: a micro-tile's outputs for every channel, and a padded row before its split */
  const int64_t cols = pl->cs ? (int64_t)d->cout * (pl->lanes > PX_MAX ? pl->lanes : PX_MAX) + wpad_of(pl, d) : 0;
  const int64_t offs = (int64_t)(pl->cs ? pl->cs : 1) * d->cin * d->kh * d->kw; /* column perforation: per phase */
  return input + offs + d->cin + 1 + NCO_MAX * PX_MAX + prow + cols + 16; /* + 16: alignment */
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
  /* column perforation: a tile reads each of the cs phases of a row over its lanes and a little more */
  const int phases = pl->cs ? pl->cs : 1, lw = pl->cs ? (pl->two_rows ? pl->v : pl->px) + (pl->cs + d->kw - 2) / pl->cs : width;
  const int per_channel = pl->pairs ? d->kw * (d->kh + 2) * 64 : rows * phases * ((lw + 15) / 16 + 1) * 64, half = l1_half();
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
 * zeros when iy is outside the input. In fp16 the copied values are rounded to binary16 here, so x
 * needs no rounded copy of its own (every row the kernel reads passes through this copy). */
static void pad_row(const pt_conv_desc *d, const float *x, int c, int iy, int width, float *dst) {
  if (iy < 0 || iy >= d->h) {
    memset(dst, 0, (size_t)width * sizeof *dst);
    return;
  }
  const int lo = d->pw < width ? d->pw : width, n = d->w < width - lo ? d->w : width - lo;
  memset(dst, 0, (size_t)lo * sizeof *dst);
  memcpy(dst + lo, x + ((int64_t)c * d->h + iy) * d->w, (size_t)n * sizeof *dst);
  if (d->fp16) pt_round_f16_array(dst + lo, (size_t)n);
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

/* Padded row p (2 x lq floats, lq a multiple of 8) into its even and odd columns, dst[0..lq) and
 * dst[lq..2 lq). */
__attribute__((target("avx2"))) static void split2(const float *p, int lq, float *dst) {
  for (int u = 0; u < lq; u += 8) {
    const __m256 a = _mm256_loadu_ps(p + 2 * u), b = _mm256_loadu_ps(p + 2 * u + 8);
    /* per 128-bit half: a0 a2 b0 b2 | a4 a6 b4 b6, then the halves' middle pairs swapped */
    _mm256_storeu_ps(dst + u, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8)));
    _mm256_storeu_ps(dst + lq + u,
                     _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8)));
  }
}

/* Column perforation: the block's input rows iy0.. (span of them) into xp (cin, span, cs, lq), each
 * padded row (through prow, cs x lq floats) split into its cs phases: phase q's element u is padded
 * column q + cs * u (input column q + cs * u - pw). */
static void pad_phases(const pt_conv_desc *d, const float *x, int iy0, int span, int cs, int lq, float *xp,
                       float *prow) {
  for (int c = 0; c < d->cin; c++)
    for (int r = 0; r < span; r++) {
      float *dst = xp + ((int64_t)c * span + r) * cs * lq;
      pad_row(d, x, c, iy0 + r, cs * lq, prow);
      if (cs == 2) {
        split2(prow, lq, dst);
        continue;
      }
      for (int q = 0; q < cs; q++)
        for (int u = 0; u < lq; u++) dst[q * lq + u] = prow[q + cs * u];
    }
}

/* Where each chunk of cb input channels starts among the nk kept elements krows (in channel order):
 * chunk[0..n), chunk[n] = nk; returns n. */
static int chunk_starts(const int *krows, int nk, int khw, int cb, int *chunk) {
  int n = 0;
  for (int t = 0; t < nk; t++)
    if (t == 0 || krows[t] / khw / cb != krows[t - 1] / khw / cb) chunk[n++] = t;
  chunk[n] = nk;
  return n;
}

/* One micro-tile's outputs for every channel group into ct (cout, ldo): chunk by chunk, every group
 * on the chunk's input lines while they are in L1 (see PT_DIRECT_MK for src, s2 and off). */
static void tile_all_channels(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const float *src, int64_t s2,
                              const int *off, const int *chunk, int nch, const float *wp, int nk, const float *bias,
                              float *ct, int64_t ldo) {
  const mk_fn *mk = pl->v == 16 ? MK5 : MK2;
  for (int q = 0; q < nch; q++) {
    const int t0 = chunk[q], n = chunk[q + 1] - t0;
    for (int c0 = 0; c0 < d->cout; c0 += pl->nco) {
      const int nc = d->cout - c0 < pl->nco ? d->cout - c0 : pl->nco;
      mk[nc](src, s2, off + t0, n, wp + (int64_t)c0 * nk + (int64_t)t0 * nc, bias ? bias + c0 : NULL, q > 0,
             ct + (int64_t)c0 * ldo, pl->v, ldo);
    }
  }
}

/* Binary16 rounding of 8 floats (F16C, to nearest even as pt_round_f16). */
__attribute__((target("avx2,f16c"))) static inline __m256 rd16x8(__m256 v) {
  return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* emit2's 8 pairs from t on: (o[2t], o[2t + 1]) = (mean(k[t-1], k[t]), k[t]) with off 0,
 * (k[t], mean(k[t], k[t+1])) with off 1; in fp16 (f16) the kept values rounded and the mean
 * round16(round16(a + b) * 0.5). */
__attribute__((target("avx2,f16c"))) static inline void pairs8(const float *k, int t, int off, int f16, float *o) {
  __m256 p = _mm256_loadu_ps(k + t - 1 + off), q = _mm256_loadu_ps(k + t + off);
  if (f16) p = rd16x8(p), q = rd16x8(q);
  __m256 mean = _mm256_add_ps(p, q);
  mean = f16 ? rd16x8(_mm256_mul_ps(rd16x8(mean), _mm256_set1_ps(0.5f))) : _mm256_mul_ps(mean, _mm256_set1_ps(0.5f));
  const __m256 a = off == 0 ? mean : p, b = off == 0 ? q : mean;
  const __m256 lo = _mm256_unpacklo_ps(a, b), hi = _mm256_unpackhi_ps(a, b);
  _mm256_storeu_ps(o + 2 * t, _mm256_permute2f128_ps(lo, hi, 0x20));
  _mm256_storeu_ps(o + 2 * t + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* The scalar mean of emit2. */
static inline float mean2(float a, float b, int f16) {
  return f16 ? pt_round_f16(pt_round_f16(pt_round_f16(a) + pt_round_f16(b)) * 0.5f) : (a + b) * 0.5f;
}

/* Stride-2 column perforation: output row o (ow floats) from its kept columns k[0..m) (x = ph + 2t,
 * ph = 1 - off), each skipped column the mean of its two neighbours, or at an edge its one
 * neighbour's copy (pt_km_perf_fill_src); (a + b) * 0.5 is (a + b) / 2 exactly. In fp16 (f16: the
 * CPU has F16C) the kept values are rounded and a mean is round16(round16(a + b) * 0.5), as the
 * epilogue would (cpu_conv.c). Pairs of 8 at a time, the last 8 overlapping the ones before
 * (rewriting the same values). */
__attribute__((target("avx2,f16c"))) static void emit2(const float *k, int m, int off, int ow, int f16, float *o) {
  int t = off == 0 ? 1 : 0;
  const int last = off == 0 ? m : m - 1; /* pairs t < last have both their values; off 1's last: below */
  const float k0 = f16 ? pt_round_f16(k[0]) : k[0], kl = f16 ? pt_round_f16(k[m - 1]) : k[m - 1];
  if (off == 0) { /* column 0, skipped: column 1's copy */
    o[0] = k0;
    if (ow > 1) o[1] = k0;
  }
  if (last - t >= 8) {
    for (; t + 8 <= last; t += 8) pairs8(k, t, off, f16, o);
    if (t < last) pairs8(k, last - 8, off, f16, o), t = last;
  }
  for (; t < last; t++) {
    const float kt = f16 ? pt_round_f16(k[t]) : k[t];
    if (off == 0) o[2 * t] = mean2(k[t - 1], k[t], f16), o[2 * t + 1] = kt;
    else o[2 * t] = kt, o[2 * t + 1] = mean2(k[t], k[t + 1], f16);
  }
  if (off == 1) { /* the last kept column, and after it the last column (skipped) its copy */
    o[2 * (m - 1)] = kl;
    if (2 * m - 1 < ow) o[2 * m - 1] = kl;
  } else if (2 * m < ow) {
    o[2 * m] = kl; /* the last column, skipped */
  }
}

/* F16C (fp16 roundings in vectors); clang 14 lacks __builtin_cpu_supports("f16c"), and its builds
 * (the fuzzing ones) take the scalar path. */
static int f16c_available(void) {
#ifndef __clang__
  return __builtin_cpu_supports("f16c");
#else
  return 0;
#endif
}

/* Column perforation's block: row by row (two on narrow maps), phase by phase (every residue but
 * the skipped one), its kept columns x = ph + cs * t computed as rows of their own from the
 * phase-split copy, each micro-tile through ct and then into its columns of y; with pl->fill the
 * finished rows' skipped columns filled while they are in cache (else the caller fills them); in
 * fp16 (pl->fill) the epilogue's work too: the rows rounded, filled, biased (bias: after the fill,
 * not in the accumulators) and rounded again. */
static void cols_block(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const int *krows, int nk,
                       const float *wp, const float *x, const int *rows, int nr, const float *bias, float *y,
                       float *scratch) {
  const int cs = pl->cs, lq = pl->lq, wpad = cs * lq, v = pl->v, px = pl->px, khw = d->kh * d->kw, two = pl->two_rows;
  const int span = rows[nr - 1] - rows[0] + d->kh;
  const int64_t P = (int64_t)d->oh * d->ow;
  float *xp = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
  int *off = (int *)(xp + (int64_t)d->cin * span * wpad), *chunk = off + (int64_t)cs * d->cin * khw;
  float *ct = (float *)(chunk + d->cin + 1) + NCO_MAX * PX_MAX;
  float *prow = ct + (int64_t)d->cout * (pl->lanes > PX_MAX ? pl->lanes : PX_MAX);
  pad_phases(d, x, rows[0] - d->ph, span, cs, lq, xp, prow);
  const int nch = chunk_starts(krows, nk, khw, pl->chunk, chunk);
  /* per phase: the padded column of output x = ph + cs * t under kernel column kj is ph + kj + cs * t */
  for (int ph = 0; ph < cs; ph++)
    for (int t = 0; t < nk; t++) {
      const int k = krows[t], c = k / khw, ki = k % khw / d->kw, kj = k % d->kw;
      off[(int64_t)ph * nk + t] = (c * span + ki) * wpad + (ph + kj) % cs * lq + (ph + kj) / cs;
    }
  const int64_t L = two ? px : pl->lanes; /* ct (cout, L): a row's kept columns of one phase (two rows: v each) */
  /* stride 2: the kept phase and the fill in one pass (in fp16 with F16C) */
  const int emit = pl->fill && cs == 2 && (!d->fp16 || f16c_available());
  for (int r = 0; r < nr; r += two ? 2 : 1) {
    /* one vector a row on narrow maps (the next computed row's in the second), else two */
    const int pair = two && r + 1 < nr;
    for (int ph = 0; ph < cs; ph++) {
      const int m = phase_width(d, ph);
      if (ph == d->perf_offset || m == 0) continue;
      for (int t0 = 0; t0 < m; t0 += px) {
        const int64_t s2 = two ? (int64_t)(pair ? rows[r + 1] - rows[r] : 0) * wpad : v;
        tile_all_channels(pl, d, xp + (int64_t)(rows[r] - rows[0]) * wpad + t0, s2, off + (int64_t)ph * nk, chunk, nch,
                          wp, nk, d->fp16 ? NULL : bias, ct + t0, L);
      }
      for (int c = 0; c < d->cout; c++)
        for (int k = 0; k <= pair; k++) {
          float *o = y + c * P + (int64_t)rows[r + k] * d->ow;
          const float *src = ct + c * L + k * v;
          if (emit) {
            emit2(src, m, d->perf_offset, d->ow, d->fp16, o);
          } else {
            for (int t = 0; t < m; t++) o[ph + (int64_t)cs * t] = src[t];
          }
        }
    }
    if (pl->fill && !emit)
      for (int c = 0; c < d->cout; c++)
        for (int k = 0; k <= pair; k++) pt__cpu_fill_cols_row(d, y + c * P + (int64_t)rows[r + k] * d->ow);
    if (d->fp16 && bias) /* fp16: the bias after the fill, then the final rounding */
      for (int c = 0; c < d->cout; c++)
        for (int k = 0; k <= pair; k++) {
          float *o = y + c * P + (int64_t)rows[r + k] * d->ow;
          for (int i = 0; i < d->ow; i++) o[i] += bias[c];
          pt_round_f16_array(o, (size_t)d->ow);
        }
  }
}

#endif

void pt__cpu_direct_block(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const int *krows, int nk,
                          const float *wp, const float *x, const int *rows, int nr, const float *bias, float *y,
                          float *scratch) {
#ifdef PT_DIRECT_X86
  if (pl->cs) {
    cols_block(pl, d, krows, nk, wp, x, rows, nr, bias, y, scratch);
    return;
  }
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
  for (int t = 0; t < nk; t++) {
    const int k = krows[t], c = k / khw, ki = k % khw / d->kw, kj = k % d->kw;
    off[t] = pl->pairs ? (int)((((int64_t)kj * d->cin + c) * nl + ki) * 16) : (c * span + ki) * wpad + kj;
  }
  const int nch = chunk_starts(krows, nk, khw, pl->chunk, chunk);
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
