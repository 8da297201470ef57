/* predtuner-gpu tune, tune-binary and sensitivity: the PredTuner tutorial flow from the command
 * line, and the per-layer sensitivity report alone (the same app options). Options
 * fill the library's own option structs, which start from the library's defaults (pt_tune_opts_init),
 * so every default lives in one place. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

#define PT_CLI_MAX_OUTPUT 400
#define PT__STR2(x) #x
#define PT__STR(x) PT__STR2(x)

typedef struct tune_args {
  const char *cmd; /* "tune", "tune-binary" or "sensitivity", for messages */
  int piped, sens;
  pt_tune_opts o;
  pt_dnn_app_opts ao;
  pt_piped_app_opts po;
  const char *output, *name, *target, *qos_name, *cost_name, *early_name;
  int dump_all, show_loss, quiet, master_only, time_shared;
  pt_dist *dist; /* the MPI job this rank is in (a job of one without MPI) */
  int prefix_mib; /* --prefix-cache, -1 unset */
} tune_args;

enum { TUNE = 1, BINARY = 2, SENS = 4, SEARCH = TUNE | BINARY }; /* which command takes an option */
#define AT(field) offsetof(tune_args, field)
#define BIG (double)(1LL << 40)

/* Every option of tune, tune-binary and sensitivity: parsing and --help both come from here. */
static const pt_cli_opt_def OPTS[] = {
    {NULL, PT_CLI_HEADING, 0, 0, 0, 0, NULL, "model and data (as 'measure'):", TUNE | SENS},
    {"--model", PT_CLI_STR, AT(ao.model), 0, 0, 0, "NAME|F.onnx", "a zoo network (with --weights), or an ONNX file (weights inside; docs/onnx.md)", TUNE | SENS},
    {"--weights", PT_CLI_STR, AT(ao.weights), 0, 0, 0, "FILE", "the zoo network's weights (safetensors or a PyTorch checkpoint)", TUNE | SENS},
    {"--data", PT_CLI_STR, AT(ao.data), 0, 0, 0, "DIR", "folder with tune_/test_ input.bin and labels.bin", TUNE | SENS},
    {"--batch-size", PT_CLI_INT, AT(ao.batch_size), 1, 1 << 20, 0, "N", "images per run (default " PT__STR(PT_BATCH_SIZE_DEFAULT) ")", TUNE | SENS},
    {"--tune-count", PT_CLI_I64, AT(ao.tune_count), 1, BIG, 0, "N", "use N images of the tune set (default: all)", TUNE | SENS},
    {"--tune-offset", PT_CLI_I64, AT(ao.tune_offset), 0, BIG, 0, "N", "skip the tune set's first N images", TUNE | SENS},
    {"--test-count", PT_CLI_I64, AT(ao.test_count), 1, BIG, 0, "N", "use N images of the test set (default: all)", TUNE | SENS},
    {"--test-offset", PT_CLI_I64, AT(ao.test_offset), 0, BIG, 0, "N", "skip the test set's first N images", TUNE | SENS},
    {"--knobs", PT_CLI_STR, AT(ao.knobs_file), 0, 0, 0, "FILE", "knob declarations (PredTuner JSON) instead of the built-in 56", TUNE | SENS},
    {"--promise-ranges", PT_CLI_STR, AT(ao.promise_ranges), 0, 0, 0, "F", "PromiseSim ranges (default: calibrated on the tune set)", TUNE | SENS},
    {"--backend", PT_CLI_STR, AT(ao.backend), 0, 0, 0, "B", "cpu, cuda or auto (default auto)", TUNE | SENS},
    {"--threads", PT_CLI_INT, AT(ao.threads), 1, 1024, 0, "N", "CPU threads (default: all cores)", TUNE | SENS},
    {"--strict", PT_CLI_FLAG, AT(ao.strict), 0, 0, 1, NULL, "weights holding NaN or infinity are an error (default: a warning)", TUNE | SENS},
    {"--prefix-cache", PT_CLI_INT, AT(prefix_mib), 0, 1 << 20, 0, "MIB", "memory for the exact network's activations on the tune set, kept\nacross batches of configs (default " PT__STR(PT_PREFIX_CACHE_MIB_DEFAULT) "; 0 = off)", TUNE | SENS},
    {NULL, PT_CLI_HEADING, 0, 0, 0, 0, NULL, "the binary (docs/tune-binary.md):", BINARY},
    {"--binary", PT_CLI_STR, AT(po.binary), 0, 0, 0, "B", "the program", BINARY},
    {"--metadata", PT_CLI_STR, AT(po.metadata), 0, 0, 0, "M.json", "its metadata", BINARY},
    {"--timeout", PT_CLI_DBL, AT(po.timeout_s), 0.001, 1e7, 0, "S", "longest wait for one answer of the binary (default 600)", BINARY},
    {NULL, PT_CLI_HEADING, 0, 0, 0, 0, NULL, "the report:", SENS},
    {"--qos-model", PT_CLI_STR, AT(qos_name), 0, 0, 0, "M", "qos_p1 or qos_p2 (default qos_p1)", SENS},
    {NULL, PT_CLI_HEADING, 0, 0, 0, 0, NULL, "tuning (docs/design.md, \"The tuning pipeline\"):", SEARCH},
    {"--target-device", PT_CLI_STR, AT(target), 0, 0, 0, "D", "cpu, gpu or any (tune, sensitivity: default the backend's device;\ntune-binary: drop knobs whose \"devices\" lack D)", 0},
    {"--max-iter", PT_CLI_INT, AT(o.max_iter), 1, 1 << 30, 0, "N", "distinct configs to evaluate (default {})", SEARCH},
    {"--qos-tuner-threshold", PT_CLI_DBL, AT(o.qos_tuner_threshold), -1e12, 1e12, 0, "X", "QoS loss the search aims at (default {}); with --absolute a QoS", SEARCH},
    {"--qos-keep-threshold", PT_CLI_DBL, AT(o.qos_keep_threshold), -1e12, 1e12, 0, "X", "QoS loss a kept config may have (default: the tuner threshold)", SEARCH},
    {"--relative", PT_CLI_FLAG, AT(o.absolute), 0, 0, 0, NULL, "thresholds are QoS losses from the baseline (default)", SEARCH},
    {"--absolute", PT_CLI_FLAG, AT(o.absolute), 0, 0, 1, NULL, "thresholds are QoS values (then --qos-tuner-threshold is required)", SEARCH},
    {"--take-best-n", PT_CLI_INT, AT(o.take_best_n), 0, 1 << 30, 0, "N", "best configs: Pareto front plus nearest up to N (default {}; 0 = front)", SEARCH},
    {"--qos-model", PT_CLI_STR, AT(qos_name), 0, 0, 0, "M", "qos_p1, qos_p2 or empirical (default {}; demo and tune-binary qos_p1)", SEARCH},
    {"--cost-model", PT_CLI_STR, AT(cost_name), 0, 0, 0, "M", "cost_linear, cost_profiled or empirical (default {};\ndemo and tune-binary cost_linear)", SEARCH},
    {"--validate", PT_CLI_FLAG, AT(o.validate), 0, 0, 1, NULL, "measure the best configs' QoS (default: when a QoS model predicts)", SEARCH},
    {"--no-validate", PT_CLI_FLAG, AT(o.validate), 0, 0, 0, NULL, "do not", SEARCH},
    {"--no-test", PT_CLI_FLAG, AT(o.test_configs), 0, 0, 0, NULL, "do not measure the best configs on the test set", SEARCH},
    {"--seed", PT_CLI_U64, AT(o.seed), 0, 2147483647.0, 0, "N", "search and PromiseSim seed (default {})", 0},
    {"--search-batch", PT_CLI_INT, AT(o.search_batch), 1, 1 << 16, 0, "N", "configs evaluated per batch (default {})", SEARCH},
    {"--max-failures", PT_CLI_INT, AT(o.max_failures), 0, 1 << 30, 0, "N", "failed configs that stop the search (default: a quarter of\n--max-iter, at least 8); what was found is still written", SEARCH},
    {"--time-budget", PT_CLI_DBL, AT(o.time_budget), 0.001, 1e9, 0, "S", "end the search after S seconds (checked after each batch); selection,\nvalidation, test, timing and the outputs then run as usual (default: no limit)", SEARCH},
    {"--early-stop", PT_CLI_STR, AT(early_name), 0, 0, 0, "M", "empirical QoS: stop measuring a config that cannot be kept: off,\nexact (when even every remaining image right would not do) or confident\n(when it ends below with probability 1 - 1e-4); default {}", SEARCH},
    {"--time-passes", PT_CLI_INT, AT(o.time_passes), 0, 1000, 0, "N", "time each best config and the exact network N times after a warm-up,\nin one sitting (default {}; 0 = no timing); the median is reported", SEARCH},
    {"--force-reinit", PT_CLI_FLAG, AT(o.force_reinit), 0, 0, 1, NULL, "rebuild the models even where stored ones fit this run", 0},
    {"--mpi-master-only", PT_CLI_FLAG, AT(master_only), 0, 0, 1, NULL, "under mpirun: rank 0 searches and the other ranks measure\n(default: rank 0 measures too; docs/distributed.md)", SEARCH | SENS},
    {"--mpi-time-shared", PT_CLI_FLAG, AT(time_shared), 0, 0, 1, NULL, "under mpirun: time cost_profiled's knobs and the best configs on every rank\neven where ranks share a device, their times then disturbing each other\n(default: only when every rank has its own node or GPU, else rank 0 times)", SEARCH | SENS},
    {NULL, PT_CLI_HEADING, 0, 0, 0, 0, NULL, "output:", 0},
    {"--output", PT_CLI_STR, AT(output), 0, 0, 0, "DIR", "default ./predtuner-out/<app name> (an .onnx model: <name>-onnx,\na binary: <name>-hpvm); one run at a time (DIR/tune.lock)", 0},
    {"--model-storage", PT_CLI_STR, AT(o.model_storage), 0, 0, 0, "DIR", "model files (p1.safetensors, p2.json, ...); default DIR/models", 0},
    {"--resume", PT_CLI_FLAG, AT(o.resume), 0, 0, 1, NULL, "continue the journal in the output folder (no config is re-evaluated)", SEARCH},
    {"--overwrite", PT_CLI_FLAG, AT(o.overwrite), 0, 0, 1, NULL, "replace an earlier run's journal (without it, or --resume, that is an error)", SEARCH},
    {"--dump-all", PT_CLI_FLAG, AT(dump_all), 0, 0, 1, NULL, "configs.json gets every kept config (with \"best\" marks)", SEARCH},
    {"--show-qos-loss", PT_CLI_FLAG, AT(show_loss), 0, 0, 1, NULL, "plot QoS loss instead of QoS", SEARCH},
    {"--name", PT_CLI_STR, AT(name), 0, 0, 0, "NAME", "app name (default: the model's or the binary's name)", 0},
    {"--quiet", PT_CLI_FLAG, AT(quiet), 0, 0, 1, NULL, "no summary table", 0},
};
#define N_OPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

static unsigned mask_of(const tune_args *a) { return a->piped ? BINARY : a->sens ? SENS : TUNE; }

static void help(const tune_args *a) {
  const int piped = a->piped;
  tune_args d = {0}; /* the library's defaults */
  pt_tune_opts_init(&d.o);
  d.qos_name = pt_qos_model_name(d.o.qos_model);
  d.cost_name = pt_cost_model_name(d.o.cost_model);
  d.early_name = pt_early_stop_name(d.o.early_stop);
  if (piped)
    printf("usage: predtuner-gpu tune-binary --binary B --metadata M.json [options]\n"
           "\n"
           "Tunes an HPVM-compiled program through PredTuner's piped-binary protocol (docs/tune-binary.md):\n"
           "B is started once in its own folder (stdout discarded) and kept running (started again when it\n"
           "dies on a config, which then counts as failed); each config is written to M's conf_path as HPVM\n"
           "config text, \"tune\" or \"test\" to its read FIFO, its output tensors read from its write FIFO and\n"
           "the QoS from final_accuracy. M.json lists op_cost, op_knobs, knobs {name: {speedup, devices,\n"
           "baseline_priority}}, tune_labels_path, conf_path, fifo_path_r and fifo_path_w (relative paths:\n"
           "relative to M.json's folder). The binary never outlives predtuner-gpu. configs.json's ops are\n"
           "the binary's op names; 'predtuner-gpu export-hpvm configs.json -o confs.txt' turns the result\n"
           "into HPVM's config file.\n\n");
  else if (a->sens)
    printf("usage: predtuner-gpu sensitivity [--model NAME --weights FILE | --model FILE.onnx] [--data DIR] [options]\n"
           "\n"
           "The per-layer sensitivity report alone: which op can take which knob, and what it costs. Builds\n"
           "(or loads from the model storage) the QoS model and the measured cost of every (op, knob)\n"
           "(cost_profiled), then writes sensitivity.json, sensitivity.txt and the heatmap sensitivity.png /\n"
           ".svg (ops x knob groups) into the output folder: each knob alone on each op, its QoS loss on the\n"
           "tune set and its predicted and measured speedup, ranked by speedup gained per point of QoS lost.\n"
           "Every tune with a QoS model writes the same files. With no --model/--weights/--data: the demo.\n\n");
  else
    printf("usage: predtuner-gpu tune [--model NAME --weights FILE | --model FILE.onnx] [--data DIR] [options]\n"
           "\n"
           "Searches per-op approximation knobs that keep QoS (accuracy) within a threshold of the exact\n"
           "network, then picks the Pareto-best configs, validates, tests and times them, and writes configs.json,\n"
           "configs.png/.svg, the journal tuning.sqlite and tune.log into the output folder. A config that\n"
           "fails (an error, NaN outputs) is journaled as failed and the search goes on.\n"
           "With no --model/--weights/--data it tunes the bundled demo (LeNet) with qos_p1 and cost_linear,\n"
           "%d iterations, thresholds %.1f (tuner) and 3.0 (keep), take_best_n %d.\n\n",
           d.o.max_iter, d.o.qos_tuner_threshold, d.o.take_best_n);
  pt_cli_print_opts(stdout, OPTS, N_OPTS, mask_of(a), &d);
  if (a->sens) printf("\nExit status: 0 success, 1 failure (also a heatmap that cannot be drawn), 2 usage error.\n");
  else
    printf("\nExit status: 0 success, 1 failure (also a search stopped by --max-failures, after its results are\n"
           "written), 2 usage error.\n");
}

/* The model names into the library's enums. */
static int models(tune_args *a) {
  if (a->qos_name) {
    int m = pt_qos_model_parse(a->qos_name);
    if (m < 0) return pt_cli_usage_error(a->cmd, "--qos-model takes qos_p1, qos_p2 or empirical, got '%s'", a->qos_name);
    a->o.qos_model = (pt_qos_model)m;
  }
  if (a->cost_name) {
    int m = pt_cost_model_parse(a->cost_name);
    if (m < 0)
      return pt_cli_usage_error(a->cmd, "--cost-model takes cost_linear, cost_profiled or empirical, got '%s'", a->cost_name);
    a->o.cost_model = (pt_cost_model)m;
  }
  if (a->early_name) {
    int m = pt_early_stop_parse(a->early_name);
    if (m < 0) return pt_cli_usage_error(a->cmd, "--early-stop takes off, exact or confident, got '%s'", a->early_name);
    a->o.early_stop = (pt_early_stop)m;
  }
  return PT_EXIT_OK;
}

/* PT_EXIT_OK, PT_EXIT_USAGE, or -1 after --help. */
static int parse(int argc, char **argv, tune_args *a) {
  int r = pt_cli_parse(a->cmd, OPTS, N_OPTS, mask_of(a), a, argc, argv);
  if (r < 0) help(a);
  if (r != PT_EXIT_OK) return r;
  if (isnan(a->o.qos_tuner_threshold)) { /* not given: a loss of 2 means nothing as an absolute QoS */
    if (a->o.absolute) return pt_cli_usage_error(a->cmd, "--absolute needs --qos-tuner-threshold (an absolute QoS)");
    pt_tune_opts d;
    pt_tune_opts_init(&d);
    a->o.qos_tuner_threshold = d.qos_tuner_threshold;
  }
  return models(a);
}

/* What the demo and tune-binary default to, and the checks that need every option. */
static int resolve(tune_args *a, char *demo_w, size_t n, int *demo) {
  *demo = !a->piped && !a->ao.model && !a->ao.weights && !a->ao.data;
  if (a->piped) {
    if (!a->po.binary || !a->po.metadata) return pt_cli_usage_error(a->cmd, "--binary and --metadata are required");
  } else if (*demo) {
    if (!pt_cli_demo_inputs(demo_w, n, &a->ao.model, &a->ao.weights, &a->ao.data)) return PT_EXIT_FAIL;
    if (isnan(a->o.qos_keep_threshold) && !a->o.absolute) a->o.qos_keep_threshold = 3.0;
  } else if (!a->ao.model || !a->ao.data || (!a->ao.weights && !pt_model_is_onnx(a->ao.model))) {
    return pt_cli_usage_error(a->cmd, "--model, --weights and --data go together (--weights not with an .onnx model; or "
                                      "give none for the demo)");
  }
  if (a->piped || *demo || a->sens) { /* both tune with the models PredTuner's tutorial uses */
    if (!a->qos_name) a->o.qos_model = PT_QOS_P1;
    if (!a->cost_name) a->o.cost_model = PT_COST_LINEAR;
  }
  if (a->sens && a->o.qos_model == PT_QOS_EMPIRICAL)
    return pt_cli_usage_error(a->cmd, "--qos-model takes qos_p1 or qos_p2 (the report is the QoS model's)");
  if (a->o.resume && a->o.overwrite) return pt_cli_usage_error(a->cmd, "--resume and --overwrite exclude each other");
  if (a->output && !a->output[0]) return pt_cli_usage_error(a->cmd, "--output needs a folder, got ''");
  if (a->name && (!a->name[0] || strchr(a->name, '/') || !strcmp(a->name, ".") || !strcmp(a->name, "..")))
    return pt_cli_usage_error(a->cmd, "--name '%s' is not a plain name (it names the output folder)", a->name);
  if (a->target && pt_device_parse(a->target) < 0)
    return pt_cli_usage_error(a->cmd, "--target-device takes cpu, gpu or any, got '%s'", a->target);
  a->ao.target_device = a->po.target_device = a->target;
  a->ao.name = a->po.name = a->name;
  a->ao.seed = a->o.seed;
  a->ao.prefix_cache_mib = a->prefix_mib < 0 ? 0 : a->prefix_mib == 0 ? -1 : a->prefix_mib;
  return PT_EXIT_OK;
}

/* --output, or predtuner-out/<name>: a binary names its folder by its file name and "-hpvm", an
 * .onnx path by its file name and "-onnx" (the zoo network of the same name has the folder without). */
static void output_dir(const tune_args *a, char *out, size_t n) {
  if (a->output) {
    snprintf(out, n, "%s", a->output);
    return;
  }
  const char *label = a->name ? a->name : a->piped ? a->po.binary : a->ao.model, *slash = strrchr(label, '/');
  if (!a->name && slash) label = slash + 1;
  int len = (int)strlen(label), onnx = !a->name && !a->piped && pt_model_is_onnx(label);
  snprintf(out, n, "predtuner-out/%.*s%s", onnx ? len - 5 : len, label,
           onnx ? "-onnx" : a->piped && !a->name ? "-hpvm" : "");
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
  if (s->failed) {
    printf("failed         %lld configs:", (long long)s->failed);
    for (int k = 1, first = 1; k < PT_STATUS_COUNT; k++)
      if (s->failed_by[k]) printf("%s %lld %s", first ? "" : ",", (long long)s->failed_by[k], pt_status_str((pt_status)-k)), first = 0;
    printf(" (reasons in tune.log and the journal)\n");
  }
  if (s->stopped[0]) printf("stopped        %s\n", s->stopped);
  if (s->stopped_on_time) printf("stopped        on time (--time-budget): %lld configs evaluated\n", (long long)s->evaluated);
  if (s->dropped) printf("dropped        %d best configs whose validation or test failed\n", s->dropped);
  if (s->early_stopped)
    printf("stopped early  %lld configs whose QoS could not reach the keep threshold (measured in part)\n",
           (long long)s->early_stopped);
  if (s->timed_passes)
    printf("timed          exact network %.4g s per %lld images (median of %d passes); predicted speedups off by "
           "%.0f %% on average\n", s->exact_seconds, (long long)s->timed_images, s->timed_passes,
           100.0 * s->mean_speedup_error);
  int n = pt_tuner_count(t, PT_BEST);
  if (n) {
    printf("\n  #   speedup  measured  QoS(tune)  validated  QoS(test)  ops changed\n");
    for (int i = 0; i < n; i++) {
      pt_tuned_config c;
      pt_tuner_get(t, PT_BEST, i, &c);
      int changed = 0;
      for (int op = 0; op < pt_app_num_ops(app); op++) changed += c.knobs[op] != 0;
      printf("  %-3d %7.3fx  %7.3fx  %9.2f  %9.2f  %9.2f  %d of %d\n", i, c.speedup, c.measured_speedup, c.qos,
             c.validated_qos, c.test_qos, changed, pt_app_num_ops(app));
    }
    printf("  (speedup: the cost model's, over the baseline config; measured: timed against the exact network)\n");
  }
  char sens[4200]; /* written by a tune whose QoS model was initialised */
  snprintf(sens, sizeof sens, "%s/sensitivity.json", out_dir);
  printf("\nfiles in %s:\n  report.html, configs.json (%s), configs.png, configs.svg, tuning.sqlite (journal),\n"
         "  tune.log, models/%s\n",
         out_dir, dump_all ? "every kept config" : "best configs",
         access(sens, F_OK) == 0 ? ",\n  sensitivity.json, sensitivity.txt, sensitivity.png/.svg (each knob alone on each op, ranked; heatmap)" : "");
}

static pt_status mpi_refusal(const tune_args *a);

static void log_units(const tune_args *a) {
  int64_t units;
  double comm;
  pt_dist_stats(a->dist, &units, &comm);
  if (units) pt_log(PT_LOG_INFO, "MPI: %lld units sent to workers; rank 0 spent %.3f ms per unit sending and receiving",
                    (long long)units, 1e3 * comm / (double)units);
}

static int dist_flags(const tune_args *a) {
  return (a->master_only ? PT_DIST_MASTER_ONLY : 0) | (a->time_shared ? PT_DIST_TIME_SHARED : 0);
}

/* An MPI job's ranks and where each runs, into the log. */
static void log_job(const tune_args *a, pt_status s) {
  if (s != PT_OK || pt_dist_size(a->dist) < 2) return;
  const pt_measurer *m = a->o.measurer;
  pt_log(PT_LOG_INFO, "MPI job of %d ranks: configs and model entries are measured on %s; timings (cost_profiled, "
         "measured speedups) %s", pt_dist_size(a->dist), a->master_only ? "the other ranks" : "every rank",
         m && (m->time || m->profile) ? "too"
                                      : "on rank 0 alone (ranks share a device; --mpi-time-shared spreads them)");
  for (int k = 0; k < pt_dist_size(a->dist); k++) pt_log(PT_LOG_INFO, "MPI %s", pt_dist_placement(a->dist, k));
}

/* Every rank: its app, agreed to be the same as every other rank's (collective in an MPI job). */
static pt_status make_app(tune_args *a, pt_app **app) {
  pt_status s = mpi_refusal(a);
  if (s == PT_OK) s = a->piped ? pt_app_piped_create(&a->po, app) : pt_app_dnn_create(&a->ao, app);
  return pt_dist_agree(a->dist, s, *app);
}

/* The app, the tuner, the tuning and the results; the exit status. */
static int run(tune_args *a, int demo, const char *out_dir) {
  pt_app *app = NULL;
  pt_tuner *t = NULL;
  pt_status plot_s = PT_OK, s = make_app(a, &app);
  a->o.measurer = s == PT_OK ? pt_dist_measurer(a->dist, dist_flags(a)) : NULL;
  log_job(a, s);
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
  if (s == PT_OK) s = pt_tuner_write_outputs(t, out_dir, a->dump_all, a->show_loss, &plot_s);
  if (s == PT_OK && !a->quiet) print_summary(t, app, out_dir, a->dump_all);
  int rc = PT_EXIT_OK;
  if (s != PT_OK) {
    pt_log_echo(NULL, PT_LOG_INFO); /* into tune.log; the terminal gets it once, below */
    pt_log(PT_LOG_ERROR, "%s", pt_last_error());
    rc = pt_cli_fail(s);
  } else if (pt_tuner_summary(t)->stopped[0]) { /* the tuner logged why; the results so far are written */
    rc = PT_EXIT_FAIL;
  } else if (plot_s != PT_OK) {
    rc = PT_EXIT_FAIL;
  }
  log_units(a);
  pt_tuner_free(t);
  pt_app_free(app);
  return rc;
}

/* The column line and first rows of sensitivity.txt, and the files written. */
static void print_report(const char *out_dir) {
  char path[4200], line[1200];
  snprintf(path, sizeof path, "%s/sensitivity.txt", out_dir);
  FILE *f = fopen(path, "r");
  int lines = 0; /* the column line, then one per row */
  while (f && fgets(line, sizeof line, f))
    if (line[0] != '#' && lines++ < 16) fputs(line, stdout);
  if (f) fclose(f);
  if (lines > 16) printf("  ... (%d rows in all)\n", lines - 1);
  snprintf(path, sizeof path, "%s/sensitivity.svg", out_dir);
  const int heat = access(path, F_OK) == 0;
  snprintf(path, sizeof path, "%s/report.html", out_dir);
  printf("\nfiles in %s:\n  sensitivity.json, sensitivity.txt%s, sensitivity.log, models/%s\n", out_dir,
         heat ? ", sensitivity.png, sensitivity.svg (heatmap)" : " (no heatmap: only baseline knobs)",
         access(path, F_OK) == 0 ? ", report.html (rebuilt)" : "");
}

static int run_sens(tune_args *a, int demo, const char *out_dir) {
  pt_app *app = NULL;
  pt_status s = make_app(a, &app); /* the report is rank 0's; its entries are measured on every rank */
  a->o.measurer = s == PT_OK ? pt_dist_measurer(a->dist, dist_flags(a)) : NULL;
  log_job(a, s);
  if (s == PT_OK) {
    pt_log(PT_LOG_INFO, "sensitivity %s%s, qos model %s", pt_app_describe(app), demo ? " [bundled demo]" : "",
           pt_qos_model_name(a->o.qos_model));
    a->o.output_dir = out_dir;
    a->o.progress = stderr;
    s = pt_sensitivity_run(app, &a->o);
  }
  if (s == PT_OK && !a->quiet) print_report(out_dir);
  int rc = PT_EXIT_OK;
  if (s != PT_OK) {
    pt_log_echo(NULL, PT_LOG_INFO);
    pt_log(PT_LOG_ERROR, "%s", pt_last_error());
    rc = pt_cli_fail(s);
  }
  log_units(a);
  pt_app_free(app);
  return rc;
}

/* What a job of several ranks cannot do yet, decided alike on every rank from the same arguments. */
static pt_status mpi_refusal(const tune_args *a) {
  if (pt_dist_size(a->dist) == 1) return PT_OK;
  if (!a->sens && a->o.cost_model == PT_COST_EMPIRICAL)
    return pt_app_set_error(PT_EINVAL, "under mpirun the cost model must be cost_linear or cost_profiled: empirical "
                                       "costs would be times measured on different ranks at once (--cost-model)");
  return PT_OK;
}

/* A worker rank of an MPI job: the same app as rank 0's, then the configs rank 0 sends. Failures
 * to agree are rank 0's to report; a failure while serving ends the job. */
static int worker_main(tune_args *a) {
  pt_app *app = NULL;
  int rc = PT_EXIT_OK;
  if (make_app(a, &app) != PT_OK) {
    rc = PT_EXIT_FAIL;
  } else if (pt_dist_serve(a->dist) != PT_OK) {
    fprintf(stderr, "predtuner-gpu: rank %d: %s\n", pt_dist_rank(a->dist), pt_last_error());
    pt_dist_abort(a->dist, PT_EXIT_FAIL);
  }
  pt_app_free(app);
  return rc;
}

static int lead_main(tune_args *a, int demo);

/* When a rank of an MPI job dies, the launcher ends the others with SIGTERM: rank 0 says which
 * worker died holding which unit (pt_dist_write_fault), and workers wait a moment before they go
 * so that rank 0 can tell the dead one from those being ended. */
static pt_dist *g_job;
/* rank 0's tuning.sqlite, and the file that was there at the start (an --overwrite run's old one
 * until its search begins): whether --resume would go on with this run */
static char g_journal[4200];
static struct stat g_journal_then;
static int g_journal_was, g_resuming;

static int journal_is_this_runs(void) {
  struct stat st;
  if (!g_journal[0] || stat(g_journal, &st) != 0) return 0;
  return g_resuming || !g_journal_was || st.st_ino != g_journal_then.st_ino ||
         st.st_mtim.tv_sec != g_journal_then.st_mtim.tv_sec || st.st_mtim.tv_nsec != g_journal_then.st_mtim.tv_nsec;
}

static void on_end_lead(int sig) {
  pt_dist_write_fault(g_job, STDERR_FILENO, sig,
                      journal_is_this_runs()
                          ? "; the journal keeps every finished batch: the same command with --resume goes on"
                          : "; no search had begun (the model files keep the entries they saved): the same command "
                            "goes on");
  _exit(PT_EXIT_FAIL);
}

static void on_end_worker(int sig) {
  (void)sig;
  nanosleep(&(struct timespec){0, 300 * 1000 * 1000}, NULL);
  _exit(PT_EXIT_FAIL);
}

/* on: catch the job's end (d: the job); off: the defaults again, before d is freed. */
static void catch_job_end(pt_dist *d, int on) {
  if (pt_dist_size(d) < 2) return;
  struct sigaction sa = {0};
  sa.sa_handler = !on ? SIG_DFL : pt_dist_rank(d) == 0 ? on_end_lead : on_end_worker;
  sigemptyset(&sa.sa_mask);
  g_job = on ? d : NULL;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/* Every rank of a tune-binary job, before any starts its binary: no two ranks of a node may drive
 * one binary's files. */
static pt_status claim_files(tune_args *a) {
  if (!a->piped || pt_dist_size(a->dist) < 2) return PT_OK;
  static char files[4 * 4200 + 8];
  pt_status s = pt_app_piped_files(&a->po, files, sizeof files);
  return pt_dist_claim(a->dist, s, s == PT_OK ? files : "");
}

static int tune_main(int argc, char **argv, int piped, int sens) {
  tune_args a = {.cmd = piped ? "tune-binary" : sens ? "sensitivity" : "tune", .piped = piped, .sens = sens,
                 .prefix_mib = -1};
  pt_tune_opts_init(&a.o);
  a.o.qos_tuner_threshold = NAN; /* "not given" until parsed */
  int rc = parse(argc, argv, &a);
  if (rc < 0) return PT_EXIT_OK;
  char demo_w[4096];
  int demo;
  if (rc != PT_EXIT_OK || (rc = resolve(&a, demo_w, sizeof demo_w, &demo)) != PT_EXIT_OK) return rc;
  pt_status s = pt_dist_init(&a.dist); /* every rank parsed the same arguments */
  if (s != PT_OK) return pt_cli_fail(s);
  catch_job_end(a.dist, 1);
  if ((s = claim_files(&a)) != PT_OK) /* every rank got the same error: rank 0 says it */
    rc = pt_dist_rank(a.dist) > 0 ? PT_EXIT_FAIL : pt_cli_fail(s);
  else
    rc = pt_dist_rank(a.dist) > 0 ? worker_main(&a) : lead_main(&a, demo);
  catch_job_end(a.dist, 0);
  pt_dist_finish(a.dist);
  return rc;
}

/* Rank 0 (or the only process): the output folder, its lock and log, the run. */
static int lead_main(tune_args *a_, int demo) {
  tune_args a = *a_;
  char out_dir[4096], path[4200];
  int rc;
  const int sens = a.sens;
  output_dir(&a, out_dir, sizeof out_dir);
  if (strlen(out_dir) > PT_CLI_MAX_OUTPUT) /* SQLite opens no journal at a longer path */
    return pt_cli_usage_error(a.cmd, "--output is %zu characters long; at most %d", strlen(out_dir), PT_CLI_MAX_OUTPUT);
  snprintf(path, sizeof path, "%s/tuning.sqlite", out_dir);
  snprintf(g_journal, sizeof g_journal, "%s", sens ? "" : path);
  g_journal_was = stat(path, &g_journal_then) == 0;
  g_resuming = a.o.resume;
  if (a.o.resume && access(path, F_OK) != 0) { /* refused before anything (a folder, tune.log) is made */
    fprintf(stderr, "predtuner-gpu: %s: --resume but there is no journal to resume\n", path);
    return PT_EXIT_FAIL;
  }
  pt_status s = pt_make_dirs(out_dir);
  if (s == PT_OK) s = pt_output_lock(out_dir); /* before tune.log: a second run must not touch the first's files */
  if (s != PT_OK) return pt_cli_fail(s);
  snprintf(path, sizeof path, "%s/%s.log", out_dir, sens ? "sensitivity" : "tune");
  if ((s = pt_log_open(path)) == PT_OK) {
    pt_log_echo(stderr, PT_LOG_INFO);
    rc = sens ? run_sens(&a, demo, out_dir) : run(&a, demo, out_dir);
    pt_log_close();
  } else {
    rc = pt_cli_fail(s);
  }
  pt_output_unlock(out_dir);
  return rc;
}

int pt_cmd_tune(int argc, char **argv) { return tune_main(argc, argv, 0, 0); }
int pt_cmd_tune_binary(int argc, char **argv) { return tune_main(argc, argv, 1, 0); }
int pt_cmd_sensitivity(int argc, char **argv) { return tune_main(argc, argv, 0, 1); }
