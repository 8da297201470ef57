/* predtuner-gpu measure: QoS and speed of a network on a PredTuner-format data set. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"
#include "core/error.h"

typedef struct measure_args {
  const char *model, *weights, *data, *backend, *predictions, *log;
  const char *config, *knobs, *target, *ranges, *save_ranges;
  pt_cli_list knob;
  int test, fp16, strict;
  long batch, count, offset, threads, index, seed;
} measure_args;

#define AT(field) offsetof(measure_args, field)
#define BIG (double)(1LL << 40)

/* Every option of measure: parsing and --help both come from here. */
static const pt_cli_opt_def OPTS[] = {
    {"--model", PT_CLI_STR, AT(model), 0, 0, 0, "NAME|F.onnx", "a zoo network (see 'predtuner-gpu zoo') or an ONNX file (weights inside)", 0},
    {"--weights", PT_CLI_STR, AT(weights), 0, 0, 0, "FILE", "for a zoo network: safetensors or a PyTorch checkpoint (.pth, .pth.tar)", 0},
    {"--data", PT_CLI_STR, AT(data), 0, 0, 0, "DIR", "folder with tune_input.bin, tune_labels.bin, test_input.bin, test_labels.bin", 0},
    {"--test", PT_CLI_FLAG, AT(test), 0, 0, 1, NULL, "use the test set instead of the tune set", 0},
    {"--batch-size", PT_CLI_LONG, AT(batch), 1, 1 << 20, 0, "N", "images per run (default {})", 0},
    {"--count", PT_CLI_LONG, AT(count), 1, BIG, 0, "N", "use N images (default: all)", 0},
    {"--offset", PT_CLI_LONG, AT(offset), 0, BIG, 0, "N", "skip the first N images", 0},
    {"--config", PT_CLI_STR, AT(config), 0, 0, 0, "FILE", "run a config from configs.json or a PredTuner config dump", 0},
    {"--index", PT_CLI_LONG, AT(index), 0, 1 << 30, 0, "K", "which config of --config (default 0, the first)", 0},
    {"--knob", PT_CLI_LIST, AT(knob), 0, 0, 0, "OP=KNOB", "run op OP with knob KNOB (repeatable; applied over --config)", 0},
    {"--knobs", PT_CLI_STR, AT(knobs), 0, 0, 0, "FILE", "knob declarations (PredTuner's JSON format) instead of the built-in 56", 0},
    {"--target-device", PT_CLI_STR, AT(target), 0, 0, 0, "D", "cpu, gpu or any: picks the baseline knob for ops a config leaves out\n(default: the backend's device)", 0},
    {"--promise-ranges", PT_CLI_STR, AT(ranges), 0, 0, 0, "F", "PromiseSim quantisation ranges (JSON); default: calibrated on the tune set", 0},
    {"--save-promise-ranges", PT_CLI_STR, AT(save_ranges), 0, 0, 0, "F", "write the ranges used (for reuse or inspection)", 0},
    {"--seed", PT_CLI_LONG, AT(seed), 0, 2147483647.0, 0, "N", "PromiseSim noise seed (default {})", 0},
    {"--fp16", PT_CLI_FLAG, AT(fp16), 0, 0, 1, NULL, "run every op in half precision (FP16Approx)", 0},
    {"--backend", PT_CLI_STR, AT(backend), 0, 0, 0, "B", "cpu, cuda or auto (default {})", 0},
    {"--threads", PT_CLI_LONG, AT(threads), 1, 1024, 0, "N", "CPU threads (default: all cores)", 0},
    {"--strict", PT_CLI_FLAG, AT(strict), 0, 0, 1, NULL, "weights holding NaN or infinity are an error (default: a warning)", 0},
    {"--predictions", PT_CLI_STR, AT(predictions), 0, 0, 0, "FILE", "write the predicted class of each image (int32, little-endian)", 0},
    {"--log", PT_CLI_STR, AT(log), 0, 0, 0, "FILE", "append a timestamped log", 0},
};
#define N_OPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

static void defaults(measure_args *a) {
  memset(a, 0, sizeof *a);
  a->backend = "auto";
  a->batch = PT_BATCH_SIZE_DEFAULT;
  a->count = -1;
}

static void help(void) {
  measure_args d;
  defaults(&d);
  printf("usage: predtuner-gpu measure [--model NAME --weights FILE | --model FILE.onnx] [--data DIR] [options]\n"
         "\n"
         "Runs a network on the tune (default) or test set and prints its QoS (classification\n"
         "accuracy in percent, averaged per batch as PredTuner does), images per second and wall time.\n"
         "An output holding NaN or infinity is an error naming the op where it first appears.\n"
         "With no --model/--weights/--data it measures the bundled demo (LeNet on synthetic digits).\n"
         "\n");
  pt_cli_print_opts(stdout, OPTS, N_OPTS, 0, &d);
  printf("\nExit status: 0 success, 1 failure (bad file, ...), 2 usage error.\n");
}

static int parse(int argc, char **argv, measure_args *a) {
  defaults(a);
  int r = pt_cli_parse("measure", OPTS, N_OPTS, 0, a, argc, argv);
  if (r < 0) help();
  for (int i = 0; r == PT_EXIT_OK && i < a->knob.n; i++) {
    const char *v = a->knob.v[i], *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1]) r = pt_cli_usage_error("measure", "--knob expects OP=KNOB, got '%s'", v);
  }
  return r;
}

/* Builds the per-op settings from --fp16, --config/--index and --knob; *ops stays NULL for the exact
 * network. desc gets a one-line description. */
static pt_status resolve_config(const measure_args *a, const pt_graph *g, pt_backend *be, pt_op_exec **ops,
                                char *desc, size_t dn) {
  int no = pt_graph_num_ops(g);
  *ops = NULL;
  if (a->fp16) {
    if (!(*ops = calloc((size_t)no, sizeof **ops))) return pt__error(PT_ENOMEM, "measure: out of memory");
    for (int i = 0; i < no; i++) (*ops)[i].fp16 = 1;
    return PT_OK;
  }
  if (!a->config && !a->knob.n) return PT_OK;
  pt_knob_set *ks = NULL;
  pt_space *sp = NULL;
  pt_config_list *cl = NULL;
  const pt_knob **chosen = NULL;
  const char **names = NULL, **knobs = NULL;
  char *pairs = NULL;
  int n = 0;
  const char *target = a->target ? a->target : pt_cli_default_device(pt_backend_name(be));
  pt_status s = a->knobs ? pt_knobs_load(a->knobs, &ks) : pt_knobs_default(&ks);
  if (s == PT_OK) s = pt_space_build(g, ks, (unsigned)pt_device_parse(target), &sp);
  if (s == PT_OK && a->config) {
    s = pt_configs_load(a->config, &cl);
    if (s == PT_OK && a->index >= cl->n)
      s = pt__error(PT_ERANGE, "%s: --index %ld but the file holds %d config%s", a->config, a->index, cl->n,
                             cl->n == 1 ? "" : "s");
  }
  int cap = (s == PT_OK && cl ? cl->configs[a->index].n : 0) + a->knob.n + 1;
  if (s == PT_OK) {
    names = calloc((size_t)cap, sizeof *names);
    knobs = calloc((size_t)cap, sizeof *knobs);
    chosen = calloc((size_t)no, sizeof *chosen);
    pairs = malloc((size_t)(a->knob.n + 1) * 256);
    if (!names || !knobs || !chosen || !pairs) s = pt__error(PT_ENOMEM, "measure: out of memory");
  }
  if (s == PT_OK && cl)
    for (int i = 0; i < cl->configs[a->index].n; i++) {
      names[n] = cl->configs[a->index].ops[i];
      knobs[n++] = cl->configs[a->index].knobs[i];
    }
  for (int i = 0; s == PT_OK && i < a->knob.n; i++) { /* --knob replaces the config's entry for that op */
    char *buf = pairs + i * 256;
    snprintf(buf, 256, "%s", a->knob.v[i]);
    char *eq = strchr(buf, '=');
    *eq = '\0';
    int j = 0;
    while (j < n && strcmp(names[j], buf)) j++;
    names[j] = buf;
    knobs[j] = eq + 1;
    if (j == n) n++;
  }
  if (s == PT_OK && (*ops = calloc((size_t)no, sizeof **ops)) == NULL) s = pt__error(PT_ENOMEM, "measure: out of memory");
  if (s == PT_OK) {
    s = pt_config_resolve(sp, ks, n, names, knobs, *ops, chosen);
    if (s != PT_OK && a->config && s != PT_ENOMEM) { /* name the file and the config (loading named the file) */
      char detail[1024];
      snprintf(detail, sizeof detail, "%s", pt_last_error());
      pt__error(s, "%s: config %ld: %s", a->config, a->index, detail);
    }
  }
  if (s == PT_OK) {
    int approx = 0;
    for (int op = 0; op < no; op++) approx += strcmp(chosen[op]->name, pt_space_baseline(sp)->name) != 0;
    char src[512] = "--knob";
    if (a->config) snprintf(src, sizeof src, "%s #%ld%s", a->config, a->index, a->knob.n ? " + --knob" : "");
    size_t at = (size_t)snprintf(desc, dn, "%s: %d of %d ops off the baseline \"%s\" (target %s):", src, approx, no,
                                 pt_space_baseline(sp)->name, target);
    for (int op = 0; op < no && at < dn; op++)
      if (strcmp(chosen[op]->name, pt_space_baseline(sp)->name))
        at += (size_t)snprintf(desc + at, dn - at, " %s=%s", pt_graph_op_name(g, op), chosen[op]->name);
  }
  if (s != PT_OK) {
    free(*ops);
    *ops = NULL;
  }
  free(names);
  free(knobs);
  free(chosen);
  free(pairs);
  pt_configs_free(cl);
  pt_space_free(sp);
  pt_knobs_free(ks);
  return s;
}

/* PromiseSim ranges: from --promise-ranges, or calibrated on the tune set. */
static pt_status setup_promise(const measure_args *a, pt_graph *g, pt_exec *ex, const pt_op_exec *ops, int batch,
                               char *desc, size_t dn) {
  int no = pt_graph_num_ops(g), any = 0;
  for (int op = 0; ops && op < no; op++) any |= ops[op].kind == PT_APPROX_PROMISE;
  if (!any && !a->save_ranges) return PT_OK;
  pt_promise_ranges *r = calloc((size_t)no, sizeof *r);
  if (!r) return pt__error(PT_ENOMEM, "measure: out of memory");
  pt_status s;
  size_t at = strlen(desc);
  if (a->ranges) {
    s = pt_promise_ranges_load(a->ranges, g, r);
    if (at < dn && ops) snprintf(desc + at, dn - at, "; PromiseSim ranges from %s", a->ranges);
  } else {
    int c, h, w;
    pt_graph_input_shape(g, &c, &h, &w);
    pt_dataset *tune = NULL;
    s = pt_dataset_open(a->data, "tune", c, h, w, pt_graph_num_classes(g), 0, -1, &tune);
    if (s == PT_OK) s = pt_promise_calibrate(ex, g, tune, batch, r);
    if (s == PT_OK && at < dn && ops)
      snprintf(desc + at, dn - at, "; PromiseSim ranges calibrated on the tune set (%lld images)", (long long)tune->n);
    pt_dataset_close(tune);
  }
  if (s == PT_OK) s = pt_exec_set_promise(ex, r, (uint64_t)a->seed);
  if (s == PT_OK && a->save_ranges) s = pt_promise_ranges_save(a->save_ranges, g, r);
  free(r);
  return s;
}

int pt_cmd_measure(int argc, char **argv) {
  measure_args a = {0};
  int rc = parse(argc, argv, &a);
  if (rc < 0) return PT_EXIT_OK; /* --help */
  if (rc != PT_EXIT_OK) return rc;
  char demo_w[4096];
  int demo = !a.model && !a.weights && !a.data;
  if (demo) {
    if (!pt_cli_demo_inputs(demo_w, sizeof demo_w, &a.model, &a.weights, &a.data)) return PT_EXIT_FAIL;
  } else if (!a.model || !a.data || (!a.weights && !pt_model_is_onnx(a.model))) {
    return pt_cli_usage_error("measure", "--model, --weights and --data go together (--weights not with an .onnx model; or give none for the demo)");
  }
  if (a.fp16 && (a.config || a.knob.n))
    return pt_cli_usage_error("measure", "--fp16 runs every op in FP16Approx; it does not combine with --config/--knob");
  if (a.target && pt_device_parse(a.target) < 0)
    return pt_cli_usage_error("measure", "--target-device takes cpu, gpu or any, got '%s'", a.target);
  if (a.index && !a.config) return pt_cli_usage_error("measure", "--index needs --config");
  if (a.log) {
    pt_status s = pt_log_open(a.log);
    if (s != PT_OK) return pt_cli_fail(s);
  }
  pt_log_echo(stderr, PT_LOG_WARN); /* warnings (NaN weights, a model without a fingerprint) on the terminal */

  pt_graph *g = NULL;
  pt_backend *be = NULL;
  pt_exec *ex = NULL;
  pt_dataset *ds = NULL;
  pt_op_exec *ops = NULL;
  int32_t *pred = NULL;
  pt_status s = pt_model_load(a.model, a.weights, &g);
  if (s == PT_OK) s = pt_graph_check_weights(g, a.weights ? a.weights : a.model, a.strict);
  if (s == PT_OK && pt_graph_num_classes(g) <= 0)
    s = pt__error(PT_EUNSUPPORTED, "%s: the network's output is not (batch, classes)", a.model);
  int c = 0, h = 0, w = 0;
  if (s == PT_OK) {
    pt_graph_input_shape(g, &c, &h, &w);
    s = pt_dataset_open(a.data, a.test ? "test" : "tune", c, h, w, pt_graph_num_classes(g), a.offset, a.count, &ds);
  }
  if (s == PT_OK) s = pt_backend_create(a.backend, (int)a.threads, &be);
  if (s == PT_OK) s = pt_exec_create(g, be, &ex);
  char config_desc[4096] = "";
  if (s == PT_OK) s = resolve_config(&a, g, be, &ops, config_desc, sizeof config_desc);
  if (s == PT_OK && (ops || a.save_ranges)) /* --save-promise-ranges calibrates even with no PromiseSim op */
    s = setup_promise(&a, g, ex, ops, (int)a.batch, config_desc, sizeof config_desc);
  if (s == PT_OK && a.predictions && !(pred = malloc((size_t)ds->n * sizeof *pred)))
    s = pt__error(PT_ENOMEM, "measure: out of memory for %lld predictions", (long long)ds->n);
  if (s != PT_OK) goto out;

  printf("model      %s (%d ops)%s\n", a.model, pt_graph_num_ops(g), demo ? "  [bundled demo]" : "");
  printf("weights    %s\n", a.weights ? a.weights : "(in the ONNX file)");
  printf("data       %s: %s set, %lld images of %dx%dx%d, batch %ld\n", a.data, a.test ? "test" : "tune",
         (long long)ds->n, c, h, w, a.batch);
  printf("backend    %s\n", pt_backend_describe(be));
  if (!strcmp(a.backend, "auto")) /* say why auto did not pick the first backend built in (cuda) */
    for (int i = 0; i < pt_backend_count() && strcmp(pt_backend_name_at(i), pt_backend_name(be)); i++) {
      const char *why = "";
      if (!pt_backend_available_at(i, &why)) printf("           (auto: %s cannot run here: %s)\n", pt_backend_name_at(i), why);
    }
  printf("config     %s\n", a.fp16 ? "every op FP16Approx" : config_desc[0] ? config_desc : "exact fp32 network");
  fflush(stdout);
  pt_log(PT_LOG_INFO, "measure %s on %s (%s set, %lld images), backend %s", a.model, a.data, a.test ? "test" : "tune",
         (long long)ds->n, pt_backend_describe(be));

  pt_progress prog;
  pt_progress_begin(&prog, stderr, "measure", ds->n);
  pt_measure_opts mo = {.batch_size = (int)a.batch, .ops = ops, .progress = &prog, .predictions = pred};
  pt_measure_result r;
  s = pt_measure(ex, g, ds, &mo, &r);
  if (s != PT_OK) goto out;
  if (prog.tty) pt_progress_end(&prog);
  if (pred) s = pt_write_file_atomic(a.predictions, pred, (size_t)ds->n * sizeof *pred);
  if (s != PT_OK) goto out;
  printf("accuracy   %.2f %%  (QoS; top-5 %.2f %%; %d batch%s)\n", r.accuracy, r.top5, r.batches,
         r.batches == 1 ? "" : "es");
  printf("speed      %.1f images/s\n", r.images_per_s);
  printf("wall time  %.3f s\n", r.seconds);
  pt_log(PT_LOG_INFO, "accuracy %.4f %% top-5 %.4f %%, %.1f images/s, %.3f s", r.accuracy, r.top5, r.images_per_s,
         r.seconds);
out:
  if (s != PT_OK) {
    pt_log_echo(NULL, PT_LOG_WARN); /* into the log only: the terminal gets it once, below */
    pt_log(PT_LOG_ERROR, "%s", pt_last_error());
    rc = pt_cli_fail(s);
  }
  free(ops);
  free(pred);
  pt_exec_free(ex);
  pt_backend_free(be);
  pt_dataset_close(ds);
  pt_graph_free(g);
  pt_log_close();
  return rc;
}
