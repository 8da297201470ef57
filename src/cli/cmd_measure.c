/* predtuner-gpu measure: QoS and speed of a network on a PredTuner-format data set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static void help(void) {
  printf("usage: predtuner-gpu measure [--model NAME --weights FILE --data DIR] [options]\n"
         "\n"
         "Runs a network on the tune (default) or test set and prints its QoS (classification\n"
         "accuracy in percent, averaged per batch as PredTuner does), images per second and wall time.\n"
         "With no --model/--weights/--data it measures the bundled demo (LeNet on synthetic digits).\n"
         "\n"
         "  --model NAME        a zoo network (see 'predtuner-gpu zoo')\n"
         "  --weights FILE      safetensors file with the PyTorch state_dict keys\n"
         "  --data DIR          folder with tune_input.bin, tune_labels.bin, test_input.bin, test_labels.bin\n"
         "  --test              use the test set instead of the tune set\n"
         "  --batch-size N      images per run (default 500)\n"
         "  --count N           use N images (default: all)\n"
         "  --offset N          skip the first N images\n"
         "  --fp16              run every op in half precision (FP16Approx)\n"
         "  --backend B         cpu, cuda or auto (default auto)\n"
         "  --threads N         CPU threads (default: all cores)\n"
         "  --predictions FILE  write the predicted class of each image (int32, little-endian)\n"
         "  --log FILE          append a timestamped log\n"
         "\n"
         "Exit status: 0 success, 1 failure (bad file, ...), 2 usage error.\n");
}

typedef struct measure_args {
  const char *model, *weights, *data, *backend, *predictions, *log;
  int test, fp16;
  long batch, count, offset, threads;
} measure_args;

static int parse(int argc, char **argv, measure_args *a) {
  a->backend = "auto";
  a->batch = 500;
  a->count = -1;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL, *arg = argv[i];
    int r = 0;
#define STR_OPT(flag, field)                                                          \
  if ((r = pt_cli_opt(argc, argv, &i, flag, &v))) {                                  \
    if (r < 0) return pt_cli_usage_error("measure", "%s needs a value", flag);       \
    a->field = v;                                                                    \
    continue;                                                                        \
  }
#define INT_OPT(flag, field, lo, hi)                                                  \
  if ((r = pt_cli_opt(argc, argv, &i, flag, &v))) {                                  \
    if (r < 0) return pt_cli_usage_error("measure", "%s needs a value", flag);       \
    if (!pt_cli_int("measure", flag, v, lo, hi, &a->field)) return PT_EXIT_USAGE;    \
    continue;                                                                        \
  }
    if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
      help();
      return -1;
    }
    if (!strcmp(arg, "--test")) {
      a->test = 1;
      continue;
    }
    if (!strcmp(arg, "--fp16")) {
      a->fp16 = 1;
      continue;
    }
    STR_OPT("--model", model)
    STR_OPT("--weights", weights)
    STR_OPT("--data", data)
    STR_OPT("--backend", backend)
    STR_OPT("--predictions", predictions)
    STR_OPT("--log", log)
    INT_OPT("--batch-size", batch, 1, 1 << 20)
    INT_OPT("--count", count, 1, 1L << 40)
    INT_OPT("--offset", offset, 0, 1L << 40)
    INT_OPT("--threads", threads, 1, 1024)
#undef STR_OPT
#undef INT_OPT
    return pt_cli_usage_error("measure", "unknown argument '%s'", arg);
  }
  return PT_EXIT_OK;
}

int pt_cmd_measure(int argc, char **argv) {
  measure_args a = {0};
  int rc = parse(argc, argv, &a);
  if (rc < 0) return PT_EXIT_OK; /* --help */
  if (rc != PT_EXIT_OK) return rc;
  char demo_w[4096];
  int demo = !a.model && !a.weights && !a.data;
  if (demo) {
    const char *dir = pt_cli_demo_dir();
    if (!dir) {
      fprintf(stderr, "predtuner-gpu: the bundled demo was not found (set PREDTUNER_DEMO_DIR to zoo/demo)\n");
      return PT_EXIT_FAIL;
    }
    snprintf(demo_w, sizeof demo_w, "%s/lenet_mnist.safetensors", dir);
    a.model = "lenet_mnist";
    a.weights = demo_w;
    a.data = dir;
  } else if (!a.model || !a.weights || !a.data) {
    return pt_cli_usage_error("measure", "--model, --weights and --data go together (or give none for the demo)");
  }
  if (a.log) {
    pt_status s = pt_log_open(a.log);
    if (s != PT_OK) return pt_cli_fail(s);
  }

  pt_graph *g = NULL;
  pt_backend *be = NULL;
  pt_exec *ex = NULL;
  pt_dataset *ds = NULL;
  pt_op_exec *ops = NULL;
  int32_t *pred = NULL;
  pt_status s = pt_zoo_build(a.model, &g);
  if (s == PT_OK) s = pt_weights_load(g, a.weights);
  int c = 0, h = 0, w = 0;
  if (s == PT_OK) {
    pt_graph_input_shape(g, &c, &h, &w);
    s = pt_dataset_open(a.data, a.test ? "test" : "tune", c, h, w, pt_graph_num_classes(g), a.offset, a.count, &ds);
  }
  if (s == PT_OK) s = pt_backend_create(a.backend, (int)a.threads, &be);
  if (s == PT_OK) s = pt_exec_create(g, be, &ex);
  if (s == PT_OK && a.fp16) {
    ops = calloc((size_t)pt_graph_num_ops(g), sizeof *ops);
    if (!ops) s = PT_ENOMEM;
    for (int i = 0; ops && i < pt_graph_num_ops(g); i++) ops[i].fp16 = 1;
  }
  if (s == PT_OK && a.predictions && !(pred = malloc((size_t)ds->n * sizeof *pred))) s = PT_ENOMEM;
  if (s != PT_OK) goto out;

  printf("model      %s (%d ops)%s\n", a.model, pt_graph_num_ops(g), demo ? "  [bundled demo]" : "");
  printf("weights    %s\n", a.weights);
  printf("data       %s: %s set, %lld images of %dx%dx%d, batch %ld\n", a.data, a.test ? "test" : "tune",
         (long long)ds->n, c, h, w, a.batch);
  printf("backend    %s\n", pt_backend_describe(be));
  printf("precision  %s\n", a.fp16 ? "fp16 (every op FP16Approx)" : "fp32 (exact)");
  fflush(stdout);
  pt_log(PT_LOG_INFO, "measure %s on %s (%s set, %lld images), backend %s", a.model, a.data, a.test ? "test" : "tune",
         (long long)ds->n, pt_backend_describe(be));

  pt_progress prog;
  pt_progress_begin(&prog, stderr, "measure", ds->n);
  pt_measure_opts mo = {(int)a.batch, ops, &prog, pred};
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
