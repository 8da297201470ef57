/* ONNX import internals: the protobuf-c structs generated at build time from Debian's onnx.proto. */
#ifndef PT_FRONTEND_ONNX_INTERNAL_H
#define PT_FRONTEND_ONNX_INTERNAL_H

#include <stdint.h>

#include "onnx.pb-c.h"
#include "predtuner/frontend.h"

/* A constant tensor: float-like data as f32 (f) or integer data as int64 (i); one of them is set. */
typedef struct pt__onnx_array {
  int rank;
  int64_t dims[PT_MAX_DIMS];
  int64_t numel;
  float *f;
  int64_t *i;
} pt__onnx_array;

/* Converts t (FLOAT, FLOAT16, DOUBLE -> f; INT32, INT64 -> i); errors name `what` and the tensor. */
pt_status pt__onnx_tensor(const Onnx__TensorProto *t, const char *what, pt__onnx_array *out);
void pt__onnx_array_free(pt__onnx_array *a);
const char *pt__onnx_dtype_name(int32_t t);

#endif
