/* Knob speedups on the CPU backend: every knob class on the 13 convolution shapes of vgg16_cifar10
 * (batch 500), timed against the exact convolution at the same precision (fp32 knobs against the
 * fp32 convolution, fp16 knobs against FP16Approx), beside each knob's exp_speedup, and which
 * kernels ran it (the backend's own or oneDNN: PT_CPU_DNNL picks). Correctness is the tests'
 * (test_approx checks every path against its simulation). Timing: after one warm-up of each variant,
 * --reps rounds, each round running every variant once, so that a slow stretch of a noisy machine
 * falls on all of them alike; a variant's time is its minimum (noise only adds time), its median
 * printed beside. Offsets do not change the work, so offset 0 stands for each (class, direction,
 * stride, precision). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ext.h"
#include "core/rng.h"
#include "graph/graph_internal.h"
#include "graph/node_desc.h"
#include "kernels/knob_math.h"
#include "predtuner/predtuner.h"

typedef struct variant {
  const char *knob, *what;
  double exp;
  int fp16, perf_dir, stride, samp, promise; /* perf_dir: pt_perf_dir */
} variant;

static const variant V[] = {
    {"11", "exact fp32", 1.0, 0, 0, 0, 0, 0},
    {"12", "FP16Approx", 1.5, 1, 0, 0, 0, 0},
    {"121", "perf cols s2 fp32", 3.0, 0, 2, 2, 0, 0},
    {"123", "perf rows s2 fp32", 3.0, 0, 1, 2, 0, 0},
    {"125", "perf cols s3 fp32", 2.25, 0, 2, 3, 0, 0},
    {"128", "perf rows s3 fp32", 2.25, 0, 1, 3, 0, 0},
    {"131", "perf cols s4 fp32", 2.0, 0, 2, 4, 0, 0},
    {"135", "perf rows s4 fp32", 2.0, 0, 1, 4, 0, 0},
    {"151", "perf cols s2 fp16", 3.0, 1, 2, 2, 0, 0},
    {"153", "perf rows s2 fp16", 3.0, 1, 1, 2, 0, 0},
    {"155", "perf cols s3 fp16", 2.25, 1, 2, 3, 0, 0},
    {"158", "perf rows s3 fp16", 2.25, 1, 1, 3, 0, 0},
    {"161", "perf cols s4 fp16", 2.0, 1, 2, 4, 0, 0},
    {"165", "perf rows s4 fp16", 2.0, 1, 1, 4, 0, 0},
    {"231", "samp every 2 fp32", 3.0, 0, 0, 0, 2, 0},
    {"233", "samp every 3 fp32", 2.25, 0, 0, 0, 3, 0},
    {"236", "samp every 4 fp32", 2.0, 0, 0, 0, 4, 0},
    {"261", "samp every 2 fp16", 3.0, 1, 0, 0, 2, 0},
    {"263", "samp every 3 fp16", 2.25, 1, 0, 0, 3, 0},
    {"266", "samp every 4 fp16", 2.0, 1, 0, 0, 4, 0},
    {"promise", "PromiseSim (quantise+noise)", 0, 0, 0, 0, 0, 1},
};
#define NV ((int)(sizeof V / sizeof V[0]))

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static pt_status run_variant(pt_backend *be, const variant *v, pt_conv_desc d, const float *x, const float *w,
                             const float *b, float *y, float *xq) {
  d.fp16 = v->fp16;
  if (v->perf_dir) {
    d.perf_dir = v->perf_dir;
    d.perf_stride = v->stride;
    d.perf_offset = 0;
  }
  if (v->samp) {
    d.samp_every = v->samp;
    d.samp_scale = pt_km_samp_scale(v->samp, 1.0);
  }
  if (v->promise) { /* what the executor does around the convolution */
    int64_t nx = (int64_t)d.n * d.cin * d.h * d.w, ny = (int64_t)d.n * d.cout * d.oh * d.ow;
    pt_status s = be->iface->quantize(be->ctx, nx, -1.0f, 1.0f, x, xq);
    if (s == PT_OK) s = be->iface->promise_noise(be->ctx, nx, pt_km_promise_scale(4), 7, 0, xq, xq);
    if (s == PT_OK) s = be->iface->conv2d(be->ctx, &d, xq, w, b, y);
    if (s == PT_OK) s = be->iface->quantize(be->ctx, ny, -8.0f, 8.0f, y, y);
    return s;
  }
  return be->iface->conv2d(be->ctx, &d, x, w, b, y);
}

/* Whether name is among the comma-separated names of list (NULL: all). */
static int in_list(const char *list, const char *name) {
  if (!list) return 1;
  const size_t n = strlen(name);
  for (const char *p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    if (!strncmp(p, name, n) && (p[n] == ',' || p[n] == '\0')) return 1;
  return 0;
}

/* Whether knob k is among the comma-separated ids of list (NULL: all); the two baselines always are. */
static int wanted(const char *list, int k) {
  return k < 2 || in_list(list, V[k].knob);
}

int main(int argc, char **argv) {
  int threads = 2, reps = 5, batch = 500;
  const char *knobs = NULL, *layers = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--knobs")) knobs = argv[i + 1];
    else if (!strcmp(argv[i], "--layers")) layers = argv[i + 1];
    else {
      fprintf(stderr, "usage: bench_knobs [--threads N] [--reps N] [--batch N] [--knobs ID,ID,...]\n"
                      "                   [--layers NAME,NAME,...]\n"
                      "  --reps:  rounds, each timing every variant once (default 5, at most 64); a\n"
                      "           variant's time is its minimum over the rounds\n"
                      "  --knobs: only these knobs (ids as in the table; promise for PromiseSim) beside the\n"
                      "           exact fp32 and FP16Approx baselines\n"
                      "  --layers: only these convolutions (names as printed, e.g. convs.2); the summary\n"
                      "           then covers only them\n");
      return 2;
    }
  }
  if (threads < 1 || reps < 1 || reps > 64 || batch < 1) {
    fprintf(stderr, "bench_knobs: --threads and --batch must be positive, --reps 1..64\n");
    return 2;
  }
  pt_graph *g;
  pt_backend *be;
  if (pt_zoo_build("vgg16_cifar10", &g) != PT_OK || pt_backend_create("cpu", threads, &be) != PT_OK) {
    fprintf(stderr, "bench_knobs: %s\n", pt_last_error());
    return 1;
  }
  printf("CPU knob benchmark: vgg16_cifar10 convolutions, batch %d, %d threads, min of %d interleaved rounds\n", batch,
         threads, reps);
  printf("  backend: %s\n", pt_backend_describe(be));
  pt_backend_conv_paths_fn paths = (pt_backend_conv_paths_fn)pt__backend_get_proc(be, PT_BACKEND_PROC_CONV_PATHS);
  double sum_t[NV] = {0}, big_t[NV] = {0}, big_med[NV] = {0}, min_big[NV], max_big[NV], t[NV * 64];
  for (int k = 0; k < NV; k++) min_big[k] = 1e30, max_big[k] = 0;
  pt_rng r;
  pt_rng_seed(&r, 1);
  int layer = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const pt_node *nd = &g->nodes[i];
    if (nd->type != PT_OP_CONV2D || !in_list(layers, nd->name)) continue;
    const pt_conv_params *c = &nd->p.conv;
    pt_conv_desc d = pt__conv_desc_of_node(g, nd, batch);
    const int ih = d.h, iw = d.w;
    int64_t nx = (int64_t)batch * c->cin * ih * iw, nw = (int64_t)c->cout * c->cin * c->kh * c->kw,
            ny = (int64_t)batch * c->cout * d.oh * d.ow;
    float *x = malloc(nx * 4), *xq = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(c->cout * 4), *y = malloc(ny * 4);
    for (int64_t j = 0; j < nx; j++) x[j] = pt_rng_range(&r, -1, 1);
    for (int64_t j = 0; j < nw; j++) w[j] = pt_rng_range(&r, -0.1f, 0.1f);
    for (int j = 0; j < c->cout; j++) b[j] = pt_rng_range(&r, -0.1f, 0.1f);
    double gflop = 2.0 * (double)nw * d.oh * d.ow * batch / 1e9;
    printf("%-8s %4d->%-4d %2dx%-2d out %2dx%-2d (%.1f GFLOP)\n", nd->name, c->cin, c->cout, ih, iw, d.oh, d.ow, gflop);
    const char *path[NV];
    for (int k = 0; k < NV; k++) { /* warm-up, and which kernels run each variant */
      if (!wanted(knobs, k)) continue;
      int64_t before[PT_CONV_PATHS] = {0}, after[PT_CONV_PATHS] = {0};
      if (paths) paths(be->ctx, before);
      if (run_variant(be, &V[k], d, x, w, b, y, xq) != PT_OK) {
        fprintf(stderr, "bench_knobs: %s: %s\n", V[k].knob, pt_last_error());
        return 1;
      }
      if (paths) paths(be->ctx, after);
      path[k] = !paths                                                           ? "?"
                : after[PT_CONV_PATH_OWN_DIRECT] > before[PT_CONV_PATH_OWN_DIRECT] ? "own direct"
                : after[PT_CONV_PATH_OWN] > before[PT_CONV_PATH_OWN]               ? "own"
                                                                                   : "oneDNN";
    }
    for (int q = 0; q < reps; q++) /* round q times every variant once: drift hits them all alike */
      for (int k = 0; k < NV; k++) {
        if (!wanted(knobs, k)) continue;
        double t0 = pt_now();
        run_variant(be, &V[k], d, x, w, b, y, xq);
        t[k * reps + q] = pt_now() - t0;
      }
    double lo[NV], med[NV];
    for (int k = 0; k < NV; k++) {
      if (!wanted(knobs, k)) continue;
      qsort(t + k * reps, (size_t)reps, sizeof *t, cmp_d);
      lo[k] = t[k * reps], med[k] = t[k * reps + reps / 2];
      const int base = V[k].fp16 && k >= 2 ? 1 : 0;
      const double sp = lo[base] / lo[k];
      sum_t[k] += lo[k];
      if (d.oh >= 8) {
        big_t[k] += lo[k], big_med[k] += med[k];
        if (sp < min_big[k]) min_big[k] = sp;
        if (sp > max_big[k]) max_big[k] = sp;
      }
      printf("  %-8s %-28s %-10s %8.4f s (median %7.4f) %6.1f GFLOP/s  speedup %5.2fx (median %5.2fx) vs %s%s\n",
             V[k].knob, V[k].what, path[k], lo[k], med[k], gflop / lo[k], sp, med[base] / med[k],
             base ? "fp16" : "fp32", V[k].exp > 0 ? "" : " (PromiseSim has no exp_speedup)");
    }
    free(x), free(xq), free(w), free(b), free(y);
    layer++;
  }
  printf("\nsummary over the %d layers (all) and over those with outputs of 8x8 or more (big)\n", layer);
  printf("| knob | variant | exp_speedup | speedup, all layers | speedup, big layers (total) | big layers min..max | "
         "big layers (total of medians) |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (int k = 0; k < NV; k++) {
    if (!wanted(knobs, k)) continue;
    int base = V[k].fp16 && k >= 2 ? 1 : 0;
    char ex[16];
    snprintf(ex, sizeof ex, "%.2f", V[k].exp);
    printf("| %s | %s | %s | %.2fx | %.2fx | %.2f..%.2fx | %.2fx |\n", V[k].knob, V[k].what, V[k].exp > 0 ? ex : "-",
           sum_t[base] / sum_t[k], big_t[base] / big_t[k], min_big[k], max_big[k], big_med[base] / big_med[k]);
  }
  pt_backend_free(be);
  pt_graph_free(g);
  return 0;
}
