/* Front ends: a network from the built-in zoo (weights from a safetensors file or a PyTorch
 * checkpoint) or from an ONNX file (weights from its initializers). */
#ifndef PREDTUNER_FRONTEND_H
#define PREDTUNER_FRONTEND_H

#include <stddef.h>

#include "predtuner/graph.h"
#include "predtuner/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* model is a zoo name or a path ending in ".onnx". For a zoo network, weights (required) is a
 * .safetensors file or a PyTorch checkpoint (.pth, .pth.tar, .pt); for ONNX, weights must be NULL
 * (they come from the initializers). */
pt_status pt_model_load(const char *model, const char *weights, pt_graph **out);
/* Whether model names an ONNX file (by its ".onnx" suffix). */
int pt_model_is_onnx(const char *model);

/* ONNX import (docs/onnx.md): Conv, Gemm, MatMul (+ Add), Relu, Tanh, MaxPool,
 * AveragePool, GlobalAveragePool, BatchNormalization, Add, Flatten, Reshape to (batch, features),
 * Softmax, Identity, Dropout, Constant. The first dimension of the single data input is the batch.
 * Op names are the node names (made unique when missing or repeated). */
pt_status pt_onnx_load(const char *path, pt_graph **out);

/* A graph input given a constant value (a serialized onnx.TensorProto): how the ONNX node tests,
 * which feed weights as inputs, are imported. */
typedef struct pt_onnx_binding {
  const char *input;
  const void *tensor_pb;
  size_t len;
} pt_onnx_binding;

/* Imports a serialized onnx.ModelProto; `what` names it in errors (a path). */
pt_status pt_onnx_import(const void *data, size_t len, const char *what, const pt_onnx_binding *bind, int n_bind,
                         pt_graph **out);
/* Reads a serialized onnx.TensorProto of FLOAT, FLOAT16 or DOUBLE elements into a new f32 tensor. */
pt_status pt_onnx_read_tensor(const void *data, size_t len, const char *what, pt_tensor *out);

#ifdef __cplusplus
}
#endif
#endif
