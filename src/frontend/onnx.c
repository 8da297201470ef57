/* ONNX import: onnx.ModelProto (protobuf-c, generated from Debian's onnx.proto at build time) into
 * the graph IR. Semantics and limits in docs/onnx.md. Values are tracked per image: the first
 * dimension of the single data input is the batch and no op may mix it with other dimensions. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "frontend/onnx_internal.h"
#include "graph/graph_internal.h"
#include "io/fileutil.h"

/* The batch size in folded shape constants (see "shape arithmetic" below). */
#define BATCH INT64_MIN

typedef struct val {
  const char *name;
  int is_const;
  /* computed ("activation") values */
  int node;                  /* IR node, -1 for the network input */
  int rank;                  /* per image: the ONNX rank minus the batch dimension */
  int64_t dims[PT_MAX_DIMS]; /* per-image dims */
  int pad_h, pad_w;          /* zero padding of a Pad still to apply (folded into the Conv or
                                AveragePool that reads it) */
  /* constants */
  pt__onnx_array c;
} val;

typedef struct imp {
  const char *what;
  const Onnx__GraphProto *gp;
  int opset;
  pt_graph *g;
  val **v; /* each value allocated on its own, so pointers stay valid as the table grows */
  int nv, cap;
  int64_t batch;     /* declared batch size of the input, -1 when symbolic */
  char (*names)[128]; /* node names given so far (per ONNX node) */
  uint8_t *fused;    /* per ONNX node: folded into an earlier node */
} imp;

static const char SUPPORTED[] =
    "Conv, Gemm, MatMul, Add, Relu, Tanh, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, Flatten, "
    "Reshape, Softmax, Identity, Dropout, Constant, Pad (zeros, before Conv or AveragePool), and Shape, Gather, "
    "Unsqueeze, Concat on shapes";

/* "<file>: node '<name>' (<op>): <msg>" */
static pt_status fail(imp *im, int k, pt_status s, const char *fmt, ...) PT__PRINTF(4, 5);
static pt_status fail(imp *im, int k, pt_status s, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Onnx__NodeProto *n = im->gp->node[k];
  return pt__error(s, "%s: node '%s' (%s): %s", im->what, im->names[k], n->op_type ? n->op_type : "?", msg);
}

/* protobuf-c leaves unset optional strings NULL */
static const char *S(const char *s) { return s ? s : ""; }

static val *find(imp *im, const char *name) {
  if (!name || !*name) return NULL;
  for (int i = im->nv - 1; i >= 0; i--)
    if (!strcmp(im->v[i]->name, name)) return im->v[i];
  return NULL;
}

static val *push(imp *im, const char *name) {
  if (im->nv == im->cap) {
    int cap = im->cap ? 2 * im->cap : 64;
    val **nv = pt__realloc(im->v, (size_t)cap * sizeof *nv);
    if (!nv) return NULL;
    im->v = nv;
    im->cap = cap;
  }
  val *x = pt__calloc(1, sizeof *x);
  if (!x) return NULL;
  im->v[im->nv++] = x;
  x->name = name;
  return x;
}

static pt_status add_act(imp *im, int k, const char *name, int node, int rank, const int64_t *dims) {
  val *x = push(im, name);
  if (!x) return fail(im, k, PT_ENOMEM, "out of memory");
  x->node = node;
  x->rank = rank;
  memcpy(x->dims, dims, (size_t)rank * sizeof *dims);
  return PT_OK;
}

/* The IR shape of a computed value. */
static int ir_ndim(const imp *im, const val *x) { return x->node < 0 ? 3 : im->g->nodes[x->node].out_ndim; }

/* A new IR node's output as a computed value with its IR shape as the per-image shape. */
static pt_status add_node_out(imp *im, int k, int node) {
  if (node < 0) return fail(im, k, im->g->err ? im->g->err : PT_EINVAL, "%s", im->g->errmsg);
  const pt_node *n = &im->g->nodes[node];
  return add_act(im, k, im->gp->node[k]->output[0], node, n->out_ndim, n->out_shape);
}

/* ---- attributes ---- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (n->attribute[i]->name && !strcmp(n->attribute[i]->name, name)) return n->attribute[i];
  return NULL;
}

static pt_status attr_int(imp *im, int k, const char *name, int64_t def, int64_t *out) {
  const Onnx__AttributeProto *a = attr(im->gp->node[k], name);
  *out = def;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) return fail(im, k, PT_EFORMAT, "attribute %s is not an int", name);
  *out = a->i;
  return PT_OK;
}

static pt_status attr_float(imp *im, int k, const char *name, float def, float *out) {
  const Onnx__AttributeProto *a = attr(im->gp->node[k], name);
  *out = def;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) return fail(im, k, PT_EFORMAT, "attribute %s is not a float", name);
  *out = a->f;
  return PT_OK;
}

/* ints attribute of exactly n values (n_out: 0 when absent). */
static pt_status attr_ints(imp *im, int k, const char *name, int n, int64_t *vals, int *present) {
  const Onnx__AttributeProto *a = attr(im->gp->node[k], name);
  *present = 0;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS) return fail(im, k, PT_EFORMAT, "attribute %s is not a list of ints", name);
  if (a->n_ints != (size_t)n)
    return fail(im, k, PT_EUNSUPPORTED, "attribute %s has %zu values (%d expected: 2-D only)", name, a->n_ints, n);
  memcpy(vals, a->ints, (size_t)n * sizeof *vals);
  *present = 1;
  return PT_OK;
}

/* String attribute into buf ("" when absent). */
static pt_status attr_str(imp *im, int k, const char *name, char *buf, size_t cap) {
  const Onnx__AttributeProto *a = attr(im->gp->node[k], name);
  buf[0] = 0;
  if (!a) return PT_OK;
  if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING) return fail(im, k, PT_EFORMAT, "attribute %s is not a string", name);
  size_t n = a->s.len < cap - 1 ? a->s.len : cap - 1;
  memcpy(buf, a->s.data, n);
  buf[n] = 0;
  return PT_OK;
}

/* ---- inputs ---- */

static const char *in_name(const Onnx__NodeProto *n, int i) {
  return (size_t)i < n->n_input && n->input[i] && n->input[i][0] ? n->input[i] : NULL;
}

static pt_status act_in(imp *im, int k, int i, val **out) {
  const char *nm = in_name(im->gp->node[k], i);
  val *x = find(im, nm);
  if (!nm) return fail(im, k, PT_EFORMAT, "input %d is missing", i);
  if (!x) return fail(im, k, PT_EFORMAT, "input '%s' is not defined before the node", nm);
  if (x->is_const)
    return fail(im, k, PT_EUNSUPPORTED, "input '%s' is a constant (only values computed from the data input)", nm);
  const char *t = S(im->gp->node[k]->op_type);
  if ((x->pad_h || x->pad_w) && strcmp(t, "Conv") && strcmp(t, "AveragePool"))
    return fail(im, k, PT_EUNSUPPORTED, "reads a padded tensor (a Pad is supported only before Conv or AveragePool)");
  *out = x;
  return PT_OK;
}

/* A float constant input; optional: NULL when absent. */
static pt_status const_in(imp *im, int k, int i, int optional, val **out) {
  const char *nm = in_name(im->gp->node[k], i);
  *out = NULL;
  if (!nm) return optional ? PT_OK : fail(im, k, PT_EFORMAT, "input %d is missing", i);
  val *x = find(im, nm);
  if (!x) return fail(im, k, PT_EFORMAT, "input '%s' is not defined before the node", nm);
  if (!x->is_const)
    return fail(im, k, PT_EUNSUPPORTED, "input '%s' must be a constant (an initializer) but is computed", nm);
  *out = x;
  return PT_OK;
}

static pt_status need_float(imp *im, int k, const val *c) {
  return c->c.f ? PT_OK : fail(im, k, PT_EUNSUPPORTED, "constant '%s' has integer elements", c->name);
}

/* The IR node to read x as (batch, features): flattens an (F, 1, 1) network input view. */
static pt_status as_features(imp *im, int k, const val *x, int *node) {
  if (x->rank != 1) return fail(im, k, PT_EUNSUPPORTED, "expects a (batch, features) input, got rank %d", x->rank + 1);
  *node = x->node;
  if (ir_ndim(im, x) == 1) return PT_OK;
  *node = pt__g_flatten(im->g, x->node);
  return *node < 0 ? fail(im, k, im->g->err, "%s", im->g->errmsg) : PT_OK;
}

static float *copy_floats(const float *src, int64_t n) {
  float *d = pt__malloc((size_t)(n ? n : 1) * sizeof *d);
  if (d && n) memcpy(d, src, (size_t)n * sizeof *d);
  return d;
}

static pt_status set_param(imp *im, int k, int node, int slot, float *data) {
  if (!data) return fail(im, k, PT_ENOMEM, "out of memory");
  pt_param *p = &im->g->params[im->g->nodes[node].param[slot]];
  free(p->data);
  p->data = data;
  return PT_OK;
}

static pt_status shape_str_fail(imp *im, int k, const char *what, const val *c) {
  char sh[96];
  pt_shape_str(sh, sizeof sh, c->c.rank, c->c.dims);
  return fail(im, k, PT_ESHAPE, "%s '%s' has shape %s", what, c->name, sh);
}

/* Bias folding: a Conv, Gemm or MatMul whose only reader is an Add of a constant that broadcasts
 * per output channel (what exporters emit for a bias-less op plus a bias). Returns the Add's node
 * index (and marks it fused) or -1. */
static int bias_add(imp *im, int k, int64_t m, int conv, val **cst) {
  const Onnx__GraphProto *gp = im->gp;
  const char *out = gp->node[k]->output[0];
  for (size_t i = 0; i < gp->n_output; i++)
    if (!strcmp(S(gp->output[i]->name), out)) return -1;
  int readers = 0, add = -1;
  for (size_t j = (size_t)k + 1; j < gp->n_node; j++)
    for (size_t i = 0; i < gp->node[j]->n_input; i++)
      if (gp->node[j]->input[i] && !strcmp(gp->node[j]->input[i], out)) readers++, add = (int)j;
  if (readers != 1 || strcmp(S(gp->node[add]->op_type), "Add") || gp->node[add]->n_input != 2) return -1;
  const Onnx__NodeProto *a = gp->node[add];
  const char *other = !strcmp(a->input[0], out) ? a->input[1] : a->input[0];
  val *c = find(im, other);
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
static void add_bias(float *bias, int64_t m, const val *c) {
  for (int64_t i = 0; i < m; i++) bias[i] += c->c.numel == 1 ? c->c.f[0] : c->c.f[i];
}

/* After a fused bias, the op's value carries the Add's output name too. */
static pt_status alias_fused(imp *im, int k, int add) {
  if (add < 0) return PT_OK;
  val *x = find(im, im->gp->node[k]->output[0]);
  return add_act(im, k, im->gp->node[add]->output[0], x->node, x->rank, x->dims);
}

/* ---- ops ---- */

/* Symmetric (ph, pw) from pads/auto_pad for a 2-D window over (h, w). */
static pt_status window_pads(imp *im, int k, const int64_t *in, const int64_t *kern, const int64_t *str, int *ph,
                             int *pw) {
  char ap[32];
  int have;
  int64_t pads[4] = {0, 0, 0, 0};
  PT__TRY(attr_str(im, k, "auto_pad", ap, sizeof ap));
  PT__TRY(attr_ints(im, k, "pads", 4, pads, &have));
  int p[2];
  if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
    for (int d = 0; d < 2; d++) {
      int64_t out = (in[d] + str[d] - 1) / str[d], total = (out - 1) * str[d] + kern[d] - in[d];
      if (total < 0) total = 0;
      if (total % 2)
        return fail(im, k, PT_EUNSUPPORTED, "auto_pad %s needs asymmetric padding (%lld in total) on axis %d", ap,
                    (long long)total, d + 2);
      p[d] = (int)(total / 2);
    }
  } else if (!strcmp(ap, "VALID")) {
    p[0] = p[1] = 0;
  } else if (!ap[0] || !strcmp(ap, "NOTSET")) {
    for (int d = 0; d < 4; d++)
      if (pads[d] < 0 || pads[d] > 1 << 20) return fail(im, k, PT_EFORMAT, "bad pads value %lld", (long long)pads[d]);
    if (pads[0] != pads[2] || pads[1] != pads[3])
      return fail(im, k, PT_EUNSUPPORTED, "asymmetric pads [%lld,%lld,%lld,%lld]", (long long)pads[0],
                  (long long)pads[1], (long long)pads[2], (long long)pads[3]);
    p[0] = (int)pads[0];
    p[1] = (int)pads[1];
  } else {
    return fail(im, k, PT_EFORMAT, "unknown auto_pad '%s'", ap);
  }
  *ph = p[0];
  *pw = p[1];
  return PT_OK;
}

static pt_status check_dilations(imp *im, int k) {
  int64_t dil[2];
  int have;
  PT__TRY(attr_ints(im, k, "dilations", 2, dil, &have));
  if (have && (dil[0] != 1 || dil[1] != 1))
    return fail(im, k, PT_EUNSUPPORTED, "dilations [%lld,%lld] (only 1)", (long long)dil[0], (long long)dil[1]);
  return PT_OK;
}

static int small(int64_t v) { return v >= 1 && v <= 1 << 20; }

static pt_status op_conv(imp *im, int k) {
  val *x, *w, *b;
  PT__TRY(act_in(im, k, 0, &x));
  PT__TRY(const_in(im, k, 1, 0, &w));
  PT__TRY(const_in(im, k, 2, 1, &b));
  PT__TRY(need_float(im, k, w));
  if (x->rank != 3) return fail(im, k, PT_EUNSUPPORTED, "only 2-D convolutions (input of rank 4), got rank %d", x->rank + 1);
  if (w->c.rank != 4) return shape_str_fail(im, k, "weight", w);
  int64_t group, kern[2] = {w->c.dims[2], w->c.dims[3]}, str[2] = {1, 1}, ks[2];
  int have;
  PT__TRY(attr_int(im, k, "group", 1, &group));
  PT__TRY(check_dilations(im, k));
  PT__TRY(attr_ints(im, k, "kernel_shape", 2, ks, &have));
  if (have && (ks[0] != kern[0] || ks[1] != kern[1]))
    return fail(im, k, PT_ESHAPE, "kernel_shape [%lld,%lld] disagrees with the weight", (long long)ks[0], (long long)ks[1]);
  PT__TRY(attr_ints(im, k, "strides", 2, str, &have));
  const int64_t m = w->c.dims[0];
  if (!small(group) || !small(m) || !small(kern[0]) || !small(kern[1]) || !small(str[0]) || !small(str[1]) ||
      w->c.dims[1] * group != x->dims[0])
    return fail(im, k, PT_ESHAPE, "weight [%lld,%lld,%lld,%lld] with group %lld does not fit %lld input channels",
                (long long)m, (long long)w->c.dims[1], (long long)kern[0], (long long)kern[1], (long long)group,
                (long long)x->dims[0]);
  int ph, pw;
  PT__TRY(window_pads(im, k, x->dims + 1, kern, str, &ph, &pw));
  ph += x->pad_h, pw += x->pad_w;
  if (b && (need_float(im, k, b) != PT_OK || b->c.numel != m)) return shape_str_fail(im, k, "bias", b);
  val *fb = NULL;
  int add = bias_add(im, k, m, 1, &fb);
  pt_conv_params p = {(int)x->dims[0], (int)m, (int)kern[0], (int)kern[1], (int)str[0], (int)str[1], ph, pw,
                      (int)group, b || fb};
  int node = pt__g_conv2(im->g, im->names[k], x->node, &p);
  PT__TRY(add_node_out(im, k, node));
  PT__TRY(set_param(im, k, node, 0, copy_floats(w->c.f, w->c.numel)));
  if (p.has_bias) {
    float *bias = pt__calloc((size_t)m, sizeof *bias);
    if (bias && b) memcpy(bias, b->c.f, (size_t)m * sizeof *bias);
    if (bias && fb) add_bias(bias, m, fb);
    PT__TRY(set_param(im, k, node, 1, bias));
  }
  return alias_fused(im, k, add);
}

/* Gemm (alpha, beta, transB; transA 0) and MatMul: a Linear with weight (M, K). */
static pt_status op_linear(imp *im, int k, int gemm) {
  val *x, *bm, *cm = NULL;
  PT__TRY(act_in(im, k, 0, &x));
  PT__TRY(const_in(im, k, 1, 0, &bm));
  PT__TRY(need_float(im, k, bm));
  int64_t ta = 0, tb = 0;
  float alpha = 1.0f, beta = 1.0f;
  if (gemm) {
    PT__TRY(const_in(im, k, 2, 1, &cm));
    PT__TRY(attr_int(im, k, "transA", 0, &ta));
    PT__TRY(attr_int(im, k, "transB", 0, &tb));
    PT__TRY(attr_float(im, k, "alpha", 1.0f, &alpha));
    PT__TRY(attr_float(im, k, "beta", 1.0f, &beta));
    if (ta) return fail(im, k, PT_EUNSUPPORTED, "transA 1 (the batch must stay the first dimension)");
  }
  if (x->rank != 1)
    return fail(im, k, PT_EUNSUPPORTED, "%s of a rank-%d input (only (batch, features) times a constant matrix)",
                gemm ? "Gemm" : "MatMul", x->rank + 1);
  if (bm->c.rank != 2) return shape_str_fail(im, k, "matrix", bm);
  const int64_t kk = tb ? bm->c.dims[1] : bm->c.dims[0], m = tb ? bm->c.dims[0] : bm->c.dims[1];
  if (kk != x->dims[0] || !small(m) || !small(kk))
    return fail(im, k, PT_ESHAPE, "matrix '%s' [%lld,%lld]%s does not take %lld features", bm->name,
                (long long)bm->c.dims[0], (long long)bm->c.dims[1], tb ? " (transposed)" : "", (long long)x->dims[0]);
  if (cm) {
    PT__TRY(need_float(im, k, cm));
    int vec = cm->c.numel == m && (cm->c.rank == 1 || (cm->c.rank == 2 && cm->c.dims[0] == 1));
    if (cm->c.numel != 1 && !vec)
      return fail(im, k, PT_EUNSUPPORTED, "C '%s' of %lld elements is not a scalar or a row of %lld (a bias that varies along the batch)",
                  cm->name, (long long)cm->c.numel, (long long)m);
  }
  int in;
  PT__TRY(as_features(im, k, x, &in));
  val *fb = NULL;
  int add = bias_add(im, k, m, 0, &fb);
  int has_bias = cm || fb;
  int node = pt__g_linear2(im->g, im->names[k], in, (int)kk, (int)m, has_bias);
  PT__TRY(add_node_out(im, k, node));
  float *wt = pt__malloc((size_t)(m * kk) * sizeof *wt);
  if (wt)
    for (int64_t o = 0; o < m; o++)
      for (int64_t i = 0; i < kk; i++) wt[o * kk + i] = alpha * (tb ? bm->c.f[o * kk + i] : bm->c.f[i * m + o]);
  PT__TRY(set_param(im, k, node, 0, wt));
  if (has_bias) {
    float *bias = pt__calloc((size_t)m, sizeof *bias);
    if (bias && cm)
      for (int64_t o = 0; o < m; o++) bias[o] = beta * cm->c.f[cm->c.numel == 1 ? 0 : o];
    if (bias && fb) add_bias(bias, m, fb);
    PT__TRY(set_param(im, k, node, 1, bias));
  }
  return alias_fused(im, k, add);
}

static pt_status op_pool(imp *im, int k, int is_max, int global) {
  const Onnx__NodeProto *n = im->gp->node[k];
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  if (x->rank != 3) return fail(im, k, PT_EUNSUPPORTED, "only 2-D pooling (input of rank 4), got rank %d", x->rank + 1);
  if (n->n_output > 1 && n->output[1][0]) return fail(im, k, PT_EUNSUPPORTED, "the Indices output");
  pt_pool_params p = {(int)x->dims[1], (int)x->dims[2], 1, 1, 0, 0};
  if (!global) {
    int64_t kern[2], str[2] = {1, 1}, ceil_mode, cip = 0;
    int have;
    PT__TRY(attr_ints(im, k, "kernel_shape", 2, kern, &have));
    if (!have) return fail(im, k, PT_EFORMAT, "no kernel_shape");
    PT__TRY(attr_ints(im, k, "strides", 2, str, &have));
    if (!small(kern[0]) || !small(kern[1]) || !small(str[0]) || !small(str[1]))
      return fail(im, k, PT_EFORMAT, "bad kernel_shape or strides");
    PT__TRY(check_dilations(im, k));
    PT__TRY(window_pads(im, k, x->dims + 1, kern, str, &p.ph, &p.pw));
    if ((x->pad_h || x->pad_w) && (p.ph || p.pw))
      return fail(im, k, PT_EUNSUPPORTED, "pads of its own after a Pad");
    if (x->pad_h || x->pad_w) cip = 1; /* the padded zeros are real elements: they count */
    p.ph += x->pad_h, p.pw += x->pad_w;
    p.kh = (int)kern[0], p.kw = (int)kern[1], p.sh = (int)str[0], p.sw = (int)str[1];
    PT__TRY(attr_int(im, k, "ceil_mode", 0, &ceil_mode));
    /* ceil_mode only matters when the last window would start inside the padded input */
    if (ceil_mode && ((x->dims[1] + 2 * p.ph - p.kh) % p.sh || (x->dims[2] + 2 * p.pw - p.kw) % p.sw))
      return fail(im, k, PT_EUNSUPPORTED, "ceil_mode 1 with a partial last window");
    if (!cip) PT__TRY(attr_int(im, k, "count_include_pad", 0, &cip));
    if (!is_max && !cip && (p.ph || p.pw))
      return fail(im, k, PT_EUNSUPPORTED, "count_include_pad 0 with padding (the divisor is always the window size)");
  }
  int node = pt__g_pool2(im->g, im->names[k], x->node, is_max ? PT_OP_MAXPOOL2D : PT_OP_AVGPOOL2D, &p);
  return add_node_out(im, k, node);
}

static pt_status op_bn(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  val *x, *c[4];
  PT__TRY(act_in(im, k, 0, &x));
  for (int i = 0; i < 4; i++) {
    PT__TRY(const_in(im, k, i + 1, 0, &c[i]));
    PT__TRY(need_float(im, k, c[i]));
  }
  int64_t training, spatial;
  float eps;
  PT__TRY(attr_float(im, k, "epsilon", 1e-5f, &eps));
  PT__TRY(attr_int(im, k, "training_mode", 0, &training));
  PT__TRY(attr_int(im, k, "spatial", 1, &spatial));
  if (training || (n->n_output > 1 && n->output[1][0]))
    return fail(im, k, PT_EUNSUPPORTED, "training mode (inference statistics only)");
  if (!spatial) return fail(im, k, PT_EUNSUPPORTED, "spatial 0");
  if (x->rank != 3) return fail(im, k, PT_EUNSUPPORTED, "only (N, C, H, W) inputs, got rank %d", x->rank + 1);
  for (int i = 0; i < 4; i++)
    if (c[i]->c.numel != x->dims[0]) return shape_str_fail(im, k, "parameter", c[i]);
  int node = pt__g_bn(im->g, im->names[k], x->node, (int)x->dims[0], eps);
  PT__TRY(add_node_out(im, k, node));
  for (int i = 0; i < 4; i++) PT__TRY(set_param(im, k, node, i, copy_floats(c[i]->c.f, c[i]->c.numel)));
  return PT_OK;
}

static int same_shape(const val *a, const val *b) {
  return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
}

static pt_status op_add(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  if (n->n_input != 2) return fail(im, k, PT_EFORMAT, "%zu inputs", n->n_input);
  val *a = find(im, in_name(n, 0)), *b = find(im, in_name(n, 1));
  if (!a || !b) return fail(im, k, PT_EFORMAT, "an input is not defined before the node");
  if (a->is_const || b->is_const)
    return fail(im, k, PT_EUNSUPPORTED, "adding a constant is supported only as the bias of the Conv, Gemm or MatMul before it");
  if (!same_shape(a, b)) return fail(im, k, PT_EUNSUPPORTED, "broadcasting between computed tensors of different shapes");
  int ia = a->node, ib = b->node;
  if (ir_ndim(im, a) != ir_ndim(im, b)) {
    PT__TRY(as_features(im, k, a, &ia));
    PT__TRY(as_features(im, k, b, &ib));
  }
  int node = pt__g_add(im->g, im->names[k], ia, ib);
  if (node < 0) return fail(im, k, im->g->err, "%s", im->g->errmsg);
  return add_act(im, k, n->output[0], node, a->rank, a->dims);
}

static pt_status op_act(imp *im, int k, pt_op_type t) {
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  int rank = x->rank;
  int64_t dims[PT_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  int node = pt__g_act(im->g, im->names[k], x->node, t);
  if (node < 0) return fail(im, k, im->g->err, "%s", im->g->errmsg);
  return add_act(im, k, im->gp->node[k]->output[0], node, rank, dims);
}

/* Output k of node equals its input 0 (Identity, Dropout at inference, Flatten of (batch, F)). */
static pt_status alias(imp *im, int k, const val *x) {
  int node = x->node, rank = x->rank;
  int64_t dims[PT_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  return add_act(im, k, im->gp->node[k]->output[0], node, rank, dims);
}

static pt_status to_features(imp *im, int k, const val *x) {
  int64_t f = pt_shape_numel(x->rank, x->dims);
  if (x->rank == 1) return alias(im, k, x);
  int node = pt__g_flatten(im->g, x->node);
  if (node < 0) return fail(im, k, im->g->err, "%s", im->g->errmsg);
  return add_act(im, k, im->gp->node[k]->output[0], node, 1, &f);
}

static pt_status op_flatten(imp *im, int k) {
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  int64_t axis;
  PT__TRY(attr_int(im, k, "axis", 1, &axis));
  if (axis < 0) axis += x->rank + 1;
  if (axis != 1) return fail(im, k, PT_EUNSUPPORTED, "axis %lld (only 1, which keeps the batch)", (long long)axis);
  return to_features(im, k, x);
}

static pt_status op_reshape(imp *im, int k) {
  val *x, *sh;
  PT__TRY(act_in(im, k, 0, &x));
  const char *nm = in_name(im->gp->node[k], 1);
  sh = find(im, nm);
  if (!sh || !sh->is_const || !sh->c.i) return fail(im, k, PT_EUNSUPPORTED, "the shape must be a constant of integers");
  int64_t allowzero;
  PT__TRY(attr_int(im, k, "allowzero", 0, &allowzero));
  const int64_t f = pt_shape_numel(x->rank, x->dims), *t = sh->c.i;
  int ok = sh->c.numel == 2;
  if (ok) {
    int t0_batch = (t[0] == 0 && !allowzero) || t[0] == BATCH || (im->batch > 0 && t[0] == im->batch) ||
                   (t[0] == -1 && t[1] == f);
    int t1_feat = t[1] == f || (t[1] == -1 && t[0] != -1) || (t[1] == 0 && !allowzero && x->rank == 1);
    ok = t0_batch && t1_feat;
  }
  if (!ok) {
    char s[96];
    int n = 0;
    s[0] = 0;
    for (int64_t i = 0; i < sh->c.numel && n < 80; i++)
      n += t[i] == BATCH ? snprintf(s + n, sizeof s - (size_t)n, "%sbatch", i ? "," : "")
                         : snprintf(s + n, sizeof s - (size_t)n, "%s%lld", i ? "," : "", (long long)t[i]);
    return fail(im, k, PT_EUNSUPPORTED, "reshape to [%s] (only to (batch, %lld))", s, (long long)f);
  }
  return to_features(im, k, x);
}

static pt_status op_softmax(imp *im, int k) {
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  int64_t axis;
  PT__TRY(attr_int(im, k, "axis", im->opset >= 13 ? -1 : 1, &axis));
  if (axis < 0) axis += x->rank + 1;
  if (x->rank != 1 || axis != 1)
    return fail(im, k, PT_EUNSUPPORTED, "softmax over axis %lld of a rank-%d tensor (only the features of (batch, features))",
                (long long)axis, x->rank + 1);
  int in;
  PT__TRY(as_features(im, k, x, &in));
  int node = pt__g_softmax(im->g, im->names[k], in);
  return add_node_out(im, k, node);
}

static pt_status op_dropout(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  if (n->n_output > 1 && n->output[1][0]) return fail(im, k, PT_EUNSUPPORTED, "the mask output");
  const char *tm = in_name(n, 2);
  if (tm) {
    val *t = find(im, tm);
    if (!t || !t->is_const || t->c.numel != 1 || (t->c.i ? t->c.i[0] != 0 : t->c.f[0] != 0.0f))
      return fail(im, k, PT_EUNSUPPORTED, "training_mode that is not a constant false");
  }
  return alias(im, k, x);
}

/* Pad with zeros: none at all is an alias; symmetric on H and W only is left pending for the Conv
 * or AveragePool that reads it (PyTorch exports AvgPool2d as Pad + AveragePool). */
static pt_status op_pad(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  char mode[32];
  PT__TRY(attr_str(im, k, "mode", mode, sizeof mode));
  if (mode[0] && strcmp(mode, "constant")) return fail(im, k, PT_EUNSUPPORTED, "mode '%s' (only constant zeros)", mode);
  const int r = x->rank + 1;
  int64_t pads[2 * PT_MAX_DIMS];
  float value = 0.0f;
  if (im->opset >= 11) {
    val *p = find(im, in_name(n, 1)), *v = find(im, in_name(n, 2));
    if (!p || !p->is_const || !p->c.i || p->c.numel != 2 * r) return fail(im, k, PT_EUNSUPPORTED, "pads must be a constant of %d integers", 2 * r);
    memcpy(pads, p->c.i, (size_t)(2 * r) * sizeof *pads);
    if (in_name(n, 2)) {
      if (!v || !v->is_const || v->c.numel != 1) return fail(im, k, PT_EUNSUPPORTED, "constant_value must be a constant scalar");
      value = v->c.f ? v->c.f[0] : (float)v->c.i[0];
    }
    if (in_name(n, 3)) return fail(im, k, PT_EUNSUPPORTED, "the axes input");
  } else {
    const Onnx__AttributeProto *a = attr(n, "pads");
    if (!a || a->n_ints != (size_t)(2 * r)) return fail(im, k, PT_EFORMAT, "pads must have %d values", 2 * r);
    memcpy(pads, a->ints, (size_t)(2 * r) * sizeof *pads);
    PT__TRY(attr_float(im, k, "value", 0.0f, &value));
  }
  int64_t any = 0;
  for (int i = 0; i < 2 * r; i++) any |= pads[i];
  if (!any) return alias(im, k, x);
  if (value != 0.0f) return fail(im, k, PT_EUNSUPPORTED, "padding value %g (only 0)", value);
  int ok = r == 4 && !pads[0] && !pads[1] && !pads[4] && !pads[5] && pads[2] == pads[6] && pads[3] == pads[7] &&
           pads[2] >= 0 && pads[3] >= 0 && pads[2] <= 1 << 20 && pads[3] <= 1 << 20;
  if (!ok) return fail(im, k, PT_EUNSUPPORTED, "padding other than symmetric zeros on H and W of (N, C, H, W)");
  PT__TRY(alias(im, k, x));
  val *y = im->v[im->nv - 1];
  y->pad_h = x->pad_h + (int)pads[2];
  y->pad_w = x->pad_w + (int)pads[3];
  return PT_OK;
}

/* ---- shape arithmetic (what PyTorch exports for x.view(x.size(0), -1) with a dynamic batch:
 * Shape -> Gather -> Unsqueeze -> Concat -> Reshape), folded on integer constants. The batch size
 * is unknown at import, so Shape writes BATCH for it and only Reshape's first entry may hold it. */
static pt_status add_const_i(imp *im, int k, int rank, const int64_t *dims, const int64_t *v, int64_t n) {
  val *x = push(im, im->gp->node[k]->output[0]);
  if (!x || !(x->c.i = pt__malloc((size_t)(n ? n : 1) * sizeof *x->c.i))) return fail(im, k, PT_ENOMEM, "out of memory");
  x->is_const = 1;
  x->c.rank = rank;
  memcpy(x->c.dims, dims, (size_t)rank * sizeof *dims);
  x->c.numel = n;
  if (n) memcpy(x->c.i, v, (size_t)n * sizeof *v);
  return PT_OK;
}

static pt_status int_const_in(imp *im, int k, int i, val **out) {
  *out = NULL;
  const char *nm = in_name(im->gp->node[k], i);
  val *x = find(im, nm);
  if (!x || !x->is_const || !x->c.i)
    return fail(im, k, PT_EUNSUPPORTED, "input %d must be a constant of integers (shape arithmetic only)", i);
  *out = x;
  return PT_OK;
}

static pt_status op_shape(imp *im, int k) {
  val *x;
  PT__TRY(act_in(im, k, 0, &x));
  int64_t v[PT_MAX_DIMS + 1], start, end, r = x->rank + 1;
  v[0] = BATCH;
  memcpy(v + 1, x->dims, (size_t)x->rank * sizeof *v);
  PT__TRY(attr_int(im, k, "start", 0, &start));
  PT__TRY(attr_int(im, k, "end", r, &end));
  if (start < 0) start += r;
  if (end < 0) end += r;
  start = start < 0 ? 0 : start > r ? r : start;
  end = end < start ? start : end > r ? r : end;
  int64_t n = end - start;
  return add_const_i(im, k, 1, &n, v + start, n);
}

static pt_status op_gather(imp *im, int k) {
  val *d, *ix;
  PT__TRY(int_const_in(im, k, 0, &d));
  PT__TRY(int_const_in(im, k, 1, &ix));
  int64_t axis;
  PT__TRY(attr_int(im, k, "axis", 0, &axis));
  if (d->c.rank != 1 || (axis != 0 && axis != -1) || ix->c.rank > 1)
    return fail(im, k, PT_EUNSUPPORTED, "only gathering from a 1-D constant along axis 0");
  int64_t out[PT_MAX_DIMS];
  if (ix->c.numel > PT_MAX_DIMS) return fail(im, k, PT_EUNSUPPORTED, "more than %d indices", PT_MAX_DIMS);
  for (int64_t i = 0; i < ix->c.numel; i++) {
    int64_t j = ix->c.i[i] < 0 ? ix->c.i[i] + d->c.numel : ix->c.i[i];
    if (j < 0 || j >= d->c.numel) return fail(im, k, PT_EFORMAT, "index %lld out of range", (long long)ix->c.i[i]);
    out[i] = d->c.i[j];
  }
  return add_const_i(im, k, ix->c.rank, ix->c.dims, out, ix->c.numel);
}

static pt_status op_unsqueeze(imp *im, int k) {
  val *d, *ax = NULL;
  PT__TRY(int_const_in(im, k, 0, &d));
  int64_t axes[PT_MAX_DIMS];
  int n_axes = 0;
  const Onnx__AttributeProto *a = attr(im->gp->node[k], "axes");
  if (a) {
    if (a->n_ints > PT_MAX_DIMS) return fail(im, k, PT_EFORMAT, "too many axes");
    n_axes = (int)a->n_ints;
    memcpy(axes, a->ints, (size_t)n_axes * sizeof *axes);
  } else {
    PT__TRY(int_const_in(im, k, 1, &ax));
    if (ax->c.numel > PT_MAX_DIMS) return fail(im, k, PT_EFORMAT, "too many axes");
    n_axes = (int)ax->c.numel;
    memcpy(axes, ax->c.i, (size_t)n_axes * sizeof *axes);
  }
  const int r = d->c.rank + n_axes;
  if (r > PT_MAX_DIMS) return fail(im, k, PT_EUNSUPPORTED, "result of rank %d", r);
  int64_t dims[PT_MAX_DIMS];
  int is_new[PT_MAX_DIMS] = {0};
  for (int i = 0; i < n_axes; i++) {
    int64_t x = axes[i] < 0 ? axes[i] + r : axes[i];
    if (x < 0 || x >= r || is_new[x]) return fail(im, k, PT_EFORMAT, "bad axis %lld", (long long)axes[i]);
    is_new[x] = 1;
  }
  for (int i = 0, j = 0; i < r; i++) dims[i] = is_new[i] ? 1 : d->c.dims[j++];
  return add_const_i(im, k, r, dims, d->c.i, d->c.numel);
}

static pt_status op_concat(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  int64_t axis, v[64], len = 0;
  PT__TRY(attr_int(im, k, "axis", 0, &axis));
  for (size_t i = 0; i < n->n_input; i++) {
    val *x;
    PT__TRY(int_const_in(im, k, (int)i, &x));
    if (x->c.rank != 1 || (axis != 0 && axis != -1)) return fail(im, k, PT_EUNSUPPORTED, "only 1-D constants along axis 0");
    if (len + x->c.numel > 64) return fail(im, k, PT_EUNSUPPORTED, "more than 64 values");
    memcpy(v + len, x->c.i, (size_t)x->c.numel * sizeof *v);
    len += x->c.numel;
  }
  return add_const_i(im, k, 1, &len, v, len);
}

/* Constant nodes hold no data input, so all of them are evaluated before the graph is walked. */
static pt_status op_constant(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  if (n->n_output != 1 || n->n_attribute != 1) return fail(im, k, PT_EFORMAT, "needs one output and one attribute");
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
    arr.f = copy_floats(one ? &a->f : a->floats, arr.numel);
    if (!arr.f) return fail(im, k, PT_ENOMEM, "out of memory");
  } else if (!strcmp(an, "value_int") || !strcmp(an, "value_ints")) {
    int one = !strcmp(an, "value_int");
    arr.numel = one ? 1 : (int64_t)a->n_ints;
    arr.rank = one ? 0 : 1;
    arr.dims[0] = arr.numel;
    arr.i = pt__malloc((size_t)(arr.numel ? arr.numel : 1) * sizeof *arr.i);
    if (!arr.i) return fail(im, k, PT_ENOMEM, "out of memory");
    if (arr.numel) memcpy(arr.i, one ? &a->i : a->ints, (size_t)arr.numel * sizeof *arr.i);
  } else {
    return fail(im, k, PT_EUNSUPPORTED, "attribute '%s'", an);
  }
  val *x = push(im, n->output[0]);
  if (!x) {
    pt__onnx_array_free(&arr);
    return fail(im, k, PT_ENOMEM, "out of memory");
  }
  x->is_const = 1;
  x->c = arr;
  return PT_OK;
}

static pt_status convert_node(imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  const char *t = n->op_type ? n->op_type : "";
  if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
    return fail(im, k, PT_EUNSUPPORTED, "operator domain '%s' (only the default ONNX domain)", n->domain);
  if (!strcmp(t, "Constant")) return PT_OK; /* done in the first pass */
  if (n->n_output < 1 || !n->output[0][0]) return fail(im, k, PT_EFORMAT, "no output");
  if (!strcmp(t, "Conv")) return op_conv(im, k);
  if (!strcmp(t, "Gemm")) return op_linear(im, k, 1);
  if (!strcmp(t, "MatMul")) return op_linear(im, k, 0);
  if (!strcmp(t, "Relu")) return op_act(im, k, PT_OP_RELU);
  if (!strcmp(t, "Tanh")) return op_act(im, k, PT_OP_TANH);
  if (!strcmp(t, "MaxPool")) return op_pool(im, k, 1, 0);
  if (!strcmp(t, "AveragePool")) return op_pool(im, k, 0, 0);
  if (!strcmp(t, "GlobalAveragePool")) return op_pool(im, k, 0, 1);
  if (!strcmp(t, "BatchNormalization")) return op_bn(im, k);
  if (!strcmp(t, "Add")) return op_add(im, k);
  if (!strcmp(t, "Flatten")) return op_flatten(im, k);
  if (!strcmp(t, "Reshape")) return op_reshape(im, k);
  if (!strcmp(t, "Softmax")) return op_softmax(im, k);
  if (!strcmp(t, "Dropout")) return op_dropout(im, k);
  if (!strcmp(t, "Pad")) return op_pad(im, k);
  if (!strcmp(t, "Shape")) return op_shape(im, k);
  if (!strcmp(t, "Gather")) return op_gather(im, k);
  if (!strcmp(t, "Unsqueeze")) return op_unsqueeze(im, k);
  if (!strcmp(t, "Concat")) return op_concat(im, k);
  if (!strcmp(t, "Identity")) {
    val *x;
    PT__TRY(act_in(im, k, 0, &x));
    return alias(im, k, x);
  }
  return fail(im, k, PT_EUNSUPPORTED, "op type '%s' is not supported (supported: %s)", t, SUPPORTED);
}

/* Node names: the ONNX name, or "<OpType>_<index>" when empty; a repeat gets "_<index>" appended. */
static pt_status name_nodes(imp *im) {
  const Onnx__GraphProto *gp = im->gp;
  im->names = pt__calloc(gp->n_node ? gp->n_node : 1, sizeof *im->names);
  im->fused = pt__calloc(gp->n_node ? gp->n_node : 1, 1);
  if (!im->names || !im->fused) return pt__error(PT_ENOMEM, "%s: out of memory", im->what);
  for (size_t k = 0; k < gp->n_node; k++) {
    const Onnx__NodeProto *n = gp->node[k];
    char *nm = im->names[k];
    if (n->name && n->name[0]) snprintf(nm, 128, "%s", n->name);
    else snprintf(nm, 128, "%s_%zu", n->op_type ? n->op_type : "node", k);
    for (size_t j = 0; j < k; j++)
      if (!strcmp(im->names[j], nm)) {
        char tail[24];
        int tl = snprintf(tail, sizeof tail, "_%zu", k);
        size_t len = strlen(nm);
        if (len + (size_t)tl > 127) len = 127 - (size_t)tl;
        memcpy(nm + len, tail, (size_t)tl + 1);
        break;
      }
  }
  return PT_OK;
}

static int is_initializer(const Onnx__GraphProto *gp, const char *name) {
  for (size_t i = 0; i < gp->n_initializer; i++)
    if (gp->initializer[i]->name && !strcmp(gp->initializer[i]->name, name)) return 1;
  return 0;
}

static pt_status data_input(imp *im, const pt_onnx_binding *bind, int n_bind, const Onnx__ValueInfoProto **out) {
  const Onnx__GraphProto *gp = im->gp;
  const Onnx__ValueInfoProto *in = NULL;
  int count = 0;
  for (size_t i = 0; i < gp->n_input; i++) {
    const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
    int bound = is_initializer(gp, nm);
    for (int b = 0; b < n_bind; b++) bound |= !strcmp(bind[b].input, nm);
    if (!bound) in = gp->input[i], count++;
  }
  if (count != 1) return pt__error(PT_EUNSUPPORTED, "%s: the graph has %d data inputs (exactly one is supported)", im->what, count);
  const char *nm = in->name ? in->name : "";
  const Onnx__TypeProto *tp = in->type;
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return pt__error(PT_EUNSUPPORTED, "%s: input '%s' is not a tensor", im->what, nm);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  if (tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16)
    return pt__error(PT_EUNSUPPORTED, "%s: input '%s' has element type %s (FLOAT or FLOAT16 expected)", im->what, nm,
                     pt__onnx_dtype_name(tt->elem_type));
  if (!tt->shape || tt->shape->n_dim < 2 || tt->shape->n_dim > 4)
    return pt__error(PT_EUNSUPPORTED, "%s: input '%s' must have a known rank of 2 to 4 (batch first), has %zu", im->what,
                     nm, tt->shape ? tt->shape->n_dim : 0);
  for (size_t d = 1; d < tt->shape->n_dim; d++) {
    const Onnx__TensorShapeProto__Dimension *dm = tt->shape->dim[d];
    if (dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || !small(dm->dim_value))
      return pt__error(PT_EUNSUPPORTED, "%s: input '%s' dimension %zu is not a fixed size (only the batch may be symbolic)",
                       im->what, nm, d);
  }
  const Onnx__TensorShapeProto__Dimension *d0 = tt->shape->dim[0];
  im->batch = d0->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ? d0->dim_value : -1;
  *out = in;
  return PT_OK;
}

static void graph_name(const char *what, char *buf, size_t cap) {
  const char *b = strrchr(what, '/');
  b = b ? b + 1 : what;
  snprintf(buf, cap, "%s", b);
  size_t n = strlen(buf);
  if (n > 5 && !strcmp(buf + n - 5, ".onnx")) buf[n - 5] = 0;
  for (char *p = buf; *p; p++)
    if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') *p = '_';
}

static pt_status import(imp *im, const Onnx__ModelProto *mp, const pt_onnx_binding *bind, int n_bind, pt_graph **out) {
  if (!mp->graph) return pt__error(PT_EFORMAT, "%s: the model has no graph", im->what);
  im->gp = mp->graph;
  im->opset = 1;
  for (size_t i = 0; i < mp->n_opset_import; i++) {
    const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
    if ((!o->domain || !o->domain[0] || !strcmp(o->domain, "ai.onnx")) && o->has_version) im->opset = (int)o->version;
  }
  const Onnx__GraphProto *gp = im->gp;
  PT__TRY(name_nodes(im));
  for (int b = 0; b < n_bind; b++) {
    int known = 0;
    for (size_t i = 0; i < gp->n_input; i++) known |= gp->input[i]->name && !strcmp(gp->input[i]->name, bind[b].input);
    if (!known) return pt__error(PT_ENOTFOUND, "%s: no graph input named '%s' to bind", im->what, bind[b].input);
  }
  const Onnx__ValueInfoProto *in = NULL;
  PT__TRY(data_input(im, bind, n_bind, &in));
  /* constants: initializers, bindings, Constant nodes */
  for (size_t i = 0; i < gp->n_initializer; i++) {
    val *x = push(im, gp->initializer[i]->name ? gp->initializer[i]->name : "");
    if (!x) return pt__error(PT_ENOMEM, "%s: out of memory", im->what);
    x->is_const = 1;
    PT__TRY(pt__onnx_tensor(gp->initializer[i], im->what, &x->c));
  }
  for (int b = 0; b < n_bind; b++) {
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, bind[b].len, bind[b].tensor_pb);
    if (!t) return pt__error(PT_EFORMAT, "%s: the value bound to '%s' is not a serialized TensorProto", im->what, bind[b].input);
    val *x = push(im, bind[b].input);
    pt_status s = x ? pt__onnx_tensor(t, im->what, &x->c) : pt__error(PT_ENOMEM, "%s: out of memory", im->what);
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (s != PT_OK) return s;
    x->is_const = 1;
  }
  for (size_t k = 0; k < gp->n_node; k++)
    if (gp->node[k]->op_type && !strcmp(gp->node[k]->op_type, "Constant")) PT__TRY(op_constant(im, (int)k));
  /* the data input */
  const Onnx__TensorShapeProto *sh = in->type->tensor_type->shape;
  int rank = (int)sh->n_dim - 1;
  int64_t dims[3], c = 1, h = 1, w = 1;
  for (int d = 0; d < rank; d++) dims[d] = sh->dim[d + 1]->dim_value;
  if (rank == 3) c = dims[0], h = dims[1], w = dims[2];
  else if (rank == 2) h = dims[0], w = dims[1];
  else c = dims[0];
  char name[64];
  graph_name(im->what, name, sizeof name);
  im->g = pt__graph_new(name, (int)c, (int)h, (int)w, 0);
  if (!im->g) return pt__error(PT_ENOMEM, "%s: out of memory", im->what);
  {
    val *x = push(im, S(in->name));
    if (!x) return pt__error(PT_ENOMEM, "%s: out of memory", im->what);
    x->node = -1;
    x->rank = rank;
    memcpy(x->dims, dims, sizeof dims);
  }
  for (size_t k = 0; k < gp->n_node; k++)
    if (!im->fused[k]) PT__TRY(convert_node(im, (int)k));
  if (gp->n_output != 1) return pt__error(PT_EUNSUPPORTED, "%s: the graph has %zu outputs (exactly one is supported)", im->what, gp->n_output);
  val *o = find(im, S(gp->output[0]->name));
  if (!o) return pt__error(PT_EFORMAT, "%s: output '%s' is not computed by any node", im->what, S(gp->output[0]->name));
  if (o->is_const) return pt__error(PT_EUNSUPPORTED, "%s: output '%s' is a constant (the graph computes nothing)", im->what, o->name);
  if (o->pad_h || o->pad_w) return pt__error(PT_EUNSUPPORTED, "%s: output '%s' is a Pad (only folded into a Conv or AveragePool)", im->what, o->name);
  int onode = o->node;
  if (onode < 0) { /* Identity or Dropout of the input: the executor still copies it through a view */
    onode = pt__g_flatten(im->g, -1);
    if (onode < 0) return pt__error(im->g->err, "%s", im->g->errmsg);
  } else if (onode != im->g->n_nodes - 1) {
    return pt__error(PT_EUNSUPPORTED, "%s: nodes after the one computing output '%s' (dead code is not supported)", im->what, o->name);
  }
  if (o->rank == 1 && im->g->nodes[onode].out_ndim == 1) im->g->num_classes = (int)o->dims[0];
  PT__TRY(pt__graph_finish(im->g));
  *out = im->g;
  im->g = NULL;
  return PT_OK;
}

pt_status pt_onnx_import(const void *data, size_t len, const char *what, const pt_onnx_binding *bind, int n_bind,
                         pt_graph **out) {
  *out = NULL;
  if (!data || !len) return pt__error(PT_EFORMAT, "%s: empty file (not an ONNX model)", what);
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, data);
  if (!mp) return pt__error(PT_EFORMAT, "%s: not an ONNX model (protobuf parse failed: truncated or garbage)", what);
  imp im;
  memset(&im, 0, sizeof im);
  im.what = what;
  pt_status s = import(&im, mp, bind, n_bind, out);
  for (int i = 0; i < im.nv; i++) {
    pt__onnx_array_free(&im.v[i]->c);
    free(im.v[i]);
  }
  free(im.v);
  free(im.names);
  free(im.fused);
  pt_graph_free(im.g);
  onnx__model_proto__free_unpacked(mp, NULL);
  return s;
}

pt_status pt_onnx_load(const char *path, pt_graph **out) {
  void *data;
  size_t len;
  *out = NULL;
  PT__TRY(pt__map_file(path, &data, &len));
  pt_status s = pt_onnx_import(data, len, path, NULL, 0, out);
  pt__unmap_file(data, len);
  return s;
}
