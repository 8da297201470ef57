/* GPU convolution kernels, llm.c dev/cuda style: for every convolution shape of vgg16_cifar10 (and
 * resnet18_cifar10) at batch 500, each variant is first validated against the CPU backend (on the
 * first images, fresh random inputs; normalised error within 1e-5 fp32 / 2e-3 fp16, NaN fails),
 * then timed with CUDA events after warm-up, rotating over several input sets, median of the reps:
 * cuDNN fp32 and fp16 (the baselines), every perforation knob through its variants (strided cuDNN
 * NCHW and NHWC, im2col + GEMM), every sampling knob through both of its variants (im2col + GEMM,
 * cuDNN by masked weights), and what the backend dispatches (the faster variant, timed per layer on
 * its first call), in both precisions. Prints time, effective TFLOP/s (the
 * exact convolution's FLOPs over the time, i.e. what the user gets) and the speedup over cuDNN at
 * the same precision; then a summary over the layers with outputs of 8x8 or more, and the exact
 * network's time against the sum of its layers run by cuDNN/cuBLAS alone.
 *
 *   bench_cuda_conv [--batch N] [--reps N] [--net vgg16_cifar10|resnet18_cifar10|all] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/rng.h"
#include "graph/graph_internal.h"
#include "graph/node_desc.h"
#include "kernels/knob_math.h"
#include "predtuner/predtuner.h"

typedef struct variant {
  const char *name;
  int fp16, perf_dir, stride, samp, impl; /* perf_dir: pt_perf_dir; impl: 0 cuDNN exact, 1 strided cuDNN NCHW,
                                             2 im2col + GEMM, 3 strided cuDNN NHWC (fp16), 4 cuDNN by masked
                                             weights (sampling), 5 the backend's dispatch (timed choice),
                                             6 the implicit-GEMM kernels (halo-tile fp16, CUDA-core fp32) */
} variant;

static const variant V[] = {
    {"cudnn fp32", 0, 0, 0, 0, 0},          {"cudnn fp16", 1, 0, 0, 0, 0},
    {"gemm exact fp32", 0, 0, 0, 0, 2},     {"gemm exact fp16", 1, 0, 0, 0, 2},
    {"perf rows s2 fp32 cudnn", 0, 1, 2, 0, 1}, {"perf rows s2 fp32 gemm", 0, 1, 2, 0, 2},
    {"perf cols s2 fp32 cudnn", 0, 2, 2, 0, 1}, {"perf cols s2 fp32 gemm", 0, 2, 2, 0, 2},
    {"perf rows s3 fp32 cudnn", 0, 1, 3, 0, 1}, {"perf rows s3 fp32 gemm", 0, 1, 3, 0, 2},
    {"perf cols s3 fp32 cudnn", 0, 2, 3, 0, 1}, {"perf cols s3 fp32 gemm", 0, 2, 3, 0, 2},
    {"perf rows s4 fp32 cudnn", 0, 1, 4, 0, 1}, {"perf rows s4 fp32 gemm", 0, 1, 4, 0, 2},
    {"perf cols s4 fp32 cudnn", 0, 2, 4, 0, 1}, {"perf cols s4 fp32 gemm", 0, 2, 4, 0, 2},
    {"perf rows s2 fp16 cudnn", 1, 1, 2, 0, 1}, {"perf rows s2 fp16 gemm", 1, 1, 2, 0, 2}, {"perf rows s2 fp16 cudnn-nhwc", 1, 1, 2, 0, 3},
    {"perf cols s2 fp16 cudnn", 1, 2, 2, 0, 1}, {"perf cols s2 fp16 gemm", 1, 2, 2, 0, 2}, {"perf cols s2 fp16 cudnn-nhwc", 1, 2, 2, 0, 3},
    {"perf rows s3 fp16 cudnn", 1, 1, 3, 0, 1}, {"perf rows s3 fp16 gemm", 1, 1, 3, 0, 2}, {"perf rows s3 fp16 cudnn-nhwc", 1, 1, 3, 0, 3},
    {"perf cols s3 fp16 cudnn", 1, 2, 3, 0, 1}, {"perf cols s3 fp16 gemm", 1, 2, 3, 0, 2}, {"perf cols s3 fp16 cudnn-nhwc", 1, 2, 3, 0, 3},
    {"perf rows s4 fp16 cudnn", 1, 1, 4, 0, 1}, {"perf rows s4 fp16 gemm", 1, 1, 4, 0, 2}, {"perf rows s4 fp16 cudnn-nhwc", 1, 1, 4, 0, 3},
    {"perf cols s4 fp16 cudnn", 1, 2, 4, 0, 1}, {"perf cols s4 fp16 gemm", 1, 2, 4, 0, 2}, {"perf cols s4 fp16 cudnn-nhwc", 1, 2, 4, 0, 3},
    {"samp every 2 fp32 gemm", 0, 0, 0, 2, 2}, {"samp every 2 fp32 cudnn-mask", 0, 0, 0, 2, 4},
    {"samp every 3 fp32 gemm", 0, 0, 0, 3, 2}, {"samp every 3 fp32 cudnn-mask", 0, 0, 0, 3, 4},
    {"samp every 4 fp32 gemm", 0, 0, 0, 4, 2}, {"samp every 4 fp32 cudnn-mask", 0, 0, 0, 4, 4},
    {"samp every 2 fp16 gemm", 1, 0, 0, 2, 2}, {"samp every 2 fp16 cudnn-mask", 1, 0, 0, 2, 4},
    {"samp every 3 fp16 gemm", 1, 0, 0, 3, 2}, {"samp every 3 fp16 cudnn-mask", 1, 0, 0, 3, 4},
    {"samp every 4 fp16 gemm", 1, 0, 0, 4, 2}, {"samp every 4 fp16 cudnn-mask", 1, 0, 0, 4, 4},
    {"igemm exact fp32", 0, 0, 0, 0, 6},     {"igemm exact fp16", 1, 0, 0, 0, 6},
    {"perf rows s2 fp32 igemm", 0, 1, 2, 0, 6}, {"perf cols s2 fp32 igemm", 0, 2, 2, 0, 6},
    {"perf rows s2 fp16 igemm", 1, 1, 2, 0, 6}, {"perf cols s2 fp16 igemm", 1, 2, 2, 0, 6},
    {"perf rows s3 fp16 igemm", 1, 1, 3, 0, 6}, {"perf cols s3 fp16 igemm", 1, 2, 3, 0, 6},
    {"perf rows s4 fp16 igemm", 1, 1, 4, 0, 6}, {"perf cols s4 fp16 igemm", 1, 2, 4, 0, 6},
    {"samp every 2 fp32 igemm", 0, 0, 0, 2, 6}, {"samp every 2 fp16 igemm", 1, 0, 0, 2, 6},
    {"samp every 3 fp16 igemm", 1, 0, 0, 3, 6}, {"samp every 4 fp16 igemm", 1, 0, 0, 4, 6},
    /* what the backend runs: the fastest variant that agrees, per layer, timed on its first call */
    {"exact fp32 auto", 0, 0, 0, 0, 5}, {"exact fp16 auto", 1, 0, 0, 0, 5},
    {"perf rows s2 fp32 auto", 0, 1, 2, 0, 5}, {"perf cols s2 fp32 auto", 0, 2, 2, 0, 5},
    {"perf rows s2 fp16 auto", 1, 1, 2, 0, 5}, {"perf cols s2 fp16 auto", 1, 2, 2, 0, 5},
    {"samp every 2 fp32 auto", 0, 0, 0, 2, 5}, {"samp every 2 fp16 auto", 1, 0, 0, 2, 5},
};
#define NV ((int)(sizeof V / sizeof V[0]))
#define NSETS 3

static pt_backend *cpu, *gpu;

static pt_conv_desc with_variant(pt_conv_desc d, const variant *v) {
  d.fp16 = v->fp16;
  d.perf_dir = v->perf_dir;
  d.perf_stride = v->stride;
  d.perf_offset = 0;
  d.samp_every = v->samp;
  d.samp_offset = 0;
  d.samp_scale = v->samp ? pt_km_samp_scale(v->samp, 1.0) : 0.0f;
  return d;
}

static pt_status run(const variant *v, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  pt_cuda_ctx *c = gpu->ctx;
  if (v->impl == 0) return pt__cuda_conv_cudnn(c, d, x, w, b, y);
  if (v->impl == 1) return pt__cuda_conv_perf_cudnn_fmt(c, d, 0, x, w, b, y);
  if (v->impl == 3) return pt__cuda_conv_perf_cudnn_fmt(c, d, 1, x, w, b, y);
  if (v->impl == 4) return pt__cuda_conv_samp_cudnn(c, d, x, w, b, y);
  if (v->impl == 5) return pt__cuda_conv2d(c, d, x, w, b, y);
  if (v->impl == 6) return pt__cuda_conv_igemm(c, d, x, w, b, y);
  return pt__cuda_conv_gemm(c, d, x, w, b, y);
}

static void die(const char *what) {
  fprintf(stderr, "bench_cuda_conv: %s: %s\n", what, pt_last_error());
  exit(1);
}
static void *dalloc(size_t bytes) {
  void *p;
  if (gpu->iface->alloc(gpu->ctx, bytes, &p) != PT_OK) die("alloc");
  return p;
}
static float *rnd(pt_rng *r, int64_t n, float lo, float hi) {
  float *p = malloc((size_t)n * sizeof *p);
  for (int64_t i = 0; i < n; i++) p[i] = pt_rng_range(r, lo, hi);
  return p;
}
static int cmp_f(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Validates variant v on the first `nv` images against the CPU; returns the normalised error (+inf
 * for an output left unwritten or NaN, NaN when the variant cannot run this shape). */
static double validate(const variant *v, pt_conv_desc d, pt_rng *r) {
  d.n = 2;
  pt_conv_desc dv = with_variant(d, v);
  int64_t nx = (int64_t)d.n * d.cin * d.h * d.w, nw = (int64_t)d.cout * (d.cin / d.groups) * d.kh * d.kw,
          ny = (int64_t)d.n * d.cout * d.oh * d.ow;
  float *x = rnd(r, nx, -1, 1), *w = rnd(r, nw, -0.1f, 0.1f), *b = rnd(r, d.cout, -0.1f, 0.1f);
  float *ref = malloc((size_t)ny * 4), *got = malloc((size_t)ny * 4);
  if (cpu->iface->conv2d(cpu->ctx, &dv, x, w, b, ref) != PT_OK) die("cpu reference");
  float *dx = dalloc((size_t)nx * 4), *dw = dalloc((size_t)nw * 4), *db = dalloc((size_t)d.cout * 4),
        *dy = dalloc((size_t)ny * 4);
  gpu->iface->upload(gpu->ctx, dx, x, (size_t)nx * 4);
  gpu->iface->upload(gpu->ctx, dw, w, (size_t)nw * 4);
  gpu->iface->upload(gpu->ctx, db, b, (size_t)d.cout * 4);
  for (int64_t i = 0; i < ny; i++) got[i] = NAN; /* poison */
  gpu->iface->upload(gpu->ctx, dy, got, (size_t)ny * 4);
  pt_status st = run(v, &dv, dx, dw, db, dy);
  if (st != PT_OK && st != PT_EUNSUPPORTED) die(v->name);
  double num = 0, den = 0;
  if (st == PT_OK) {
    gpu->iface->download(gpu->ctx, got, dy, (size_t)ny * 4);
    for (int64_t i = 0; i < ny; i++) {
      if (isnan(got[i])) { /* unwritten (still the poison) or NaN: a failed validation */
        num = INFINITY;
        break;
      }
      num += ((double)got[i] - ref[i]) * ((double)got[i] - ref[i]);
      den += (double)ref[i] * ref[i];
    }
  } else {
    num = NAN;
    cudaGetLastError();
  }
  gpu->iface->release(gpu->ctx, dx), gpu->iface->release(gpu->ctx, dw);
  gpu->iface->release(gpu->ctx, db), gpu->iface->release(gpu->ctx, dy);
  free(x), free(w), free(b), free(ref), free(got);
  return isinf(num) ? INFINITY : sqrt(num / (den > 0 ? den : 1));
}

typedef struct layer_t {
  pt_conv_desc d;
  char name[32];
} layer_t;

static int collect(const pt_graph *g, int batch, layer_t *L, int max) {
  int n = 0;
  for (int i = 0; i < g->n_nodes && n < max; i++) {
    const pt_node *nd = &g->nodes[i];
    if (nd->type != PT_OP_CONV2D) continue;
    L[n].d = pt__conv_desc_of_node(g, nd, batch);
    snprintf(L[n].name, sizeof L[n].name, "%s", nd->name);
    n++;
  }
  return n;
}

/* Totals over a network's layers, per variant. */
typedef struct net_stats {
  double sum_t[NV], big_t[NV];     /* ms over all layers, over the layers with outputs of 8x8 or more */
  double min_big[NV], max_big[NV]; /* speedup range over the 8x8+ layers */
  int ok_v[NV];                    /* passed validation on every layer */
  int cannot[NV];                  /* layers the variant cannot run (left out of its totals) */
} net_stats;

/* Median of reps x NSETS timed runs (CUDA events after two warm-up runs); t[0], t[n-1] the spread. */
static double time_variant(const variant *v, const pt_conv_desc *dv, float **dx, float *dw, float *db, float *dy,
                           int reps, cudaEvent_t e0, cudaEvent_t e1, float *lo, float *hi) {
  pt_cuda_ctx *c = gpu->ctx;
  for (int wu = 0; wu < 2; wu++)
    if (run(v, dv, dx[wu % NSETS], dw, db, dy) != PT_OK) die(v->name);
  float t[64];
  int n = reps * NSETS < 64 ? reps * NSETS : 64;
  for (int q = 0; q < n; q++) {
    cudaEventRecord(e0, c->ln->stream);
    if (run(v, dv, dx[q % NSETS], dw, db, dy) != PT_OK) die(v->name);
    cudaEventRecord(e1, c->ln->stream);
    cudaEventSynchronize(e1);
    cudaEventElapsedTime(&t[q], e0, e1);
  }
  qsort(t, (size_t)n, sizeof *t, cmp_f);
  *lo = t[0];
  *hi = t[n - 1];
  return t[n / 2];
}

/* Every variant on one layer: validated against the CPU first, then timed against cuDNN. */
static void bench_layer(const layer_t *L, pt_rng *r, int reps, net_stats *st, cudaEvent_t e0, cudaEvent_t e1) {
  pt_conv_desc d = L->d;
  int64_t nx = (int64_t)d.n * d.cin * d.h * d.w, nw = (int64_t)d.cout * (d.cin / d.groups) * d.kh * d.kw,
          ny = (int64_t)d.n * d.cout * d.oh * d.ow;
  double gflop = 2.0 * (double)nw * d.oh * d.ow * d.n / 1e9;
  printf("%-10s %4d->%-4d %2dx%-2d out %2dx%-2d k%dx%d s%d g%d (%.1f GFLOP exact)\n", L->name, d.cin, d.cout, d.h, d.w,
         d.oh, d.ow, d.kh, d.kw, d.sh, d.groups, gflop);
  float *dx[NSETS], *dw = dalloc((size_t)nw * 4), *db = dalloc((size_t)d.cout * 4), *dy = dalloc((size_t)ny * 4);
  for (int s = 0; s < NSETS; s++) {
    float *h = rnd(r, nx, -1, 1);
    dx[s] = dalloc((size_t)nx * 4);
    gpu->iface->upload(gpu->ctx, dx[s], h, (size_t)nx * 4);
    free(h);
  }
  float *hw = rnd(r, nw, -0.1f, 0.1f), *hb = rnd(r, d.cout, -0.1f, 0.1f);
  gpu->iface->upload(gpu->ctx, dw, hw, (size_t)nw * 4);
  gpu->iface->upload(gpu->ctx, db, hb, (size_t)d.cout * 4);
  free(hw), free(hb);
  double base[2] = {0, 0};
  for (int k = 0; k < NV; k++) {
    const variant *v = &V[k];
    double err = validate(v, d, r);
    double tol = v->fp16 ? 2e-3 : 1e-5;
    if (isnan(err)) {
      printf("  %-28s cannot run this shape (%s): not timed\n", v->name, pt_last_error());
      st->cannot[k]++;
      continue;
    }
    if (!(err <= tol)) {
      printf("  %-28s FAILED validation: normalised error %.3g > %.0e: not timed\n", v->name, err, tol);
      st->ok_v[k] = 0;
      continue;
    }
    pt_conv_desc dv = with_variant(d, v);
    float lo, hi;
    double ms = time_variant(v, &dv, dx, dw, db, dy, reps, e0, e1, &lo, &hi);
    if (v->impl == 0) base[v->fp16] = ms;
    double sp = base[v->fp16] / ms;
    st->sum_t[k] += ms;
    if (d.oh >= 8 && d.ow >= 8) {
      st->big_t[k] += ms;
      if (sp < st->min_big[k]) st->min_big[k] = sp;
      if (sp > st->max_big[k]) st->max_big[k] = sp;
    }
    printf("  %-28s %9.4f ms  %7.2f eff TFLOP/s  %5.2fx vs cudnn %s  (err %.1e, spread %.4f..%.4f ms)\n", v->name, ms,
           gflop / ms, sp, v->fp16 ? "fp16" : "fp32", err, lo, hi);
  }
  for (int s = 0; s < NSETS; s++) gpu->iface->release(gpu->ctx, dx[s]);
  gpu->iface->release(gpu->ctx, dw), gpu->iface->release(gpu->ctx, db), gpu->iface->release(gpu->ctx, dy);
  fflush(stdout);
}

static void print_summary(const char *net, int batch, const net_stats *st) {
  printf("\nsummary, %s batch %d: total time over all layers and over the layers with outputs of 8x8 or more\n", net,
         batch);
  printf("| variant | speedup, all layers | speedup, 8x8+ layers (total) | 8x8+ layers min..max |\n|---|---|---|---|\n");
  for (int k = 0; k < NV; k++) {
    if (!st->ok_v[k]) {
      printf("| %s | failed validation | | |\n", V[k].name);
      continue;
    }
    int b = V[k].fp16;
    if (st->cannot[k]) {
      printf("| %s | cannot run %d layers | | |\n", V[k].name, st->cannot[k]);
      continue;
    }
    printf("| %s | %.2fx | %.2fx | %.2f..%.2fx |\n", V[k].name, st->sum_t[b] / st->sum_t[k], st->big_t[b] / st->big_t[k],
           st->min_big[k], st->max_big[k]);
  }
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The exact network through the executor against its convolutions (cuDNN, conv_ms in total) and
 * the rest alone. */
static void bench_exact_network(pt_graph *g, const char *net, int batch, int reps, pt_rng *r, double conv_ms) {
  pt_graph_init_random(g, 7);
  pt_exec *ex;
  if (pt_exec_create(g, gpu, &ex) != PT_OK) die("exec");
  int64_t in_n = (int64_t)batch * g->in_c * g->in_h * g->in_w;
  float *in = rnd(r, in_n, -1, 1), *out = malloc((size_t)batch * g->num_classes * 4);
  for (int wu = 0; wu < 2; wu++)
    if (pt_exec_run(ex, in, batch, NULL, out) != PT_OK) die("exec run");
  int nops = pt_graph_num_ops(g), nq = reps < 16 ? reps : 16;
  double *op_s = calloc((size_t)nops, sizeof *op_s), t_net[16];
  for (int q = 0; q < nq; q++) {
    double t0 = pt_now();
    pt_exec_run(ex, in, batch, NULL, out);
    t_net[q] = pt_now() - t0;
  }
  /* host -> device copy of the input, which the network time includes */
  float *din = dalloc((size_t)in_n * 4);
  double t0 = pt_now();
  for (int q = 0; q < reps; q++) gpu->iface->upload(gpu->ctx, din, in, (size_t)in_n * 4);
  gpu->iface->synchronize(gpu->ctx);
  double t_up = (pt_now() - t0) / reps;
  pt_exec_time_ops(ex, op_s);
  for (int q = 0; q < reps; q++) pt_exec_run(ex, in, batch, NULL, out);
  pt_exec_time_ops(ex, NULL);
  double ops_sum = 0;
  for (int o = 0; o < nops; o++) ops_sum += op_s[o] / reps;
  qsort(t_net, (size_t)nq, sizeof *t_net, cmp_d);
  double conv_sum = conv_ms / 1e3; /* seconds */
  printf("\nexact network %s, batch %d: %.3f ms per run (median; includes the %.3f ms input upload)\n", net, batch,
         t_net[nq / 2] * 1e3, t_up * 1e3);
  printf("  its convolutions alone through cuDNN fp32 (above): %.3f ms; all its ops timed one by one inside the "
         "executor: %.3f ms\n",
         conv_sum * 1e3, ops_sum * 1e3);
  printf("  network (minus upload) / cuDNN convolutions alone: %.3fx\n", (t_net[nq / 2] - t_up) / conv_sum);
  gpu->iface->release(gpu->ctx, din);
  free(in), free(out), free(op_s);
  pt_exec_free(ex);
}

static void bench_net(const char *net, int batch, int reps) {
  pt_graph *g;
  if (pt_zoo_build(net, &g) != PT_OK) die(net);
  layer_t L[64];
  int nl = collect(g, batch, L, 64);
  pt_rng r;
  pt_rng_seed(&r, 42);
  cudaEvent_t e0, e1;
  cudaEventCreate(&e0);
  cudaEventCreate(&e1);
  net_stats st;
  memset(&st, 0, sizeof st);
  for (int k = 0; k < NV; k++) st.min_big[k] = 1e30, st.max_big[k] = 0, st.ok_v[k] = 1, st.cannot[k] = 0;
  printf("\n== %s, batch %d: %d convolutions ==\n", net, batch, nl);
  for (int l = 0; l < nl; l++) bench_layer(&L[l], &r, reps, &st, e0, e1);
  print_summary(net, batch, &st);
  bench_exact_network(g, net, batch, reps, &r, st.sum_t[0]);
  pt_graph_free(g);
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
}

int main(int argc, char **argv) {
  int batch = 500, reps = 5;
  const char *net = "all";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--batch")) batch = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--net")) net = argv[i + 1];
    else {
      fprintf(stderr, "usage: bench_cuda_conv [--batch N] [--reps N] [--net NAME|all]\n");
      return 2;
    }
  }
  if (batch < 2 || reps < 1) {
    fprintf(stderr, "bench_cuda_conv: --batch must be >= 2 and --reps >= 1\n");
    return 2;
  }
  const char *why = "";
  if (pt__cuda_device_count(&why) == 0) {
    printf("bench_cuda_conv: SKIPPED, no GPU: %s\n", why);
    return 0;
  }
  if (pt_backend_create("cpu", 0, &cpu) != PT_OK || pt_backend_create("cuda", 0, &gpu) != PT_OK) die("backend");
  printf("bench_cuda_conv: %s\n  reference: %s\n  batch %d, median of %d runs over %d input sets after 2 warm-ups\n",
         pt_backend_describe(gpu), pt_backend_describe(cpu), batch, reps * NSETS, NSETS);
  if (!strcmp(net, "all") || !strcmp(net, "vgg16_cifar10")) bench_net("vgg16_cifar10", batch, reps);
  if (!strcmp(net, "all") || !strcmp(net, "resnet18_cifar10")) bench_net("resnet18_cifar10", batch, reps);
  pt_backend_free(gpu);
  pt_backend_free(cpu);
  return 0;
}
