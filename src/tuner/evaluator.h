/* The evaluator: the QoS and cost models of a tuning run and how a batch of configs gets its QoS and
 * cost (predicted, measured, or both), plus the per-entry tables that guide the search. */
#ifndef PT_TUNER_EVALUATOR_H
#define PT_TUNER_EVALUATOR_H

#include <stdint.h>

#include "models/models.h"
#include "predtuner/tuner.h"

typedef struct pt__evaluator {
  pt_app *app;
  pt_qos_model qos;
  pt_cost_model cost;
  pt__p1 p1;
  pt__p2 p2;
  double *cost_tbl;    /* (n_entries) the cost model's table, NULL for empirical cost */
  double base_cost;    /* the baseline config's cost in the same units (pt__eval_cost_reference) */
  double *search_cost; /* (n_entries) the cost when only that (op, knob) changes: guides the search */
  double *search_loss; /* (n_entries) the QoS it loses, NaN when the QoS model does not say */
  pt_stop_rule stop;   /* early stopping of empirical QoS in the search (mode off: none) */
  const pt_measurer *meas; /* where configs are measured (NULL: this process) */
} pt__evaluator;

/* Where o keeps model files: o->model_storage, else <output_dir>/models, else NULL (none; an
 * empty string is none too). */
const char *pt__eval_storage(const pt_tune_opts *o, char *buf, size_t n);
/* Builds (or loads from storage, NULL: none) the models o names, with progress on o->progress;
 * baseline_qos (the exact network's tune QoS, NaN: unknown) checks a stored P2 model against it. */
pt_status pt__eval_init(pt__evaluator *ev, pt_app *app, const pt_tune_opts *o, const char *storage,
                        double baseline_qos);
void pt__eval_free(pt__evaluator *ev);
/* Whether QoS comes from a model. */
static inline int pt__eval_predicts_qos(const pt__evaluator *ev) { return ev->qos != PT_QOS_EMPIRICAL; }
/* The cost reference: the baseline config's cost (from the model, or measured). *exact_speedup is
 * the baseline config's speedup over the exact network where it is known (NaN otherwise;
 * exact_cost: the exact network's measured cost). */
pt_status pt__eval_cost_reference(pt__evaluator *ev, double exact_cost, double *exact_speedup);
/* Why one config failed (tuner.h's pt_config_failure); PT__STOPPED: stopped early, not failed. */
typedef pt_config_failure pt__fail;
#define PT__STOPPED PT_CONFIG_STOPPED

/* pt_measure_configs (tuner.h) measures configs in this process, failures as results. */
/* pt_measure_configs through a measurer (NULL: in this process). */
int pt__measure_via(const pt_measurer *m, pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop,
                    double *qos, double *cost, pt__fail *fail);
/* QoS and cost (relative to the baseline config) of n configs; failed ones as pt_measure_configs.
 * Returns the number that failed, or the (negative) status when the models fail. */
int pt__eval_batch(pt__evaluator *ev, int n, const uint16_t *cfgs, double *qos, double *cost, pt__fail *fail);

/* sensitivity.c: the per-layer sensitivity report of a QoS model, sensitivity.json, .txt, and the
 * heatmap .png and .svg in dir. A heatmap that cannot be drawn is logged and its status left in
 * *plot_s (the report's other files are still written); any other failure is returned. */
pt_status pt__sensitivity_write(const pt__evaluator *ev, const char *dir, pt_status *plot_s);
/* Removes the report files from dir (a run without a QoS model must not leave an earlier one's). */
pt_status pt__sensitivity_remove(const char *dir);

#endif
