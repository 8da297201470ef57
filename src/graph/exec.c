/* The executor: walks the graph in execution order, dispatching each node to the backend under its
 * op's setting (exact, FP16Approx, perforation, sampling or PromiseSim). The buffer pool and lanes
 * are in exec_pool.c, derived weights and calibration in exec_params.c, batches of configs in
 * exec_many.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/executor.h"
#include "graph/node_desc.h"
#include "kernels/knob_math.h"
#include "predtuner/log.h"

void pt_exec_free(pt_exec *ex) {
  if (!ex) return;
  for (int i = 0; ex->param_dev && i < ex->g->n_params; i++)
    if (ex->param_dev[i]) pt__ex_if(ex)->release(ex->be->ctx, ex->param_dev[i]);
  pt__pfx_free_all(ex);
  pt__pool_free_all(ex);
  if (ex->res) pt__ex_if(ex)->release(ex->be->ctx, ex->res);
  pt__ex_free_params(ex);
  free(ex->h_w), free(ex->h_b), free(ex->pq_w), free(ex->pq_b), free(ex->promise);
  free(ex->param_dev), free(ex->readers), free(ex->op_of_node), free(ex->buf_of);
  free(ex);
}

/* Per-node tables: readers of each output, op index of each node. */
static pt_status make_tables(pt_exec *ex) {
  const pt_graph *g = ex->g;
  ex->param_dev = pt__calloc((size_t)(g->n_params ? g->n_params : 1), sizeof *ex->param_dev);
  ex->readers = pt__calloc((size_t)g->n_nodes, sizeof *ex->readers);
  ex->op_of_node = pt__malloc((size_t)g->n_nodes * sizeof *ex->op_of_node);
  ex->buf_of = pt__malloc((size_t)g->n_nodes * sizeof *ex->buf_of);
  ex->h_w = pt__calloc((size_t)g->n_ops + 1, sizeof *ex->h_w);
  ex->h_b = pt__calloc((size_t)g->n_ops + 1, sizeof *ex->h_b);
  if (!ex->param_dev || !ex->readers || !ex->op_of_node || !ex->buf_of || !ex->h_w || !ex->h_b)
    return pt__error(PT_ENOMEM, "executor: out of memory for the tables of %s (%d nodes)", g->name, g->n_nodes);
  for (int i = 0; i < g->n_nodes; i++) {
    ex->op_of_node[i] = -1;
    for (int k = 0; k < g->nodes[i].n_in; k++)
      if (g->nodes[i].in[k] >= 0) ex->readers[g->nodes[i].in[k]]++;
  }
  ex->readers[g->n_nodes - 1]++;
  for (int o = 0; o < g->n_ops; o++) ex->op_of_node[g->ops[o]] = o;
  return PT_OK;
}

static pt_status upload_params(pt_exec *ex) {
  const pt_graph *g = ex->g;
  pt_backend *be = ex->be;
  for (int i = 0; i < g->n_params; i++) {
    const pt_param *p = &g->params[i];
    if (!p->data) return pt__error(PT_EINVAL, "executor: weights of '%s' are not loaded", p->name);
    size_t bytes = (size_t)pt_shape_numel(p->ndim, p->shape) * sizeof(float);
    PT__TRY(be->iface->alloc(be->ctx, bytes, &ex->param_dev[i]));
    PT__TRY(be->iface->upload(be->ctx, ex->param_dev[i], p->data, bytes));
  }
  return PT_OK;
}

pt_status pt_exec_create(const pt_graph *g, pt_backend *be, pt_exec **out) {
  *out = NULL;
  pt_exec *ex = pt__calloc(1, sizeof *ex);
  if (!ex) return pt__error(PT_ENOMEM, "executor: out of memory");
  ex->g = g;
  ex->be = be;
  ex->n_lanes = 1;
  pt_status s = make_tables(ex);
  if (s == PT_OK) s = upload_params(ex);
  if (s != PT_OK) {
    pt_exec_free(ex);
    return s;
  }
  *out = ex;
  return PT_OK;
}

/* ---- node dispatch ---- */

/* The convolution descriptor of node n under setting oe. */
static pt_conv_desc conv_desc(const pt_graph *g, const pt_node *n, int batch, const pt_op_exec *oe) {
  pt_conv_desc d = pt__conv_desc_of_node(g, n, batch);
  d.fp16 = oe->fp16;
  if (oe->kind == PT_APPROX_PERFORATE) {
    d.perf_dir = oe->perf_dir;
    d.perf_stride = oe->perf_stride;
    d.perf_offset = oe->perf_offset;
  } else if (oe->kind == PT_APPROX_SAMPLING) {
    d.samp_every = oe->samp_every;
    d.samp_offset = oe->samp_offset;
    d.samp_scale = pt_km_samp_scale(oe->samp_every, oe->samp_interp);
  }
  return d;
}

static pt_status run_node(pt_exec *ex, const pt_node *n, int batch, const pt_op_exec *oe, const float *x,
                          const float *x2, float *y, const float *w, const float *bias) {
  const int fp16 = oe->fp16;
  const pt_backend_iface *f = pt__ex_if(ex);
  void *c = ex->be->ctx;
  const pt_graph *g = ex->g;
  int64_t count = (int64_t)batch * pt_shape_numel(n->out_ndim, n->out_shape);
  switch (n->type) {
    case PT_OP_CONV2D: {
      pt_conv_desc d = conv_desc(g, n, batch, oe);
      return f->conv2d(c, &d, x, w, bias, y);
    }
    case PT_OP_LINEAR: return f->linear(c, batch, n->p.linear.in, n->p.linear.out, fp16, x, w, bias, y);
    case PT_OP_RELU: return f->activation(c, PT_ACT_RELU, count, fp16, x, y);
    case PT_OP_TANH: return f->activation(c, PT_ACT_TANH, count, fp16, x, y);
    case PT_OP_MAXPOOL2D:
    case PT_OP_AVGPOOL2D: {
      pt_pool_desc d = pt__pool_desc_of_node(g, n, batch);
      d.fp16 = fp16;
      return f->pool2d(c, &d, x, y);
    }
    case PT_OP_BATCHNORM2D:
      return f->batchnorm2d(c, batch, n->p.bn.c, n->out_shape[1] * n->out_shape[2], n->p.bn.eps, fp16, x,
                            pt__ex_param(ex, n, 0), pt__ex_param(ex, n, 1), pt__ex_param(ex, n, 2),
                            pt__ex_param(ex, n, 3), y);
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
  if (oe->kind == PT_APPROX_PERFORATE && (oe->perf_dir != PT_PERF_ROWS && oe->perf_dir != PT_PERF_COLS))
    return pt__error(PT_EINVAL, "op '%s': perforation direction %d (rows %d or columns %d)", n->name, oe->perf_dir,
                     PT_PERF_ROWS, PT_PERF_COLS);
  if (oe->kind == PT_APPROX_PERFORATE && (oe->perf_stride < 2 || oe->perf_offset >= oe->perf_stride))
    return pt__error(PT_EINVAL, "op '%s': perforation stride %d / offset %d", n->name, oe->perf_stride, oe->perf_offset);
  if (oe->kind == PT_APPROX_SAMPLING && oe->samp_every < 2)
    return pt__error(PT_EINVAL, "op '%s': sampling skip_every %d", n->name, oe->samp_every);
  if (oe->kind == PT_APPROX_PROMISE && oe->promise_level > 8)
    return pt__error(PT_EINVAL, "op '%s': PromiseSim noise level %d", n->name, oe->promise_level);
  if (oe->kind > PT_APPROX_PROMISE) return pt__error(PT_EINVAL, "op '%s': approximation kind %d", n->name, oe->kind);
  return PT_OK;
}

pt_status pt__ex_check_ops(pt_exec *ex, const pt_op_exec *ops) {
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

pt_status pt__ex_begin_run(pt_exec *ex, const float *input, int n) {
  const pt_graph *g = ex->g;
  pt__pool_reset(ex);
  size_t in_bytes = (size_t)n * (size_t)pt__node_out_numel(g, -1) * sizeof(float);
  int readers_of_input = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_in; k++) readers_of_input += g->nodes[i].in[k] < 0;
  ex->in_slot = pt__pool_get(ex, in_bytes, readers_of_input);
  if (ex->in_slot < 0) return PT_ENOMEM;
  PT__TRY(pt__lane_order(ex, ex->in_slot, 1)); /* run_many: earlier lanes' reads of the slot come first */
  PT__TRY(pt__ex_if(ex)->upload(ex->be->ctx, ex->pool[ex->in_slot].ptr, input, in_bytes));
  int64_t m;
  PT__TRY(pt__lane_mark(ex, &m));
  pt__lane_touch(ex, ex->in_slot, 1, m);
  return PT_OK;
}

/* PromiseSim's input of op (node nd, reading x): quantised, with multiplicative noise, in a fresh
 * pool slot *tmp (one reader). */
static pt_status promise_input(pt_exec *ex, int op, const pt_node *nd, int n, int64_t first_image,
                               const pt_op_exec *oe, const float *x, int *tmp) {
  const pt_graph *g = ex->g;
  const pt_promise_ranges *r = &ex->promise[op];
  int64_t per_img = pt__node_out_numel(g, nd->in[0]), in_count = (int64_t)n * per_img;
  if ((*tmp = pt__pool_get(ex, (size_t)in_count * sizeof(float), 1)) < 0) return PT_ENOMEM;
  PT__TRY(pt__lane_order(ex, *tmp, 1));
  float *q = ex->pool[*tmp].ptr;
  uint64_t key = pt_km_hash64(ex->promise_seed ^ pt_km_hash64((uint64_t)op + 1));
  PT__TRY(pt__ex_if(ex)->quantize(ex->be->ctx, in_count, r->in[0], r->in[1], x, q));
  return pt__ex_if(ex)->promise_noise(ex->be->ctx, in_count, pt_km_promise_scale(oe->promise_level), key,
                                      (uint64_t)first_image * (uint64_t)per_img, q, q);
}

/* pt_exec_find_nonfinite: node i's output, copied to the host, holds a NaN or an infinity. */
static pt_status scan_output(pt_exec *ex, int i, int n, const float *y) {
  size_t count = (size_t)n * (size_t)pt__node_out_numel(ex->g, i);
  float *h = pt__malloc(count * sizeof *h);
  if (!h) return pt__error(PT_ENOMEM, "executor: out of memory for a diagnostic copy of %zu values", count);
  pt_status s = pt__ex_if(ex)->download(ex->be->ctx, h, y, count * sizeof *h);
  if (s == PT_OK) s = pt__ex_if(ex)->synchronize(ex->be->ctx);
  for (size_t k = 0; s == PT_OK && k < count; k++)
    if (!isfinite(h[k])) {
      ex->first_bad = i;
      break;
    }
  free(h);
  return s;
}

/* The backend calls of node i (output slot so, inputs s0 and s1), PromiseSim's steps and
 * calibration around them. *tmp receives PromiseSim's input slot (-1: none). */
static pt_status node_work(pt_exec *ex, int i, int n, int64_t first_image, const pt_op_exec *oe, int s0, int s1,
                           int so, int *tmp) {
  const pt_graph *g = ex->g;
  const pt_node *nd = &g->nodes[i];
  const int op = ex->op_of_node[i];
  const float *x = ex->pool[s0].ptr, *w = pt__ex_param(ex, nd, 0), *bias = pt__ex_param(ex, nd, 1);
  float *y = ex->pool[so].ptr;
  if (oe->kind == PT_APPROX_PROMISE) { /* quantised, noisy input; quantised weights */
    PT__TRY(promise_input(ex, op, nd, n, first_image, oe, x, tmp));
    PT__TRY(pt__ex_promise_params(ex, op, nd, &w, &bias));
    x = ex->pool[*tmp].ptr;
  }
  pt_op_exec eff = *oe;
  if (pt__ex_uses_f16_params(nd, oe)) {
    PT__TRY(pt__ex_f16_params(ex, op, nd, &w, &bias));
    eff.fp16 = PT_FP16_PREROUNDED;
  }
  double t_node = ex->op_seconds && op >= 0 ? pt_now() : 0;
  PT__TRY(run_node(ex, nd, n, &eff, x, s1 >= 0 ? ex->pool[s1].ptr : NULL, y, w, bias));
  if (ex->op_seconds && op >= 0) { /* per-op timing needs the device to finish the op */
    PT__TRY(pt__ex_if(ex)->synchronize(ex->be->ctx));
    ex->op_seconds[op] += pt_now() - t_node;
  }
  if (oe->kind == PT_APPROX_PROMISE)
    PT__TRY(pt__ex_if(ex)->quantize(ex->be->ctx, (int64_t)n * pt__node_out_numel(g, i), ex->promise[op].out[0],
                                    ex->promise[op].out[1], y, y));
  if (ex->calib && op >= 0 && (nd->type == PT_OP_CONV2D || nd->type == PT_OP_LINEAR))
    PT__TRY(pt__ex_calibrate_node(ex, op, nd, n, ex->pool[s0].ptr, y));
  if (ex->find_bad && ex->first_bad < 0) PT__TRY(scan_output(ex, i, n, y));
  return PT_OK;
}

pt_status pt__ex_node(pt_exec *ex, int i, int n, int64_t first_image, const pt_op_exec *oe) {
  const pt_graph *g = ex->g;
  const pt_node *nd = &g->nodes[i];
  ex->nodes_run++;
  int s0 = nd->in[0] < 0 ? ex->in_slot : ex->buf_of[nd->in[0]];
  int s1 = nd->n_in > 1 ? (nd->in[1] < 0 ? ex->in_slot : ex->buf_of[nd->in[1]]) : -1;
  if (nd->type == PT_OP_FLATTEN) { /* a view: share the producer's buffer */
    ex->buf_of[i] = s0;
    ex->pool[s0].uses += ex->readers[i];
    pt__pool_read_done(ex, s0);
    return PT_OK;
  }
  int so = pt__pool_get(ex, (size_t)((int64_t)n * pt__node_out_numel(g, i)) * sizeof(float), ex->readers[i]);
  if (so < 0) return PT_ENOMEM;
  ex->buf_of[i] = so;
  PT__TRY(pt__lane_order(ex, s0, 0));
  PT__TRY(pt__lane_order(ex, s1, 0));
  PT__TRY(pt__lane_order(ex, so, 1));
  int tmp = -1;
  pt_status s = node_work(ex, i, n, first_image, oe, s0, s1, so, &tmp);
  int64_t m;
  if (s == PT_OK) s = pt__lane_mark(ex, &m);
  if (s == PT_OK) {
    pt__lane_touch(ex, s0, 0, m);
    pt__lane_touch(ex, s1, 0, m);
    pt__lane_touch(ex, so, 1, m);
    pt__lane_touch(ex, tmp, 1, m);
  }
  if (tmp >= 0) pt__pool_read_done(ex, tmp);
  if (s != PT_OK) {
    pt__error_prefix("op '%s'", nd->name);
    return s;
  }
  pt__pool_read_done(ex, s0);
  if (s1 >= 0) pt__pool_read_done(ex, s1);
  return PT_OK;
}

static const pt_op_exec EXACT;

const pt_op_exec *pt__ex_setting(const pt_exec *ex, const pt_op_exec *ops, int node) {
  int op = ex->op_of_node[node];
  return ops && op >= 0 ? &ops[op] : &EXACT;
}

pt_status pt__ex_download_output(pt_exec *ex, int n, float *output) {
  int last = ex->buf_of[ex->g->n_nodes - 1];
  return pt__ex_if(ex)->download(ex->be->ctx, output, ex->pool[last].ptr,
                                 (size_t)n * (size_t)pt_graph_output_numel(ex->g) * sizeof(float));
}

/* ---- runs ---- */

pt_status pt_exec_run_at(pt_exec *ex, const float *input, int n, int64_t first_image, const pt_op_exec *ops,
                         float *output) {
  const pt_graph *g = ex->g;
  if (n <= 0) return pt__error(PT_EINVAL, "executor: batch of %d images", n);
  PT__TRY(pt__ex_check_ops(ex, ops));
  pt_status s = pt__ex_begin_run(ex, input, n);
  for (int i = 0; s == PT_OK && i < g->n_nodes; i++) s = pt__ex_node(ex, i, n, first_image, pt__ex_setting(ex, ops, i));
  if (s == PT_OK) s = pt__ex_download_output(ex, n, output);
  if (s == PT_OK) s = pt__ex_if(ex)->synchronize(ex->be->ctx);
  return s;
}

pt_status pt_exec_run(pt_exec *ex, const float *input, int n, const pt_op_exec *ops, float *output) {
  return pt_exec_run_at(ex, input, n, 0, ops, output);
}

/* A run of the exact network during which pt__ex_calibrate_node records every range. */
pt_status pt_exec_calibrate(pt_exec *ex, const float *input, int n, pt_promise_ranges *ranges) {
  float *out = pt__malloc((size_t)n * (size_t)pt_graph_output_numel(ex->g) * sizeof *out);
  if (!out) return pt__error(PT_ENOMEM, "executor: out of memory for a calibration batch of %d images", n);
  ex->calib = ranges;
  pt_status s = pt_exec_run(ex, input, n, NULL, out);
  ex->calib = NULL;
  free(out);
  return s;
}

pt_status pt_exec_find_nonfinite(pt_exec *ex, const float *input, int n, int64_t first_image, const pt_op_exec *ops,
                                 const char **node_name) {
  *node_name = NULL;
  if (n <= 0) return pt__error(PT_EINVAL, "executor: batch of %d images", n);
  size_t in_count = (size_t)n * (size_t)pt__node_out_numel(ex->g, -1);
  for (size_t k = 0; k < in_count; k++)
    if (!isfinite(input[k])) {
      *node_name = "input";
      return PT_OK;
    }
  float *out = pt__malloc((size_t)n * (size_t)pt_graph_output_numel(ex->g) * sizeof *out);
  if (!out) return pt__error(PT_ENOMEM, "executor: out of memory for a diagnostic batch of %d images", n);
  ex->find_bad = 1;
  ex->first_bad = -1;
  pt_status s = pt_exec_run_at(ex, input, n, first_image, ops, out);
  ex->find_bad = 0;
  free(out);
  if (s == PT_OK && ex->first_bad >= 0) *node_name = ex->g->nodes[ex->first_bad].name;
  return s;
}

void pt_exec_time_ops(pt_exec *ex, double *op_seconds) { ex->op_seconds = op_seconds; }

int64_t pt_exec_nodes_run(const pt_exec *ex) { return ex->nodes_run; }
