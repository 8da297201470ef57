/* Running a network with loaded weights on a backend. */
#ifndef PREDTUNER_EXEC_H
#define PREDTUNER_EXEC_H

#include <stdint.h>

#include "predtuner/approx.h"
#include "predtuner/backend.h"
#include "predtuner/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_exec pt_exec;

/* PromiseSim's quantisation ranges of one op: [lo, hi] of its input, weight, bias and output. */
typedef struct pt_promise_ranges {
  float in[2], weight[2], bias[2], out[2];
  int set; /* ranges known for this op */
} pt_promise_ranges;

/* Uploads g's weights to the backend. Every weight must be loaded (pt_weights_load or
 * pt_graph_init_random). The graph must outlive the executor. */
pt_status pt_exec_create(const pt_graph *g, pt_backend *be, pt_exec **out);
void pt_exec_free(pt_exec *ex);

/* Runs n images: input (n, C, H, W) host floats -> output (n, pt_graph_output_numel) host floats
 * (num_classes for a classifier).
 * ops: NULL (all exact) or one entry per op, indexed like pt_graph_op_name. */
pt_status pt_exec_run(pt_exec *ex, const float *input, int n, const pt_op_exec *ops, float *output);
/* Same, telling the executor that input holds images first_image .. first_image+n-1 of a data set:
 * PromiseSim's noise is keyed by (seed, op, image, element), so a result never depends on batching. */
pt_status pt_exec_run_at(pt_exec *ex, const float *input, int n, int64_t first_image, const pt_op_exec *ops,
                         float *output);

/* Runs the same n images under n_cfg configs (ops: n_cfg x pt_graph_num_ops settings, config-major)
 * and writes config k's output to output + k * n * pt_graph_output_numel(g). Configs that agree on the ops of a
 * prefix of the execution order share that prefix's work: the configs run in sorted order and each
 * resumes from the activations of the longest prefix it shares with those before it (held in the
 * pool, not copied; extra memory is at most one set of live activations per op). Outputs equal
 * pt_exec_run_at's for each config alone. seconds (n_cfg entries, or NULL): each config's wall time
 * as if run alone, i.e. the time of the input upload and of every node on its path, shared parts
 * included (timing synchronises the backend at each branch point). */
pt_status pt_exec_run_many(pt_exec *ex, const float *input, int n, int64_t first_image, int n_cfg,
                           const pt_op_exec *ops, float *output, double *seconds);

/* The exact-prefix cache of pt_exec_run_many (off until set): for each batch of input images seen,
 * the exact network's live activations before the first approximated op of the configs run on it
 * are kept (at most max_bytes of backend memory, host copies of the inputs included; deeper states
 * are kept in preference to shallower ones), so that later calls on the same images resume configs
 * whose first ops are exact from there instead of from the input. Batches are recognised by their
 * content, n and first_image. Timed calls (seconds != NULL) and per-op timing neither use nor fill
 * it. Outputs are unchanged. max_bytes 0 turns it off and frees what it holds. */
typedef struct pt_exec_prefix_stats {
  int64_t restores;    /* config groups resumed from a kept state */
  int64_t nodes_saved; /* exact-network nodes not run, against the same calls without the cache */
  int64_t stored, evicted;
  int entries;
  size_t bytes;
} pt_exec_prefix_stats;
void pt_exec_set_prefix_cache(pt_exec *ex, size_t max_bytes);
void pt_exec_prefix_cache_stats(const pt_exec *ex, pt_exec_prefix_stats *st);

/* PromiseSim: per-op ranges (pt_graph_num_ops entries, copied) and the noise seed. An op run with
 * PromiseSim whose ranges are not set is an error naming it. */
pt_status pt_exec_set_promise(pt_exec *ex, const pt_promise_ranges *ranges, uint64_t seed);
/* Calibrates PromiseSim ranges as PredTuner cannot (it needs hand-made ones): runs the exact
 * network over input and widens ranges[op] (pt_graph_num_ops entries) to the min/max seen at each
 * convolution's and linear layer's input, weight, bias and output. Call over every batch of the
 * tuning set, starting from zeroed ranges. */
pt_status pt_exec_calibrate(pt_exec *ex, const float *input, int n, pt_promise_ranges *ranges);

/* A diagnostic run (slow: every node's output is copied to the host): *node_name is the first node
 * whose output holds a NaN or an infinity ("input" when the input does), NULL when none does. */
pt_status pt_exec_find_nonfinite(pt_exec *ex, const float *input, int n, int64_t first_image, const pt_op_exec *ops,
                                 const char **node_name);

/* Per-op timing for profiling: while op_seconds (pt_graph_num_ops entries) is set, every run adds
 * each op's wall time to it (synchronising the backend after each op, so runs get slower). NULL
 * stops timing. The time of the PromiseSim input quantisation is not included. */
void pt_exec_time_ops(pt_exec *ex, double *op_seconds);

/* How many graph nodes the executor has run since it was created (shows what run_many shared). */
int64_t pt_exec_nodes_run(const pt_exec *ex);

#ifdef __cplusplus
}
#endif
#endif
