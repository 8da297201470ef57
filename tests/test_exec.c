/* Whole networks: the executor on the CPU backend against the naive reference interpreter, the
 * bundled demo against the predictions PyTorch made, and QoS per-batch averaging. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "lanes_backend.h"
#include "naive.h"
#include "predtuner/predtuner.h"

#define DEMO PT_SOURCE_DIR "/zoo/demo"

static pt_backend *be;
static void setup(void) { cr_assert_eq(pt_backend_create("cpu", 2, &be), PT_OK); }
static void teardown(void) { pt_backend_free(be); }
TestSuite(exec, .init = setup, .fini = teardown);

static void check_network(const char *name, int n, double tol) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build(name, &g), PT_OK);
  pt_graph_init_random(g, 42);
  int c, h, w;
  pt_graph_input_shape(g, &c, &h, &w);
  int64_t nin = (int64_t)n * c * h * w, nout = (int64_t)n * pt_graph_num_classes(g);
  float *x = malloc(nin * 4), *y = malloc(nout * 4), *ref = malloc(nout * 4);
  pt_rng r;
  pt_rng_seed(&r, 9);
  fill_uniform(&r, x, nin, -1, 1);
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_exec_run(ex, x, n, NULL, y), PT_OK, "%s", pt_last_error());
  naive_run_graph(g, x, n, ref);
  double err = norm_err(y, ref, nout);
  cr_assert(err <= tol, "%s: executor vs naive error %g", name, err);
  /* a second run with another batch size reuses the buffer pool and still agrees */
  cr_assert_eq(pt_exec_run(ex, x, 1, NULL, y), PT_OK);
  cr_assert(norm_err(y, ref, pt_graph_num_classes(g)) <= tol);
  pt_exec_free(ex);
  free(x), free(y), free(ref);
  pt_graph_free(g);
}

Test(exec, lenet_matches_naive) { check_network("lenet_mnist", 3, 1e-5); }
Test(exec, alexnet2_matches_naive) { check_network("alexnet2_cifar10", 3, 1e-5); }
Test(exec, resnet18_with_residual_adds_matches_naive) { check_network("resnet18_cifar10", 3, 1e-5); }
Test(exec, mobilenet_with_depthwise_and_batchnorm_matches_naive) { check_network("mobilenet_cifar10", 2, 1e-5); }
Test(exec, vgg16_cifar10_matches_naive) { check_network("vgg16_cifar10", 2, 1e-5); }

Test(exec, unloaded_weights_are_an_error) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  pt_exec *ex = (pt_exec *)1;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_EINVAL);
  cr_assert_null(ex);
  cr_assert_not_null(strstr(pt_last_error(), "convs.0.weight"));
  pt_graph_free(g);
}

Test(exec, fp16_everywhere_is_close_but_not_equal) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("resnet18_cifar10", &g), PT_OK);
  pt_graph_init_random(g, 1);
  int n = 2, nin = n * 3 * 32 * 32;
  float *x = malloc(nin * 4), y32[20], y16[20];
  pt_rng r;
  pt_rng_seed(&r, 2);
  fill_uniform(&r, x, nin, -1, 1);
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
  pt_op_exec *ops = calloc(pt_graph_num_ops(g), sizeof *ops);
  for (int i = 0; i < pt_graph_num_ops(g); i++) ops[i].fp16 = 1;
  cr_assert_eq(pt_exec_run(ex, x, n, NULL, y32), PT_OK);
  cr_assert_eq(pt_exec_run(ex, x, n, ops, y16), PT_OK);
  double err = norm_err(y16, y32, 20);
  cr_assert(err > 0 && err < 2e-2, "fp16 vs fp32 error %g", err);
  for (int i = 0; i < 20; i++) cr_assert_eq(y16[i], pt_round_f16(y16[i]));
  free(ops);
  free(x);
  pt_exec_free(ex);
  pt_graph_free(g);
}

static int32_t *read_preds(const char *path, size_t *n) {
  size_t len;
  int32_t *p = read_all(path, &len);
  cr_assert_not_null(p, "%s missing", path);
  *n = len / 4;
  return p;
}

static void demo_split(const char *split, const char *expected) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  cr_assert_eq(pt_weights_load(g, DEMO "/lenet_mnist.safetensors"), PT_OK, "%s", pt_last_error());
  pt_dataset *ds;
  cr_assert_eq(pt_dataset_open(DEMO, split, 1, 28, 28, 10, 0, -1, &ds), PT_OK, "%s", pt_last_error());
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
  int32_t *pred = malloc(ds->n * 4);
  pt_measure_opts mo = {500, NULL, NULL, pred};
  pt_measure_result res;
  cr_assert_eq(pt_measure(ex, g, ds, &mo, &res), PT_OK, "%s", pt_last_error());
  size_t ne;
  int32_t *exp = read_preds(expected, &ne);
  cr_assert_eq((int64_t)ne, ds->n);
  int same = 0, correct = 0;
  for (int64_t i = 0; i < ds->n; i++) {
    same += pred[i] == exp[i];
    correct += exp[i] == ds->labels[i];
  }
  cr_assert_eq(same, ds->n, "%s: %d of %lld predictions differ from PyTorch's", split, (int)(ds->n - same),
               (long long)ds->n);
  /* 1000 images, batch 500: the per-batch mean equals the overall accuracy */
  cr_assert_float_eq(res.accuracy, 100.0 * correct / ds->n, 1e-9);
  cr_assert(res.accuracy > 90.0, "demo accuracy %.2f is not far above chance", res.accuracy);
  cr_assert_eq(res.images, ds->n);
  cr_assert_eq(res.batches, 2);

  /* batch 300: batches of 300, 300, 300, 100 weigh equally (PredTuner's averaging) */
  pt_measure_opts mo2 = {300, NULL, NULL, NULL};
  cr_assert_eq(pt_measure(ex, g, ds, &mo2, &res), PT_OK);
  double sum = 0;
  for (int b = 0; b < 4; b++) {
    int lo = b * 300, hi = lo + 300 < ds->n ? lo + 300 : (int)ds->n, ok = 0;
    for (int i = lo; i < hi; i++) ok += exp[i] == ds->labels[i];
    sum += 100.0 * ok / (hi - lo);
  }
  cr_assert_eq(res.batches, 4);
  cr_assert_float_eq(res.accuracy, sum / 4, 1e-9);
  free(exp);
  free(pred);
  pt_exec_free(ex);
  pt_dataset_close(ds);
  pt_graph_free(g);
}

Test(exec, demo_tune_set_reproduces_pytorch_predictions) {
  demo_split("tune", DEMO "/expected_tune_predictions.bin");
}
Test(exec, demo_test_set_reproduces_pytorch_predictions) {
  demo_split("test", DEMO "/expected_test_predictions.bin");
}

Test(exec, data_shape_must_match_the_model) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("alexnet2_cifar10", &g), PT_OK);
  pt_graph_init_random(g, 3);
  pt_dataset *ds;
  cr_assert_eq(pt_dataset_open(DEMO, "tune", 1, 28, 28, 10, 0, 10, &ds), PT_OK);
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
  pt_measure_result res;
  cr_assert_eq(pt_measure(ex, g, ds, NULL, &res), PT_ESHAPE);
  cr_assert_not_null(strstr(pt_last_error(), "1x28x28"));
  pt_exec_free(ex);
  pt_dataset_close(ds);
  pt_graph_free(g);
}

/* ---- pt_exec_run_many: shared prefixes ---- */

/* n_cfg configs grown from three bases (all exact, and two random ones) by changing one op each, at
 * every depth, plus exact duplicates: the tree has branches at many depths. */
static pt_op_exec *tree_configs(const pt_graph *g, int n_cfg, uint64_t seed) {
  int no = pt_graph_num_ops(g);
  pt_op_exec *ops = calloc((size_t)n_cfg * no, sizeof *ops);
  pt_rng r;
  pt_rng_seed(&r, seed);
  for (int k = 0; k < n_cfg; k++) {
    pt_op_exec *c = ops + (int64_t)k * no;
    int base = k % 3;
    for (int op = 0; op < no; op++) c[op] = base ? knob_setting_of(g, op, (op * 7 + base * 5) % 6) : (pt_op_exec){0};
    if (k >= 3 && k % 5 != 4) {
      int op = (int)pt_rng_below(&r, no);
      c[op] = knob_setting_of(g, op, 1 + (int)pt_rng_below(&r, 5));
    } else if (k % 5 == 4) {
      memcpy(c, ops + (int64_t)(k - 1) * no, (size_t)no * sizeof *c); /* a duplicate */
    }
  }
  return ops;
}

/* The nodes of the configs' prefix tree: for every node, the distinct settings of the ops up to it.
 * A run_many that shares every common prefix runs exactly this many nodes. */
static int64_t tree_nodes(const pt_graph *g, int n_cfg, const pt_op_exec *ops) {
  int no = pt_graph_num_ops(g);
  int64_t count = 0;
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < n_cfg; k++) {
      int seen = 0;
      for (int k2 = 0; k2 < k && !seen; k2++) {
        seen = 1;
        for (int op = 0; op < no && seen; op++)
          if (g->ops[op] <= i && memcmp(&ops[k * no + op], &ops[k2 * no + op], sizeof *ops)) seen = 0;
      }
      count += !seen;
    }
  return count;
}

/* Runs n_cfg tree configs of zoo network `name` on backend b with run_many (untimed, then timed) and
 * each alone; returns how many configs' outputs differ between the two (asserting the rest: the
 * prefix tree is shared, every config ran). PromiseSim's ranges come from a calibration run, or
 * (fresh) are set by hand, so that run_many is the executor's first run and finds an empty pool. */
static int run_many_mismatches(pt_backend *b, const char *name, int n, int n_cfg, int fresh) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build(name, &g), PT_OK);
  pt_graph_init_random(g, 5);
  int c, h, w, no = pt_graph_num_ops(g), classes = pt_graph_num_classes(g);
  pt_graph_input_shape(g, &c, &h, &w);
  int64_t nin = (int64_t)n * c * h * w, nout = (int64_t)n * classes;
  float *x = malloc(nin * 4), *many = malloc((size_t)n_cfg * nout * 4), *alone = malloc(nout * 4);
  double *sec = malloc(n_cfg * sizeof *sec);
  pt_rng r;
  pt_rng_seed(&r, 11);
  fill_uniform(&r, x, nin, -1, 1);
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, b, &ex), PT_OK);
  pt_promise_ranges *rg = calloc(no, sizeof *rg);
  if (fresh)
    for (int op = 0; op < no; op++)
      rg[op] = (pt_promise_ranges){{-3, 3}, {-1, 1}, {-1, 1}, {-6, 6}, 1};
  else
    cr_assert_eq(pt_exec_calibrate(ex, x, n, rg), PT_OK);
  cr_assert_eq(pt_exec_set_promise(ex, rg, 77), PT_OK);
  pt_op_exec *ops = tree_configs(g, n_cfg, 3);
  int mismatches = 0;
  for (int pass = 0; pass < 2; pass++) { /* the second pass finds the pool as the first left it */
    for (int64_t i = 0; i < (int64_t)n_cfg * nout; i++) many[i] = NAN;
    int64_t before = pt_exec_nodes_run(ex);
    cr_assert_eq(pt_exec_run_many(ex, x, n, 40, n_cfg, ops, many, pass ? sec : NULL), PT_OK, "%s", pt_last_error());
    int64_t ran = pt_exec_nodes_run(ex) - before, tree = tree_nodes(g, n_cfg, ops);
    cr_assert_eq(ran, tree, "%s: ran %lld nodes, the prefix tree has %lld", name, (long long)ran, (long long)tree);
    cr_assert(ran < (int64_t)n_cfg * g->n_nodes * 3 / 4, "%s: %lld of %lld nodes: little was shared", name,
              (long long)ran, (long long)n_cfg * g->n_nodes);
    for (int k = 0; k < n_cfg; k++) {
      cr_assert_eq(pt_exec_run_at(ex, x, n, 40, ops + (int64_t)k * no, alone), PT_OK, "%s", pt_last_error());
      mismatches += memcmp(alone, many + (int64_t)k * nout, nout * 4) != 0;
      if (pass) cr_assert(sec[k] > 0 && sec[k] < 60, "config %d: %g s", k, sec[k]);
    }
  }
  /* the configs do differ: not every output is the exact network's */
  int differ = 0;
  for (int k = 1; k < n_cfg; k++) differ += memcmp(many, many + (int64_t)k * nout, nout * 4) != 0;
  cr_assert(differ > n_cfg / 2, "%s: only %d of %d configs changed the output", name, differ, n_cfg);
  free(ops), free(rg), free(x), free(many), free(alone), free(sec);
  pt_exec_free(ex);
  pt_graph_free(g);
  return mismatches;
}

static void check_run_many(const char *name, int n, int n_cfg) {
  int bad = run_many_mismatches(be, name, n, n_cfg, 0);
  cr_assert_eq(bad, 0, "%s: %d configs run with the others differ from alone", name, bad);
}

Test(exec, run_many_equals_each_config_alone_lenet) { check_run_many("lenet_mnist", 3, 40); }
Test(exec, run_many_equals_each_config_alone_resnet18_with_skip_connections) {
  check_run_many("resnet18_cifar10", 1, 16);
}

/* ---- run_many on several lanes (streams), through the interleaving test backend ---- */

static void check_lanes(const char *name, int n, int n_cfg, int lanes, uint64_t seed, int fresh) {
  pt_backend *lb;
  cr_assert_eq(lanes_backend_create(lanes, seed, 0, &lb), PT_OK);
  int bad = run_many_mismatches(lb, name, n, n_cfg, fresh);
  cr_assert_eq(bad, 0, "%s, %d lanes, seed %llu: %d configs differ from alone", name, lanes,
               (unsigned long long)seed, bad);
  lanes_stats st;
  lanes_backend_stats(lb, &st);
  /* every lane ran paths, the executor ordered them by marks, and the interleavings did reorder */
  for (int l = 0; l < lanes; l++) cr_assert(st.ops[l] > 0, "lane %d ran nothing", l);
  cr_assert(st.waits > 0 && st.reorders > 0, "waits %lld, reorders %lld", (long long)st.waits,
            (long long)st.reorders);
  pt_backend_free(lb);
}

Test(exec, run_many_on_lanes_equals_each_config_alone_lenet) {
  for (int lanes = 2; lanes <= 4; lanes++)
    for (uint64_t seed = 1; seed <= 2; seed++) check_lanes("lenet_mnist", 3, 40, lanes, seed, (int)seed == 2);
}
Test(exec, run_many_on_lanes_equals_each_config_alone_resnet18_with_skip_connections) {
  check_lanes("resnet18_cifar10", 1, 16, 3, 1, 0);
  check_lanes("resnet18_cifar10", 1, 16, 2, 2, 1);
}

/* The harness above can fail: with the executor's waits dropped, some interleaving reads an input
 * before it is written or overwrites an activation another lane still reads. */
Test(exec, lanes_harness_catches_missing_ordering) {
  int caught = 0;
  for (uint64_t seed = 1; seed <= 6 && !caught; seed++) {
    pt_backend *lb;
    cr_assert_eq(lanes_backend_create(3, seed, 1, &lb), PT_OK);
    caught = run_many_mismatches(lb, "lenet_mnist", 3, 40, 0) > 0;
    pt_backend_free(lb);
  }
  cr_assert(caught, "dropping every wait changed no output in 6 interleavings");
}

Test(exec, run_many_rejects_a_bad_setting_and_recovers) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  pt_graph_init_random(g, 5);
  int no = pt_graph_num_ops(g);
  float x[784] = {0}, y[30], y1[10];
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
  pt_op_exec *ops = calloc(3 * no, sizeof *ops);
  ops[no + no - 1].kind = PT_APPROX_PERFORATE; /* the last op is a linear layer */
  ops[no + no - 1].perf_stride = 2;
  cr_assert_eq(pt_exec_run_many(ex, x, 1, 0, 3, ops, y, NULL), PT_EINVAL);
  cr_assert_not_null(strstr(pt_last_error(), "convolutions only"), "%s", pt_last_error());
  cr_assert_eq(pt_exec_run_many(ex, x, 1, 0, 0, ops, y, NULL), PT_OK);
  memset(ops + no, 0, no * sizeof *ops);
  cr_assert_eq(pt_exec_run_many(ex, x, 1, 0, 3, ops, y, NULL), PT_OK);
  cr_assert_eq(pt_exec_run(ex, x, 1, NULL, y1), PT_OK);
  for (int k = 0; k < 3; k++) cr_assert(!memcmp(y + 10 * k, y1, sizeof y1));
  free(ops);
  pt_exec_free(ex);
  pt_graph_free(g);
}

Test(exec, measure_many_equals_measure_per_config_on_the_demo) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  cr_assert_eq(pt_weights_load(g, DEMO "/lenet_mnist.safetensors"), PT_OK, "%s", pt_last_error());
  pt_dataset *ds;
  cr_assert_eq(pt_dataset_open(DEMO, "tune", 1, 28, 28, 10, 0, -1, &ds), PT_OK, "%s", pt_last_error());
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
  int no = pt_graph_num_ops(g), n_cfg = 12;
  pt_promise_ranges *rg = calloc(no, sizeof *rg);
  for (int64_t i = 0; i < ds->n; i += 500) cr_assert_eq(pt_exec_calibrate(ex, ds->images + i * 784, 500, rg), PT_OK);
  cr_assert_eq(pt_exec_set_promise(ex, rg, 1), PT_OK);
  pt_op_exec *ops = tree_configs(g, n_cfg, 8);
  double acc[12], sec[12];
  /* batch 300: uneven batches, each weighing the same */
  cr_assert_eq(pt_measure_many(ex, g, ds, 300, n_cfg, ops, NULL, acc, sec), PT_OK, "%s", pt_last_error());
  int below = 0;
  for (int k = 0; k < n_cfg; k++) {
    pt_measure_opts mo = {300, ops + (int64_t)k * no, NULL, NULL};
    pt_measure_result res;
    cr_assert_eq(pt_measure(ex, g, ds, &mo, &res), PT_OK);
    cr_assert_eq(acc[k], res.accuracy, "config %d: %.6f together, %.6f alone", k, acc[k], res.accuracy);
    cr_assert(sec[k] > 0);
    below += acc[k] < acc[0];
  }
  cr_assert(below > 0, "no config lost accuracy: the approximations did not run");
  free(rg), free(ops);
  pt_exec_free(ex);
  pt_dataset_close(ds);
  pt_graph_free(g);
}
