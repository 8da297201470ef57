/* Fault injection (SQLite style): every operation below is run again and again with its k-th heap
 * allocation failing (k = 1, 2, ... until a run needs fewer than k), once with that allocation alone
 * failing and once with every allocation from the k-th on failing. Each failure must come back as
 * PT_ENOMEM with its own message (never one left over from before: a sentinel message is set before
 * every run), free what it took (the sanitizer build checks for leaks) and never crash; a run that
 * succeeds although an allocation failed must still give the right result. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_ext.h"
#include "core/alloc.h"
#include "graph/graph_internal.h"
#include "predtuner/predtuner.h"
#include "naive.h"

#define SENTINEL "STALE MESSAGE FROM AN EARLIER FAILURE"

typedef pt_status (*fault_op)(void *ctx);
static long fault_k; /* the allocation that fails in the current run (0: none) */

/* Runs op with allocation k failing for k = 1, 2, ... (sticky: k and every later one); returns how
 * many allocations a whole run makes. */
static long fault_loop(const char *what, fault_op op, void *ctx, int sticky) {
  for (long k = 1;; k++) {
    pt_app_set_error(PT_EINVAL, SENTINEL);
    pt__alloc_fail_at(k, sticky);
    fault_k = k;
    pt_status s = op(ctx);
    fault_k = 0;
    int fired = pt__alloc_failed();
    pt__alloc_fail_at(0, 0);
    if (!fired) {
      cr_assert_eq(s, PT_OK, "%s: no allocation failed and it still failed: %s", what, pt_last_error());
      return k - 1;
    }
    if (s == PT_OK) continue; /* the operation got by without that allocation; op checked its result */
    const char *m = pt_last_error();
    cr_assert(!strstr(m, SENTINEL), "%s: allocation %ld failed (%s) and the message is stale: %s", what, k,
              sticky ? "sticky" : "alone", m);
    cr_assert(strstr(m, "out of memory") || strstr(m, "cannot allocate"),
              "%s: allocation %ld failed (%s): the message does not say so: %s", what, k, sticky ? "sticky" : "alone", m);
    cr_assert_eq(s, PT_ENOMEM, "%s: allocation %ld failed (%s): status %s (%s)", what, k, sticky ? "sticky" : "alone",
                 pt_status_name(s), m);
  }
}

static void both_ways(const char *what, fault_op op, void *ctx, long at_least) {
  long n = fault_loop(what, op, ctx, 0);
  cr_assert_geq(n, at_least, "%s: only %ld allocations; the hook is not reached", what, n);
  cr_assert_eq(fault_loop(what, op, ctx, 1), n, "%s: a run makes as many allocations either way", what);
}

/* ---- knobs: the built-in set, a knob file, the search space, a config resolved ---- */

static pt_status knobs_op(void *ctx) {
  (void)ctx;
  size_t len;
  char *txt = read_all(PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json", &len);
  cr_assert_not_null(txt);
  pt_knob_set *ks = NULL, *kd = NULL;
  pt_graph *g = NULL;
  pt_space *sp = NULL;
  pt_status s = pt_knobs_parse(txt, len, "knobs_custom.json", &ks);
  if (s == PT_OK) s = pt_knobs_default(&kd);
  if (s == PT_OK) s = pt_zoo_build("lenet_mnist", &g);
  if (s == PT_OK) s = pt_space_build(g, kd, PT_DEVICE_CPU, &sp);
  if (s == PT_OK) {
    const char *ops[] = {"convs.0"}, *knobs[] = {"123"};
    pt_op_exec ex[10];
    s = pt_config_resolve(sp, kd, 1, ops, knobs, ex, NULL);
    if (s == PT_OK) cr_assert(ex[0].kind == PT_APPROX_PERFORATE && ex[0].perf_dir == PT_PERF_ROWS);
  }
  pt_space_free(sp);
  pt_graph_free(g);
  pt_knobs_free(ks);
  pt_knobs_free(kd);
  free(txt);
  return s;
}

Test(faults, knob_sets_and_spaces) { both_ways("knobs", knobs_op, NULL, 10); }

/* ---- the executor: create, run, run_many, PromiseSim calibration ---- */

typedef struct exec_case {
  pt_graph *g;
  pt_backend *be;
  float x[2 * 784];
  float want[4][20]; /* per config: the output of 2 images */
  pt_op_exec ops[4][10];
} exec_case;

static pt_status exec_op(void *ctx) {
  exec_case *c = ctx;
  pt_exec *ex = NULL;
  float y[4 * 20];
  pt_promise_ranges r[10];
  memset(r, 0, sizeof r);
  pt_status s = pt_exec_create(c->g, c->be, &ex);
  if (s == PT_OK) pt_exec_set_prefix_cache(ex, 1 << 20);
  if (s == PT_OK) s = pt_exec_calibrate(ex, c->x, 2, r);
  if (s == PT_OK) s = pt_exec_set_promise(ex, r, 3);
  if (s == PT_OK) s = pt_exec_run(ex, c->x, 2, c->ops[1], y);
  if (s == PT_OK) cr_assert(!memcmp(y, c->want[1], sizeof c->want[1]), "run: the output changed");
  if (s == PT_OK) s = pt_exec_run_many(ex, c->x, 2, 0, 4, &c->ops[0][0], y, NULL);
  if (s == PT_OK) cr_assert(!memcmp(y, c->want, sizeof c->want), "run_many: the output changed");
  if (s == PT_OK) s = pt_exec_run_many(ex, c->x, 2, 0, 4, &c->ops[0][0], y, NULL); /* from the kept prefix */
  if (s == PT_OK) cr_assert(!memcmp(y, c->want, sizeof c->want), "run_many again: the output changed");
  pt_exec_prefix_stats st;
  if (s == PT_OK && !pt__alloc_failed()) { /* a clean run resumed the last config from its kept prefix */
    pt_exec_prefix_cache_stats(ex, &st);
    cr_assert_eq(st.restores, 1, "%lld resumptions", (long long)st.restores);
  }
  double sec[4];
  if (s == PT_OK) s = pt_exec_run_many(ex, c->x, 2, 0, 4, &c->ops[0][0], y, sec);
  if (s == PT_OK) cr_assert(!memcmp(y, c->want, sizeof c->want), "timed run_many: the output changed");
  pt_exec_free(ex);
  return s;
}

Test(faults, executor) {
  exec_case *c = calloc(1, sizeof *c);
  cr_assert_eq(pt_zoo_build("lenet_mnist", &c->g), PT_OK);
  pt_graph_init_random(c->g, 7);
  cr_assert_eq(pt_backend_create("cpu", 2, &c->be), PT_OK);
  pt_rng rng;
  pt_rng_seed(&rng, 11);
  fill_uniform(&rng, c->x, 2 * 784, 0, 1);
  for (int k = 0; k < 4; k++) /* configs sharing prefixes, with every kind of setting; the last one exact up to op 3 */
    for (int op = 0; op < 10; op++)
      c->ops[k][op] = knob_setting_of(c->g, op, k == 0 || (k == 3 && op < 3) ? 0 : (op + k) % 6);
  pt_exec *ex;
  pt_promise_ranges r[10];
  memset(r, 0, sizeof r);
  cr_assert_eq(pt_exec_create(c->g, c->be, &ex), PT_OK);
  cr_assert_eq(pt_exec_calibrate(ex, c->x, 2, r), PT_OK);
  cr_assert_eq(pt_exec_set_promise(ex, r, 3), PT_OK);
  for (int k = 0; k < 4; k++) cr_assert_eq(pt_exec_run(ex, c->x, 2, c->ops[k], c->want[k]), PT_OK, "%s", pt_last_error());
  pt_exec_free(ex);
  both_ways("executor", exec_op, c, 40);
  pt_backend_free(c->be);
  pt_graph_free(c->g);
  free(c);
}

/* ---- the DNN app on the demo: load, knob space, measure ---- */

static pt_status dnn_op(void *ctx) {
  const double *want = ctx;
  pt_dnn_app_opts o = {.model = "lenet_mnist", .weights = PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors",
                       .data = PT_SOURCE_DIR "/zoo/demo", .backend = "cpu", .threads = 2, .batch_size = 25,
                       .tune_count = 50, .test_count = 50, .target_device = "cpu"};
  pt_app *app = NULL;
  pt_status s = pt_app_dnn_create(&o, &app);
  uint16_t cfg[2 * 10] = {0};
  double q[2];
  if (s == PT_OK) {
    cfg[10 + 0] = 3, cfg[10 + 3] = 7; /* a perforated and a sampled convolution */
    s = pt_app_measure(app, 2, cfg, 0, q, NULL);
  }
  if (s == PT_OK) cr_assert(q[0] == want[0] && q[1] == want[1], "QoS %g %g, not %g %g", q[0], q[1], want[0], want[1]);
  pt_app_free(app);
  return s;
}

Test(faults, dnn_app_on_the_demo, .timeout = 600) {
  double want[2]; /* the reference QoS, measured once without faults */
  pt_dnn_app_opts o = {.model = "lenet_mnist", .weights = PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors",
                       .data = PT_SOURCE_DIR "/zoo/demo", .backend = "cpu", .threads = 2, .batch_size = 25,
                       .tune_count = 50, .test_count = 50, .target_device = "cpu"};
  pt_app *app;
  cr_assert_eq(pt_app_dnn_create(&o, &app), PT_OK, "%s", pt_last_error());
  uint16_t cfg[20] = {0};
  cfg[10] = 3, cfg[13] = 7;
  cr_assert_eq(pt_app_measure(app, 2, cfg, 0, want, NULL), PT_OK);
  pt_app_free(app);
  long n = fault_loop("DNN app", dnn_op, want, 0);
  cr_assert_geq(n, 100, "DNN app: only %ld allocations", n);
}

/* ---- the whole tuning pipeline on a generic app: models, search, journal, selection, results ---- */

#define GOPS 4
static pt_status add_measure(void *user, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  (void)user;
  static const double loss[3] = {0, 0.4, 1.5};
  for (int k = 0; k < n; k++) {
    qos[k] = 100 - test;
    for (int op = 0; op < GOPS; op++) qos[k] -= loss[cfgs[k * GOPS + op]] * (op + 1);
    cost[k] = NAN;
  }
  return PT_OK;
}

typedef struct tune_case {
  char dir[64];
  double best_speedup; /* of the run without faults */
} tune_case;

static pt_status tune_op(void *ctx) {
  tune_case *c = ctx;
  static const pt_generic_knob k[3] = {{"exact", 1.0}, {"half", 2.0}, {"quarter", 4.0}};
  static const char *names[GOPS] = {"a", "b", "c", "d"};
  pt_generic_op ops[GOPS];
  for (int i = 0; i < GOPS; i++) ops[i] = (pt_generic_op){names[i], 10.0 * (i + 1), 3, k};
  char cmd[128], path[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", c->dir);
  cr_assert_eq(system(cmd), 0);
  pt_app *app = NULL;
  pt_tuner *t = NULL;
  pt_status s = pt_app_generic_create("faults", GOPS, ops, add_measure, NULL, &app);
  if (s == PT_OK) s = pt_tuner_create(app, &t);
  if (s == PT_OK) {
    pt_tune_opts o;
    pt_tune_opts_init(&o);
    o.max_iter = 40;
    o.search_batch = 16;
    o.qos_model = PT_QOS_P2;
    o.cost_model = PT_COST_LINEAR;
    o.take_best_n = 5;
    o.output_dir = c->dir;
    s = pt_tuner_tune(t, &o);
  }
  snprintf(path, sizeof path, "%s/configs.json", c->dir);
  if (s == PT_OK) s = pt_tuner_dump_configs(t, path, 1);
  if (s == PT_OK) {
    pt_tuned_config best;
    cr_assert_gt(pt_tuner_count(t, PT_BEST), 0);
    cr_assert_eq(pt_tuner_get(t, PT_BEST, 0, &best), PT_OK);
    if (c->best_speedup > 0) cr_assert_eq(best.speedup, c->best_speedup, "the best config changed (allocation %ld of the run failed)", fault_k);
    else c->best_speedup = best.speedup;
  }
  pt_tuner_free(t);
  pt_app_free(app);
  return s;
}

Test(faults, tuning_pipeline, .timeout = 600) {
  tune_case c = {0};
  snprintf(c.dir, sizeof c.dir, "/tmp/pt_faults_%d", (int)getpid());
  cr_assert_eq(tune_op(&c), PT_OK, "%s", pt_last_error()); /* the reference */
  both_ways("tuning", tune_op, &c, 50);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", c.dir);
  cr_assert_eq(system(cmd), 0);
}

/* ---- readers: ONNX, PyTorch checkpoints, safetensors, configs ---- */

static pt_status readers_op(void *ctx) {
  (void)ctx;
  pt_graph *g = NULL;
  pt_pth *p = NULL;
  pt_safetensors *st = NULL;
  pt_config_list *cl = NULL;
  pt_status s = pt_onnx_load(PT_SOURCE_DIR "/tests/fixtures/onnx/tiny_cnn.onnx", &g);
  if (s == PT_OK) s = pt_pth_open(PT_SOURCE_DIR "/tests/fixtures/pth/checkpoint.pth.tar", &p);
  if (s == PT_OK) s = pt_st_open(PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors", &st);
  if (s == PT_OK) {
    const char *js = "{\"configs\": [{\"knobs\": {\"convs.0\": \"123\", \"convs.3\": \"11\"}, \"qos\": 95.0}]}";
    s = pt_configs_parse(js, strlen(js), "configs", &cl);
  }
  pt_configs_free(cl);
  pt_st_close(st);
  pt_pth_close(p);
  pt_graph_free(g);
  return s;
}

Test(faults, readers) { both_ways("readers", readers_op, NULL, 20); }

/* ---- fp16 convolutions on the backend's own kernels: the direct kernel rounds its own copies of
 * the input, so x gets a rounded copy only when the direct kernel's buffers do not fit and
 * im2col + GEMM (which read x itself) take over; each failure is PT_ENOMEM, every success right ---- */

typedef struct conv_case {
  pt_backend *be;
  pt_conv_desc d[3];
  float x[2 * 8 * 16 * 16], w[16 * 8 * 9], b[16], want[3][2 * 16 * 16 * 16], y[2 * 16 * 16 * 16];
} conv_case;

static pt_status conv_op(void *ctx) {
  conv_case *c = ctx;
  const int64_t ny = (int64_t)2 * 16 * 16 * 16;
  for (int k = 0; k < 3; k++) {
    for (int64_t i = 0; i < ny; i++) c->y[i] = NAN;
    pt_status s = c->be->iface->conv2d(c->be->ctx, &c->d[k], c->x, c->w, c->b, c->y);
    if (s != PT_OK) return s;
    /* the fallback sums in another order: within binary16's rounding of the same sums, image by
     * image (image 1's input rounds to 0: unrounded, its sums would move its outputs off the bias) */
    for (int i = 0; i < 2; i++) {
      const double e = norm_err(c->y + i * ny / 2, c->want[k] + i * ny / 2, ny / 2);
      cr_assert(e <= 2e-3, "conv %d image %d: error %g after allocation %ld failed", k, i, e, fault_k);
    }
  }
  return PT_OK;
}

Test(faults, fp16_convolutions_on_the_own_kernels) {
  setenv("PT_CPU_DNNL", "0", 1); /* read when the backend is created: the own kernels only */
  conv_case *c = calloc(1, sizeof *c);
  cr_assert_eq(pt_backend_create("cpu", 2, &c->be), PT_OK);
  unsetenv("PT_CPU_DNNL");
  pt_rng r;
  pt_rng_seed(&r, 5);
  /* image 0 of x uniform, image 1 all 2.5e-8 (0 in binary16); weights large and positive, so that
   * image 1's sums, unrounded, would be about 1e-3, far above binary16's steps near the bias */
  fill_uniform(&r, c->x, 8 * 16 * 16, -1, 1), fill_uniform(&r, c->w, 16 * 8 * 9, 500, 1000);
  for (int i = 8 * 16 * 16; i < 2 * 8 * 16 * 16; i++) c->x[i] = 2.5e-8f;
  fill_uniform(&r, c->b, 16, -0.2f, 0.2f);
  const pt_conv_desc base = {.n = 2, .cin = 8, .h = 16, .w = 16, .cout = 16, .oh = 16, .ow = 16, .kh = 3, .kw = 3,
                             .sh = 1, .sw = 1, .ph = 1, .pw = 1, .groups = 1, .fp16 = 1};
  for (int k = 0; k < 3; k++) c->d[k] = base;
  c->d[0].samp_every = 3, c->d[0].samp_scale = 1.5f;          /* sampling: no fill */
  c->d[1].perf_dir = PT_PERF_ROWS, c->d[1].perf_stride = 2;    /* row perforation: the fill */
  c->d[2].perf_dir = PT_PERF_COLS, c->d[2].perf_stride = 2;    /* column perforation: filled in the blocks */
  pt_backend_conv_paths_fn paths = (pt_backend_conv_paths_fn)pt__backend_get_proc(c->be, PT_BACKEND_PROC_CONV_PATHS);
  cr_assert_not_null(paths);
  int64_t before[PT_CONV_PATHS] = {0}, after[PT_CONV_PATHS] = {0};
  paths(c->be->ctx, before);
  for (int k = 0; k < 3; k++)
    cr_assert_eq(c->be->iface->conv2d(c->be->ctx, &c->d[k], c->x, c->w, c->b, c->want[k]), PT_OK, "%s", pt_last_error());
  paths(c->be->ctx, after);
#if defined(__x86_64__) && defined(__GNUC__)
  /* the direct kernel takes sampling and row perforation here (column perforation too with AVX2 alone) */
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    cr_assert_geq(after[PT_CONV_PATH_OWN_DIRECT] - before[PT_CONV_PATH_OWN_DIRECT], 2);
#endif
  both_ways("fp16 convolutions", conv_op, c, 6);
  pt_backend_free(c->be);
  free(c);
}
