/* ONNX import: the converters of the ops that compute (Conv, Gemm, MatMul, pools, BatchNormalization,
 * Add, activations, Flatten, Reshape, Softmax, Dropout, Pad) into graph IR nodes; docs/onnx.md gives
 * their semantics and limits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "frontend/onnx_internal.h"
#include "graph/graph_internal.h"

/* Symmetric (ph, pw) from pads/auto_pad for a 2-D window over (h, w). */
static pt_status window_pads(pt__ox_imp *im, int k, const int64_t *in, const int64_t *kern, const int64_t *str, int *ph,
                             int *pw) {
  char ap[32];
  int have;
  int64_t pads[4] = {0, 0, 0, 0};
  PT__TRY(pt__ox_attr_str(im, k, "auto_pad", ap, sizeof ap));
  PT__TRY(pt__ox_attr_ints(im, k, "pads", 4, pads, &have));
  int p[2];
  if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
    for (int d = 0; d < 2; d++) {
      int64_t out = (in[d] + str[d] - 1) / str[d], total = (out - 1) * str[d] + kern[d] - in[d];
      if (total < 0) total = 0;
      if (total % 2)
        return pt__ox_fail(im, k, PT_EUNSUPPORTED, "auto_pad %s needs asymmetric padding (%lld in total) on axis %d", ap,
                    (long long)total, d + 2);
      p[d] = (int)(total / 2);
    }
  } else if (!strcmp(ap, "VALID")) {
    p[0] = p[1] = 0;
  } else if (!ap[0] || !strcmp(ap, "NOTSET")) {
    for (int d = 0; d < 4; d++)
      if (pads[d] < 0 || pads[d] > 1 << 20) return pt__ox_fail(im, k, PT_EFORMAT, "bad pads value %lld", (long long)pads[d]);
    if (pads[0] != pads[2] || pads[1] != pads[3])
      return pt__ox_fail(im, k, PT_EUNSUPPORTED, "asymmetric pads [%lld,%lld,%lld,%lld]", (long long)pads[0],
                  (long long)pads[1], (long long)pads[2], (long long)pads[3]);
    p[0] = (int)pads[0];
    p[1] = (int)pads[1];
  } else {
    return pt__ox_fail(im, k, PT_EFORMAT, "unknown auto_pad '%s'", ap);
  }
  *ph = p[0];
  *pw = p[1];
  return PT_OK;
}

static pt_status check_dilations(pt__ox_imp *im, int k) {
  int64_t dil[2];
  int have;
  PT__TRY(pt__ox_attr_ints(im, k, "dilations", 2, dil, &have));
  if (have && (dil[0] != 1 || dil[1] != 1))
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "dilations [%lld,%lld] (only 1)", (long long)dil[0], (long long)dil[1]);
  return PT_OK;
}


pt_status pt__ox_op_conv(pt__ox_imp *im, int k) {
  pt__ox_val *x, *w, *b;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  PT__TRY(pt__ox_const_in(im, k, 1, 0, &w));
  PT__TRY(pt__ox_const_in(im, k, 2, 1, &b));
  PT__TRY(pt__ox_need_float(im, k, w));
  if (x->rank != 3) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "only 2-D convolutions (input of rank 4), got rank %d", x->rank + 1);
  if (w->c.rank != 4) return pt__ox_shape_str_fail(im, k, "weight", w);
  int64_t group, kern[2] = {w->c.dims[2], w->c.dims[3]}, str[2] = {1, 1}, ks[2];
  int have;
  PT__TRY(pt__ox_attr_int(im, k, "group", 1, &group));
  PT__TRY(check_dilations(im, k));
  PT__TRY(pt__ox_attr_ints(im, k, "kernel_shape", 2, ks, &have));
  if (have && (ks[0] != kern[0] || ks[1] != kern[1]))
    return pt__ox_fail(im, k, PT_ESHAPE, "kernel_shape [%lld,%lld] disagrees with the weight", (long long)ks[0], (long long)ks[1]);
  PT__TRY(pt__ox_attr_ints(im, k, "strides", 2, str, &have));
  const int64_t m = w->c.dims[0];
  if (!pt__ox_small(group) || !pt__ox_small(m) || !pt__ox_small(kern[0]) || !pt__ox_small(kern[1]) || !pt__ox_small(str[0]) || !pt__ox_small(str[1]) ||
      w->c.dims[1] * group != x->dims[0])
    return pt__ox_fail(im, k, PT_ESHAPE, "weight [%lld,%lld,%lld,%lld] with group %lld does not fit %lld input channels",
                (long long)m, (long long)w->c.dims[1], (long long)kern[0], (long long)kern[1], (long long)group,
                (long long)x->dims[0]);
  int ph, pw;
  PT__TRY(window_pads(im, k, x->dims + 1, kern, str, &ph, &pw));
  ph += x->pad_h, pw += x->pad_w;
  if (b && (pt__ox_need_float(im, k, b) != PT_OK || b->c.numel != m)) return pt__ox_shape_str_fail(im, k, "bias", b);
  pt__ox_val *fb = NULL;
  int add = pt__ox_bias_add(im, k, m, 1, &fb);
  pt_conv_params p = {(int)x->dims[0], (int)m, (int)kern[0], (int)kern[1], (int)str[0], (int)str[1], ph, pw,
                      (int)group, b || fb};
  int node = pt__g_conv2(im->g, im->names[k], x->node, &p);
  PT__TRY(pt__ox_add_node_out(im, k, node));
  PT__TRY(pt__ox_set_param(im, k, node, 0, pt__ox_copy_floats(w->c.f, w->c.numel)));
  if (p.has_bias) {
    float *bias = pt__calloc((size_t)m, sizeof *bias);
    if (bias && b) memcpy(bias, b->c.f, (size_t)m * sizeof *bias);
    if (bias && fb) pt__ox_add_bias(bias, m, fb);
    PT__TRY(pt__ox_set_param(im, k, node, 1, bias));
  }
  return pt__ox_alias_fused(im, k, add);
}

/* Gemm (alpha, beta, transB; transA 0) and MatMul: a Linear with weight (M, K). */
pt_status pt__ox_op_linear(pt__ox_imp *im, int k, int gemm) {
  pt__ox_val *x, *bm, *cm = NULL;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  PT__TRY(pt__ox_const_in(im, k, 1, 0, &bm));
  PT__TRY(pt__ox_need_float(im, k, bm));
  int64_t ta = 0, tb = 0;
  float alpha = 1.0f, beta = 1.0f;
  if (gemm) {
    PT__TRY(pt__ox_const_in(im, k, 2, 1, &cm));
    PT__TRY(pt__ox_attr_int(im, k, "transA", 0, &ta));
    PT__TRY(pt__ox_attr_int(im, k, "transB", 0, &tb));
    PT__TRY(pt__ox_attr_float(im, k, "alpha", 1.0f, &alpha));
    PT__TRY(pt__ox_attr_float(im, k, "beta", 1.0f, &beta));
    if (ta) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "transA 1 (the batch must stay the first dimension)");
  }
  if (x->rank != 1)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "%s of a rank-%d input (only (batch, features) times a constant matrix)",
                gemm ? "Gemm" : "MatMul", x->rank + 1);
  if (bm->c.rank != 2) return pt__ox_shape_str_fail(im, k, "matrix", bm);
  const int64_t kk = tb ? bm->c.dims[1] : bm->c.dims[0], m = tb ? bm->c.dims[0] : bm->c.dims[1];
  if (kk != x->dims[0] || !pt__ox_small(m) || !pt__ox_small(kk))
    return pt__ox_fail(im, k, PT_ESHAPE, "matrix '%s' [%lld,%lld]%s does not take %lld features", bm->name,
                (long long)bm->c.dims[0], (long long)bm->c.dims[1], tb ? " (transposed)" : "", (long long)x->dims[0]);
  if (cm) {
    PT__TRY(pt__ox_need_float(im, k, cm));
    int vec = cm->c.numel == m && (cm->c.rank == 1 || (cm->c.rank == 2 && cm->c.dims[0] == 1));
    if (cm->c.numel != 1 && !vec)
      return pt__ox_fail(im, k, PT_EUNSUPPORTED, "C '%s' of %lld elements is not a scalar or a row of %lld (a bias that varies along the batch)",
                  cm->name, (long long)cm->c.numel, (long long)m);
  }
  int in;
  PT__TRY(pt__ox_as_features(im, k, x, &in));
  pt__ox_val *fb = NULL;
  int add = pt__ox_bias_add(im, k, m, 0, &fb);
  int has_bias = cm || fb;
  int node = pt__g_linear2(im->g, im->names[k], in, (int)kk, (int)m, has_bias);
  PT__TRY(pt__ox_add_node_out(im, k, node));
  float *wt = pt__malloc((size_t)(m * kk) * sizeof *wt);
  if (wt)
    for (int64_t o = 0; o < m; o++)
      for (int64_t i = 0; i < kk; i++) wt[o * kk + i] = alpha * (tb ? bm->c.f[o * kk + i] : bm->c.f[i * m + o]);
  PT__TRY(pt__ox_set_param(im, k, node, 0, wt));
  if (has_bias) {
    float *bias = pt__calloc((size_t)m, sizeof *bias);
    if (bias && cm)
      for (int64_t o = 0; o < m; o++) bias[o] = beta * cm->c.f[cm->c.numel == 1 ? 0 : o];
    if (bias && fb) pt__ox_add_bias(bias, m, fb);
    PT__TRY(pt__ox_set_param(im, k, node, 1, bias));
  }
  return pt__ox_alias_fused(im, k, add);
}

pt_status pt__ox_op_pool(pt__ox_imp *im, int k, int is_max, int global) {
  const Onnx__NodeProto *n = im->gp->node[k];
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  if (x->rank != 3) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "only 2-D pooling (input of rank 4), got rank %d", x->rank + 1);
  if (n->n_output > 1 && n->output[1][0]) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "the Indices output");
  pt_pool_params p = {(int)x->dims[1], (int)x->dims[2], 1, 1, 0, 0};
  if (!global) {
    int64_t kern[2], str[2] = {1, 1}, ceil_mode, cip = 0;
    int have;
    PT__TRY(pt__ox_attr_ints(im, k, "kernel_shape", 2, kern, &have));
    if (!have) return pt__ox_fail(im, k, PT_EFORMAT, "no kernel_shape");
    PT__TRY(pt__ox_attr_ints(im, k, "strides", 2, str, &have));
    if (!pt__ox_small(kern[0]) || !pt__ox_small(kern[1]) || !pt__ox_small(str[0]) || !pt__ox_small(str[1]))
      return pt__ox_fail(im, k, PT_EFORMAT, "bad kernel_shape or strides");
    PT__TRY(check_dilations(im, k));
    PT__TRY(window_pads(im, k, x->dims + 1, kern, str, &p.ph, &p.pw));
    if ((x->pad_h || x->pad_w) && (p.ph || p.pw))
      return pt__ox_fail(im, k, PT_EUNSUPPORTED, "pads of its own after a Pad");
    if (x->pad_h || x->pad_w) cip = 1; /* the padded zeros are real elements: they count */
    p.ph += x->pad_h, p.pw += x->pad_w;
    p.kh = (int)kern[0], p.kw = (int)kern[1], p.sh = (int)str[0], p.sw = (int)str[1];
    PT__TRY(pt__ox_attr_int(im, k, "ceil_mode", 0, &ceil_mode));
    /* ceil_mode only matters when the last window would start inside the padded input */
    if (ceil_mode && ((x->dims[1] + 2 * p.ph - p.kh) % p.sh || (x->dims[2] + 2 * p.pw - p.kw) % p.sw))
      return pt__ox_fail(im, k, PT_EUNSUPPORTED, "ceil_mode 1 with a partial last window");
    if (!cip) PT__TRY(pt__ox_attr_int(im, k, "count_include_pad", 0, &cip));
    if (!is_max && !cip && (p.ph || p.pw))
      return pt__ox_fail(im, k, PT_EUNSUPPORTED, "count_include_pad 0 with padding (the divisor is always the window size)");
  }
  int node = pt__g_pool2(im->g, im->names[k], x->node, is_max ? PT_OP_MAXPOOL2D : PT_OP_AVGPOOL2D, &p);
  return pt__ox_add_node_out(im, k, node);
}

pt_status pt__ox_op_bn(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  pt__ox_val *x, *c[4];
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  for (int i = 0; i < 4; i++) {
    PT__TRY(pt__ox_const_in(im, k, i + 1, 0, &c[i]));
    PT__TRY(pt__ox_need_float(im, k, c[i]));
  }
  int64_t training, spatial;
  float eps;
  PT__TRY(pt__ox_attr_float(im, k, "epsilon", 1e-5f, &eps));
  PT__TRY(pt__ox_attr_int(im, k, "training_mode", 0, &training));
  PT__TRY(pt__ox_attr_int(im, k, "spatial", 1, &spatial));
  if (training || (n->n_output > 1 && n->output[1][0]))
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "training mode (inference statistics only)");
  if (!spatial) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "spatial 0");
  if (x->rank != 3) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "only (N, C, H, W) inputs, got rank %d", x->rank + 1);
  for (int i = 0; i < 4; i++)
    if (c[i]->c.numel != x->dims[0]) return pt__ox_shape_str_fail(im, k, "parameter", c[i]);
  int node = pt__g_bn(im->g, im->names[k], x->node, (int)x->dims[0], eps);
  PT__TRY(pt__ox_add_node_out(im, k, node));
  for (int i = 0; i < 4; i++) PT__TRY(pt__ox_set_param(im, k, node, i, pt__ox_copy_floats(c[i]->c.f, c[i]->c.numel)));
  return PT_OK;
}

static int same_shape(const pt__ox_val *a, const pt__ox_val *b) {
  return a->rank == b->rank && !memcmp(a->dims, b->dims, (size_t)a->rank * sizeof *a->dims);
}

pt_status pt__ox_op_add(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  if (n->n_input != 2) return pt__ox_fail(im, k, PT_EFORMAT, "%zu inputs", n->n_input);
  pt__ox_val *a = pt__ox_find(im, pt__ox_in_name(n, 0)), *b = pt__ox_find(im, pt__ox_in_name(n, 1));
  if (!a || !b) return pt__ox_fail(im, k, PT_EFORMAT, "an input is not defined before the node");
  if (a->is_const || b->is_const)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "adding a constant is supported only as the bias of the Conv, Gemm or MatMul before it");
  if (!same_shape(a, b)) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "broadcasting between computed tensors of different shapes");
  int ia = a->node, ib = b->node;
  if (pt__ox_ir_ndim(im, a) != pt__ox_ir_ndim(im, b)) {
    PT__TRY(pt__ox_as_features(im, k, a, &ia));
    PT__TRY(pt__ox_as_features(im, k, b, &ib));
  }
  int node = pt__g_add(im->g, im->names[k], ia, ib);
  if (node < 0) return pt__ox_fail(im, k, im->g->err, "%s", im->g->errmsg);
  return pt__ox_add_act(im, k, n->output[0], node, a->rank, a->dims);
}

pt_status pt__ox_op_act(pt__ox_imp *im, int k, pt_op_type t) {
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  int rank = x->rank;
  int64_t dims[PT_MAX_DIMS];
  memcpy(dims, x->dims, sizeof dims);
  int node = pt__g_act(im->g, im->names[k], x->node, t);
  if (node < 0) return pt__ox_fail(im, k, im->g->err, "%s", im->g->errmsg);
  return pt__ox_add_act(im, k, im->gp->node[k]->output[0], node, rank, dims);
}



pt_status pt__ox_op_flatten(pt__ox_imp *im, int k) {
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  int64_t axis;
  PT__TRY(pt__ox_attr_int(im, k, "axis", 1, &axis));
  if (axis < 0) axis += x->rank + 1;
  if (axis != 1) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "axis %lld (only 1, which keeps the batch)", (long long)axis);
  return pt__ox_to_features(im, k, x);
}

pt_status pt__ox_op_reshape(pt__ox_imp *im, int k) {
  pt__ox_val *x, *sh;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  const char *nm = pt__ox_in_name(im->gp->node[k], 1);
  sh = pt__ox_find(im, nm);
  if (!sh || !sh->is_const || !sh->c.i) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "the shape must be a constant of integers");
  int64_t allowzero;
  PT__TRY(pt__ox_attr_int(im, k, "allowzero", 0, &allowzero));
  const int64_t f = pt_shape_numel(x->rank, x->dims), *t = sh->c.i;
  int ok = sh->c.numel == 2;
  if (ok) {
    int t0_batch = (t[0] == 0 && !allowzero) || t[0] == PT__OX_BATCH || (im->batch > 0 && t[0] == im->batch) ||
                   (t[0] == -1 && t[1] == f);
    int t1_feat = t[1] == f || (t[1] == -1 && t[0] != -1) || (t[1] == 0 && !allowzero && x->rank == 1);
    ok = t0_batch && t1_feat;
  }
  if (!ok) {
    char s[96];
    int n = 0;
    s[0] = 0;
    for (int64_t i = 0; i < sh->c.numel && n < 80; i++)
      n += t[i] == PT__OX_BATCH ? snprintf(s + n, sizeof s - (size_t)n, "%sbatch", i ? "," : "")
                         : snprintf(s + n, sizeof s - (size_t)n, "%s%lld", i ? "," : "", (long long)t[i]);
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "reshape to [%s] (only to (batch, %lld))", s, (long long)f);
  }
  return pt__ox_to_features(im, k, x);
}

pt_status pt__ox_op_softmax(pt__ox_imp *im, int k) {
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  int64_t axis;
  PT__TRY(pt__ox_attr_int(im, k, "axis", im->opset >= 13 ? -1 : 1, &axis));
  if (axis < 0) axis += x->rank + 1;
  if (x->rank != 1 || axis != 1)
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "softmax over axis %lld of a rank-%d tensor (only the features of (batch, features))",
                (long long)axis, x->rank + 1);
  int in;
  PT__TRY(pt__ox_as_features(im, k, x, &in));
  int node = pt__g_softmax(im->g, im->names[k], in);
  return pt__ox_add_node_out(im, k, node);
}

pt_status pt__ox_op_dropout(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  if (n->n_output > 1 && n->output[1][0]) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "the mask output");
  const char *tm = pt__ox_in_name(n, 2);
  if (tm) {
    pt__ox_val *t = pt__ox_find(im, tm);
    if (!t || !t->is_const || t->c.numel != 1 || (t->c.i ? t->c.i[0] != 0 : t->c.f[0] != 0.0f))
      return pt__ox_fail(im, k, PT_EUNSUPPORTED, "training_mode that is not a constant false");
  }
  return pt__ox_alias(im, k, x);
}

/* Pad with zeros: none at all is an alias; symmetric on H and W only is left pending for the Conv
 * or AveragePool that reads it (PyTorch exports AvgPool2d as Pad + AveragePool). */
pt_status pt__ox_op_pad(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  pt__ox_val *x;
  PT__TRY(pt__ox_act_in(im, k, 0, &x));
  char mode[32];
  PT__TRY(pt__ox_attr_str(im, k, "mode", mode, sizeof mode));
  if (mode[0] && strcmp(mode, "constant")) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "mode '%s' (only constant zeros)", mode);
  const int r = x->rank + 1;
  int64_t pads[2 * PT_MAX_DIMS];
  float value = 0.0f;
  if (im->opset >= 11) {
    pt__ox_val *p = pt__ox_find(im, pt__ox_in_name(n, 1)), *v = pt__ox_find(im, pt__ox_in_name(n, 2));
    if (!p || !p->is_const || !p->c.i || p->c.numel != 2 * r) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "pads must be a constant of %d integers", 2 * r);
    memcpy(pads, p->c.i, (size_t)(2 * r) * sizeof *pads);
    if (pt__ox_in_name(n, 2)) {
      if (!v || !v->is_const || v->c.numel != 1) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "constant_value must be a constant scalar");
      value = v->c.f ? v->c.f[0] : (float)v->c.i[0];
    }
    if (pt__ox_in_name(n, 3)) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "the axes input");
  } else {
    const Onnx__AttributeProto *a = pt__ox_attr(n, "pads");
    if (!a || a->n_ints != (size_t)(2 * r)) return pt__ox_fail(im, k, PT_EFORMAT, "pads must have %d values", 2 * r);
    if (r) memcpy(pads, a->ints, (size_t)(2 * r) * sizeof *pads);
    PT__TRY(pt__ox_attr_float(im, k, "value", 0.0f, &value));
  }
  int64_t any = 0;
  for (int i = 0; i < 2 * r; i++) any |= pads[i];
  if (!any) return pt__ox_alias(im, k, x);
  if (value != 0.0f) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "padding value %g (only 0)", value);
  int ok = r == 4 && !pads[0] && !pads[1] && !pads[4] && !pads[5] && pads[2] == pads[6] && pads[3] == pads[7] &&
           pads[2] >= 0 && pads[3] >= 0 && pads[2] <= 1 << 20 && pads[3] <= 1 << 20;
  if (!ok) return pt__ox_fail(im, k, PT_EUNSUPPORTED, "padding other than symmetric zeros on H and W of (N, C, H, W)");
  PT__TRY(pt__ox_alias(im, k, x));
  pt__ox_val *y = im->v[im->nv - 1];
  y->pad_h = x->pad_h + (int)pads[2];
  y->pad_w = x->pad_w + (int)pads[3];
  return PT_OK;
}
