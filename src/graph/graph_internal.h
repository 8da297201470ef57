/* The graph IR behind the opaque pt_graph, for the builder (zoo, later ONNX), loaders and executor. */
#ifndef PT_GRAPH_INTERNAL_H
#define PT_GRAPH_INTERNAL_H

#include "predtuner/graph.h"
#include "predtuner/tensor.h"

typedef struct pt_conv_params {
  int cin, cout, kh, kw, sh, sw, ph, pw, groups, has_bias;
} pt_conv_params;

typedef struct pt_pool_params {
  int kh, kw, sh, sw, ph, pw;
} pt_pool_params;

typedef struct pt_node {
  pt_op_type type;
  char name[128]; /* module path for ops; a synthetic "<prefix>+add" name otherwise */
  int is_op;     /* leaf module (a knob can apply) */
  int reg;       /* registration order among ops; -1 for non-ops */
  int n_in;
  int in[2];              /* producer node indices; -1 is the network input */
  int out_ndim;           /* 3: (C, H, W) or 1: (F), per image */
  int64_t out_shape[3];
  union {
    pt_conv_params conv;
    struct { int in, out, has_bias; } linear;
    pt_pool_params pool;
    struct { int c; float eps; } bn;
  } p;
  int param[4]; /* graph tensor indices: weight, bias, running_mean, running_var; -1 if absent */
} pt_node;

typedef struct pt_param {
  char name[160]; /* state_dict key */
  int ndim;
  int64_t shape[4];
  int learnable; /* counted as a parameter (running statistics are buffers) */
  float *data;   /* owned; NULL until loaded */
} pt_param;

struct pt_graph {
  char name[64];
  int in_c, in_h, in_w, num_classes;
  pt_node *nodes; /* execution order (topological) */
  int n_nodes, cap_nodes;
  pt_param *params;
  int n_params, cap_params;
  int *ops; /* node indices of the ops, in registration order; built by pt__graph_finish */
  int n_ops;
  int next_reg;
  pt_status err; /* first builder error (detail in pt_last_error at that time) */
  char errmsg[512];
};

/* Builder. Each returns the new node's index, or -1 after recording an error in g->err. `in` is a
 * node index or -1 for the network input. */
pt_graph *pt__graph_new(const char *name, int c, int h, int w, int num_classes);
int pt__g_conv(pt_graph *g, const char *name, int in, int cin, int cout, int k, int stride, int pad,
               int groups, int bias);
int pt__g_conv2(pt_graph *g, const char *name, int in, const pt_conv_params *p);
int pt__g_linear(pt_graph *g, const char *name, int in, int nin, int nout);
int pt__g_linear2(pt_graph *g, const char *name, int in, int nin, int nout, int has_bias);
int pt__g_act(pt_graph *g, const char *name, int in, pt_op_type type);
int pt__g_pool(pt_graph *g, const char *name, int in, pt_op_type type, int k, int stride, int pad);
int pt__g_pool2(pt_graph *g, const char *name, int in, pt_op_type type, const pt_pool_params *p);
int pt__g_bn(pt_graph *g, const char *name, int in, int c, float eps);
int pt__g_softmax(pt_graph *g, const char *name, int in);
int pt__g_add(pt_graph *g, const char *name, int a, int b);
int pt__g_flatten(pt_graph *g, int in);
/* PyTorch registers modules in attribute order, which may differ from execution order (a ResNet
 * block registers relu1 before the shortcut that runs first): reserve a slot, then assign it. */
int pt__g_reserve_reg(pt_graph *g);
void pt__g_set_reg(pt_graph *g, int node, int reg);
/* Validates and sorts the ops; the last node is the output. Returns g->err. */
pt_status pt__graph_finish(pt_graph *g);

const pt_node *pt__graph_op_node(const pt_graph *g, int op);
double pt__node_flops(const pt_graph *g, const pt_node *n);
/* Per-image element count of node i's output (i == -1: the input image). */
int64_t pt__node_out_numel(const pt_graph *g, int i);

#endif
