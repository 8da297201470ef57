/* Whole networks: the executor on the CPU backend against the naive reference interpreter, the
 * bundled demo against the predictions PyTorch made, and QoS per-batch averaging. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
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
