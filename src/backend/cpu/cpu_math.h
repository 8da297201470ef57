/* Elementwise functions the CPU backend applies to whole tensors, written so the compiler vectorises
 * them: no libm call and no branch per element (both sides are computed and one is selected).
 * tanh: Cephes' single-precision tanhf (an odd polynomial below 0.625, 1 - 2 / (e^2|x| + 1) above),
 * with Cephes' expf (range reduction by ln 2 in two parts, a degree-5 polynomial, the exponent put
 * into the bits); within 2 ulp of the true value (tests/test_ops.c checks a sweep against tanh in
 * double). libm's tanhf was 43 % of alexnet2's inference time. */
#ifndef PT_CPU_MATH_H
#define PT_CPU_MATH_H

#include <stdint.h>
#include <string.h>

/* e^x for x in [-87, 88] (callers clamp). */
static inline float pt__cpu_expf(float x) {
  const float t = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds x / ln 2 to an integer */
  const float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float z = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * z + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline float pt__cpu_tanhf(float x) {
  const float a = x < 0 ? -x : x, s = x * x;
  float small = -5.70498872745e-3f;
  small = small * s + 2.06390887954e-2f;
  small = small * s - 5.37397155531e-2f;
  small = small * s + 1.33314422036e-1f;
  small = small * s - 3.33332819422e-1f;
  small = small * s * x + x;
  const float c = a < 10.0f ? a : 10.0f; /* tanh(x) rounds to 1 from 9.02 on */
  float big = 1.0f - 2.0f / (pt__cpu_expf(2.0f * c) + 1.0f);
  big = x < 0 ? -big : big;
  const float r = a < 0.625f ? small : big;
  return x != x || x == 0 ? x : r; /* NaN stays NaN, -0 stays -0 */
}

#endif
