/* The tuner's state, shared by the pipeline (tuner.c, tune_search.c, tune_select.c), results JSON
 * (results.c) and plots (plot.c). */
#ifndef PT_TUNER_INTERNAL_H
#define PT_TUNER_INTERNAL_H

#include <stdio.h>

#include "app/app_internal.h"
#include "predtuner/tuner.h"
#include "tuner/evaluator.h"

struct pt_tuner {
  pt_app *app;
  pt_tune_summary sum;
  pt_qos_model qos_model; /* the models of the last run (empirical when none) */
  pt_cost_model cost_model;
  int tuned;
  pt_tune_opts opts;      /* the last run's options (its pointers are not kept valid: scalars only) */
  pt_status figure_status; /* the last run's sensitivity heatmap, when it could not be drawn */
  /* every evaluated config, in evaluation order (resumed ones first) */
  int64_t n, cap;
  uint16_t *cfg;      /* (n, n_ops) */
  double *qos, *cost; /* (n); cost relative to the baseline config */
  uint8_t *pred;      /* (n) QoS from a model */
  uint8_t *early;     /* (n) stopped early: its QoS is a bound at or below the keep threshold, never kept */
  int n_kept;
  int64_t *kept;    /* (n_kept) indices of configs above the tune keep threshold */
  int n_bestpre;
  int64_t *bestpre; /* (n_bestpre) Pareto front + nearest, before filtering */
  double *val_qos, *test_qos; /* (n_bestpre) NaN when not measured */
  int n_best;
  int *best;        /* (n_best) indices into bestpre that pass the final filter */
  double *meas_s;   /* (n_bestpre) measured seconds per timed pass, NaN when not timed */
};

/* Stages of pt_tuner_tune after the baseline and the models (docs/design.md, "The tuning pipeline"):
 * the search (journal, resume, ask/evaluate/tell rounds), then the selection (kept, Pareto best,
 * validation, test, final filter). */
pt_status pt__tune_search(pt_tuner *t, const pt_tune_opts *o, pt__evaluator *ev);
pt_status pt__tune_select(pt_tuner *t, const pt_tune_opts *o);
/* The last stage: the best configs and the exact network timed in one sitting (tune_time.c). Never
 * fails the tune: a config whose timed run fails keeps a NaN time, with a warning. */
pt_status pt__tune_time(pt_tuner *t, const pt_tune_opts *o);

/* What a plot shows, from a tuner or from a configs.json. */
typedef struct pt__plot_data {
  int n;
  const double *qos, *speedup, *val_qos, *test_qos; /* (n) */
  const double *measured;                           /* (n) measured speedup, NaN where not timed */
  const uint8_t *is_best;                           /* (n) */
  double base_tune, base_test, tune_keep, test_keep;
} pt__plot_data;

pt_status pt__plot_draw(const pt__plot_data *d, const char *path, int show_qos_loss);

#endif
