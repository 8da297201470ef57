/* Measured speedups (docs/design.md, "Measured speedups"): after validation and test, every best
 * config and the exact network are timed on the app in one sitting, so the speedups reported are
 * what the network gains, not only what the cost model predicts. A warm-up round, then `passes`
 * rounds, each running the exact network and then every best config once (interleaved, so drift of
 * the machine during the stage touches them alike); a time is the median of its rounds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/log.h"
#include "tuner/tuner_internal.h"

static double median(double *v, int n) {
  for (int i = 1; i < n; i++) /* insertion sort: a handful of values */
    for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
      double x = v[j];
      v[j] = v[j - 1], v[j - 1] = x;
    }
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Runs of the rounds: sec[k * passes + r] for k = 0 (the exact network) .. n (config k - 1). A run
 * that fails marks its row dead (NaN) and is not tried again. */
static void run_rounds(pt_app *app, int n, const uint16_t *cfgs, int passes, double *sec, int64_t *images,
                       uint8_t *bad, FILE *progress) {
  pt_progress prog;
  pt_progress_begin(&prog, progress, "time", (int64_t)(n + 1) * (passes + 1));
  for (int r = 0; r <= passes; r++) /* round 0 warms up */
    for (int k = 0; k <= n; k++) {
      double s = NAN;
      if (!bad[k]) {
        const uint16_t *cfg = k ? cfgs + (int64_t)(k - 1) * app->n_ops : NULL;
        if (app->vt->time(app, cfg, &s, images) != PT_OK) {
          pt_log(PT_LOG_WARN, "measured speedups: timing %s failed: %s", k ? "a best config" : "the exact network",
                 pt_last_error());
          bad[k] = 1, s = NAN;
        }
      }
      if (r) sec[k * passes + r - 1] = bad[k] ? NAN : s;
      pt_progress_update(&prog, (int64_t)r * (n + 1) + k + 1);
    }
  pt_progress_end(&prog);
}

pt_status pt_time_configs(pt_app *app, int n, const uint16_t *cfgs, int passes, FILE *progress, double *seconds,
                          double *exact, int64_t *images) {
  *exact = NAN, *images = 0;
  for (int k = 0; k < n; k++) seconds[k] = NAN;
  if (!app->vt->time) return pt__error(PT_EUNSUPPORTED, "app %s's costs are not times", app->name);
  if (passes < 1) return pt__error(PT_EINVAL, "timing: %d passes", passes);
  double *sec = pt__malloc((size_t)(n + 1) * (size_t)passes * sizeof *sec);
  uint8_t *bad = pt__calloc((size_t)n + 1, 1);
  if (!sec || !bad) {
    free(sec), free(bad);
    return pt__error(PT_ENOMEM, "timing: out of memory for %d timed passes", (n + 1) * passes);
  }
  run_rounds(app, n, cfgs, passes, sec, images, bad, progress);
  *exact = bad[0] ? NAN : median(sec, passes); /* a row with a failed run has no time */
  for (int k = 0; k < n; k++) seconds[k] = bad[k + 1] ? NAN : median(sec + (size_t)(k + 1) * (size_t)passes, passes);
  free(sec), free(bad);
  return PT_OK;
}

/* The best configs side by side, and their times (through the measurer when it times). */
static pt_status time_best(pt_tuner *t, const pt_tune_opts *o, int n, double *seconds, double *exact, int64_t *images) {
  pt_app *app = t->app;
  uint16_t *cfgs = pt__malloc((size_t)n * (size_t)app->n_ops * sizeof *cfgs + 1);
  if (!cfgs) return pt__error(PT_ENOMEM, "tuner: out of memory for %d configs to time", n);
  for (int k = 0; k < n; k++)
    memcpy(cfgs + (size_t)k * (size_t)app->n_ops, t->cfg + t->bestpre[t->best[k]] * app->n_ops,
           (size_t)app->n_ops * sizeof *cfgs);
  const pt_measurer *m = o->measurer;
  pt_status s = m && m->time ? m->time(m->ctx, app, n, cfgs, o->time_passes, o->progress, seconds, exact, images)
                             : pt_time_configs(app, n, cfgs, o->time_passes, o->progress, seconds, exact, images);
  free(cfgs);
  return s;
}

pt_status pt__tune_time(pt_tuner *t, const pt_tune_opts *o) {
  pt_tune_summary *sum = &t->sum;
  const int n = t->n_best, passes = o->time_passes;
  if (!(t->meas_s = pt__malloc((size_t)(t->n_bestpre + 1) * sizeof *t->meas_s)))
    return pt__error(PT_ENOMEM, "tuner: out of memory for the measured times");
  for (int b = 0; b < t->n_bestpre; b++) t->meas_s[b] = NAN;
  if (!passes || !n) return PT_OK;
  if (!t->app->vt->time) {
    pt_log(PT_LOG_INFO, "measured speedups: app %s's costs are not times; the best configs are not timed", t->app->name);
    return PT_OK;
  }
  double *sec = pt__malloc((size_t)n * sizeof *sec);
  if (!sec) return pt__error(PT_ENOMEM, "tuner: out of memory for %d timed configs", n);
  pt_log(PT_LOG_INFO, "timing %d best configs and the exact network (%d passes each after a warm-up)", n, passes);
  int64_t images = 0;
  pt_status s = time_best(t, o, n, sec, &sum->exact_seconds, &images);
  if (s != PT_OK) { /* as a failed run: not timed, and the run goes on */
    pt_log(PT_LOG_WARN, "measured speedups: %s; not timed", pt_last_error());
    for (int k = 0; k < n; k++) sec[k] = NAN;
    sum->exact_seconds = NAN;
  }
  sum->timed_passes = passes;
  sum->timed_images = images;
  /* predicted speedups are over the baseline config: over the exact network they are times its speedup */
  const double base = isfinite(sum->exact_speedup) ? sum->exact_speedup : 1.0;
  double err = 0;
  int ok = 0;
  for (int k = 0; k < n; k++) {
    const int b = t->best[k];
    t->meas_s[b] = sec[k];
    const double meas = sum->exact_seconds / t->meas_s[b], pred = base / t->cost[t->bestpre[b]];
    if (isfinite(meas) && meas > 0) err += fabs(pred - meas) / meas, ok++;
  }
  sum->mean_speedup_error = ok ? err / ok : NAN;
  pt_log(PT_LOG_INFO, "measured: the exact network takes %.4g s per pass of %lld images; predicted speedups (%s) are off "
         "by %.1f %% of the measured ones on average (%d configs)", sum->exact_seconds, (long long)images,
         pt_cost_model_name(t->cost_model), 100.0 * sum->mean_speedup_error, ok);
  free(sec);
  return PT_OK;
}
