/* pt_exec_run_many: the configs run in lexicographic order of their settings along the execution
 * order, so consecutive configs share the longest prefixes. A checkpoint is the executor's state
 * before node `depth` (which pool slot holds each earlier node's output and how many readers each
 * live slot still has); its slots are held, not copied, since no node writes into its inputs.
 * Checkpoints form a stack of increasing depth along the current config's path; every node of the
 * configs' prefix tree runs exactly once.
 *
 * Untimed, configs' paths go to the backend's lanes in turn and each output is copied to a device
 * result area, downloaded together with the others, so the host never waits between configs. Timed,
 * everything stays on one lane and the backend is synchronised at each branch point, so that each
 * config's time is that of its own path. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/executor.h"
#include "predtuner/log.h"

typedef struct pt__ckpt {
  int depth;
  double t;    /* wall time of the path up to depth (input upload included) */
  int n_live;
  int *slot;   /* (n_live) live slots */
  int *uses;   /* (n_live) their remaining readers */
  int *buf_of; /* (depth) */
} pt__ckpt;

/* Untimed outputs wait on the device (ex->res, one slot per distinct config) until a flush. */
typedef struct pt__res {
  size_t out_bytes;
  int cap, used; /* slots that fit in ex->res, slots filled */
  int from;      /* first sorted config whose output is not downloaded yet */
  int *slot_of;  /* (n_cfg) per sorted config: its slot */
  float *stage;  /* (cap, out) host copy */
} pt__res;

/* One call's plan and scratch. */
typedef struct pt__many {
  pt_exec *ex;
  const pt_op_exec *ops; /* (n_cfg, n_ops) */
  int n_cfg, n, timed;
  int64_t first_image;
  int *op_seq; /* (n_ops) op indices in execution order */
  int *ord;    /* (n_cfg) configs in sorted order */
  int *tmp;    /* (n_cfg) merge-sort scratch */
  int *lcp;    /* (n_cfg) node depth up to which sorted config k agrees with k - 1 */
  int *mark;   /* (n_nodes + 1) mark[depth] == k + 1: sorted config k saves a checkpoint there */
  int *exact;  /* (n_cfg) per sorted config: the node depth up to which it is the exact network */
  int *root;   /* (n_cfg) per sorted config: the depth of the kept state it starts from, 0: the input
                  (a depth, not an entry index: stores during the call may move entries) */
  int key;     /* the prefix cache's batch of this call's images, -1: none */
  int cache;   /* the exact-prefix cache is used and filled */
  int first_op;/* node of the first op in execution order (a kept state must lie beyond it) */
  const float *input;
  pt__ckpt *ck;/* (n_ops + 1) the checkpoint stack */
  int *ck_mem;
  int top;     /* checkpoints in use: ck[0 .. top-1] */
  pt__res res;
} pt__many;

static void many_free(pt__many *m) {
  free(m->op_seq), free(m->ord), free(m->tmp), free(m->lcp), free(m->mark), free(m->ck), free(m->ck_mem);
  free(m->exact), free(m->root);
  free(m->res.slot_of), free(m->res.stage);
}

static pt_status many_alloc(pt__many *m) {
  const pt_graph *g = m->ex->g;
  const int n_ck = g->n_ops + 1, live_max = g->n_nodes + 2, per_ck = 2 * live_max + g->n_nodes;
  m->res.out_bytes = (size_t)m->n * (size_t)pt_graph_output_numel(g) * sizeof(float);
  if (!m->timed) {
    size_t cap = PT__RESULTS_MAX / m->res.out_bytes;
    m->res.cap = cap < 1 ? 1 : cap > (size_t)m->n_cfg ? m->n_cfg : (int)cap;
  }
  m->op_seq = pt__malloc((size_t)(g->n_ops + 1) * sizeof *m->op_seq);
  m->ord = pt__malloc((size_t)m->n_cfg * sizeof *m->ord);
  m->tmp = pt__malloc((size_t)m->n_cfg * sizeof *m->tmp);
  m->lcp = pt__malloc((size_t)m->n_cfg * sizeof *m->lcp);
  m->mark = pt__calloc((size_t)g->n_nodes + 1, sizeof *m->mark);
  m->exact = pt__malloc((size_t)m->n_cfg * sizeof *m->exact);
  m->root = pt__malloc((size_t)m->n_cfg * sizeof *m->root);
  m->ck = pt__calloc((size_t)n_ck, sizeof *m->ck);
  m->ck_mem = pt__malloc((size_t)n_ck * (size_t)per_ck * sizeof *m->ck_mem);
  m->res.slot_of = pt__malloc((size_t)m->n_cfg * sizeof *m->res.slot_of);
  m->res.stage = m->timed ? NULL : pt__malloc((size_t)m->res.cap * m->res.out_bytes);
  if (!m->op_seq || !m->ord || !m->tmp || !m->lcp || !m->mark || !m->exact || !m->root || !m->ck || !m->ck_mem ||
      !m->res.slot_of ||
      (!m->timed && !m->res.stage))
    return pt__error(PT_ENOMEM, "executor: out of memory for a batch of %d configs", m->n_cfg);
  for (int c = 0; c < n_ck; c++) {
    m->ck[c].slot = m->ck_mem + (size_t)c * (size_t)per_ck;
    m->ck[c].uses = m->ck[c].slot + live_max;
    m->ck[c].buf_of = m->ck[c].uses + live_max;
  }
  return PT_OK;
}

/* ---- the plan: sorted configs and where consecutive ones part ---- */

static const pt_op_exec *op_of(const pt__many *m, int cfg, int op) {
  return &m->ops[(int64_t)cfg * m->ex->g->n_ops + op];
}

/* Node depth up to which configs a and b agree (g->n_nodes when they are the same). */
static int agree_depth(const pt__many *m, int a, int b) {
  const pt_graph *g = m->ex->g;
  for (int q = 0; q < g->n_ops; q++)
    if (memcmp(op_of(m, a, m->op_seq[q]), op_of(m, b, m->op_seq[q]), sizeof(pt_op_exec))) return g->ops[m->op_seq[q]];
  return g->n_nodes;
}

static int cfg_cmp(const pt__many *m, int a, int b) {
  for (int q = 0; q < m->ex->g->n_ops; q++) {
    int c = memcmp(op_of(m, a, m->op_seq[q]), op_of(m, b, m->op_seq[q]), sizeof(pt_op_exec));
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

/* Node depth up to which config a is the exact network (an all-zero setting is exact). Since exact
 * settings sort first, this does not increase along the sorted order. */
static int exact_depth(const pt__many *m, int a) {
  static const pt_op_exec zero;
  const pt_graph *g = m->ex->g;
  for (int q = 0; q < g->n_ops; q++)
    if (memcmp(op_of(m, a, m->op_seq[q]), &zero, sizeof zero)) return g->ops[m->op_seq[q]];
  return g->n_nodes;
}

static void plan(pt__many *m) {
  pt_exec *ex = m->ex;
  const pt_graph *g = ex->g;
  for (int i = 0, q = 0; i < g->n_nodes; i++)
    if (ex->op_of_node[i] >= 0) m->op_seq[q++] = ex->op_of_node[i];
  m->first_op = g->n_ops ? g->ops[m->op_seq[0]] : g->n_nodes;
  for (int k = 0; k < m->n_cfg; k++) m->ord[k] = k;
  sort_cfgs(m, m->ord, m->tmp, m->n_cfg);
  m->lcp[0] = 0;
  for (int k = 1; k < m->n_cfg; k++) m->lcp[k] = agree_depth(m, m->ord[k - 1], m->ord[k]);
  /* configs resuming from the same kept state are consecutive: the deepest state at or above a
   * config's exact depth cannot get deeper as that depth decreases */
  m->key = m->cache ? pt__pfx_find_key(ex, m->input, m->n, m->first_image) : -1;
  int64_t exact_run = 0; /* exact-network nodes run: each group from its start to its deepest config */
  for (int k = 0; k < m->n_cfg; k++) {
    m->exact[k] = exact_depth(m, m->ord[k]);
    const int e = pt__pfx_deepest(ex, m->key, m->exact[k]);
    m->root[k] = e >= 0 ? ex->pfx.e[e].depth : 0;
    if (e >= 0) ex->pfx.e[e].pinned = 1; /* pinned entries are never evicted, so they stay findable */
    if (k == 0 || m->root[k] != m->root[k - 1]) exact_run += m->exact[k] - m->root[k];
  }
  /* without kept states the prefix tree runs the exact network once, up to the deepest config */
  if (m->cache) ex->pfx.st.nodes_saved += m->exact[0] - exact_run;
}

/* ---- checkpoints ---- */

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

/* ---- results staged on the device (untimed) ---- */

static pt_status res_area(pt__many *m) {
  pt_exec *ex = m->ex;
  size_t need = (size_t)m->res.cap * m->res.out_bytes;
  if (m->timed || need <= ex->res_bytes) return PT_OK;
  if (ex->res) pt__ex_if(ex)->release(ex->be->ctx, ex->res);
  ex->res = NULL;
  ex->res_bytes = 0;
  PT__TRY(pt__ex_if(ex)->alloc(ex->be->ctx, need, &ex->res));
  ex->res_bytes = need;
  return PT_OK;
}

/* Downloads the staged outputs of sorted configs [res.from, to) into output. */
static pt_status res_flush(pt__many *m, int to, float *output) {
  pt_exec *ex = m->ex;
  pt__res *r = &m->res;
  if (r->from >= to) return PT_OK;
  PT__TRY(pt__ex_if(ex)->synchronize(ex->be->ctx));
  pt__lanes_forget(ex);
  PT__TRY(pt__ex_if(ex)->download(ex->be->ctx, r->stage, ex->res, (size_t)r->used * r->out_bytes));
  const size_t out_n = r->out_bytes / sizeof(float);
  for (int k = r->from; k < to; k++)
    memcpy(output + (size_t)m->ord[k] * out_n, r->stage + (size_t)r->slot_of[k] * out_n, r->out_bytes);
  r->from = to;
  r->used = 0;
  return PT_OK;
}

/* Copies the output of the path just run into the next result slot (on the current lane). */
static pt_status res_keep(pt__many *m, int k) {
  pt_exec *ex = m->ex;
  pt__res *r = &m->res;
  int last = ex->buf_of[ex->g->n_nodes - 1];
  PT__TRY(pt__lane_order(ex, last, 0));
  PT__TRY(pt__ex_if(ex)->copy(ex->be->ctx, (char *)ex->res + (size_t)r->used * r->out_bytes, ex->pool[last].ptr,
                              r->out_bytes));
  int64_t mk;
  PT__TRY(pt__lane_mark(ex, &mk));
  pt__lane_touch(ex, last, 0, mk);
  r->slot_of[k] = r->used++;
  return PT_OK;
}

/* ---- lanes ---- */

/* Several lanes only for untimed runs: timing wants each path alone on the device. */
static pt_status lanes_start(pt__many *m) {
  pt_exec *ex = m->ex;
  const pt_backend_iface *f = pt__ex_if(ex);
  int lanes = !m->timed && !ex->op_seconds && f->lanes ? f->lanes(ex->be->ctx) : 1;
  lanes = lanes < 1 ? 1 : lanes > PT__LANES_MAX ? PT__LANES_MAX : lanes;
  if (lanes < 2) return PT_OK;
  PT__TRY(f->synchronize(ex->be->ctx));
  PT__TRY(f->use_lane(ex->be->ctx, 0));
  ex->n_lanes = lanes;
  ex->lane = 0;
  pt__lanes_forget(ex);
  return PT_OK;
}

/* After the input upload: every lane first waits for lane 0's upload and derived weights. */
static pt_status lanes_begin(pt__many *m) {
  pt_exec *ex = m->ex;
  if (ex->n_lanes < 2) return PT_OK;
  PT__TRY(pt__ex_prepare_params(ex, m->n_cfg, m->ops));
  int64_t m0;
  PT__TRY(pt__lane_mark(ex, &m0));
  pt__lane_touch(ex, ex->in_slot, 1, m0);
  for (int l = 1; l < ex->n_lanes; l++) {
    PT__TRY(pt__lane_use(ex, l));
    PT__TRY(pt__ex_if(ex)->lane_wait(ex->be->ctx, 0, m0));
    ex->seen[l][0] = m0;
  }
  return pt__lane_use(ex, 0);
}

/* Whatever happened, nothing stays queued and later runs start on lane 0. */
static pt_status lanes_stop(pt_exec *ex) {
  pt_status s = pt__ex_if(ex)->synchronize(ex->be->ctx);
  if (ex->n_lanes > 1) {
    pt_status s2 = pt__ex_if(ex)->use_lane(ex->be->ctx, 0);
    if (s == PT_OK) s = s2;
    ex->n_lanes = 1;
    ex->lane = 0;
  }
  return s;
}

/* ---- one config's path ---- */

/* Runs sorted config k from the deepest checkpoint it shares with the previous config, saving
 * checkpoints where later configs branch off; its output is staged (untimed) or downloaded with its
 * time (timed). */
static pt_status run_path(pt__many *m, int k, int path, float *output, double *seconds) {
  pt_exec *ex = m->ex;
  const pt_graph *g = ex->g;
  const pt_op_exec *cops = m->ops + (int64_t)m->ord[k] * g->n_ops;
  const size_t out_n = m->res.out_bytes / sizeof(float);
  if (!m->timed && m->res.used == m->res.cap) PT__TRY(res_flush(m, k, output));
  PT__TRY(pt__lane_use(ex, path % ex->n_lanes));
  while (m->top > 1 && m->ck[m->top - 1].depth > m->lcp[k]) ckpt_drop(ex, &m->ck[--m->top]);
  ckpt_restore(ex, &m->ck[m->top - 1]);
  const int start = m->ck[m->top - 1].depth;
  const double base = m->ck[m->top - 1].t, seg0 = pt_now();
  /* depths where later configs branch off this one's path: the distinct running minima of the
   * following agreement depths that lie beyond this path's start */
  for (int j = k + 1, mn = g->n_nodes; j < m->n_cfg; j++) {
    if (m->lcp[j] < mn) mn = m->lcp[j];
    if (mn <= start) break;
    if (mn < g->n_nodes) m->mark[mn] = k + 1;
  }
  for (int i = start; i < g->n_nodes; i++) {
    if (m->cache && i == m->exact[k] && i > m->first_op) /* where this config leaves the exact network */
      PT__TRY(pt__pfx_store(ex, m->input, m->n, m->first_image, i));
    if (i > start && m->mark[i] == k + 1 && m->top < g->n_ops + 1) {
      if (m->timed) PT__TRY(pt__ex_if(ex)->synchronize(ex->be->ctx));
      ckpt_save(ex, &m->ck[m->top++], i, base + pt_now() - seg0);
    }
    PT__TRY(pt__ex_node(ex, i, m->n, m->first_image, pt__ex_setting(ex, cops, i)));
  }
  if (!m->timed) return res_keep(m, k);
  PT__TRY(pt__ex_download_output(ex, m->n, output + (size_t)m->ord[k] * out_n));
  PT__TRY(pt__ex_if(ex)->synchronize(ex->be->ctx));
  seconds[m->ord[k]] = base + pt_now() - seg0;
  return PT_OK;
}

/* A config with the same settings as the previous one in sorted order takes its result. */
static void copy_previous(pt__many *m, int k, float *output, double *seconds) {
  const size_t out_n = m->res.out_bytes / sizeof(float);
  if (!m->timed) {
    m->res.slot_of[k] = m->res.slot_of[k - 1];
    return;
  }
  memcpy(output + (size_t)m->ord[k] * out_n, output + (size_t)m->ord[k - 1] * out_n, out_n * sizeof *output);
  seconds[m->ord[k]] = seconds[m->ord[k - 1]];
}

/* The bottom of the checkpoint stack for sorted config k and those after it that share its start:
 * the uploaded input (depth 0) or a state kept by the prefix cache. */
static pt_status root(pt__many *m, int k) {
  pt_exec *ex = m->ex;
  while (m->top > 0) ckpt_drop(ex, &m->ck[--m->top]);
  PT__TRY(pt__lane_use(ex, 0));
  double t0 = pt_now();
  if (m->root[k] > 0) PT__TRY(pt__pfx_restore(ex, pt__pfx_at(ex, m->key, m->root[k])));
  else PT__TRY(pt__ex_begin_run(ex, m->input, m->n));
  if (k == 0) PT__TRY(lanes_begin(m));
  if (m->timed) PT__TRY(pt__ex_if(ex)->synchronize(ex->be->ctx));
  ckpt_save(ex, &m->ck[m->top++], m->root[k], pt_now() - t0);
  return PT_OK;
}

static pt_status run_all(pt__many *m, float *output, double *seconds) {
  const pt_graph *g = m->ex->g;
  for (int k = 0, path = 0; k < m->n_cfg; k++) {
    if (k == 0 || m->root[k] != m->root[k - 1]) PT__TRY(root(m, k));
    if (k > 0 && m->lcp[k] == g->n_nodes) copy_previous(m, k, output, seconds);
    else PT__TRY(run_path(m, k, path++, output, seconds));
  }
  return m->timed ? PT_OK : res_flush(m, m->n_cfg, output);
}

pt_status pt_exec_run_many(pt_exec *ex, const float *input, int n, int64_t first_image, int n_cfg,
                           const pt_op_exec *ops, float *output, double *seconds) {
  const pt_graph *g = ex->g;
  if (n <= 0) return pt__error(PT_EINVAL, "executor: batch of %d images", n);
  if (n_cfg <= 0) return PT_OK;
  if (!ops) return pt__error(PT_EINVAL, "executor: run_many needs the settings of %d configs", n_cfg);
  for (int k = 0; k < n_cfg; k++) PT__TRY(pt__ex_check_ops(ex, ops + (int64_t)k * g->n_ops));
  pt__many m = {.ex = ex, .ops = ops, .n_cfg = n_cfg, .n = n, .timed = seconds != NULL, .first_image = first_image,
                .input = input};
  m.cache = ex->pfx.max > 0 && !m.timed && !ex->op_seconds && !ex->find_bad && !ex->calib;
  pt_status s = many_alloc(&m);
  if (s == PT_OK) {
    plan(&m);
    s = res_area(&m);
  }
  if (s == PT_OK) s = lanes_start(&m);
  if (s == PT_OK) s = run_all(&m, output, seconds);
  pt_status s2 = lanes_stop(ex);
  if (s == PT_OK) s = s2;
  while (m.top > 0) ckpt_drop(ex, &m.ck[--m.top]);
  pt__pfx_unpin_all(ex);
  many_free(&m);
  return s;
}
