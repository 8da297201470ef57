/* The executor: walks the graph in execution order, dispatching each node to the backend.
 * Activation buffers come from a pool and return to it after their last reader, so peak memory is
 * the largest live set, not the sum of all activations; the pool persists across runs. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_iface.h"
#include "core/error.h"
#include "kernels/knob_math.h"
#include "predtuner/exec.h"
#include "predtuner/log.h"

#define PT__LANES_MAX 8
/* Cap on the device memory that holds run_many's outputs until they are downloaded together. */
#define PT__RESULTS_MAX ((size_t)64 << 20)

typedef struct pt__buf {
  void *ptr;
  size_t bytes;
  int uses;  /* readers still to come; 0 and not free = being written */
  int holds; /* checkpoints of pt_exec_run_many that keep it (it is not reused while held) */
  int free;
  /* Lanes (run_many on a backend with several): the lane and mark of the last write, and per lane
   * the mark after its last read or write (-1: none since the last full synchronisation). */
  int wlane;
  int64_t wmark;
  int64_t use[PT__LANES_MAX];
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
  int in_slot; /* pool slot of the network input during a run */
  int64_t nodes_run; /* nodes executed since creation (pt_exec_nodes_run) */
  /* PromiseSim */
  pt_promise_ranges *promise; /* per op, NULL until pt_exec_set_promise */
  uint64_t promise_seed;
  void **pq_w, **pq_b;        /* per op: quantised weight and bias, made on first use */
  pt_promise_ranges *calib;   /* set during pt_exec_calibrate */
  void **h_w, **h_b;          /* per op: binary16-rounded weight and bias, made on first fp16 use */
  double *op_seconds;         /* per op: wall time accumulated by runs (pt_exec_time_ops), or NULL */
  /* Lanes in use by the current run_many (1 otherwise), the lane work is queued on, and per pair
   * (x, y) the highest mark of lane y that lane x already waits for. */
  int n_lanes, lane;
  int64_t seen[PT__LANES_MAX][PT__LANES_MAX];
  void *res; /* run_many's device copies of outputs before their download, res_bytes */
  size_t res_bytes;
};

static const pt_backend_iface *IF(pt_exec *ex) { return ex->be->iface; }

void pt_exec_free(pt_exec *ex) {
  if (!ex) return;
  for (int i = 0; ex->param_dev && i < ex->g->n_params; i++)
    if (ex->param_dev[i]) IF(ex)->release(ex->be->ctx, ex->param_dev[i]);
  for (int i = 0; i < ex->n_pool; i++) IF(ex)->release(ex->be->ctx, ex->pool[i].ptr);
  if (ex->res) IF(ex)->release(ex->be->ctx, ex->res);
  for (int o = 0; ex->pq_w && o < ex->g->n_ops; o++) {
    if (ex->pq_w[o]) IF(ex)->release(ex->be->ctx, ex->pq_w[o]);
    if (ex->pq_b[o]) IF(ex)->release(ex->be->ctx, ex->pq_b[o]);
  }
  for (int o = 0; ex->h_w && o < ex->g->n_ops; o++) {
    if (ex->h_w[o]) IF(ex)->release(ex->be->ctx, ex->h_w[o]);
    if (ex->h_b[o]) IF(ex)->release(ex->be->ctx, ex->h_b[o]);
  }
  free(ex->h_w);
  free(ex->h_b);
  free(ex->pq_w);
  free(ex->pq_b);
  free(ex->promise);
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
  ex->n_lanes = 1;
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
  ex->h_w = calloc((size_t)g->n_ops + 1, sizeof *ex->h_w);
  ex->h_b = calloc((size_t)g->n_ops + 1, sizeof *ex->h_b);
  if (!ex->h_w || !ex->h_b) {
    pt_exec_free(ex);
    return pt__error(PT_ENOMEM, "executor: out of memory");
  }
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
    ex->pool[best].wlane = -1;
    for (int l = 0; l < PT__LANES_MAX; l++) ex->pool[best].use[l] = -1;
  }
  ex->pool[best].free = 0;
  ex->pool[best].uses = uses;
  ex->pool[best].holds = 0;
  return best;
}

static void pool_read_done(pt_exec *ex, int slot) {
  if (slot >= 0 && --ex->pool[slot].uses <= 0 && !ex->pool[slot].holds) ex->pool[slot].free = 1;
}

static void pool_reset(pt_exec *ex) {
  for (int i = 0; i < ex->n_pool; i++) {
    ex->pool[i].free = 1;
    ex->pool[i].uses = ex->pool[i].holds = 0;
  }
}

/* ---- lanes: ordering work on different backend queues through the buffers it touches ---- */

/* Before work on the current lane reads pool slot s (write == 0) or writes it: waits for the lanes
 * whose work on s must come first (the last writer for a read; every earlier reader and writer for a
 * write). */
static pt_status lane_order(pt_exec *ex, int s, int write) {
  if (ex->n_lanes < 2 || s < 0) return PT_OK;
  const pt__buf *b = &ex->pool[s];
  const int x = ex->lane;
  for (int y = 0; y < ex->n_lanes; y++) {
    int64_t need = y == x ? -1 : write ? b->use[y] : b->wlane == y ? b->wmark : -1;
    if (need < 0 || ex->seen[x][y] >= need) continue;
    PT__TRY(IF(ex)->lane_wait(ex->be->ctx, y, need));
    ex->seen[x][y] = need;
  }
  return PT_OK;
}

/* After work on the current lane that read or wrote slot s was queued, ending at mark m. */
static void lane_touch(pt_exec *ex, int s, int write, int64_t m) {
  if (ex->n_lanes < 2 || s < 0) return;
  pt__buf *b = &ex->pool[s];
  b->use[ex->lane] = m;
  if (write) b->wlane = ex->lane, b->wmark = m;
}

static pt_status lane_use(pt_exec *ex, int lane) {
  if (ex->n_lanes < 2 || lane == ex->lane) return PT_OK;
  PT__TRY(IF(ex)->use_lane(ex->be->ctx, lane));
  ex->lane = lane;
  return PT_OK;
}

static pt_status lane_mark(pt_exec *ex, int64_t *m) {
  *m = -1;
  return ex->n_lanes < 2 ? PT_OK : IF(ex)->lane_mark(ex->be->ctx, m);
}

/* After a full synchronisation: no lane has to wait for anything queued before it. */
static void lanes_forget(pt_exec *ex) {
  for (int i = 0; i < ex->n_pool; i++) {
    ex->pool[i].wlane = -1;
    for (int l = 0; l < PT__LANES_MAX; l++) ex->pool[i].use[l] = -1;
  }
  for (int x = 0; x < PT__LANES_MAX; x++)
    for (int y = 0; y < PT__LANES_MAX; y++) ex->seen[x][y] = -1;
}

static const float *P(pt_exec *ex, const pt_node *n, int k) {
  return n->param[k] >= 0 ? (const float *)ex->param_dev[n->param[k]] : NULL;
}

static pt_status run_node(pt_exec *ex, const pt_node *n, int batch, const pt_op_exec *oe, const float *x,
                          const float *x2, float *y, const float *w, const float *bias) {
  const int fp16 = oe->fp16;
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
      pt_conv_desc d = pt__conv_desc_of_node(g, n, batch);
      d.fp16 = fp16;
      if (oe->kind == PT_APPROX_PERFORATE) {
        d.perf = oe->perf_row ? 1 : 2;
        d.perf_stride = oe->perf_stride;
        d.perf_offset = oe->perf_offset;
      } else if (oe->kind == PT_APPROX_SAMPLING) {
        d.samp_every = oe->samp_every;
        d.samp_offset = oe->samp_offset;
        d.samp_scale = pt_km_samp_scale(oe->samp_every, oe->samp_interp);
      }
      return f->conv2d(c, &d, x, w, bias, y);
    }
    case PT_OP_LINEAR: return f->linear(c, batch, n->p.linear.in, n->p.linear.out, fp16, x, w, bias, y);
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

/* Checks that a knob setting can run on this node. */
static pt_status check_setting(const pt_node *n, const pt_op_exec *oe) {
  if (oe->kind == PT_APPROX_NONE) return PT_OK;
  if ((oe->kind == PT_APPROX_PERFORATE || oe->kind == PT_APPROX_SAMPLING) && n->type != PT_OP_CONV2D)
    return pt__error(PT_EINVAL, "op '%s' (%s): perforation and sampling apply to convolutions only", n->name,
                     pt_op_type_name(n->type));
  if (oe->kind == PT_APPROX_PROMISE && n->type != PT_OP_CONV2D && n->type != PT_OP_LINEAR)
    return pt__error(PT_EINVAL, "op '%s' (%s): PromiseSim applies to convolutions and linear layers only", n->name,
                     pt_op_type_name(n->type));
  if (oe->kind == PT_APPROX_PERFORATE && (oe->perf_stride < 2 || oe->perf_offset >= oe->perf_stride))
    return pt__error(PT_EINVAL, "op '%s': perforation stride %d / offset %d", n->name, oe->perf_stride, oe->perf_offset);
  if (oe->kind == PT_APPROX_SAMPLING && oe->samp_every < 2)
    return pt__error(PT_EINVAL, "op '%s': sampling skip_every %d", n->name, oe->samp_every);
  if (oe->kind == PT_APPROX_PROMISE && oe->promise_level > 8)
    return pt__error(PT_EINVAL, "op '%s': PromiseSim noise level %d", n->name, oe->promise_level);
  return PT_OK;
}

static int64_t numel_of_param(const pt_graph *g, int idx) {
  return idx < 0 ? 0 : pt_shape_numel(g->params[idx].ndim, g->params[idx].shape);
}

/* PromiseSim's quantised weight and bias of op `op` (node n), made once per set of ranges. */
static pt_status promise_params(pt_exec *ex, int op, const pt_node *n, const float **w, const float **b) {
  const pt_promise_ranges *r = &ex->promise[op];
  for (int k = 0; k < 2; k++) {
    void **slot = k == 0 ? &ex->pq_w[op] : &ex->pq_b[op];
    int64_t cnt = numel_of_param(ex->g, n->param[k]);
    if (!cnt) continue;
    if (!*slot) {
      PT__TRY(IF(ex)->alloc(ex->be->ctx, (size_t)cnt * sizeof(float), slot));
      const float *lohi = k == 0 ? r->weight : r->bias;
      pt_status s = IF(ex)->quantize(ex->be->ctx, cnt, lohi[0], lohi[1], P(ex, n, k), *slot);
      if (s != PT_OK) return s;
    }
  }
  *w = ex->pq_w[op];
  *b = n->param[1] >= 0 ? ex->pq_b[op] : NULL;
  return PT_OK;
}

/* Binary16-rounded copies of op's weight and bias (FP16Approx and fp16 perforation reuse them across
 * runs instead of rounding the weights on every call). */
static pt_status f16_params(pt_exec *ex, int op, const pt_node *n, const float **w, const float **b) {
  for (int k = 0; k < 2; k++) {
    void **slot = k == 0 ? &ex->h_w[op] : &ex->h_b[op];
    int64_t cnt = numel_of_param(ex->g, n->param[k]);
    if (!cnt || *slot) continue;
    PT__TRY(IF(ex)->alloc(ex->be->ctx, (size_t)cnt * sizeof(float), slot));
    PT__TRY(IF(ex)->round_f16(ex->be->ctx, cnt, P(ex, n, k), *slot));
  }
  *w = ex->h_w[op];
  *b = n->param[1] >= 0 ? ex->h_b[op] : NULL;
  return PT_OK;
}

static void widen(float r[2], const float v[2], int first) {
  if (first || v[0] < r[0]) r[0] = v[0];
  if (first || v[1] > r[1]) r[1] = v[1];
}

/* Records the ranges of a convolution's or linear layer's tensors (pt_exec_calibrate). */
static pt_status calibrate_node(pt_exec *ex, int op, const pt_node *n, int batch, const float *x, const float *y) {
  pt_promise_ranges *r = &ex->calib[op];
  const pt_graph *g = ex->g;
  float v[2];
  int first = !r->set;
  void *c = ex->be->ctx;
  PT__TRY(IF(ex)->minmax(c, (int64_t)batch * pt__node_out_numel(g, n->in[0]), x, v));
  widen(r->in, v, first);
  PT__TRY(IF(ex)->minmax(c, (int64_t)batch * pt__node_out_numel(g, (int)(n - g->nodes)), y, v));
  widen(r->out, v, first);
  for (int k = 0; k < 2; k++) {
    int64_t cnt = numel_of_param(g, n->param[k]);
    float *dst = k == 0 ? r->weight : r->bias;
    if (!cnt) {
      dst[0] = dst[1] = 0.0f;
      continue;
    }
    PT__TRY(IF(ex)->minmax(c, cnt, P(ex, n, k), v));
    widen(dst, v, first);
  }
  r->set = 1;
  return PT_OK;
}

static const pt_op_exec EXACT;

/* Checks every op's setting before anything runs. */
static pt_status check_ops(pt_exec *ex, const pt_op_exec *ops) {
  const pt_graph *g = ex->g;
  for (int i = 0; ops && i < g->n_nodes; i++) {
    int op = ex->op_of_node[i];
    if (op < 0) continue;
    PT__TRY(check_setting(&g->nodes[i], &ops[op]));
    if (ops[op].kind == PT_APPROX_PROMISE && (!ex->promise || !ex->promise[op].set))
      return pt__error(PT_EINVAL, "op '%s': PromiseSim needs quantisation ranges (calibrate, or give a ranges file)",
                       g->nodes[i].name);
  }
  return PT_OK;
}

/* Empties the pool and uploads n input images into a fresh slot (ex->in_slot). */
static pt_status begin_run(pt_exec *ex, const float *input, int n) {
  const pt_graph *g = ex->g;
  pool_reset(ex);
  size_t in_bytes = (size_t)n * (size_t)pt__node_out_numel(g, -1) * sizeof(float);
  int readers_of_input = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_in; k++) readers_of_input += g->nodes[i].in[k] < 0;
  ex->in_slot = pool_get(ex, in_bytes, readers_of_input);
  if (ex->in_slot < 0) return PT_ENOMEM;
  return IF(ex)->upload(ex->be->ctx, ex->pool[ex->in_slot].ptr, input, in_bytes);
}

/* Runs node i of a batch of n images with setting oe: its output goes to a pool slot (buf_of[i]),
 * its inputs go back to the pool after their last reader. */
static pt_status exec_node(pt_exec *ex, int i, int n, int64_t first_image, const pt_op_exec *oe) {
  const pt_graph *g = ex->g;
  const pt_node *nd = &g->nodes[i];
  int op = ex->op_of_node[i];
  ex->nodes_run++;
  int s0 = nd->in[0] < 0 ? ex->in_slot : ex->buf_of[nd->in[0]];
  int s1 = nd->n_in > 1 ? (nd->in[1] < 0 ? ex->in_slot : ex->buf_of[nd->in[1]]) : -1;
  if (nd->type == PT_OP_FLATTEN) { /* a view: share the producer's buffer */
    ex->buf_of[i] = s0;
    ex->pool[s0].uses += ex->readers[i];
    pool_read_done(ex, s0);
    return PT_OK;
  }
  int64_t out_count = (int64_t)n * pt__node_out_numel(g, i);
  int so = pool_get(ex, (size_t)out_count * sizeof(float), ex->readers[i]);
  if (so < 0) return PT_ENOMEM;
  ex->buf_of[i] = so;
  PT__TRY(lane_order(ex, s0, 0));
  PT__TRY(lane_order(ex, s1, 0));
  PT__TRY(lane_order(ex, so, 1));
  const float *x = ex->pool[s0].ptr, *w = P(ex, nd, 0), *bias = P(ex, nd, 1);
  float *y = ex->pool[so].ptr;
  int tmp = -1;
  pt_status s = PT_OK;
  if (oe->kind == PT_APPROX_PROMISE) {
    /* quantise the input, add multiplicative noise, run on quantised weights, quantise the output */
    const pt_promise_ranges *r = &ex->promise[op];
    int64_t in_count = (int64_t)n * pt__node_out_numel(g, nd->in[0]);
    tmp = pool_get(ex, (size_t)in_count * sizeof(float), 1);
    if (tmp < 0) return PT_ENOMEM;
    PT__TRY(lane_order(ex, tmp, 1));
    float *q = ex->pool[tmp].ptr;
    uint64_t key = pt_km_hash64(ex->promise_seed ^ pt_km_hash64((uint64_t)op + 1));
    s = IF(ex)->quantize(ex->be->ctx, in_count, r->in[0], r->in[1], x, q);
    if (s == PT_OK)
      s = IF(ex)->promise_noise(ex->be->ctx, in_count, pt_km_promise_scale(oe->promise_level), key,
                                (uint64_t)first_image * (uint64_t)pt__node_out_numel(g, nd->in[0]), q, q);
    if (s == PT_OK) s = promise_params(ex, op, nd, &w, &bias);
    x = q;
  }
  pt_op_exec eff = *oe;
  if (s == PT_OK && oe->fp16 && oe->kind != PT_APPROX_SAMPLING &&
      (nd->type == PT_OP_CONV2D || nd->type == PT_OP_LINEAR)) {
    s = f16_params(ex, op, nd, &w, &bias);
    eff.fp16 = PT_FP16_PREROUNDED;
  }
  double t_node = ex->op_seconds && op >= 0 ? pt_now() : 0;
  if (s == PT_OK) s = run_node(ex, nd, n, &eff, x, s1 >= 0 ? ex->pool[s1].ptr : NULL, y, w, bias);
  if (s == PT_OK && ex->op_seconds && op >= 0) { /* per-op timing needs the device to finish the op */
    s = IF(ex)->synchronize(ex->be->ctx);
    ex->op_seconds[op] += pt_now() - t_node;
  }
  if (s == PT_OK && oe->kind == PT_APPROX_PROMISE)
    s = IF(ex)->quantize(ex->be->ctx, out_count, ex->promise[op].out[0], ex->promise[op].out[1], y, y);
  if (s == PT_OK && ex->calib && op >= 0 && (nd->type == PT_OP_CONV2D || nd->type == PT_OP_LINEAR))
    s = calibrate_node(ex, op, nd, n, ex->pool[s0].ptr, y);
  int64_t m;
  if (s == PT_OK) s = lane_mark(ex, &m);
  if (s == PT_OK) {
    lane_touch(ex, s0, 0, m);
    lane_touch(ex, s1, 0, m);
    lane_touch(ex, so, 1, m);
    lane_touch(ex, tmp, 1, m);
  }
  if (tmp >= 0) pool_read_done(ex, tmp);
  if (s != PT_OK) {
    pt__error_prefix("op '%s'", nd->name);
    return s;
  }
  pool_read_done(ex, s0);
  if (s1 >= 0) pool_read_done(ex, s1);
  return PT_OK;
}

static const pt_op_exec *setting(const pt_exec *ex, const pt_op_exec *ops, int node) {
  int op = ex->op_of_node[node];
  return ops && op >= 0 ? &ops[op] : &EXACT;
}

static pt_status download_output(pt_exec *ex, int n, float *output) {
  int last = ex->buf_of[ex->g->n_nodes - 1];
  return IF(ex)->download(ex->be->ctx, output, ex->pool[last].ptr, (size_t)n * (size_t)pt_graph_output_numel(ex->g) * sizeof(float));
}

pt_status pt_exec_run_at(pt_exec *ex, const float *input, int n, int64_t first_image, const pt_op_exec *ops,
                         float *output) {
  const pt_graph *g = ex->g;
  if (n <= 0) return pt__error(PT_EINVAL, "executor: batch of %d images", n);
  PT__TRY(check_ops(ex, ops));
  pt_status s = begin_run(ex, input, n);
  for (int i = 0; s == PT_OK && i < g->n_nodes; i++) s = exec_node(ex, i, n, first_image, setting(ex, ops, i));
  if (s == PT_OK) s = download_output(ex, n, output);
  if (s == PT_OK) s = IF(ex)->synchronize(ex->be->ctx);
  return s;
}

/* pt_exec_run_many: the configs run in lexicographic order of their settings along the execution
 * order, so consecutive configs share the longest prefixes. A checkpoint is the executor's state
 * before node `depth` (which pool slot holds each earlier node's output and how many readers each
 * live slot still has); its slots are held, not copied, since no node writes into its inputs.
 * Checkpoints form a stack of increasing depth along the current config's path; every node of the
 * configs' prefix tree runs exactly once. */
typedef struct pt__ckpt {
  int depth;
  double t;    /* wall time of the path up to depth (input upload included) */
  int n_live;
  int *slot;   /* (n_live) live slots */
  int *uses;   /* (n_live) their remaining readers */
  int *buf_of; /* (depth) */
} pt__ckpt;

typedef struct pt__many {
  const pt_exec *ex;
  const pt_op_exec *ops; /* (n_cfg, n_ops) */
  const int *op_seq;     /* (n_ops) op indices in execution order */
  int n_ops;
} pt__many;

/* Node depth up to which configs a and b agree (g->n_nodes when they are the same). */
static int agree_depth(const pt__many *m, int a, int b) {
  for (int q = 0; q < m->n_ops; q++) {
    int op = m->op_seq[q];
    if (memcmp(&m->ops[(int64_t)a * m->n_ops + op], &m->ops[(int64_t)b * m->n_ops + op], sizeof(pt_op_exec)))
      return m->ex->g->ops[op];
  }
  return m->ex->g->n_nodes;
}

static int cfg_cmp(const pt__many *m, int a, int b) {
  for (int q = 0; q < m->n_ops; q++) {
    int op = m->op_seq[q];
    int c = memcmp(&m->ops[(int64_t)a * m->n_ops + op], &m->ops[(int64_t)b * m->n_ops + op], sizeof(pt_op_exec));
    if (c) return c;
  }
  return a - b;
}

/* Merge sort of config indices (C11 has no qsort with a context). */
static void sort_cfgs(const pt__many *m, int *v, int *tmp, int n) {
  if (n < 2) return;
  int h = n / 2;
  sort_cfgs(m, v, tmp, h);
  sort_cfgs(m, v + h, tmp, n - h);
  int i = 0, j = h, k = 0;
  while (i < h && j < n) tmp[k++] = cfg_cmp(m, v[i], v[j]) <= 0 ? v[i++] : v[j++];
  while (i < h) tmp[k++] = v[i++];
  while (j < n) tmp[k++] = v[j++];
  memcpy(v, tmp, (size_t)n * sizeof *v);
}

static void ckpt_save(pt_exec *ex, pt__ckpt *c, int depth, double t) {
  c->depth = depth;
  c->t = t;
  c->n_live = 0;
  for (int i = 0; i < ex->n_pool; i++)
    if (!ex->pool[i].free && ex->pool[i].uses > 0) {
      c->slot[c->n_live] = i;
      c->uses[c->n_live++] = ex->pool[i].uses;
      ex->pool[i].holds++;
    }
  memcpy(c->buf_of, ex->buf_of, (size_t)depth * sizeof *c->buf_of);
}

static void ckpt_drop(pt_exec *ex, const pt__ckpt *c) {
  for (int k = 0; k < c->n_live; k++) {
    pt__buf *b = &ex->pool[c->slot[k]];
    if (--b->holds == 0 && b->uses <= 0) b->free = 1;
  }
}

/* Back to the state of checkpoint c: only its live slots (and other held ones) stay taken. */
static void ckpt_restore(pt_exec *ex, const pt__ckpt *c) {
  for (int i = 0; i < ex->n_pool; i++) {
    ex->pool[i].uses = 0;
    ex->pool[i].free = !ex->pool[i].holds;
  }
  for (int k = 0; k < c->n_live; k++) ex->pool[c->slot[k]].uses = c->uses[k];
  memcpy(ex->buf_of, c->buf_of, (size_t)c->depth * sizeof *c->buf_of);
}

/* Makes the derived weights (binary16 copies, PromiseSim's quantised ones) that any of the configs
 * needs before the lanes start, so that lanes only ever read them. */
static pt_status prepare_params(pt_exec *ex, int n_cfg, const pt_op_exec *ops) {
  const pt_graph *g = ex->g;
  for (int k = 0; k < n_cfg; k++)
    for (int op = 0; op < g->n_ops; op++) {
      const pt_op_exec *oe = &ops[(int64_t)k * g->n_ops + op];
      const pt_node *nd = &g->nodes[g->ops[op]];
      const float *w, *b;
      if (oe->kind == PT_APPROX_PROMISE) PT__TRY(promise_params(ex, op, nd, &w, &b));
      if (oe->fp16 && oe->kind != PT_APPROX_SAMPLING && (nd->type == PT_OP_CONV2D || nd->type == PT_OP_LINEAR))
        PT__TRY(f16_params(ex, op, nd, &w, &b));
    }
  return PT_OK;
}

/* Untimed run_many keeps each config's output on the device (ex->res, one slot per distinct config)
 * and downloads them together, so the host never waits for a config to finish before queueing the
 * next. pt__res describes the slots in use. */
typedef struct pt__res {
  size_t out_bytes;
  int cap, used; /* slots that fit in ex->res, slots filled */
  int from;      /* first sorted config whose output is not downloaded yet */
  int *slot_of;  /* (n_cfg) per sorted config: its slot */
  float *stage;  /* (cap, out) host copy */
} pt__res;

static pt_status res_flush(pt_exec *ex, pt__res *r, const int *ord, int to, float *output) {
  if (r->from >= to) return PT_OK;
  PT__TRY(IF(ex)->synchronize(ex->be->ctx));
  lanes_forget(ex);
  PT__TRY(IF(ex)->download(ex->be->ctx, r->stage, ex->res, (size_t)r->used * r->out_bytes));
  const size_t out_n = r->out_bytes / sizeof(float);
  for (int k = r->from; k < to; k++)
    memcpy(output + (size_t)ord[k] * out_n, r->stage + (size_t)r->slot_of[k] * out_n, r->out_bytes);
  r->from = to;
  r->used = 0;
  return PT_OK;
}

/* Copies the output of the path just run into the next result slot (on the current lane). */
static pt_status res_keep(pt_exec *ex, pt__res *r, int k) {
  int last = ex->buf_of[ex->g->n_nodes - 1];
  PT__TRY(lane_order(ex, last, 0));
  PT__TRY(IF(ex)->copy(ex->be->ctx, (char *)ex->res + (size_t)r->used * r->out_bytes, ex->pool[last].ptr, r->out_bytes));
  int64_t m;
  PT__TRY(lane_mark(ex, &m));
  lane_touch(ex, last, 0, m);
  r->slot_of[k] = r->used++;
  return PT_OK;
}

/* Lanes for an untimed run_many: every lane first waits for lane 0's input upload and derived
 * weights; configs' paths then go to the lanes in turn. */
static pt_status lanes_begin(pt_exec *ex, int n_cfg, const pt_op_exec *ops) {
  PT__TRY(prepare_params(ex, n_cfg, ops));
  int64_t m0;
  PT__TRY(lane_mark(ex, &m0));
  lane_touch(ex, ex->in_slot, 1, m0);
  for (int l = 1; l < ex->n_lanes; l++) {
    PT__TRY(lane_use(ex, l));
    PT__TRY(IF(ex)->lane_wait(ex->be->ctx, 0, m0));
    ex->seen[l][0] = m0;
  }
  return lane_use(ex, 0);
}

pt_status pt_exec_run_many(pt_exec *ex, const float *input, int n, int64_t first_image, int n_cfg,
                           const pt_op_exec *ops, float *output, double *seconds) {
  const pt_graph *g = ex->g;
  if (n <= 0) return pt__error(PT_EINVAL, "executor: batch of %d images", n);
  if (n_cfg <= 0) return PT_OK;
  if (!ops) return pt__error(PT_EINVAL, "executor: run_many needs the settings of %d configs", n_cfg);
  for (int k = 0; k < n_cfg; k++) PT__TRY(check_ops(ex, ops + (int64_t)k * g->n_ops));
  const int n_ck = g->n_ops + 1, live_max = g->n_nodes + 2;
  const size_t out_n = (size_t)n * (size_t)pt_graph_output_numel(g);
  const int timed = seconds != NULL;
  pt__res res = {out_n * sizeof(float), 0, 0, 0, NULL, NULL};
  if (!timed) {
    size_t cap = PT__RESULTS_MAX / res.out_bytes;
    res.cap = cap < 1 ? 1 : cap > (size_t)n_cfg ? n_cfg : (int)cap;
  }
  int *ord = malloc((size_t)n_cfg * sizeof *ord), *tmp = malloc((size_t)n_cfg * sizeof *tmp);
  int *lcp = malloc((size_t)n_cfg * sizeof *lcp), *op_seq = malloc((size_t)(g->n_ops + 1) * sizeof *op_seq);
  int *mark = calloc((size_t)g->n_nodes + 1, sizeof *mark); /* mark[depth] == k + 1: config k saves one there */
  pt__ckpt *ck = calloc((size_t)n_ck, sizeof *ck);
  int *ck_mem = malloc((size_t)n_ck * (size_t)(2 * live_max + g->n_nodes) * sizeof *ck_mem);
  res.slot_of = malloc((size_t)n_cfg * sizeof *res.slot_of);
  res.stage = timed ? NULL : malloc((size_t)res.cap * res.out_bytes);
  if (!ord || !tmp || !lcp || !op_seq || !mark || !ck || !ck_mem || !res.slot_of || (!timed && !res.stage)) {
    free(ord), free(tmp), free(lcp), free(op_seq), free(mark), free(ck), free(ck_mem), free(res.slot_of);
    free(res.stage);
    return pt__error(PT_ENOMEM, "executor: out of memory");
  }
  for (int c = 0; c < n_ck; c++) {
    ck[c].slot = ck_mem + (size_t)c * (size_t)(2 * live_max + g->n_nodes);
    ck[c].uses = ck[c].slot + live_max;
    ck[c].buf_of = ck[c].uses + live_max;
  }
  for (int i = 0, q = 0; i < g->n_nodes; i++)
    if (ex->op_of_node[i] >= 0) op_seq[q++] = ex->op_of_node[i];
  pt__many m = {ex, ops, op_seq, g->n_ops};
  for (int k = 0; k < n_cfg; k++) ord[k] = k;
  sort_cfgs(&m, ord, tmp, n_cfg);
  lcp[0] = 0;
  for (int k = 1; k < n_cfg; k++) lcp[k] = agree_depth(&m, ord[k - 1], ord[k]);

  pt_status s = PT_OK;
  if (!timed && (size_t)res.cap * res.out_bytes > ex->res_bytes) {
    if (ex->res) IF(ex)->release(ex->be->ctx, ex->res);
    ex->res = NULL;
    ex->res_bytes = 0;
    s = IF(ex)->alloc(ex->be->ctx, (size_t)res.cap * res.out_bytes, &ex->res);
    if (s == PT_OK) ex->res_bytes = (size_t)res.cap * res.out_bytes;
  }
  /* several lanes only for untimed runs: timing wants each path alone on the device */
  int lanes = !timed && !ex->op_seconds && IF(ex)->lanes ? IF(ex)->lanes(ex->be->ctx) : 1;
  lanes = lanes < 1 ? 1 : lanes > PT__LANES_MAX ? PT__LANES_MAX : lanes;
  if (s == PT_OK && lanes > 1) {
    s = IF(ex)->synchronize(ex->be->ctx);
    if (s == PT_OK) s = IF(ex)->use_lane(ex->be->ctx, 0);
    if (s == PT_OK) {
      ex->n_lanes = lanes;
      ex->lane = 0;
      lanes_forget(ex);
    }
  }

  double t0 = pt_now();
  if (s == PT_OK) s = begin_run(ex, input, n);
  if (s == PT_OK && ex->n_lanes > 1) s = lanes_begin(ex, n_cfg, ops);
  int top = 0; /* checkpoints in use: ck[0 .. top-1] */
  if (s == PT_OK && timed) s = IF(ex)->synchronize(ex->be->ctx);
  if (s == PT_OK) ckpt_save(ex, &ck[top++], 0, pt_now() - t0);
  for (int k = 0, path = 0; s == PT_OK && k < n_cfg; k++) {
    const pt_op_exec *cops = ops + (int64_t)ord[k] * g->n_ops;
    if (k > 0 && lcp[k] == g->n_nodes) { /* the same settings as the previous config */
      if (timed) {
        memcpy(output + (size_t)ord[k] * out_n, output + (size_t)ord[k - 1] * out_n, out_n * sizeof *output);
        seconds[ord[k]] = seconds[ord[k - 1]];
      } else {
        res.slot_of[k] = res.slot_of[k - 1];
      }
      continue;
    }
    if (!timed && res.used == res.cap && (s = res_flush(ex, &res, ord, k, output)) != PT_OK) break;
    if ((s = lane_use(ex, path++ % ex->n_lanes)) != PT_OK) break;
    while (top > 1 && ck[top - 1].depth > lcp[k]) ckpt_drop(ex, &ck[--top]);
    ckpt_restore(ex, &ck[top - 1]);
    int start = ck[top - 1].depth;
    double base = ck[top - 1].t, seg0 = pt_now();
    /* depths where later configs branch off this one's path: the distinct running minima of the
     * following agreement depths that lie beyond this path's start */
    for (int j = k + 1, mn = g->n_nodes; j < n_cfg; j++) {
      if (lcp[j] < mn) mn = lcp[j];
      if (mn <= start) break;
      if (mn < g->n_nodes) mark[mn] = k + 1;
    }
    for (int i = start; s == PT_OK && i < g->n_nodes; i++) {
      if (i > start && mark[i] == k + 1 && top < n_ck) {
        if (timed) s = IF(ex)->synchronize(ex->be->ctx);
        if (s != PT_OK) break;
        ckpt_save(ex, &ck[top++], i, base + pt_now() - seg0);
      }
      s = exec_node(ex, i, n, first_image, setting(ex, cops, i));
    }
    if (s == PT_OK && !timed) s = res_keep(ex, &res, k);
    if (s == PT_OK && timed) s = download_output(ex, n, output + (size_t)ord[k] * out_n);
    if (s == PT_OK && timed) {
      s = IF(ex)->synchronize(ex->be->ctx);
      seconds[ord[k]] = base + pt_now() - seg0;
    }
  }
  if (s == PT_OK && !timed) s = res_flush(ex, &res, ord, n_cfg, output);
  /* whatever happened, nothing stays queued and later runs start on lane 0 */
  pt_status s2 = IF(ex)->synchronize(ex->be->ctx);
  if (ex->n_lanes > 1) {
    pt_status s3 = IF(ex)->use_lane(ex->be->ctx, 0);
    if (s2 == PT_OK) s2 = s3;
    ex->n_lanes = 1;
    ex->lane = 0;
  }
  if (s == PT_OK) s = s2;
  while (top > 0) ckpt_drop(ex, &ck[--top]);
  free(ord), free(tmp), free(lcp), free(op_seq), free(mark), free(ck), free(ck_mem), free(res.slot_of);
  free(res.stage);
  return s;
}

pt_status pt_exec_run(pt_exec *ex, const float *input, int n, const pt_op_exec *ops, float *output) {
  return pt_exec_run_at(ex, input, n, 0, ops, output);
}

pt_status pt_exec_set_promise(pt_exec *ex, const pt_promise_ranges *ranges, uint64_t seed) {
  int no = ex->g->n_ops;
  if (!ex->promise) {
    ex->promise = calloc((size_t)no + 1, sizeof *ex->promise);
    ex->pq_w = calloc((size_t)no + 1, sizeof *ex->pq_w);
    ex->pq_b = calloc((size_t)no + 1, sizeof *ex->pq_b);
    if (!ex->promise || !ex->pq_w || !ex->pq_b) return pt__error(PT_ENOMEM, "executor: out of memory");
  }
  for (int o = 0; o < no; o++) { /* new ranges: the quantised weights are remade on next use */
    if (ex->pq_w[o]) IF(ex)->release(ex->be->ctx, ex->pq_w[o]);
    if (ex->pq_b[o]) IF(ex)->release(ex->be->ctx, ex->pq_b[o]);
    ex->pq_w[o] = ex->pq_b[o] = NULL;
  }
  memcpy(ex->promise, ranges, (size_t)no * sizeof *ranges);
  ex->promise_seed = seed;
  return PT_OK;
}

pt_status pt_exec_calibrate(pt_exec *ex, const float *input, int n, pt_promise_ranges *ranges) {
  float *out = malloc((size_t)n * (size_t)pt_graph_output_numel(ex->g) * sizeof *out);
  if (!out) return pt__error(PT_ENOMEM, "executor: out of memory");
  ex->calib = ranges;
  pt_status s = pt_exec_run(ex, input, n, NULL, out);
  ex->calib = NULL;
  free(out);
  return s;
}

void pt_exec_time_ops(pt_exec *ex, double *op_seconds) { ex->op_seconds = op_seconds; }

int64_t pt_exec_nodes_run(const pt_exec *ex) { return ex->nodes_run; }
