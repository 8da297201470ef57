/* QoS-model initialisation time (the measurement issue's benchmark): qos_p1's and qos_p2's
 * initialisation of zoo networks (random weights, random 32x32 tune images, the CPU knob set) against
 * one exact forward pass of the same tune set, timed in the same process. PredTuner initialises P1
 * with one forward pass of the tune set per (op, knob) entry, and so did version 0.1; with
 * `entries x forward` as that cost, `init / forward` says how many passes the initialisation is
 * worth. bench/pytorch_infer.py --tune-forward times PyTorch's pass of the same networks and images.
 *
 *   bench_init [--threads N] [--images N] [--batch N] [--nets a,b,c] [--p2] [--prefix-cache MIB]
 * (--prefix-cache: the executor's exact-prefix cache, default the app's; 0 = off) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app_internal.h"
#include "bench_data.h"
#include "models/models.h"
#include "predtuner/predtuner.h"

/* The median of three exact passes over the tune set. */
static double exact_pass(pt_app *app, float *out) {
  const int op = -1, pos = 0;
  double t[3];
  for (int i = 0; i < 3; i++) {
    double t0 = pt_now();
    if (app->vt->outputs(app, 1, &op, &pos, &out, NULL, 0) != PT_OK) return -1;
    t[i] = pt_now() - t0;
  }
  double lo = t[0] < t[1] ? t[0] : t[1], hi = t[0] < t[1] ? t[1] : t[0];
  return t[2] < lo ? lo : t[2] > hi ? hi : t[2];
}

static int bench_net(const char *net, const char *dir, int threads, int images, int batch, int p2, int cache_mib) {
  pt_graph *g;
  if (pt_zoo_build(net, &g) != PT_OK) return fprintf(stderr, "bench_init: %s\n", pt_last_error()), 1;
  pt_graph_init_random(g, 3);
  char wpath[600];
  snprintf(wpath, sizeof wpath, "%s/%s.safetensors", dir, net);
  if (pt_weights_save(g, wpath, 0) != PT_OK) return fprintf(stderr, "bench_init: %s\n", pt_last_error()), 1;
  pt_graph_free(g);
  pt_dnn_app_opts o = {.model = net, .weights = wpath, .data = dir, .backend = "cpu", .threads = threads,
                       .batch_size = batch, .tune_count = images, .target_device = "cpu",
                       .prefix_cache_mib = cache_mib};
  pt_app *app = NULL;
  if (pt_app_dnn_create(&o, &app) != PT_OK) return fprintf(stderr, "bench_init: %s\n", pt_last_error()), 1;
  float *out = malloc((size_t)app->out_rows * (size_t)app->out_cols * sizeof *out);
  double fwd = exact_pass(app, out);
  free(out);
  pt__p1 m;
  double t0 = pt_now();
  pt_status s = pt__p1_init(app, NULL, 1, stderr, NULL, &m);
  double t_p1 = pt_now() - t0;
  if (s != PT_OK) return fprintf(stderr, "bench_init: %s\n", pt_last_error()), 1;
  pt__p1_free(&m);
  printf("predtuner-gpu %-16s images=%d batch=%d threads=%d entries=%d forward_s=%.3f p1_init_s=%.2f "
         "p1_passes=%.1f one_pass_per_entry_s=%.1f\n",
         net, app->out_rows, batch, threads, app->n_entries, fwd, t_p1, t_p1 / fwd, app->n_entries * fwd);
  pt_exec_prefix_stats st;
  pt_exec_prefix_cache_stats(pt__dnn_app_exec(app), &st);
  printf("predtuner-gpu %-16s prefix_cache_mib=%d restores=%lld nodes_saved=%lld states=%d mib=%.1f\n", net,
         cache_mib, (long long)st.restores, (long long)st.nodes_saved, st.entries, (double)st.bytes / (1 << 20));
  if (p2) {
    pt__p2 m2;
    t0 = pt_now();
    s = pt__p2_init(app, NULL, 1, stderr, NULL, &m2);
    double t_p2 = pt_now() - t0;
    if (s != PT_OK) return fprintf(stderr, "bench_init: %s\n", pt_last_error()), 1;
    pt__p2_free(&m2);
    printf("predtuner-gpu %-16s p2_init_s=%.2f p2_passes=%.1f\n", net, t_p2, t_p2 / fwd);
  }
  fflush(stdout);
  pt_app_free(app);
  return 0;
}

int main(int argc, char **argv) {
  int threads = 2, images = 1000, batch = 500, p2 = 0, cache_mib = 0;
  const char *nets = "resnet18_cifar10,alexnet2_cifar10,vgg16_cifar10";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--p2")) p2 = 1;
    else if (i + 1 < argc && !strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--images")) images = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--batch")) batch = atoi(argv[++i]);
    else if (i + 1 < argc && !strcmp(argv[i], "--nets")) nets = argv[++i];
    else if (i + 1 < argc && !strcmp(argv[i], "--prefix-cache")) cache_mib = atoi(argv[++i]) > 0 ? atoi(argv[i]) : -1;
    else return fprintf(stderr, "bench_init: unknown option %s\n", argv[i]), 2;
  }
  char host[256] = "?";
  gethostname(host, sizeof host);
  printf("bench_init: %d threads, host %s, %d random tune images, batch %d\n", threads, host, images, batch);
  char dir[] = "/tmp/pt_bench_init_XXXXXX";
  if (!mkdtemp(dir)) return 1;
  pt_bench_random_set(dir, "tune", images, 3, 32, 32, 10);
  pt_bench_random_set(dir, "test", 10, 3, 32, 32, 10);
  int rc = 0;
  char list[512];
  snprintf(list, sizeof list, "%s", nets);
  for (char *save = NULL, *n = strtok_r(list, ",", &save); n && !rc; n = strtok_r(NULL, ",", &save))
    rc = bench_net(n, dir, threads, images, batch, p2, cache_mib);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  return system(cmd) != 0 || rc;
}
