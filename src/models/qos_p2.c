/* qos_p2 (ApproxTuner's P2): per (op, knob) QoS with only that op changed, summed as losses. The
 * file is PredTuner's: {"app_name": ..., "df": {knob: {op: qos or null}}, "bqos": q0}. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "models/models.h"
#include "predtuner/io.h"

void pt__p2_free(pt__p2 *m) {
  free(m->q);
  m->q = NULL;
}

typedef struct p2_parse {
  const pt_app *app;
  pt__p2 *m;
} p2_parse;

/* A stored QoS must be a finite number, and an accuracy within [0, 100]. */
static pt_status check_qos(const pt_app *app, const char *src, const char *knob, const char *op, double v) {
  if (isfinite(v) && (!app->qos_percent || (v >= 0 && v <= 100))) return PT_OK;
  char where[320];
  if (op[0]) snprintf(where, sizeof where, "df[\"%s\"][\"%s\"]", knob, op);
  else snprintf(where, sizeof where, "\"%s\"", knob);
  return pt__error(PT_ERANGE, "%s: %s: QoS %g is not %s", src, where, v, app->qos_percent ? "an accuracy in [0, 100]" : "finite");
}

static pt_status parse_p2(const char *text, size_t len, const char *src, void *out) {
  p2_parse *pp = out;
  const pt_app *app = pp->app;
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", src);
  pt_status s = PT_OK;
  const cJSON *df = cJSON_GetObjectItemCaseSensitive(root, "df");
  const cJSON *bq = cJSON_GetObjectItemCaseSensitive(root, "bqos");
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "app_name");
  if (!cJSON_IsObject(root)) s = pt__error(PT_EFORMAT, "%s: expected an object with \"df\" and \"bqos\"", src);
  else if (!cJSON_IsObject(df)) s = pt__error(PT_EFORMAT, "%s: \"df\" is missing or not an object", src);
  else if (!cJSON_IsNumber(bq)) s = pt__error(PT_EFORMAT, "%s: \"bqos\" is missing or not a number", src);
  else if (name && !cJSON_IsString(name)) s = pt__error(PT_EFORMAT, "%s: \"app_name\" is not a string", src);
  const cJSON *fp = cJSON_GetObjectItemCaseSensitive(root, "fingerprint");
  if (s == PT_OK && fp && !cJSON_IsString(fp)) s = pt__error(PT_EFORMAT, "%s: \"fingerprint\" is not a string", src);
  if (s == PT_OK) s = pt__fp_check(app, PT__FP_MODEL, fp ? fp->valuestring : NULL, src, PT__MODELS_WAY_OUT);
  if (s == PT_OK) s = check_qos(app, src, "bqos", "", bq->valuedouble);
  if (s == PT_OK) pp->m->q0 = bq->valuedouble;
  const cJSON *kj, *dfs = s == PT_OK ? df : NULL;
  cJSON_ArrayForEach(kj, dfs) {
    if (!cJSON_IsObject(kj)) {
      s = pt__error(PT_EFORMAT, "%s: df[\"%s\"] is not an object of op -> QoS", src, kj->string);
      break;
    }
    const cJSON *oj;
    cJSON_ArrayForEach(oj, kj) {
      int op = -1;
      for (int i = 0; i < app->n_ops && op < 0; i++)
        if (!strcmp(app->op_names[i], oj->string)) op = i;
      if (op < 0) {
        s = pt__error(PT_EFORMAT, "%s: op '%s' is not an op of app %s (a model of another network?)", src, oj->string,
                      app->name);
        break;
      }
      if (cJSON_IsNull(oj)) continue; /* the knob does not apply to this op */
      if (!cJSON_IsNumber(oj)) {
        s = pt__error(PT_EFORMAT, "%s: df[\"%s\"][\"%s\"] is not a number or null", src, kj->string, oj->string);
        break;
      }
      if ((s = check_qos(app, src, kj->string, oj->string, oj->valuedouble)) != PT_OK) break;
      int p = pt_app_op_find_knob(app, op, kj->string);
      if (p >= 0) pp->m->q[app->entry_off[op] + p] = oj->valuedouble; /* others: a larger knob set */
    }
    if (s != PT_OK) break;
  }
  cJSON_Delete(root);
  return s;
}

pt_status pt__p2_load(const char *path, const pt_app *app, pt__p2 *m, int *missing) {
  if (!m->q && !(m->q = pt__malloc((size_t)app->n_entries * sizeof *m->q)))
    return pt__error(PT_ENOMEM, "qos_p2: out of memory for %d knob choices", app->n_entries);
  for (int e = 0; e < app->n_entries; e++) m->q[e] = NAN;
  p2_parse pp = {app, m};
  PT__TRY(pt__parse_file(path, parse_p2, &pp));
  *missing = 0;
  for (int e = 0; e < app->n_entries; e++) *missing += isnan(m->q[e]);
  return PT_OK;
}

static pt_status save_p2(const char *path, const pt_app *app, const pt__p2 *m) {
  cJSON *root = cJSON_CreateObject();
  cJSON_AddStringToObject(root, "app_name", app->name);
  char fp[512];
  pt__fp_format(app, PT__FP_MODEL, fp, sizeof fp);
  cJSON_AddStringToObject(root, "fingerprint", fp);
  cJSON *df = cJSON_AddObjectToObject(root, "df");
  for (int e = 0; e < app->n_entries; e++) { /* one column per knob, every op a row, null where n/a */
    const char *k = app->entry_knob[e];
    if (cJSON_GetObjectItemCaseSensitive(df, k)) continue;
    cJSON *col = cJSON_AddObjectToObject(df, k);
    for (int op = 0; op < app->n_ops; op++) {
      int p = pt_app_op_find_knob(app, op, k);
      double v = p < 0 ? NAN : m->q[app->entry_off[op] + p];
      if (isnan(v)) cJSON_AddNullToObject(col, app->op_names[op]);
      else cJSON_AddNumberToObject(col, app->op_names[op], v);
    }
  }
  cJSON_AddNumberToObject(root, "bqos", m->q0);
  return pt__write_json_atomic(path, root, 0);
}

/* Entries measured together as one batch of configs (the DNN app shares their exact prefixes). */
#define P2_GROUP 32

/* The QoS of entries e[0 .. n-1], each alone over the exact network, into q (cfg: n x n_ops
 * scratch). A knob whose outputs are not finite even alone gets no right answer: QoS 0, so no
 * config with it is ever kept (docs/design.md, "QoS, cost and models"). */
static void store_group(const pt_app *app, int n, const int *e, const int *op, double *qs, double *q) {
  for (int k = 0; k < n; k++) {
    if (!isfinite(qs[k])) {
      pt_log(PT_LOG_WARN, "qos_p2: op '%s' knob '%s' alone gives non-finite outputs; its QoS is 0", app->op_names[op[k]],
             app->entry_knob[e[k]]);
      qs[k] = 0;
    }
    q[e[k]] = qs[k];
  }
}

/* The group measured by meas (the configs' failures are results: a non-finite one scores 0, any
 * other is the init's error, as in this process). */
static pt_status measure_via(const pt_measurer *meas, pt_app *app, int n, const int *e, const int *op,
                             const uint16_t *cfg, double *q) {
  double *qs = pt__malloc((size_t)n * sizeof *qs);
  pt_config_failure *fail = pt__calloc((size_t)n, sizeof *fail);
  pt_status s = qs && fail ? PT_OK : pt__error(PT_ENOMEM, "qos_p2: out of memory for a group of %d", n);
  if (s == PT_OK) meas->measure(meas->ctx, app, n, cfg, 0, NULL, qs, NULL, fail);
  for (int k = 0; s == PT_OK && k < n; k++)
    if (fail[k].status == PT_ENONFINITE) qs[k] = NAN;
    else if (fail[k].status != PT_OK)
      s = pt__error(fail[k].status, "qos_p2: op '%s' knob '%s': %s", app->op_names[op[k]], app->entry_knob[e[k]],
                    fail[k].why);
  if (s == PT_OK) store_group(app, n, e, op, qs, q);
  free(qs);
  free(fail);
  return s;
}

static pt_status measure_group(pt_app *app, const pt_measurer *meas, int n, const int *e, uint16_t *cfg, double *q) {
  double qs[P2_GROUP];
  int op_here[P2_GROUP], *op = n <= P2_GROUP ? op_here : pt__malloc((size_t)n * sizeof *op);
  if (!op) return pt__error(PT_ENOMEM, "qos_p2: out of memory for a group of %d", n);
  memset(cfg, 0, (size_t)n * (size_t)app->n_ops * sizeof *cfg);
  for (int k = 0; k < n; k++) {
    for (op[k] = 0; app->entry_off[op[k] + 1] <= e[k]; op[k]++) {}
    cfg[(size_t)k * (size_t)app->n_ops + (size_t)op[k]] = (uint16_t)(e[k] - app->entry_off[op[k]]);
  }
  pt_status s = PT_OK;
  if (meas && meas->measure) {
    s = measure_via(meas, app, n, e, op, cfg, q);
  } else {
    s = pt_app_measure(app, n, cfg, 0, qs, NULL);
    if (s == PT_ENONFINITE && n > 1) { /* an app that fails the whole batch (piped): each alone then */
      for (int k = 0; k < n && (s = measure_group(app, NULL, 1, e + k, cfg, q)) == PT_OK; k++) {}
    } else if (s == PT_ENONFINITE) {
      qs[0] = NAN;
      store_group(app, n, e, op, qs, q);
      s = PT_OK;
    } else if (s == PT_OK) {
      store_group(app, n, e, op, qs, q);
    }
  }
  if (op != op_here) free(op);
  return s;
}

pt_status pt__p2_init(pt_app *app, const char *dir, int reinit, FILE *progress, const pt_measurer *meas, pt__p2 *m) {
  memset(m, 0, sizeof *m);
  char path[4096] = "";
  int missing = app->n_entries, have_file = 0;
  const int group = P2_GROUP * (meas && meas->measure && meas->width > 1 ? meas->width : 1);
  uint16_t *cfg = pt__calloc((size_t)group * (size_t)app->n_ops, sizeof *cfg);
  int *todo = pt__malloc((size_t)app->n_entries * sizeof *todo + 1);
  pt_status s = cfg && todo ? PT_OK : pt__error(PT_ENOMEM, "qos_p2: out of memory");
  if (s == PT_OK && dir) {
    s = pt__model_path(dir, "p2.json", 1, path, sizeof path);
    if (s == PT_OK && !reinit && access(path, F_OK) == 0) {
      s = pt__p2_load(path, app, m, &missing);
      have_file = 1;
    }
  }
  if (s == PT_OK && !m->q && !(m->q = pt__malloc((size_t)app->n_entries * sizeof *m->q)))
    s = pt__error(PT_ENOMEM, "qos_p2: out of memory for %d knob choices", app->n_entries);
  if (s == PT_OK && !have_file) { /* the exact network must be finite: its failure is an error */
    for (int e = 0; e < app->n_entries; e++) m->q[e] = NAN;
    double cost;
    s = pt_app_measure(app, 1, NULL, 0, &m->q0, &cost);
  }
  missing = 0;
  for (int e = 0; s == PT_OK && e < app->n_entries; e++)
    if (isnan(m->q[e])) todo[missing++] = e;
  pt_progress prog;
  pt_progress_begin(&prog, s == PT_OK && missing ? progress : NULL, "qos_p2 init", missing);
  double last_save = pt_now();
  int done = 0;
  while (s == PT_OK && done < missing) {
    int n = missing - done < group ? missing - done : group;
    s = measure_group(app, meas, n, todo + done, cfg, m->q);
    if (s != PT_OK) break;
    done += n;
    pt_progress_update(&prog, done);
    if (path[0] && done < missing && pt_now() - last_save > 10.0) { /* an interrupted init resumes from here */
      s = save_p2(path, app, m);
      last_save = pt_now();
    }
  }
  pt_progress_end(&prog);
  if (s == PT_OK && path[0] && done) s = save_p2(path, app, m);
  free(cfg);
  free(todo);
  if (s != PT_OK) pt__p2_free(m);
  return s;
}

void pt__p2_predict(const pt_app *app, const pt__p2 *m, int n, const uint16_t *cfgs, double *qos) {
  for (int k = 0; k < n; k++) {
    const uint16_t *c = cfgs + (int64_t)k * app->n_ops;
    double q = m->q0;
    for (int op = 0; op < app->n_ops; op++) q += m->q[app->entry_off[op] + c[op]] - m->q0;
    qos[k] = q;
  }
}
