/* The C API over MPI (docs/distributed.md, "From C"), and a worker whose backend fails on some
 * configs: every rank makes the same app and joins the job; rank 0 tunes with the job's measurer
 * in pt_tune_opts, the others serve. The app (4 ops of 3 knobs, the whole space of 81 configs
 * searched) measures every config on rank 0 and rank 2, but rank 1's "backend" fails any config with
 * knob 2 on op 0 and knob 1 on op 3 (9 of 81). Run by test_mpi.sh:
 *   mpiexec -np 1 mpi_api OUT              -> 81 evaluated, none failed
 *   mpiexec -np 2 mpi_api OUT master-only  -> rank 1 measures everything: those 9 failed, with its
 *                                             message, the run completes and keeps the rest
 *   mpiexec -np 3 mpi_api OUT some         -> every rank measures: at most those 9 fail (the ones rank
 *                                             1 happened to measure), by the backend, and none is kept
 * Exit 0 when the run and its failures are as said, 1 otherwise (one line on stderr saying why). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predtuner/dist.h"
#include "predtuner/app.h"
#include "predtuner/tuner.h"

static int g_rank;

static int fails_here(const uint16_t *c) { return g_rank == 1 && c[0] == 2 && c[3] == 1; }

static pt_status measure(void *user, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  (void)user, (void)test;
  for (int k = 0; k < n; k++) /* a failing batch: the tuner measures its configs one by one */
    if (fails_here(cfgs + k * 4)) return pt_app_set_error(PT_EBACKEND, "rank 1's backend fails on this config");
  for (int k = 0; k < n; k++) {
    const uint16_t *c = cfgs + k * 4;
    qos[k] = 100 - c[0] - 0.5 * c[1] - 0.25 * c[2] - 0.125 * c[3];
    cost[k] = NAN;
  }
  return PT_OK;
}

static int fail(const char *why, long a, long b) {
  fprintf(stderr, "mpi_api: %s (%ld, expected %ld)\n", why, a, b);
  return 1;
}

/* Rank 0: the tuning, checked. */
static int lead(pt_app *app, pt_dist *d, const char *out, int master_only, int some) {
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 81;
  o.search_batch = 16;
  o.cost_model = PT_COST_LINEAR;
  o.qos_tuner_threshold = 3;
  o.output_dir = out;
  o.overwrite = 1;
  o.measurer = pt_dist_measurer(d, master_only ? PT_DIST_MASTER_ONLY : 0); /* NULL for a job of one: this process */
  pt_tuner *t = NULL;
  pt_status s = pt_tuner_create(app, &t);
  if (s == PT_OK) s = pt_tuner_tune(t, &o);
  if (s != PT_OK) {
    fprintf(stderr, "mpi_api: the tuning failed: %s\n", pt_last_error());
    pt_tuner_free(t);
    return 1;
  }
  const pt_tune_summary *sum = pt_tuner_summary(t);
  const long want = pt_dist_size(d) > 1 && master_only ? 9 : some ? (sum->failed <= 9 ? sum->failed : 9) : 0;
  int rc = 0;
  if (sum->evaluated != 81) rc = fail("configs evaluated", (long)sum->evaluated, 81);
  else if (sum->failed != want) rc = fail("configs failed", (long)sum->failed, want);
  else if (sum->failed_by[-PT_EBACKEND] != want) rc = fail("configs failed by the backend", (long)sum->failed_by[-PT_EBACKEND], want);
  else if (pt_tuner_count(t, PT_KEPT) < 10) rc = fail("kept configs", pt_tuner_count(t, PT_KEPT), 10);
  for (int i = 0; rc == 0 && i < pt_tuner_count(t, PT_KEPT); i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_KEPT, i, &c);
    if (c.knobs[0] == 2 && c.knobs[3] == 1 && master_only && pt_dist_size(d) > 1)
      rc = fail("a config that failed on rank 1 was kept", i, -1);
  }
  if (rc == 0)
    printf("mpi_api: %d ranks%s: %lld evaluated, %lld failed, %d kept\n", pt_dist_size(d),
           master_only ? " (rank 0 only searching)" : "", (long long)sum->evaluated, (long long)sum->failed,
           pt_tuner_count(t, PT_KEPT));
  pt_tuner_free(t);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: mpiexec -np N mpi_api OUT_DIR [master-only|some]\n");
    return 2;
  }
  static const pt_generic_knob k[3] = {{"exact", 1.0}, {"half", 2.0}, {"quarter", 4.0}};
  const pt_generic_op ops[4] = {{"a", 10, 3, k}, {"b", 20, 3, k}, {"c", 30, 3, k}, {"d", 40, 3, k}};
  pt_dist *d = NULL;
  pt_status s = pt_dist_init(&d);
  if (s != PT_OK) {
    fprintf(stderr, "mpi_api: %s\n", pt_last_error());
    return 1;
  }
  g_rank = pt_dist_rank(d);
  pt_app *app = NULL;
  s = pt_app_generic_create("mpi_api", 4, ops, measure, NULL, &app);
  s = pt_dist_agree(d, s, app); /* every rank made the same app, or all stop */
  int rc = 0;
  if (s != PT_OK) {
    if (g_rank == 0) fprintf(stderr, "mpi_api: %s\n", pt_last_error());
    rc = 1;
  } else if (g_rank > 0) {
    if (pt_dist_serve(d) != PT_OK) {
      fprintf(stderr, "mpi_api: rank %d: %s\n", g_rank, pt_last_error());
      pt_dist_abort(d, 1);
    }
  } else {
    rc = lead(app, d, argv[1], argc > 2 && !strcmp(argv[2], "master-only"), argc > 2 && !strcmp(argv[2], "some"));
  }
  pt_app_free(app);
  pt_dist_finish(d);
  return rc;
}
