/* A direct convolution over the kept filter elements (AVX2 + FMA), for the CPU backend's GEMM path:
 * where im2col + OpenBLAS copy the input twice (the im2col matrix, then the GEMM's own packing of
 * it), this reads a zero-padded copy of the block's input rows and accumulates 6 output channels x
 * 16 output pixels in 12 vector registers, two loads and six broadcasts per kept element. So
 * sampling's shrunken reduction costs only its multiply-adds. Used for stride-1 convolutions whose
 * output columns are all computed (exact rows or row perforation, with or without sampling), on
 * CPUs with AVX2 and FMA; the caller (cpu_conv.c) keeps im2col + GEMM otherwise. */
#include "backend/cpu/cpu_internal.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define PT_DIRECT_X86 1
#endif

/* A micro-tile: NCO output channels x PX consecutive output pixels of one row, accumulated in 12
 * vector registers, each kept element two vector loads of the padded input and NCO broadcasts of a
 * weight: enough independent FMAs to keep both FMA pipes busy. Maps 8 wide put two rows in a
 * micro-tile; other rows under 16 pixels would leave vectors idle and stay on im2col + GEMM. */
enum { NCO = 6, PX = 16 };

static int wpad_of(const pt_conv_desc *d) { return (d->ow + PX - 1) / PX * PX + d->kw - 1; }
/* Maps 8 wide take two rows a micro-tile. */
static int two_rows(const pt_conv_desc *d) { return d->ow == 8; }

int pt__cpu_direct_available(void) {
#ifdef PT_DIRECT_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

int pt__cpu_direct_takes(const pt_conv_desc *d, int all_cols) {
  return pt__cpu_direct_available() && d->groups == 1 && d->sh == 1 && d->sw == 1 && all_cols &&
         (d->ow >= PX || d->ow == 8);
}

int64_t pt__cpu_direct_packed_size(const pt_conv_desc *d, int nk) { return (int64_t)d->cout * nk; }

/* w (cout, nk) -> wp: blocks of NCO channels (the last one shorter), each (nk, block). */
void pt__cpu_direct_pack(const pt_conv_desc *d, const float *w, int nk, float *wp) {
  for (int c0 = 0; c0 < d->cout; c0 += NCO) {
    const int nc = d->cout - c0 < NCO ? d->cout - c0 : NCO;
    float *dst = wp + (int64_t)c0 * nk;
    for (int t = 0; t < nk; t++)
      for (int l = 0; l < nc; l++) dst[(int64_t)t * nc + l] = w[(int64_t)(c0 + l) * nk + t];
  }
}

int64_t pt__cpu_direct_scratch(const pt_conv_desc *d) {
  return (int64_t)d->cin * (d->oh + d->kh) * wpad_of(d) + (int64_t)d->cin * d->kh * d->kw + NCO * PX;
}

#ifdef PT_DIRECT_X86
/* Two vectors of 8 pixels, the second s2 floats after the first in the input and o2 after it in
 * the output (the same row's next 8, or the next row's 8 on maps 8 wide): out[c * ldo + p] and
 * out[c * ldo + o2 + p] (c < C, p < 8) = bias[c] (0 without) + the sum over the nk kept elements of
 * src[off[t] + p] (+ s2) * w[t][c]. */
#define PT_DIRECT_MK(C)                                                                                  \
  __attribute__((target("avx2,fma"))) static void mk_##C(const float *src, int64_t s2, const int *off,    \
                                                         int nk, const float *w, const float *bias,       \
                                                         float *out, int64_t o2, int64_t ldo) {           \
    __m256 acc[C][2];                                                                                    \
    _Pragma("GCC unroll 6") for (int c = 0; c < C; c++) {                                                \
      const __m256 b0 = bias ? _mm256_broadcast_ss(bias + c) : _mm256_setzero_ps();                      \
      acc[c][0] = acc[c][1] = b0;                                                                        \
    }                                                                                                    \
    for (int t = 0; t < nk; t++, w += C) {                                                               \
      const float *s = src + off[t];                                                                     \
      const __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + s2);                                \
      _Pragma("GCC unroll 6") for (int c = 0; c < C; c++) {                                              \
        const __m256 b = _mm256_broadcast_ss(w + c);                                                     \
        acc[c][0] = _mm256_fmadd_ps(x0, b, acc[c][0]);                                                   \
        acc[c][1] = _mm256_fmadd_ps(x1, b, acc[c][1]);                                                   \
      }                                                                                                  \
    }                                                                                                    \
    _Pragma("GCC unroll 6") for (int c = 0; c < C; c++) {                                                \
      _mm256_storeu_ps(out + c * ldo, acc[c][0]);                                                        \
      _mm256_storeu_ps(out + c * ldo + o2, acc[c][1]);                                                   \
    }                                                                                                    \
  }
PT_DIRECT_MK(1)
PT_DIRECT_MK(2)
PT_DIRECT_MK(3)
PT_DIRECT_MK(4)
PT_DIRECT_MK(5)
PT_DIRECT_MK(6)
typedef void (*mk_fn)(const float *, int64_t, const int *, int, const float *, const float *, float *, int64_t,
                      int64_t);
static const mk_fn MK[NCO + 1] = {0, mk_1, mk_2, mk_3, mk_4, mk_5, mk_6};
#endif

void pt__cpu_direct_block(const pt_conv_desc *d, const int *krows, int nk, const float *wp, const float *x,
                          const int *rows, int nr, const float *bias, float *y, float *scratch) {
#ifdef PT_DIRECT_X86
  const int wpad = wpad_of(d), px = PX, iy0 = rows[0] - d->ph;
  const int span = rows[nr - 1] - rows[0] + d->kh, khw = d->kh * d->kw;
  const int64_t P = (int64_t)d->oh * d->ow;
  float *xp = scratch;
  int *off = (int *)(scratch + (int64_t)d->cin * span * wpad);
  float *tail = scratch + (int64_t)d->cin * span * wpad + (int64_t)d->cin * khw;
  /* the block's input rows, zero-padded: column 0 of xp is input column -pw */
  for (int c = 0; c < d->cin; c++)
    for (int r = 0; r < span; r++) {
      float *dst = xp + ((int64_t)c * span + r) * wpad;
      const int iy = iy0 + r;
      if (iy < 0 || iy >= d->h) {
        memset(dst, 0, (size_t)wpad * sizeof *dst);
        continue;
      }
      const int lo = d->pw, n = d->w < wpad - lo ? d->w : wpad - lo;
      memset(dst, 0, (size_t)lo * sizeof *dst);
      memcpy(dst + lo, x + ((int64_t)c * d->h + iy) * d->w, (size_t)n * sizeof *dst);
      memset(dst + lo + n, 0, (size_t)(wpad - lo - n) * sizeof *dst);
    }
  for (int t = 0; t < nk; t++) {
    const int k = krows[t], c = k / khw, ki = k % khw / d->kw, kj = k % d->kw;
    off[t] = (c * span + ki) * wpad + kj;
  }
  for (int r = 0; r < nr; r += two_rows(d) ? 2 : 1) {
    const float *src = xp + (int64_t)(rows[r] - rows[0]) * wpad;
    /* the second vector: the row's next 8 pixels, or the next computed row's 8 (none after the last
     * row: it repeats the first, and only the first is kept) */
    const int pair = two_rows(d) && r + 1 < nr, dr = pair ? rows[r + 1] - rows[r] : 0;
    const int64_t s2 = two_rows(d) ? (int64_t)dr * wpad : 8, o2 = two_rows(d) ? (int64_t)dr * d->ow : 8;
    for (int ox = 0; ox < d->ow; ox += px) {
      const int np = two_rows(d) ? 8 : d->ow - ox < px ? d->ow - ox : px, full = two_rows(d) ? pair : np == px;
      for (int c0 = 0; c0 < d->cout; c0 += NCO) { /* the pixels' input lines stay in L1 over the channels */
        const int nc = d->cout - c0 < NCO ? d->cout - c0 : NCO;
        const float *bc = bias ? bias + c0 : NULL, *wk = wp + (int64_t)c0 * nk;
        float *o = y + (int64_t)c0 * P + (int64_t)rows[r] * d->ow + ox;
        if (full) {
          MK[nc](src + ox, s2, off, nk, wk, bc, o, o2, P);
        } else { /* a row's last pixels, or an 8-wide map's last row: through a small tile */
          MK[nc](src + ox, s2, off, nk, wk, bc, tail, 8, px);
          for (int l = 0; l < nc; l++) memcpy(o + l * P, tail + l * px, (size_t)np * sizeof *tail);
        }
      }
    }
  }
#else
  (void)d, (void)krows, (void)nk, (void)wp, (void)x, (void)rows, (void)nr, (void)bias, (void)y, (void)scratch;
#endif
}
