/* ONNX import: the importer's table of values, node attributes and inputs, and the helpers the op
 * converters share (onnx.c drives the import; onnx_ops.c and onnx_shape.c convert the ops). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "frontend/onnx_internal.h"
#include "graph/graph_internal.h"

/* "<file>: node '<name>' (<op>): <msg>" */
pt_status pt__ox_fail(pt__ox_imp *im, int k, pt_status s, const char *fmt, ...) PT__PRINTF(4, 5);
pt_status pt__ox_fail(pt__ox_imp *im, int k, pt_status s, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Onnx__NodeProto *n = im->gp->node[k];
  return pt__error(s, "%s: node '%s' (%s): %s", im->what, im->names[k], n->op_type ? n->op_type : "?", msg);
}

/* protobuf-c leaves unset optional strings NULL */
const char *pt__ox_str(const char *s) { return s ? s : ""; }

pt__ox_val *pt__ox_find(pt__ox_imp *im, const char *name) {
  if (!name || !*name) return NULL;
  for (int i = im->nv - 1; i >= 0; i--)
    if (!strcmp(im->v[i]->name, name)) return im->v[i];
  return NULL;
}

pt__ox_val *pt__ox_push(pt__ox_imp *im, const char *name) {
  if (im->nv == im->cap) {
    int cap = im->cap ? 2 * im->cap : 64;
    pt__ox_val **nv = pt__realloc(im->v, (size_t)cap * sizeof *nv);
    if (!nv) return NULL;
    im->v = nv;
    im->cap = cap;
  }
  pt__ox_val *x = pt__calloc(1, sizeof *x);
  if (!x) return NULL;
  im->v[im->nv++] = x;
  x->name = name;
  return x;
}

pt_status pt__ox_add_act(pt__ox_imp *im, int k, const char *name, int node, int rank, const int64_t *dims) {
  pt__ox_val *x = pt__ox_push(im, name);
  if (!x) return pt__ox_fail(im, k, PT_ENOMEM, "out of memory");
  x->node = node;
  x->rank = rank;
  if (rank) memcpy(x->dims, dims, (size_t)rank * sizeof *dims);
  return PT_OK;
}

/* The IR shape of a computed value. */
int pt__ox_ir_ndim(const pt__ox_imp *im, const pt__ox_val *x) { return x->node < 0 ? 3 : im->g->nodes[x->node].out_ndim; }

/* A new IR node's output as a computed value with its IR shape as the per-image shape. */
pt_status pt__ox_add_node_out(pt__ox_imp *im, int k, int node) {
  if (node < 0) return pt__ox_fail(im, k, im->g->err ? im->g->err : PT_EINVAL, "%s", im->g->errmsg);
  const pt_node *n = &im->g->nodes[node];
  return pt__ox_add_act(im, k, im->gp->node[k]->output[0], node, n->out_ndim, n->out_shape);
}

/* ---- attributes ---- */

const Onnx__AttributeProto *pt__ox_attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
  return NULL;
}

pt_status pt__ox_attr_int(pt__ox_imp *im, int k, const char *name, int64_t def, int64_t *out) {
  const Onnx__AttributeProto *a = pt__ox_attr(im->gp->node[k], name);
  *out = def;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) return pt__ox_fail(im, k, PT_EFORMAT, "attribute %s is not an int", name);
  *out = a->i;
  return PT_OK;
}

pt_status pt__ox_attr_float(pt__ox_imp *im, int k, const char *name, float def, float *out) {
  const Onnx__AttributeProto *a = pt__ox_attr(im->gp->node[k], name);
  *out = def;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) return pt__ox_fail(im, k, PT_EFORMAT, "attribute %s is not a float", name);
  *out = a->f;
  return PT_OK;
}

/* ints attribute of exactly n values (n_out: 0 when absent). */
pt_status pt__ox_attr_ints(pt__ox_imp *im, int k, const char *name, int n, int64_t *vals, int *present) {
  const Onnx__AttributeProto *a = pt__ox_attr(im->gp->node[k], name);
  *present = 0;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) return pt__ox_fail(im, k, PT_EFORMAT, "attribute %s is not a list of ints", name);
  if (a->n_ints != (size_t)n)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "attribute %s has %zu values (%d expected: 2-D only)", name, a->n_ints, n);
  if (n) memcpy(vals, a->ints, (size_t)n * sizeof *vals); /* protobuf-c leaves an empty list NULL */
  *present = 1;
  return PT_OK;
}

/* String attribute into buf ("" when absent). */
pt_status pt__ox_attr_str(pt__ox_imp *im, int k, const char *name, char *buf, size_t cap) {
  const Onnx__AttributeProto *a = pt__ox_attr(im->gp->node[k], name);
  buf[0] = 0;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) return pt__ox_fail(im, k, PT_EFORMAT, "attribute %s is not a string", name);
  size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
  if (n) memcpy(buf, a->s.data, n); /* an empty string's data may be NULL */
  buf[n] = 0;
  return PT_OK;
}

/* ---- inputs ---- */

const char *pt__ox_in_name(const Onnx__NodeProto *n, int i) {
  return (size_t)i < n->n_input && n->input[i] && n->input[i][0] ? n->input[i] : NULL;
}

pt_status pt__ox_act_in(pt__ox_imp *im, int k, int i, pt__ox_val **out) {
  const char *nm = pt__ox_in_name(im->gp->node[k], i);
  pt__ox_val *x = pt__ox_find(im, nm);
  if (!nm) return pt__ox_fail(im, k, PT_EFORMAT, "input %d is missing", i);
  if (!x) return pt__ox_fail(im, k, PT_EFORMAT, "input '%s' is not defined before the node", nm);
  if (x->is_const)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "input '%s' is a constant (only values computed from the data input)", nm);
  const char *t = pt__ox_str(im->gp->node[k]->op_type);
  if ((x->pad_h || x->pad_w) && strcmp(t, "Conv") && strcmp(t, "AveragePool"))
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "reads a padded tensor (a Pad is supported only before Conv or AveragePool)");
  *out = x;
  return PT_OK;
}

/* A float constant input; optional: NULL when absent. */
pt_status pt__ox_const_in(pt__ox_imp *im, int k, int i, int optional, pt__ox_val **out) {
  const char *nm = pt__ox_in_name(im->gp->node[k], i);
  *out = NULL;
  if (!nm) return optional ? PT_OK : pt__ox_fail(im, k, PT_EFORMAT, "input %d is missing", i);
  pt__ox_val *x = pt__ox_find(im, nm);
  if (!x) return pt__ox_fail(im, k, PT_EFORMAT, "input '%s' is not defined before the node", nm);
  if (!x->is_const)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "input '%s' must be a constant (an initializer) but is computed", nm);
  *out = x;
  return PT_OK;
}

pt_status pt__ox_need_float(pt__ox_imp *im, int k, const pt__ox_val *c) {
  return c->c.f ? PT_OK : pt__ox_fail(im, k, PT_EUNSUPPORTED, "constant '%s' has integer elements", c->name);
}

/* The IR node to read x as (batch, features): flattens an (F, 1, 1) network input view. */
pt_status pt__ox_as_features(pt__ox_imp *im, int k, const pt__ox_val *x, int *node) {
  if (x->rank != 1) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "expects a (batch, features) input, got rank %d", x->rank + 1);
  *node = x->node;
  if (pt__ox_ir_ndim(im, x) == 1) return PT_OK;
  *node = pt__g_flatten(im->g, x->node);
  return *node < 0 ? pt__ox_fail(im, k, im->g->err, "%s", im->g->errmsg) : PT_OK;
}

float *pt__ox_copy_floats(const float *src, int64_t n) {
  float *d = pt__malloc((size_t)(n ? n : 1) * sizeof *d);
  if (d && n) memcpy(d, src, (size_t)n * sizeof *d);
  return d;
}

pt_status pt__ox_set_param(pt__ox_imp *im, int k, int node, int slot, float *data) {
  if (!data) return pt__ox_fail(im, k, PT_ENOMEM, "out of memory");
  pt_param *p = &im->g->params[im->g->nodes[node].param[slot]];
  free(p->data);
  p->data = data;
  return PT_OK;
}

pt_status pt__ox_shape_str_fail(pt__ox_imp *im, int k, const char *what, const pt__ox_val *c) {
  char sh[96];
  pt_shape_str(sh, sizeof sh, c->c.rank, c->c.dims);
  return pt__ox_fail(im, k, PT_ESHAPE, "%s '%s' has shape %s", what, c->name, sh);
}

/* Bias folding: a Conv, Gemm or MatMul whose only reader is an Add of a constant that broadcasts
 * per output channel (what exporters emit for a bias-less op plus a bias). Returns the Add's node
 * index (and marks it fused) or -1. */
int pt__ox_bias_add(pt__ox_imp *im, int k, int64_t m, int conv, pt__ox_val **cst) {
  const Onnx__GraphProto *gp = im->gp;
  const char *out = gp->node[k]->output[0];
  for (size_t i = 0; i < gp->n_output; i++)
    if (!strcmp(pt__ox_str(gp->output[i]->name), out)) return -1;
  int readers = 0, add = -1;
  for (size_t j = (size_t)k + 1; j < gp->n_node; j++)
    for (size_t i = 0; i < gp->node[j]->n_input; i++)
      if (gp->node[j]->input[i] && !strcmp(gp->node[j]->input[i], out)) readers++, add = (int)j;
  if (readers != 1 || strcmp(pt__ox_str(gp->node[add]->op_type), "Add") || gp->node[add]->n_input != 2) return -1;
  const Onnx__NodeProto *a = gp->node[add];
  const char *other = !strcmp(a->input[0], out) ? a->input[1] : a->input[0];
  pt__ox_val *c = pt__ox_find(im, other);
  if (!c || !c->is_const || !c->c.f) return -1;
  int ok = c->c.numel == 1;
  if (!ok && c->c.numel == m) {
    int r = c->c.rank;
    ok = conv ? (r >= 3 && r <= 4 && c->c.dims[r - 3] == m) : (r >= 1 && r <= 2 && c->c.dims[r - 1] == m);
  }
  if (!ok) return -1;
  *cst = c;
  im->fused[add] = 1;
  return add;
}

/* Adds the folded constant (per channel or scalar) into bias[m]. */
void pt__ox_add_bias(float *bias, int64_t m, const pt__ox_val *c) {
  for (int64_t i = 0; i < m; i++) bias[i] += c->c.numel == 1 ? c->c.f[0] : c->c.f[i];
}

/* After a fused bias, the op's value carries the Add's output name too. */
pt_status pt__ox_alias_fused(pt__ox_imp *im, int k, int add) {
  if (add < 0) return PT_OK;
  pt__ox_val *x = pt__ox_find(im, im->gp->node[k]->output[0]);
  return pt__ox_add_act(im, k, im->gp->node[add]->output[0], x->node, x->rank, x->dims);
}

int pt__ox_small(int64_t v) { return v >= 1 && v <= 1 << 20; }

/* Output k of node equals its input 0 (Identity, Dropout at inference, Flatten of (batch, F)). */
pt_status pt__ox_alias(pt__ox_imp *im, int k, const pt__ox_val *x) {
  int node = x->node, rank = x->rank;
  int64_t dims[PT_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  return pt__ox_add_act(im, k, im->gp->node[k]->output[0], node, rank, dims);
}

pt_status pt__ox_to_features(pt__ox_imp *im, int k, const pt__ox_val *x) {
  int64_t f = pt_shape_numel(x->rank, x->dims);
  if (x->rank == 1) return pt__ox_alias(im, k, x);
  int node = pt__g_flatten(im->g, x->node);
  if (node < 0) return pt__ox_fail(im, k, im->g->err, "%s", im->g->errmsg);
  return pt__ox_add_act(im, k, im->gp->node[k]->output[0], node, 1, &f);
}
