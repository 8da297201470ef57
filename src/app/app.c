/* What every app shares, and the generic app: a C callback measures configs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"
#include "core/alloc.h"
#include "core/error.h"

pt_status pt__app_alloc(pt_app *app, int n_ops, int n_entries) {
  app->n_ops = n_ops;
  app->n_entries = n_entries;
  app->op_names = pt__calloc((size_t)n_ops, sizeof *app->op_names);
  app->op_cost = pt__calloc((size_t)n_ops, sizeof *app->op_cost);
  app->n_knobs = pt__calloc((size_t)n_ops, sizeof *app->n_knobs);
  app->entry_off = pt__calloc((size_t)n_ops + 1, sizeof *app->entry_off);
  app->entry_knob = pt__calloc((size_t)n_entries, sizeof *app->entry_knob);
  app->entry_speedup = pt__calloc((size_t)n_entries, sizeof *app->entry_speedup);
  app->entry_group = pt__calloc((size_t)n_entries, sizeof *app->entry_group);
  if (!app->op_names || !app->op_cost || !app->n_knobs || !app->entry_off || !app->entry_knob || !app->entry_speedup ||
      !app->entry_group)
    return pt__error(PT_ENOMEM, "app: out of memory");
  return PT_OK;
}

void pt__app_free_tables(pt_app *app) {
  for (int i = 0; app->op_names && i < app->n_ops; i++) free(app->op_names[i]);
  for (int i = 0; app->entry_knob && i < app->n_entries; i++) free(app->entry_knob[i]);
  free(app->op_names);
  free(app->op_cost);
  free(app->n_knobs);
  free(app->entry_off);
  free(app->entry_knob);
  free(app->entry_speedup);
  free(app->entry_group);
}

void pt_app_free(pt_app *app) {
  if (!app) return;
  if (app->vt && app->vt->destroy) app->vt->destroy(app);
  pt__app_free_tables(app);
  free(app);
}

const char *pt_app_name(const pt_app *app) { return app->name; }
int pt_app_num_ops(const pt_app *app) { return app->n_ops; }
const char *pt_app_op_name(const pt_app *app, int op) { return op >= 0 && op < app->n_ops ? app->op_names[op] : NULL; }
double pt_app_op_cost(const pt_app *app, int op) { return op >= 0 && op < app->n_ops ? app->op_cost[op] : NAN; }
int pt_app_op_num_knobs(const pt_app *app, int op) { return op >= 0 && op < app->n_ops ? app->n_knobs[op] : 0; }
const char *pt_app_describe(const pt_app *app) { return app->desc; }

const char *pt_app_op_knob(const pt_app *app, int op, int pos) {
  if (op < 0 || op >= app->n_ops || pos < 0 || pos >= app->n_knobs[op]) return NULL;
  return app->entry_knob[app->entry_off[op] + pos];
}

double pt_app_op_knob_speedup(const pt_app *app, int op, int pos) {
  if (op < 0 || op >= app->n_ops || pos < 0 || pos >= app->n_knobs[op]) return NAN;
  return app->entry_speedup[app->entry_off[op] + pos];
}

int pt_app_op_find_knob(const pt_app *app, int op, const char *name) {
  for (int p = 0; op >= 0 && op < app->n_ops && p < app->n_knobs[op]; p++)
    if (!strcmp(app->entry_knob[app->entry_off[op] + p], name)) return p;
  return -1;
}

double pt_app_space_size(const pt_app *app) {
  double n = 1;
  for (int i = 0; i < app->n_ops; i++) n *= app->n_knobs[i];
  return n;
}

static pt_status check_configs(const pt_app *app, int n, const uint16_t *configs) {
  if (!configs && n != 1) return pt__error(PT_EINVAL, "app %s: the exact network is measured alone", app->name);
  for (int k = 0; configs && k < n; k++)
    for (int op = 0; op < app->n_ops; op++)
      if (configs[(int64_t)k * app->n_ops + op] >= app->n_knobs[op])
        return pt__error(PT_EINVAL, "app %s: op '%s' has no knob position %u", app->name, app->op_names[op],
                         configs[(int64_t)k * app->n_ops + op]);
  return PT_OK;
}

pt_status pt_app_measure(pt_app *app, int n, const uint16_t *configs, int test, double *qos, double *cost) {
  PT__TRY(check_configs(app, n, configs));
  return app->vt->measure(app, n, configs, test, qos, cost);
}

pt_status pt__app_measure_stop(pt_app *app, int n, const uint16_t *cfgs, const pt_stop_rule *stop, double *qos,
                               double *cost, uint8_t *stopped) {
  memset(stopped, 0, (size_t)n);
  if (!stop || stop->mode == PT_EARLY_STOP_OFF || !app->vt->measure_stop || !cfgs)
    return pt_app_measure(app, n, cfgs, 0, qos, cost);
  PT__TRY(check_configs(app, n, cfgs));
  return app->vt->measure_stop(app, n, cfgs, stop, qos, cost, stopped);
}

pt_status pt_app_set_error(pt_status s, const char *msg) { return pt__error(s, "%s", msg ? msg : ""); }

/* ---- the generic app ---- */

typedef struct generic_ctx {
  pt_generic_measure_fn fn;
  void *user;
  uint16_t *zeros; /* the baseline config stands for the exact program */
} generic_ctx;

static pt_status generic_measure(pt_app *app, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  generic_ctx *g = app->ctx;
  double *scratch = cost ? NULL : pt__malloc((size_t)n * sizeof *scratch); /* the callback always gets room for costs */
  if (!cost && !scratch) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  double *c = cost ? cost : scratch;
  for (int k = 0; k < n; k++) qos[k] = c[k] = NAN;
  pt_status s = g->fn(g->user, n, cfgs ? cfgs : g->zeros, test, qos, c);
  free(scratch);
  if (s != PT_OK && !pt_last_error()[0]) pt__error(s, "app %s: the measure callback failed", app->name);
  else if (s != PT_OK) pt__error_prefix("app %s", app->name);
  return s;
}

static void generic_destroy(pt_app *app) {
  generic_ctx *g = app->ctx;
  if (g) free(g->zeros);
  free(g);
}

static const pt__app_vt GENERIC_VT = {.measure = generic_measure, .destroy = generic_destroy};

pt_status pt_app_generic_create(const char *name, int n_ops, const pt_generic_op *ops, pt_generic_measure_fn fn,
                                void *user, pt_app **out) {
  *out = NULL;
  if (!name || !name[0]) return pt__error(PT_EINVAL, "generic app: no name");
  if (n_ops <= 0 || !ops || !fn) return pt__error(PT_EINVAL, "generic app %s: needs ops and a measure callback", name);
  int n_entries = 0;
  for (int i = 0; i < n_ops; i++) {
    if (!ops[i].name || !ops[i].name[0]) return pt__error(PT_EINVAL, "generic app %s: op %d has no name", name, i);
    if (ops[i].n_knobs < 1 || ops[i].n_knobs > 65535 || !ops[i].knobs)
      return pt__error(PT_EINVAL, "generic app %s: op '%s' has %d knobs", name, ops[i].name, ops[i].n_knobs);
    if (!(ops[i].cost >= 0)) return pt__error(PT_EINVAL, "generic app %s: op '%s' has cost %g", name, ops[i].name, ops[i].cost);
    for (int j = 0; j < i; j++)
      if (!strcmp(ops[i].name, ops[j].name)) return pt__error(PT_EINVAL, "generic app %s: op '%s' given twice", name, ops[i].name);
    for (int k = 0; k < ops[i].n_knobs; k++) {
      if (!ops[i].knobs[k].name || !(ops[i].knobs[k].speedup > 0))
        return pt__error(PT_EINVAL, "generic app %s: op '%s': knob %d needs a name and a speedup > 0", name, ops[i].name, k);
      for (int j = 0; j < k; j++)
        if (!strcmp(ops[i].knobs[k].name, ops[i].knobs[j].name))
          return pt__error(PT_EINVAL, "generic app %s: op '%s': knob '%s' given twice", name, ops[i].name, ops[i].knobs[k].name);
    }
    n_entries += ops[i].n_knobs;
  }
  pt_app *app = pt__calloc(1, sizeof *app);
  generic_ctx *g = pt__calloc(1, sizeof *g);
  if (g) g->zeros = pt__calloc((size_t)n_ops, sizeof *g->zeros);
  pt_status s = app && g && g->zeros ? pt__app_alloc(app, n_ops, n_entries) : PT_ENOMEM;
  if (app) {
    app->vt = &GENERIC_VT;
    app->ctx = g;
  } else if (g) {
    free(g->zeros);
    free(g);
  }
  if (s == PT_OK) {
    snprintf(app->name, sizeof app->name, "%s", name);
    snprintf(app->knobs_source, sizeof app->knobs_source, "the app's own");
    g->fn = fn;
    g->user = user;
    int e = 0;
    for (int i = 0; i < n_ops && s == PT_OK; i++) {
      app->op_names[i] = pt__strdup(ops[i].name);
      app->op_cost[i] = ops[i].cost;
      app->n_knobs[i] = ops[i].n_knobs;
      app->entry_off[i] = e;
      if (!app->op_names[i]) s = PT_ENOMEM;
      for (int k = 0; k < ops[i].n_knobs && s == PT_OK; k++, e++) {
        app->entry_knob[e] = pt__strdup(ops[i].knobs[k].name);
        app->entry_speedup[e] = ops[i].knobs[k].speedup;
        if (!app->entry_knob[e]) s = PT_ENOMEM;
      }
    }
    app->entry_off[n_ops] = e;
    if (s == PT_OK) app->fp[PT__FP_GRAPH] = pt__fp_ops(app), app->fp[PT__FP_KNOBS] = pt__fp_space(app);
    snprintf(app->desc, sizeof app->desc, "generic app %s: %d ops, %d knob choices", name, n_ops, n_entries);
  }
  if (s != PT_OK) {
    pt_app_free(app);
    return s == PT_ENOMEM ? pt__error(s, "generic app %s: out of memory", name) : s;
  }
  *out = app;
  return PT_OK;
}
