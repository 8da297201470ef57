/* predtuner-gpu tune and tune-binary: the PredTuner tutorial flow from the command line. Options
 * fill the library's own option structs, which start from the library's defaults (pt_tune_opts_init),
 * so every default lives in one place. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static void help(const pt_tune_opts *d) {
  printf("usage: predtuner-gpu tune [--model NAME --weights FILE | --model FILE.onnx] [--data DIR] [options]\n"
         "\n"
         "Searches per-op approximation knobs that keep QoS (accuracy) within a threshold of the exact\n"
         "network, then picks the Pareto-best configs, validates and tests them, and writes configs.json,\n"
         "configs.png/.svg, the journal tuning.sqlite and tune.log into the output folder.\n"
         "With no --model/--weights/--data it tunes the bundled demo (LeNet) with qos_p1 and cost_linear,\n"
         "%d iterations, thresholds %.1f (tuner) and 3.0 (keep), take_best_n %d.\n"
         "\n"
         "model and data (as 'measure'):\n"
         "  --model NAME --weights FILE --data DIR   a zoo network with its weights\n"
         "  --model FILE.onnx --data DIR             or an ONNX file (weights inside; docs/onnx.md)\n"
         "  --batch-size N           images per run (default %d)\n"
         "  --tune-count N, --tune-offset N, --test-count N, --test-offset N   use part of a set\n"
         "  --knobs FILE             knob declarations (PredTuner JSON) instead of the built-in 56\n"
         "  --target-device D        cpu, gpu or any (default: the backend's device)\n"
         "  --promise-ranges F       PromiseSim ranges (default: calibrated on the tune set)\n"
         "  --backend B, --threads N\n"
         "tuning (docs/design.md, \"The tuning pipeline\"):\n"
         "  --max-iter N             distinct configs to evaluate (default %d)\n"
         "  --qos-tuner-threshold X  QoS loss the search aims at (default %.1f)\n"
         "  --qos-keep-threshold X   QoS loss a kept config may have (default: the tuner threshold)\n"
         "  --relative | --absolute  thresholds relative to the baseline QoS (default) or absolute QoS\n"
         "  --take-best-n N          best configs: Pareto front plus nearest up to N (default %d; 0 = front)\n"
         "  --qos-model M            qos_p1, qos_p2 or empirical (default %s; demo qos_p1)\n"
         "  --cost-model M           cost_linear, cost_profiled or empirical (default %s; demo cost_linear)\n"
         "  --validate | --no-validate  measure the best configs' QoS empirically (default: with a QoS model)\n"
         "  --no-test                do not measure the best configs on the test set\n"
         "  --seed N                 search and PromiseSim seed (default %llu)\n"
         "  --search-batch N         configs evaluated per batch (default %d)\n"
         "output:\n"
         "  --output DIR             default ./predtuner-out/<app name>\n"
         "  --model-storage DIR      model files (p1.safetensors, p2.json, ...); default DIR/models\n"
         "  --resume                 continue the journal in the output folder (no config is re-evaluated)\n"
         "  --dump-all               configs.json gets every kept config (with \"best\" marks), not only the best\n"
         "  --show-qos-loss          plot QoS loss instead of QoS\n"
         "  --name NAME              app name (default: the model name)\n"
         "  --quiet                  no summary table\n"
         "\n"
         "Exit status: 0 success, 1 failure, 2 usage error.\n",
         d->max_iter, d->qos_tuner_threshold, d->take_best_n, PT_BATCH_SIZE_DEFAULT, d->max_iter,
         d->qos_tuner_threshold, d->take_best_n, pt_qos_model_name(d->qos_model), pt_cost_model_name(d->cost_model),
         (unsigned long long)d->seed, d->search_batch);
}

static void help_binary(void) {
  printf("usage: predtuner-gpu tune-binary --binary B --metadata M.json [options]\n"
         "\n"
         "Tunes an HPVM-compiled program through PredTuner's piped-binary protocol (docs/tune-binary.md):\n"
         "B is started once in its own folder (stdout discarded) and kept running; each config is written\n"
         "to M's conf_path as HPVM config text, \"tune\" or \"test\" to its read FIFO, its output tensors read\n"
         "from its write FIFO and the QoS from final_accuracy. M.json lists op_cost, op_knobs, knobs\n"
         "{name: {speedup, devices, baseline_priority}}, tune_labels_path, conf_path, fifo_path_r and\n"
         "fifo_path_w (relative paths: relative to M.json's folder). The binary is stopped when tuning ends\n"
         "and never outlives predtuner-gpu.\n"
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
  const char *cmd; /* "tune" or "tune-binary", for messages */
  int piped;
  pt_tune_opts o;
  pt_dnn_app_opts ao;
  pt_piped_app_opts po;
  const char *output, *name;
  int dump_all, show_loss, quiet;
  int set_qos, set_cost; /* --qos-model / --cost-model given (the demo and tune-binary have their own) */
} tune_args;

/* One parser's answer for argv[i]: consumed, not its option, or an exit status to stop with. */
enum { ARG_TAKEN = -10, ARG_OTHER = -11 };

/* "--flag VALUE" into a string; ARG_OTHER when argv[*i] is not flag. */
static int str_opt(const tune_args *a, int argc, char **argv, int *i, const char *flag, const char **dst) {
  const char *v;
  int r = pt_cli_opt(argc, argv, i, flag, &v);
  if (!r) return ARG_OTHER;
  if (r < 0) return pt_cli_usage_error(a->cmd, "%s needs a value", flag);
  *dst = v;
  return ARG_TAKEN;
}

/* "--flag N" with N in [lo, hi] into a long. */
static int int_opt(const tune_args *a, int argc, char **argv, int *i, const char *flag, long lo, long hi, long *dst) {
  const char *v;
  int r = pt_cli_opt(argc, argv, i, flag, &v);
  if (!r) return ARG_OTHER;
  if (r < 0) return pt_cli_usage_error(a->cmd, "%s needs a value", flag);
  return pt_cli_int(a->cmd, flag, v, lo, hi, dst) ? ARG_TAKEN : PT_EXIT_USAGE;
}

static int dbl_opt(const tune_args *a, int argc, char **argv, int *i, const char *flag, double *dst) {
  const char *v;
  int r = pt_cli_opt(argc, argv, i, flag, &v);
  if (!r) return ARG_OTHER;
  if (r < 0) return pt_cli_usage_error(a->cmd, "%s needs a value", flag);
  char *end = NULL;
  double d = strtod(v, &end);
  if (end == v || *end || !isfinite(d)) return pt_cli_usage_error(a->cmd, "%s expects a number, got '%s'", flag, v);
  *dst = d;
  return ARG_TAKEN;
}

/* "--qos-model M" / "--cost-model M" by the library's names. */
static int model_opt(tune_args *a, int argc, char **argv, int *i) {
  const char *v = NULL;
  int r = str_opt(a, argc, argv, i, "--qos-model", &v);
  if (r == ARG_TAKEN) {
    int m = pt_qos_model_parse(v);
    if (m < 0) return pt_cli_usage_error(a->cmd, "--qos-model takes qos_p1, qos_p2 or empirical, got '%s'", v);
    a->o.qos_model = (pt_qos_model)m;
    a->set_qos = 1;
    return ARG_TAKEN;
  }
  if (r != ARG_OTHER) return r;
  if ((r = str_opt(a, argc, argv, i, "--cost-model", &v)) != ARG_TAKEN) return r;
  int m = pt_cost_model_parse(v);
  if (m < 0) return pt_cli_usage_error(a->cmd, "--cost-model takes cost_linear, cost_profiled or empirical, got '%s'", v);
  a->o.cost_model = (pt_cost_model)m;
  a->set_cost = 1;
  return ARG_TAKEN;
}

/* Options with no value. */
static int flag_opt(tune_args *a, const char *arg) {
  static const struct { const char *flag; size_t off; int val; } F[] = {
      {"--relative", offsetof(tune_args, o.absolute), 0},  {"--absolute", offsetof(tune_args, o.absolute), 1},
      {"--validate", offsetof(tune_args, o.validate), 1},  {"--no-validate", offsetof(tune_args, o.validate), 0},
      {"--no-test", offsetof(tune_args, o.test_configs), 0}, {"--resume", offsetof(tune_args, o.resume), 1},
      {"--dump-all", offsetof(tune_args, dump_all), 1},    {"--show-qos-loss", offsetof(tune_args, show_loss), 1},
      {"--quiet", offsetof(tune_args, quiet), 1}};
  for (size_t k = 0; k < sizeof F / sizeof F[0]; k++)
    if (!strcmp(arg, F[k].flag)) {
      *(int *)((char *)a + F[k].off) = F[k].val;
      return ARG_TAKEN;
    }
  return ARG_OTHER;
}

/* Model, data and app options of tune, or the binary's of tune-binary. */
static int app_opt(tune_args *a, int argc, char **argv, int *i) {
  pt_dnn_app_opts *ao = &a->ao;
  long v = 0;
  int r;
#define TRY(expr)                           \
  if ((r = (expr)) != ARG_OTHER) return r;
  if (a->piped) {
    TRY(str_opt(a, argc, argv, i, "--binary", &a->po.binary))
    TRY(str_opt(a, argc, argv, i, "--metadata", &a->po.metadata))
    return dbl_opt(a, argc, argv, i, "--timeout", &a->po.timeout_s);
  }
  TRY(str_opt(a, argc, argv, i, "--model", &ao->model))
  TRY(str_opt(a, argc, argv, i, "--weights", &ao->weights))
  TRY(str_opt(a, argc, argv, i, "--data", &ao->data))
  TRY(str_opt(a, argc, argv, i, "--backend", &ao->backend))
  TRY(str_opt(a, argc, argv, i, "--knobs", &ao->knobs_file))
  TRY(str_opt(a, argc, argv, i, "--promise-ranges", &ao->promise_ranges))
  if ((r = int_opt(a, argc, argv, i, "--batch-size", 1, 1 << 20, &v)) != ARG_OTHER) return ao->batch_size = (int)v, r;
  if ((r = int_opt(a, argc, argv, i, "--threads", 1, 1024, &v)) != ARG_OTHER) return ao->threads = (int)v, r;
  if ((r = int_opt(a, argc, argv, i, "--tune-count", 1, 1L << 40, &v)) != ARG_OTHER) return ao->tune_count = v, r;
  if ((r = int_opt(a, argc, argv, i, "--tune-offset", 0, 1L << 40, &v)) != ARG_OTHER) return ao->tune_offset = v, r;
  if ((r = int_opt(a, argc, argv, i, "--test-count", 1, 1L << 40, &v)) != ARG_OTHER) return ao->test_count = v, r;
  if ((r = int_opt(a, argc, argv, i, "--test-offset", 0, 1L << 40, &v)) != ARG_OTHER) return ao->test_offset = v, r;
  return ARG_OTHER;
#undef TRY
}

/* The tuning options both commands share. */
static int tune_opt(tune_args *a, int argc, char **argv, int *i) {
  pt_tune_opts *o = &a->o;
  long v = 0;
  int r;
  if ((r = str_opt(a, argc, argv, i, "--target-device", &a->ao.target_device)) != ARG_OTHER) {
    a->po.target_device = a->ao.target_device;
    return r;
  }
  if ((r = str_opt(a, argc, argv, i, "--output", &a->output)) != ARG_OTHER) return r;
  if ((r = str_opt(a, argc, argv, i, "--model-storage", &o->model_storage)) != ARG_OTHER) return r;
  if ((r = str_opt(a, argc, argv, i, "--name", &a->name)) != ARG_OTHER) return r;
  if ((r = model_opt(a, argc, argv, i)) != ARG_OTHER) return r;
  if ((r = int_opt(a, argc, argv, i, "--max-iter", 1, 1L << 30, &v)) != ARG_OTHER) return o->max_iter = (int)v, r;
  if ((r = int_opt(a, argc, argv, i, "--take-best-n", 0, 1L << 30, &v)) != ARG_OTHER) return o->take_best_n = (int)v, r;
  if ((r = int_opt(a, argc, argv, i, "--seed", 0, 2147483647L, &v)) != ARG_OTHER) return o->seed = (uint64_t)v, r;
  if ((r = int_opt(a, argc, argv, i, "--search-batch", 1, 1L << 16, &v)) != ARG_OTHER) return o->search_batch = (int)v, r;
  if ((r = dbl_opt(a, argc, argv, i, "--qos-tuner-threshold", &o->qos_tuner_threshold)) != ARG_OTHER) return r;
  return dbl_opt(a, argc, argv, i, "--qos-keep-threshold", &o->qos_keep_threshold);
}

/* PT_EXIT_OK, PT_EXIT_USAGE, or -1 after --help. */
static int parse(int argc, char **argv, tune_args *a) {
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      pt_tune_opts d; /* the library's defaults, whatever options came before --help */
      pt_tune_opts_init(&d);
      if (a->piped) help_binary();
      else help(&d);
      return -1;
    }
    int r = flag_opt(a, arg);
    if (r == ARG_OTHER) r = app_opt(a, argc, argv, &i);
    if (r == ARG_OTHER) r = tune_opt(a, argc, argv, &i);
    if (r == ARG_OTHER) return pt_cli_usage_error(a->cmd, "unknown argument '%s'", arg);
    if (r != ARG_TAKEN) return r;
  }
  return PT_EXIT_OK;
}

/* What the demo and tune-binary default to, and the checks that need every option. */
static int resolve(tune_args *a, char *demo_w, size_t n, int *demo) {
  *demo = !a->piped && !a->ao.model && !a->ao.weights && !a->ao.data;
  if (a->piped) {
    if (!a->po.binary || !a->po.metadata) return pt_cli_usage_error(a->cmd, "--binary and --metadata are required");
  } else if (*demo) {
    if (!pt_cli_demo_inputs(demo_w, n, &a->ao.model, &a->ao.weights, &a->ao.data)) return PT_EXIT_FAIL;
    if (isnan(a->o.qos_keep_threshold)) a->o.qos_keep_threshold = 3.0;
  } else if (!a->ao.model || !a->ao.data || (!a->ao.weights && !pt_model_is_onnx(a->ao.model))) {
    return pt_cli_usage_error(a->cmd, "--model, --weights and --data go together (--weights not with an .onnx model; or "
                                      "give none for the demo)");
  }
  if (a->piped || *demo) { /* both tune with the models PredTuner's tutorial uses */
    if (!a->set_qos) a->o.qos_model = PT_QOS_P1;
    if (!a->set_cost) a->o.cost_model = PT_COST_LINEAR;
  }
  if (a->ao.target_device && pt_device_parse(a->ao.target_device) < 0)
    return pt_cli_usage_error(a->cmd, "--target-device takes cpu, gpu or any, got '%s'", a->ao.target_device);
  a->ao.name = a->po.name = a->name;
  a->ao.seed = a->o.seed;
  return PT_EXIT_OK;
}

/* --output, or predtuner-out/<name>: an .onnx path or a binary names its folder by its file name. */
static void output_dir(const tune_args *a, char *out, size_t n) {
  if (a->output) {
    snprintf(out, n, "%s", a->output);
    return;
  }
  const char *label = a->name ? a->name : a->piped ? a->po.binary : a->ao.model, *slash = strrchr(label, '/');
  if (!a->name && slash) label = slash + 1;
  int len = (int)strlen(label);
  if (!a->name && pt_model_is_onnx(label)) len -= 5;
  snprintf(out, n, "predtuner-out/%.*s", len, label);
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

/* configs.json, then the plots: a plot that fails loses no results and is reported at the end. */
static pt_status write_results(const tune_args *a, const pt_tuner *t, const char *out_dir, pt_status *plot_s) {
  char path[4200];
  snprintf(path, sizeof path, "%s/configs.json", out_dir);
  pt_status s = pt_tuner_dump_configs(t, path, a->dump_all);
  if (s != PT_OK) return s;
  for (int k = 0; k < 2; k++) {
    snprintf(path, sizeof path, "%s/configs.%s", out_dir, k ? "svg" : "png");
    pt_status ps = pt_tuner_plot(t, path, a->show_loss);
    if (ps != PT_OK) {
      pt_log(PT_LOG_ERROR, "%s", pt_last_error());
      *plot_s = ps;
    }
  }
  return PT_OK;
}

/* The app, the tuner, the tuning and the results; the exit status. */
static int run(tune_args *a, int demo, const char *out_dir) {
  pt_app *app = NULL;
  pt_tuner *t = NULL;
  pt_status s = a->piped ? pt_app_piped_create(&a->po, &app) : pt_app_dnn_create(&a->ao, &app), plot_s = PT_OK;
  if (s == PT_OK) {
    const pt_tune_opts *o = &a->o;
    pt_log(PT_LOG_INFO, "tune %s%s", pt_app_describe(app), demo ? " [bundled demo]" : "");
    pt_log(PT_LOG_INFO, "qos model %s, cost model %s, max_iter %d, thresholds %g / %g (%s), take_best_n %d, seed %llu",
           pt_qos_model_name(o->qos_model), pt_cost_model_name(o->cost_model), o->max_iter, o->qos_tuner_threshold,
           isnan(o->qos_keep_threshold) ? o->qos_tuner_threshold : o->qos_keep_threshold,
           o->absolute ? "absolute" : "relative", o->take_best_n, (unsigned long long)o->seed);
    s = pt_tuner_create(app, &t);
  }
  if (s == PT_OK) {
    a->o.output_dir = out_dir;
    a->o.progress = stderr;
    s = pt_tuner_tune(t, &a->o);
  }
  if (s == PT_OK) s = write_results(a, t, out_dir, &plot_s);
  if (s == PT_OK && !a->quiet) print_summary(t, app, out_dir, a->dump_all);
  int rc = PT_EXIT_OK;
  if (s != PT_OK) {
    pt_log(PT_LOG_ERROR, "%s", pt_last_error());
    rc = pt_cli_fail(s);
  } else if (plot_s != PT_OK) {
    rc = PT_EXIT_FAIL;
  }
  pt_tuner_free(t);
  pt_app_free(app);
  return rc;
}

static int tune_main(int argc, char **argv, int piped) {
  tune_args a = {.cmd = piped ? "tune-binary" : "tune", .piped = piped};
  pt_tune_opts_init(&a.o);
  int rc = parse(argc, argv, &a);
  if (rc < 0) return PT_EXIT_OK;
  char demo_w[4096], out_dir[4096], path[4200];
  int demo;
  if (rc != PT_EXIT_OK || (rc = resolve(&a, demo_w, sizeof demo_w, &demo)) != PT_EXIT_OK) return rc;
  output_dir(&a, out_dir, sizeof out_dir);
  pt_status s = pt_make_dirs(out_dir);
  if (s != PT_OK) return pt_cli_fail(s);
  snprintf(path, sizeof path, "%s/tune.log", out_dir);
  if ((s = pt_log_open(path)) != PT_OK) return pt_cli_fail(s);
  pt_log_echo(stderr, PT_LOG_INFO);
  rc = run(&a, demo, out_dir);
  pt_log_close();
  return rc;
}

int pt_cmd_tune(int argc, char **argv) { return tune_main(argc, argv, 0); }
int pt_cmd_tune_binary(int argc, char **argv) { return tune_main(argc, argv, 1); }
