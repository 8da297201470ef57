/* predtuner-gpu plot: redraws the plot of a tuning run from its configs.json. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

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
