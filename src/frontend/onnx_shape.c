/* ONNX import: constants and the shape arithmetic PyTorch exports around x.view(x.size(0), -1),
 * folded at import time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "frontend/onnx_internal.h"
#include "graph/graph_internal.h"

/* ---- shape arithmetic (what PyTorch exports for x.view(x.size(0), -1) with a dynamic batch:
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape), folded on integer constants. The batch size
 * is unknown at import, so Shape writes PT__OX_BATCH for it and only Reshape's first entry may hold it. */
static pt_status add_const_i(pt__ox_imp *im, int k, int rank, const int64_t *dims, const int64_t *v, int64_t n) {
  pt__ox_val *x = pt__ox_push(im, im->gp->node[k]->output[0]);
  if (!x || !(x->c.i = pt__malloc((size_t)(n ? n : 1) * sizeof *x->c.i))) return pt__ox_fail(im, k, PT_ENOMEM, "out of memory");
  x->is_const = 1;
  x->c.rank = rank;
  if (rank) memcpy(x->c.dims, dims, (size_t)rank * sizeof *dims);
  x->c.numel = n;
  if (n) memcpy(x->c.i, v, (size_t)n * sizeof *v);
  return PT_OK;
}

static pt_status int_const_in(pt__ox_imp *im, int k, int i, pt__ox_val **out) {
  *out = NULL;
  const char *nm = pt__ox_in_name(im->gp->node[k], i);
  pt__ox_val *x = pt__ox_find(im, nm);
  if (!x || !x->is_const || !x->c.i)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "input %d must be a constant of integers (shape arithmetic only)", i);
  *out = x;
  return PT_OK;
}

pt_status pt__ox_op_shape(pt__ox_imp *im, int k) {
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  int64_t v[PT_MAX_DIMS + 1], start, end, r = x->rank + 1;
  v[0] = PT__OX_BATCH;
  memcpy(v + 1, x->dims, (size_t)x->rank * sizeof *v);
  PT__TRY(pt__ox_attr_int(im, k, "start", 0, &start));
  PT__TRY(pt__ox_attr_int(im, k, "end", r, &end));
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < start ? start : end > r ? r : end;
  int64_t n = end - start;
  return add_const_i(im, k, 1, &n, v + start, n);
}

pt_status pt__ox_op_gather(pt__ox_imp *im, int k) {
  pt__ox_val *d, *ix;
  PT__TRY(int_const_in(im, k, 0, &d));
  PT__TRY(int_const_in(im, k, 1, &ix));
  int64_t axis;
  PT__TRY(pt__ox_attr_int(im, k, "axis", 0, &axis));
  if (d->c.rank != 1 || (axis != 0 && axis != -1) || ix->c.rank > 1)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "only gathering from a 1-D constant along axis 0");
  int64_t out[PT_MAX_DIMS];
  if (ix->c.numel > PT_MAX_DIMS) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "more than %d indices", PT_MAX_DIMS);
  for (int64_t i = 0; i < ix->c.numel; i++) {
    int64_t j = ix->c.i[i] < 0 ? ix->c.i[i] + d->c.numel : ix->c.i[i];
    if (j < 0 || j >= d->c.numel) return pt__ox_fail(im, k, PT_EFORMAT, "index %lld out of range", (long long)ix->c.i[i]);
    out[i] = d->c.i[j];
  }
  return add_const_i(im, k, ix->c.rank, ix->c.dims, out, ix->c.numel);
}

pt_status pt__ox_op_unsqueeze(pt__ox_imp *im, int k) {
  pt__ox_val *d, *ax = NULL;
  PT__TRY(int_const_in(im, k, 0, &d));
  int64_t axes[PT_MAX_DIMS];
  int n_axes = 0;
  const Onnx__AttributeProto *a = pt__ox_attr(im->gp->node[k], "axes");
  if (a) {
    if (a->n_ints > PT_MAX_DIMS) return pt__ox_fail(im, k, PT_EFORMAT, "too many axes");
    n_axes = (int)a->n_ints;
    if (n_axes) memcpy(axes, a->ints, (size_t)n_axes * sizeof *axes);
  } else {
    PT__TRY(int_const_in(im, k, 1, &ax));
    if (ax->c.numel > PT_MAX_DIMS) return pt__ox_fail(im, k, PT_EFORMAT, "too many axes");
    n_axes = (int)ax->c.numel;
    if (n_axes) memcpy(axes, ax->c.i, (size_t)n_axes * sizeof *axes);
  }
  const int r = d->c.rank + n_axes;
  if (r > PT_MAX_DIMS) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "result of rank %d", r);
  int64_t dims[PT_MAX_DIMS];
  int is_new[PT_MAX_DIMS] = {0};
  for (int i = 0; i < n_axes; i++) {
    int64_t x = axes[i] < 0 ? axes[i] + r : axes[i];
    if (x < 0 || x >= r || is_new[x]) return pt__ox_fail(im, k, PT_EFORMAT, "bad axis %lld", (long long)axes[i]);
    is_new[x] = 1;
  }
  for (int i = 0, j = 0; i < r; i++) dims[i] = is_new[i] ? 1 : d->c.dims[j++];
  return add_const_i(im, k, r, dims, d->c.i, d->c.numel);
}

pt_status pt__ox_op_concat(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  int64_t axis, v[64], len = 0;
  PT__TRY(pt__ox_attr_int(im, k, "axis", 0, &axis));
  for (size_t i = 0; i < n->n_input; i++) {
    pt__ox_val *x;
    PT__TRY(int_const_in(im, k, (int)i, &x));
    if (x->c.rank != 1 || (axis != 0 && axis != -1)) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "only 1-D constants along axis 0");
    if (len + x->c.numel > 64) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "more than 64 values");
    if (x->c.numel) memcpy(v + len, x->c.i, (size_t)x->c.numel * sizeof *v);
    len += x->c.numel;
  }
  return add_const_i(im, k, 1, &len, v, len);
}

/* Constant nodes hold no data input, so all of them are evaluated before the graph is walked. */
pt_status pt__ox_op_constant(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  if (n->n_output != 1 || n->n_attribute != 1) return pt__ox_fail(im, k, PT_EFORMAT, "needs one output and one attribute");
  const Onnx__AttributeProto *a = n->attribute[0];
  pt__onnx_array arr;
  memset(&arr, 0, sizeof arr);
  const char *an = a->name ? a->name : "";
  if (!strcmp(an, "value") && a->t) {
    PT__TRY(pt__onnx_tensor(a->t, im->what, &arr));
  } else if (!strcmp(an, "value_float") || !strcmp(an, "value_floats")) {
    int one = !strcmp(an, "value_float");
    arr.numel = one ? 1 : (int64_t)a->n_floats;
    arr.rank = one ? 0 : 1;
    arr.dims[0] = arr.numel;
    arr.f = pt__ox_copy_floats(one ? &a->f : a->floats, arr.numel);
    if (!arr.f) return pt__ox_fail(im, k, PT_ENOMEM, "out of memory");
  } else if (!strcmp(an, "value_int") || !strcmp(an, "value_ints")) {
    int one = !strcmp(an, "value_int");
    arr.numel = one ? 1 : (int64_t)a->n_ints;
    arr.rank = one ? 0 : 1;
    arr.dims[0] = arr.numel;
    arr.i = pt__malloc((size_t)(arr.numel ? arr.numel : 1) * sizeof *arr.i);
    if (!arr.i) return pt__ox_fail(im, k, PT_ENOMEM, "out of memory");
    if (arr.numel) memcpy(arr.i, one ? &a->i : a->ints, (size_t)arr.numel * sizeof *arr.i);
  } else {
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "attribute '%s'", an);
  }
  pt__ox_val *x = pt__ox_push(im, n->output[0]);
  if (!x) {
    pt__onnx_array_free(&arr);
    return pt__ox_fail(im, k, PT_ENOMEM, "out of memory");
  }
  x->is_const = 1;
  x->c = arr;
  return PT_OK;
}
