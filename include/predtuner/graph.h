/* Networks as graphs of ops. Ops are the leaf modules of the PyTorch model, named by their dotted
 * module path and listed in registration order; residual adds and flattening are nodes but not ops. */
#ifndef PREDTUNER_GRAPH_H
#define PREDTUNER_GRAPH_H

#include <stdint.h>

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_graph pt_graph;

typedef enum pt_op_type {
  PT_OP_CONV2D = 0,
  PT_OP_LINEAR,
  PT_OP_RELU,
  PT_OP_TANH,
  PT_OP_MAXPOOL2D,
  PT_OP_AVGPOOL2D,
  PT_OP_BATCHNORM2D,
  PT_OP_SOFTMAX,
  PT_OP_ADD,     /* residual add: executed, not an op */
  PT_OP_FLATTEN, /* view to (N, F): executed, not an op */
  PT_OP__COUNT
} pt_op_type;

/* PyTorch's class name ("Conv2d", "MaxPool2d", ...); "add" and "flatten" for the non-modules. */
const char *pt_op_type_name(pt_op_type t);

void pt_graph_free(pt_graph *g);
const char *pt_graph_name(const pt_graph *g);
/* Input image shape (C, H, W) and number of output classes. */
void pt_graph_input_shape(const pt_graph *g, int *c, int *h, int *w);
int pt_graph_num_classes(const pt_graph *g);
/* Elements of the network's output per image (num_classes for a classifier; an imported ONNX graph
 * that is not one has num_classes 0 and any output shape). */
int64_t pt_graph_output_numel(const pt_graph *g);

int pt_graph_num_ops(const pt_graph *g);
const char *pt_graph_op_name(const pt_graph *g, int op);
pt_op_type pt_graph_op_type(const pt_graph *g, int op);
/* Per-image output shape of op: returns ndim (3 for (C,H,W), 1 for (F)). */
int pt_graph_op_out_shape(const pt_graph *g, int op, int64_t shape[3]);
/* FLOPs of op for one image, by PredTuner's summary rules (docs/design.md, "QoS, cost and models"). */
double pt_graph_op_flops(const pt_graph *g, int op);
/* Learnable parameters of op (weights and biases; BatchNorm's running statistics excluded). */
int64_t pt_graph_op_params(const pt_graph *g, int op);
/* Index of the op named name, or -1. */
int pt_graph_find_op(const pt_graph *g, const char *name);

int64_t pt_graph_total_params(const pt_graph *g);
double pt_graph_total_flops(const pt_graph *g);
int pt_graph_count_ops(const pt_graph *g, pt_op_type t);

/* Tensors the network expects in a weights file (state_dict keys in module order). */
int pt_graph_num_tensors(const pt_graph *g);
const char *pt_graph_tensor_name(const pt_graph *g, int i);
int pt_graph_tensor_shape(const pt_graph *g, int i, int64_t shape[4]);
/* How many of tensor i's loaded values are NaN or infinite (0 before it is loaded). */
int64_t pt_graph_tensor_nonfinite(const pt_graph *g, int i);
/* Weights holding NaN or infinity: a warning per tensor naming it (file: where they came from), or
 * with strict PT_ENONFINITE for the first. */
pt_status pt_graph_check_weights(const pt_graph *g, const char *file, int strict);
/* Content hashes of the network's structure (nodes, shapes, tensor names) and of its weights'
 * values, for fingerprints of stored models and journals. */
void pt_graph_fingerprint(const pt_graph *g, uint64_t *structure, uint64_t *weights);
/* Fills every weight with a deterministic pseudo-random value (He-uniform for conv/linear
 * weights, BatchNorm scales in [0.4, 0.8] so deep residual stacks stay in fp16 range): for benchmarks and tests without trained weights. */
void pt_graph_init_random(pt_graph *g, uint64_t seed);

#ifdef __cplusplus
}
#endif
#endif
