/* Work units over MPI (predtuner/dist.h, docs/distributed.md). Rank 0 cuts every measurement of n
 * items — configs (search batches, validation, test; PT__UNIT_MEASURE), qos_p1 entries' outputs
 * (PT__UNIT_OUTPUTS), cost_profiled's knobs (PT__UNIT_PROFILE) or the best configs' timings
 * (PT__UNIT_TIME, each unit with the exact network timed beside it) — into units of consecutive items,
 * one per rank measuring, keeps one unit in flight on each worker and measures units itself in
 * between (unless master_only); each result is copied to its items' places, so the answer is the
 * same whatever rank measured what, in whatever order.
 *
 * Messages (MPI_BYTE, COMM_WORLD): a unit (tag UNIT, rank 0 -> worker) is a unit_hdr and its items
 * (configs' knob positions; entries' op and position; knob choices); a result (tag RESULT) is a
 * result_hdr (with the worker's error, if any) and the items' answers: qos[n], cost[n] and n
 * pt_config_failure records; n output tensors; every entry's seconds (NaN where not timed); the
 * exact network's median seconds, the images per run and n configs' median seconds. */
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "dist/dist_internal.h"
#include "predtuner/tuner.h"

_Static_assert(sizeof(int) == sizeof(int32_t), "units carry op numbers as int32_t and the app takes int");

typedef struct unit_hdr {
  int32_t kind, n, test, has_cost, has_stop, stop_mode, n_ops, n_entries;
  int64_t first; /* the unit's first item in rank 0's list */
  double threshold, delta;
} unit_hdr;

typedef struct result_hdr {
  int32_t kind, n;
  int64_t first;
  int32_t status, pad;
  char why[240]; /* the worker's error when status is not PT_OK */
} result_hdr;

/* One measurement of n items, cut into units (rank 0). */
typedef struct job {
  int kind, n, chunk;
  pt_app *app;
  /* PT__UNIT_MEASURE and PT__UNIT_TIME (test: the passes) */
  const uint16_t *cfgs;
  int test;
  const pt_stop_rule *stop;
  double *qos, *cost;
  pt_config_failure *fail;
  /* PT__UNIT_OUTPUTS */
  const int *op, *pos;
  float *const *out;
  /* PT__UNIT_PROFILE (secs: every entry's) and PT__UNIT_TIME (secs: every config's; exact_of: the
   * exact network's time on the rank that timed each config) */
  const int *rep;
  double *secs, *exact_of;
  int64_t images;
  /* progress: prog advanced from done by per items (profile: by entries timed, beyond base) */
  pt_progress *prog;
  int64_t done, per, finished, base;
} job;

/* Bytes of one item of a unit, and of its answer. */
static int carries_configs(int kind) { return kind == PT__UNIT_MEASURE || kind == PT__UNIT_TIME; }
static size_t item_size(int kind, const pt_app *app) {
  return carries_configs(kind) ? (size_t)app->n_ops * sizeof(uint16_t) : 2 * sizeof(int32_t);
}
static size_t item_bytes(const job *j) { return item_size(j->kind, j->app); }
static size_t answer_bytes(int kind, const pt_app *app) {
  return kind == PT__UNIT_MEASURE   ? 2 * sizeof(double) + sizeof(pt_config_failure)
         : kind == PT__UNIT_OUTPUTS ? (size_t)app->out_rows * (size_t)app->out_cols * sizeof(float)
         : kind == PT__UNIT_TIME    ? sizeof(double)
                                    : 0;
}
static size_t result_bytes(int kind, const pt_app *app, int n) {
  return sizeof(result_hdr) + (kind == PT__UNIT_PROFILE ? (size_t)app->n_entries * sizeof(double)
                               : kind == PT__UNIT_TIME  ? (size_t)(n + 2) * sizeof(double) /* exact, images, n */
                                                        : (size_t)n * answer_bytes(kind, app));
}

static void hold(pt_dist *d, int w, int kind, int64_t first, int m, int total) {
  pt__held *h = &d->held[w];
  h->ver++; /* odd: the fault line retries */
  atomic_thread_fence(memory_order_release);
  h->kind = kind, h->seq = kind == PT__UNIT_STOP ? h->seq : ++d->seq, h->first = (sig_atomic_t)first, h->n = m;
  h->total = total;
  atomic_thread_fence(memory_order_release);
  h->ver++;
}

static void send_unit(pt_dist *d, const job *j, int to, int64_t first, int m, unsigned char *buf) {
  const double t0 = pt_now();
  const pt_stop_rule *st = j->stop;
  const unit_hdr h = {j->kind, m, j->test, j->cost != NULL, st != NULL, st ? (int32_t)st->mode : 0, j->app->n_ops,
                      j->app->n_entries, first, st ? st->threshold : 0, st ? st->delta : 0};
  memcpy(buf, &h, sizeof h);
  unsigned char *p = buf + sizeof h;
  if (carries_configs(j->kind)) {
    memcpy(p, j->cfgs + first * j->app->n_ops, (size_t)m * item_bytes(j));
  } else { /* m op numbers (or knob choices), then m positions */
    for (int k = 0; k < m; k++) {
      const int32_t a = j->kind == PT__UNIT_OUTPUTS ? j->op[first + k] : j->rep[first + k],
                    b = j->kind == PT__UNIT_OUTPUTS ? j->pos[first + k] : 0;
      memcpy(p + (size_t)k * sizeof a, &a, sizeof a);
      memcpy(p + (size_t)(m + k) * sizeof b, &b, sizeof b);
    }
  }
  hold(d, to, j->kind, first, m, j->n);
  MPI_Send(buf, (int)(sizeof h + (size_t)m * item_bytes(j)), MPI_BYTE, to, PT__TAG_UNIT, MPI_COMM_WORLD);
  d->units++;
  d->comm_s += pt_now() - t0;
}

static int64_t count_timed(const pt_app *app, const double *secs) {
  int64_t c = 0;
  for (int e = 0; e < app->n_entries; e++) c += !isnan(secs[e]);
  return c;
}

/* Items [first, first + m) measured here. */
static pt_status measure_here(job *j, int64_t first, int m) {
  pt_app *app = j->app;
  const int64_t at = j->done + j->finished * j->per;
  if (j->kind == PT__UNIT_MEASURE) {
    pt_measure_configs(app, m, j->cfgs + first * app->n_ops, j->test, j->stop, j->qos + first,
                       j->cost ? j->cost + first : NULL, j->fail + first);
    j->finished += m;
    return PT_OK;
  }
  if (j->kind == PT__UNIT_OUTPUTS) {
    pt_status s = app->vt->outputs(app, m, j->op + first, j->pos + first, j->out + first, j->prog, at);
    j->finished += m;
    return s;
  }
  if (j->kind == PT__UNIT_TIME) {
    double exact = NAN;
    pt_status s = pt_time_configs(app, m, j->cfgs + first * app->n_ops, j->test, NULL, j->secs + first, &exact, &j->images);
    for (int k = 0; k < m; k++) j->exact_of[first + k] = exact;
    j->finished += m;
    return s;
  }
  const int64_t before = count_timed(app, j->secs) - j->base;
  pt_status s = app->vt->profile(app, m, j->rep + first, j->secs, j->prog, j->done + before);
  j->finished = count_timed(app, j->secs) - j->base;
  return s;
}

/* A worker's result into its items' places: the worker it came from; *err its error (or the
 * first one of the job). A malformed result is a protocol error: no guessing. */
static int take_result(job *j, unsigned char *buf, size_t cap, pt_status *err) {
  MPI_Status st;
  int len = 0;
  MPI_Recv(buf, (int)cap, MPI_BYTE, MPI_ANY_SOURCE, PT__TAG_RESULT, MPI_COMM_WORLD, &st);
  MPI_Get_count(&st, MPI_BYTE, &len);
  result_hdr h;
  memcpy(&h, buf, sizeof h);
  if ((size_t)len < sizeof h || h.kind != j->kind || h.first < 0 || h.n < 1 || h.first + h.n > j->n ||
      (size_t)len != result_bytes(j->kind, j->app, h.n))
    MPI_Abort(MPI_COMM_WORLD, 3);
  const unsigned char *p = buf + sizeof h;
  const size_t n = (size_t)h.n;
  if (h.status != PT_OK) {
    h.why[sizeof h.why - 1] = '\0';
    if (*err == PT_OK) *err = pt__error((pt_status)h.status, "rank %d: %s", st.MPI_SOURCE, h.why);
  } else if (j->kind == PT__UNIT_MEASURE) {
    memcpy(j->qos + h.first, p, n * sizeof *j->qos);
    if (j->cost) memcpy(j->cost + h.first, p + n * sizeof *j->qos, n * sizeof *j->cost);
    memcpy(j->fail + h.first, p + 2 * n * sizeof *j->qos, n * sizeof *j->fail);
  } else if (j->kind == PT__UNIT_OUTPUTS) {
    const size_t per = answer_bytes(j->kind, j->app);
    for (size_t k = 0; k < n; k++) memcpy(j->out[h.first + (int64_t)k], p + k * per, per);
  } else if (j->kind == PT__UNIT_TIME) {
    double exact, images;
    memcpy(&exact, p, sizeof exact);
    memcpy(&images, p + sizeof exact, sizeof images);
    memcpy(j->secs + h.first, p + 2 * sizeof exact, n * sizeof *j->secs);
    for (size_t k = 0; k < n; k++) j->exact_of[h.first + (int64_t)k] = exact;
    j->images = (int64_t)images;
  } else {
    for (int e = 0; e < j->app->n_entries; e++) {
      double v;
      memcpy(&v, p + (size_t)e * sizeof v, sizeof v);
      if (!isnan(v)) j->secs[e] = v;
    }
  }
  j->finished = j->kind == PT__UNIT_PROFILE ? count_timed(j->app, j->secs) - j->base : j->finished + h.n;
  if (j->prog && !carries_configs(j->kind)) pt_progress_update(j->prog, j->done + j->finished * j->per);
  return st.MPI_SOURCE;
}

/* The scheduling loop: every unit sent or measured here, every result in, whatever failed (the
 * workers must be left with nothing in flight). */
static pt_status run_job(pt_dist *d, job *j) {
  const int workers = d->size - 1, parts = d->master_only ? workers : d->size;
  const size_t cap_items = (size_t)1 << 30; /* bytes per message, well under MPI's int counts */
  const size_t per_ans = answer_bytes(j->kind, j->app) ? answer_bytes(j->kind, j->app) : 1;
  int chunk = j->n / parts + (j->n % parts != 0);
  if ((size_t)chunk > cap_items / per_ans) chunk = (int)(cap_items / per_ans) > 0 ? (int)(cap_items / per_ans) : 1;
  j->chunk = chunk;
  const size_t ucap = sizeof(unit_hdr) + (size_t)chunk * item_bytes(j), rcap = result_bytes(j->kind, j->app, chunk);
  if (rcap > (size_t)INT_MAX || ucap > (size_t)INT_MAX)
    return pt__error(PT_ERANGE, "dist: one answer of this app is over 2 GiB: it cannot travel in one message");
  unsigned char *ubuf = pt__malloc(ucap), *rbuf = pt__malloc(rcap);
  if (!ubuf || !rbuf) {
    free(ubuf), free(rbuf);
    return pt__error(PT_ENOMEM, "dist: out of memory for units of %d items", chunk);
  }
  pt_status err = PT_OK;
  int64_t next = 0;
  int busy = 0;
  for (int w = 1; w <= workers && next < j->n; w++, busy++) {
    const int m = (int)(j->n - next < chunk ? j->n - next : chunk);
    send_unit(d, j, w, next, m, ubuf);
    next += m;
  }
  while (next < j->n || busy) {
    if (!d->master_only && next < j->n) {
      const int m = (int)(j->n - next < chunk ? j->n - next : chunk);
      pt_status s = measure_here(j, next, m);
      if (s != PT_OK && err == PT_OK) err = s;
      next += m;
    }
    if (err != PT_OK) next = j->n; /* no new units: only the ones in flight are taken in */
    for (;;) { /* every result in; a worker that answered gets the next unit */
      int flag = 0;
      MPI_Iprobe(MPI_ANY_SOURCE, PT__TAG_RESULT, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
      if (!flag) {
        if (busy && (d->master_only || next >= j->n)) {
          pt__dist_nap();
          continue;
        }
        break;
      }
      const double t0 = pt_now();
      const int w = take_result(j, rbuf, rcap, &err);
      hold(d, w, PT__UNIT_STOP, 0, 0, 0);
      d->comm_s += pt_now() - t0;
      busy--;
      if (err != PT_OK) next = j->n;
      if (next < j->n) {
        const int m = (int)(j->n - next < chunk ? j->n - next : chunk);
        send_unit(d, j, w, next, m, ubuf);
        next += m, busy++;
      }
    }
  }
  free(ubuf), free(rbuf);
  return err;
}

/* Whether a measurement goes to the workers (another app than the agreed one is measured here). */
static int spread(const pt_dist *d, const pt_app *app, int n) { return d->size > 1 && n > 0 && app == d->app; }

static int dist_measure(void *ctx, pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop,
                        double *qos, double *cost, pt_config_failure *fail) {
  pt_dist *d = ctx;
  job j = {.kind = PT__UNIT_MEASURE, .n = n, .app = app, .cfgs = cfgs, .test = test, .stop = stop, .qos = qos,
           .cost = cost, .fail = fail};
  if (!spread(d, app, n) || run_job(d, &j) != PT_OK) /* measured here: the answer is the same */
    return pt_measure_configs(app, n, cfgs, test, stop, qos, cost, fail);
  int failed = 0;
  for (int k = 0; k < n; k++) failed += fail[k].status != PT_OK && fail[k].status != PT_CONFIG_STOPPED;
  return failed;
}

static pt_status dist_outputs(void *ctx, pt_app *app, int n, const int *op, const int *pos, float *const *out,
                              pt_progress *prog, int64_t done) {
  pt_dist *d = ctx;
  if (!spread(d, app, n)) return app->vt->outputs(app, n, op, pos, out, prog, done);
  job j = {.kind = PT__UNIT_OUTPUTS, .n = n, .app = app, .op = op, .pos = pos, .out = out, .prog = prog,
           .done = done, .per = app->out_rows};
  return run_job(d, &j);
}

static pt_status dist_profile(void *ctx, pt_app *app, int n, const int *knob_entry, double *entry_seconds,
                              pt_progress *prog, int64_t done) {
  pt_dist *d = ctx;
  if (!spread(d, app, n)) return app->vt->profile(app, n, knob_entry, entry_seconds, prog, done);
  job j = {.kind = PT__UNIT_PROFILE, .n = n, .app = app, .rep = knob_entry, .secs = entry_seconds, .prog = prog,
           .done = done, .per = 1, .base = count_timed(app, entry_seconds)}; /* a stored file's entries are not this job's */
  return run_job(d, &j);
}

/* The best configs' times: each unit timed in one sitting with the exact network beside it, every
 * config's time then scaled to one unit's device (pt__dist_scale_times), so the speedups compare
 * one device's times. */
static pt_status dist_time(void *ctx, pt_app *app, int n, const uint16_t *cfgs, int passes, FILE *progress,
                           double *seconds, double *exact, int64_t *images) {
  pt_dist *d = ctx;
  if (!spread(d, app, n)) return pt_time_configs(app, n, cfgs, passes, progress, seconds, exact, images);
  double *exact_of = pt__malloc((size_t)n * sizeof *exact_of);
  if (!exact_of) return pt__error(PT_ENOMEM, "dist: out of memory for %d timed configs", n);
  job j = {.kind = PT__UNIT_TIME, .n = n, .app = app, .cfgs = cfgs, .test = passes, .secs = seconds, .exact_of = exact_of};
  for (int k = 0; k < n; k++) seconds[k] = exact_of[k] = NAN;
  pt_status s = run_job(d, &j);
  *images = j.images;
  pt__dist_scale_times(n, seconds, exact_of, exact);
  free(exact_of);
  return s;
}

const pt_measurer *pt_dist_measurer(pt_dist *d, int flags) {
  if (d->size == 1 || d->rank != 0 || !d->agreed_ok) return NULL;
  d->master_only = (flags & PT_DIST_MASTER_ONLY) != 0;
  d->time_shared = (flags & PT_DIST_TIME_SHARED) != 0;
  const pt_app *app = d->app;
  const int timings = d->all_exclusive || d->time_shared; /* else rank 0 times alone: no two ranks on one device */
  d->meas = (pt_measurer){.measure = dist_measure, .ctx = d, .outputs = app->vt->outputs ? dist_outputs : NULL,
                          .profile = app->vt->profile && timings ? dist_profile : NULL,
                          .time = app->vt->time && timings ? dist_time : NULL,
                          .width = d->master_only ? d->size - 1 : d->size};
  return &d->meas;
}

/* ---- a worker ---- */

/* One unit's answer into out (result_bytes of it, header first). */
static pt_status answer(pt_dist *d, const unit_hdr *h, const unsigned char *items, unsigned char *out) {
  pt_app *app = d->app;
  unsigned char *p = out + sizeof(result_hdr);
  const int n = h->n;
  if (h->kind == PT__UNIT_TIME) {
    uint16_t *cfgs = pt__malloc((size_t)n * (size_t)app->n_ops * sizeof *cfgs);
    if (!cfgs) return pt__error(PT_ENOMEM, "dist: rank %d: out of memory for a unit of %d configs", d->rank, n);
    memcpy(cfgs, items, (size_t)n * (size_t)app->n_ops * sizeof *cfgs);
    double *out_d = (double *)(void *)p, exact = NAN;
    int64_t images = 0;
    pt_status s = pt_time_configs(app, n, cfgs, h->test, NULL, out_d + 2, &exact, &images);
    out_d[0] = exact, out_d[1] = (double)images;
    free(cfgs);
    return s;
  }
  if (h->kind == PT__UNIT_MEASURE) {
    uint16_t *cfgs = pt__malloc((size_t)n * (size_t)app->n_ops * sizeof *cfgs);
    if (!cfgs) return pt__error(PT_ENOMEM, "dist: rank %d: out of memory for a unit of %d configs", d->rank, n);
    memcpy(cfgs, items, (size_t)n * (size_t)app->n_ops * sizeof *cfgs);
    double *qos = (double *)p, *cost = qos + n;
    pt_config_failure *fail = (pt_config_failure *)(cost + n);
    const pt_stop_rule rule = {(pt_early_stop)h->stop_mode, h->threshold, h->delta};
    for (int k = 0; k < n; k++) cost[k] = NAN, fail[k].status = PT_OK, fail[k].why[0] = '\0';
    pt_measure_configs(app, n, cfgs, h->test, h->has_stop ? &rule : NULL, qos, h->has_cost ? cost : NULL, fail);
    for (int k = 0; k < n; k++) /* the journal says where a config failed: a rank's own device or files */
      if (fail[k].status != PT_OK && fail[k].status != PT_CONFIG_STOPPED) {
        char why[sizeof fail[k].why];
        memcpy(why, fail[k].why, sizeof why);
        snprintf(fail[k].why, sizeof fail[k].why, "rank %d: %.*s", d->rank, (int)sizeof why - 12, why);
      }
    free(cfgs);
    return PT_OK;
  }
  int32_t *a = pt__malloc(2 * (size_t)n * sizeof *a);
  float **outs = h->kind == PT__UNIT_OUTPUTS ? pt__malloc((size_t)n * sizeof *outs) : NULL;
  pt_status s = a && (outs || h->kind != PT__UNIT_OUTPUTS) ? PT_OK
                                                           : pt__error(PT_ENOMEM, "dist: rank %d: out of memory", d->rank);
  const int *op = a, *pos = a ? a + n : NULL; /* int is int32_t on every platform built for */
  if (s == PT_OK) memcpy(a, items, 2 * (size_t)n * sizeof *a);
  for (int k = 0; s == PT_OK && k < n; k++)
    if (op[k] < (h->kind == PT__UNIT_OUTPUTS ? -1 : 0) ||
        op[k] >= (h->kind == PT__UNIT_OUTPUTS ? app->n_ops : app->n_entries) ||
        (h->kind == PT__UNIT_OUTPUTS && op[k] >= 0 && (pos[k] < 0 || pos[k] >= app->n_knobs[op[k]])))
      s = pt__error(PT_EFORMAT, "dist: rank %d got a unit naming no knob choice of this app", d->rank);
  if (s == PT_OK && h->kind == PT__UNIT_OUTPUTS) {
    const size_t per = answer_bytes(PT__UNIT_OUTPUTS, app);
    for (int k = 0; k < n; k++) outs[k] = (float *)(void *)(p + (size_t)k * per); /* float-aligned: the header is */
    s = app->vt->outputs(app, n, op, pos, outs, NULL, 0);
  } else if (s == PT_OK) {
    double *secs = (double *)(void *)p;
    for (int e = 0; e < app->n_entries; e++) secs[e] = NAN;
    s = app->vt->profile(app, n, op, secs, NULL, 0);
  }
  free(a);
  free(outs);
  return s;
}

/* One unit: measured on this rank's app, answered to rank 0 (with the error, when it failed). */
static pt_status serve_unit(pt_dist *d, const unsigned char *buf, int len) {
  unit_hdr h;
  memcpy(&h, buf, sizeof h);
  const pt_app *app = d->app;
  const size_t item = item_size(h.kind, app);
  if (h.n < 1 || h.kind < PT__UNIT_MEASURE || h.kind > PT__UNIT_TIME || h.n_ops != app->n_ops ||
      h.n_entries != app->n_entries || (h.kind == PT__UNIT_OUTPUTS && !app->vt->outputs) ||
      (h.kind == PT__UNIT_PROFILE && !app->vt->profile) || (h.kind == PT__UNIT_TIME && (!app->vt->time || h.test < 1)) ||
      (size_t)len != sizeof h + (size_t)h.n * item)
    return pt__error(PT_EFORMAT, "dist: rank %d got a malformed unit (kind %d, %d items of %d ops, %d bytes)", d->rank,
                     h.kind, h.n, h.n_ops, len);
  const size_t cap = result_bytes(h.kind, app, h.n);
  unsigned char *out = pt__calloc(1, cap);
  if (!out) return pt__error(PT_ENOMEM, "dist: rank %d: out of memory for the answer to %d items", d->rank, h.n);
  pt_status s = answer(d, &h, buf + sizeof h, out);
  result_hdr r = {h.kind, h.n, h.first, s, 0, ""};
  if (s != PT_OK) snprintf(r.why, sizeof r.why, "%s", pt_last_error());
  memcpy(out, &r, sizeof r);
  MPI_Request req; /* not a blocking send: past the eager limit it would spin until rank 0 takes it */
  MPI_Isend(out, (int)cap, MPI_BYTE, 0, PT__TAG_RESULT, MPI_COMM_WORLD, &req);
  for (int done = 0; MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done;) pt__dist_nap();
  free(out);
  return PT_OK; /* the unit's own failure went to rank 0, which decides */
}

pt_status pt_dist_serve(pt_dist *d) {
  if (d->size == 1 || d->rank == 0 || !d->agreed_ok) return pt__error(PT_EINVAL, "dist: only an agreed worker serves");
  for (;;) {
    int flag = 0, len = 0;
    MPI_Status st;
    MPI_Iprobe(0, PT__TAG_UNIT, MPI_COMM_WORLD, &flag, &st);
    if (!flag) {
      pt__dist_nap();
      continue;
    }
    MPI_Get_count(&st, MPI_BYTE, &len);
    unsigned char *buf = pt__malloc(len > 0 ? (size_t)len : 1);
    if (!buf) return pt__error(PT_ENOMEM, "dist: rank %d: out of memory for a unit of %d bytes", d->rank, len);
    MPI_Recv(buf, len, MPI_BYTE, 0, PT__TAG_UNIT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    unit_hdr h;
    memcpy(&h, buf, len >= (int)sizeof h ? sizeof h : 0);
    pt_status s = len < (int)sizeof h ? pt__error(PT_EFORMAT, "dist: rank %d got a %d-byte unit", d->rank, len)
                  : h.kind == PT__UNIT_STOP ? PT_OK
                                            : serve_unit(d, buf, len);
    free(buf);
    if (s != PT_OK) return s; /* rank 0 waits for this answer: the caller ends the job (pt_dist_abort) */
    if (h.kind == PT__UNIT_STOP) return PT_OK;
  }
}

void pt__dist_stop_workers(pt_dist *d) {
  const unit_hdr stop = {.kind = PT__UNIT_STOP};
  for (int w = 1; w < d->size; w++) MPI_Send(&stop, sizeof stop, MPI_BYTE, w, PT__TAG_UNIT, MPI_COMM_WORLD);
}
