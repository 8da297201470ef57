/* The executor behind the opaque pt_exec, shared by its four files:
 *   exec.c         create, run (calibration runs included), node dispatch and knob checks
 *   exec_pool.c    the activation buffer pool and the ordering of work across backend lanes
 *   exec_many.c    pt_exec_run_many: sorted configs, prefix checkpoints, result staging
 *   exec_params.c  derived weights (binary16 copies, PromiseSim's quantised ones), PromiseSim's ranges
 *                  and the recording of calibrated ones
 *   exec_cache.c   the exact-prefix cache: the exact network's live activations at chosen depths,
 *                  per batch of input images, kept across pt_exec_run_many calls
 * docs/design.md ("The executor") describes how they fit together. */
#ifndef PT_GRAPH_EXECUTOR_H
#define PT_GRAPH_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend_iface.h"
#include "graph/graph_internal.h"
#include "predtuner/exec.h"

#define PT__LANES_MAX 8
/* Cap on the device memory that holds run_many's outputs until they are downloaded together. */
#define PT__RESULTS_MAX ((size_t)64 << 20)

/* One activation buffer of the pool. */
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

/* ---- the exact-prefix cache (exec_cache.c) ---- */
/* One batch of input images the cache knows, compared in full on lookup (a hash only filters). */
typedef struct pt__pfx_key {
  uint64_t hash;
  int n;
  int64_t first_image;
  float *input; /* (n, C, H, W) host copy */
  int refs;     /* entries of this batch */
} pt__pfx_key;

/* The exact network's state before node `depth` on one batch: copies of its live activations. */
typedef struct pt__pfx_entry {
  int key, depth;
  int n_live;
  void **data;    /* (n_live) backend copies */
  size_t *bytes;  /* (n_live) */
  int *uses;      /* (n_live) readers still to come */
  int in_live;    /* index of the network input among them, -1: not live */
  int *live_of;   /* (depth) index of each earlier node's output among them, -1: dead */
  size_t total;   /* backend bytes held */
  int pinned;     /* a root of the pt_exec_run_many call under way: not evicted */
} pt__pfx_entry;

typedef struct pt__pfx {
  size_t max, used; /* bound and bytes held (backend copies and host inputs) */
  pt__pfx_key *key;
  int n_key, cap_key;
  pt__pfx_entry *e;
  int n_e, cap_e;
  pt_exec_prefix_stats st;
} pt__pfx;

struct pt_exec {
  const pt_graph *g;
  pt_backend *be;
  void **param_dev; /* (g->n_params) backend copies of g->params */
  int *readers;     /* (g->n_nodes) how many nodes read each node's output (+1 for the network output) */
  int *op_of_node;  /* (g->n_nodes) op index or -1 */
  pt__buf *pool;    /* (n_pool) */
  int n_pool, cap_pool;
  int *buf_of;       /* (g->n_nodes) pool slot of each node's output during a run */
  int in_slot;       /* pool slot of the network input during a run */
  int64_t nodes_run; /* nodes executed since creation (pt_exec_nodes_run) */
  /* PromiseSim */
  pt_promise_ranges *promise; /* (g->n_ops) NULL until pt_exec_set_promise */
  uint64_t promise_seed;
  void **pq_w, **pq_b;      /* (g->n_ops) quantised weight and bias, made on first use */
  pt_promise_ranges *calib; /* (g->n_ops) set during pt_exec_calibrate */
  int find_bad;             /* pt_exec_find_nonfinite runs: each node's output is scanned on the host */
  int first_bad;            /* the first node whose output held a NaN or an infinity, -1 none */
  void **h_w, **h_b;        /* (g->n_ops) binary16-rounded weight and bias, made on first fp16 use */
  double *op_seconds;       /* (g->n_ops) wall time accumulated by runs (pt_exec_time_ops), or NULL */
  /* Lanes in use by the current run_many (1 otherwise), the lane work is queued on, and per pair
   * (x, y) the highest mark of lane y that lane x already waits for. */
  int n_lanes, lane;
  int64_t seen[PT__LANES_MAX][PT__LANES_MAX];
  void *res; /* run_many's device copies of outputs before their download, res_bytes */
  size_t res_bytes;
  pt__pfx pfx;
};

static inline const pt_backend_iface *pt__ex_if(const pt_exec *ex) { return ex->be->iface; }
/* The backend copy of node n's parameter k (0 weight, 1 bias, 2 running mean, 3 running var), or NULL. */
static inline const float *pt__ex_param(const pt_exec *ex, const pt_node *n, int k) {
  return n->param[k] >= 0 ? (const float *)ex->param_dev[n->param[k]] : NULL;
}

/* ---- exec.c ---- */
/* Checks every op's setting (ops: NULL or g->n_ops entries) before anything runs. */
pt_status pt__ex_check_ops(pt_exec *ex, const pt_op_exec *ops);
/* Empties the pool and uploads n input images into a fresh slot (ex->in_slot). */
pt_status pt__ex_begin_run(pt_exec *ex, const float *input, int n);
/* Runs node i on a batch of n images under setting oe: its output goes to a pool slot (buf_of[i]),
 * its inputs go back to the pool after their last reader. */
pt_status pt__ex_node(pt_exec *ex, int i, int n, int64_t first_image, const pt_op_exec *oe);
/* The setting of node i under ops (exact for non-ops and when ops is NULL). */
const pt_op_exec *pt__ex_setting(const pt_exec *ex, const pt_op_exec *ops, int node);
/* Downloads the network output of the last run (n images) to host memory. */
pt_status pt__ex_download_output(pt_exec *ex, int n, float *output);

/* ---- exec_pool.c ---- */
/* A free pool buffer of at least `bytes` (best fit) or a new one, taken with `uses` readers to come.
 * Returns the slot, or -1 with the error set. */
int pt__pool_get(pt_exec *ex, size_t bytes, int uses);
/* One reader of slot is done; the slot is free when no reader is left and no checkpoint holds it. */
void pt__pool_read_done(pt_exec *ex, int slot);
void pt__pool_reset(pt_exec *ex);
void pt__pool_free_all(pt_exec *ex);
/* Before work on the current lane reads pool slot s (write == 0) or writes it: waits for the lanes
 * whose work on s must come first (the last writer for a read; every earlier reader and writer for
 * a write). */
pt_status pt__lane_order(pt_exec *ex, int s, int write);
/* After work on the current lane that read or wrote slot s was queued, ending at mark m. */
void pt__lane_touch(pt_exec *ex, int s, int write, int64_t m);
pt_status pt__lane_use(pt_exec *ex, int lane);
/* The current lane's mark (-1 with a single lane). */
pt_status pt__lane_mark(pt_exec *ex, int64_t *m);
/* After a full synchronisation: no lane has to wait for anything queued before it. */
void pt__lanes_forget(pt_exec *ex);

/* ---- exec_cache.c ---- */
/* The cache's batch equal to (input, n, first_image), or -1. */
int pt__pfx_find_key(pt_exec *ex, const float *input, int n, int64_t first_image);
/* The deepest entry of batch key at a depth of at most max_depth (and above 0), or -1. Entry
 * indices move when entries are evicted: hold (key, depth) across stores, not an index. */
int pt__pfx_deepest(const pt_exec *ex, int key, int max_depth);
/* The entry of batch key at depth, or -1. */
int pt__pfx_at(const pt_exec *ex, int key, int depth);
/* Starts a run from entry e: the pool holds copies of its live activations (queued on the current
 * lane, ordered after earlier work on their slots), as pt__ex_begin_run plus nodes 0..depth-1 would. */
pt_status pt__pfx_restore(pt_exec *ex, int e);
/* Keeps the current state before node `depth` of the exact network on (input, n, first_image),
 * unless the cache has it or has no room (entries of smaller depths make room). Never fails a run:
 * a copy that cannot be made is not kept. */
pt_status pt__pfx_store(pt_exec *ex, const float *input, int n, int64_t first_image, int depth);
void pt__pfx_unpin_all(pt_exec *ex);
void pt__pfx_free_all(pt_exec *ex);

/* ---- exec_params.c ---- */
/* Whether setting oe of node n runs on binary16-rounded weights (kept by f16_params). */
int pt__ex_uses_f16_params(const pt_node *n, const pt_op_exec *oe);
/* Binary16-rounded copies of op's weight and bias, made once. */
pt_status pt__ex_f16_params(pt_exec *ex, int op, const pt_node *n, const float **w, const float **b);
/* PromiseSim's quantised weight and bias of op (node n), made once per set of ranges. */
pt_status pt__ex_promise_params(pt_exec *ex, int op, const pt_node *n, const float **w, const float **b);
/* Makes every derived weight any of n_cfg configs needs (so that lanes only ever read them). */
pt_status pt__ex_prepare_params(pt_exec *ex, int n_cfg, const pt_op_exec *ops);
/* Releases every derived weight. */
void pt__ex_free_params(pt_exec *ex);
/* Records the ranges of a convolution's or linear layer's tensors while pt_exec_calibrate runs. */
pt_status pt__ex_calibrate_node(pt_exec *ex, int op, const pt_node *n, int batch, const float *x, const float *y);

#endif
