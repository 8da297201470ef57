/* Search throughput in configs per second (issue 4's benchmark): the full ask -> evaluate -> tell
 * loop of the search engine with qos_p1, qos_p2 (tables of the real shapes filled with random
 * values) and cost_linear, and with empirical measurement, on the bundled demo (LeNet, 1000 tune
 * images, knob set "any") and on vgg16_cifar10 (random weights, 5000 random tune images, the
 * backend's knob set).
 *
 * With --backend cuda the DNN apps run on the GPU (empirical QoS) and P1 is also measured on the
 * device: the predictor alone on batches of 4096 random configs, and inside the search loop.
 *
 * Empirical QoS is measured one config at a time (with its wall time, as empirical cost does) and
 * in search batches (QoS only, cost from cost_linear; 4x --empirical-configs configs in batches of
 * --empirical-batch), where configs share common prefixes.
 *
 *   bench_tune [--threads N] [--backend cpu|cuda] [--p1-configs N] [--p2-configs N] [--empirical-configs N]
 *              [--empirical-batch N] */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app_internal.h"
#include "backend/backend_ext.h"
#include "bench_data.h"
#include "models/models.h"
#include "predtuner/predtuner.h"

static int threads = 2;
static const char *backend_name = "cpu";
static long p1_configs = 20000, p2_configs = 1000000, emp_configs = 2;
static int emp_batch = 64;
static long prefix_ops, all_ops; /* empirical batches: ops in the prefix tree, ops without sharing */

static int cmp_n_ops;
static int cmp_cfg(const void *a, const void *b) { return memcmp(a, b, sizeof(uint16_t) * (size_t)cmp_n_ops); }

/* How many ops a prefix-sharing evaluation of the batch runs (configs sorted, each one running
 * from its first op that differs from the previous config; op order = app op order = execution
 * order for the zoo networks). */
static void count_sharing(const pt_app *app, int n, uint16_t *cfg) {
  cmp_n_ops = app->n_ops;
  qsort(cfg, (size_t)n, sizeof(uint16_t) * (size_t)app->n_ops, cmp_cfg);
  for (int k = 0; k < n; k++) {
    int q = 0;
    if (k > 0)
      while (q < app->n_ops && cfg[(int64_t)k * app->n_ops + q] == cfg[(int64_t)(k - 1) * app->n_ops + q]) q++;
    prefix_ops += app->n_ops - q;
    all_ops += app->n_ops;
  }
}

typedef enum { QOS_P1, QOS_P2, QOS_EMPIRICAL } qos_kind;

static double run_loop(pt_app *app, qos_kind kind, const pt__p1 *p1, const pt__p2 *p2, long *np, int batch) {
  /* stay well inside the space: near exhaustion the search measures its duplicate avoidance instead */
  long n = *np;
  if ((double)n > pt_app_space_size(app) / 8) n = *np = (long)(pt_app_space_size(app) / 8);
  int *nk = malloc(sizeof(int) * app->n_ops);
  for (int op = 0; op < app->n_ops; op++) nk[op] = app->n_knobs[op];
  double *cost_tbl = malloc(sizeof(double) * app->n_entries);
  pt__cost_linear(app, cost_tbl);
  pt_search *s;
  if (pt_search_create(app->n_ops, nk, 1, &s) != PT_OK) exit(1);
  pt_search_set_threshold(s, 90.0);
  pt_search_set_tables(s, NULL, cost_tbl);
  uint16_t *cfg = malloc(sizeof(uint16_t) * (size_t)batch * app->n_ops);
  double *q = malloc(sizeof(double) * batch), *c = malloc(sizeof(double) * batch);
  long done = 0;
  double t0 = pt_now();
  while (done < n) {
    int got = pt_search_ask(s, n - done < batch ? (int)(n - done) : batch, cfg);
    if (got < 0) {
      fprintf(stderr, "bench_tune: %s\n", pt_last_error());
      exit(1);
    }
    if (!got) break;
    pt_status st = PT_OK;
    if (kind == QOS_P1) st = pt__p1_predict(app, p1, got, cfg, q);
    else if (kind == QOS_P2) pt__p2_predict(app, p2, got, cfg, q);
    else st = app->vt->measure(app, got, cfg, 0, q, batch == 1 ? c : NULL); /* batches: QoS only */
    if (st != PT_OK) {
      fprintf(stderr, "bench_tune: %s\n", pt_last_error());
      exit(1);
    }
    for (int k = 0; k < got; k++) {
      double sum = 0;
      for (int op = 0; op < app->n_ops; op++) sum += cost_tbl[app->entry_off[op] + cfg[(int64_t)k * app->n_ops + op]];
      c[k] = sum;
    }
    pt_search_tell(s, got, cfg, q, c);
    if (kind == QOS_EMPIRICAL && batch > 1) count_sharing(app, got, cfg); /* after tell: sorting reorders */
    done += got;
  }
  double el = pt_now() - t0;
  pt_search_free(s);
  free(nk), free(cost_tbl), free(cfg), free(q), free(c);
  return done / el;
}

static void bench_app(pt_app *app, const char *label) {
  pt_rng r;
  pt_rng_seed(&r, 5);
  int rows = app->out_rows, cols = app->out_cols;
  size_t per = (size_t)rows * cols;
  float *base = malloc(sizeof(float) * per);
  int32_t *labels = malloc(sizeof(int32_t) * rows);
  for (size_t i = 0; i < per; i++) base[i] = pt_rng_range(&r, -1, 1);
  for (int i = 0; i < rows; i++) labels[i] = (int32_t)pt_rng_below(&r, (uint64_t)cols);
  const float **d = calloc((size_t)app->n_entries, sizeof *d);
  int nonzero = 0;
  for (int op = 0; op < app->n_ops; op++)
    for (int p = 1; p < app->n_knobs[op]; p++) { /* position 0 (the baseline) is exact: zero delta */
      float *t = malloc(sizeof(float) * per);
      for (size_t i = 0; i < per; i++) t[i] = pt_rng_range(&r, -0.1f, 0.1f);
      d[app->entry_off[op] + p] = t;
      nonzero++;
    }
  pt__p1 p1;
  if (pt__p1_from_tensors(app, rows, cols, base, d, labels, &p1) != PT_OK) exit(1);
  pt__p2 p2 = {95.0, malloc(sizeof(double) * app->n_entries)};
  for (int e = 0; e < app->n_entries; e++) p2.q[e] = 95.0 - pt_rng_range(&r, 0, 2);
  printf("%s: %d ops, %d knob choices (%d non-zero P1 deltas of %dx%d, %.1f MB), space %.3g configs\n", label,
         app->n_ops, app->n_entries, nonzero, rows, cols, (double)nonzero * per * 4 / 1e6, pt_app_space_size(app));
  long n2 = p2_configs, n1 = p1_configs, ne = emp_configs;
  double r2 = run_loop(app, QOS_P2, NULL, &p2, &n2, 256);
  printf("  qos_p2 + cost_linear   %12.0f configs/s  (%ld configs, search batch 256)\n", r2, n2);
  double r1 = run_loop(app, QOS_P1, &p1, NULL, &n1, 256);
  printf("  qos_p1 + cost_linear   %12.0f configs/s  (%ld configs, search batch 256, %d threads)\n", r1, n1,
         omp_get_max_threads());
  if (pt__backend_has_p1(app->be)) {
    pt__p1 p1g;
    if (pt__p1_from_tensors(app, rows, cols, base, d, labels, &p1g) != PT_OK || pt__p1_attach(&p1g, app->be) != PT_OK) {
      fprintf(stderr, "bench_tune: P1 on %s: %s\n", pt_backend_name(app->be), pt_last_error());
      exit(1);
    }
    /* the predictor alone: batches of random configs, checked against the CPU predictor once */
    const int nb = 4096;
    uint16_t *cf = malloc(sizeof(uint16_t) * (size_t)nb * app->n_ops);
    double *qg = malloc(sizeof(double) * nb), *qc = malloc(sizeof(double) * nb);
    for (int k = 0; k < nb; k++)
      for (int op = 0; op < app->n_ops; op++) cf[(size_t)k * app->n_ops + op] = (uint16_t)pt_rng_below(&r, app->n_knobs[op]);
    pt__p1_predict(app, &p1g, nb, cf, qg);
    pt__p1_predict(app, &p1, 256, cf, qc);
    for (int k = 0; k < 256; k++)
      if (qg[k] != qc[k]) {
        fprintf(stderr, "bench_tune: GPU P1 differs from CPU P1 at config %d (%.6f vs %.6f)\n", k, qg[k], qc[k]);
        exit(1);
      }
    /* both CUDA kernels (llm.c style: the simplest is the reference), each checked, then timed */
    for (int v = 1; v <= 2; v++) {
      setenv("PT_CUDA_P1_KERNEL", v == 1 ? "1" : "2", 1);
      pt__p1_predict(app, &p1g, nb, cf, qg);
      for (int k = 0; k < 256; k++)
        if (qg[k] != qc[k]) {
          fprintf(stderr, "bench_tune: GPU P1 kernel %d differs from CPU P1 at config %d\n", v, k);
          exit(1);
        }
      long done = 0;
      double t0 = pt_now();
      while (pt_now() - t0 < 2.0) {
        pt__p1_predict(app, &p1g, nb, cf, qg);
        done += nb;
      }
      double rp = done / (pt_now() - t0);
      printf("  qos_p1 predictor alone on %s, kernel %d  %12.0f configs/s  (batches of %d, %ld configs; equals the CPU "
             "predictor)\n", pt_backend_name(app->be), v, rp, nb, done);
    }
    unsetenv("PT_CUDA_P1_KERNEL");
    long ng = p1_configs * 10;
    double rg = run_loop(app, QOS_P1, &p1g, NULL, &ng, 4096);
    printf("  qos_p1 + cost_linear on %s  %12.0f configs/s  (%ld configs, search batch 4096)\n",
           pt_backend_name(app->be), rg, ng);
    free(cf), free(qg), free(qc);
    pt__p1_free(&p1g);
  }
  double re = run_loop(app, QOS_EMPIRICAL, NULL, NULL, &ne, 1);
  printf("  empirical QoS + time   %12.3f configs/s  (%ld configs one at a time, %d images each, backend %s)\n", re, ne,
         rows, app->be ? pt_backend_name(app->be) : "-");
  long nb = emp_configs * 4;
  int eb = emp_batch < nb ? emp_batch : (int)nb;
  prefix_ops = all_ops = 0;
  double rb = run_loop(app, QOS_EMPIRICAL, NULL, NULL, &nb, eb);
  printf("  empirical QoS batched  %12.3f configs/s  (%ld configs, search batch %d, prefix sharing: %ld of %ld ops run)\n",
         rb, nb, eb, prefix_ops, all_ops);
  fflush(stdout);
  pt__p1_free(&p1);
  pt__p2_free(&p2);
  for (int e = 0; e < app->n_entries; e++) free((void *)d[e]);
  free(d), free(base), free(labels);
}

int main(int argc, char **argv) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--backend")) backend_name = argv[i + 1];
    else if (!strcmp(argv[i], "--p1-configs")) p1_configs = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--p2-configs")) p2_configs = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--empirical-configs")) emp_configs = atol(argv[i + 1]);
    else if (!strcmp(argv[i], "--empirical-batch")) emp_batch = atoi(argv[i + 1]);
    else {
      fprintf(stderr, "bench_tune: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  char host[256] = "?";
  gethostname(host, sizeof host);
  const char *lanes = getenv("PT_CUDA_LANES");
  printf("bench_tune: %d threads, host %s, PT_CUDA_LANES=%s\n", threads, host, lanes ? lanes : "(default)");

  pt_app *app = NULL;
  pt_dnn_app_opts o = {0};
  o.model = "lenet_mnist";
  o.weights = PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors";
  o.data = PT_SOURCE_DIR "/zoo/demo";
  o.backend = backend_name;
  o.threads = threads;
  o.target_device = "any";
  if (pt_app_dnn_create(&o, &app) != PT_OK) {
    fprintf(stderr, "bench_tune: %s\n", pt_last_error());
    return 1;
  }
  bench_app(app, "demo lenet_mnist (1000 tune images, knobs any)");
  pt_app_free(app);

  char dir[] = "/tmp/pt_bench_tune_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  pt_graph *g;
  pt_zoo_build("vgg16_cifar10", &g);
  pt_graph_init_random(g, 3);
  char wpath[600];
  snprintf(wpath, sizeof wpath, "%s/w.safetensors", dir);
  if (pt_weights_save(g, wpath, 0) != PT_OK) return 1;
  pt_graph_free(g);
  pt_bench_random_set(dir, "tune", 5000, 3, 32, 32, 10);
  pt_bench_random_set(dir, "test", 100, 3, 32, 32, 10);
  o.model = "vgg16_cifar10";
  o.weights = wpath;
  o.data = dir;
  o.target_device = NULL;
  if (pt_app_dnn_create(&o, &app) != PT_OK) {
    fprintf(stderr, "bench_tune: %s\n", pt_last_error());
    return 1;
  }
  bench_app(app, "vgg16_cifar10 (random weights, 5000 random tune images, the backend's knobs)");
  pt_app_free(app);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0;
}
