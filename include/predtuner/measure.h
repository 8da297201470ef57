/* Measuring a network's QoS (classification accuracy) and speed on a data set. */
#ifndef PREDTUNER_MEASURE_H
#define PREDTUNER_MEASURE_H

#include <stdint.h>
#include <stdio.h>

#include "predtuner/app.h"
#include "predtuner/exec.h"
#include "predtuner/io.h"
#include "predtuner/log.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Images per run when none is given: PredTuner's default. QoS is averaged per batch, as PredTuner
 * does, so the batch size can change the QoS of a data set whose size it does not divide. */
#define PT_BATCH_SIZE_DEFAULT 500

/* Index of the largest value (the first one on ties; NaN never wins unless all are NaN). */
int pt_argmax(const float *v, int n);
/* How many of v[0..n) are NaN or infinite. */
int64_t pt_count_nonfinite(const float *v, int64_t n);
/* Percentage of rows of out (n, classes) whose label is among the k largest values. A row holding a
 * NaN or an infinity is never right (docs/design.md, "QoS, cost and models"). */
double pt_topk_accuracy(const float *out, const int32_t *labels, int n, int classes, int k);

typedef struct pt_measure_opts {
  int batch_size;         /* images per run; 0 means PT_BATCH_SIZE_DEFAULT */
  const pt_op_exec *ops;  /* per-op settings, NULL = exact */
  pt_progress *progress;  /* NULL = silent; counts images */
  int32_t *predictions;   /* NULL or room for ds->n argmax predictions */
} pt_measure_opts;
/* pt_measure fails with PT_ENONFINITE, naming the op where they first appear, when an output holds
 * a NaN or an infinity. */

typedef struct pt_measure_result {
  double accuracy; /* QoS in percent: the mean of per-batch accuracies, as PredTuner computes it */
  double top5;     /* same for top-5 (top-k with k = min(5, classes)) */
  int64_t images;
  int batches;
  double seconds; /* wall time of the runs (backend-synchronised) */
  double images_per_s;
} pt_measure_result;

pt_status pt_measure(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, const pt_measure_opts *opts,
                     pt_measure_result *res);

/* pt_measure's accuracy (and wall time) of n_cfg configs at once (ops: n_cfg x pt_graph_num_ops
 * settings), each batch of images run once for all of them through pt_exec_run_many, so configs
 * that agree on a prefix of the network share its work. accuracy[k] equals pt_measure's for config
 * k alone, or NaN when its output holds a NaN or an infinity; seconds[k] (NULL: not timed) is its wall time as if run alone. progress counts images x
 * configs (total n_cfg x ds->n). */
pt_status pt_measure_many(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, int batch_size, int n_cfg,
                          const pt_op_exec *ops, pt_progress *progress, double *accuracy, double *seconds);

/* Early stopping of empirical QoS (docs/design.md, "Early stopping"): a config measured batch by
 * batch stops as soon as it cannot end above a threshold (the keep threshold). */
typedef enum pt_early_stop {
  PT_EARLY_STOP_OFF = 0,   /* every config is measured on the whole set */
  PT_EARLY_STOP_EXACT,     /* stops when its QoS stays at or below the threshold even if every remaining
                              image were right: no config that could end above it is stopped */
  PT_EARLY_STOP_CONFIDENT, /* stops when its QoS ends at or below the threshold with probability at least
                              1 - delta (over all the checks of its run), by one-sided binomial (Chernoff)
                              bounds on the remaining images */
} pt_early_stop;

typedef struct pt_stop_rule {
  pt_early_stop mode;
  double threshold; /* a config is measured in full only while its QoS can end above this */
  double delta;     /* confident: the chance allowed of stopping a config that would end above it; 0: 1e-4 */
} pt_stop_rule;

/* "off", "exact", "confident" (NULL outside the enum) and back (-1 for an unknown name). */
const char *pt_early_stop_name(pt_early_stop m);
int pt_early_stop_parse(const char *name);

/* The highest QoS (mean of per-batch accuracies, percent, over n_batches batches of sizes[b]
 * images) a config can still reach when correct[b] of the images of each of its first `done`
 * batches were right: exact, every remaining image right; confident, the 1 - delta upper bound (100
 * while nothing is measured). With done == n_batches it is the QoS itself. */
double pt_qos_bound(const pt_stop_rule *rule, int n_batches, const int *sizes, const int *correct, int done);

/* pt_measure_many, measuring batch by batch and stopping configs whose pt_qos_bound falls to the
 * rule's threshold or below (stop NULL or mode off: none stops). A stopped config gets stopped[k]
 * = 1, accuracy[k] = its bound (at or below the threshold), seconds[k] = its time scaled to the whole
 * set; a config whose output holds a NaN or an infinity stops with a NaN accuracy (stopped[k] = 0;
 * its seconds cover the batches it ran).
 * progress counts images x configs, a stopped config's remaining images included. */
pt_status pt_measure_many_stop(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, int batch_size, int n_cfg,
                               const pt_op_exec *ops, const pt_stop_rule *stop, pt_progress *progress,
                               double *accuracy, double *seconds, uint8_t *stopped);

/* Why a config failed, as the journal records it (docs/design.md, "Failed configs"): status PT_OK
 * when it did not, a negative pt_status when it failed, PT_CONFIG_STOPPED when early stopping ended
 * its measurement (not a failure: its QoS is then a bound). */
typedef struct pt_config_failure {
  pt_status status;
  char why[240];
} pt_config_failure;
#define PT_CONFIG_STOPPED ((pt_status)1)

/* Where the tuner's empirical measurements run: configs (search batches, validation, test) and,
 * when set, the models' initialisation and the timing of the best configs. measure() gets n configs (n x n_ops knob positions) and
 * gives what pt_measure_configs gives, per config and whatever the split; outputs() and profile()
 * give what the app gives in this process (NULL: the models initialise in this process; time NULL:
 * timed in this process). The
 * default (pt_tune_opts.measurer NULL) is this process. The MPI module (predtuner/dist.h,
 * docs/distributed.md) spreads all of them over the ranks of a job. */
typedef struct pt_measurer {
  int (*measure)(void *ctx, pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop, double *qos,
                 double *cost, pt_config_failure *fail);
  void *ctx;
  /* qos_p1: the raw tune-set outputs of n one-op changes of the exact network (op[k] at knob
   * position pos[k], every other op exact; out[k]: the app's output rows x columns floats); prog
   * (or NULL) advanced from done by the images run. */
  pt_status (*outputs)(void *ctx, pt_app *app, int n, const int *op, const int *pos, float *const *out,
                       pt_progress *prog, int64_t done);
  /* cost_profiled: the per-op seconds of the knobs named by knob choices knob_entry[0 .. n-1] (entry
   * numbers, as sensitivity.json's order: op by op, knob by knob), each timed with that knob on
   * every op that has it, into entry_seconds (every choice of those knobs); prog from done by choices. */
  pt_status (*profile)(void *ctx, pt_app *app, int n, const int *knob_entry, double *entry_seconds, pt_progress *prog,
                       int64_t done);
  /* Measured speedups: n configs and the exact network timed as pt_time_configs (predtuner/tuner.h)
   * does, seconds[k] and *exact comparable with each other (one device's, or scaled to one). */
  pt_status (*time)(void *ctx, pt_app *app, int n, const uint16_t *cfgs, int passes, FILE *progress, double *seconds,
                    double *exact, int64_t *images);
  int width; /* how many measure at once (0 or 1: one): the models hand over groups this many times their own */
} pt_measurer;

#ifdef __cplusplus
}
#endif
#endif
