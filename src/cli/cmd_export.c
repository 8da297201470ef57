/* predtuner-gpu export-hpvm: HPVM's config text from a tuning run's configs.json. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

typedef struct export_args {
  const char *in, *out, *model;
  double base_test;
} export_args;

static const pt_cli_opt_def OPTS[] = {
    {"CONFIGS.json", PT_CLI_ARG, offsetof(export_args, in), 0, 0, 0, NULL, "our configs.json or PredTuner's configs list", 0},
    {"-o", PT_CLI_STR, offsetof(export_args, out), 0, 0, 0, "FILE", "the config text (written atomically)", 0},
    {"--output", PT_CLI_STR, offsetof(export_args, out), 0, 0, 0, "FILE", "the same", 0},
    {"--model", PT_CLI_STR, offsetof(export_args, model), 0, 0, 0, "NAME|F.onnx", "the zoo network or ONNX file the configs are for", 0},
    {"--baseline-test-qos", PT_CLI_DBL, offsetof(export_args, base_test), -1e9, 1e9, 0, "Q",
     "the baseline's test QoS (default: configs.json's baseline.test_qos)", 0},
};
#define N_OPTS ((int)(sizeof OPTS / sizeof OPTS[0]))

int pt_cmd_export_hpvm(int argc, char **argv) {
  export_args a = {.base_test = NAN};
  int r = pt_cli_parse("export-hpvm", OPTS, N_OPTS, 0, &a, argc, argv);
  if (r < 0) {
    printf("usage: predtuner-gpu export-hpvm CONFIGS.json -o OUT.txt [--model NAME|F.onnx] [--baseline-test-qos Q]\n\n"
           "Writes the configs of a tuning run (our configs.json or PredTuner's configs list) as HPVM's\n"
           "config text: \"0.0\", then a baseline config and every config sorted by speedup, one line\n"
           "per fused HPVM node ([conv|mul] [add] [relu|tanh] [pool_max]). Op types come from the\n"
           "network (--model: a zoo name or an .onnx file; default: the configs' app), or from\n"
           "HPVM-style op names (convolution_0, add_1, ...). Knobs must be HPVM's (11, 12, 121-138,\n"
           "151-168, 231-239, 261-269).\n\n");
    pt_cli_print_opts(stdout, OPTS, N_OPTS, 0, NULL);
    return PT_EXIT_OK;
  }
  if (r != PT_EXIT_OK) return r;
  if (!a.in) return pt_cli_usage_error("export-hpvm", "which configs.json?");
  if (!a.out) return pt_cli_usage_error("export-hpvm", "where to? (-o OUT.txt)");
  pt_status s = pt_hpvm_export(a.in, a.model, a.base_test, a.out);
  if (s != PT_OK) return pt_cli_fail(s);
  printf("wrote %s\n", a.out);
  return PT_EXIT_OK;
}
