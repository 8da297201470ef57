/* Every CPU op against a plain loop on random data over many shapes. Outputs are poisoned with NaN
 * before the op and followed by sentinel guards that must survive it. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ext.h"
#include "backend/cpu/cpu_math.h"
#include "naive.h"
#include "predtuner/predtuner.h"

#define GUARD 64
static pt_backend *be;
static void setup(void) { cr_assert_eq(pt_backend_create("cpu", 2, &be), PT_OK); }
static void teardown(void) { pt_backend_free(be); }
TestSuite(cpu_ops, .init = setup, .fini = teardown);

typedef struct conv_case {
  int n, cin, h, w, cout, k, stride, pad, groups, bias;
} conv_case;

static const conv_case conv_cases[] = {
    {1, 1, 5, 5, 1, 3, 1, 0, 1, 1},    {2, 3, 7, 9, 4, 3, 1, 1, 1, 1},     {3, 4, 11, 10, 6, 3, 2, 1, 1, 0},
    {2, 6, 9, 9, 6, 3, 1, 1, 6, 0},    {2, 6, 8, 7, 4, 3, 2, 1, 2, 1},     {1, 8, 6, 6, 16, 1, 1, 0, 1, 1},
    {2, 3, 13, 13, 5, 5, 2, 2, 1, 1},  {5, 16, 4, 4, 32, 3, 1, 1, 1, 1},   {4, 3, 12, 12, 8, 11, 4, 5, 1, 1},
    {2, 6, 9, 9, 12, 3, 2, 1, 6, 1},   {1, 2, 1, 1, 3, 1, 1, 0, 1, 1},     {3, 2, 2, 3, 3, 3, 1, 1, 1, 1},
    {7, 3, 32, 32, 8, 3, 1, 1, 1, 1},  {2, 4, 8, 8, 8, 1, 2, 0, 1, 1},     {33, 5, 2, 2, 7, 3, 1, 1, 1, 1},
    {2, 32, 16, 16, 32, 3, 2, 1, 32, 0}, {1, 3, 224, 224, 4, 7, 2, 3, 1, 1}, {3, 12, 5, 5, 12, 3, 1, 1, 3, 1},
};

static void run_conv_on(pt_backend *bk, const conv_case *c, int fp16) {
  pt_rng r;
  pt_rng_seed(&r, (uint64_t)(c->n * 1000 + c->cin * 100 + c->h + fp16));
  int oh = (c->h + 2 * c->pad - c->k) / c->stride + 1, ow = (c->w + 2 * c->pad - c->k) / c->stride + 1;
  pt_conv_desc d = {c->n, c->cin, c->h, c->w, c->cout, oh, ow, c->k, c->k, c->stride, c->stride, c->pad, c->pad,
                    c->groups, fp16, 0, 0, 0, 0, 0, 0.0f};
  int64_t nx = (int64_t)c->n * c->cin * c->h * c->w, nw = (int64_t)c->cout * (c->cin / c->groups) * c->k * c->k,
          ny = (int64_t)c->n * c->cout * oh * ow;
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc(c->cout * sizeof *b);
  fill_uniform(&r, x, nx, -1, 1);
  fill_uniform(&r, w, nw, -0.5f, 0.5f);
  fill_uniform(&r, b, c->cout, -0.2f, 0.2f);
  float *y = alloc_guarded(ny, GUARD), *ref = malloc(ny * sizeof *ref);
  cr_assert_eq(bk->iface->conv2d(bk->ctx, &d, x, w, c->bias ? b : NULL, y), PT_OK, "%s", pt_last_error());
  if (fp16) { /* the reference: exact convolution of the rounded operands, then rounded */
    pt_round_f16_array(x, nx);
    pt_round_f16_array(w, nw);
    pt_round_f16_array(b, c->cout);
  }
  naive_conv2d(&d, x, w, c->bias ? b : NULL, ref);
  if (fp16) pt_round_f16_array(ref, ny);
  double err = norm_err(y, ref, ny), tol = fp16 ? 2e-3 : 1e-5;
  cr_assert(err <= tol, "conv n%d c%d %dx%d -> %d k%d s%d p%d g%d fp16 %d: error %g", c->n, c->cin, c->h, c->w,
            c->cout, c->k, c->stride, c->pad, c->groups, fp16, err);
  cr_assert(guard_intact(y, ny, GUARD), "conv wrote past its output");
  if (fp16)
    for (int64_t i = 0; i < ny; i++) cr_assert_eq(y[i], pt_round_f16(y[i]), "fp16 output not a half value");
  free(x);
  free(w);
  free(b);
  free(y);
  free(ref);
}

static void run_conv(const conv_case *c, int fp16) { run_conv_on(be, c, fp16); }

Test(cpu_ops, conv2d_fp32_matches_naive_loop) {
  for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) run_conv(&conv_cases[i], 0);
}

/* Built with oneDNN, exact convolutions run on it (the backend says so) and PT_CPU_DNNL=0 turns it
 * off; the backend's own kernels then match the naive loop as well. */
Test(cpu_ops, conv2d_fp32_with_and_without_onednn) {
  const char *desc = pt_backend_describe(be);
  cr_assert_eq(strstr(desc, "oneDNN") != NULL, PT_TEST_HAVE_DNNL, "built %s oneDNN, backend: %s",
               PT_TEST_HAVE_DNNL ? "with" : "without", desc);
  setenv("PT_CPU_DNNL", "0", 1);
  pt_backend *own;
  cr_assert_eq(pt_backend_create("cpu", 2, &own), PT_OK);
  unsetenv("PT_CPU_DNNL");
  cr_assert_null(strstr(pt_backend_describe(own), "oneDNN"), "%s", pt_backend_describe(own));
  for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) run_conv_on(own, &conv_cases[i], 0);
  pt_backend_free(own);
}

/* FP16Approx through both paths (oneDNN by default when built with it, the own kernels with
 * PT_CPU_DNNL=0): each matches the rounded naive loop and gives binary16 values, and the backend's
 * path counts say where each ran. */
Test(cpu_ops, conv2d_fp16_with_and_without_onednn) {
  const char *modes[] = {"default", "0"};
  const size_t ncases = sizeof conv_cases / sizeof conv_cases[0];
  for (int m = 0; m < 2; m++) {
    setenv("PT_CPU_DNNL", modes[m], 1);
    pt_backend *bk;
    cr_assert_eq(pt_backend_create("cpu", 2, &bk), PT_OK);
    unsetenv("PT_CPU_DNNL");
    for (size_t i = 0; i < ncases; i++) run_conv_on(bk, &conv_cases[i], 1);
    int64_t n[PT_CONV_PATHS] = {0};
    pt_backend_conv_paths_fn paths = (pt_backend_conv_paths_fn)pt__backend_get_proc(bk, PT_BACKEND_PROC_CONV_PATHS);
    cr_assert(paths);
    paths(bk->ctx, n);
    cr_assert_eq(n[PT_CONV_PATH_OWN] + n[PT_CONV_PATH_DNNL_EXACT], (int64_t)ncases);
    if (m == 0 && PT_TEST_HAVE_DNNL)
      cr_assert(n[PT_CONV_PATH_DNNL_EXACT] * 2 >= (int64_t)ncases, "%lld of %zu on oneDNN",
                (long long)n[PT_CONV_PATH_DNNL_EXACT], ncases);
    else
      cr_assert_eq(n[PT_CONV_PATH_DNNL_EXACT], 0);
    pt_backend_free(bk);
  }
}

/* PT_CPU_DNNL takes 0, exact, default or all; anything else is refused with one line naming it,
 * not taken as the default. */
Test(cpu_ops, unknown_onednn_mode_is_refused) {
  const char *good[] = {"0", "exact", "default", "all", ""};
  for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
    setenv("PT_CPU_DNNL", good[i], 1);
    pt_backend *bk = NULL;
    cr_assert_eq(pt_backend_create("cpu", 1, &bk), PT_OK, "PT_CPU_DNNL=%s: %s", good[i], pt_last_error());
    pt_backend_free(bk);
  }
  const char *bad[] = {"1", "yes", "ALL", "exact "};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    setenv("PT_CPU_DNNL", bad[i], 1);
    pt_backend *bk = NULL;
    cr_assert_eq(pt_backend_create("cpu", 1, &bk), PT_EINVAL, "PT_CPU_DNNL=%s accepted", bad[i]);
    cr_assert_null(bk);
    cr_assert(strstr(pt_last_error(), "PT_CPU_DNNL") && !strchr(pt_last_error(), '\n'), "%s", pt_last_error());
  }
  unsetenv("PT_CPU_DNNL");
}

Test(cpu_ops, conv2d_fp16_matches_rounded_naive_loop) {
  for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) run_conv(&conv_cases[i], 1);
}

Test(cpu_ops, linear_matches_naive_loop) {
  static const int cases[][3] = {{1, 5, 3}, {7, 33, 10}, {4, 512, 512}, {3, 3136, 17}, {500, 64, 10}};
  pt_rng r;
  pt_rng_seed(&r, 3);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int fp16 = 0; fp16 < 2; fp16++) {
      int n = cases[c][0], in = cases[c][1], out = cases[c][2];
      float *x = malloc((size_t)n * in * 4), *w = malloc((size_t)in * out * 4), *b = malloc((size_t)out * 4);
      fill_uniform(&r, x, (int64_t)n * in, -1, 1);
      fill_uniform(&r, w, (int64_t)in * out, -0.3f, 0.3f);
      fill_uniform(&r, b, out, -1, 1);
      float *y = alloc_guarded((int64_t)n * out, GUARD), *ref = malloc((size_t)n * out * 4);
      cr_assert_eq(be->iface->linear(be->ctx, n, in, out, fp16, x, w, b, y), PT_OK);
      if (fp16) {
        pt_round_f16_array(x, (size_t)n * in);
        pt_round_f16_array(w, (size_t)in * out);
        pt_round_f16_array(b, (size_t)out);
      }
      naive_linear(n, in, out, x, w, b, ref);
      if (fp16) pt_round_f16_array(ref, (size_t)n * out);
      double err = norm_err(y, ref, (int64_t)n * out);
      cr_assert(err <= (fp16 ? 2e-3 : 1e-5), "linear %dx%d->%d fp16 %d: error %g", n, in, out, fp16, err);
      cr_assert(guard_intact(y, (int64_t)n * out, GUARD));
      free(x), free(w), free(b), free(y), free(ref);
    }
}

Test(cpu_ops, pooling_matches_naive_loop) {
  /* n, c, h, w, k, stride, pad, is_max */
  static const int cases[][8] = {{2, 3, 8, 8, 2, 2, 0, 1},   {1, 2, 7, 7, 3, 2, 1, 1}, {2, 3, 8, 8, 8, 8, 0, 0},
                                 {1, 4, 13, 13, 3, 2, 0, 0}, {3, 5, 9, 6, 2, 2, 0, 1}, {2, 2, 55, 55, 3, 2, 0, 1},
                                 {1, 3, 5, 5, 3, 1, 1, 0},   {4, 1, 2, 2, 2, 2, 0, 0}};
  pt_rng r;
  pt_rng_seed(&r, 4);
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const int *q = cases[c];
    int oh = (q[2] + 2 * q[6] - q[4]) / q[5] + 1, ow = (q[3] + 2 * q[6] - q[4]) / q[5] + 1;
    pt_pool_desc d = {q[0], q[1], q[2], q[3], oh, ow, q[4], q[4], q[5], q[5], q[6], q[6], q[7], 0};
    int64_t nx = (int64_t)q[0] * q[1] * q[2] * q[3], ny = (int64_t)q[0] * q[1] * oh * ow;
    float *x = malloc(nx * 4), *y = alloc_guarded(ny, GUARD), *ref = malloc(ny * 4);
    fill_uniform(&r, x, nx, -2, 2);
    cr_assert_eq(be->iface->pool2d(be->ctx, &d, x, y), PT_OK);
    naive_pool2d(&d, x, ref);
    double err = norm_err(y, ref, ny);
    cr_assert(err <= 1e-6, "pool case %zu: error %g", c, err);
    cr_assert(guard_intact(y, ny, GUARD));
    free(x), free(y), free(ref);
  }
}

Test(cpu_ops, batchnorm_activations_add_softmax_match_naive) {
  pt_rng r;
  pt_rng_seed(&r, 5);
  const int n = 3, c = 7;
  const int64_t hw = 11 * 5, cnt = (int64_t)n * c * hw;
  float *x = malloc(cnt * 4), *x2 = malloc(cnt * 4), *ref = malloc(cnt * 4), *y = alloc_guarded(cnt, GUARD);
  float w[7], b[7], m[7], v[7];
  fill_uniform(&r, x, cnt, -3, 3);
  fill_uniform(&r, x2, cnt, -3, 3);
  fill_uniform(&r, w, c, 0.5f, 1.5f);
  fill_uniform(&r, b, c, -1, 1);
  fill_uniform(&r, m, c, -0.5f, 0.5f);
  fill_uniform(&r, v, c, 0.1f, 2.0f);
  cr_assert_eq(be->iface->batchnorm2d(be->ctx, n, c, hw, 1e-3f, 0, x, w, b, m, v, y), PT_OK);
  naive_batchnorm2d(n, c, hw, 1e-3f, x, w, b, m, v, ref);
  cr_assert(norm_err(y, ref, cnt) <= 1e-6 && guard_intact(y, cnt, GUARD));

  cr_assert_eq(be->iface->activation(be->ctx, PT_ACT_RELU, cnt, 0, x, y), PT_OK);
  for (int64_t i = 0; i < cnt; i++) cr_assert_eq(y[i], x[i] > 0 ? x[i] : 0.0f);
  cr_assert_eq(be->iface->activation(be->ctx, PT_ACT_TANH, cnt, 0, x, y), PT_OK);
  for (int64_t i = 0; i < cnt; i++) cr_assert_float_eq(y[i], tanh(x[i]), 1e-6);
  cr_assert_eq(be->iface->activation(be->ctx, PT_ACT_TANH, cnt, 1, x, y), PT_OK);
  for (int64_t i = 0; i < cnt; i++) cr_assert_eq(y[i], pt_round_f16(pt__cpu_tanhf(pt_round_f16(x[i]))));
  cr_assert_eq(be->iface->activation(be->ctx, (pt_act)7, cnt, 0, x, y), PT_EUNSUPPORTED);

  cr_assert_eq(be->iface->add(be->ctx, cnt, 0, x, x2, y), PT_OK);
  for (int64_t i = 0; i < cnt; i++) cr_assert_eq(y[i], x[i] + x2[i]);
  cr_assert(guard_intact(y, cnt, GUARD));

  cr_assert_eq(be->iface->softmax(be->ctx, 21, 55, 0, x, y), PT_OK);
  naive_softmax(21, 55, x, ref);
  cr_assert(norm_err(y, ref, 21 * 55) <= 1e-6);
  for (int i = 0; i < 21; i++) {
    double s = 0;
    for (int j = 0; j < 55; j++) s += y[i * 55 + j];
    cr_assert_float_eq(s, 1.0, 1e-5);
  }
  free(x), free(x2), free(ref), free(y);
}

Test(cpu_ops, argmax_ties_go_to_the_first_index) {
  float v[5] = {1, 3, 3, -1, 2};
  cr_assert_eq(pt_argmax(v, 5), 1);
  float w[3] = {NAN, 0.5f, 0.5f};
  cr_assert_eq(pt_argmax(w, 3), 1);
  float out[2 * 3] = {0.1f, 0.9f, 0.9f, 5, 4, 3};
  int32_t labels[2] = {2, 0};
  cr_assert_float_eq(pt_topk_accuracy(out, labels, 2, 3, 1), 50.0, 1e-12);
  cr_assert_float_eq(pt_topk_accuracy(out, labels, 2, 3, 2), 100.0, 1e-12);
}

/* The backend's vectorisable tanh against tanh in double: within 2 ulp over [-20, 20] (and the
 * special values: signed zeros, infinities, NaN, subnormals, the switch point 0.625). */
Test(cpu_ops, tanh_is_within_two_ulp) {
  double worst = 0;
  float worst_x = 0;
  for (int i = -(1 << 20); i <= (1 << 20); i++) {
    const float x = (float)i * (20.0f / (1 << 20));
    const double t = tanh((double)x);
    const float tf = (float)t, ulp = nextafterf(fabsf(tf), INFINITY) - fabsf(tf);
    const double e = fabs((double)pt__cpu_tanhf(x) - t) / ulp;
    if (e > worst) worst = e, worst_x = x;
  }
  cr_assert(worst <= 2.0, "%.2f ulp at x = %.9g", worst, worst_x);
  const float sp[] = {0.0f, -0.0f, 1e-40f, -1e-40f, 0.625f, nextafterf(0.625f, 0), 9.0f, 10.0f, 100.0f};
  for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++)
    cr_assert(fabs((double)pt__cpu_tanhf(sp[k]) - tanh((double)sp[k])) <= 1.2e-7, "x = %g", sp[k]);
  volatile float nz = -0.0f, inf = INFINITY; /* at run time, as tensors hold them */
  cr_assert(signbit(pt__cpu_tanhf(nz)), "tanh(-0) = %g", pt__cpu_tanhf(nz));
  cr_assert(pt__cpu_tanhf(inf) == 1.0f && pt__cpu_tanhf(-inf) == -1.0f, "tanh(inf) = %g, tanh(-inf) = %g",
            pt__cpu_tanhf(inf), pt__cpu_tanhf(-inf));
  cr_assert(isnan(pt__cpu_tanhf(NAN)));
}
