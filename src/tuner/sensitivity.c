/* The per-layer sensitivity report: for each (op, knob) of the space, the QoS the tune set loses
 * when that knob alone replaces the baseline one (as the QoS model has it: qos_p1 from that
 * entry's own measured output delta, qos_p2 from its measured QoS) and the speedup over the
 * baseline config the cost model gives (cost_profiled: measured per op; otherwise the knobs'
 * expected speedups), ranked by speedup gained per point of QoS lost. Written by every tune that
 * initialises a QoS model, from data the models already hold: sensitivity.json and
 * sensitivity.txt in the output folder (docs/design.md, "Outputs"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "app/app_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/io.h"
#include "tuner/tuner_internal.h"
#include "io/fileutil.h"
#include "models/models.h"
#include "predtuner/log.h"
#include "tuner/heatmap.h"

typedef struct sens_row {
  int op, entry;
  double loss;                 /* QoS lost against the baseline config */
  double pred, meas, speedup;  /* speedup over the baseline config: cost_linear's, measured (NaN: not
                                * profiled), and the one ranked by (measured where there is one) */
  double score;                /* speedup gained per point of QoS lost (NaN: no loss) */
  int klass;                   /* 0: faster at no loss, 1: faster at a loss, 2: no faster, 3: loss unknown */
} sens_row;

/* The sort key within a row's class, larger first; a non-finite key sorts last. */
static double sort_key(const sens_row *r) {
  const double k = r->klass == 0 || r->klass == 3 ? r->speedup : r->klass == 1 ? r->score : -r->loss;
  return isfinite(k) ? k : -INFINITY;
}

static int cmp_rows(const void *pa, const void *pb) {
  const sens_row *a = pa, *b = pb;
  if (a->klass != b->klass) return a->klass - b->klass;
  const double ka = sort_key(a), kb = sort_key(b);
  if (ka != kb) return ka > kb ? -1 : 1;
  return a->entry - b->entry; /* a fixed order among equals */
}

/* The speedup over the baseline config of the config that changes only entry e, by a per-entry
 * cost table (NULL: NaN). */
static double entry_speedup(const pt_app *app, const double *tbl, double base, int op, int e) {
  return tbl ? base / (base - tbl[app->entry_off[op]] + tbl[e]) : NAN;
}

static double base_cost(const pt_app *app, const double *tbl) {
  double base = 0;
  for (int op = 0; tbl && op < app->n_ops; op++) base += tbl[app->entry_off[op]];
  return base;
}

/* The rows of every non-baseline entry, ranked; NULL on allocation failure. lin: cost_linear's
 * table; prof: cost_profiled's (NULL when not measured). */
static sens_row *rank_rows(const pt__evaluator *ev, const double *lin, const double *prof, int *n) {
  const pt_app *app = ev->app;
  const double blin = base_cost(app, lin), bprof = base_cost(app, prof);
  sens_row *r = pt__malloc((size_t)(app->n_entries > 0 ? app->n_entries : 1) * sizeof *r);
  if (!r) return NULL;
  *n = 0;
  for (int op = 0; op < app->n_ops; op++)
    for (int e = app->entry_off[op] + 1; e < app->entry_off[op + 1]; e++) {
      sens_row *x = &r[(*n)++];
      /* against the baseline config, as the speedup is: the model's losses are the exact network's,
       * which include the baseline knobs' own (an fp16 baseline loses some) */
      x->op = op, x->entry = e, x->loss = ev->search_loss[e] - ev->search_loss[app->entry_off[op]];
      x->pred = entry_speedup(app, lin, blin, op, e);
      x->meas = entry_speedup(app, prof, bprof, op, e);
      x->speedup = prof ? x->meas : x->pred;
      x->score = x->loss > 1e-12 ? (x->speedup - 1) / x->loss : NAN;
      x->klass = !isfinite(x->loss) ? 3 : !(x->speedup > 1) ? 2 : x->loss > 1e-12 ? 1 : 0;
    }
  qsort(r, (size_t)*n, sizeof *r, cmp_rows);
  return r;
}

static const char *entry_group(const pt_app *app, int e) {
  return app->entry_group && app->entry_group[e] ? app->entry_group[e] : app->entry_knob[e];
}

/* Where the ranked speedups come from. */
static const char *speedup_source(const double *prof) {
  return prof ? "cost_profiled (measured per op and knob)" : "cost_linear (the knobs' expected speedups)";
}

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static pt_status write_json(const pt__evaluator *ev, const sens_row *r, int n, const double *prof, const char *path) {
  const pt_app *app = ev->app;
  cJSON *root = cJSON_CreateObject(), *arr = NULL;
  if (root) {
    cJSON_AddStringToObject(root, "qos_model", pt_qos_model_name(ev->qos));
    cJSON_AddStringToObject(root, "cost_model", pt_cost_model_name(prof ? PT_COST_PROFILED : PT_COST_LINEAR));
    cJSON_AddBoolToObject(root, "speedup_measured", prof != NULL);
    arr = cJSON_AddArrayToObject(root, "entries");
  }
  if (!arr) {
    cJSON_Delete(root);
    return pt__error(PT_ENOMEM, "%s: out of memory", path);
  }
  int ok = 1;
  for (int i = 0; ok && i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    ok = o && cJSON_AddNumberToObject(o, "rank", i + 1);
    cJSON_AddStringToObject(o, "op", app->op_names[r[i].op]);
    cJSON_AddStringToObject(o, "knob", app->entry_knob[r[i].entry]);
    cJSON_AddStringToObject(o, "group", entry_group(app, r[i].entry));
    add_num(o, "qos_loss", r[i].loss);
    add_num(o, "speedup", r[i].speedup);
    add_num(o, "speedup_predicted", r[i].pred);
    add_num(o, "speedup_measured", r[i].meas);
    add_num(o, "speedup_per_qos_point", r[i].score);
    if (!ok || !cJSON_AddItemToArray(arr, o)) cJSON_Delete(o), ok = 0;
  }
  if (!ok) {
    cJSON_Delete(root);
    return pt__error(PT_ENOMEM, "%s: out of memory", path);
  }
  return pt__write_json_atomic(path, root, 1);
}

static pt_status write_text(const pt__evaluator *ev, const sens_row *r, int n, const double *prof, const char *path) {
  const pt_app *app = ev->app;
  pt__text t = {0};
  pt_status s = pt__text_put(&t,
           "# Each knob alone on each op: the tune set's QoS loss against the baseline config (%s) and the\n"
           "# speedup over it, predicted (cost_linear) and measured (cost_profiled, where profiled), ranked\n"
           "# by speedup gained per point of QoS lost (\"free\": no loss); ranked by %s.\n"
           "%5s  %-32s %-12s %12s %10s %10s %12s\n",
           pt_qos_model_name(ev->qos), speedup_source(prof), "rank", "op", "knob", "QoS loss", "predicted", "measured",
           "per point");
  for (int i = 0; i < n && s == PT_OK; i++) {
    char score[32], meas[32] = "-";
    if (r[i].klass == 0) snprintf(score, sizeof score, "free");
    else if (r[i].klass == 2) snprintf(score, sizeof score, "no gain");
    else if (isfinite(r[i].score)) snprintf(score, sizeof score, "%.4g", r[i].score);
    else snprintf(score, sizeof score, "-");
    if (isfinite(r[i].meas)) snprintf(meas, sizeof meas, "%.4gx", r[i].meas);
    s = pt__text_put(&t, "%5d  %-32s %-12s %12.6g %9.4gx %10s %12s\n", i + 1, app->op_names[r[i].op],
                     app->entry_knob[r[i].entry], r[i].loss, r[i].pred, meas, score);
  }
  if (s == PT_OK) s = pt_write_file_atomic(path, t.buf, t.len);
  free(t.buf);
  return s;
}

static int group_index(const char **groups, int ng, const char *g) {
  for (int i = 0; i < ng; i++)
    if (!strcmp(groups[i], g)) return i;
  return -1;
}

/* The heatmap: a row per op that has knobs besides its baseline, a column per knob group (in the
 * order the knobs come), each cell the group's least lossy knob on the op (the faster of equals). */
static pt_status heatmap(const pt__evaluator *ev, const sens_row *r, int n, const double *prof, const char *path) {
  const pt_app *app = ev->app;
  int *op_row = pt__malloc((size_t)app->n_ops * sizeof *op_row), nr = 0, ng = 0;
  const char **ops = pt__malloc((size_t)app->n_ops * sizeof *ops);
  const char **groups = pt__malloc((size_t)app->n_entries * sizeof *groups);
  double *loss = NULL, *sp = NULL;
  pt_status s = op_row && ops && groups ? PT_OK : PT_ENOMEM;
  for (int op = 0; s == PT_OK && op < app->n_ops; op++) {
    op_row[op] = app->n_knobs[op] > 1 ? nr : -1;
    if (app->n_knobs[op] > 1) ops[nr++] = app->op_names[op];
    for (int e = app->entry_off[op] + 1; e < app->entry_off[op + 1]; e++)
      if (group_index(groups, ng, entry_group(app, e)) < 0) groups[ng++] = entry_group(app, e);
  }
  if (s == PT_OK) {
    loss = pt__malloc((size_t)(nr * ng > 0 ? nr * ng : 1) * sizeof *loss);
    sp = pt__malloc((size_t)(nr * ng > 0 ? nr * ng : 1) * sizeof *sp);
    if (!loss || !sp) s = PT_ENOMEM;
  }
  for (int i = 0; s == PT_OK && i < nr * ng; i++) loss[i] = sp[i] = NAN;
  for (int i = 0; s == PT_OK && i < n; i++) {
    const int c = op_row[r[i].op] * ng + group_index(groups, ng, entry_group(app, r[i].entry));
    if (isnan(r[i].loss)) continue;
    if (isnan(loss[c]) || r[i].loss < loss[c] || (r[i].loss == loss[c] && r[i].speedup > sp[c]))
      loss[c] = r[i].loss, sp[c] = r[i].speedup;
  }
  char title[160], note[160];
  snprintf(title, sizeof title, "QoS loss on the tune set (%s), each knob group alone on each op", pt_qos_model_name(ev->qos));
  snprintf(note, sizeof note, "speedup over the baseline config: %s", speedup_source(prof));
  const pt__heat h = {nr, ng, ops, groups, loss, sp, title, note};
  if (s == PT_OK) s = pt__heatmap_draw(&h, path);
  else s = pt__error(PT_ENOMEM, "%s: out of memory for the heatmap", path);
  free(op_row), free(ops), free(groups), free(loss), free(sp);
  return s;
}

pt_status pt__sensitivity_remove(const char *dir) {
  const char *names[] = {"sensitivity.json", "sensitivity.txt", "sensitivity.png", "sensitivity.svg"};
  for (int i = 0; i < 4; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (remove(path) != 0 && errno != ENOENT)
      return pt__error(PT_EIO, "%s: cannot remove an earlier run's report: %s", path, strerror(errno));
  }
  return PT_OK;
}

pt_status pt__sensitivity_write(const pt__evaluator *ev, const char *dir, pt_status *plot_s) {
  const pt_app *app = ev->app;
  const double *prof = ev->cost == PT_COST_PROFILED ? ev->cost_tbl : NULL;
  double *lin = pt__malloc((size_t)(app->n_entries > 0 ? app->n_entries : 1) * sizeof *lin);
  if (!lin) return pt__error(PT_ENOMEM, "tuner: out of memory for the sensitivity report");
  pt_status s = pt__cost_linear(app, lin);
  int n = 0;
  sens_row *r = s == PT_OK ? rank_rows(ev, lin, prof, &n) : NULL;
  if (s == PT_OK && !r) s = pt__error(PT_ENOMEM, "tuner: out of memory for the sensitivity report");
  char path[4200];
  snprintf(path, sizeof path, "%s/sensitivity.json", dir);
  if (s == PT_OK) s = write_json(ev, r, n, prof, path);
  snprintf(path, sizeof path, "%s/sensitivity.txt", dir);
  if (s == PT_OK) s = write_text(ev, r, n, prof, path);
  *plot_s = PT_OK;
  for (int k = 0; s == PT_OK && k < 2; k++) {
    snprintf(path, sizeof path, "%s/sensitivity.%s", dir, k ? "svg" : "png");
    if (remove(path) != 0 && errno != ENOENT) /* an earlier run's heatmap must not pass for this one's */
      s = pt__error(PT_EIO, "%s: cannot remove an earlier run's heatmap: %s", path, strerror(errno));
    if (s != PT_OK || n == 0) continue; /* nothing but baseline knobs: no heatmap */
    pt_status ps = heatmap(ev, r, n, prof, path);
    if (ps != PT_OK) {
      pt_log(PT_LOG_ERROR, "%s", pt_last_error());
      *plot_s = ps;
    }
  }
  free(r);
  free(lin);
  return s;
}

pt_status pt_sensitivity_run(pt_app *app, const pt_tune_opts *opts) {
  if (!app || !opts || !opts->output_dir || !opts->output_dir[0])
    return pt__error(PT_EINVAL, "sensitivity: an app and an output folder are needed");
  pt_tune_opts o = *opts;
  if (o.qos_model == PT_QOS_EMPIRICAL) o.qos_model = PT_QOS_P1;
  if (!pt_qos_model_name(o.qos_model)) return pt__error(PT_EINVAL, "sensitivity: unknown QoS model %d", (int)o.qos_model);
  o.cost_model = app->vt->profile ? PT_COST_PROFILED : PT_COST_LINEAR;
  PT__TRY(pt_make_dirs(o.output_dir));
  PT__TRY(pt_output_lock(o.output_dir));
  double q0 = NAN, c0;
  char storage[4096];
  pt__evaluator ev = {0};
  pt_status s = pt_app_measure(app, 1, NULL, 0, &q0, &c0), plot_s = PT_OK;
  if (s == PT_OK) s = pt__eval_init(&ev, app, &o, pt__eval_storage(&o, storage, sizeof storage), q0);
  if (s == PT_OK) s = pt__sensitivity_write(&ev, o.output_dir, &plot_s);
  char path[4200]; /* a tune's folder: its report shows the new files */
  snprintf(path, sizeof path, "%s/configs.json", o.output_dir);
  if (s == PT_OK && access(path, F_OK) == 0) {
    pt_status rs = pt_report_write(o.output_dir);
    if (rs != PT_OK) pt_log(PT_LOG_ERROR, "%s", pt_last_error()), plot_s = rs;
  }
  pt__eval_free(&ev);
  pt_output_unlock(o.output_dir);
  return s != PT_OK ? s : plot_s;
}
