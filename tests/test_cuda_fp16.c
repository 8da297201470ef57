/* GPU check: CUDA's __float2half_rn gives the same bits as pt_f32_to_f16, the rounding the CPU
 * backend uses for every fp16 knob. Skipped, with the reason, where there is no GPU. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_check.h"
#include "predtuner/tensor.h"

Test(cuda, f32_to_f16_matches_cpu_bit_for_bit) {
  const char *why = "";
  if (pt__cuda_device_count(&why) == 0) cr_skip_test("no GPU: %s", why);
  const size_t n = (size_t)1 << 24;
  float *x = malloc(n * sizeof *x);
  uint16_t *y = malloc(n * sizeof *y);
  for (size_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)(i * 255u + (i >> 7)); /* spread over all exponents */
    memcpy(&x[i], &u, 4);
  }
  cr_assert_eq(pt__cuda_f32_to_f16(x, y, n), PT_OK, "%s", pt_last_error());
  for (size_t i = 0; i < n; i++) {
    if (isnan(x[i])) continue;
    cr_assert_eq(y[i], pt_f32_to_f16(x[i]), "value %a", x[i]);
  }
  free(x);
  free(y);
}
