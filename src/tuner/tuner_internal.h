/* The tuner's state, shared by the pipeline (tuner.c), results JSON (results.c) and plots (plot.c). */
#ifndef PT_TUNER_INTERNAL_H
#define PT_TUNER_INTERNAL_H

#include "app/app_internal.h"
#include "predtuner/tuner.h"

struct pt_tuner {
  pt_app *app;
  pt_tune_summary sum;
  char qos_model[32], cost_model[32]; /* "" = empirical */
  int tuned;
  /* every evaluated config, in evaluation order (resumed ones first) */
  int64_t n, cap;
  uint16_t *cfg;    /* (n, n_ops) */
  double *qos, *cost; /* (n); cost relative to the baseline config */
  uint8_t *pred;    /* (n) QoS from a model */
  int n_kept;
  int64_t *kept;    /* (n_kept) indices of configs above the tune keep threshold */
  int n_bestpre;
  int64_t *bestpre; /* (n_bestpre) Pareto front + nearest, before filtering */
  double *val_qos, *test_qos; /* (n_bestpre) NaN when not measured */
  int n_best;
  int *best;        /* (n_best) indices into bestpre that pass the final filter */
};

/* What a plot shows, from a tuner or from a configs.json. */
typedef struct pt__plot_data {
  int n;
  const double *qos, *speedup, *val_qos, *test_qos; /* (n) */
  const uint8_t *is_best;                           /* (n) */
  double base_tune, base_test, tune_keep, test_keep;
} pt__plot_data;

pt_status pt__plot_draw(const pt__plot_data *d, const char *path, int show_qos_loss);

#endif
