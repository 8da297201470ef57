/* predtuner-gpu plot and report: redraw the plot of a tuning run from its configs.json, rebuild the
 * report.html of its output folder. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

typedef struct plot_args {
  const char *in, *out;
  int loss;
} plot_args;

static const pt_cli_opt_def OPTS[] = {
    {"CONFIGS.json", PT_CLI_ARG, offsetof(plot_args, in), 0, 0, 0, NULL, "the tuning run's configs.json", 0},
    {"-o", PT_CLI_STR, offsetof(plot_args, out), 0, 0, 0, "FILE", "the plot, .png or .svg (default: CONFIGS with .png and .svg)", 0},
    {"--output", PT_CLI_STR, offsetof(plot_args, out), 0, 0, 0, "FILE", "the same", 0},
    {"--show-qos-loss", PT_CLI_FLAG, offsetof(plot_args, loss), 0, 0, 1, NULL, "plot QoS loss instead of QoS", 0},
};

int pt_cmd_plot(int argc, char **argv) {
  plot_args a = {0};
  int r = pt_cli_parse("plot", OPTS, (int)(sizeof OPTS / sizeof OPTS[0]), 0, &a, argc, argv);
  if (r < 0) {
    printf("usage: predtuner-gpu plot CONFIGS.json [-o OUT.png|OUT.svg] [--show-qos-loss]\n\n"
           "Redraws the plot of a tuning run from its configs.json.\n\n");
    pt_cli_print_opts(stdout, OPTS, (int)(sizeof OPTS / sizeof OPTS[0]), 0, NULL);
    return PT_EXIT_OK;
  }
  if (r != PT_EXIT_OK) return r;
  if (!a.in) return pt_cli_usage_error("plot", "which configs.json?");
  char path[4200];
  pt_status s = PT_OK;
  if (a.out) {
    s = pt_plot_configs_file(a.in, a.out, a.loss);
    if (s == PT_OK) printf("wrote %s\n", a.out);
  } else {
    for (int k = 0; s == PT_OK && k < 2; k++) {
      snprintf(path, sizeof path, "%s", a.in);
      char *dot = strrchr(path, '.');
      if (dot && !strcmp(dot, ".json")) *dot = '\0';
      strcat(path, k ? ".svg" : ".png");
      s = pt_plot_configs_file(a.in, path, a.loss);
      if (s == PT_OK) printf("wrote %s\n", path);
    }
  }
  return s == PT_OK ? PT_EXIT_OK : pt_cli_fail(s);
}

typedef struct report_args {
  const char *dir;
} report_args;

static const pt_cli_opt_def REPORT_OPTS[] = {
    {"DIR", PT_CLI_ARG, offsetof(report_args, dir), 0, 0, 0, NULL, "a tuning run's output folder", 0},
};

int pt_cmd_report(int argc, char **argv) {
  report_args a = {0};
  int r = pt_cli_parse("report", REPORT_OPTS, 1, 0, &a, argc, argv);
  if (r < 0) {
    printf("usage: predtuner-gpu report DIR\n\n"
           "Rebuilds DIR/report.html, the self-contained page of a tuning run (settings, baseline,\n"
           "thresholds, the best configs with predicted and measured speedups, the plots and the\n"
           "sensitivity heatmap inline), from DIR's configs.json, configs.svg and sensitivity files.\n\n");
    pt_cli_print_opts(stdout, REPORT_OPTS, 1, 0, NULL);
    return PT_EXIT_OK;
  }
  if (r != PT_EXIT_OK) return r;
  if (!a.dir) return pt_cli_usage_error("report", "which output folder?");
  pt_status s = pt_report_write(a.dir);
  if (s == PT_OK) printf("wrote %s/report.html\n", a.dir);
  return s == PT_OK ? PT_EXIT_OK : pt_cli_fail(s);
}
