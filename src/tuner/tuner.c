/* The tuner's API and the tuning pipeline (docs/design.md, "The tuning pipeline") as a sequence of
 * stages: baseline and thresholds, models, cost reference, search (tune_search.c), selection
 * (tune_select.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/io.h"
#include "predtuner/log.h"
#include "tuner/evaluator.h"
#include "tuner/journal.h"
#include "tuner/tuner_internal.h"

void pt_tune_opts_init(pt_tune_opts *o) {
  memset(o, 0, sizeof *o);
  o->max_iter = 1000;
  o->qos_tuner_threshold = 2.0;
  o->qos_keep_threshold = NAN;
  o->take_best_n = 20;
  o->test_configs = 1;
  o->validate = -1;
  o->search_batch = 256;
  o->max_failures = -1;
  o->time_passes = 5;
  o->early_stop = PT_EARLY_STOP_EXACT;
}

pt_status pt_tuner_create(pt_app *app, pt_tuner **out) {
  *out = NULL;
  if (!app) return pt__error(PT_EINVAL, "tuner: no app");
  pt_tuner *t = pt__calloc(1, sizeof *t);
  if (!t) return pt__error(PT_ENOMEM, "tuner: out of memory");
  t->app = app;
  *out = t;
  return PT_OK;
}

static void reset(pt_tuner *t) {
  free(t->cfg), free(t->qos), free(t->cost), free(t->pred), free(t->kept), free(t->bestpre);
  free(t->val_qos), free(t->test_qos), free(t->best), free(t->meas_s), free(t->early);
  pt_app *app = t->app;
  memset(t, 0, sizeof *t);
  t->app = app;
}

void pt_tuner_free(pt_tuner *t) {
  if (!t) return;
  reset(t);
  free(t);
}

const pt_tune_summary *pt_tuner_summary(const pt_tuner *t) { return &t->sum; }

static pt_status check_opts(pt_tune_opts *o) {
  if (o->max_iter < 1) return pt__error(PT_EINVAL, "max_iter must be at least 1 (got %d)", o->max_iter);
  if (o->take_best_n < 0) return pt__error(PT_EINVAL, "take_best_n must be >= 0 (got %d)", o->take_best_n);
  if (!isfinite(o->qos_tuner_threshold))
    return pt__error(PT_EINVAL, "the QoS tuner threshold must be a number (got %g)", o->qos_tuner_threshold);
  if (isinf(o->qos_keep_threshold))
    return pt__error(PT_EINVAL, "the QoS keep threshold must be a number or NaN (got %g)", o->qos_keep_threshold);
  if (o->max_failures < -1) return pt__error(PT_EINVAL, "max_failures must be >= 0, or -1 (got %d)", o->max_failures);
  if (!pt_early_stop_name(o->early_stop)) return pt__error(PT_EINVAL, "unknown early-stop mode %d (off, exact, confident)", (int)o->early_stop);
  if (o->time_passes < 0) return pt__error(PT_EINVAL, "time_passes must be >= 0 (got %d)", o->time_passes);
  if (!(o->time_budget >= 0) || isinf(o->time_budget))
    return pt__error(PT_EINVAL, "the time budget must be a number of seconds >= 0 (got %g)", o->time_budget);
  if (o->resume && o->overwrite) return pt__error(PT_EINVAL, "resume and overwrite exclude each other");
  if (o->search_batch < 1) o->search_batch = 256;
  return PT_OK;
}

/* A target QoS above the baseline's, or below 0 for an accuracy, is a mistake: no config could pass,
 * or every one would. */
static pt_status check_target(const pt_app *app, const char *what, double target, double baseline, int absolute) {
  const char *how = absolute ? "absolute QoS" : "a loss relative to the baseline";
  if (target > baseline + 1e-9)
    return pt__error(PT_ERANGE, "the %s threshold (%s) puts the target QoS at %.4g, above the baseline's %.4g", what,
                     how, target, baseline);
  if (app->qos_percent && target < 0)
    return pt__error(PT_ERANGE, "the %s threshold (%s) puts the target accuracy at %.4g, below 0 %%", what, how, target);
  return PT_OK;
}

/* Stage 1: the exact network's QoS on the tune and test sets, and the thresholds. */
static pt_status stage_baseline(pt_tuner *t, const pt_tune_opts *o, double *exact_cost) {
  pt_tune_summary *sum = &t->sum;
  double test_cost;
  PT__TRY(pt_app_measure(t->app, 1, NULL, 0, &sum->baseline_tune_qos, exact_cost));
  if (o->test_configs) PT__TRY(pt_app_measure(t->app, 1, NULL, 1, &sum->baseline_test_qos, &test_cost));
  if (!isfinite(sum->baseline_tune_qos) || (o->test_configs && !isfinite(sum->baseline_test_qos)))
    return pt__error(PT_ENONFINITE, "app %s: the exact program's QoS is not a number (tune %g, test %g)", t->app->name,
                     sum->baseline_tune_qos, sum->baseline_test_qos);
  sum->thresholds = pt_thresholds_compute(sum->baseline_tune_qos, sum->baseline_test_qos, o->qos_tuner_threshold,
                                          o->qos_keep_threshold, !o->absolute);
  PT__TRY(check_target(t->app, "tuner", sum->thresholds.tuner, sum->baseline_tune_qos, o->absolute));
  PT__TRY(check_target(t->app, "keep", sum->thresholds.tune_keep, sum->baseline_tune_qos, o->absolute));
  pt_log(PT_LOG_INFO, "baseline (exact) QoS: tune %.4f, test %.4f; thresholds: tuner %.4f, tune keep %.4f, test keep %.4f",
         sum->baseline_tune_qos, sum->baseline_test_qos, sum->thresholds.tuner, sum->thresholds.tune_keep,
         sum->thresholds.test_keep);
  return PT_OK;
}

/* Stages 2-3: the models (built or loaded from the storage folder), then the cost reference. */
static pt_status stage_models(pt_tuner *t, const pt_tune_opts *o, double exact_cost, pt__evaluator *ev) {
  char storage[4096];
  PT__TRY(pt__eval_init(ev, t->app, o, pt__eval_storage(o, storage, sizeof storage), t->sum.baseline_tune_qos));
  t->qos_model = ev->qos;
  t->cost_model = ev->cost;
  /* a config is worth measuring in full while it can still be kept, or pass the search's threshold
   * (a stricter keep threshold must not let a bound look like a pass to the search) */
  const pt_thresholds *th = &t->sum.thresholds;
  if (ev->qos == PT_QOS_EMPIRICAL) ev->stop = (pt_stop_rule){o->early_stop, fmin(th->tune_keep, th->tuner), 1e-4};
  pt_status s = pt__eval_cost_reference(ev, exact_cost, &t->sum.exact_speedup);
  t->sum.baseline_cost = ev->base_cost;
  pt_status plot_s = PT_OK; /* a heatmap that fails is logged and reported with the outputs; the tune goes on */
  if (s == PT_OK && o->output_dir && pt__eval_predicts_qos(ev)) s = pt__sensitivity_write(ev, o->output_dir, &plot_s);
  else if (s == PT_OK && o->output_dir) s = pt__sensitivity_remove(o->output_dir); /* an earlier run's, not ours */
  t->figure_status = plot_s;
  return s;
}

pt_status pt_tuner_tune(pt_tuner *t, const pt_tune_opts *opts) {
  pt_tune_opts o;
  if (opts) o = *opts;
  else pt_tune_opts_init(&o);
  reset(t);
  PT__TRY(check_opts(&o));
  t->opts = o;
  t->figure_status = PT_OK;
  double t_start = pt_now(), exact_cost = NAN;
  pt_tune_summary *sum = &t->sum;
  sum->space_size = pt_app_space_size(t->app);
  sum->mean_abs_validation_error = NAN;
  sum->baseline_test_qos = NAN;
  sum->exact_speedup = NAN;
  sum->exact_seconds = sum->mean_speedup_error = NAN;
  pt__evaluator ev = {0};
  pt_status s = o.output_dir ? pt_make_dirs(o.output_dir) : PT_OK;
  if (s == PT_OK && o.output_dir) s = pt_output_lock(o.output_dir);
  if (s != PT_OK) return s;
  char jpath[4200];
  if (o.output_dir) {
    snprintf(jpath, sizeof jpath, "%s/tuning.sqlite", o.output_dir);
    s = pt__journal_check_start(jpath, o.resume, o.overwrite);
    pt__journal *jr = NULL; /* a journal to resume is checked now, before any model is built or replaced */
    if (s == PT_OK && o.resume)
      s = pt__journal_open(jpath, 1, 0, t->app, pt_qos_model_name(o.qos_model), pt_cost_model_name(o.cost_model), &jr);
    pt__journal_close(jr);
    if (s != PT_OK) {
      pt_output_unlock(o.output_dir);
      return s;
    }
  }
  s = stage_baseline(t, &o, &exact_cost);
  if (s == PT_OK) s = stage_models(t, &o, exact_cost, &ev);
  if (s == PT_OK) s = pt__tune_search(t, &o, &ev);
  pt__eval_free(&ev);
  if (s == PT_OK) s = pt__tune_select(t, &o);
  if (s == PT_OK) s = pt__tune_time(t, &o);
  sum->total_seconds = pt_now() - t_start;
  if (o.output_dir) pt_output_unlock(o.output_dir);
  if (s == PT_OK) {
    t->tuned = 1;
    pt_log(PT_LOG_INFO, "%d kept, %d best before filtering, %d after validation and test", t->n_kept, t->n_bestpre,
           t->n_best);
  }
  return s;
}

int pt_tuner_count(const pt_tuner *t, pt_config_kind kind) {
  switch (kind) {
  case PT_KEPT: return t->n_kept;
  case PT_BEST_PREFILTER: return t->n_bestpre;
  case PT_BEST: return t->n_best;
  }
  return 0;
}

pt_status pt_tuner_get(const pt_tuner *t, pt_config_kind kind, int i, pt_tuned_config *out) {
  if (i < 0 || i >= pt_tuner_count(t, kind)) return pt__error(PT_ERANGE, "tuner: config %d of %d", i, pt_tuner_count(t, kind));
  int64_t idx;
  double val = NAN, test = NAN, sec = NAN;
  if (kind == PT_KEPT) {
    idx = t->kept[i];
    for (int b = 0; b < t->n_bestpre; b++) /* a kept config that was also measured */
      if (t->bestpre[b] == idx) val = t->val_qos[b], test = t->test_qos[b], sec = t->meas_s ? t->meas_s[b] : NAN;
  } else {
    int b = kind == PT_BEST ? t->best[i] : i;
    idx = t->bestpre[b];
    val = t->val_qos[b];
    test = t->test_qos[b];
    sec = t->meas_s ? t->meas_s[b] : NAN;
  }
  out->measured_seconds = sec;
  out->measured_speedup = t->sum.exact_seconds / sec; /* NaN when either is */
  out->qos = t->qos[idx];
  out->cost = t->cost[idx];
  out->speedup = 1.0 / t->cost[idx];
  out->validated_qos = val;
  out->test_qos = test;
  out->predicted = t->pred[idx];
  out->knobs = t->cfg + idx * t->app->n_ops;
  return PT_OK;
}
