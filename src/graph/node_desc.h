/* Backend descriptors of graph nodes: the exact convolution or pooling that a node computes on a
 * batch, shapes from the graph, no knob set. The executor and the convolution benchmarks build
 * their descriptors here, so the backend never needs the graph IR. */
#ifndef PT_GRAPH_NODE_DESC_H
#define PT_GRAPH_NODE_DESC_H

#include "backend/backend_iface.h"
#include "graph/graph_internal.h"

/* The (C, H, W) shape node n reads as its first input. */
static inline void pt__node_in_shape(const pt_graph *g, const pt_node *n, int64_t sh[3]) {
  if (n->in[0] < 0) {
    sh[0] = g->in_c, sh[1] = g->in_h, sh[2] = g->in_w;
  } else {
    for (int k = 0; k < 3; k++) sh[k] = g->nodes[n->in[0]].out_shape[k];
  }
}

/* Node n (PT_OP_CONV2D) as a convolution of `batch` images. */
static inline pt_conv_desc pt__conv_desc_of_node(const pt_graph *g, const pt_node *n, int batch) {
  const pt_conv_params *cp = &n->p.conv;
  int64_t in[3];
  pt__node_in_shape(g, n, in);
  pt_conv_desc d = {.n = batch, .cin = cp->cin, .h = (int)in[1], .w = (int)in[2], .cout = cp->cout,
                    .oh = (int)n->out_shape[1], .ow = (int)n->out_shape[2], .kh = cp->kh, .kw = cp->kw,
                    .sh = cp->sh, .sw = cp->sw, .ph = cp->ph, .pw = cp->pw, .groups = cp->groups};
  return d;
}

/* Node n (PT_OP_MAXPOOL2D or PT_OP_AVGPOOL2D) as a pooling of `batch` images. */
static inline pt_pool_desc pt__pool_desc_of_node(const pt_graph *g, const pt_node *n, int batch) {
  const pt_pool_params *pp = &n->p.pool;
  int64_t in[3];
  pt__node_in_shape(g, n, in);
  pt_pool_desc d = {.n = batch, .c = (int)in[0], .h = (int)in[1], .w = (int)in[2], .oh = (int)n->out_shape[1],
                    .ow = (int)n->out_shape[2], .kh = pp->kh, .kw = pp->kw, .sh = pp->sh, .sw = pp->sw,
                    .ph = pp->ph, .pw = pp->pw, .is_max = n->type == PT_OP_MAXPOOL2D};
  return d;
}

#endif
