/* The selection stage of the pipeline: the kept configs (QoS above the tune keep threshold), the best
 * of them (Pareto front plus the nearest, up to take_best_n), their empirical QoS on the tune set
 * (validation) and on the test set, and PredTuner's final filter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/log.h"
#include "tuner/tuner_internal.h"

/* Configs measured together in validation and testing: they share common prefixes, and the
 * progress bar still moves. */
#define MEASURE_GROUP 16

static pt_status select_kept(pt_tuner *t) {
  t->kept = pt__malloc((size_t)(t->n ? t->n : 1) * sizeof *t->kept);
  if (!t->kept) return pt__error(PT_ENOMEM, "tuner: out of memory for the kept configs");
  for (int64_t i = 0; i < t->n; i++)
    if (t->qos[i] > t->sum.thresholds.tune_keep && !t->early[i]) t->kept[t->n_kept++] = i;
  return PT_OK;
}

/* bestpre: the Pareto front of the kept configs in (QoS, speedup), plus the nearest. */
static pt_status select_best(pt_tuner *t, int take_best_n) {
  const int nk = t->n_kept;
  double *q = pt__malloc((size_t)(nk + 1) * sizeof *q), *sp = pt__malloc((size_t)(nk + 1) * sizeof *sp);
  int *idx = pt__malloc((size_t)(nk + 1) * sizeof *idx);
  pt_status s = q && sp && idx ? PT_OK : pt__error(PT_ENOMEM, "tuner: out of memory for the Pareto front");
  int nb = 0;
  if (s == PT_OK) {
    for (int i = 0; i < nk; i++) {
      q[i] = t->qos[t->kept[i]];
      sp[i] = 1.0 / t->cost[t->kept[i]];
    }
    nb = pt_pareto_take_best(q, sp, nk, take_best_n, idx);
    if (nb < 0) {
      free(q), free(sp), free(idx);
      return PT_ENOMEM;
    }
    t->bestpre = pt__malloc((size_t)(nb + 1) * sizeof *t->bestpre);
    t->val_qos = pt__malloc((size_t)(nb + 1) * sizeof *t->val_qos);
    t->test_qos = pt__malloc((size_t)(nb + 1) * sizeof *t->test_qos);
    t->best = pt__malloc((size_t)(nb + 1) * sizeof *t->best);
    if (!t->bestpre || !t->val_qos || !t->test_qos || !t->best)
      s = pt__error(PT_ENOMEM, "tuner: out of memory for %d best configs", nb);
  }
  for (int i = 0; s == PT_OK && i < nb; i++) {
    t->bestpre[i] = t->kept[idx[i]];
    t->val_qos[i] = t->test_qos[i] = NAN;
  }
  if (s == PT_OK) t->n_bestpre = nb;
  free(q), free(sp), free(idx);
  return s;
}

/* Empirical QoS of n configs on the tune (test = 0) or test set, MEASURE_GROUP at a time (times the
 * measurer's width: each of its ranks gets a group), with a progress bar. A config that fails gets a
 * NaN QoS (the final filter drops it) and a warning. */
static void measure_groups(pt_app *app, const pt_measurer *meas, int n, const uint16_t *cfgs, int test, double *qos,
                           FILE *progress, const char *label) {
  pt_progress prog;
  const int group = MEASURE_GROUP * (meas && meas->width > 1 ? meas->width : 1);
  pt__fail one[MEASURE_GROUP], *fail = group > MEASURE_GROUP ? pt__calloc((size_t)group, sizeof *fail) : one;
  const int step = fail ? group : MEASURE_GROUP; /* out of memory: the groups of one process */
  if (!fail) fail = one;
  pt_progress_begin(&prog, progress, label, n);
  for (int i = 0; i < n; i += step) {
    int m = n - i < step ? n - i : step;
    pt__measure_via(meas, app, m, cfgs + (int64_t)i * app->n_ops, test, NULL, &qos[i], NULL, fail);
    for (int k = 0; k < m; k++)
      if (fail[k].status != PT_OK) pt_log(PT_LOG_WARN, "best config %d failed on the %s set: %s", i + k, test ? "test" : "tune", fail[k].why);
    pt_progress_update(&prog, i + m);
  }
  pt_progress_end(&prog);
  if (fail != one) free(fail);
}

/* Validation (when asked, or by default when QoS was predicted) and test of the best configs. */
static pt_status measure_best(pt_tuner *t, const pt_tune_opts *o, const uint16_t *cf) {
  const int nb = t->n_bestpre;
  int validate = o->validate < 0 ? t->qos_model != PT_QOS_EMPIRICAL : o->validate;
  if (validate && nb) {
    pt_log(PT_LOG_INFO, "validating %d configs on the tune set", nb);
    measure_groups(t->app, o->measurer, nb, cf, 0, t->val_qos, o->progress, "validate");
    double err = 0;
    int ok = 0;
    for (int i = 0; i < nb; i++)
      if (!isnan(t->val_qos[i])) err += fabs(t->qos[t->bestpre[i]] - t->val_qos[i]), ok++;
    t->sum.validated = 1;
    t->sum.mean_abs_validation_error = ok ? err / ok : NAN;
    pt_log(PT_LOG_INFO, "QoS changed by %.4f on the tune set (mean abs difference, predicted vs measured)",
           t->sum.mean_abs_validation_error);
  }
  if (o->test_configs && nb) {
    pt_log(PT_LOG_INFO, "measuring %d configs on the test set", nb);
    measure_groups(t->app, o->measurer, nb, cf, 1, t->test_qos, o->progress, "test");
    t->sum.tested = 1;
  }
  return PT_OK;
}

/* PredTuner's final filter: a best config stays when what was measured of it is above the keeps;
 * one whose measurement failed (NaN) is dropped. */
static void final_filter(pt_tuner *t) {
  const pt_thresholds *th = &t->sum.thresholds;
  const pt_tune_summary *sum = &t->sum;
  for (int i = 0; i < t->n_bestpre; i++) {
    if ((sum->validated && isnan(t->val_qos[i])) || (sum->tested && isnan(t->test_qos[i]))) t->sum.dropped++;
    else if ((!sum->validated || t->val_qos[i] >= th->tune_keep) && (!sum->tested || t->test_qos[i] >= th->test_keep))
      t->best[t->n_best++] = i;
  }
}

pt_status pt__tune_select(pt_tuner *t, const pt_tune_opts *o) {
  const int no = t->app->n_ops;
  PT__TRY(select_kept(t));
  PT__TRY(select_best(t, o->take_best_n));
  uint16_t *cf = pt__malloc((size_t)(t->n_bestpre + 1) * (size_t)no * sizeof *cf);
  if (!cf) return pt__error(PT_ENOMEM, "tuner: out of memory for %d best configs", t->n_bestpre);
  for (int i = 0; i < t->n_bestpre; i++)
    memcpy(cf + (int64_t)i * no, t->cfg + t->bestpre[i] * no, (size_t)no * sizeof *cf);
  pt_status s = measure_best(t, o, cf);
  if (s == PT_OK) final_filter(t);
  free(cf);
  return s;
}
