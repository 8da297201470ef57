/* Empirical tuning with early stopping (the measurement issue's benchmark): configs/s of the search
 * with --early-stop off, exact and confident and how many configs each stopped, then the best
 * configs' predicted against measured speedups (cost_linear, and cost_profiled with exact
 * stopping). Apps: the bundled demo (trained LeNet, 1000 tune images) and a zoo network with random
 * weights on random images labelled with its own exact predictions (so its exact QoS is 100 %, and
 * approximations lose accuracy as they do on a trained network).
 *
 *   bench_early [--threads N] [--images N] [--batch N] [--iters N] [--net NAME] [--threshold X] [--only-net 1] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "predtuner/predtuner.h"

#include "bench_data.h"

static int threads = 2, images = 500, batch = 100, iters = 150;
static double threshold = 2.0;
static int only_net = 0;

/* Relabels <dir>/<split>_labels.bin with the exact network's predictions. */
static int self_label(const char *dir, const char *split, const char *weights, const char *net, int n) {
  pt_graph *g = NULL;
  pt_backend *be = NULL;
  pt_exec *ex = NULL;
  if (pt_model_load(net, weights, &g) || pt_backend_create("cpu", threads, &be) || pt_exec_create(g, be, &ex)) {
    pt_backend_free(be), pt_graph_free(g);
    return 1;
  }
  char p[512];
  snprintf(p, sizeof p, "%s/%s_input.bin", dir, split);
  FILE *f = fopen(p, "rb");
  float *x = malloc((size_t)n * 3 * 32 * 32 * sizeof *x), *out = malloc((size_t)n * 10 * sizeof *out);
  int bad = !f || !x || !out || fread(x, sizeof *x, (size_t)n * 3 * 32 * 32, f) != (size_t)n * 3 * 32 * 32;
  if (f) fclose(f);
  for (int i = 0; !bad && i < n; i += batch)
    bad = pt_exec_run(ex, x + (size_t)i * 3 * 32 * 32, n - i < batch ? n - i : batch, NULL, out + (size_t)i * 10) != PT_OK;
  snprintf(p, sizeof p, "%s/%s_labels.bin", dir, split);
  f = bad ? NULL : fopen(p, "wb");
  for (int i = 0; f && i < n; i++) {
    int32_t l = pt_argmax(out + (size_t)i * 10, 10);
    fwrite(&l, 4, 1, f);
  }
  if (f) fclose(f);
  free(x), free(out);
  pt_exec_free(ex), pt_backend_free(be), pt_graph_free(g);
  return bad || !f;
}

static int run(pt_app *app, const char *label, pt_early_stop mode, pt_cost_model cost, const char *dir) {
  pt_tuner *t = NULL;
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = iters;
  o.qos_tuner_threshold = threshold;
  o.cost_model = cost;
  o.early_stop = mode;
  o.test_configs = 0;
  o.output_dir = dir;
  o.overwrite = 1;
  if (pt_tuner_create(app, &t) || pt_tuner_tune(t, &o)) {
    fprintf(stderr, "bench_early: %s\n", pt_last_error());
    pt_tuner_free(t);
    return 1;
  }
  const pt_tune_summary *s = pt_tuner_summary(t);
  printf("%-28s early_stop=%-9s cost=%-13s configs=%lld search_s=%.1f configs_per_s=%.3f stopped=%lld kept=%d best=%d "
         "exact_s=%.4f speedup_error=%.3f\n", label, pt_early_stop_name(mode), pt_cost_model_name(cost),
         (long long)s->evaluated, s->search_seconds, s->configs_per_s, (long long)s->early_stopped,
         pt_tuner_count(t, PT_KEPT), pt_tuner_count(t, PT_BEST), s->exact_seconds, s->mean_speedup_error);
  for (int i = 0; i < pt_tuner_count(t, PT_BEST); i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_BEST, i, &c);
    printf("  best %-2d qos=%.2f predicted_speedup=%.3f measured_speedup=%.3f\n", i, c.qos, c.speedup, c.measured_speedup);
  }
  fflush(stdout);
  pt_tuner_free(t);
  return 0;
}

static int bench_app(pt_app *app, const char *label, const char *dir) {
  const pt_early_stop modes[3] = {PT_EARLY_STOP_OFF, PT_EARLY_STOP_EXACT, PT_EARLY_STOP_CONFIDENT};
  for (int m = 0; m < 3; m++)
    if (run(app, label, modes[m], PT_COST_LINEAR, dir)) return 1;
  return run(app, label, PT_EARLY_STOP_EXACT, PT_COST_PROFILED, dir);
}

int main(int argc, char **argv) {
  const char *net = "resnet18_cifar10";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--images")) images = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--iters")) iters = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--net")) net = argv[i + 1];
    else if (!strcmp(argv[i], "--threshold")) threshold = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--only-net")) only_net = atoi(argv[i + 1]);
    else return fprintf(stderr, "bench_early: unknown option %s\n", argv[i]), 2;
  }
  char host[256] = "?";
  gethostname(host, sizeof host);
  printf("bench_early: %d threads, host %s, batch %d, %d iterations, tuner threshold %.2f (relative)\n", threads, host,
         batch, iters, threshold);
  char dir[] = "/tmp/pt_bench_early_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  char out[600], w[600]; /* one output folder per app: stored models are the app's own */
  snprintf(out, sizeof out, "%s/out-demo", dir);
  pt_dnn_app_opts o = {.model = "lenet_mnist", .weights = PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors",
                       .data = PT_SOURCE_DIR "/zoo/demo", .backend = "cpu", .threads = threads, .batch_size = batch,
                       .test_count = 100, .target_device = "cpu"};
  pt_app *app = NULL;
  if (pt_app_dnn_create(&o, &app)) return fprintf(stderr, "bench_early: %s\n", pt_last_error()), 1;
  int rc = only_net ? 0 : bench_app(app, "demo lenet_mnist (1000 tune)", out);
  pt_app_free(app);
  snprintf(out, sizeof out, "%s/out-net", dir);
  pt_graph *g = NULL;
  snprintf(w, sizeof w, "%s/w.safetensors", dir);
  if (!rc) rc = pt_zoo_build(net, &g) != PT_OK;
  if (!rc) {
    pt_graph_init_random(g, 3);
    rc = pt_weights_save(g, w, 0) != PT_OK;
  }
  pt_graph_free(g);
  pt_bench_random_set(dir, "tune", images, 3, 32, 32, 10);
  pt_bench_random_set(dir, "test", 100, 3, 32, 32, 10);
  if (!rc) rc = self_label(dir, "tune", w, net, images) || self_label(dir, "test", w, net, 100);
  o.model = net, o.weights = w, o.data = dir, o.tune_count = 0;
  if (!rc && pt_app_dnn_create(&o, &app)) {
    fprintf(stderr, "bench_early: %s\n", pt_last_error());
    rc = 1;
  }
  char label[96];
  snprintf(label, sizeof label, "%s (%d self-labelled)", net, images);
  if (!rc) rc = bench_app(app, label, out);
  pt_app_free(app);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0 || rc;
}
