/* The tuning pipeline (DESIGN.md 6): baseline, thresholds, models, batched search with a journal,
 * kept and best configs, validation, test, final filter. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "models/models.h"
#include "predtuner/backend.h"
#include "predtuner/log.h"
#include "predtuner/search.h"
#include "predtuner/tuner.h"
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
}

pt_status pt_tuner_create(pt_app *app, pt_tuner **out) {
  *out = NULL;
  if (!app) return pt__error(PT_EINVAL, "tuner: no app");
  pt_tuner *t = pt__calloc(1, sizeof *t);
  if (!t) return PT_ENOMEM;
  t->app = app;
  *out = t;
  return PT_OK;
}

static void reset(pt_tuner *t) {
  free(t->cfg);
  free(t->qos);
  free(t->cost);
  free(t->pred);
  free(t->kept);
  free(t->bestpre);
  free(t->val_qos);
  free(t->test_qos);
  free(t->best);
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

static pt_status append(pt_tuner *t, int n, const uint16_t *cfgs, const double *qos, const double *cost, int pred) {
  int no = t->app->n_ops;
  if (t->n + n > t->cap) {
    int64_t cap = t->cap ? t->cap : 1024;
    while (cap < t->n + n) cap *= 2;
    void *a = pt__realloc(t->cfg, (size_t)cap * (size_t)no * sizeof *t->cfg);
    if (a) t->cfg = a;
    void *b = pt__realloc(t->qos, (size_t)cap * sizeof *t->qos);
    if (b) t->qos = b;
    void *c = pt__realloc(t->cost, (size_t)cap * sizeof *t->cost);
    if (c) t->cost = c;
    void *d = pt__realloc(t->pred, (size_t)cap);
    if (d) t->pred = d;
    if (!a || !b || !c || !d) return PT_ENOMEM;
    t->cap = cap;
  }
  memcpy(t->cfg + t->n * no, cfgs, (size_t)n * (size_t)no * sizeof *cfgs);
  for (int k = 0; k < n; k++) {
    t->qos[t->n + k] = qos[k];
    t->cost[t->n + k] = cost[k];
    t->pred[t->n + k] = (uint8_t)pred;
  }
  t->n += n;
  return PT_OK;
}

/* Configs measured together in validation and testing: they share common prefixes, and the
 * progress bar still moves. */
#define MEASURE_GROUP 16

/* Empirical QoS of n configs on the tune (test = 0) or test set, MEASURE_GROUP at a time, with a
 * progress bar. */
static pt_status measure_qos_groups(pt_app *app, int n, const uint16_t *cfgs, int test, double *qos, FILE *progress,
                                   const char *label) {
  pt_progress prog;
  pt_status s = PT_OK;
  pt_progress_begin(&prog, progress, label, n);
  for (int i = 0; s == PT_OK && i < n; i += MEASURE_GROUP) {
    int m = n - i < MEASURE_GROUP ? n - i : MEASURE_GROUP;
    s = app->vt->measure(app, m, cfgs + (int64_t)i * app->n_ops, test, &qos[i], NULL);
    pt_progress_update(&prog, i + m);
  }
  pt_progress_end(&prog);
  return s;
}

/* The models and how a batch of configs is evaluated. */
typedef struct evaluator {
  pt_app *app;
  int use_p1, use_p2;
  pt__p1 p1;
  pt__p2 p2;
  double *cost_tbl;     /* cost model table, NULL for empirical cost */
  double base_cost;     /* the baseline config's cost in the same units */
} evaluator;

static pt_status evaluate(evaluator *ev, int n, const uint16_t *cfgs, double *qos, double *cost) {
  pt_app *app = ev->app;
  int empirical = !(ev->use_p1 || ev->use_p2) || !ev->cost_tbl;
  /* QoS alone when a model gives the cost: the DNN app then shares common prefixes untimed */
  if (empirical) PT__TRY(app->vt->measure(app, n, cfgs, 0, qos, ev->cost_tbl ? NULL : cost));
  if (ev->use_p1) pt__p1_predict(app, &ev->p1, n, cfgs, qos);
  if (ev->use_p2) pt__p2_predict(app, &ev->p2, n, cfgs, qos);
  for (int k = 0; k < n; k++) {
    if (ev->cost_tbl) {
      const uint16_t *c = cfgs + (int64_t)k * app->n_ops;
      double sum = 0;
      for (int op = 0; op < app->n_ops; op++) sum += ev->cost_tbl[app->entry_off[op] + c[op]];
      cost[k] = sum;
    }
    cost[k] /= ev->base_cost;
  }
  return PT_OK;
}

static pt_status init_models(pt_tuner *t, const pt_tune_opts *o, const char *storage, evaluator *ev, double *search_cost,
                             double *search_loss) {
  pt_app *app = t->app;
  ev->app = app;
  if (o->qos_model && !strcmp(o->qos_model, "qos_p1")) ev->use_p1 = 1;
  else if (o->qos_model && !strcmp(o->qos_model, "qos_p2")) ev->use_p2 = 1;
  else if (o->qos_model && o->qos_model[0])
    return pt__error(PT_EINVAL, "unknown QoS model '%s' (qos_p1, qos_p2, or none for empirical)", o->qos_model);
  if (o->cost_model && o->cost_model[0] && strcmp(o->cost_model, "cost_linear") && strcmp(o->cost_model, "cost_profiled"))
    return pt__error(PT_EINVAL, "unknown cost model '%s' (cost_linear, cost_profiled, or none for empirical)",
                     o->cost_model);
  if (o->qos_model && o->qos_model[0]) pt_log(PT_LOG_INFO, "initialising QoS model %s (storage %s)", o->qos_model, storage ? storage : "none");
  if (ev->use_p1) PT__TRY(pt__p1_init(app, storage, o->progress, &ev->p1));
  if (ev->use_p1 && app->be) { /* score batches on the GPU when the backend can */
    if (pt__p1_attach(&ev->p1, app->be) == PT_OK) pt_log(PT_LOG_INFO, "qos_p1 predicts on %s", pt_backend_name(app->be));
    else pt_log(PT_LOG_DEBUG, "qos_p1 predicts on the CPU: %s", pt_last_error());
  }
  if (ev->use_p2) PT__TRY(pt__p2_init(app, storage, o->progress, &ev->p2));
  PT__TRY(pt__cost_linear(app, search_cost));
  if (o->cost_model && o->cost_model[0]) {
    if (!(ev->cost_tbl = pt__malloc((size_t)app->n_entries * sizeof *ev->cost_tbl))) return PT_ENOMEM;
    if (!strcmp(o->cost_model, "cost_linear")) memcpy(ev->cost_tbl, search_cost, (size_t)app->n_entries * sizeof *search_cost);
    else PT__TRY(pt__cost_profiled(app, storage, o->progress, ev->cost_tbl));
    memcpy(search_cost, ev->cost_tbl, (size_t)app->n_entries * sizeof *search_cost);
  }
  /* per-entry QoS losses for the model-guided search: straight from the model */
  for (int e = 0; e < app->n_entries; e++) search_loss[e] = NAN;
  if (ev->use_p2)
    for (int e = 0; e < app->n_entries; e++) search_loss[e] = ev->p2.q0 - ev->p2.q[e];
  if (ev->use_p1) {
    uint16_t *c = pt__calloc((size_t)app->n_entries * (size_t)app->n_ops, sizeof *c);
    double *q = pt__malloc((size_t)app->n_entries * sizeof *q), q0;
    if (!c || !q) {
      free(c);
      free(q);
      return PT_ENOMEM;
    }
    for (int op = 0; op < app->n_ops; op++)
      for (int p = 0; p < app->n_knobs[op]; p++) c[(int64_t)(app->entry_off[op] + p) * app->n_ops + op] = (uint16_t)p;
    pt__p1_predict(app, &ev->p1, app->n_entries, c, q);
    memset(c, 0, (size_t)app->n_ops * sizeof *c);
    pt__p1_predict(app, &ev->p1, 1, c, &q0);
    for (int e = 0; e < app->n_entries; e++) search_loss[e] = q0 - q[e];
    free(c);
    free(q);
  }
  return PT_OK;
}

static void free_models(evaluator *ev) {
  pt__p1_free(&ev->p1);
  pt__p2_free(&ev->p2);
  free(ev->cost_tbl);
}

/* Kept, best (Pareto + nearest), validation, test, final filter. */
static pt_status select_configs(pt_tuner *t, const pt_tune_opts *o, int qos_model_used) {
  pt_app *app = t->app;
  const pt_thresholds *th = &t->sum.thresholds;
  t->kept = pt__malloc((size_t)(t->n ? t->n : 1) * sizeof *t->kept);
  if (!t->kept) return PT_ENOMEM;
  for (int64_t i = 0; i < t->n; i++)
    if (t->qos[i] > th->tune_keep) t->kept[t->n_kept++] = i;
  double *q = pt__malloc((size_t)(t->n_kept + 1) * sizeof *q), *sp = pt__malloc((size_t)(t->n_kept + 1) * sizeof *sp);
  int *idx = pt__malloc((size_t)(t->n_kept + 1) * sizeof *idx);
  if (!q || !sp || !idx) {
    free(q);
    free(sp);
    free(idx);
    return PT_ENOMEM;
  }
  for (int i = 0; i < t->n_kept; i++) {
    q[i] = t->qos[t->kept[i]];
    sp[i] = 1.0 / t->cost[t->kept[i]];
  }
  int nb = pt_pareto_take_best(q, sp, t->n_kept, o->take_best_n, idx);
  t->bestpre = pt__malloc((size_t)(nb + 1) * sizeof *t->bestpre);
  t->val_qos = pt__malloc((size_t)(nb + 1) * sizeof *t->val_qos);
  t->test_qos = pt__malloc((size_t)(nb + 1) * sizeof *t->test_qos);
  t->best = pt__malloc((size_t)(nb + 1) * sizeof *t->best);
  uint16_t *cf = pt__malloc((size_t)(nb + 1) * (size_t)app->n_ops * sizeof *cf);
  pt_status s = t->bestpre && t->val_qos && t->test_qos && t->best && cf ? PT_OK : PT_ENOMEM;
  for (int i = 0; s == PT_OK && i < nb; i++) {
    t->bestpre[i] = t->kept[idx[i]];
    t->val_qos[i] = t->test_qos[i] = NAN;
    memcpy(cf + (int64_t)i * app->n_ops, t->cfg + t->bestpre[i] * app->n_ops, (size_t)app->n_ops * sizeof *cf);
  }
  if (s == PT_OK) t->n_bestpre = nb;
  free(q);
  free(sp);
  free(idx);
  int validate = o->validate < 0 ? qos_model_used : o->validate;
  if (s == PT_OK && validate && nb) {
    pt_log(PT_LOG_INFO, "validating %d configs on the tune set", nb);
    s = measure_qos_groups(app, nb, cf, 0, t->val_qos, o->progress, "validate");
    double err = 0;
    for (int i = 0; i < nb; i++) err += fabs(t->qos[t->bestpre[i]] - t->val_qos[i]);
    t->sum.validated = 1;
    t->sum.mean_abs_validation_error = err / nb;
    pt_log(PT_LOG_INFO, "QoS changed by %.4f on the tune set (mean abs difference, predicted vs measured)", err / nb);
  }
  if (s == PT_OK && o->test_configs && nb) {
    pt_log(PT_LOG_INFO, "measuring %d configs on the test set", nb);
    s = measure_qos_groups(app, nb, cf, 1, t->test_qos, o->progress, "test");
    t->sum.tested = 1;
  }
  for (int i = 0; s == PT_OK && i < nb; i++) /* PredTuner's final filter */
    if ((isnan(t->val_qos[i]) || t->val_qos[i] >= th->tune_keep) && (isnan(t->test_qos[i]) || t->test_qos[i] >= th->test_keep))
      t->best[t->n_best++] = i;
  free(cf);
  return s;
}

pt_status pt_tuner_tune(pt_tuner *t, const pt_tune_opts *opts) {
  pt_tune_opts o;
  if (opts) o = *opts;
  else pt_tune_opts_init(&o);
  reset(t);
  pt_app *app = t->app;
  if (o.max_iter < 1) return pt__error(PT_EINVAL, "max_iter must be at least 1 (got %d)", o.max_iter);
  if (o.take_best_n < 0) return pt__error(PT_EINVAL, "take_best_n must be >= 0 (got %d)", o.take_best_n);
  if (!(o.qos_tuner_threshold == o.qos_tuner_threshold)) return pt__error(PT_EINVAL, "the QoS tuner threshold is NaN");
  if (o.search_batch < 1) o.search_batch = 256;
  double t_start = pt_now();
  pt_tune_summary *sum = &t->sum;
  sum->space_size = pt_app_space_size(app);
  sum->mean_abs_validation_error = NAN;
  sum->baseline_test_qos = NAN;
  sum->exact_speedup = NAN;

  /* 1. the exact network's QoS, thresholds */
  double exact_cost = NAN, test_cost;
  PT__TRY(app->vt->measure(app, 1, NULL, 0, &sum->baseline_tune_qos, &exact_cost));
  if (o.test_configs) PT__TRY(app->vt->measure(app, 1, NULL, 1, &sum->baseline_test_qos, &test_cost));
  sum->thresholds = pt_thresholds_compute(sum->baseline_tune_qos, sum->baseline_test_qos, o.qos_tuner_threshold,
                                          o.qos_keep_threshold, !o.absolute);
  pt_log(PT_LOG_INFO, "baseline (exact) QoS: tune %.4f, test %.4f; thresholds: tuner %.4f, tune keep %.4f, test keep %.4f",
         sum->baseline_tune_qos, sum->baseline_test_qos, sum->thresholds.tuner, sum->thresholds.tune_keep,
         sum->thresholds.test_keep);

  /* 2. models */
  char storage[4096] = "";
  if (o.model_storage) snprintf(storage, sizeof storage, "%s", o.model_storage);
  else if (o.output_dir) snprintf(storage, sizeof storage, "%s/models", o.output_dir);
  evaluator ev = {0};
  double *scost = pt__malloc((size_t)app->n_entries * sizeof *scost), *sloss = pt__malloc((size_t)app->n_entries * sizeof *sloss);
  uint16_t *batch = pt__malloc((size_t)o.search_batch * (size_t)app->n_ops * sizeof *batch);
  double *bq = pt__malloc((size_t)o.search_batch * sizeof *bq), *bc = pt__malloc((size_t)o.search_batch * sizeof *bc);
  const char **tech = pt__malloc((size_t)o.search_batch * sizeof *tech);
  pt_search *se = NULL;
  pt__journal *jr = NULL;
  pt_status s = scost && sloss && batch && bq && bc && tech ? PT_OK : PT_ENOMEM;
  if (s == PT_OK) s = init_models(t, &o, storage[0] ? storage : NULL, &ev, scost, sloss);
  int qos_model_used = ev.use_p1 || ev.use_p2;
  snprintf(t->qos_model, sizeof t->qos_model, "%s", qos_model_used ? o.qos_model : "");
  snprintf(t->cost_model, sizeof t->cost_model, "%s", o.cost_model ? o.cost_model : "");

  /* the cost reference: the baseline config */
  if (s == PT_OK) {
    uint16_t *zeros = pt__calloc((size_t)app->n_ops, sizeof *zeros);
    if (!zeros) s = PT_ENOMEM;
    if (s == PT_OK && ev.cost_tbl) {
      ev.base_cost = 0;
      double exact = 0;
      for (int op = 0; op < app->n_ops; op++) {
        ev.base_cost += ev.cost_tbl[app->entry_off[op]];
        exact += app->op_cost[op];
      }
      if (!strcmp(o.cost_model, "cost_linear")) sum->exact_speedup = exact / ev.base_cost;
    } else if (s == PT_OK) {
      double q;
      s = app->vt->measure(app, 1, zeros, 0, &q, &ev.base_cost);
      sum->exact_speedup = exact_cost / ev.base_cost;
    }
    free(zeros);
    if (s == PT_OK && !(ev.base_cost > 0))
      s = pt__error(PT_ERANGE, "the baseline config's cost is %g; costs must be positive", ev.base_cost);
    sum->baseline_cost = ev.base_cost;
  }

  /* 3. search, journaled */
  int *nk = pt__malloc((size_t)app->n_ops * sizeof *nk);
  if (s == PT_OK && !nk) s = PT_ENOMEM;
  for (int op = 0; s == PT_OK && op < app->n_ops; op++) nk[op] = app->n_knobs[op];
  if (s == PT_OK) s = pt_search_create(app->n_ops, nk, o.seed, &se);
  free(nk);
  if (s == PT_OK) {
    pt_search_set_threshold(se, sum->thresholds.tuner);
    s = pt_search_set_tables(se, sloss, scost);
  }
  if (s == PT_OK && o.output_dir) {
    char path[4096];
    s = pt__model_path(o.output_dir, "tuning.sqlite", 1, path, sizeof path);
    if (s == PT_OK) s = pt__journal_open(path, o.resume, app, t->qos_model[0] ? t->qos_model : NULL,
                                         t->cost_model[0] ? t->cost_model : NULL, &jr);
    if (s == PT_OK && o.resume) {
      int64_t n;
      uint16_t *c;
      double *q, *co;
      uint8_t *pr;
      s = pt__journal_read(jr, app, &n, &c, &q, &co, &pr);
      for (int64_t i = 0; s == PT_OK && i < n; i++) {
        s = pt_search_tell(se, 1, c + i * app->n_ops, q + i, co + i);
        if (s == PT_OK) s = append(t, 1, c + i * app->n_ops, q + i, co + i, pr[i]);
      }
      if (s == PT_OK) sum->resumed = n;
      if (s == PT_OK) pt_log(PT_LOG_INFO, "resumed %lld configs from the journal", (long long)n);
      free(c);
      free(q);
      free(co);
      free(pr);
    }
  }
  double t_search = pt_now();
  pt_progress prog;
  pt_progress_begin(&prog, o.progress, "search", o.max_iter);
  pt_progress_update(&prog, t->n < o.max_iter ? t->n : o.max_iter);
  while (s == PT_OK && t->n < o.max_iter) {
    int want = o.max_iter - (int)t->n < o.search_batch ? o.max_iter - (int)t->n : o.search_batch;
    int got = pt_search_ask(se, want, batch);
    if (got == 0) {
      pt_log(PT_LOG_INFO, "search space exhausted after %lld configs", (long long)t->n);
      break;
    }
    double t0 = pt_now();
    s = evaluate(&ev, got, batch, bq, bc);
    double each = (pt_now() - t0) / got;
    if (s == PT_OK) s = pt_search_tell(se, got, batch, bq, bc);
    for (int k = 0; k < got; k++) tech[k] = pt_search_config_technique(se, batch + (int64_t)k * app->n_ops);
    if (s == PT_OK && jr) s = pt__journal_add(jr, app, got, batch, bq, bc, qos_model_used, each, tech);
    if (s == PT_OK) s = append(t, got, batch, bq, bc, qos_model_used);
    pt_progress_update(&prog, t->n);
  }
  pt_progress_end(&prog);
  sum->search_seconds = pt_now() - t_search;
  sum->evaluated = t->n;
  int64_t fresh = t->n - sum->resumed;
  sum->configs_per_s = sum->search_seconds > 0 ? (double)fresh / sum->search_seconds : 0;
  for (int64_t i = 0; i < t->n; i++) {
    int zero = 1;
    for (int op = 0; op < app->n_ops && zero; op++) zero = t->cfg[i * app->n_ops + op] == 0;
    if (zero) sum->baseline_config_tune_qos = t->qos[i];
  }
  if (s == PT_OK) {
    pt_log(PT_LOG_INFO, "search: %lld configs (%lld new) in %.2f s, %.0f configs/s", (long long)t->n, (long long)fresh,
           sum->search_seconds, sum->configs_per_s);
    for (int k = 0; k < pt_search_num_techniques(); k++) {
      int64_t pr, im;
      pt_search_technique_stats(se, k, &pr, &im);
      if (pr) pt_log(PT_LOG_INFO, "  technique %-15s proposed %lld, improved the best %lld times", pt_search_technique_name(k),
                     (long long)pr, (long long)im);
    }
  }
  pt_search_free(se);
  if (jr && s == PT_OK) {
    char v[64];
    snprintf(v, sizeof v, "%.17g", sum->baseline_tune_qos);
    s = pt__journal_meta(jr, "baseline_tune_qos", v);
  }
  pt__journal_close(jr);
  free_models(&ev);
  free(scost);
  free(sloss);
  free(batch);
  free(bq);
  free(bc);
  free(tech);

  /* 4-8 */
  if (s == PT_OK) s = select_configs(t, &o, qos_model_used);
  sum->total_seconds = pt_now() - t_start;
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
  double val = NAN, test = NAN;
  if (kind == PT_KEPT) {
    idx = t->kept[i];
    for (int b = 0; b < t->n_bestpre; b++) /* a kept config that was also measured */
      if (t->bestpre[b] == idx) val = t->val_qos[b], test = t->test_qos[b];
  } else {
    int b = kind == PT_BEST ? t->best[i] : i;
    idx = t->bestpre[b];
    val = t->val_qos[b];
    test = t->test_qos[b];
  }
  out->qos = t->qos[idx];
  out->cost = t->cost[idx];
  out->speedup = 1.0 / t->cost[idx];
  out->validated_qos = val;
  out->test_qos = test;
  out->predicted = t->pred[idx];
  out->knobs = t->cfg + idx * t->app->n_ops;
  return PT_OK;
}
