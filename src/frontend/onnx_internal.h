/* ONNX import internals, shared by onnx.c (the driver), onnx_util.c (values, attributes, inputs),
 * onnx_ops.c and onnx_shape.c (the converters) and onnx_tensor.c (constants); the protobuf-c structs
 * are generated at build time from Debian's onnx.proto. */
#ifndef PT_FRONTEND_ONNX_INTERNAL_H
#define PT_FRONTEND_ONNX_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "core/error.h"
#include "graph/graph_internal.h"
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


/* The batch size in folded shape constants (onnx_shape.c): the batch is unknown at import, so Shape
 * writes this for it and only Reshape's first entry may hold it. */
#define PT__OX_BATCH INT64_MIN

/* One value of the ONNX graph: computed from the data input, or a constant. */
typedef struct pt__ox_val {
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
} pt__ox_val;

/* The import's state. */
typedef struct pt__ox_imp {
  const char *what;
  const Onnx__GraphProto *gp;
  int opset;
  pt_graph *g;
  pt__ox_val **v; /* each value allocated on its own, so pointers stay valid as the table grows */
  int nv, cap;
  int64_t batch;     /* declared batch size of the input, -1 when symbolic */
  char (*names)[128]; /* node names given so far (per ONNX node) */
  uint8_t *fused;    /* per ONNX node: folded into an earlier node */
} pt__ox_imp;

/* ---- values, attributes, inputs and shared helpers (onnx_util.c) ---- */
/* "<file>: node '<name>' (<op>): <msg>" */
pt_status pt__ox_fail(pt__ox_imp *im, int k, pt_status s, const char *fmt, ...) PT__PRINTF(4, 5);
/* protobuf-c leaves unset optional strings NULL */
const char *pt__ox_str(const char *s);
/* The value called name (the latest one of that name), or NULL. */
pt__ox_val *pt__ox_find(pt__ox_imp *im, const char *name);
/* A new value called name (NULL when out of memory). */
pt__ox_val *pt__ox_push(pt__ox_imp *im, const char *name);
pt_status pt__ox_add_act(pt__ox_imp *im, int k, const char *name, int node, int rank, const int64_t *dims);
/* The IR shape of a computed value. */
int pt__ox_ir_ndim(const pt__ox_imp *im, const pt__ox_val *x);
/* A new IR node's output as a computed value with its IR shape as the per-image shape. */
pt_status pt__ox_add_node_out(pt__ox_imp *im, int k, int node);
/* ---- attributes ---- */
const Onnx__AttributeProto *pt__ox_attr(const Onnx__NodeProto *n, const char *name);
pt_status pt__ox_attr_int(pt__ox_imp *im, int k, const char *name, int64_t def, int64_t *out);
pt_status pt__ox_attr_float(pt__ox_imp *im, int k, const char *name, float def, float *out);
/* ints attribute of exactly n values (n_out: 0 when absent). */
pt_status pt__ox_attr_ints(pt__ox_imp *im, int k, const char *name, int n, int64_t *vals, int *present);
/* String attribute into buf ("" when absent). */
pt_status pt__ox_attr_str(pt__ox_imp *im, int k, const char *name, char *buf, size_t cap);
/* ---- inputs ---- */
const char *pt__ox_in_name(const Onnx__NodeProto *n, int i);
pt_status pt__ox_act_in(pt__ox_imp *im, int k, int i, pt__ox_val **out);
/* A float constant input; optional: NULL when absent. */
pt_status pt__ox_const_in(pt__ox_imp *im, int k, int i, int optional, pt__ox_val **out);
pt_status pt__ox_need_float(pt__ox_imp *im, int k, const pt__ox_val *c);
/* The IR node to read x as (batch, features): flattens an (F, 1, 1) network input view. */
pt_status pt__ox_as_features(pt__ox_imp *im, int k, const pt__ox_val *x, int *node);
float *pt__ox_copy_floats(const float *src, int64_t n);
pt_status pt__ox_set_param(pt__ox_imp *im, int k, int node, int slot, float *data);
pt_status pt__ox_shape_str_fail(pt__ox_imp *im, int k, const char *what, const pt__ox_val *c);
/* Bias folding: a Conv, Gemm or MatMul whose only reader is an Add of a constant that broadcasts
 * per output channel (what exporters emit for a bias-less op plus a bias). Returns the Add's node
 * index (and marks it fused) or -1. */
int pt__ox_bias_add(pt__ox_imp *im, int k, int64_t m, int conv, pt__ox_val **cst);
/* Adds the folded constant (per channel or scalar) into bias[m]. */
void pt__ox_add_bias(float *bias, int64_t m, const pt__ox_val *c);
/* After a fused bias, the op's value carries the Add's output name too. */
pt_status pt__ox_alias_fused(pt__ox_imp *im, int k, int add);
int pt__ox_small(int64_t v);
/* Output k of node equals its input 0 (Identity, Dropout at inference, Flatten of (batch, F)). */
pt_status pt__ox_alias(pt__ox_imp *im, int k, const pt__ox_val *x);
pt_status pt__ox_to_features(pt__ox_imp *im, int k, const pt__ox_val *x);

/* ---- op converters (onnx_ops.c): each converts ONNX node k ---- */
pt_status pt__ox_op_conv(pt__ox_imp *im, int k);
/* Gemm (alpha, beta, transB; transA 0) and MatMul: a Linear with weight (M, K). */
pt_status pt__ox_op_linear(pt__ox_imp *im, int k, int gemm);
pt_status pt__ox_op_pool(pt__ox_imp *im, int k, int is_max, int global);
pt_status pt__ox_op_bn(pt__ox_imp *im, int k);
pt_status pt__ox_op_add(pt__ox_imp *im, int k);
pt_status pt__ox_op_act(pt__ox_imp *im, int k, pt_op_type t);
pt_status pt__ox_op_flatten(pt__ox_imp *im, int k);
pt_status pt__ox_op_reshape(pt__ox_imp *im, int k);
pt_status pt__ox_op_softmax(pt__ox_imp *im, int k);
pt_status pt__ox_op_dropout(pt__ox_imp *im, int k);
/* Pad with zeros: none at all is an alias; symmetric on H and W only is left pending for the Conv
 * or AveragePool that reads it (PyTorch exports AvgPool2d as Pad + AveragePool). */
pt_status pt__ox_op_pad(pt__ox_imp *im, int k);

/* ---- constants and shape arithmetic (onnx_shape.c) ---- */
pt_status pt__ox_op_shape(pt__ox_imp *im, int k);
pt_status pt__ox_op_gather(pt__ox_imp *im, int k);
pt_status pt__ox_op_unsqueeze(pt__ox_imp *im, int k);
pt_status pt__ox_op_concat(pt__ox_imp *im, int k);
/* Constant nodes hold no data input, so all of them are evaluated before the graph is walked. */
pt_status pt__ox_op_constant(pt__ox_imp *im, int k);

#endif
