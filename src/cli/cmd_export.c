/* predtuner-gpu export-hpvm: HPVM's config text from a tuning run's configs.json. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int pt_cmd_export_hpvm(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *model = NULL;
  double base_test = NAN;
  for (int i = 1; i < argc; i++) {
    const char *v = NULL;
    int r;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: predtuner-gpu export-hpvm CONFIGS.json -o OUT.txt [--model NAME|F.onnx] [--baseline-test-qos Q]\n\n"
             "Writes the configs of a tuning run (our configs.json or PredTuner's configs list) as HPVM's\n"
             "config text: \"0.0\", then a baseline config and every config sorted by speedup, one line\n"
             "per fused HPVM node ([conv|mul] [add] [relu|tanh] [pool_max]). Op types come from the\n"
             "network (--model: a zoo name or an .onnx file; default: the configs' app), or from\n"
             "HPVM-style op names (convolution_0, add_1, ...). Knobs must be HPVM's (11, 12, 121-138,\n"
             "151-168, 231-239, 261-269).\n\n"
             "  -o, --output FILE         the config text (written atomically)\n"
             "  --model NAME|F.onnx       the zoo network or ONNX file the configs are for\n"
             "  --baseline-test-qos Q     the baseline's test QoS (default: configs.json's baseline.test_qos)\n");
      return PT_EXIT_OK;
    }
    if ((r = pt_cli_opt(argc, argv, &i, "-o", &v)) || (r = pt_cli_opt(argc, argv, &i, "--output", &v))) {
      if (r < 0) return pt_cli_usage_error("export-hpvm", "-o needs a file name");
      out = v;
      continue;
    }
    if ((r = pt_cli_opt(argc, argv, &i, "--model", &v))) {
      if (r < 0) return pt_cli_usage_error("export-hpvm", "--model needs a network name");
      model = v;
      continue;
    }
    if ((r = pt_cli_opt(argc, argv, &i, "--baseline-test-qos", &v))) {
      char *end;
      if (r < 0 || !(base_test = strtod(v, &end), *v && !*end) || !isfinite(base_test))
        return pt_cli_usage_error("export-hpvm", "--baseline-test-qos needs a number");
      continue;
    }
    if (argv[i][0] == '-' || in) return pt_cli_usage_error("export-hpvm", "unexpected argument '%s'", argv[i]);
    in = argv[i];
  }
  if (!in) return pt_cli_usage_error("export-hpvm", "which configs.json?");
  if (!out) return pt_cli_usage_error("export-hpvm", "where to? (-o OUT.txt)");
  pt_status s = pt_hpvm_export(in, model, base_test, out);
  if (s != PT_OK) return pt_cli_fail(s);
  printf("wrote %s\n", out);
  return PT_EXIT_OK;
}
