/* binary16 conversion. The bit-twiddling version is the portable definition; where the compiler
 * has _Float16 a test checks that both agree bit for bit; arrays use F16C instructions when the
 * CPU has them (same rounding, 8 values at a time). */
#include <string.h>

#include "predtuner/tensor.h"

uint16_t pt_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) /* inf or NaN (NaN stays a quiet NaN) */
    return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u | ((ax >> 13) & 0x3ffu) : 0u));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
  if (ax < 0x38800000u) {                                    /* below 2^-14: half subnormal */
    if (ax <= 0x33000000u) return (uint16_t)sign;            /* <= 2^-25 ties to even zero */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24: value / 2^-24 = m >> shift */
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return (uint16_t)(sign | q);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u); /* round the 13 dropped bits to even */
  r -= 0x38000000u;                               /* exponent bias 127 -> 15 */
  return (uint16_t)(sign | (r >> 13));
}

float pt_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
  if (e == 0) {
    if (m == 0) {
      x = sign;
    } else { /* subnormal: normalise */
      e = 113;
      while (!(m & 0x400u)) {
        m <<= 1;
        e--;
      }
      x = sign | (e << 23) | ((m & 0x3ffu) << 13);
    }
  } else if (e == 31) {
    x = sign | 0x7f800000u | (m << 13);
  } else {
    x = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  memcpy(&f, &x, 4);
  return f;
}

float pt_bf16_to_f32(uint16_t b) {
  uint32_t x = (uint32_t)b << 16;
  float f;
  memcpy(&f, &x, 4);
  return f;
}

float pt_round_f16(float x) {
  /* integer-only: faster than _Float16 casts, which call libgcc without -mf16c */
  return pt_f16_to_f32(pt_f32_to_f16(x));
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) /* clang 14 lacks __builtin_cpu_supports("f16c") */
#include <immintrin.h>
/* F16C converts 8 values per instruction with the same round-to-nearest-even; picked at run time. */
__attribute__((target("avx,f16c"))) static void pt__round_f16_f16c(float *x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) x[i] = pt_round_f16(x[i]);
}
#define PT__HAVE_F16C_PATH 1
#endif

void pt_round_f16_array(float *x, size_t n) {
#ifdef PT__HAVE_F16C_PATH
  static int has_f16c = -1;
  if (has_f16c < 0) has_f16c = __builtin_cpu_supports("f16c") && __builtin_cpu_supports("avx");
  if (has_f16c) {
    pt__round_f16_f16c(x, n);
    return;
  }
#endif
  for (size_t i = 0; i < n; i++) x[i] = pt_round_f16(x[i]);
}
