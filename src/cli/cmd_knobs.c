/* predtuner-gpu knobs: the knob declarations, and for a model how many apply to each op. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

typedef struct knobs_args {
  const char *model, *knobs_file, *target;
} knobs_args;

static const pt_cli_opt_def OPTS[] = {
    {"--model", PT_CLI_STR, offsetof(knobs_args, model), 0, 0, 0, "NAME", "a zoo network or an .onnx file", 0},
    {"--target-device", PT_CLI_STR, offsetof(knobs_args, target), 0, 0, 0, "D",
     "cpu, gpu or any (no filter); default: gpu when a GPU backend can run, else cpu", 0},
    {"--knobs", PT_CLI_STR, offsetof(knobs_args, knobs_file), 0, 0, 0, "FILE", "knob declarations instead of the built-in default", 0},
};
#define N_OPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

static void help(void) {
  printf("usage: predtuner-gpu knobs [--model NAME] [--target-device cpu|gpu|any] [--knobs FILE]\n"
         "\n"
         "Lists the approximation knobs (the built-in default: PredTuner's 56, or a knob file in\n"
         "PredTuner's JSON format), filtered to the target device, with the baseline knob. With\n"
         "--model, also lists how many knobs apply to each op of that network.\n"
         "\n");
  pt_cli_print_opts(stdout, OPTS, N_OPTS, 0, NULL);
}

void pt_cli_knob_params(const pt_knob *k, char *buf, size_t n) {
  switch (k->cls) {
    case PT_KNOB_PERFORATE:
      snprintf(buf, n, "%s stride %d offset %d%s", k->perf_dir == PT_PERF_ROWS ? "rows" : "cols", k->stride, k->offset,
               k->use_fp16 ? " fp16" : "");
      break;
    case PT_KNOB_SAMPLING:
      snprintf(buf, n, "skip_every %d offset %d interp %.3g%s", k->skip_every, k->skip_offset, k->interp_rate,
               k->use_fp16 ? " fp16" : "");
      break;
    case PT_KNOB_PROMISE: snprintf(buf, n, "noise_level %d", k->noise_level); break;
    default: snprintf(buf, n, "-");
  }
}

int pt_cmd_knobs(int argc, char **argv) {
  knobs_args a = {.target = pt_cli_default_device("auto")};
  int r = pt_cli_parse("knobs", OPTS, N_OPTS, 0, &a, argc, argv);
  if (r < 0) help();
  if (r != PT_EXIT_OK) return r < 0 ? PT_EXIT_OK : r;
  if (pt_device_parse(a.target) < 0)
    return pt_cli_usage_error("knobs", "--target-device takes cpu, gpu or any, got '%s'", a.target);
  const char *model = a.model, *knobs_file = a.knobs_file, *target = a.target;
  unsigned dev = (unsigned)pt_device_parse(target);
  pt_knob_set *ks = NULL;
  pt_graph *g = NULL;
  pt_space *sp = NULL;
  pt_status s = knobs_file ? pt_knobs_load(knobs_file, &ks) : pt_knobs_default(&ks);
  if (s == PT_OK && model) s = pt_model_is_onnx(model) ? pt_onnx_load(model, &g) : pt_zoo_build(model, &g);
  if (s == PT_OK && g) s = pt_space_build(g, ks, dev, &sp);
  if (s != PT_OK) {
    int rc = pt_cli_fail(s);
    pt_knobs_free(ks);
    pt_graph_free(g);
    return rc;
  }
  /* the baseline among the filtered knobs (as pt_space_build chooses it) */
  const pt_knob *base = NULL;
  int usable = 0;
  for (int i = 0; i < pt_knobs_count(ks); i++) {
    const pt_knob *k = pt_knobs_at(ks, i);
    if (dev && k->devices && !(k->devices & dev)) continue;
    usable++;
    if (k->has_priority && (!base || k->baseline_priority > base->baseline_priority)) base = k;
  }
  if (sp) base = pt_space_baseline(sp);
  printf("knobs: %d declared (%s), %d on target device %s; baseline \"%s\" (%s)\n", pt_knobs_count(ks),
         knobs_file ? knobs_file : "built-in default", usable, target, base ? base->name : "__baseline__",
         base ? pt_knob_class_name(base->cls) : "exact, built in");
  printf("%-8s %-22s %-36s %11s %-8s %s\n", "name", "class", "parameters", "exp_speedup", "devices", "baseline_priority");
  for (int i = 0; i < pt_knobs_count(ks); i++) {
    const pt_knob *k = pt_knobs_at(ks, i);
    if (dev && k->devices && !(k->devices & dev)) continue;
    char params[96], prio[16];
    pt_cli_knob_params(k, params, sizeof params);
    snprintf(prio, sizeof prio, "%d", k->baseline_priority);
    printf("%-8s %-22s %-36s %11.2f %-8s %s\n", k->name, pt_knob_class_name(k->cls), params, k->exp_speedup,
           k->devices == 0 ? "any" : k->devices == (PT_DEVICE_CPU | PT_DEVICE_GPU) ? "cpu,gpu" : pt_device_name(k->devices),
           k->has_priority ? prio : "-");
  }
  if (sp) {
    printf("\nmodel %s: %d ops, %d distinct knobs in use\n", model, pt_graph_num_ops(g), pt_space_num_knobs(sp));
    printf("%-4s %-28s %-12s %5s\n", "#", "op", "type", "knobs");
    for (int op = 0; op < pt_graph_num_ops(g); op++)
      printf("%-4d %-28s %-12s %5d\n", op, pt_graph_op_name(g, op), pt_op_type_name(pt_graph_op_type(g, op)),
             pt_space_op_count(sp, op));
  }
  pt_space_free(sp);
  pt_graph_free(g);
  pt_knobs_free(ks);
  return PT_EXIT_OK;
}
