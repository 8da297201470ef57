/* configs.json (docs/design.md, "Files") and the plots made from a tuner or from a configs.json. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/io.h"
#include "predtuner/log.h"
#include "tuner/tuner_internal.h"

static void add_num(cJSON *o, const char *k, double v) {
  if (isnan(v)) cJSON_AddNullToObject(o, k);
  else cJSON_AddNumberToObject(o, k, v);
}

static int in_bestpre(const pt_tuner *t, int64_t idx) {
  for (int b = 0; b < t->n_bestpre; b++)
    if (t->bestpre[b] == idx) return 1;
  return 0;
}

/* The run's options, as the report shows them. */
static int add_settings(cJSON *root, const pt_tuner *t) {
  const pt_tune_opts *o = &t->opts;
  cJSON *st = cJSON_AddObjectToObject(root, "settings");
  if (!st) return 0;
  cJSON_AddNumberToObject(st, "max_iter", o->max_iter);
  add_num(st, "qos_tuner_threshold", o->qos_tuner_threshold);
  add_num(st, "qos_keep_threshold", o->qos_keep_threshold);
  cJSON_AddBoolToObject(st, "relative", !o->absolute);
  cJSON_AddNumberToObject(st, "take_best_n", o->take_best_n);
  cJSON_AddNumberToObject(st, "seed", (double)o->seed);
  cJSON_AddNumberToObject(st, "search_batch", o->search_batch);
  cJSON_AddStringToObject(st, "early_stop", pt_early_stop_name(o->early_stop));
  cJSON_AddNumberToObject(st, "time_passes", o->time_passes);
  add_num(st, "time_budget", o->time_budget > 0 ? o->time_budget : NAN);
  return cJSON_AddBoolToObject(st, "test_configs", o->test_configs) != NULL;
}

/* What the search did: counts of evaluated, failed (by status) and early-stopped configs. */
static int add_search(cJSON *root, const pt_tuner *t) {
  const pt_tune_summary *s = &t->sum;
  cJSON *se = cJSON_AddObjectToObject(root, "search");
  if (!se) return 0;
  cJSON_AddNumberToObject(se, "space_size", s->space_size);
  cJSON_AddNumberToObject(se, "evaluated", (double)s->evaluated);
  cJSON_AddNumberToObject(se, "resumed", (double)s->resumed);
  add_num(se, "seconds", s->search_seconds);
  add_num(se, "configs_per_s", s->configs_per_s);
  add_num(se, "total_seconds", s->total_seconds);
  cJSON_AddNumberToObject(se, "failed", (double)s->failed);
  cJSON *fb = cJSON_AddObjectToObject(se, "failed_by");
  if (!fb) return 0;
  for (int k = 1; k < PT_STATUS_COUNT; k++)
    if (s->failed_by[k]) cJSON_AddNumberToObject(fb, pt_status_name((pt_status)-k), (double)s->failed_by[k]);
  cJSON_AddNumberToObject(se, "early_stopped", (double)s->early_stopped);
  cJSON_AddStringToObject(se, "stopped", s->stopped);
  cJSON_AddNumberToObject(se, "kept", t->n_kept);
  cJSON_AddNumberToObject(se, "best_prefilter", t->n_bestpre);
  cJSON_AddNumberToObject(se, "best", t->n_best);
  cJSON_AddBoolToObject(se, "validated", s->validated);
  cJSON_AddBoolToObject(se, "tested", s->tested);
  cJSON_AddNumberToObject(se, "dropped", s->dropped);
  add_num(se, "mean_abs_validation_error", s->mean_abs_validation_error);
  return 1;
}

/* Whether config idx is one of the best configs after validation and test. */
static int in_best(const pt_tuner *t, int64_t idx) {
  for (int b = 0; b < t->n_best; b++)
    if (t->bestpre[t->best[b]] == idx) return 1;
  return 0;
}

pt_status pt_tuner_dump_configs(const pt_tuner *t, const char *path, int all) {
  if (!t->tuned) return pt__error(PT_EINVAL, "%s: no tuning has run; nothing to dump", path);
  const pt_app *app = t->app;
  const pt_tune_summary *s = &t->sum;
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "app", app->name);
  cJSON *b = cJSON_AddObjectToObject(root, "baseline");
  add_num(b, "tune_qos", s->baseline_tune_qos);
  add_num(b, "test_qos", s->baseline_test_qos);
  add_num(b, "config_tune_qos", s->baseline_config_tune_qos);
  add_num(b, "config_speedup_over_exact", s->exact_speedup);
  add_num(b, "exact_seconds", s->exact_seconds);
  cJSON *tm = cJSON_AddObjectToObject(root, "timing");
  cJSON_AddNumberToObject(tm, "passes", s->timed_passes);
  cJSON_AddNumberToObject(tm, "images", (double)s->timed_images);
  add_num(tm, "mean_speedup_error", s->mean_speedup_error);
  cJSON *th = cJSON_AddObjectToObject(root, "thresholds");
  add_num(th, "tuner", s->thresholds.tuner);
  add_num(th, "tune_keep", s->thresholds.tune_keep);
  add_num(th, "test_keep", s->thresholds.test_keep);
  cJSON_AddStringToObject(root, "knobs_file", app->knobs_source);
  cJSON_AddStringToObject(root, "target_device", app->target);
  cJSON_AddStringToObject(root, "qos_model", pt_qos_model_name(t->qos_model));
  cJSON_AddStringToObject(root, "cost_model", pt_cost_model_name(t->cost_model));
  cJSON_AddNumberToObject(root, "evaluated", (double)s->evaluated);
  cJSON_AddBoolToObject(root, "stopped_on_time", s->stopped_on_time);
  /* cJSON allocates with malloc: a part it could not make must fail the file, not drop a field */
  int ok = root && b && tm && th && add_settings(root, t) && add_search(root, t);
  cJSON *bk = cJSON_AddObjectToObject(root, "baseline_knobs");
  for (int op = 0; bk && op < app->n_ops; op++)
    ok &= cJSON_AddStringToObject(bk, app->op_names[op], app->entry_knob[app->entry_off[op]]) != NULL;
  cJSON *arr = cJSON_AddArrayToObject(root, "configs");
  ok &= bk && arr;
  int n = all ? t->n_kept : t->n_best;
  for (int i = 0; ok && i < n; i++) {
    pt_tuned_config c;
    pt_tuner_get(t, all ? PT_KEPT : PT_BEST, i, &c);
    cJSON *o = cJSON_CreateObject();
    add_num(o, "qos", c.qos);
    add_num(o, "cost", c.cost);
    add_num(o, "speedup", c.speedup);
    add_num(o, "measured_speedup", c.measured_speedup);
    add_num(o, "measured_seconds", c.measured_seconds);
    cJSON *k = cJSON_AddObjectToObject(o, "knobs");
    ok &= o && k;
    for (int op = 0; k && op < app->n_ops; op++)
      ok &= cJSON_AddStringToObject(k, app->op_names[op], app->entry_knob[app->entry_off[op] + c.knobs[op]]) != NULL;
    add_num(o, "test_qos", c.test_qos);
    add_num(o, "validated_qos", c.validated_qos);
    cJSON_AddBoolToObject(o, "predicted", c.predicted);
    if (all) cJSON_AddBoolToObject(o, "best", in_bestpre(t, t->kept[i]));
    if (all) cJSON_AddBoolToObject(o, "final", in_best(t, t->kept[i]));
    if (!cJSON_AddItemToArray(arr, o)) cJSON_Delete(o), ok = 0;
  }
  if (!ok) {
    cJSON_Delete(root);
    return pt__error(PT_ENOMEM, "%s: out of memory for the JSON", path);
  }
  return pt__write_json_atomic(path, root, 1);
}

pt_status pt_tuner_plot(const pt_tuner *t, const char *path, int show_qos_loss) {
  if (!t->tuned) return pt__error(PT_EINVAL, "%s: no tuning has run; nothing to plot", path);
  int n = t->n_kept;
  double *q = pt__malloc(((size_t)n + 1) * sizeof *q), *sp = pt__malloc(((size_t)n + 1) * sizeof *sp);
  double *v = pt__malloc(((size_t)n + 1) * sizeof *v), *te = pt__malloc(((size_t)n + 1) * sizeof *te);
  double *me = pt__malloc(((size_t)n + 1) * sizeof *me);
  uint8_t *best = pt__calloc((size_t)n + 1, 1);
  pt_status s = q && sp && v && te && me && best ? PT_OK : pt__error(PT_ENOMEM, "%s: out of memory for the plot", path);
  for (int i = 0; s == PT_OK && i < n; i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_KEPT, i, &c);
    q[i] = c.qos;
    sp[i] = c.speedup;
    v[i] = c.validated_qos;
    te[i] = c.test_qos;
    me[i] = c.measured_speedup;
    best[i] = (uint8_t)in_bestpre(t, t->kept[i]);
  }
  pt__plot_data d = {n, q, sp, v, te, me, best, t->sum.baseline_tune_qos, t->sum.baseline_test_qos,
                     t->sum.thresholds.tune_keep, t->sum.thresholds.test_keep};
  if (s == PT_OK) s = pt__plot_draw(&d, path, show_qos_loss);
  free(q), free(sp), free(v), free(te), free(me), free(best);
  return s;
}

typedef struct plot_file {
  int n;
  double *q, *sp, *v, *te, *me;
  uint8_t *best;
  double base_tune, base_test, tune_keep, test_keep;
} plot_file;

static double num_or_nan(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static pt_status parse_results(const char *text, size_t len, const char *src, void *out) {
  plot_file *pf = out;
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", src);
  pt_status s = PT_OK;
  const cJSON *cfgs = cJSON_GetObjectItemCaseSensitive(root, "configs");
  const cJSON *base = cJSON_GetObjectItemCaseSensitive(root, "baseline");
  const cJSON *th = cJSON_GetObjectItemCaseSensitive(root, "thresholds");
  if (!cJSON_IsArray(cfgs) || !cJSON_IsObject(base) || !cJSON_IsObject(th))
    s = pt__error(PT_EFORMAT, "%s: not a predtuner-gpu configs.json (needs \"configs\", \"baseline\", \"thresholds\")", src);
  if (s == PT_OK) {
    pf->base_tune = num_or_nan(base, "tune_qos");
    pf->base_test = num_or_nan(base, "test_qos");
    pf->tune_keep = num_or_nan(th, "tune_keep");
    pf->test_keep = num_or_nan(th, "test_keep");
    if (isnan(pf->base_tune) || isnan(pf->tune_keep))
      s = pt__error(PT_EFORMAT, "%s: baseline.tune_qos and thresholds.tune_keep must be numbers", src);
  }
  int n = s == PT_OK ? cJSON_GetArraySize(cfgs) : 0, any_best = 0;
  pf->q = pt__malloc(((size_t)n + 1) * sizeof *pf->q);
  pf->sp = pt__malloc(((size_t)n + 1) * sizeof *pf->sp);
  pf->v = pt__malloc(((size_t)n + 1) * sizeof *pf->v);
  pf->te = pt__malloc(((size_t)n + 1) * sizeof *pf->te);
  pf->me = pt__malloc(((size_t)n + 1) * sizeof *pf->me);
  pf->best = pt__calloc((size_t)n + 1, 1);
  if (!pf->q || !pf->sp || !pf->v || !pf->te || !pf->me || !pf->best) s = pt__error(PT_ENOMEM, "%s: out of memory for %d configs", src, n);
  const cJSON *c, *list = s == PT_OK ? cfgs : NULL;
  int i = 0;
  cJSON_ArrayForEach(c, list) {
    pf->q[i] = num_or_nan(c, "qos");
    pf->sp[i] = num_or_nan(c, "speedup");
    if (isnan(pf->sp[i])) pf->sp[i] = 1.0 / num_or_nan(c, "cost");
    if (isnan(pf->q[i]) || !(pf->sp[i] > 0)) {
      s = pt__error(PT_EFORMAT, "%s: config %d needs a numeric \"qos\" and a positive \"speedup\" or \"cost\"", src, i);
      break;
    }
    pf->v[i] = num_or_nan(c, "validated_qos");
    pf->te[i] = num_or_nan(c, "test_qos");
    pf->me[i] = num_or_nan(c, "measured_speedup");
    if (!(pf->me[i] > 0)) pf->me[i] = NAN; /* not timed (null), or not a speedup */
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(c, "best");
    if (cJSON_IsBool(b)) {
      any_best = 1;
      pf->best[i] = (uint8_t)cJSON_IsTrue(b);
    }
    i++;
  }
  if (s == PT_OK && !any_best) memset(pf->best, 1, (size_t)n); /* a best-only dump */
  pf->n = i;
  cJSON_Delete(root);
  return s;
}

pt_status pt_plot_configs_file(const char *configs_json, const char *path, int show_qos_loss) {
  plot_file pf = {0};
  pt_status s = pt__parse_file(configs_json, parse_results, &pf);
  pt__plot_data d = {pf.n, pf.q, pf.sp, pf.v, pf.te, pf.me, pf.best, pf.base_tune, pf.base_test, pf.tune_keep, pf.test_keep};
  if (s == PT_OK) s = pt__plot_draw(&d, path, show_qos_loss);
  free(pf.q), free(pf.sp), free(pf.v), free(pf.te), free(pf.me), free(pf.best);
  return s;
}

pt_status pt_tuner_write_outputs(const pt_tuner *t, const char *dir, int all, int show_qos_loss,
                                 pt_status *figure_status) {
  char path[4200];
  *figure_status = t->figure_status; /* the tune's heatmap */
  snprintf(path, sizeof path, "%s/configs.json", dir);
  PT__TRY(pt_tuner_dump_configs(t, path, all));
  for (int k = 0; k < 3; k++) { /* a figure that fails loses no results */
    if (k < 2) snprintf(path, sizeof path, "%s/configs.%s", dir, k == 0 ? "png" : "svg");
    if (k < 2) remove(path); /* an earlier run's plot must not pass for this one's (the report inlines it) */
    pt_status fs = k < 2 ? pt_tuner_plot(t, path, show_qos_loss) : pt_report_write(dir);
    if (fs != PT_OK) {
      pt_log(PT_LOG_ERROR, "%s", pt_last_error());
      *figure_status = fs;
    }
  }
  return PT_OK;
}
