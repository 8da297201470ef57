/* The predtuner-gpu command: exit codes (0 ok, 1 failure, 2 usage), one-line errors naming the
 * problem, --help everywhere, and the demo measurement. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "naive.h"

typedef struct run_result {
  int rc;
  char out[16384], err[4096];
} run_result;

static run_result R;

static void run(const char *args) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "'%s' %s >/tmp/pt_cli_out.$PPID 2>/tmp/pt_cli_err.$PPID", PT_CLI_PATH, args);
  int st = system(cmd);
  R.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  char p[64];
  size_t n;
  snprintf(p, sizeof p, "/tmp/pt_cli_out.%d", (int)getpid());
  char *o = read_all(p, &n);
  snprintf(R.out, sizeof R.out, "%.*s", o ? (int)n : 0, o ? o : "");
  free(o);
  remove(p);
  snprintf(p, sizeof p, "/tmp/pt_cli_err.%d", (int)getpid());
  o = read_all(p, &n);
  snprintf(R.err, sizeof R.err, "%.*s", o ? (int)n : 0, o ? o : "");
  free(o);
  remove(p);
}

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* Whether an SVG written by PLplot has a text reading label (each character as &#xNN; in a tspan). */
static int svg_has_text(const char *svg, const char *label) {
  for (const char *p = svg; (p = strstr(p, "<tspan")) != NULL; p++) {
    const char *t = strchr(p, '>');
    char text[256];
    size_t k = 0;
    for (t = t ? t + 1 : ""; *t && *t != '<' && k + 1 < sizeof text; k++) {
      unsigned c;
      if (sscanf(t, "&#x%x;", &c) == 1) text[k] = (char)c, t = strchr(t, ';') + 1;
      else text[k] = *t++;
    }
    text[k] = 0;
    if (!strcmp(text, label)) return 1;
  }
  return 0;
}

static void expect_error(const char *args, int rc, const char *needle) {
  run(args);
  cr_assert_eq(R.rc, rc, "'%s' exited %d (stderr: %s)", args, R.rc, R.err);
  cr_assert_eq(lines(R.err), 1, "'%s' stderr is not one line: %s", args, R.err);
  cr_assert_not_null(strstr(R.err, needle), "'%s' stderr lacks '%s': %s", args, needle, R.err);
}

Test(cli, usage_errors_exit_2) {
  expect_error("", 2, "usage");
  expect_error("frobnicate", 2, "unknown command 'frobnicate'");
  expect_error("measure --bogus", 2, "unknown argument '--bogus'");
  expect_error("measure --batch-size 0", 2, "--batch-size expects an integer");
  expect_error("measure --batch-size abc", 2, "got 'abc'");
  expect_error("measure --count", 2, "--count needs a value");
  expect_error("measure --model lenet_mnist", 2, "go together");
  expect_error("zoo --ops", 2, "--ops needs a value (NAME)");
  expect_error("plot a.json b.json", 2, "unexpected argument 'b.json'");
  expect_error("export-hpvm c.json -o", 2, "-o needs a value (FILE)");
  expect_error("knobs --target-device tpu", 2, "--target-device takes cpu, gpu or any");
  expect_error("tune --time-budget 0", 2, "--time-budget expects a number in [0.001");
  expect_error("tune --time-budget -5", 2, "got '-5'");
  expect_error("tune --time-budget soon", 2, "got 'soon'");
  expect_error("sensitivity --qos-model empirical", 2, "--qos-model takes qos_p1 or qos_p2");
  expect_error("sensitivity --max-iter 10", 2, "unknown argument '--max-iter'");
  expect_error("sensitivity --qos-model p9", 2, "--qos-model takes");
}

Test(cli, failures_exit_1_with_the_file_named) {
  expect_error("measure --model lenet_mnist --weights /nonexistent/w.safetensors --data " PT_SOURCE_DIR "/zoo/demo",
               1, "/nonexistent/w.safetensors");
  expect_error("measure --model vgg17 --weights x --data y", 1, "unknown model 'vgg17'");
  expect_error("measure --model lenet_mnist --weights " PT_SOURCE_DIR "/zoo/demo/lenet_mnist.safetensors --data /nonexistent",
               1, "/nonexistent/tune_input.bin");
  expect_error("measure --model alexnet_cifar10 --weights " PT_SOURCE_DIR
               "/zoo/demo/lenet_mnist.safetensors --data " PT_SOURCE_DIR "/zoo/demo",
               1, "expected shape [64,3,11,11], found [32,1,5,5]");
  expect_error("measure --backend tpu", 1, "unknown backend 'tpu'");
  expect_error("zoo --ops vgg17", 1, "unknown model");
}

Test(cli, help_for_every_command) {
  const char *cmds[] = {"--help",      "measure --help", "zoo --help",         "knobs --help",
                        "tune --help", "plot --help",    "export-hpvm --help", "tune-binary --help",
                        "sensitivity --help"};
  for (int i = 0; i < 9; i++) {
    run(cmds[i]);
    cr_assert_eq(R.rc, 0, "%s", cmds[i]);
    cr_assert_not_null(strstr(R.out, "usage: predtuner-gpu"), "%s", cmds[i]);
  }
}

Test(cli, zoo_lists_ten_networks) {
  run("zoo");
  cr_assert_eq(R.rc, 0);
  cr_assert_not_null(strstr(R.out, "vgg16_cifar10"));
  cr_assert_not_null(strstr(R.out, "14982474"));
  cr_assert_not_null(strstr(R.out, "resnet50_imagenet"));
  cr_assert_eq(lines(R.out), 11);
  run("zoo --ops resnet18_cifar10");
  cr_assert_eq(R.rc, 0);
  cr_assert_not_null(strstr(R.out, "convs.2.mainline.0"));
  cr_assert_eq(lines(R.out), 43);
}

Test(cli, measure_without_arguments_measures_the_demo) {
  run("measure --threads 2");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "[bundled demo]"));
  cr_assert_not_null(strstr(R.out, "1000 images"));
  double acc = 0;
  const char *a = strstr(R.out, "accuracy");
  cr_assert_not_null(a);
  cr_assert_eq(sscanf(a, "accuracy %lf", &acc), 1);
  cr_assert(acc > 90.0 && acc <= 100.0, "demo accuracy %g", acc);
  cr_assert_not_null(strstr(R.out, "images/s"));
  cr_assert_not_null(strstr(R.out, "wall time"));
  /* backend auto where CUDA is built in but cannot run: the CPU runs, and the output says why */
  for (int i = 0; i < pt_backend_count(); i++) {
    const char *why = "";
    if (!strcmp(pt_backend_name_at(i), "cuda") && !pt_backend_available_at(i, &why)) {
      cr_assert_not_null(strstr(R.out, "backend    CPU"), "%s", R.out);
      cr_assert_not_null(strstr(R.out, "(auto: cuda cannot run here: "), "%s", R.out);
    }
  }

  /* --test, --count, --predictions and --log together */
  run("measure --test --count 200 --batch-size 64 --predictions /tmp/pt_cli_pred.bin --log /tmp/pt_cli.log");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "test set, 200 images"));
  size_t n;
  int32_t *p = read_all("/tmp/pt_cli_pred.bin", &n);
  int32_t *e = read_all(PT_SOURCE_DIR "/zoo/demo/expected_test_predictions.bin", NULL);
  cr_assert(p && e && n == 800);
  cr_assert_eq(memcmp(p, e, 800), 0);
  char *log = read_all("/tmp/pt_cli.log", &n);
  cr_assert_not_null(log);
  log[n] = 0;
  cr_assert_not_null(strstr(log, "INFO  accuracy"));
  free(p), free(e), free(log);
  remove("/tmp/pt_cli_pred.bin");
  remove("/tmp/pt_cli.log");
}

Test(cli, knobs_lists_per_op_counts_and_baseline) {
  run("knobs --model vgg16_cifar10 --target-device gpu");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "28 on target device gpu; baseline \"12\" (FP16Approx)"), "%s", R.out);
  cr_assert_not_null(strstr(R.out, "convs.0                      Conv2d          28"));
  cr_assert_not_null(strstr(R.out, "convs.1                      ReLU             1"));
  run("knobs --model vgg16_cifar10 --target-device any");
  cr_assert_not_null(strstr(R.out, "56 on target device any; baseline \"11\""));
  cr_assert_not_null(strstr(R.out, "convs.0                      Conv2d          56"));
  cr_assert_not_null(strstr(R.out, "linears.1                    ReLU             2"));
  run("knobs --target-device cpu");
  cr_assert_eq(R.rc, 0);
  cr_assert_not_null(strstr(R.out, "121      PerforateConv2dStride  cols stride 2 offset 0"));
  cr_assert_null(strstr(R.out, "151 "));
  expect_error("knobs --target-device tpu", 2, "--target-device takes cpu, gpu or any");
  expect_error("knobs --knobs /nonexistent/k.json", 1, "/nonexistent/k.json");
  expect_error("knobs --knobs " PT_SOURCE_DIR "/tests/fixtures/zoo_reference.json", 1, "knob 'lenet_mnist': \"class\" is missing");
}

Test(cli, measure_runs_configs_and_knobs) {
  /* a PredTuner jsonpickle dump: config 0 perforates convs.0 and samples convs.3 */
  run("measure --config " PT_SOURCE_DIR "/tests/fixtures/predtuner_configs.json");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "predtuner_configs.json #0: 2 of 10 ops off the baseline \"11\" (target cpu): "
                                   "convs.0=123 convs.3=233"), "%s", R.out);
  double acc_cfg = -1, acc_knob = -2;
  cr_assert_eq(sscanf(strstr(R.out, "accuracy"), "accuracy %lf", &acc_cfg), 1);
  /* the same config given with --knob measures the same */
  run("measure --knob convs.0=123 --knob convs.3=233");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_eq(sscanf(strstr(R.out, "accuracy"), "accuracy %lf", &acc_knob), 1);
  cr_assert_float_eq(acc_cfg, acc_knob, 1e-9);
  cr_assert(acc_cfg > 50.0 && acc_cfg < 100.0);
  /* --index 1 has ops left out: they take the baseline */
  run("measure --config " PT_SOURCE_DIR "/tests/fixtures/predtuner_configs.json --index 1 --test");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "#1: 1 of 10 ops off the baseline \"11\" (target cpu): convs.3=124"));
  /* PromiseSim through a custom knob file, ranges calibrated on the tune set and saved */
  run("measure --knobs " PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json --knob convs.0=promise5 --knob linears.2=promise5 "
      "--save-promise-ranges /tmp/pt_cli_ranges.json --seed 3");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "PromiseSim ranges calibrated on the tune set (1000 images)"));
  double p1 = 0, p2 = 0;
  sscanf(strstr(R.out, "accuracy"), "accuracy %lf", &p1);
  run("measure --knobs " PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json --knob convs.0=promise5 --knob linears.2=promise5 "
      "--promise-ranges /tmp/pt_cli_ranges.json --seed 3");
  cr_assert_eq(R.rc, 0, "%s", R.err);
  sscanf(strstr(R.out, "accuracy"), "accuracy %lf", &p2);
  cr_assert_float_eq(p1, p2, 1e-9); /* saved ranges reproduce the calibrated run */
  remove("/tmp/pt_cli_ranges.json");
}

Test(cli, measure_config_errors) {
  expect_error("measure --knob convs.0", 2, "--knob expects OP=KNOB");
  expect_error("measure --fp16 --knob convs.0=12", 2, "does not combine");
  expect_error("measure --index 2", 2, "--index needs --config");
  expect_error("measure --knob convs.0=13", 1, "unknown knob '13'");
  expect_error("measure --knob convs.1=151", 1, "does not apply to op 'convs.1' (MaxPool2d)");
  expect_error("measure --knob conv=151", 1, "unknown op 'conv'");
  expect_error("measure --config " PT_SOURCE_DIR "/tests/fixtures/predtuner_configs.json --index 5", 1,
               "--index 5 but the file holds 2 configs");
  expect_error("measure --config /nonexistent/c.json", 1, "/nonexistent/c.json");
  expect_error("measure --config " PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json", 1, "\"knobs\" is missing");
  expect_error("measure --knob convs.0=promise5", 1, "unknown knob 'promise5'");
  expect_error("measure --knobs " PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json --knob convs.0=promise5 "
               "--promise-ranges " PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json", 1, "expected an object");
}

/* The sensitivity command on the demo's first 200 images: every file, the table on stdout, the
 * heatmap's labels (op names and knob groups) in its SVG, measured speedups from cost_profiled;
 * a second run reuses the stored models. */
Test(cli, sensitivity_writes_the_report_and_heatmap, .timeout = 300) {
  char dir[] = "/tmp/pt_cli_sens_XXXXXX", args[512], path[600];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(args, sizeof args, "sensitivity --model lenet_mnist --weights " PT_SOURCE_DIR
           "/zoo/demo/lenet_mnist.safetensors --data " PT_SOURCE_DIR "/zoo/demo --tune-count 200 --output %s", dir);
  run(args);
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, " rank  op"), "%s", R.out);
  cr_assert_not_null(strstr(R.out, "sensitivity.png"), "%s", R.out);
  const char *files[] = {"sensitivity.json", "sensitivity.txt", "sensitivity.png", "sensitivity.svg",
                         "models/p1.safetensors", "models/cost_profiled.json"};
  for (int i = 0; i < 6; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    size_t n;
    char *b = read_all(path, &n);
    cr_assert(b && n > 50, "%s written", path);
    if (i == 0) {
      cr_assert(strstr(b, "\"speedup_measured\":\ttrue") || strstr(b, "\"speedup_measured\": true"),
                "measured speedups: %.300s", b);
      cr_assert_not_null(strstr(b, "\"speedup_predicted\""));
      cr_assert_not_null(strstr(b, "\"group\""));
    }
    if (i == 3) {
      const char *want[] = {"convs.0", "convs.3", "perforate rows", "perforate cols", "sampling"};
      for (int k = 0; k < 5; k++) cr_assert(svg_has_text(b, want[k]), "%s lacks the label '%s'", path, want[k]);
    }
    free(b);
  }
  cr_assert_not_null(strstr(R.err, "qos_p1 init"), "%s", R.err);
  cr_assert_not_null(strstr(R.err, "cost_profiled"), "%s", R.err);
  run(args); /* the models are loaded, not rebuilt */
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_null(strstr(R.err, "qos_p1 init"), "the second run rebuilt P1: %s", R.err);
  cr_assert_null(strstr(R.err, "cost_profiled:"), "the second run profiled again: %s", R.err);
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  cr_assert_eq(system(args), 0);
}

static void write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  cr_assert(f, "%s", path);
  fputs(text, f);
  fclose(f);
}

/* Only baseline knobs: no heatmap, and an earlier run's is removed rather than left to pass for
 * this one's. */
Test(cli, sensitivity_without_knobs_leaves_no_stale_heatmap, .timeout = 120) {
  char dir[] = "/tmp/pt_cli_sens0_XXXXXX", args[768], path[600];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/knobs.json", dir);
  write_text(path, "[{\"name\": \"11\", \"class\": \"FP32Baseline\", \"baseline_priority\": 1}]");
  snprintf(path, sizeof path, "%s/sensitivity.svg", dir);
  write_text(path, "<svg id=\"stale\"/>");
  snprintf(args, sizeof args, "sensitivity --knobs %s/knobs.json --tune-count 100 --output %s --model-storage ''", dir,
           dir);
  run(args);
  cr_assert_eq(R.rc, 0, "%s", R.err);
  cr_assert_not_null(strstr(R.out, "no heatmap"), "%s", R.out);
  cr_assert(access(path, F_OK) != 0, "the stale heatmap is gone");
  snprintf(args, sizeof args, "rm -rf '%s'", dir);
  cr_assert_eq(system(args), 0);
}

/* report DIR over a hand-made configs.json: every string escaped, odd shapes tolerated. */
Test(cli, report_escapes_what_the_files_say) {
  char dir[] = "/tmp/pt_cli_rep_XXXXXX", path[600], cmd[700];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/configs.json", dir);
  write_text(path, "{\"app\": \"<b>x</b>&\", \"qos_model\": \"<i>\", \"search\": {\"failed_by\": [1, 2]},"
                   " \"configs\": [{\"qos\": 1, \"speedup\": 2, \"knobs\": {\"<op>\": \"\\\"k\\\"\"}}]}");
  snprintf(path, sizeof path, "%s/sensitivity.json", dir);
  write_text(path, "{\"qos_model\": \"<script>\", \"entries\": [{\"op\": \"<a>\", \"knob\": \"&\"}]}");
  snprintf(cmd, sizeof cmd, "report %s", dir);
  run(cmd);
  cr_assert_eq(R.rc, 0, "%s", R.err);
  snprintf(path, sizeof path, "%s/report.html", dir);
  size_t n;
  char *html = read_all(path, &n);
  cr_assert(html);
  cr_assert_null(strstr(html, "<b>x"));
  cr_assert_null(strstr(html, "<script"));
  cr_assert_null(strstr(html, "<op>"));
  cr_assert_null(strstr(html, "<a>"));
  cr_assert_not_null(strstr(html, "&lt;b&gt;x&lt;/b&gt;&amp;"));
  cr_assert_not_null(strstr(html, "&lt;op&gt;=&quot;k&quot;"));
  cr_assert_not_null(strstr(html, "not drawn"), "a missing figure is said");
  free(html);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}
