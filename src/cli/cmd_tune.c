/* predtuner-gpu tune: the PredTuner tutorial flow from the command line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/error.h"

static void help(void) {
  printf("usage: predtuner-gpu tune [--model NAME --weights FILE | --model FILE.onnx] [--data DIR] [options]\n"
         "\n"
         "Searches per-op approximation knobs that keep QoS (accuracy) within a threshold of the exact\n"
         "network, then picks the Pareto-best configs, validates and tests them, and writes configs.json,\n"
         "configs.png/.svg, the journal tuning.sqlite and tune.log into the output folder.\n"
         "With no --model/--weights/--data it tunes the bundled demo (LeNet) with qos_p1 and cost_linear,\n"
         "1000 iterations, thresholds 2.0 (tuner) and 3.0 (keep), take_best_n 20.\n"
         "\n"
         "model and data (as 'measure'):\n"
         "  --model NAME --weights FILE --data DIR   a zoo network with its weights\n"
         "  --model FILE.onnx --data DIR             or an ONNX file (weights inside; docs/onnx.md)\n"
         "  --batch-size N           images per run (default 500)\n"
         "  --tune-count N, --tune-offset N, --test-count N, --test-offset N   use part of a set\n"
         "  --knobs FILE             knob declarations (PredTuner JSON) instead of the built-in 56\n"
         "  --target-device D        cpu, gpu or any (default: the backend's device)\n"
         "  --promise-ranges F       PromiseSim ranges (default: calibrated on the tune set)\n"
         "  --backend B, --threads N\n"
         "tuning (DESIGN.md 6):\n"
         "  --max-iter N             distinct configs to evaluate (default 1000)\n"
         "  --qos-tuner-threshold X  QoS loss the search aims at (default 2.0)\n"
         "  --qos-keep-threshold X   QoS loss a kept config may have (default: the tuner threshold)\n"
         "  --relative | --absolute  thresholds relative to the baseline QoS (default) or absolute QoS\n"
         "  --take-best-n N          best configs: Pareto front plus nearest up to N (default 20; 0 = front)\n"
         "  --qos-model M            qos_p1, qos_p2 or empirical (default empirical; demo qos_p1)\n"
         "  --cost-model M           cost_linear, cost_profiled or empirical (default empirical; demo cost_linear)\n"
         "  --validate | --no-validate  measure the best configs' QoS empirically (default: with a QoS model)\n"
         "  --no-test                do not measure the best configs on the test set\n"
         "  --seed N                 search and PromiseSim seed (default 0)\n"
         "  --search-batch N         configs evaluated per batch (default 256)\n"
         "output:\n"
         "  --output DIR             default ./predtuner-out/<app name>\n"
         "  --model-storage DIR      model files (p1.safetensors, p2.json, ...); default DIR/models\n"
         "  --resume                 continue the journal in the output folder (no config is re-evaluated)\n"
         "  --dump-all               configs.json gets every kept config (with \"best\" marks), not only the best\n"
         "  --show-qos-loss          plot QoS loss instead of QoS\n"
         "  --name NAME              app name (default: the model name)\n"
         "  --quiet                  no summary table\n"
         "\n"
         "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static void help_binary(void) {
  printf("usage: predtuner-gpu tune-binary --binary B --metadata M.json [options]\n"
         "\n"
         "Tunes an HPVM-compiled program through PredTuner's piped-binary protocol (DESIGN.md 9,\n"
         "docs/tune-binary.md): B is started once in its own folder (stdout discarded) and kept running;\n"
         "each config is written to M's conf_path as HPVM config text, \"tune\" or \"test\" to its read FIFO,\n"
         "its output tensors read from its write FIFO and the QoS from final_accuracy. M.json lists op_cost,\n"
         "op_knobs, knobs {name: {speedup, devices, baseline_priority}}, tune_labels_path, conf_path,\n"
         "fifo_path_r and fifo_path_w (relative paths: relative to M.json's folder). The binary is stopped\n"
         "when tuning ends and never outlives predtuner-gpu.\n"
         "\n"
         "  --binary B               the program\n"
         "  --metadata M.json        its metadata\n"
         "  --timeout S              longest wait for one answer of the binary (default 600)\n"
         "  --target-device D        drop knobs whose \"devices\" lack D (cpu, gpu; default: keep all)\n"
         "  --qos-model, --cost-model  as in tune; defaults qos_p1 and cost_linear (op_cost x speedups)\n"
         "  --max-iter, --qos-tuner-threshold, --qos-keep-threshold, --relative/--absolute, --take-best-n,\n"
         "  --validate/--no-validate, --no-test, --seed, --search-batch, --output, --model-storage,\n"
         "  --resume, --dump-all, --show-qos-loss, --name, --quiet   as in tune\n"
         "\n"
         "configs.json's ops are the binary's op names; 'predtuner-gpu export-hpvm configs.json -o confs.txt'\n"
         "turns the result into HPVM's config file.\n"
         "\n"
         "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

typedef struct tune_args {
  const char *model, *weights, *data, *backend, *knobs, *target, *ranges, *output, *storage, *name;
  const char *qos_model, *cost_model;
  const char *binary, *metadata; /* tune-binary */
  double timeout;
  int piped;
  const char *cmd;               /* "tune" or "tune-binary", for messages */
  long batch, threads, tune_count, tune_offset, test_count, test_offset, max_iter, take_best_n, seed, search_batch;
  double tuner_th, keep_th;
  int absolute, validate, no_test, resume, dump_all, show_loss, quiet;
  int set_qos, set_cost, set_keep;
} tune_args;

static int parse_double(const char *flag, const char *v, double *out) {
  char *end = NULL;
  double d = strtod(v, &end);
  if (end == v || *end || !isfinite(d)) return pt_cli_usage_error("tune", "%s expects a number, got '%s'", flag, v), 0;
  *out = d;
  return 1;
}

static int parse(int argc, char **argv, tune_args *a) {
  for (int i = 1; i < argc; i++) {
    const char *v = NULL, *arg = argv[i];
    int r = 0;
#define FLAG(flag, field, val)  \
  if (!strcmp(arg, flag)) {     \
    a->field = val;             \
    continue;                   \
  }
#define STR_OPT(flag, field)                                                  \
  if ((r = pt_cli_opt(argc, argv, &i, flag, &v))) {                          \
    if (r < 0) return pt_cli_usage_error(a->cmd, "%s needs a value", flag);  \
    a->field = v;                                                            \
    continue;                                                                \
  }
#define INT_OPT(flag, field, lo, hi)                                               \
  if ((r = pt_cli_opt(argc, argv, &i, flag, &v))) {                               \
    if (r < 0) return pt_cli_usage_error(a->cmd, "%s needs a value", flag);       \
    if (!pt_cli_int(a->cmd, flag, v, lo, hi, &a->field)) return PT_EXIT_USAGE;    \
    continue;                                                                     \
  }
#define DBL_OPT(flag, field, setter)                                              \
  if ((r = pt_cli_opt(argc, argv, &i, flag, &v))) {                               \
    if (r < 0) return pt_cli_usage_error(a->cmd, "%s needs a value", flag);       \
    if (!parse_double(flag, v, &a->field)) return PT_EXIT_USAGE;                  \
    setter;                                                                       \
    continue;                                                                     \
  }
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      if (a->piped) help_binary();
      else help();
      return -1;
    }
    FLAG("--relative", absolute, 0)
    FLAG("--absolute", absolute, 1)
    FLAG("--validate", validate, 1)
    FLAG("--no-validate", validate, 0)
    FLAG("--no-test", no_test, 1)
    FLAG("--resume", resume, 1)
    FLAG("--dump-all", dump_all, 1)
    FLAG("--show-qos-loss", show_loss, 1)
    FLAG("--quiet", quiet, 1)
    if (a->piped) {
      STR_OPT("--binary", binary)
      STR_OPT("--metadata", metadata)
      DBL_OPT("--timeout", timeout, (void)0)
    } else {
      STR_OPT("--model", model)
      STR_OPT("--weights", weights)
      STR_OPT("--data", data)
      STR_OPT("--backend", backend)
      STR_OPT("--knobs", knobs)
      STR_OPT("--promise-ranges", ranges)
      INT_OPT("--batch-size", batch, 1, 1 << 20)
      INT_OPT("--threads", threads, 1, 1024)
      INT_OPT("--tune-count", tune_count, 1, 1L << 40)
      INT_OPT("--tune-offset", tune_offset, 0, 1L << 40)
      INT_OPT("--test-count", test_count, 1, 1L << 40)
      INT_OPT("--test-offset", test_offset, 0, 1L << 40)
    }
    STR_OPT("--target-device", target)
    STR_OPT("--output", output)
    STR_OPT("--model-storage", storage)
    STR_OPT("--name", name)
    if ((r = pt_cli_opt(argc, argv, &i, "--qos-model", &v))) {
      if (r < 0) return pt_cli_usage_error(a->cmd, "--qos-model needs a value");
      if (strcmp(v, "qos_p1") && strcmp(v, "qos_p2") && strcmp(v, "empirical"))
        return pt_cli_usage_error(a->cmd, "--qos-model takes qos_p1, qos_p2 or empirical, got '%s'", v);
      a->qos_model = strcmp(v, "empirical") ? v : NULL;
      a->set_qos = 1;
      continue;
    }
    if ((r = pt_cli_opt(argc, argv, &i, "--cost-model", &v))) {
      if (r < 0) return pt_cli_usage_error(a->cmd, "--cost-model needs a value");
      if (strcmp(v, "cost_linear") && strcmp(v, "cost_profiled") && strcmp(v, "empirical"))
        return pt_cli_usage_error(a->cmd, "--cost-model takes cost_linear, cost_profiled or empirical, got '%s'", v);
      a->cost_model = strcmp(v, "empirical") ? v : NULL;
      a->set_cost = 1;
      continue;
    }
    INT_OPT("--max-iter", max_iter, 1, 1L << 30)
    INT_OPT("--take-best-n", take_best_n, 0, 1L << 30)
    INT_OPT("--seed", seed, 0, 2147483647L)
    INT_OPT("--search-batch", search_batch, 1, 1L << 16)
    DBL_OPT("--qos-tuner-threshold", tuner_th, (void)0)
    DBL_OPT("--qos-keep-threshold", keep_th, a->set_keep = 1)
#undef FLAG
#undef STR_OPT
#undef INT_OPT
#undef DBL_OPT
    return pt_cli_usage_error(a->cmd, "unknown argument '%s'", arg);
  }
  return PT_EXIT_OK;
}

static void print_summary(const pt_tuner *t, const pt_app *app, const char *out_dir, int dump_all) {
  const pt_tune_summary *s = pt_tuner_summary(t);
  printf("\nbaseline QoS   tune %.2f %%, test %.2f %% (exact network)", s->baseline_tune_qos, s->baseline_test_qos);
  if (isfinite(s->exact_speedup) && fabs(s->exact_speedup - 1.0) > 1e-9)
    printf("; baseline config %.2fx faster than exact", s->exact_speedup);
  printf("\nthresholds     tuner %.2f, keep %.2f (tune) / %.2f (test)\n", s->thresholds.tuner, s->thresholds.tune_keep,
         s->thresholds.test_keep);
  printf("search         %lld configs evaluated (%lld resumed) of %.3g in %.1f s, %.0f configs/s\n",
         (long long)s->evaluated, (long long)s->resumed, s->space_size, s->search_seconds, s->configs_per_s);
  printf("kept           %d configs above the keep threshold\n", pt_tuner_count(t, PT_KEPT));
  printf("best           %d (Pareto front + nearest), %d after validation and test\n",
         pt_tuner_count(t, PT_BEST_PREFILTER), pt_tuner_count(t, PT_BEST));
  if (s->validated) printf("validation     predicted QoS off by %.3f on average\n", s->mean_abs_validation_error);
  int n = pt_tuner_count(t, PT_BEST);
  if (n) {
    printf("\n  #   speedup    QoS(tune)  validated  QoS(test)  ops changed\n");
    for (int i = 0; i < n; i++) {
      pt_tuned_config c;
      pt_tuner_get(t, PT_BEST, i, &c);
      int changed = 0;
      for (int op = 0; op < pt_app_num_ops(app); op++) changed += c.knobs[op] != 0;
      printf("  %-3d %7.3fx  %9.2f  %9.2f  %9.2f  %d of %d\n", i, c.speedup, c.qos, c.validated_qos, c.test_qos, changed,
             pt_app_num_ops(app));
    }
  }
  printf("\nfiles in %s:\n  configs.json (%s), configs.png, configs.svg, tuning.sqlite (journal), tune.log, models/\n",
         out_dir, dump_all ? "every kept config" : "best configs");
}

static int tune_main(int argc, char **argv, int piped) {
  tune_args a = {0};
  a.piped = piped;
  a.cmd = piped ? "tune-binary" : "tune";
  a.max_iter = 1000;
  a.take_best_n = 20;
  a.tuner_th = 2.0;
  a.validate = -1;
  a.search_batch = 256;
  int rc = parse(argc, argv, &a);
  if (rc < 0) return PT_EXIT_OK;
  if (rc != PT_EXIT_OK) return rc;
  char demo_w[4096];
  int demo = !piped && !a.model && !a.weights && !a.data;
  if (piped) {
    if (!a.binary || !a.metadata) return pt_cli_usage_error("tune-binary", "--binary and --metadata are required");
    if (!a.set_qos) a.qos_model = "qos_p1";
    if (!a.set_cost) a.cost_model = "cost_linear";
  } else if (demo) {
    if (!pt_cli_demo_inputs(demo_w, sizeof demo_w, &a.model, &a.weights, &a.data)) return PT_EXIT_FAIL;
    if (!a.set_qos) a.qos_model = "qos_p1";
    if (!a.set_cost) a.cost_model = "cost_linear";
    if (!a.set_keep) a.keep_th = 3.0, a.set_keep = 1;
  } else if (!a.model || !a.data || (!a.weights && !pt_model_is_onnx(a.model))) {
    return pt_cli_usage_error("tune", "--model, --weights and --data go together (--weights not with an .onnx model; or give none for the demo)");
  }
  if (a.target && pt_device_parse(a.target) < 0)
    return pt_cli_usage_error(a.cmd, "--target-device takes cpu, gpu or any, got '%s'", a.target);
  char out_dir[4096];
  snprintf(out_dir, sizeof out_dir, "%s", a.output ? a.output : "");
  if (!a.output) { /* an .onnx path or a binary names its folder by its file name */
    const char *label = a.name ? a.name : piped ? a.binary : a.model, *slash = strrchr(label, '/');
    if (!a.name && slash) label = slash + 1;
    int n = (int)strlen(label);
    if (!a.name && pt_model_is_onnx(label)) n -= 5;
    snprintf(out_dir, sizeof out_dir, "predtuner-out/%.*s", n, label);
  }
  char path[4200];
  pt_status s = pt_make_dirs(out_dir);
  if (s != PT_OK) return pt_cli_fail(s);
  snprintf(path, sizeof path, "%s/tune.log", out_dir);
  if ((s = pt_log_open(path)) != PT_OK) return pt_cli_fail(s);
  pt_log_echo(stderr, PT_LOG_INFO);

  pt_dnn_app_opts ao = {a.model, a.weights, a.data, a.backend, (int)a.threads, (int)a.batch, a.tune_offset,
                        a.tune_count, a.test_offset, a.test_count, a.knobs, a.target, a.ranges, (uint64_t)a.seed, a.name};
  pt_app *app = NULL;
  pt_tuner *t = NULL;
  pt_piped_app_opts po = {a.binary, a.metadata, a.name, a.target, a.timeout};
  s = piped ? pt_app_piped_create(&po, &app) : pt_app_dnn_create(&ao, &app);
  if (s == PT_OK) {
    pt_log(PT_LOG_INFO, "tune %s%s", pt_app_describe(app), demo ? " [bundled demo]" : "");
    pt_log(PT_LOG_INFO, "qos model %s, cost model %s, max_iter %ld, thresholds %g / %g (%s), take_best_n %ld, seed %ld",
           a.qos_model ? a.qos_model : "empirical", a.cost_model ? a.cost_model : "empirical", a.max_iter, a.tuner_th,
           a.set_keep ? a.keep_th : a.tuner_th, a.absolute ? "absolute" : "relative", a.take_best_n, a.seed);
    s = pt_tuner_create(app, &t);
  }
  if (s == PT_OK) {
    pt_tune_opts o;
    pt_tune_opts_init(&o);
    o.max_iter = (int)a.max_iter;
    o.qos_tuner_threshold = a.tuner_th;
    o.qos_keep_threshold = a.set_keep ? a.keep_th : NAN;
    o.absolute = a.absolute;
    o.take_best_n = (int)a.take_best_n;
    o.test_configs = !a.no_test;
    o.validate = a.validate;
    o.qos_model = a.qos_model;
    o.cost_model = a.cost_model;
    o.seed = (uint64_t)a.seed;
    o.search_batch = (int)a.search_batch;
    o.output_dir = out_dir;
    o.model_storage = a.storage;
    o.resume = a.resume;
    o.progress = stderr;
    s = pt_tuner_tune(t, &o);
  }
  if (s == PT_OK) {
    snprintf(path, sizeof path, "%s/configs.json", out_dir);
    s = pt_tuner_dump_configs(t, path, a.dump_all);
  }
  pt_status plot_s = PT_OK;
  for (int k = 0; s == PT_OK && k < 2; k++) { /* a plot that fails loses no results: report it at the end */
    snprintf(path, sizeof path, "%s/configs.%s", out_dir, k ? "svg" : "png");
    pt_status ps = pt_tuner_plot(t, path, a.show_loss);
    if (ps != PT_OK) {
      pt_log(PT_LOG_ERROR, "%s", pt_last_error());
      plot_s = ps;
    }
  }
  if (s == PT_OK && !a.quiet) print_summary(t, app, out_dir, a.dump_all);
  if (s != PT_OK) {
    pt_log(PT_LOG_ERROR, "%s", pt_last_error());
    rc = pt_cli_fail(s);
  } else if (plot_s != PT_OK) {
    rc = PT_EXIT_FAIL;
  }
  pt_tuner_free(t);
  pt_app_free(app);
  pt_log_close();
  return rc;
}

int pt_cmd_plot(int argc, char **argv) {
  const char *in = NULL, *out = NULL;
  int loss = 0;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: predtuner-gpu plot CONFIGS.json [-o OUT.png|OUT.svg] [--show-qos-loss]\n\n"
             "Redraws the plot of a tuning run from its configs.json (default output: the same name\n"
             "with .png and .svg).\n");
      return PT_EXIT_OK;
    }
    if (!strcmp(argv[i], "--show-qos-loss")) {
      loss = 1;
      continue;
    }
    if ((r = pt_cli_opt(argc, argv, &i, "-o", &v)) || (r = pt_cli_opt(argc, argv, &i, "--output", &v))) {
      if (r < 0) return pt_cli_usage_error("plot", "-o needs a file name");
      out = v;
      continue;
    }
    if (argv[i][0] == '-' || in) return pt_cli_usage_error("plot", "unexpected argument '%s'", argv[i]);
    in = argv[i];
  }
  if (!in) return pt_cli_usage_error("plot", "which configs.json?");
  char path[4200];
  pt_status s = PT_OK;
  if (out) {
    s = pt_plot_configs_file(in, out, loss);
    if (s == PT_OK) printf("wrote %s\n", out);
  } else {
    for (int k = 0; s == PT_OK && k < 2; k++) {
      snprintf(path, sizeof path, "%s", in);
      char *dot = strrchr(path, '.');
      if (dot && !strcmp(dot, ".json")) *dot = '\0';
      strcat(path, k ? ".svg" : ".png");
      s = pt_plot_configs_file(in, path, loss);
      if (s == PT_OK) printf("wrote %s\n", path);
    }
  }
  return s == PT_OK ? PT_EXIT_OK : pt_cli_fail(s);
}

int pt_cmd_tune(int argc, char **argv) { return tune_main(argc, argv, 0); }
int pt_cmd_tune_binary(int argc, char **argv) { return tune_main(argc, argv, 1); }
