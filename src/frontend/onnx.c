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

static const char SUPPORTED[] =
    "Conv, Gemm, MatMul, Add, Relu, Tanh, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, Flatten, "
    "Reshape, Softmax, Identity, Dropout, Constant, Pad (zeros, before Conv or AveragePool), and Shape, Gather, "
    "Unsqueeze, Concat on shapes";

static pt_status convert_node(pt__ox_imp *im, int k) {
  const Onnx__NodeProto *n = im->gp->node[k];
  const char *t = n->op_type ? n->op_type : "";
  if (n->domain && n->domain[0] && strcmp(n->domain, "ai.onnx"))
    return pt__ox_fail(im, k, PT_EUNSUPPORTED, "operator domain '%s' (only the default ONNX domain)", n->domain);
  if (!strcmp(t, "Constant")) return PT_OK; /* done in the first pass */
  if (n->n_output < 1 || !n->output[0][0]) return pt__ox_fail(im, k, PT_EFORMAT, "no output");
  if (!strcmp(t, "Conv")) return pt__ox_op_conv(im, k);
  if (!strcmp(t, "Gemm")) return pt__ox_op_linear(im, k, 1);
  if (!strcmp(t, "MatMul")) return pt__ox_op_linear(im, k, 0);
  if (!strcmp(t, "Relu")) return pt__ox_op_act(im, k, PT_OP_RELU);
  if (!strcmp(t, "Tanh")) return pt__ox_op_act(im, k, PT_OP_TANH);
  if (!strcmp(t, "MaxPool")) return pt__ox_op_pool(im, k, 1, 0);
  if (!strcmp(t, "AveragePool")) return pt__ox_op_pool(im, k, 0, 0);
  if (!strcmp(t, "GlobalAveragePool")) return pt__ox_op_pool(im, k, 0, 1);
  if (!strcmp(t, "BatchNormalization")) return pt__ox_op_bn(im, k);
  if (!strcmp(t, "Add")) return pt__ox_op_add(im, k);
  if (!strcmp(t, "Flatten")) return pt__ox_op_flatten(im, k);
  if (!strcmp(t, "Reshape")) return pt__ox_op_reshape(im, k);
  if (!strcmp(t, "Softmax")) return pt__ox_op_softmax(im, k);
  if (!strcmp(t, "Dropout")) return pt__ox_op_dropout(im, k);
  if (!strcmp(t, "Pad")) return pt__ox_op_pad(im, k);
  if (!strcmp(t, "Shape")) return pt__ox_op_shape(im, k);
  if (!strcmp(t, "Gather")) return pt__ox_op_gather(im, k);
  if (!strcmp(t, "Unsqueeze")) return pt__ox_op_unsqueeze(im, k);
  if (!strcmp(t, "Concat")) return pt__ox_op_concat(im, k);
  if (!strcmp(t, "Identity")) {
    pt__ox_val *x;
    PT__TRY(pt__ox_act_in(im, k, 0, &x));
    return pt__ox_alias(im, k, x);
  }
  return pt__ox_fail(im, k, PT_EUNSUPPORTED, "op type '%s' is not supported (supported: %s)", t, SUPPORTED);
}

/* Node names: the ONNX name, or "<OpType>_<index>" when empty; a repeat gets "_<index>" appended. */
static pt_status name_nodes(pt__ox_imp *im) {
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

static pt_status data_input(pt__ox_imp *im, const pt_onnx_binding *bind, int n_bind, const Onnx__ValueInfoProto **out) {
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
    if (dm->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE || !pt__ox_small(dm->dim_value))
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

static pt_status import(pt__ox_imp *im, const Onnx__ModelProto *mp, const pt_onnx_binding *bind, int n_bind, pt_graph **out) {
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
    pt__ox_val *x = pt__ox_push(im, gp->initializer[i]->name ? gp->initializer[i]->name : "");
    if (!x) return pt__error(PT_ENOMEM, "%s: out of memory", im->what);
    x->is_const = 1;
    PT__TRY(pt__onnx_tensor(gp->initializer[i], im->what, &x->c));
  }
  for (int b = 0; b < n_bind; b++) {
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, bind[b].len, bind[b].tensor_pb);
    if (!t) return pt__error(PT_EFORMAT, "%s: the value bound to '%s' is not a serialized TensorProto", im->what, bind[b].input);
    pt__ox_val *x = pt__ox_push(im, bind[b].input);
    pt_status s = x ? pt__onnx_tensor(t, im->what, &x->c) : pt__error(PT_ENOMEM, "%s: out of memory", im->what);
    onnx__tensor_proto__free_unpacked(t, NULL);
    if (s != PT_OK) return s;
    x->is_const = 1;
  }
  for (size_t k = 0; k < gp->n_node; k++)
    if (gp->node[k]->op_type && !strcmp(gp->node[k]->op_type, "Constant")) PT__TRY(pt__ox_op_constant(im, (int)k));
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
    pt__ox_val *x = pt__ox_push(im, pt__ox_str(in->name));
    if (!x) return pt__error(PT_ENOMEM, "%s: out of memory", im->what);
    x->node = -1;
    x->rank = rank;
    memcpy(x->dims, dims, sizeof dims);
  }
  for (size_t k = 0; k < gp->n_node; k++)
    if (!im->fused[k]) PT__TRY(convert_node(im, (int)k));
  if (gp->n_output != 1) return pt__error(PT_EUNSUPPORTED, "%s: the graph has %zu outputs (exactly one is supported)", im->what, gp->n_output);
  pt__ox_val *o = pt__ox_find(im, pt__ox_str(gp->output[0]->name));
  if (!o) return pt__error(PT_EFORMAT, "%s: output '%s' is not computed by any node", im->what, pt__ox_str(gp->output[0]->name));
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
  pt__ox_imp im;
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
