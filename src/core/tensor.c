#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/tensor.h"

size_t pt_dtype_size(pt_dtype dt) { return dt == PT_F16 ? 2 : 4; }
const char *pt_dtype_name(pt_dtype dt) { return dt == PT_F16 ? "F16" : "F32"; }

int64_t pt_shape_numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  return n;
}

int64_t pt_tensor_numel(const pt_tensor *t) { return pt_shape_numel(t->ndim, t->shape); }

pt_status pt_tensor_alloc(pt_tensor *t, pt_dtype dt, int ndim, const int64_t *shape) {
  memset(t, 0, sizeof *t);
  if (ndim < 0 || ndim > PT_MAX_DIMS) return pt__error(PT_EINVAL, "tensor: %d dimensions (max %d)", ndim, PT_MAX_DIMS);
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return pt__error(PT_EINVAL, "tensor: negative dimension %lld", (long long)shape[i]);
    if (shape[i] > 0 && n > INT64_MAX / 8 / shape[i]) return pt__error(PT_EINVAL, "tensor: size overflow");
    n *= shape[i];
    t->shape[i] = shape[i];
  }
  t->dtype = dt;
  t->ndim = ndim;
  t->data = pt__calloc(n > 0 ? (size_t)n : 1, pt_dtype_size(dt));
  if (!t->data) return pt__error(PT_ENOMEM, "tensor: cannot allocate %lld elements", (long long)n);
  t->owns_data = 1;
  return PT_OK;
}

void pt_tensor_free(pt_tensor *t) {
  if (t->owns_data) free(t->data);
  t->data = NULL;
  t->owns_data = 0;
}

pt_status pt_tensor_convert(const pt_tensor *src, pt_dtype dt, pt_tensor *dst) {
  PT__TRY(pt_tensor_alloc(dst, dt, src->ndim, src->shape));
  int64_t n = pt_tensor_numel(src);
  if (src->dtype == dt) {
    memcpy(dst->data, src->data, (size_t)n * pt_dtype_size(dt));
  } else if (dt == PT_F32) {
    const uint16_t *s = src->data;
    float *d = dst->data;
    for (int64_t i = 0; i < n; i++) d[i] = pt_f16_to_f32(s[i]);
  } else {
    const float *s = src->data;
    uint16_t *d = dst->data;
    for (int64_t i = 0; i < n; i++) d[i] = pt_f32_to_f16(s[i]);
  }
  return PT_OK;
}

char *pt_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  size_t at = 0;
  if (n == 0) return buf;
  buf[0] = '\0';
  at += (size_t)snprintf(buf + at, n - at, "[");
  for (int i = 0; i < ndim && at < n; i++)
    at += (size_t)snprintf(buf + at, n - at, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (at < n) snprintf(buf + at, n - at, "]");
  return buf;
}
