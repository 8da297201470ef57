/* The models of a tuning run and the evaluation of a batch of configs (tuner/evaluator.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/backend.h"
#include "predtuner/log.h"
#include "tuner/evaluator.h"

static const char *const QOS_NAMES[] = {"empirical", "qos_p1", "qos_p2"};
static const char *const COST_NAMES[] = {"empirical", "cost_linear", "cost_profiled"};
#define N_OF(a) ((int)(sizeof a / sizeof a[0]))

const char *pt_qos_model_name(pt_qos_model m) { return (int)m >= 0 && (int)m < N_OF(QOS_NAMES) ? QOS_NAMES[m] : NULL; }
const char *pt_cost_model_name(pt_cost_model m) {
  return (int)m >= 0 && (int)m < N_OF(COST_NAMES) ? COST_NAMES[m] : NULL;
}

static int find(const char *const *names, int n, const char *name) {
  for (int i = 0; name && i < n; i++)
    if (!strcmp(names[i], name)) return i;
  return -1;
}
int pt_qos_model_parse(const char *name) { return find(QOS_NAMES, N_OF(QOS_NAMES), name); }
int pt_cost_model_parse(const char *name) { return find(COST_NAMES, N_OF(COST_NAMES), name); }

void pt__eval_free(pt__evaluator *ev) {
  pt__p1_free(&ev->p1);
  pt__p2_free(&ev->p2);
  free(ev->cost_tbl);
  free(ev->search_cost);
  free(ev->search_loss);
  memset(ev, 0, sizeof *ev);
}

/* The QoS model, moved onto the app's backend when that backend scores P1 on its device. */
static pt_status init_qos(pt__evaluator *ev, const pt_tune_opts *o, const char *storage, double baseline_qos) {
  pt_app *app = ev->app;
  if (ev->qos == PT_QOS_EMPIRICAL) return PT_OK;
  pt_log(PT_LOG_INFO, "initialising QoS model %s (storage %s)", pt_qos_model_name(ev->qos), storage ? storage : "none");
  if (ev->qos == PT_QOS_P2) {
    const double t0 = pt_now();
    PT__TRY(pt__p2_init(app, storage, o->force_reinit, o->progress, o->measurer, &ev->p2));
    pt_log(PT_LOG_INFO, "qos_p2 ready in %.2f s", pt_now() - t0);
    /* a stored model must agree with what the exact network measures now (half a point: discrete
     * accuracies may flip an image on a nondeterministic device) */
    if (isfinite(baseline_qos) && !(fabs(ev->p2.q0 - baseline_qos) <= 0.5))
      return pt__error(PT_ESTALE, "%s/p2.json: its exact QoS (bqos) is %g but the exact network measures %g on the tune "
                                  "set; --force-reinit rebuilds it", storage ? storage : ".", ev->p2.q0, baseline_qos);
    return PT_OK;
  }
  const double t0 = pt_now();
  PT__TRY(pt__p1_init(app, storage, o->force_reinit, o->progress, o->measurer, &ev->p1));
  pt_log(PT_LOG_INFO, "qos_p1 ready in %.2f s", pt_now() - t0);
  if (app->be) {
    if (pt__p1_attach(&ev->p1, app->be) == PT_OK) pt_log(PT_LOG_INFO, "qos_p1 predicts on %s", pt_backend_name(app->be));
    else pt_log(PT_LOG_DEBUG, "qos_p1 predicts on the CPU: %s", pt_last_error());
  }
  return PT_OK;
}

/* search_loss: per entry, the QoS the model says that (op, knob) alone loses. */
static pt_status init_search_loss(pt__evaluator *ev) {
  pt_app *app = ev->app;
  for (int e = 0; e < app->n_entries; e++) ev->search_loss[e] = NAN;
  if (ev->qos == PT_QOS_P2)
    for (int e = 0; e < app->n_entries; e++) ev->search_loss[e] = ev->p2.q0 - ev->p2.q[e];
  if (ev->qos != PT_QOS_P1) return PT_OK;
  uint16_t *c = pt__calloc((size_t)app->n_entries * (size_t)app->n_ops, sizeof *c);
  double *q = pt__malloc((size_t)app->n_entries * sizeof *q), q0;
  if (!c || !q) {
    free(c), free(q);
    return pt__error(PT_ENOMEM, "tuner: out of memory for the per-knob QoS losses (%d knob choices)", app->n_entries);
  }
  for (int op = 0; op < app->n_ops; op++)
    for (int p = 0; p < app->n_knobs[op]; p++) c[(int64_t)(app->entry_off[op] + p) * app->n_ops + op] = (uint16_t)p;
  pt_status s = pt__p1_predict(app, &ev->p1, app->n_entries, c, q);
  memset(c, 0, (size_t)app->n_ops * sizeof *c);
  if (s == PT_OK) s = pt__p1_predict(app, &ev->p1, 1, c, &q0);
  for (int e = 0; s == PT_OK && e < app->n_entries; e++) ev->search_loss[e] = q0 - q[e];
  free(c), free(q);
  return s;
}

const char *pt__eval_storage(const pt_tune_opts *o, char *buf, size_t n) {
  if (o->model_storage && o->model_storage[0]) snprintf(buf, n, "%s", o->model_storage);
  else if (o->output_dir && o->output_dir[0]) snprintf(buf, n, "%s/models", o->output_dir);
  else return NULL;
  return buf;
}

pt_status pt__eval_init(pt__evaluator *ev, pt_app *app, const pt_tune_opts *o, const char *storage,
                        double baseline_qos) {
  memset(ev, 0, sizeof *ev);
  ev->app = app;
  if (!pt_qos_model_name(o->qos_model))
    return pt__error(PT_EINVAL, "unknown QoS model %d (qos_p1, qos_p2, or empirical)", (int)o->qos_model);
  if (!pt_cost_model_name(o->cost_model))
    return pt__error(PT_EINVAL, "unknown cost model %d (cost_linear, cost_profiled, or empirical)", (int)o->cost_model);
  ev->qos = o->qos_model;
  ev->cost = o->cost_model;
  ev->meas = o->measurer;
  const size_t ne = (size_t)app->n_entries;
  ev->search_cost = pt__malloc((ne ? ne : 1) * sizeof *ev->search_cost);
  ev->search_loss = pt__malloc((ne ? ne : 1) * sizeof *ev->search_loss);
  if (ev->cost != PT_COST_EMPIRICAL) ev->cost_tbl = pt__malloc((ne ? ne : 1) * sizeof *ev->cost_tbl);
  if (!ev->search_cost || !ev->search_loss || (ev->cost != PT_COST_EMPIRICAL && !ev->cost_tbl))
    return pt__error(PT_ENOMEM, "tuner: out of memory for the model tables (%d knob choices)", app->n_entries);
  PT__TRY(init_qos(ev, o, storage, baseline_qos));
  PT__TRY(pt__cost_linear(app, ev->search_cost));
  if (ev->cost == PT_COST_LINEAR) memcpy(ev->cost_tbl, ev->search_cost, ne * sizeof *ev->search_cost);
  if (ev->cost == PT_COST_PROFILED) {
    const double t0 = pt_now();
    PT__TRY(pt__cost_profiled(app, storage, o->force_reinit, o->progress, o->measurer, ev->cost_tbl));
    pt_log(PT_LOG_INFO, "cost_profiled ready in %.2f s", pt_now() - t0);
  }
  if (ev->cost_tbl) memcpy(ev->search_cost, ev->cost_tbl, ne * sizeof *ev->search_cost);
  return init_search_loss(ev);
}

pt_status pt__eval_cost_reference(pt__evaluator *ev, double exact_cost, double *exact_speedup) {
  pt_app *app = ev->app;
  *exact_speedup = NAN;
  if (ev->cost_tbl) {
    double base = 0, exact = 0;
    for (int op = 0; op < app->n_ops; op++) {
      base += ev->cost_tbl[app->entry_off[op]];
      exact += app->op_cost[op];
    }
    ev->base_cost = base;
    if (ev->cost == PT_COST_LINEAR) *exact_speedup = exact / base;
  } else {
    uint16_t *zeros = pt__calloc((size_t)app->n_ops, sizeof *zeros);
    if (!zeros) return pt__error(PT_ENOMEM, "tuner: out of memory");
    double q;
    pt_status s = pt_app_measure(app, 1, zeros, 0, &q, &ev->base_cost);
    free(zeros);
    PT__TRY(s);
    *exact_speedup = exact_cost / ev->base_cost;
  }
  if (!(ev->base_cost > 0))
    return pt__error(PT_ERANGE, "the baseline config's cost is %g; costs must be positive", ev->base_cost);
  return PT_OK;
}

static void set_fail(pt__fail *f, pt_status st, const char *why) {
  f->status = st;
  snprintf(f->why, sizeof f->why, "%s", why && why[0] ? why : pt_status_str(st));
}

/* A measured config whose numbers cannot be right fails: NaN or infinite QoS, a cost that is not a
 * positive number. A stopped one has a finite bound as QoS and a cost from its part of the set. */
static int check_results(int n, double *qos, double *cost, pt__fail *fail) {
  int failed = 0;
  for (int k = 0; k < n; k++) {
    if (fail[k].status == PT__STOPPED) continue;
    if (fail[k].status == PT_OK && !isfinite(qos[k]))
      set_fail(&fail[k], PT_ENONFINITE, "non-finite QoS (the output holds NaN or infinity)");
    else if (fail[k].status == PT_OK && cost && !(cost[k] > 0 && isfinite(cost[k]))) {
      char why[96];
      snprintf(why, sizeof why, "measured cost %g is not a positive number", cost[k]);
      set_fail(&fail[k], PT_ERANGE, why);
    }
    if (fail[k].status != PT_OK) {
      qos[k] = NAN;
      if (cost) cost[k] = NAN;
      failed++;
    }
  }
  return failed;
}

/* One measurement of n configs (with early stopping when stop says so); stopped ones marked. */
static pt_status measure(pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop, double *qos,
                         double *cost, pt__fail *fail) {
  if (test || !stop || stop->mode == PT_EARLY_STOP_OFF) return pt_app_measure(app, n, cfgs, test, qos, cost);
  uint8_t one, *stopped = n > 1 ? pt__malloc((size_t)n) : &one;
  if (!stopped) return pt__error(PT_ENOMEM, "tuner: out of memory");
  pt_status s = pt__app_measure_stop(app, n, cfgs, stop, qos, cost, stopped);
  for (int k = 0; s == PT_OK && k < n; k++)
    if (stopped[k]) {
      fail[k].status = PT__STOPPED;
      snprintf(fail[k].why, sizeof fail[k].why, "stopped early (%s): its QoS can be at most %.4f, not above the threshold "
               "%.4f", pt_early_stop_name(stop->mode), qos[k], stop->threshold);
    }
  if (stopped != &one) free(stopped);
  return s;
}

int pt_measure_configs(pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop, double *qos,
                       double *cost, pt__fail *fail) {
  for (int k = 0; k < n; k++) fail[k].status = PT_OK, fail[k].why[0] = '\0';
  const pt_status sb = measure(app, n, cfgs, test, stop, qos, cost, fail);
  if (sb != PT_OK) { /* a config fails with its own status, whatever batch it came in (one alone included) */
    if (n > 1) pt_log(PT_LOG_WARN, "a batch of %d configs failed (%s); measuring them one by one", n, pt_last_error());
    for (int k = 0; k < n; k++) {
      fail[k].status = PT_OK;
      pt_status st = n > 1 ? measure(app, 1, cfgs + (int64_t)k * app->n_ops, test, stop, &qos[k], cost ? &cost[k] : NULL,
                                     &fail[k])
                           : sb;
      if (st != PT_OK) set_fail(&fail[k], st, pt_last_error());
    }
  }
  return check_results(n, qos, cost, fail);
}

int pt__measure_via(const pt_measurer *m, pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop,
                    double *qos, double *cost, pt__fail *fail) {
  if (!m || !m->measure) return pt_measure_configs(app, n, cfgs, test, stop, qos, cost, fail);
  for (int k = 0; k < n; k++) fail[k].status = PT_OK, fail[k].why[0] = '\0';
  return m->measure(m->ctx, app, n, cfgs, test, stop, qos, cost, fail);
}

int pt__eval_batch(pt__evaluator *ev, int n, const uint16_t *cfgs, double *qos, double *cost, pt__fail *fail) {
  pt_app *app = ev->app;
  for (int k = 0; k < n; k++) fail[k].status = PT_OK, fail[k].why[0] = '\0';
  /* QoS alone when a model gives the cost: the DNN app then shares common prefixes untimed */
  if (ev->qos == PT_QOS_EMPIRICAL || !ev->cost_tbl)
    pt__measure_via(ev->meas, app, n, cfgs, 0, &ev->stop, qos, ev->cost_tbl ? NULL : cost, fail);
  pt_status s = PT_OK;
  if (ev->qos == PT_QOS_P1) s = pt__p1_predict(app, &ev->p1, n, cfgs, qos);
  if (ev->qos == PT_QOS_P2) pt__p2_predict(app, &ev->p2, n, cfgs, qos);
  if (s != PT_OK) return (int)s;
  for (int k = 0; k < n; k++) {
    if (ev->cost_tbl) {
      const uint16_t *c = cfgs + (int64_t)k * app->n_ops;
      double sum = 0;
      for (int op = 0; op < app->n_ops; op++) sum += ev->cost_tbl[app->entry_off[op] + c[op]];
      cost[k] = sum;
    }
    cost[k] /= ev->base_cost;
  }
  return check_results(n, qos, cost, fail);
}
