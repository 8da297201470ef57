/* Baseline inference throughput on the CPU backend: the zoo networks of the CPU kernel issue (random
 * weights and images; the demo LeNet with its trained weights and tune set). One warm-up run, then `reps` timed runs;
 * prints the median. Compare with bench/pytorch_infer.py at the same thread count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "predtuner/predtuner.h"

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int bench(const char *model, const char *weights, int batch, int threads, int reps, const char *data) {
  pt_graph *g;
  pt_backend *be;
  pt_exec *ex;
  if (pt_zoo_build(model, &g) != PT_OK) goto fail;
  if (weights) {
    if (pt_weights_load(g, weights) != PT_OK) goto fail;
  } else {
    pt_graph_init_random(g, 1);
  }
  if (pt_backend_create("cpu", threads, &be) != PT_OK || pt_exec_create(g, be, &ex) != PT_OK) goto fail;
  int c, h, w;
  pt_graph_input_shape(g, &c, &h, &w);
  size_t per = (size_t)c * h * w;
  float *x = malloc((size_t)batch * per * sizeof *x);
  float *y = malloc((size_t)batch * pt_graph_num_classes(g) * sizeof *y);
  pt_dataset *ds = NULL;
  if (data) {
    if (pt_dataset_open(data, "tune", c, h, w, pt_graph_num_classes(g), 0, batch, &ds) != PT_OK) goto fail;
    memcpy(x, ds->images, (size_t)batch * per * sizeof *x);
  } else {
    pt_rng r;
    pt_rng_seed(&r, 2);
    for (size_t i = 0; i < (size_t)batch * per; i++) x[i] = pt_rng_range(&r, -1, 1);
  }
  double *t = malloc((size_t)reps * sizeof *t);
  if (pt_exec_run(ex, x, batch, NULL, y) != PT_OK) goto fail; /* warm-up */
  for (int i = 0; i < reps; i++) {
    double t0 = pt_now();
    if (pt_exec_run(ex, x, batch, NULL, y) != PT_OK) goto fail;
    t[i] = pt_now() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_d);
  double med = t[reps / 2];
  printf("predtuner-gpu %-16s batch=%d threads=%d reps=%d median_s=%.4f min_s=%.4f images_per_s=%.1f gflops=%.1f\n",
         model, batch, threads, reps, med, t[0], batch / med, pt_graph_total_flops(g) * 2 * batch / med / 1e9);
  printf("  backend: %s\n", pt_backend_describe(be));
  fflush(stdout);
  free(t), free(x), free(y);
  pt_dataset_close(ds);
  pt_exec_free(ex);
  pt_backend_free(be);
  pt_graph_free(g);
  return 0;
fail:
  fprintf(stderr, "bench_infer: %s\n", pt_last_error());
  return 1;
}

/* The CPU kernel issue's networks: the seven small zoo networks at --batch, resnet50_imagenet at 50. */
static const char *const DEFAULT_NETS = "lenet_mnist,alexnet_cifar10,alexnet2_cifar10,vgg16_cifar10,vgg16_cifar100,"
                                        "resnet18_cifar10,mobilenet_cifar10,resnet50_imagenet";

int main(int argc, char **argv) {
  int threads = 2, reps = 5, batch = 500;
  const char *nets = DEFAULT_NETS;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--nets")) nets = argv[i + 1];
    else {
      fprintf(stderr, "usage: bench_infer [--threads N] [--reps N] [--batch N] [--nets a,b,...]\n");
      return 2;
    }
  }
  if (threads < 1 || reps < 1 || batch < 1) {
    fprintf(stderr, "bench_infer: --threads, --reps and --batch must be positive\n");
    return 2;
  }
  char list[512];
  snprintf(list, sizeof list, "%s", nets);
  int rc = 0;
  for (char *save = NULL, *n = strtok_r(list, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
    const int b = strstr(n, "imagenet") ? (batch < 50 ? batch : 50) : batch;
    if (!strcmp(n, "lenet_mnist")) /* the demo's trained weights and images */
      rc |= bench(n, PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors", b, threads, reps, PT_SOURCE_DIR "/zoo/demo");
    else
      rc |= bench(n, NULL, b, threads, reps, NULL);
  }
  return rc;
}
