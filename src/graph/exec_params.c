/* Derived weights and calibration. The executor keeps, per op and made on first use, binary16-rounded
 * copies of the weight and bias (FP16Approx and fp16 perforation then need not round the weights on
 * every call) and PromiseSim's quantised ones (remade when the ranges change). Calibration records the
 * ranges PromiseSim quantises over while the exact network runs (pt_exec_calibrate, in exec.c). */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/executor.h"

static int64_t numel_of_param(const pt_graph *g, int idx) {
  return idx < 0 ? 0 : pt_shape_numel(g->params[idx].ndim, g->params[idx].shape);
}

int pt__ex_uses_f16_params(const pt_node *n, const pt_op_exec *oe) {
  /* sampling rounds the weights it gathers itself (after scaling them) */
  return oe->fp16 && oe->kind != PT_APPROX_SAMPLING && (n->type == PT_OP_CONV2D || n->type == PT_OP_LINEAR);
}

/* Fills a per-op slot, once, with node n's parameter k (0 weight, 1 bias) quantised over lohi, or
 * rounded to binary16 when lohi is NULL. */
static pt_status derive(pt_exec *ex, void **slot, const pt_node *n, int k, const float lohi[2]) {
  int64_t cnt = numel_of_param(ex->g, n->param[k]);
  if (!cnt || *slot) return PT_OK;
  void *mem;
  PT__TRY(pt__ex_if(ex)->alloc(ex->be->ctx, (size_t)cnt * sizeof(float), &mem));
  pt_status s = lohi ? pt__ex_if(ex)->quantize(ex->be->ctx, cnt, lohi[0], lohi[1], pt__ex_param(ex, n, k), mem)
                     : pt__ex_if(ex)->round_f16(ex->be->ctx, cnt, pt__ex_param(ex, n, k), mem);
  if (s != PT_OK) {
    pt__ex_if(ex)->release(ex->be->ctx, mem);
    return s;
  }
  *slot = mem;
  return PT_OK;
}

pt_status pt__ex_f16_params(pt_exec *ex, int op, const pt_node *n, const float **w, const float **b) {
  PT__TRY(derive(ex, &ex->h_w[op], n, 0, NULL));
  PT__TRY(derive(ex, &ex->h_b[op], n, 1, NULL));
  *w = ex->h_w[op];
  *b = n->param[1] >= 0 ? ex->h_b[op] : NULL;
  return PT_OK;
}

pt_status pt__ex_promise_params(pt_exec *ex, int op, const pt_node *n, const float **w, const float **b) {
  const pt_promise_ranges *r = &ex->promise[op];
  PT__TRY(derive(ex, &ex->pq_w[op], n, 0, r->weight));
  PT__TRY(derive(ex, &ex->pq_b[op], n, 1, r->bias));
  *w = ex->pq_w[op];
  *b = n->param[1] >= 0 ? ex->pq_b[op] : NULL;
  return PT_OK;
}

pt_status pt__ex_prepare_params(pt_exec *ex, int n_cfg, const pt_op_exec *ops) {
  const pt_graph *g = ex->g;
  for (int k = 0; k < n_cfg; k++)
    for (int op = 0; op < g->n_ops; op++) {
      const pt_op_exec *oe = &ops[(int64_t)k * g->n_ops + op];
      const pt_node *nd = &g->nodes[g->ops[op]];
      const float *w, *b;
      if (oe->kind == PT_APPROX_PROMISE) PT__TRY(pt__ex_promise_params(ex, op, nd, &w, &b));
      if (pt__ex_uses_f16_params(nd, oe)) PT__TRY(pt__ex_f16_params(ex, op, nd, &w, &b));
    }
  return PT_OK;
}

static void release_all(pt_exec *ex, void **slots) {
  for (int o = 0; slots && o < ex->g->n_ops; o++) {
    if (slots[o]) pt__ex_if(ex)->release(ex->be->ctx, slots[o]);
    slots[o] = NULL;
  }
}

void pt__ex_free_params(pt_exec *ex) {
  release_all(ex, ex->pq_w);
  release_all(ex, ex->pq_b);
  release_all(ex, ex->h_w);
  release_all(ex, ex->h_b);
}

pt_status pt_exec_set_promise(pt_exec *ex, const pt_promise_ranges *ranges, uint64_t seed) {
  int no = ex->g->n_ops;
  if (!ex->promise) {
    pt_promise_ranges *r = pt__calloc((size_t)no + 1, sizeof *r);
    void **w = pt__calloc((size_t)no + 1, sizeof *w), **b = pt__calloc((size_t)no + 1, sizeof *b);
    if (!r || !w || !b) {
      free(r), free(w), free(b);
      return pt__error(PT_ENOMEM, "executor: out of memory for PromiseSim's ranges (%d ops)", no);
    }
    ex->promise = r, ex->pq_w = w, ex->pq_b = b;
  }
  release_all(ex, ex->pq_w); /* new ranges: the quantised weights are remade on next use */
  release_all(ex, ex->pq_b);
  memcpy(ex->promise, ranges, (size_t)no * sizeof *ranges);
  ex->promise_seed = seed;
  return PT_OK;
}

/* ---- calibration ---- */

static void widen(float r[2], const float v[2], int first) {
  if (first || v[0] < r[0]) r[0] = v[0];
  if (first || v[1] > r[1]) r[1] = v[1];
}

pt_status pt__ex_calibrate_node(pt_exec *ex, int op, const pt_node *n, int batch, const float *x, const float *y) {
  pt_promise_ranges *r = &ex->calib[op];
  const pt_graph *g = ex->g;
  float v[2];
  int first = !r->set;
  void *c = ex->be->ctx;
  PT__TRY(pt__ex_if(ex)->minmax(c, (int64_t)batch * pt__node_out_numel(g, n->in[0]), x, v));
  widen(r->in, v, first);
  PT__TRY(pt__ex_if(ex)->minmax(c, (int64_t)batch * pt__node_out_numel(g, (int)(n - g->nodes)), y, v));
  widen(r->out, v, first);
  for (int k = 0; k < 2; k++) {
    int64_t cnt = numel_of_param(g, n->param[k]);
    float *dst = k == 0 ? r->weight : r->bias;
    if (!cnt) {
      dst[0] = dst[1] = 0.0f;
      continue;
    }
    PT__TRY(pt__ex_if(ex)->minmax(c, cnt, pt__ex_param(ex, n, k), v));
    widen(dst, v, first);
  }
  r->set = 1;
  return PT_OK;
}
