/* HPVM config export (docs/design.md, "HPVM interoperation"): the text for a zoo network and for HPVM-style op names, and
 * one-line errors for what HPVM cannot take. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "naive.h"
#include "predtuner/predtuner.h"

static char dir[] = "/tmp/pt_hpvm_XXXXXX";
static void setup(void) { cr_assert_not_null(mkdtemp(dir)); }
static void teardown(void) {
  char cmd[64];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}
TestSuite(hpvm, .init = setup, .fini = teardown);

static const char *write_tmp(const char *name, const char *text) {
  static char p[2][128];
  static int k;
  char *path = p[k++ % 2];
  snprintf(path, 128, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
  return path;
}

static char *slurp(const char *path) {
  size_t n;
  char *t = read_all(path, &n);
  cr_assert_not_null(t, "%s not written", path);
  char *z = realloc(t, n + 1);
  z[n] = '\0';
  return z;
}

#define LENET_KNOBS(c0, c3)                                                                                      \
  "{\"convs.0\": \"" c0 "\", \"convs.1\": \"12\", \"convs.2\": \"12\", \"convs.3\": \"" c3 "\", \"convs.4\": "   \
  "\"12\", \"convs.5\": \"12\", \"linears.0\": \"12\", \"linears.1\": \"12\", \"linears.2\": \"12\", "            \
  "\"linears.3\": \"12\"}"

Test(hpvm, lenet_configs_become_hpvm_nodes_sorted_by_speedup) {
  const char *in = write_tmp("c.json",
      "{\"app\": \"lenet_mnist\", \"baseline\": {\"tune_qos\": 98.0, \"test_qos\": 97.5},"
      " \"thresholds\": {\"tuner\": 96, \"tune_keep\": 96, \"test_keep\": 95.5}, \"knobs_file\": \"built-in\","
      " \"target_device\": \"gpu\", \"configs\": ["
      "{\"qos\": 97.0, \"cost\": 0.5, \"test_qos\": 96.75, \"knobs\": " LENET_KNOBS("152", "263") "},"
      "{\"qos\": 97.5, \"cost\": 0.8, \"test_qos\": 97.25, \"knobs\": " LENET_KNOBS("12", "121") "}]}");
  char out[128];
  snprintf(out, sizeof out, "%s/h.txt", dir);
  cr_assert_eq(pt_hpvm_export(in, NULL, NAN, out), PT_OK, "%s", pt_last_error());
  char *t = slurp(out);
  const char *want =
      "0.0\n"
      "+++++\nconf1 1 1.0 97.5 0\n"
      "1 gpu conv fp16 12 add fp16 12 pool_max fp16 12\n2 gpu tanh fp16 12\n"
      "3 gpu conv fp16 12 add fp16 12 pool_max fp16 12\n4 gpu tanh fp16 12\n"
      "5 gpu mul fp16 12 add fp16 12 tanh fp16 12\n6 gpu mul fp16 12 add fp16 12 tanh fp16 12\n-----\n"
      "+++++\nconf2 1.25 1.0 97.25 0.25\n"
      "1 gpu conv fp16 12 add fp16 12 pool_max fp16 12\n2 gpu tanh fp16 12\n"
      "3 gpu conv perf 121 add fp32 11 pool_max fp16 12\n4 gpu tanh fp16 12\n"
      "5 gpu mul fp16 12 add fp16 12 tanh fp16 12\n6 gpu mul fp16 12 add fp16 12 tanh fp16 12\n-----\n"
      "+++++\nconf3 2 1.0 96.75 0.75\n"
      "1 gpu conv perf_fp16 152 add fp16 12 pool_max fp16 12\n2 gpu tanh fp16 12\n"
      "3 gpu conv samp_fp16 263 add fp16 12 pool_max fp16 12\n4 gpu tanh fp16 12\n"
      "5 gpu mul fp16 12 add fp16 12 tanh fp16 12\n6 gpu mul fp16 12 add fp16 12 tanh fp16 12\n-----\n";
  cr_assert_str_eq(t, want);
  free(t);
}

Test(hpvm, hpvm_style_op_names_carry_their_types_and_order) {
  /* PredTuner's jsonpickle list (no baseline in the file), ops listed out of order */
  const char *in = write_tmp("p.json",
      "[{\"py/object\": \"predtuner.approxapp.Config\", \"qos\": 90.0, \"cost\": 0.25, \"test_qos\": 89.0,"
      " \"knobs\": {\"relu_2\": \"12\", \"convolution_0\": \"233\", \"add_1\": \"12\", \"maxpool_3\": \"12\","
      " \"linear_4\": \"12\", \"add_5\": \"12\", \"softmax_6\": \"12\"}}]");
  char out[128];
  snprintf(out, sizeof out, "%s/h.txt", dir);
  cr_assert_eq(pt_hpvm_export(in, NULL, NAN, out), PT_EINVAL);
  cr_assert_not_null(strstr(pt_last_error(), "--baseline-test-qos"), "%s", pt_last_error());
  cr_assert_eq(pt_hpvm_export(in, NULL, 90.0, out), PT_OK, "%s", pt_last_error());
  char *t = slurp(out);
  cr_assert_str_eq(t, "0.0\n"
                      "+++++\nconf1 1 1.0 90 0\n1 gpu conv fp16 12 add fp16 12 relu fp16 12 pool_max fp16 12\n"
                      "2 gpu mul fp16 12 add fp16 12\n3 gpu softmax fp16 12\n-----\n"
                      "+++++\nconf2 4 1.0 89 1\n1 gpu conv samp 233 add fp16 12 relu fp16 12 pool_max fp16 12\n"
                      "2 gpu mul fp16 12 add fp16 12\n3 gpu softmax fp16 12\n-----\n");
  free(t);
}

static void bad(const char *json, const char *model, const char *needle) {
  const char *in = write_tmp("bad.json", json);
  char out[128];
  snprintf(out, sizeof out, "%s/never.txt", dir);
  cr_assert_neq(pt_hpvm_export(in, model, 97.0, out), PT_OK, "accepted: %s", json);
  cr_assert_not_null(strstr(pt_last_error(), needle), "error '%s' lacks '%s'", pt_last_error(), needle);
  cr_assert_null(strchr(pt_last_error(), '\n'), "not one line: %s", pt_last_error());
  FILE *f = fopen(out, "r");
  cr_assert_null(f, "an output was written on error");
}

Test(hpvm, what_hpvm_cannot_take_is_a_clear_error) {
  bad("{\"configs\": [{\"qos\": 1, \"cost\": 1, \"knobs\": " LENET_KNOBS("1", "12") "}]}", "lenet_mnist",
      "knob '1' of op 'convs.0' has no HPVM knob type");
  bad("{\"configs\": [{\"qos\": 1, \"cost\": 1, \"knobs\": {\"convs.0\": \"12\"}}]}", "lenet_mnist",
      "no knob for op 'convs.1'");
  bad("{\"configs\": [{\"qos\": 1, \"cost\": 1, \"knobs\": {\"nope\": \"12\"}}]}", "lenet_mnist",
      "names op 'nope'");
  bad("{\"configs\": [{\"qos\": 1, \"cost\": 1, \"knobs\": {\"convs.0\": \"12\"}}]}", "no_such_net", "no_such_net");
  bad("{\"configs\": [{\"qos\": 1, \"cost\": 1, \"knobs\": {\"convs.0\": \"12\"}}]}", NULL, "give --model");
  bad("{\"configs\": [", "lenet_mnist", "bad.json");
  bad("{\"configs\": []}", "lenet_mnist", "no configs");
}
