/* The executor: walks the graph in execution order, dispatching each node to the backend.
 * Activation buffers come from a pool and return to it after their last reader, so peak memory is
 * the largest live set, not the sum of all activations; the pool persists across runs. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_iface.h"
#include "core/error.h"
#include "predtuner/exec.h"

typedef struct pt__buf {
  void *ptr;
  size_t bytes;
  int uses; /* readers still to come; 0 and not free = being written */
  int free;
} pt__buf;

struct pt_exec {
  const pt_graph *g;
  pt_backend *be;
  void **param_dev; /* backend copies of g->params */
  int *readers;     /* per node: how many nodes read its output (+1 for the network output) */
  int *op_of_node;  /* per node: op index or -1 */
  pt__buf *pool;
  int n_pool, cap_pool;
  int *buf_of; /* per node: pool slot of its output during a run */
};

static const pt_backend_iface *IF(pt_exec *ex) { return ex->be->iface; }

void pt_exec_free(pt_exec *ex) {
  if (!ex) return;
  for (int i = 0; ex->param_dev && i < ex->g->n_params; i++)
    if (ex->param_dev[i]) IF(ex)->release(ex->be->ctx, ex->param_dev[i]);
  for (int i = 0; i < ex->n_pool; i++) IF(ex)->release(ex->be->ctx, ex->pool[i].ptr);
  free(ex->pool);
  free(ex->param_dev);
  free(ex->readers);
  free(ex->op_of_node);
  free(ex->buf_of);
  free(ex);
}

pt_status pt_exec_create(const pt_graph *g, pt_backend *be, pt_exec **out) {
  *out = NULL;
  pt_exec *ex = calloc(1, sizeof *ex);
  if (!ex) return pt__error(PT_ENOMEM, "executor: out of memory");
  ex->g = g;
  ex->be = be;
  ex->param_dev = calloc((size_t)(g->n_params ? g->n_params : 1), sizeof *ex->param_dev);
  ex->readers = calloc((size_t)g->n_nodes, sizeof *ex->readers);
  ex->op_of_node = malloc((size_t)g->n_nodes * sizeof *ex->op_of_node);
  ex->buf_of = malloc((size_t)g->n_nodes * sizeof *ex->buf_of);
  if (!ex->param_dev || !ex->readers || !ex->op_of_node || !ex->buf_of) {
    pt_exec_free(ex);
    return pt__error(PT_ENOMEM, "executor: out of memory");
  }
  for (int i = 0; i < g->n_nodes; i++) {
    ex->op_of_node[i] = -1;
    for (int k = 0; k < g->nodes[i].n_in; k++)
      if (g->nodes[i].in[k] >= 0) ex->readers[g->nodes[i].in[k]]++;
  }
  ex->readers[g->n_nodes - 1]++;
  for (int o = 0; o < g->n_ops; o++) ex->op_of_node[g->ops[o]] = o;
  for (int i = 0; i < g->n_params; i++) {
    const pt_param *p = &g->params[i];
    if (!p->data) {
      pt_exec_free(ex);
      return pt__error(PT_EINVAL, "executor: weights of '%s' are not loaded", p->name);
    }
    size_t bytes = (size_t)pt_shape_numel(p->ndim, p->shape) * sizeof(float);
    pt_status s = be->iface->alloc(be->ctx, bytes, &ex->param_dev[i]);
    if (s == PT_OK) s = be->iface->upload(be->ctx, ex->param_dev[i], p->data, bytes);
    if (s != PT_OK) {
      pt_exec_free(ex);
      return s;
    }
  }
  *out = ex;
  return PT_OK;
}

/* A free pool buffer of at least `bytes` (best fit), or a new one. Returns the slot or -1. */
static int pool_get(pt_exec *ex, size_t bytes, int uses) {
  int best = -1;
  for (int i = 0; i < ex->n_pool; i++)
    if (ex->pool[i].free && ex->pool[i].bytes >= bytes && (best < 0 || ex->pool[i].bytes < ex->pool[best].bytes))
      best = i;
  if (best < 0) {
    if (ex->n_pool == ex->cap_pool) {
      int cap = ex->cap_pool ? 2 * ex->cap_pool : 16;
      pt__buf *np = realloc(ex->pool, (size_t)cap * sizeof *np);
      if (!np) {
        pt__error(PT_ENOMEM, "executor: out of memory");
        return -1;
      }
      ex->pool = np;
      ex->cap_pool = cap;
    }
    void *ptr;
    if (IF(ex)->alloc(ex->be->ctx, bytes, &ptr) != PT_OK) return -1;
    best = ex->n_pool++;
    ex->pool[best].ptr = ptr;
    ex->pool[best].bytes = bytes;
  }
  ex->pool[best].free = 0;
  ex->pool[best].uses = uses;
  return best;
}

static void pool_read_done(pt_exec *ex, int slot) {
  if (slot >= 0 && --ex->pool[slot].uses <= 0) ex->pool[slot].free = 1;
}

static const float *P(pt_exec *ex, const pt_node *n, int k) {
  return n->param[k] >= 0 ? (const float *)ex->param_dev[n->param[k]] : NULL;
}

static pt_status run_node(pt_exec *ex, const pt_node *n, int batch, int fp16, const float *x, const float *x2,
                          float *y) {
  const pt_backend_iface *f = IF(ex);
  void *c = ex->be->ctx;
  const pt_graph *g = ex->g;
  int64_t in_sh[3];
  int in = n->in[0];
  if (in < 0) {
    in_sh[0] = g->in_c;
    in_sh[1] = g->in_h;
    in_sh[2] = g->in_w;
  } else {
    memcpy(in_sh, g->nodes[in].out_shape, sizeof in_sh);
  }
  int64_t count = (int64_t)batch * pt_shape_numel(n->out_ndim, n->out_shape);
  switch (n->type) {
    case PT_OP_CONV2D: {
      const pt_conv_params *cp = &n->p.conv;
      pt_conv_desc d = {batch, cp->cin, (int)in_sh[1], (int)in_sh[2], cp->cout, (int)n->out_shape[1],
                        (int)n->out_shape[2], cp->kh, cp->kw, cp->sh, cp->sw, cp->ph, cp->pw, cp->groups, fp16};
      return f->conv2d(c, &d, x, P(ex, n, 0), P(ex, n, 1), y);
    }
    case PT_OP_LINEAR:
      return f->linear(c, batch, n->p.linear.in, n->p.linear.out, fp16, x, P(ex, n, 0), P(ex, n, 1), y);
    case PT_OP_RELU:
    case PT_OP_TANH: return f->activation(c, n->type, count, fp16, x, y);
    case PT_OP_MAXPOOL2D:
    case PT_OP_AVGPOOL2D: {
      const pt_pool_params *pp = &n->p.pool;
      pt_pool_desc d = {batch, (int)in_sh[0], (int)in_sh[1], (int)in_sh[2], (int)n->out_shape[1], (int)n->out_shape[2],
                        pp->kh, pp->kw, pp->sh, pp->sw, pp->ph, pp->pw, n->type == PT_OP_MAXPOOL2D, fp16};
      return f->pool2d(c, &d, x, y);
    }
    case PT_OP_BATCHNORM2D:
      return f->batchnorm2d(c, batch, n->p.bn.c, n->out_shape[1] * n->out_shape[2], n->p.bn.eps, fp16, x, P(ex, n, 0),
                            P(ex, n, 1), P(ex, n, 2), P(ex, n, 3), y);
    case PT_OP_ADD: return f->add(c, count, fp16, x, x2, y);
    case PT_OP_SOFTMAX: return f->softmax(c, batch, (int)n->out_shape[0], fp16, x, y);
    default: return pt__error(PT_EUNSUPPORTED, "executor: node '%s' of type %s", n->name, pt_op_type_name(n->type));
  }
}

pt_status pt_exec_run(pt_exec *ex, const float *input, int n, const pt_op_exec *ops, float *output) {
  const pt_graph *g = ex->g;
  if (n <= 0) return pt__error(PT_EINVAL, "executor: batch of %d images", n);
  for (int i = 0; i < ex->n_pool; i++) ex->pool[i].free = 1;
  pt_status s = PT_OK;
  size_t in_bytes = (size_t)n * (size_t)pt__node_out_numel(g, -1) * sizeof(float);
  int readers_of_input = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_in; k++) readers_of_input += g->nodes[i].in[k] < 0;
  int in_slot = pool_get(ex, in_bytes, readers_of_input);
  if (in_slot < 0) return PT_ENOMEM;
  s = IF(ex)->upload(ex->be->ctx, ex->pool[in_slot].ptr, input, in_bytes);
  for (int i = 0; s == PT_OK && i < g->n_nodes; i++) {
    const pt_node *nd = &g->nodes[i];
    int op = ex->op_of_node[i];
    int fp16 = ops && op >= 0 ? ops[op].fp16 : 0;
    int s0 = nd->in[0] < 0 ? in_slot : ex->buf_of[nd->in[0]];
    int s1 = nd->n_in > 1 ? (nd->in[1] < 0 ? in_slot : ex->buf_of[nd->in[1]]) : -1;
    if (nd->type == PT_OP_FLATTEN) { /* a view: share the producer's buffer */
      ex->buf_of[i] = s0;
      ex->pool[s0].uses += ex->readers[i];
      pool_read_done(ex, s0);
      continue;
    }
    size_t bytes = (size_t)n * (size_t)pt__node_out_numel(g, i) * sizeof(float);
    int so = pool_get(ex, bytes, ex->readers[i]);
    if (so < 0) {
      s = PT_ENOMEM;
      break;
    }
    ex->buf_of[i] = so;
    s = run_node(ex, nd, n, fp16, ex->pool[s0].ptr, s1 >= 0 ? ex->pool[s1].ptr : NULL, ex->pool[so].ptr);
    if (s != PT_OK) {
      pt__error_prefix("op '%s'", nd->name);
      break;
    }
    pool_read_done(ex, s0);
    if (s1 >= 0) pool_read_done(ex, s1);
  }
  if (s == PT_OK) {
    int last = ex->buf_of[g->n_nodes - 1];
    s = IF(ex)->download(ex->be->ctx, output, ex->pool[last].ptr, (size_t)n * (size_t)g->num_classes * sizeof(float));
  }
  if (s == PT_OK) s = IF(ex)->synchronize(ex->be->ctx);
  return s;
}
