/* Cost models: cost_linear (FLOPs over expected speedup, PredTuner's) and cost_profiled (ours:
 * per-op times measured on the backend in use). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "models/models.h"
#include "predtuner/io.h"

pt_status pt__model_path(const char *dir, const char *file, int mk, char *buf, size_t n) {
  if ((size_t)snprintf(buf, n, "%s/%s", dir, file) >= n) return pt__error(PT_EINVAL, "model path too long: %s/%s", dir, file);
  return mk ? pt_make_dirs(dir) : PT_OK;
}

pt_status pt__cost_linear(const pt_app *app, double *entry_cost) {
  for (int op = 0; op < app->n_ops; op++)
    for (int p = 0; p < app->n_knobs[op]; p++) {
      int e = app->entry_off[op] + p;
      entry_cost[e] = app->op_cost[op] / app->entry_speedup[e];
    }
  return PT_OK;
}

typedef struct profiled_parse {
  const pt_app *app;
  double *cost;
  int found;
} profiled_parse;

static pt_status parse_profiled(const char *text, size_t len, const char *src, void *out) {
  profiled_parse *pp = out;
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", src);
  pt_status s = PT_OK;
  const cJSON *sec = cJSON_GetObjectItemCaseSensitive(root, "seconds");
  const cJSON *fp = cJSON_GetObjectItemCaseSensitive(root, "fingerprint");
  if (!cJSON_IsObject(sec)) s = pt__error(PT_EFORMAT, "%s: no \"seconds\" object", src);
  else if (fp && !cJSON_IsString(fp)) s = pt__error(PT_EFORMAT, "%s: \"fingerprint\" is not a string", src);
  else s = pt__fp_check(pp->app, PT__FP_COST, fp ? fp->valuestring : NULL, src, PT__MODELS_WAY_OUT);
  const cJSON *opj, *secs = s == PT_OK ? sec : NULL;
  cJSON_ArrayForEach(opj, secs) {
    int op = -1;
    for (int i = 0; i < pp->app->n_ops && op < 0; i++)
      if (!strcmp(pp->app->op_names[i], opj->string)) op = i;
    if (op < 0 || !cJSON_IsObject(opj)) {
      s = pt__error(PT_EFORMAT, "%s: op '%s' is not an op of app %s (or not an object)", src, opj->string, pp->app->name);
      break;
    }
    const cJSON *kj;
    cJSON_ArrayForEach(kj, opj) {
      int p = pt_app_op_find_knob(pp->app, op, kj->string);
      if (p < 0) continue; /* measured for a larger knob set */
      if (!cJSON_IsNumber(kj) || !(kj->valuedouble > 0) || !isfinite(kj->valuedouble)) {
        s = pt__error(PT_ERANGE, "%s: op '%s' knob '%s': expected seconds > 0", src, opj->string, kj->string);
        break;
      }
      pp->cost[pp->app->entry_off[op] + p] = kj->valuedouble;
      pp->found++;
    }
    if (s != PT_OK) break;
  }
  cJSON_Delete(root);
  return s;
}

/* One knob choice per distinct knob name, in entry order: each is timed once, on every op having it. */
static int knob_representatives(const pt_app *app, int *rep) {
  int n = 0;
  for (int e = 0; e < app->n_entries; e++) {
    int seen = 0;
    for (int k = 0; k < n && !seen; k++) seen = !strcmp(app->entry_knob[rep[k]], app->entry_knob[e]);
    if (!seen) rep[n++] = e;
  }
  return n;
}

static pt_status profile(pt_app *app, FILE *progress, const pt_measurer *meas, double *entry_cost) {
  int *rep = pt__malloc((size_t)app->n_entries * sizeof *rep + 1);
  if (!rep) return pt__error(PT_ENOMEM, "cost_profiled: out of memory for %d knob choices", app->n_entries);
  const int n = knob_representatives(app, rep);
  pt_progress prog;
  pt_progress_begin(&prog, progress, "cost_profiled", app->n_entries);
  pt_status s = meas && meas->profile ? meas->profile(meas->ctx, app, n, rep, entry_cost, &prog, 0)
                                      : app->vt->profile(app, n, rep, entry_cost, &prog, 0);
  pt_progress_end(&prog);
  for (int e = 0; s == PT_OK && e < app->n_entries; e++)
    if (isnan(entry_cost[e])) /* every choice's knob has a representative: a measurer that lost one */
      s = pt__error(PT_EBACKEND, "cost_profiled: knob choice %d ('%s') was not timed", e, app->entry_knob[e]);
  free(rep);
  return s;
}

pt_status pt__cost_profiled(pt_app *app, const char *dir, int reinit, FILE *progress, const pt_measurer *meas,
                            double *entry_cost) {
  if (!app->vt->profile)
    return pt__error(PT_EUNSUPPORTED, "cost_profiled needs an app that can time its ops (a DNN app); app %s cannot",
                     app->name);
  char path[4096];
  for (int e = 0; e < app->n_entries; e++) entry_cost[e] = NAN;
  if (dir) {
    PT__TRY(pt__model_path(dir, "cost_profiled.json", 0, path, sizeof path));
    if (!reinit && access(path, F_OK) == 0) {
      profiled_parse pp = {app, entry_cost, 0};
      PT__TRY(pt__parse_file(path, parse_profiled, &pp));
      int missing = 0;
      for (int e = 0; e < app->n_entries; e++) missing += isnan(entry_cost[e]);
      if (!missing) return PT_OK;
    }
  }
  pt_status s = profile(app, progress, meas, entry_cost);
  if (s != PT_OK || !dir) return s;
  cJSON *root = cJSON_CreateObject(), *sec = cJSON_AddObjectToObject(root, "seconds");
  cJSON_AddStringToObject(root, "app_name", app->name);
  char fp[512];
  pt__fp_format(app, PT__FP_COST, fp, sizeof fp);
  cJSON_AddStringToObject(root, "fingerprint", fp);
  for (int op = 0; op < app->n_ops; op++) {
    cJSON *o = cJSON_AddObjectToObject(sec, app->op_names[op]);
    for (int p = 0; p < app->n_knobs[op]; p++)
      cJSON_AddNumberToObject(o, app->entry_knob[app->entry_off[op] + p], entry_cost[app->entry_off[op] + p]);
  }
  s = pt__model_path(dir, "cost_profiled.json", 1, path, sizeof path);
  if (s != PT_OK) {
    cJSON_Delete(root);
    return s;
  }
  return pt__write_json_atomic(path, root, 1);
}
