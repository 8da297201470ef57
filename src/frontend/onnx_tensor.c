/* onnx.TensorProto -> host arrays: float-like types to float32, integer types to int64. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "frontend/onnx_internal.h"

static size_t elem_size(int32_t t) {
  switch (t) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: return 4;
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: return 2;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: return 8;
    default: return 0;
  }
}

const char *pt__onnx_dtype_name(int32_t t) {
  static const char *const names[] = {"UNDEFINED", "FLOAT", "UINT8",  "INT8",   "UINT16",    "INT16",
                                      "INT32",     "INT64", "STRING", "BOOL",   "FLOAT16",   "DOUBLE",
                                      "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  return t >= 0 && t < (int32_t)(sizeof names / sizeof *names) ? names[t] : "unknown";
}

pt_status pt__onnx_tensor(const Onnx__TensorProto *t, const char *what, pt__onnx_array *out) {
  memset(out, 0, sizeof *out);
  const char *nm = t->name ? t->name : "";
  if (t->n_dims > PT_MAX_DIMS)
    return pt__error(PT_EUNSUPPORTED, "%s: tensor '%s' has %zu dimensions (at most %d)", what, nm, t->n_dims, PT_MAX_DIMS);
  int64_t numel = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] && numel > INT64_MAX / 8 / t->dims[i]))
      return pt__error(PT_EFORMAT, "%s: tensor '%s' has a bad dimension %lld", what, nm, (long long)t->dims[i]);
    numel *= t->dims[i];
    out->dims[i] = t->dims[i];
  }
  out->rank = (int)t->n_dims;
  out->numel = numel;
  if (t->n_external_data || (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
    return pt__error(PT_EUNSUPPORTED, "%s: tensor '%s' keeps its data in an external file (save the model with all tensors inside it)",
                     what, nm);
  if (t->segment) return pt__error(PT_EUNSUPPORTED, "%s: tensor '%s' is segmented", what, nm);
  const int32_t dt = t->has_data_type ? t->data_type : 0;
  const size_t es = elem_size(dt);
  if (!es)
    return pt__error(PT_EUNSUPPORTED, "%s: tensor '%s' has element type %s (FLOAT, FLOAT16, DOUBLE, INT32 or INT64 expected)",
                     what, nm, pt__onnx_dtype_name(dt));
  size_t have;
  if (t->has_raw_data) have = t->raw_data.len / es;
  else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) have = t->n_float_data;
  else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) have = t->n_double_data;
  else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) have = t->n_int64_data;
  else have = t->n_int32_data; /* INT32 and FLOAT16 (one uint16 per int32) */
  if ((t->has_raw_data && t->raw_data.len % es) || (int64_t)have != numel)
    return pt__error(PT_EFORMAT, "%s: tensor '%s' has %zu %s values for %lld elements", what, nm,
                     t->has_raw_data ? t->raw_data.len / es : have, pt__onnx_dtype_name(dt), (long long)numel);
  const int is_int = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 || dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
  void *buf = pt__malloc((size_t)(numel ? numel : 1) * (is_int ? sizeof(int64_t) : sizeof(float)));
  if (!buf) return pt__error(PT_ENOMEM, "%s: tensor '%s': out of memory", what, nm);
  const uint8_t *raw = t->has_raw_data ? t->raw_data.data : NULL;
  for (int64_t i = 0; i < numel; i++) {
    switch (dt) {
      case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: {
        float v;
        if (raw) memcpy(&v, raw + 4 * i, 4);
        else v = t->float_data[i];
        ((float *)buf)[i] = v;
        break;
      }
      case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16: {
        uint16_t h;
        if (raw) memcpy(&h, raw + 2 * i, 2);
        else h = (uint16_t)t->int32_data[i];
        ((float *)buf)[i] = pt_f16_to_f32(h);
        break;
      }
      case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
        double v;
        if (raw) memcpy(&v, raw + 8 * i, 8);
        else v = t->double_data[i];
        ((float *)buf)[i] = (float)v;
        break;
      }
      case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: {
        int64_t v;
        if (raw) memcpy(&v, raw + 8 * i, 8);
        else v = t->int64_data[i];
        ((int64_t *)buf)[i] = v;
        break;
      }
      default: { /* INT32 */
        int32_t v;
        if (raw) memcpy(&v, raw + 4 * i, 4);
        else v = t->int32_data[i];
        ((int64_t *)buf)[i] = v;
        break;
      }
    }
  }
  if (is_int) out->i = buf;
  else out->f = buf;
  return PT_OK;
}

void pt__onnx_array_free(pt__onnx_array *a) {
  free(a->f);
  free(a->i);
  a->f = NULL;
  a->i = NULL;
}

pt_status pt_onnx_read_tensor(const void *data, size_t len, const char *what, pt_tensor *out) {
  memset(out, 0, sizeof *out);
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, data);
  if (!t) return pt__error(PT_EFORMAT, "%s: not a serialized onnx.TensorProto (truncated or garbage)", what);
  pt__onnx_array a;
  pt_status s = pt__onnx_tensor(t, what, &a);
  onnx__tensor_proto__free_unpacked(t, NULL);
  if (s != PT_OK) return s;
  if (!a.f) {
    pt__onnx_array_free(&a);
    return pt__error(PT_EUNSUPPORTED, "%s: an integer tensor where floats were expected", what);
  }
  out->dtype = PT_F32;
  out->ndim = a.rank;
  memcpy(out->shape, a.dims, sizeof a.dims);
  out->data = a.f;
  out->owns_data = 1;
  return PT_OK;
}
