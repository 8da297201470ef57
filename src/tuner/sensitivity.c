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

#include <cjson/cJSON.h>

#include "app/app_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/io.h"
#include "tuner/tuner_internal.h"
#include "io/fileutil.h"

typedef struct sens_row {
  int op, entry;
  double loss, speedup, score; /* score: speedup gained per point of QoS lost (NaN: no loss) */
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

/* The rows of every non-baseline entry, ranked; NULL on allocation failure. */
static sens_row *rank_rows(const pt__evaluator *ev, int *n) {
  const pt_app *app = ev->app;
  const double *tbl = ev->cost_tbl ? ev->cost_tbl : ev->search_cost; /* per-op cost of each entry */
  double base = 0;
  for (int op = 0; op < app->n_ops; op++) base += tbl[app->entry_off[op]];
  sens_row *r = pt__malloc((size_t)(app->n_entries > 0 ? app->n_entries : 1) * sizeof *r);
  if (!r) return NULL;
  *n = 0;
  for (int op = 0; op < app->n_ops; op++)
    for (int e = app->entry_off[op] + 1; e < app->entry_off[op + 1]; e++) {
      sens_row *x = &r[(*n)++];
      /* against the baseline config, as the speedup is: the model's losses are the exact network's,
       * which include the baseline knobs' own (an fp16 baseline loses some) */
      x->op = op, x->entry = e, x->loss = ev->search_loss[e] - ev->search_loss[app->entry_off[op]];
      x->speedup = base / (base - tbl[app->entry_off[op]] + tbl[e]);
      x->score = x->loss > 1e-12 ? (x->speedup - 1) / x->loss : NAN;
      x->klass = !isfinite(x->loss) ? 3 : !(x->speedup > 1) ? 2 : x->loss > 1e-12 ? 1 : 0;
    }
  qsort(r, (size_t)*n, sizeof *r, cmp_rows);
  return r;
}

/* The cost model the speedups come from: the run's, or cost_linear's expected speedups when the
 * run's cost is empirical (measured per config, not per op). */
static const char *speedup_source(const pt__evaluator *ev) {
  return ev->cost_tbl ? pt_cost_model_name(ev->cost) : pt_cost_model_name(PT_COST_LINEAR);
}

static void add_num(cJSON *o, const char *k, double v) {
  if (isfinite(v)) cJSON_AddNumberToObject(o, k, v);
  else cJSON_AddNullToObject(o, k);
}

static pt_status write_json(const pt__evaluator *ev, const sens_row *r, int n, const char *path) {
  const pt_app *app = ev->app;
  cJSON *root = cJSON_CreateObject(), *arr = NULL;
  if (root) {
    cJSON_AddStringToObject(root, "qos_model", pt_qos_model_name(ev->qos));
    cJSON_AddStringToObject(root, "cost_model", speedup_source(ev));
    cJSON_AddBoolToObject(root, "speedup_measured", ev->cost == PT_COST_PROFILED);
    arr = cJSON_AddArrayToObject(root, "entries");
  }
  if (!arr) {
    cJSON_Delete(root);
    return pt__error(PT_ENOMEM, "%s: out of memory", path);
  }
  for (int i = 0; i < n; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rank", i + 1);
    cJSON_AddStringToObject(o, "op", app->op_names[r[i].op]);
    cJSON_AddStringToObject(o, "knob", app->entry_knob[r[i].entry]);
    add_num(o, "qos_loss", r[i].loss);
    add_num(o, "speedup", r[i].speedup);
    add_num(o, "speedup_per_qos_point", r[i].score);
    cJSON_AddItemToArray(arr, o);
  }
  return pt__write_json_atomic(path, root, 1);
}

/* Appends text to *buf (growing it); 0 on allocation failure. */
static int append(char **buf, size_t *len, size_t *cap, const char *text) {
  const size_t n = strlen(text);
  if (*len + n + 1 > *cap) {
    size_t c = (*len + n + 1) * 2;
    char *b = pt__realloc(*buf, c);
    if (!b) return 0;
    *buf = b, *cap = c;
  }
  memcpy(*buf + *len, text, n + 1);
  *len += n;
  return 1;
}

static pt_status write_text(const pt__evaluator *ev, const sens_row *r, int n, const char *path) {
  const pt_app *app = ev->app;
  char *buf = NULL, line[1024];
  size_t len = 0, cap = 0;
  snprintf(line, sizeof line,
           "# Each knob alone on each op: the tune set's QoS loss against the baseline config (%s) and the\n"
           "# speedup over it (%s%s), ranked by speedup gained per point of QoS lost (\"free\": no loss).\n"
           "%5s  %-32s %-12s %12s %10s %12s\n",
           pt_qos_model_name(ev->qos), speedup_source(ev), ev->cost == PT_COST_PROFILED ? ", measured per op" : ", expected speedups",
           "rank", "op", "knob", "QoS loss", "speedup", "per point");
  int ok = append(&buf, &len, &cap, line);
  for (int i = 0; i < n && ok; i++) {
    char score[32];
    if (r[i].klass == 0) snprintf(score, sizeof score, "free");
    else if (isfinite(r[i].score)) snprintf(score, sizeof score, "%.4g", r[i].score);
    else snprintf(score, sizeof score, "-");
    snprintf(line, sizeof line, "%5d  %-32s %-12s %12.6g %9.4gx %12s\n", i + 1, app->op_names[r[i].op],
             app->entry_knob[r[i].entry], r[i].loss, r[i].speedup, score);
    ok = append(&buf, &len, &cap, line);
  }
  pt_status s = ok ? pt_write_file_atomic(path, buf, len) : pt__error(PT_ENOMEM, "%s: out of memory", path);
  free(buf);
  return s;
}

pt_status pt__sensitivity_remove(const char *dir) {
  const char *names[] = {"sensitivity.json", "sensitivity.txt"};
  for (int i = 0; i < 2; i++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    if (remove(path) != 0 && errno != ENOENT)
      return pt__error(PT_EIO, "%s: cannot remove an earlier run's report: %s", path, strerror(errno));
  }
  return PT_OK;
}

pt_status pt__sensitivity_write(const pt__evaluator *ev, const char *dir) {
  int n = 0;
  sens_row *r = rank_rows(ev, &n);
  if (!r) return pt__error(PT_ENOMEM, "tuner: out of memory for the sensitivity report");
  char path[4200];
  snprintf(path, sizeof path, "%s/sensitivity.json", dir);
  pt_status s = write_json(ev, r, n, path);
  snprintf(path, sizeof path, "%s/sensitivity.txt", dir);
  if (s == PT_OK) s = write_text(ev, r, n, path);
  free(r);
  return s;
}
