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
 * weight: enough independent FMAs to keep both FMA pipes busy. Rows under 16 pixels would leave
 * half the vectors idle; they stay on im2col + GEMM (measured: 8x8 maps are faster there). */
enum { NCO = 6, PX = 16 };

static int wpad_of(const pt_conv_desc *d) { return (d->ow + PX - 1) / PX * PX + d->kw - 1; }

int pt__cpu_direct_available(void) {
#ifdef PT_DIRECT_X86
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return 0;
#endif
}

int pt__cpu_direct_takes(const pt_conv_desc *d, int all_cols) {
  return pt__cpu_direct_available() && d->groups == 1 && d->sh == 1 && d->sw == 1 && all_cols && d->ow >= PX;
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
/* out[c * ldo + p] (c < C, p < 16) = bias[c] (0 without) + sum over the nk kept elements of
 * src[off[t] + p] * w[t][c]. */
#define PT_DIRECT_MK(C)                                                                                  \
  __attribute__((target("avx2,fma"))) static void mk_##C(const float *src, const int *off, int nk,        \
                                                         const float *w, const float *bias, float *out,   \
                                                         int64_t ldo) {                                   \
    __m256 acc[C][2];                                                                                    \
    _Pragma("GCC unroll 6") for (int c = 0; c < C; c++) {                                                \
      const __m256 b0 = bias ? _mm256_broadcast_ss(bias + c) : _mm256_setzero_ps();                      \
      acc[c][0] = acc[c][1] = b0;                                                                        \
    }                                                                                                    \
    for (int t = 0; t < nk; t++, w += C) {                                                               \
      const float *s = src + off[t];                                                                     \
      const __m256 x0 = _mm256_loadu_ps(s), x1 = _mm256_loadu_ps(s + 8);                                 \
      _Pragma("GCC unroll 6") for (int c = 0; c < C; c++) {                                              \
        const __m256 b = _mm256_broadcast_ss(w + c);                                                     \
        acc[c][0] = _mm256_fmadd_ps(x0, b, acc[c][0]);                                                   \
        acc[c][1] = _mm256_fmadd_ps(x1, b, acc[c][1]);                                                   \
      }                                                                                                  \
    }                                                                                                    \
    _Pragma("GCC unroll 6") for (int c = 0; c < C; c++) {                                                \
      _mm256_storeu_ps(out + c * ldo, acc[c][0]);                                                        \
      _mm256_storeu_ps(out + c * ldo + 8, acc[c][1]);                                                    \
    }                                                                                                    \
  }
PT_DIRECT_MK(1)
PT_DIRECT_MK(2)
PT_DIRECT_MK(3)
PT_DIRECT_MK(4)
PT_DIRECT_MK(5)
PT_DIRECT_MK(6)
typedef void (*mk_fn)(const float *, const int *, int, const float *, const float *, float *, int64_t);
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
  for (int r = 0; r < nr; r++) {
    const float *src = xp + (int64_t)(rows[r] - rows[0]) * wpad;
    for (int ox = 0; ox < d->ow; ox += px) {
      const int np = d->ow - ox < px ? d->ow - ox : px;
      for (int c0 = 0; c0 < d->cout; c0 += NCO) { /* the pixels' input lines stay in L1 over the channels */
        const int nc = d->cout - c0 < NCO ? d->cout - c0 : NCO;
        const float *bc = bias ? bias + c0 : NULL;
        float *o = y + (int64_t)c0 * P + (int64_t)rows[r] * d->ow + ox;
        if (np == px) {
          MK[nc](src + ox, off, nk, wp + (int64_t)c0 * nk, bc, o, P);
        } else { /* a row's last pixels: through a small tile */
          MK[nc](src + ox, off, nk, wp + (int64_t)c0 * nk, bc, tail, px);
          for (int l = 0; l < nc; l++) memcpy(o + l * P, tail + l * px, (size_t)np * sizeof *tail);
        }
      }
    }
  }
#else
  (void)d, (void)krows, (void)nk, (void)wp, (void)x, (void)rows, (void)nr, (void)bias, (void)y, (void)scratch;
#endif
}
