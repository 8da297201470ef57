/* Host tensors (f32 and f16, NCHW) and IEEE binary16 helpers. */
#ifndef PREDTUNER_TENSOR_H
#define PREDTUNER_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PT_MAX_DIMS 8

typedef enum pt_dtype { PT_F32 = 0, PT_F16 = 1 } pt_dtype;

typedef struct pt_tensor {
  pt_dtype dtype;
  int ndim;
  int64_t shape[PT_MAX_DIMS]; /* row-major; activations are (N, C, H, W) or (N, F) */
  void *data;                 /* f32: float*, f16: uint16_t* (binary16 bits) */
  int owns_data;              /* pt_tensor_free releases data only when set */
} pt_tensor;

size_t pt_dtype_size(pt_dtype dt);
const char *pt_dtype_name(pt_dtype dt);
int64_t pt_shape_numel(int ndim, const int64_t *shape);
int64_t pt_tensor_numel(const pt_tensor *t);
/* Zero-filled tensor that owns its data. Negative dims or a size overflow is PT_EINVAL. */
pt_status pt_tensor_alloc(pt_tensor *t, pt_dtype dt, int ndim, const int64_t *shape);
void pt_tensor_free(pt_tensor *t);
/* Converts any tensor into a new owning tensor of dtype dt. */
pt_status pt_tensor_convert(const pt_tensor *src, pt_dtype dt, pt_tensor *dst);
/* "[32,1,5,5]" into buf (always NUL-terminated). Returns buf. */
char *pt_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);

/* binary16 with round-to-nearest-even (bit-identical to GCC's _Float16 and CUDA's __half). */
uint16_t pt_f32_to_f16(float f);
float pt_f16_to_f32(uint16_t h);
float pt_bf16_to_f32(uint16_t b);
/* x rounded to the nearest binary16 value, returned as float. */
float pt_round_f16(float x);
void pt_round_f16_array(float *x, size_t n);

#ifdef __cplusplus
}
#endif
#endif
