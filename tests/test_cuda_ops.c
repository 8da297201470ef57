/* The backend-ops harness (ggml's test-backend-ops, for our ops): every op and every knob runs on the
 * CUDA backend and on the CPU backend on random inputs of many shapes, and the normalised error
 * ||gpu - cpu|| / ||cpu|| must stay within 1e-5 (fp32) or 2e-3 (fp16). GPU outputs are poisoned
 * (NaN) before each run and surrounded by guard regions that are checked afterwards, so unwritten
 * elements and out-of-bounds writes fail. Also: the GPU P1 predictor equals the CPU one, and the
 * demo network gives the CPU's predictions on CUDA. Every test skips, with the reason, where no GPU
 * is present. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"
#include "backend/backend_iface.h"
#include "backend/cuda/cuda_internal.h"
#include "graph/graph_internal.h"
#include "core/rng.h"
#include "kernels/knob_math.h"
#include "models/models.h"
#include "predtuner/predtuner.h"
#include "naive.h"

#define GUARD 64
#define GUARD_VAL 12345.678f
#define TOL32 1e-5
#define TOL16 2e-3

static pt_backend *cpu, *gpu;
static pt_rng rng;

static void need_gpu(void) {
  const char *why = "";
  if (pt__cuda_device_count(&why) == 0) cr_skip_test("no GPU: %s", why);
  cr_assert_eq(pt_backend_create("cpu", 2, &cpu), PT_OK);
  cr_assert_eq(pt_backend_create("cuda", 0, &gpu), PT_OK, "%s", pt_last_error());
  pt_rng_seed(&rng, 1234);
}
static void done(void) {
  pt_backend_free(cpu);
  pt_backend_free(gpu);
}

static float *rnd(int64_t n, float lo, float hi) {
  float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  for (int64_t i = 0; i < n; i++) p[i] = pt_rng_range(&rng, lo, hi);
  return p;
}
static void *dev_copy(const float *h, int64_t n) {
  void *d;
  cr_assert_eq(gpu->iface->alloc(gpu->ctx, (size_t)(n > 0 ? n : 1) * 4, &d), PT_OK);
  if (n > 0) cr_assert_eq(gpu->iface->upload(gpu->ctx, d, h, (size_t)n * 4), PT_OK);
  return d;
}
/* A poisoned output buffer with guards: returns the start of the n usable floats. */
static float *dev_out(int64_t n) {
  int64_t tot = n + 2 * GUARD;
  float *h = malloc((size_t)tot * sizeof *h);
  for (int64_t i = 0; i < tot; i++) h[i] = i < GUARD || i >= GUARD + n ? GUARD_VAL : NAN;
  float *d = dev_copy(h, tot);
  free(h);
  return d + GUARD;
}
static void dev_free(void *d) { gpu->iface->release(gpu->ctx, d); }

/* Downloads the output, checks guards and poison, compares with ref; frees the device buffer. */
static double check_out(float *d, const float *ref, int64_t n, double tol, const char *what) {
  int64_t tot = n + 2 * GUARD;
  float *h = malloc((size_t)tot * sizeof *h);
  cr_assert_eq(gpu->iface->synchronize(gpu->ctx), PT_OK, "%s: %s", what, pt_last_error());
  cr_assert_eq(gpu->iface->download(gpu->ctx, h, d - GUARD, (size_t)tot * 4), PT_OK);
  for (int64_t i = 0; i < GUARD; i++) {
    cr_assert_eq(h[i], GUARD_VAL, "%s: write before the output (guard %lld)", what, (long long)i);
    cr_assert_eq(h[GUARD + n + i], GUARD_VAL, "%s: write past the output (guard %lld)", what, (long long)i);
  }
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    float g = h[GUARD + i], r = ref[i];
    if (isnan(r)) continue;
    cr_assert(!isnan(g), "%s: element %lld of %lld not written (or NaN), CPU %g", what, (long long)i, (long long)n, r);
    num += ((double)g - r) * ((double)g - r);
    den += (double)r * r;
  }
  double err = den > 0 ? sqrt(num / den) : sqrt(num);
  cr_assert(err <= tol, "%s: normalised error %.3g > %.1g", what, err, tol);
  free(h);
  dev_free(d - GUARD);
  return err;
}

/* ---------------- convolution: every knob, every variant, many shapes ---------------- */

typedef struct shape {
  int n, cin, h, w, cout, kh, kw, sh, sw, ph, pw, groups;
} shape;

static const shape SHAPES[] = {
    {2, 3, 32, 32, 16, 3, 3, 1, 1, 1, 1, 1},   /* vgg first layer */
    {3, 16, 9, 11, 8, 3, 3, 1, 1, 1, 1, 1},    /* odd sizes */
    {2, 8, 12, 12, 12, 5, 5, 1, 1, 2, 2, 1},   /* 5x5 */
    {2, 8, 15, 15, 8, 3, 3, 2, 2, 1, 1, 1},    /* strided */
    {2, 16, 8, 8, 32, 1, 1, 1, 1, 0, 0, 1},    /* 1x1 */
    {2, 8, 10, 10, 8, 3, 3, 1, 1, 1, 1, 8},    /* depthwise */
    {2, 8, 10, 10, 12, 3, 3, 1, 1, 1, 1, 2},   /* grouped */
    {1, 4, 7, 5, 6, 3, 3, 1, 1, 0, 0, 1},      /* no padding, small */
    {2, 32, 2, 2, 16, 3, 3, 1, 1, 1, 1, 1},    /* 2x2 maps (vgg's last layers) */
    {1, 3, 1, 6, 4, 1, 3, 1, 1, 0, 1, 1},      /* one-row output */
    {2, 64, 16, 16, 72, 3, 3, 1, 1, 1, 1, 1},  /* the implicit-GEMM kernels' tiles: strips, N over a block */
};
#define NSHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

typedef pt_status (*conv_fn)(pt_cuda_ctx *, const pt_conv_desc *, const float *, const float *, const float *, float *);

/* Whether the implicit-GEMM variant must take d (it refuses grouped convolutions, shapes its fp16
 * plan refuses, and convolutions with nothing to compute). */
static int igemm_takes(const pt_conv_desc *d) {
  if (d->groups != 1) return 0;
  pt_igemm_conv g = {d->n, d->cin, d->h, d->w, d->cout, d->oh, d->ow, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw,
                     d->perf_dir, d->perf_dir ? d->perf_stride : 0, d->perf_dir ? d->perf_offset : 0, 0, 0, 0, 0};
  if (d->fp16) {
    pt_ig2_plan p;
    return pt_ig2_make(&p, &g, 1, d->samp_every, d->samp_every ? d->samp_offset : 0) == 0;
  }
  int *table = malloc(PT_IG_KMAX * sizeof *table);
  pt_igemm_sizes(&g, pt_igemm_k_table(d->cin, d->kh, d->kw, d->samp_every, d->samp_offset, table));
  free(table);
  return g.kdim > 0 && g.m > 0;
}

static void conv_case(const shape *s, int fp16, int perf, int stride, int off, int samp, int soff, int bias,
                      conv_fn variant, const char *vname) {
  pt_conv_desc d = {s->n, s->cin, s->h, s->w, s->cout, pt_km_out_size(s->h, s->kh, s->sh, s->ph),
                    pt_km_out_size(s->w, s->kw, s->sw, s->pw), s->kh, s->kw, s->sh, s->sw, s->ph, s->pw, s->groups,
                    fp16, perf, stride, off, samp, soff, samp ? pt_km_samp_scale(samp, 1.0) : 0.0f};
  int64_t nx = (int64_t)d.n * d.cin * d.h * d.w, nw = (int64_t)d.cout * (d.cin / d.groups) * d.kh * d.kw,
          ny = (int64_t)d.n * d.cout * d.oh * d.ow;
  float *x = rnd(nx, -1, 1), *w = rnd(nw, -0.5f, 0.5f), *b = bias ? rnd(d.cout, -0.5f, 0.5f) : NULL;
  float *ref = malloc((size_t)ny * 4);
  cr_assert_eq(cpu->iface->conv2d(cpu->ctx, &d, x, w, b, ref), PT_OK, "%s", pt_last_error());
  float *dx = dev_copy(x, nx), *dw = dev_copy(w, nw), *db = b ? dev_copy(b, d.cout) : NULL, *dy = dev_out(ny);
  pt_status st = variant ? variant(gpu->ctx, &d, dx, dw, db, dy) : gpu->iface->conv2d(gpu->ctx, &d, dx, dw, db, dy);
  char what[256];
  snprintf(what, sizeof what, "conv %dx%dx%dx%d->%d k%dx%d s%d p%d g%d %s perf %d/%d/%d samp %d/%d bias %d [%s]", d.n,
           d.cin, d.h, d.w, d.cout, d.kh, d.kw, d.sh, d.ph, d.groups, fp16 ? "fp16" : "fp32", perf, stride, off, samp,
           soff, bias, vname);
  if (variant == pt__cuda_conv_igemm && st == PT_EUNSUPPORTED && !igemm_takes(&d)) {
    cudaGetLastError();
    dev_free(dy - GUARD);
  } else {
    cr_assert_eq(st, PT_OK, "%s: %s", what, pt_last_error());
    check_out(dy, ref, ny, fp16 ? TOL16 : TOL32, what);
  }
  dev_free(dx), dev_free(dw);
  if (db) dev_free(db);
  free(x), free(w), free(b), free(ref);
}

Test(cuda_ops, conv_exact_fp32_fp16, .init = need_gpu, .fini = done) {
  for (int i = 0; i < NSHAPES; i++)
    for (int fp16 = 0; fp16 < 2; fp16++)
      for (int bias = 0; bias < 2; bias++) {
        conv_case(&SHAPES[i], fp16, 0, 0, 0, 0, 0, bias, NULL, "dispatch");
        conv_case(&SHAPES[i], fp16, 0, 0, 0, 0, 0, bias, pt__cuda_conv_gemm, "gemm");
        conv_case(&SHAPES[i], fp16, 0, 0, 0, 0, 0, bias, pt__cuda_conv_igemm, "igemm");
      }
}

static pt_status perf_nhwc(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                           float *y) {
  return pt__cuda_conv_perf_cudnn_fmt(c, d, 1, x, w, b, y);
}
static pt_status perf_nchw(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                           float *y) {
  return pt__cuda_conv_perf_cudnn_fmt(c, d, 0, x, w, b, y);
}

Test(cuda_ops, conv_perforation_every_variant, .init = need_gpu, .fini = done) {
  for (int i = 0; i < NSHAPES; i++)
    for (int fp16 = 0; fp16 < 2; fp16++)
      for (int perf = 1; perf <= 2; perf++)
        for (int stride = 2; stride <= 4; stride++)
          for (int off = 0; off < stride; off++) {
            int bias = (i + off) % 2;
            conv_case(&SHAPES[i], fp16, perf, stride, off, 0, 0, bias, pt__cuda_conv_perf_cudnn, "cudnn");
            conv_case(&SHAPES[i], fp16, perf, stride, off, 0, 0, bias, pt__cuda_conv_gemm, "gemm");
            if (fp16) conv_case(&SHAPES[i], fp16, perf, stride, off, 0, 0, bias, perf_nhwc, "cudnn nhwc");
            conv_case(&SHAPES[i], fp16, perf, stride, off, 0, 0, bias, perf_nchw, "cudnn nchw");
            conv_case(&SHAPES[i], fp16, perf, stride, off, 0, 0, bias, pt__cuda_conv_igemm, "igemm");
            conv_case(&SHAPES[i], fp16, perf, stride, off, 0, 0, bias, NULL, "dispatch (timed choice)");
          }
}

Test(cuda_ops, conv_sampling, .init = need_gpu, .fini = done) {
  for (int i = 0; i < NSHAPES; i++)
    for (int fp16 = 0; fp16 < 2; fp16++)
      for (int every = 2; every <= 4; every++)
        for (int off = 0; off < every; off++) {
          int bias = (i + off) % 2;
          conv_case(&SHAPES[i], fp16, 0, 0, 0, every, off, bias, pt__cuda_conv_samp_cudnn, "cudnn masked weights");
          conv_case(&SHAPES[i], fp16, 0, 0, 0, every, off, bias, pt__cuda_conv_gemm, "gemm");
          conv_case(&SHAPES[i], fp16, 0, 0, 0, every, off, bias, pt__cuda_conv_igemm, "igemm");
          conv_case(&SHAPES[i], fp16, 0, 0, 0, every, off, bias, NULL, "dispatch (timed choice)");
          conv_case(&SHAPES[i], fp16, 0, 0, 0, every, off, bias, NULL, "dispatch (cached choice)");
        }
}

/* ---------------- the other ops ---------------- */

Test(cuda_ops, linear, .init = need_gpu, .fini = done) {
  const int dims[][3] = {{1, 7, 3}, {5, 64, 10}, {33, 300, 129}, {500, 512, 10}};
  for (int t = 0; t < 4; t++)
    for (int fp16 = 0; fp16 < 2; fp16++)
      for (int bias = 0; bias < 2; bias++) {
        int n = dims[t][0], in = dims[t][1], out = dims[t][2];
        float *x = rnd((int64_t)n * in, -1, 1), *w = rnd((int64_t)out * in, -0.3f, 0.3f), *b = bias ? rnd(out, -1, 1) : NULL;
        float *ref = malloc((size_t)n * out * 4);
        cr_assert_eq(cpu->iface->linear(cpu->ctx, n, in, out, fp16, x, w, b, ref), PT_OK);
        float *dx = dev_copy(x, (int64_t)n * in), *dw = dev_copy(w, (int64_t)out * in), *db = b ? dev_copy(b, out) : NULL;
        float *dy = dev_out((int64_t)n * out);
        cr_assert_eq(gpu->iface->linear(gpu->ctx, n, in, out, fp16, dx, dw, db, dy), PT_OK, "%s", pt_last_error());
        char what[96];
        snprintf(what, sizeof what, "linear %dx%d->%d fp16 %d bias %d", n, in, out, fp16, bias);
        check_out(dy, ref, (int64_t)n * out, fp16 ? TOL16 : TOL32, what);
        dev_free(dx), dev_free(dw);
        if (db) dev_free(db);
        free(x), free(w), free(b), free(ref);
      }
}

Test(cuda_ops, elementwise_and_pooling, .init = need_gpu, .fini = done) {
  const int64_t counts[] = {1, 1000, 123457};
  for (int t = 0; t < 3; t++)
    for (int fp16 = 0; fp16 < 2; fp16++) {
      int64_t n = counts[t];
      double tol = fp16 ? TOL16 : TOL32;
      float *a = rnd(n, -3, 3), *b = rnd(n, -3, 3), *ref = malloc((size_t)n * 4);
      float *da = dev_copy(a, n), *db = dev_copy(b, n), *dy;
      for (int k = 0; k < 2; k++) {
        pt_act ty = k ? PT_ACT_TANH : PT_ACT_RELU;
        cpu->iface->activation(cpu->ctx, ty, n, fp16, a, ref);
        dy = dev_out(n);
        cr_assert_eq(gpu->iface->activation(gpu->ctx, ty, n, fp16, da, dy), PT_OK);
        check_out(dy, ref, n, tol, k ? "tanh" : "relu");
      }
      cpu->iface->add(cpu->ctx, n, fp16, a, b, ref);
      dy = dev_out(n);
      cr_assert_eq(gpu->iface->add(gpu->ctx, n, fp16, da, db, dy), PT_OK);
      check_out(dy, ref, n, tol, "add");
      cpu->iface->round_f16(cpu->ctx, n, a, ref);
      dy = dev_out(n);
      cr_assert_eq(gpu->iface->round_f16(gpu->ctx, n, da, dy), PT_OK);
      check_out(dy, ref, n, 0.0, "round_f16 (bit-exact)");
      cpu->iface->quantize(cpu->ctx, n, -1.5f, 2.0f, a, ref);
      dy = dev_out(n);
      cr_assert_eq(gpu->iface->quantize(gpu->ctx, n, -1.5f, 2.0f, da, dy), PT_OK);
      check_out(dy, ref, n, 0.0, "quantize (bit-exact)");
      cpu->iface->promise_noise(cpu->ctx, n, 0.21f, 99, 1000, a, ref);
      dy = dev_out(n);
      cr_assert_eq(gpu->iface->promise_noise(gpu->ctx, n, 0.21f, 99, 1000, da, dy), PT_OK);
      check_out(dy, ref, n, TOL32, "promise noise");
      float r1[2], r2[2];
      a[n / 2] = NAN; /* ignored by both */
      float *dn = dev_copy(a, n);
      cpu->iface->minmax(cpu->ctx, n, a, r1);
      cr_assert_eq(gpu->iface->minmax(gpu->ctx, n, dn, r2), PT_OK);
      if (n > 1) cr_assert(r1[0] == r2[0] && r1[1] == r2[1], "minmax %g %g vs %g %g", r2[0], r2[1], r1[0], r1[1]);
      dev_free(dn), dev_free(da), dev_free(db);
      free(a), free(b), free(ref);
    }
  /* batch norm, softmax, pooling */
  for (int fp16 = 0; fp16 < 2; fp16++) {
    double tol = fp16 ? TOL16 : TOL32;
    int n = 3, c = 5, h = 9, w = 7;
    int64_t cnt = (int64_t)n * c * h * w;
    float *x = rnd(cnt, -2, 2), *g = rnd(c, 0.5f, 1.5f), *bb = rnd(c, -1, 1), *m = rnd(c, -1, 1), *v = rnd(c, 0.1f, 2);
    float *ref = malloc((size_t)cnt * 4);
    float *dx = dev_copy(x, cnt), *dg = dev_copy(g, c), *dbb = dev_copy(bb, c), *dm = dev_copy(m, c), *dv = dev_copy(v, c);
    cpu->iface->batchnorm2d(cpu->ctx, n, c, h * w, 1e-5f, fp16, x, g, bb, m, v, ref);
    float *dy = dev_out(cnt);
    cr_assert_eq(gpu->iface->batchnorm2d(gpu->ctx, n, c, h * w, 1e-5f, fp16, dx, dg, dbb, dm, dv, dy), PT_OK);
    check_out(dy, ref, cnt, tol, "batchnorm");
    cpu->iface->softmax(cpu->ctx, n * c, h * w, fp16, x, ref);
    dy = dev_out(cnt);
    cr_assert_eq(gpu->iface->softmax(gpu->ctx, n * c, h * w, fp16, dx, dy), PT_OK);
    check_out(dy, ref, cnt, tol, "softmax");
    const int pools[][6] = {{2, 2, 2, 2, 0, 0}, {3, 3, 2, 2, 1, 1}, {3, 3, 1, 1, 1, 1}};
    for (int p = 0; p < 3; p++)
      for (int is_max = 0; is_max < 2; is_max++) {
        pt_pool_desc pd = {n, c, h, w, pt_km_out_size(h, pools[p][0], pools[p][2], pools[p][4]),
                           pt_km_out_size(w, pools[p][1], pools[p][3], pools[p][5]), pools[p][0], pools[p][1],
                           pools[p][2], pools[p][3], pools[p][4], pools[p][5], is_max, fp16};
        int64_t no = (int64_t)n * c * pd.oh * pd.ow;
        cpu->iface->pool2d(cpu->ctx, &pd, x, ref);
        dy = dev_out(no);
        cr_assert_eq(gpu->iface->pool2d(gpu->ctx, &pd, dx, dy), PT_OK);
        check_out(dy, ref, no, tol, is_max ? "maxpool" : "avgpool");
      }
    dev_free(dx), dev_free(dg), dev_free(dbb), dev_free(dm), dev_free(dv);
    free(x), free(g), free(bb), free(m), free(v), free(ref);
  }
}

/* ---------------- P1 on the GPU equals P1 on the CPU ---------------- */

/* A hand-made app: 6 ops with 2..7 knobs, 1003 rows (not a multiple of any block), `cols` classes;
 * kernel "1" is the simplest P1 kernel, "2" the register one (used up to 16 classes). */
static void p1_case(int cols, const char *kernel) {
  setenv("PT_CUDA_P1_KERNEL", kernel, 1);
  pt_app app;
  memset(&app, 0, sizeof app);
  const int nops = 6, nk[6] = {2, 7, 3, 5, 4, 6};
  int total = 0;
  for (int i = 0; i < nops; i++) total += nk[i];
  cr_assert_eq(pt__app_alloc(&app, nops, total), PT_OK);
  for (int i = 0, off = 0; i < nops; i++) {
    app.n_knobs[i] = nk[i];
    app.entry_off[i] = off;
    off += nk[i];
  }
  app.entry_off[nops] = total;
  const int rows = 1003;
  float *base = rnd((int64_t)rows * cols, -1, 1);
  int32_t *labels = malloc(rows * sizeof *labels);
  for (int r = 0; r < rows; r++) labels[r] = (int32_t)pt_rng_below(&rng, cols);
  const float **d = calloc((size_t)total, sizeof *d);
  for (int op = 0; op < nops; op++)
    for (int p = 1; p < nk[op]; p++) d[app.entry_off[op] + p] = rnd((int64_t)rows * cols, -0.4f, 0.4f);
  pt__p1 m_cpu, m_gpu;
  cr_assert_eq(pt__p1_from_tensors(&app, rows, cols, base, d, labels, &m_cpu), PT_OK);
  cr_assert_eq(pt__p1_from_tensors(&app, rows, cols, base, d, labels, &m_gpu), PT_OK);
  cr_assert_eq(pt__p1_attach(&m_gpu, gpu), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt__p1_attach(&m_cpu, cpu), PT_EUNSUPPORTED);
  const int n = 777;
  uint16_t *cfg = malloc((size_t)n * nops * sizeof *cfg);
  for (int k = 0; k < n; k++)
    for (int op = 0; op < nops; op++) cfg[k * nops + op] = (uint16_t)(k == 0 ? 0 : pt_rng_below(&rng, nk[op]));
  double *q1 = malloc(n * sizeof *q1), *q2 = malloc(n * sizeof *q2);
  cr_assert_eq(pt__p1_predict(&app, &m_cpu, n, cfg, q1), PT_OK);
  cr_assert_eq(pt__p1_predict(&app, &m_gpu, n, cfg, q2), PT_OK);
  int distinct = 0;
  for (int k = 0; k < n; k++) {
    cr_assert_eq(q1[k], q2[k], "%d classes, kernel %s, config %d: CPU %.6f, GPU %.6f", cols, kernel, k, q1[k], q2[k]);
    distinct += k > 0 && q1[k] != q1[0];
  }
  cr_assert(distinct > n / 2, "the random deltas should move most predictions (%d of %d did)", distinct, n);
  pt__p1_free(&m_cpu);
  pt__p1_free(&m_gpu);
  for (int e = 0; e < total; e++) free((void *)d[e]);
  free(d), free(base), free(labels), free(cfg), free(q1), free(q2);
  pt__app_free_tables(&app);
  unsetenv("PT_CUDA_P1_KERNEL");
}

Test(cuda_ops, p1_predictor_matches_cpu, .init = need_gpu, .fini = done) {
  for (int v = 1; v <= 2; v++) {
    const char *k = v == 1 ? "1" : "2";
    p1_case(10, k);
    p1_case(3, k);
    p1_case(16, k);
    p1_case(37, k); /* more classes than the register kernel holds: the first kernel runs */
  }
}

/* ---------------- a whole network: the demo on CUDA gives the CPU's predictions ---------------- */

Test(cuda_ops, demo_network_matches_cpu, .init = need_gpu, .fini = done) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  cr_assert_eq(pt_weights_load(g, PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors"), PT_OK, "%s", pt_last_error());
  pt_dataset *ds;
  cr_assert_eq(pt_dataset_open(PT_SOURCE_DIR "/zoo/demo", "tune", 1, 28, 28, 10, 0, -1, &ds), PT_OK);
  pt_exec *ec, *eg;
  cr_assert_eq(pt_exec_create(g, cpu, &ec), PT_OK);
  cr_assert_eq(pt_exec_create(g, gpu, &eg), PT_OK, "%s", pt_last_error());
  int nops = pt_graph_num_ops(g), n = (int)ds->n;
  pt_op_exec *ops = calloc((size_t)nops, sizeof *ops);
  float *oc = malloc((size_t)n * 10 * 4), *og = malloc((size_t)n * 10 * 4);
  /* configs: exact, all fp16, perforation + sampling on the convolutions */
  for (int cfg = 0; cfg < 4; cfg++) {
    memset(ops, 0, (size_t)nops * sizeof *ops);
    for (int o = 0; o < nops; o++) {
      int is_conv = pt__graph_op_node(g, o)->type == PT_OP_CONV2D;
      if (cfg == 1) ops[o].fp16 = 1;
      if (cfg == 2 && is_conv)
        ops[o] = (pt_op_exec){.kind = PT_APPROX_PERFORATE, .perf_dir = (uint8_t)(o % 2 ? PT_PERF_ROWS : PT_PERF_COLS),
                              .perf_stride = 2, .perf_offset = (uint8_t)(o % 2)};
      if (cfg == 3 && is_conv) ops[o] = (pt_op_exec){.kind = PT_APPROX_SAMPLING, .fp16 = 1, .samp_every = 2,
                                                        .samp_offset = (uint8_t)(o % 2), .samp_interp = 1.0f};
    }
    for (int o = 0; o < nops; o++)
      if (ops[o].kind == PT_APPROX_SAMPLING) ops[o].samp_interp = 1.0f;
    cr_assert_eq(pt_exec_run(ec, ds->images, n, ops, oc), PT_OK, "%s", pt_last_error());
    cr_assert_eq(pt_exec_run(eg, ds->images, n, ops, og), PT_OK, "%s", pt_last_error());
    int same = 0;
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
      int ac = 0, ag = 0;
      for (int j = 1; j < 10; j++) {
        if (oc[i * 10 + j] > oc[i * 10 + ac]) ac = j;
        if (og[i * 10 + j] > og[i * 10 + ag]) ag = j;
      }
      same += ac == ag;
      for (int j = 0; j < 10; j++) {
        double e = (double)og[i * 10 + j] - oc[i * 10 + j];
        num += e * e;
        den += (double)oc[i * 10 + j] * oc[i * 10 + j];
      }
    }
    double err = sqrt(num / den);
    cr_assert(err <= (cfg == 1 || cfg == 3 ? 5e-3 : 1e-5), "config %d: output error %.3g", cfg, err);
    cr_assert(same >= (cfg == 1 || cfg == 3 ? n - 2 : n), "config %d: %d of %d predictions differ", cfg, n - same, n);
  }
  free(ops), free(oc), free(og);
  pt_exec_free(ec);
  pt_exec_free(eg);
  pt_dataset_close(ds);
  pt_graph_free(g);
}

/* ---- run_many on several streams (lanes) ---- */

/* pt_exec_run_many over 1, 2 and 4 CUDA streams equals each config run alone on CUDA: configs form
 * a tree (each a copy of an earlier one with one op changed), so streams run paths that branch off
 * each other's activations; a missing stream wait shows as garbage in some output. */
Test(cuda_ops, run_many_on_streams_equals_each_config_alone, .init = need_gpu, .fini = done) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("resnet18_cifar10", &g), PT_OK);
  pt_graph_init_random(g, 5);
  const int n = 16, n_cfg = 24, no = pt_graph_num_ops(g);
  const int64_t nin = (int64_t)n * 3 * 32 * 32, nout = (int64_t)n * pt_graph_num_classes(g);
  float *x = rnd(nin, -1, 1), *many = malloc((size_t)n_cfg * nout * 4), *alone = malloc((size_t)nout * 4);
  pt_op_exec *ops = calloc((size_t)n_cfg * no, sizeof *ops);
  for (int k = 1; k < n_cfg; k++) {
    memcpy(ops + (int64_t)k * no, ops + (int64_t)(k / 2) * no, (size_t)no * sizeof *ops);
    int op = (int)pt_rng_below(&rng, (uint64_t)no);
    ops[(int64_t)k * no + op] = knob_setting_of(g, op, 1 + (int)pt_rng_below(&rng, 5));
  }
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, gpu, &ex), PT_OK, "%s", pt_last_error());
  pt_promise_ranges *rg = calloc((size_t)no, sizeof *rg);
  cr_assert_eq(pt_exec_calibrate(ex, x, n, rg), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_exec_set_promise(ex, rg, 9), PT_OK);
  pt_cuda_ctx *c = gpu->ctx;
  const int lanes[] = {1, 2, 4};
  for (int li = 0; li < 3; li++) {
    c->n_lanes = lanes[li];
    for (int64_t i = 0; i < (int64_t)n_cfg * nout; i++) many[i] = NAN;
    cr_assert_eq(pt_exec_run_many(ex, x, n, 0, n_cfg, ops, many, NULL), PT_OK, "%s", pt_last_error());
    cr_assert_eq(c->cur, 0, "run_many left lane %d current", c->cur);
    for (int k = 0; k < n_cfg; k++) {
      cr_assert_eq(pt_exec_run_at(ex, x, n, 0, ops + (int64_t)k * no, alone), PT_OK, "%s", pt_last_error());
      double err = norm_err(many + k * nout, alone, nout); /* NaN gives +inf */
      cr_assert(err <= TOL32, "%d streams, config %d: run with the others differs from alone by %.3g", lanes[li], k,
                err);
    }
  }
  for (int l = 0; l < 4; l++) cr_assert_not_null(c->lane[l].stream, "lane %d was never used", l);
  free(x), free(many), free(alone), free(ops), free(rg);
  pt_exec_free(ex);
  pt_graph_free(g);
}
