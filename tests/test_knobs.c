/* Knob declarations (the built-in set, knob files and their errors), applicability, target devices
 * and the baseline, configs in both formats and their errors, and parsers fed garbage. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/knob_math.h"
#include "naive.h"
#include "predtuner/predtuner.h"

#define FIX PT_SOURCE_DIR "/tests/fixtures/"

static pt_backend *be;
static void setup(void) { cr_assert_eq(pt_backend_create("cpu", 2, &be), PT_OK); }
static void teardown(void) { pt_backend_free(be); }
TestSuite(knobs, .init = setup, .fini = teardown);

/* ---------------- declarations ---------------- */

static const pt_knob *K(const pt_knob_set *ks, const char *name) {
  int i = pt_knobs_find(ks, name);
  cr_assert(i >= 0, "knob %s missing", name);
  return pt_knobs_at(ks, i);
}

Test(knobs, default_set_is_predtuners_56) {
  pt_knob_set *ks;
  cr_assert_eq(pt_knobs_default(&ks), PT_OK);
  cr_assert_eq(pt_knobs_count(ks), 56);
  const pt_knob *k = K(ks, "11");
  cr_assert(k->cls == PT_KNOB_FP32 && k->has_priority && k->baseline_priority == 1 && k->devices == PT_DEVICE_CPU);
  k = K(ks, "12");
  cr_assert(k->cls == PT_KNOB_FP16 && k->baseline_priority == 0 && k->exp_speedup == 1.5 && k->devices == PT_DEVICE_GPU);
  /* 151,152 col s2; 153,154 row s2; 155-157 col s3; 158-160 row s3; 161-164 col s4; 165-168 row s4 */
  static const struct { const char *n; int row, stride, off; double sp; } perf[] = {
      {"151", 0, 2, 0, 3.0}, {"152", 0, 2, 1, 3.0}, {"153", 1, 2, 0, 3.0},  {"154", 1, 2, 1, 3.0},
      {"155", 0, 3, 0, 2.25}, {"157", 0, 3, 2, 2.25}, {"158", 1, 3, 0, 2.25}, {"160", 1, 3, 2, 2.25},
      {"161", 0, 4, 0, 2.0}, {"164", 0, 4, 3, 2.0}, {"165", 1, 4, 0, 2.0},  {"168", 1, 4, 3, 2.0}};
  for (size_t i = 0; i < sizeof perf / sizeof perf[0]; i++) {
    for (int fp16 = 0; fp16 < 2; fp16++) {
      char name[8];
      snprintf(name, sizeof name, "%d", atoi(perf[i].n) - (fp16 ? 0 : 30));
      k = K(ks, name);
      cr_assert(k->cls == PT_KNOB_PERFORATE && k->perf_dir == (perf[i].row ? PT_PERF_ROWS : PT_PERF_COLS) && k->stride == perf[i].stride &&
                    k->offset == perf[i].off && k->exp_speedup == perf[i].sp && k->use_fp16 == fp16 &&
                    k->devices == (fp16 ? PT_DEVICE_GPU : PT_DEVICE_CPU),
                "knob %s", name);
    }
  }
  static const struct { const char *n; int every, off; double sp; } samp[] = {
      {"261", 2, 0, 3.0}, {"262", 2, 1, 3.0}, {"263", 3, 0, 2.25}, {"265", 3, 2, 2.25}, {"266", 4, 0, 2.0}, {"269", 4, 3, 2.0}};
  for (size_t i = 0; i < sizeof samp / sizeof samp[0]; i++)
    for (int fp16 = 0; fp16 < 2; fp16++) {
      char name[8];
      snprintf(name, sizeof name, "%d", atoi(samp[i].n) - (fp16 ? 0 : 30));
      k = K(ks, name);
      cr_assert(k->cls == PT_KNOB_SAMPLING && k->skip_every == samp[i].every && k->skip_offset == samp[i].off &&
                    k->interp_rate == 1.0 && k->exp_speedup == samp[i].sp && k->use_fp16 == fp16,
                "knob %s", name);
    }
  pt_knobs_free(ks);
}

Test(knobs, user_file_loads_in_predtuner_format) {
  pt_knob_set *ks;
  cr_assert_eq(pt_knobs_load(FIX "knobs_custom.json", &ks), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_knobs_count(ks), 4);
  const pt_knob *k = K(ks, "samp3");
  cr_assert(k->cls == PT_KNOB_SAMPLING && k->skip_every == 3 && k->skip_offset == 2 && k->interp_rate == 0.5 &&
            k->use_fp16 && k->devices == (PT_DEVICE_CPU | PT_DEVICE_GPU));
  k = K(ks, "promise5");
  cr_assert(k->cls == PT_KNOB_PROMISE && k->noise_level == 5 && k->exp_speedup == 4.0);
  k = K(ks, "exact");
  cr_assert(k->cls == PT_KNOB_FP32 && !k->has_priority && k->devices == 0);
  pt_knobs_free(ks);
}

static void expect_knob_error(const char *json, const char *needle) {
  pt_knob_set *ks = (pt_knob_set *)1;
  pt_status s = pt_knobs_parse(json, strlen(json), "k.json", &ks);
  cr_assert_neq(s, PT_OK, "accepted: %s", json);
  cr_assert_null(ks);
  cr_assert(strstr(pt_last_error(), "k.json") && strstr(pt_last_error(), needle), "error '%s' lacks '%s'",
            pt_last_error(), needle);
}

Test(knobs, bad_knob_files_are_named_errors) {
  expect_knob_error("[{\"class\": \"Blur\", \"name\": \"b\"}]", "unknown class 'Blur'");
  expect_knob_error("[{\"class\": \"PerforateConv2dStride\", \"name\": \"p\", \"direction_is_row\": true, \"offset\": 0,"
                    " \"use_fp16\": false, \"exp_speedup\": 2}]",
                    "needs parameter 'stride'");
  expect_knob_error("[{\"class\": \"FP16Approx\", \"name\": \"h\", \"exp_speedup\": 1.5, \"stride\": 2}]",
                    "FP16Approx takes no parameter 'stride'");
  expect_knob_error("[{\"class\": \"FP32Baseline\", \"name\": \"e\", \"exp_speedup\": 1}]",
                    "FP32Baseline takes no parameter 'exp_speedup'");
  expect_knob_error("[{\"class\": \"PerforateConv2dStride\", \"name\": \"p\", \"direction_is_row\": 1, \"stride\": 2,"
                    " \"offset\": 0, \"use_fp16\": false, \"exp_speedup\": 2}]",
                    "'direction_is_row' must be a boolean");
  expect_knob_error("[{\"class\": \"PerforateConv2dStride\", \"name\": \"p\", \"direction_is_row\": true, \"stride\": 2.5,"
                    " \"offset\": 0, \"use_fp16\": false, \"exp_speedup\": 2}]",
                    "'stride' must be an integer");
  expect_knob_error("[{\"class\": \"PerforateConv2dStride\", \"name\": \"p\", \"direction_is_row\": true, \"stride\": 1,"
                    " \"offset\": 0, \"use_fp16\": false, \"exp_speedup\": 2}]",
                    "stride 1 must be in [2, 255]");
  expect_knob_error("[{\"class\": \"PerforateConv2dStride\", \"name\": \"p\", \"direction_is_row\": true, \"stride\": 3,"
                    " \"offset\": 3, \"use_fp16\": false, \"exp_speedup\": 2}]",
                    "offset 3 must be in [0, stride 3)");
  expect_knob_error("[{\"class\": \"Conv2dSampling\", \"name\": \"s\", \"skip_every\": 1, \"skip_offset\": 0,"
                    " \"interp_rate\": 1.0, \"use_fp16\": false, \"exp_speedup\": 2}]",
                    "skip_every 1 must be in [2, 255]");
  expect_knob_error("[{\"class\": \"PromiseSim\", \"name\": \"n\", \"noise_level\": 9, \"exp_speedup\": 2}]",
                    "noise_level 9 must be in [0, 8]");
  expect_knob_error("[{\"class\": \"FP16Approx\", \"name\": \"h\", \"exp_speedup\": 1.5},"
                    " {\"class\": \"FP16Approx\", \"name\": \"h\", \"exp_speedup\": 1.5}]",
                    "duplicate knob name 'h'");
  expect_knob_error("[{\"class\": \"FP16Approx\", \"name\": \"h\", \"exp_speedup\": 1.5, \"devices\": [\"tpu\"]}]",
                    "unknown device 'tpu'");
  expect_knob_error("[{\"class\": \"FP16Approx\", \"exp_speedup\": 1.5}]", "\"name\" is missing");
  expect_knob_error("{\"class\": \"FP16Approx\"}", "JSON list");
  expect_knob_error("[1, 2]", "knob #0 is not a JSON object");
  expect_knob_error("[{\"class\": ", "not valid JSON");
  expect_knob_error("[]", "no knobs");
  pt_knob_set *ks;
  cr_assert_eq(pt_knobs_load("/nonexistent/knobs.json", &ks), PT_ENOTFOUND);
  cr_assert_not_null(strstr(pt_last_error(), "/nonexistent/knobs.json"));
}

/* ---------------- applicability, target devices, baseline ---------------- */

Test(knobs, per_op_lists_and_baseline_follow_the_target_device) {
  pt_graph *g;
  pt_knob_set *ks;
  cr_assert_eq(pt_zoo_build("vgg16_cifar10", &g), PT_OK);
  cr_assert_eq(pt_knobs_default(&ks), PT_OK);
  static const struct { unsigned dev; const char *base; int conv, other; } t[] = {
      {PT_DEVICE_GPU, "12", 28, 1}, {PT_DEVICE_CPU, "11", 28, 1}, {0, "11", 56, 2}};
  for (int i = 0; i < 3; i++) {
    pt_space *sp;
    cr_assert_eq(pt_space_build(g, ks, t[i].dev, &sp), PT_OK);
    cr_assert_str_eq(pt_space_baseline(sp)->name, t[i].base);
    for (int op = 0; op < pt_graph_num_ops(g); op++) {
      int want = pt_graph_op_type(g, op) == PT_OP_CONV2D ? t[i].conv : t[i].other;
      cr_assert_eq(pt_space_op_count(sp, op), want, "device %u op %s", t[i].dev, pt_graph_op_name(g, op));
      cr_assert_str_eq(pt_space_op_knob(sp, op, 0)->name, t[i].base);
    }
    pt_space_free(sp);
  }
  pt_knobs_free(ks);
  /* a file with no baseline_priority: the built-in exact baseline; PromiseSim applies to linear */
  cr_assert_eq(pt_knobs_load(FIX "knobs_custom.json", &ks), PT_OK);
  pt_space *sp;
  cr_assert_eq(pt_space_build(g, ks, PT_DEVICE_CPU, &sp), PT_OK);
  cr_assert_str_eq(pt_space_baseline(sp)->name, "__baseline__");
  cr_assert_eq(pt_space_op_count(sp, pt_graph_find_op(g, "convs.0")), 5); /* __baseline__, exact, rows2, samp3, promise5 */
  cr_assert_eq(pt_space_op_count(sp, pt_graph_find_op(g, "linears.0")), 3); /* __baseline__, exact, promise5 */
  cr_assert_eq(pt_space_op_count(sp, pt_graph_find_op(g, "convs.1")), 2);
  pt_space_free(sp);
  cr_assert_eq(pt_space_build(g, ks, PT_DEVICE_GPU, &sp), PT_OK); /* promise5 is cpu-only */
  cr_assert_eq(pt_space_op_count(sp, pt_graph_find_op(g, "linears.0")), 2);
  pt_space_free(sp);
  pt_knobs_free(ks);
  pt_graph_free(g);
}

/* ---------------- configs ---------------- */

Test(knobs, configs_load_in_both_formats_and_resolve) {
  pt_config_list *cl;
  cr_assert_eq(pt_configs_load(FIX "predtuner_configs.json", &cl), PT_OK, "%s", pt_last_error());
  cr_assert_eq(cl->n, 2);
  cr_assert_float_eq(cl->configs[0].qos, 95.8, 1e-12);
  cr_assert_float_eq(cl->configs[0].test_qos, 95.1, 1e-12);
  cr_assert(isnan(cl->configs[0].validated_qos));
  cr_assert_eq(cl->configs[0].n, 10);
  cr_assert_str_eq(cl->configs[1].knobs[0], "124"); /* a number in the file */
  pt_graph *g;
  pt_knob_set *ks;
  pt_space *sp;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  cr_assert_eq(pt_knobs_default(&ks), PT_OK);
  cr_assert_eq(pt_space_build(g, ks, PT_DEVICE_CPU, &sp), PT_OK);
  pt_op_exec ops[10];
  const pt_knob *chosen[10];
  pt_config *c = &cl->configs[0];
  cr_assert_eq(pt_config_resolve(sp, ks, c->n, (const char *const *)c->ops, (const char *const *)c->knobs, ops, chosen),
               PT_OK, "%s", pt_last_error());
  cr_assert(ops[0].kind == PT_APPROX_PERFORATE && ops[0].perf_dir == PT_PERF_ROWS && ops[0].perf_stride == 2 && ops[0].perf_offset == 0);
  cr_assert(ops[3].kind == PT_APPROX_SAMPLING && ops[3].samp_every == 3 && ops[3].samp_offset == 0 && !ops[3].fp16);
  c = &cl->configs[1]; /* ops left out get the baseline */
  cr_assert_eq(pt_config_resolve(sp, ks, c->n, (const char *const *)c->ops, (const char *const *)c->knobs, ops, chosen), PT_OK);
  cr_assert_str_eq(chosen[0]->name, "11");
  cr_assert_str_eq(chosen[3]->name, "124");
  pt_configs_free(cl);

  const char *ours = "{\"app\": \"x\", \"configs\": [{\"qos\": 90, \"cost\": 0.5, \"speedup\": 2.0, "
                     "\"knobs\": {\"convs.0\": \"152\"}}]}";
  cr_assert_eq(pt_configs_parse(ours, strlen(ours), "ours.json", &cl), PT_OK);
  cr_assert_eq(cl->n, 1);
  cr_assert_float_eq(cl->configs[0].cost, 0.5, 0);
  pt_configs_free(cl);

  /* resolution errors */
  const char *op1[] = {"convs.9"}, *k1[] = {"151"};
  cr_assert_eq(pt_config_resolve(sp, ks, 1, op1, k1, ops, NULL), PT_ENOTFOUND);
  cr_assert_not_null(strstr(pt_last_error(), "unknown op 'convs.9'"));
  const char *op2[] = {"convs.0"}, *k2[] = {"999"};
  cr_assert_eq(pt_config_resolve(sp, ks, 1, op2, k2, ops, NULL), PT_ENOTFOUND);
  cr_assert_not_null(strstr(pt_last_error(), "unknown knob '999'"));
  const char *op3[] = {"convs.1"}, *k3[] = {"151"};
  cr_assert_eq(pt_config_resolve(sp, ks, 1, op3, k3, ops, NULL), PT_EINVAL);
  cr_assert_not_null(strstr(pt_last_error(), "knob '151' (PerforateConv2dStride) does not apply to op 'convs.1' (MaxPool2d)"));
  const char *op4[] = {"convs.0", "convs.0"}, *k4[] = {"151", "152"};
  cr_assert_eq(pt_config_resolve(sp, ks, 2, op4, k4, ops, NULL), PT_EINVAL);
  cr_assert_not_null(strstr(pt_last_error(), "two knobs"));
  pt_space_free(sp);
  pt_knobs_free(ks);
  pt_graph_free(g);
}

static void expect_config_error(const char *json, const char *needle) {
  pt_config_list *cl = (pt_config_list *)1;
  cr_assert_neq(pt_configs_parse(json, strlen(json), "c.json", &cl), PT_OK, "accepted %s", json);
  cr_assert_null(cl);
  cr_assert(strstr(pt_last_error(), "c.json") && strstr(pt_last_error(), needle), "'%s' lacks '%s'", pt_last_error(), needle);
}

Test(knobs, bad_config_files_are_named_errors) {
  expect_config_error("{\"configs\": 3}", "list of configs");
  expect_config_error("[{\"qos\": 1}]", "\"knobs\" is missing");
  expect_config_error("[{\"knobs\": {\"convs.0\": [1]}}]", "knob of op 'convs.0' is not a string");
  expect_config_error("[{\"knobs\": {}, \"qos\": \"high\"}]", "must be numbers");
  expect_config_error("[7]", "config #0 is not a JSON object");
  expect_config_error("[{", "not valid JSON");
}

Test(knobs, garbage_never_crashes_the_parsers) {
  pt_rng r;
  pt_rng_seed(&r, 99);
  static const char alphabet[] = "{}[]\":,0123456789.-truefalsnul classnameknobsstrideoffset FP16Approx";
  for (int trial = 0; trial < 2000; trial++) {
    char buf[200];
    size_t n = pt_rng_below(&r, sizeof buf);
    for (size_t i = 0; i < n; i++)
      buf[i] = trial % 2 ? (char)pt_rng_below(&r, 256) : alphabet[pt_rng_below(&r, sizeof alphabet - 1)];
    pt_knob_set *ks = NULL;
    if (pt_knobs_parse(buf, n, "g.json", &ks) == PT_OK) pt_knobs_free(ks);
    else cr_assert_not_null(strstr(pt_last_error(), "g.json"));
    pt_config_list *cl = NULL;
    if (pt_configs_parse(buf, n, "g.json", &cl) == PT_OK) pt_configs_free(cl);
    else cr_assert_not_null(strstr(pt_last_error(), "g.json"));
  }
}
