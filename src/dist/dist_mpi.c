/* The dist layer on MPI (predtuner/dist.h, docs/distributed.md). Rank 0 cuts every measurement of
 * n configs into units of consecutive configs (one per rank measuring), keeps one unit in flight on
 * each worker and measures units itself in between (unless master_only); each result is copied to
 * its configs' places, so the answer is the same whatever rank measured what, in whatever order.
 * Waiting ranks poll with short sleeps rather than MPI's busy-waiting receive, so that a rank
 * waiting on a core does not slow the one measuring on it.
 *
 * Messages (MPI_BYTE, COMM_WORLD): a unit (tag UNIT, rank 0 -> worker) is a unit_hdr and the
 * configs' knob positions; a result (tag RESULT) is a result_hdr, qos[n], cost[n] and n
 * pt_config_failure records. A unit of kind STOP ends a worker's service. */
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/app_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/hash.h"
#include "predtuner/dist.h"
#include "predtuner/log.h"

enum { TAG_UNIT = 11, TAG_RESULT = 12 };
enum { KIND_STOP = 0, KIND_MEASURE = 1 };

typedef struct unit_hdr {
  int32_t kind, n, test, has_cost, has_stop, stop_mode, n_ops, pad;
  int64_t first; /* the unit's first config in rank 0's batch */
  double threshold, delta;
} unit_hdr;

typedef struct result_hdr {
  int32_t n, pad;
  int64_t first;
} result_hdr;

struct pt_dist {
  int rank, size, mpi, agreed, agreed_ok, master_only;
  pt_app *app;
  pt_measurer meas;
  int64_t units;  /* rank 0: units sent to workers */
  double comm_s;  /* rank 0: seconds in sending units and taking results (not waiting, not measuring) */
};

static void nap(void) { nanosleep(&(struct timespec){0, 200 * 1000}, NULL); }

static int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

pt_status pt_dist_init(pt_dist **out) {
  pt_dist *d = pt__calloc(1, sizeof *d);
  if (!(*out = d)) return pt__error(PT_ENOMEM, "dist: out of memory");
  d->size = 1;
  if (!launched_by_mpi()) return PT_OK;
  int inited = 0, level = 0;
  MPI_Initialized(&inited);
  /* MPI calls come from the main thread only (OpenMP and CUDA threads never call it) */
  if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &level) != MPI_SUCCESS)
    return pt__error(PT_EBACKEND, "dist: MPI_Init failed");
  d->mpi = !inited + 1; /* 2: we initialised MPI and finalise it */
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->size);
  const char *want = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
  if (want && atoi(want) > 1 && d->size == 1) /* every process would tune alone, each the whole job */
    return pt__error(PT_EBACKEND, "dist: the launcher started %s processes but MPI sees a job of one (a launcher of "
                                  "another MPI library, or srun without --mpi=pmix?)", want);
  return PT_OK;
}

int pt_dist_rank(const pt_dist *d) { return d->rank; }
int pt_dist_size(const pt_dist *d) { return d->size; }

const char *pt_dist_describe(void) {
  static char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  buf[strcspn(buf, "\n,")] = '\0';
  return buf;
}

/* What must be equal on every rank: the app's fingerprint parts and its shape. */
static uint64_t app_identity(const pt_app *app) {
  uint64_t h = pt__hash_u64(pt__hash_u64(PT__HASH_INIT, (uint64_t)app->n_ops), (uint64_t)app->n_entries);
  for (int i = 0; i < PT__FP_N; i++) h = pt__hash_u64(h, app->fp[i]);
  return h;
}

typedef struct agree_msg {
  int32_t status, pad;
  uint64_t identity;
  char msg[240];
} agree_msg;

pt_status pt_dist_agree(pt_dist *d, pt_status s, pt_app *app) {
  d->agreed = 1;
  d->app = s == PT_OK ? app : NULL;
  if (d->size == 1) return d->agreed_ok = s == PT_OK, s;
  agree_msg mine = {.status = s, .identity = s == PT_OK && app ? app_identity(app) : 0}, *all;
  snprintf(mine.msg, sizeof mine.msg, "%s", s == PT_OK ? "" : pt_last_error());
  if (!(all = pt__calloc((size_t)d->size, sizeof *all))) MPI_Abort(MPI_COMM_WORLD, 1); /* the job cannot agree */
  MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all, sizeof mine, MPI_BYTE, MPI_COMM_WORLD);
  pt_status r = PT_OK;
  for (int k = 0; k < d->size && r == PT_OK; k++)
    if (all[k].status != PT_OK)
      r = pt__error((pt_status)all[k].status, "rank %d of %d: %s", k, d->size, all[k].msg[0] ? all[k].msg : "failed");
  for (int k = 1; k < d->size && r == PT_OK; k++)
    if (all[k].identity != all[0].identity)
      r = pt__error(PT_EINVAL, "rank %d of %d made another app than rank 0 (network, weights, data, knobs or how QoS is "
                               "measured differ): start every rank with the same options and files", k, d->size);
  free(all);
  d->agreed_ok = r == PT_OK;
  return r;
}

static void send_unit(pt_dist *d, int to, int64_t first, int m, const uint16_t *cfgs, int test,
                      const pt_stop_rule *stop, int has_cost, unsigned char *buf) {
  const int nops = d->app->n_ops;
  const double t0 = pt_now();
  unit_hdr h = {KIND_MEASURE, m, test, has_cost, stop != NULL, stop ? (int32_t)stop->mode : 0, nops, 0, first,
                stop ? stop->threshold : 0, stop ? stop->delta : 0};
  memcpy(buf, &h, sizeof h);
  memcpy(buf + sizeof h, cfgs + first * nops, (size_t)m * (size_t)nops * sizeof *cfgs);
  MPI_Send(buf, (int)(sizeof h + (size_t)m * (size_t)nops * sizeof *cfgs), MPI_BYTE, to, TAG_UNIT, MPI_COMM_WORLD);
  d->units++;
  d->comm_s += pt_now() - t0;
}

/* A worker's result into its configs' places; the worker it came from. */
static int take_result(int n, double *qos, double *cost, pt_config_failure *fail, unsigned char *buf, size_t cap) {
  MPI_Status st;
  int len = 0;
  MPI_Recv(buf, (int)cap, MPI_BYTE, MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &st);
  MPI_Get_count(&st, MPI_BYTE, &len);
  result_hdr h;
  memcpy(&h, buf, sizeof h);
  if (h.first < 0 || h.n < 0 || h.first + h.n > n ||
      (size_t)len != sizeof h + (size_t)h.n * (2 * sizeof(double) + sizeof(pt_config_failure)))
    MPI_Abort(MPI_COMM_WORLD, 3); /* a protocol error: no guessing */
  const unsigned char *p = buf + sizeof h;
  memcpy(qos + h.first, p, (size_t)h.n * sizeof *qos);
  if (cost) memcpy(cost + h.first, p + (size_t)h.n * sizeof *qos, (size_t)h.n * sizeof *cost);
  memcpy(fail + h.first, p + 2 * (size_t)h.n * sizeof *qos, (size_t)h.n * sizeof *fail);
  return st.MPI_SOURCE;
}

static int dist_measure(void *ctx, pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop,
                        double *qos, double *cost, pt_config_failure *fail) {
  pt_dist *d = ctx;
  const int workers = d->size - 1, parts = d->master_only ? workers : d->size;
  if (workers < 1 || parts < 1 || n < 1) return pt_measure_configs(app, n, cfgs, test, stop, qos, cost, fail);
  const int chunk = n / parts + (n % parts != 0), nops = app->n_ops;
  const size_t ucap = sizeof(unit_hdr) + (size_t)chunk * (size_t)nops * sizeof *cfgs;
  const size_t rcap = sizeof(result_hdr) + (size_t)chunk * (2 * sizeof(double) + sizeof(pt_config_failure));
  unsigned char *ubuf = pt__malloc(ucap), *rbuf = pt__malloc(rcap);
  if (!ubuf || !rbuf || app != d->app || workers < 1) { /* measure here: the answer is the same */
    free(ubuf), free(rbuf);
    return pt_measure_configs(app, n, cfgs, test, stop, qos, cost, fail);
  }
  int64_t next = 0;
  int busy = 0;
  for (int w = 1; w <= workers && next < n; w++, busy++) {
    const int m = (int)(n - next < chunk ? n - next : chunk);
    send_unit(d, w, next, m, cfgs, test, stop, cost != NULL, ubuf);
    next += m;
  }
  while (next < n || busy) {
    if (!d->master_only && next < n) {
      const int m = (int)(n - next < chunk ? n - next : chunk);
      pt_measure_configs(app, m, cfgs + next * nops, test, stop, qos + next, cost ? cost + next : NULL, fail + next);
      next += m;
    }
    for (;;) { /* every result in; a worker that answered gets the next unit */
      int flag = 0;
      MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE);
      if (!flag) {
        if (busy && (d->master_only || next >= n)) {
          nap();
          continue;
        }
        break;
      }
      const double t0 = pt_now();
      const int w = take_result(n, qos, cost, fail, rbuf, rcap);
      d->comm_s += pt_now() - t0;
      busy--;
      if (next < n) {
        const int m = (int)(n - next < chunk ? n - next : chunk);
        send_unit(d, w, next, m, cfgs, test, stop, cost != NULL, ubuf);
        next += m, busy++;
      }
    }
  }
  free(ubuf), free(rbuf);
  int failed = 0;
  for (int k = 0; k < n; k++) failed += fail[k].status != PT_OK && fail[k].status != PT_CONFIG_STOPPED;
  return failed;
}

const pt_measurer *pt_dist_measurer(pt_dist *d, int master_only) {
  if (d->size == 1 || d->rank != 0 || !d->agreed_ok) return NULL;
  d->master_only = master_only;
  d->meas = (pt_measurer){dist_measure, d};
  return &d->meas;
}

/* One unit: measured on this rank's app, answered to rank 0. */
static pt_status serve_unit(pt_dist *d, const unsigned char *buf, int len) {
  unit_hdr h;
  memcpy(&h, buf, sizeof h);
  const pt_app *app = d->app;
  if (h.n < 1 || h.n_ops != app->n_ops || (size_t)len != sizeof h + (size_t)h.n * (size_t)h.n_ops * sizeof(uint16_t))
    return pt__error(PT_EFORMAT, "dist: rank %d got a malformed unit (%d configs of %d ops, %d bytes)", d->rank, h.n,
                     h.n_ops, len);
  const size_t cap = sizeof(result_hdr) + (size_t)h.n * (2 * sizeof(double) + sizeof(pt_config_failure));
  unsigned char *out = pt__calloc(1, cap);
  uint16_t *cfgs = pt__malloc((size_t)h.n * (size_t)h.n_ops * sizeof *cfgs);
  if (!out || !cfgs) {
    free(out), free(cfgs);
    return pt__error(PT_ENOMEM, "dist: rank %d: out of memory for a unit of %d configs", d->rank, h.n);
  }
  memcpy(cfgs, buf + sizeof h, (size_t)h.n * (size_t)h.n_ops * sizeof *cfgs);
  double *qos = (double *)(out + sizeof(result_hdr)), *cost = qos + h.n;
  pt_config_failure *fail = (pt_config_failure *)(cost + h.n);
  const pt_stop_rule rule = {(pt_early_stop)h.stop_mode, h.threshold, h.delta};
  for (int k = 0; k < h.n; k++) cost[k] = NAN, fail[k].status = PT_OK, fail[k].why[0] = '\0';
  pt_measure_configs(d->app, h.n, cfgs, h.test, h.has_stop ? &rule : NULL, qos, h.has_cost ? cost : NULL, fail);
  const result_hdr r = {h.n, 0, h.first};
  memcpy(out, &r, sizeof r);
  MPI_Request req; /* not a blocking send: past the eager limit it would spin until rank 0 takes it */
  MPI_Isend(out, (int)cap, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD, &req);
  for (int done = 0; MPI_Test(&req, &done, MPI_STATUS_IGNORE), !done;) nap();
  free(out), free(cfgs);
  return PT_OK;
}

pt_status pt_dist_serve(pt_dist *d) {
  if (d->size == 1 || d->rank == 0 || !d->agreed_ok) return pt__error(PT_EINVAL, "dist: only an agreed worker serves");
  for (;;) {
    int flag = 0, len = 0;
    MPI_Status st;
    MPI_Iprobe(0, TAG_UNIT, MPI_COMM_WORLD, &flag, &st);
    if (!flag) {
      nap();
      continue;
    }
    MPI_Get_count(&st, MPI_BYTE, &len);
    unsigned char *buf = pt__malloc(len > 0 ? (size_t)len : 1);
    if (!buf) return pt__error(PT_ENOMEM, "dist: rank %d: out of memory for a unit of %d bytes", d->rank, len);
    MPI_Recv(buf, len, MPI_BYTE, 0, TAG_UNIT, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    unit_hdr h;
    memcpy(&h, buf, len >= (int)sizeof h ? sizeof h : 0);
    pt_status s = len < (int)sizeof h ? pt__error(PT_EFORMAT, "dist: rank %d got a %d-byte unit", d->rank, len)
                  : h.kind == KIND_STOP ? PT_OK
                                        : serve_unit(d, buf, len);
    free(buf);
    if (s != PT_OK) return s; /* rank 0 waits for this answer: the caller ends the job (pt_dist_abort) */
    if (h.kind == KIND_STOP) return PT_OK;
  }
}

void pt_dist_stats(const pt_dist *d, int64_t *units, double *comm_seconds) {
  *units = d->units;
  *comm_seconds = d->comm_s;
}

void pt_dist_abort(pt_dist *d, int code) {
  if (d && d->mpi) MPI_Abort(MPI_COMM_WORLD, code);
}

void pt_dist_finish(pt_dist *d) {
  if (!d) return;
  if (d->size > 1) {
    if (!d->agreed) { /* rank 0 (or a worker) failed before it made its app: release the others */
      pt__error(PT_EINVAL, "stopped before making its app");
      pt_dist_agree(d, PT_EINVAL, NULL);
    }
    if (d->rank == 0 && d->agreed_ok) {
      const unit_hdr stop = {.kind = KIND_STOP};
      for (int w = 1; w < d->size; w++) MPI_Send(&stop, sizeof stop, MPI_BYTE, w, TAG_UNIT, MPI_COMM_WORLD);
    }
  }
  if (d->mpi == 2) MPI_Finalize();
  free(d);
}
