#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_opts.h"

typedef struct zoo_args {
  const char *ops;
} zoo_args;

static const pt_cli_opt_def OPTS[] = {
    {"--ops", PT_CLI_STR, offsetof(zoo_args, ops), 0, 0, 0, "NAME", "list that network's ops instead", 0},
};

static void help(void) {
  printf("usage: predtuner-gpu zoo [--ops NAME]\n"
         "\n"
         "Lists the built-in networks (PredTuner's model zoo): ops, convolutions, parameters and\n"
         "GFLOPs per image (PredTuner's FLOP rules). With --ops NAME, lists that network's ops in\n"
         "registration order with type, output shape, parameters and MFLOPs per image.\n\n");
  pt_cli_print_opts(stdout, OPTS, 1, 0, NULL);
}

static int list_ops(const char *name) {
  pt_graph *g;
  pt_status s = pt_zoo_build(name, &g);
  if (s != PT_OK) return pt_cli_fail(s);
  printf("%-4s %-28s %-12s %-16s %12s %12s\n", "#", "op", "type", "output", "params", "MFLOPs");
  for (int i = 0; i < pt_graph_num_ops(g); i++) {
    int64_t sh[3];
    char shape[48];
    int nd = pt_graph_op_out_shape(g, i, sh);
    pt_shape_str(shape, sizeof shape, nd, sh);
    printf("%-4d %-28s %-12s %-16s %12lld %12.3f\n", i, pt_graph_op_name(g, i), pt_op_type_name(pt_graph_op_type(g, i)),
           shape, (long long)pt_graph_op_params(g, i), pt_graph_op_flops(g, i) / 1e6);
  }
  pt_graph_free(g);
  return PT_EXIT_OK;
}

int pt_cmd_zoo(int argc, char **argv) {
  zoo_args a = {0};
  int r = pt_cli_parse("zoo", OPTS, 1, 0, &a, argc, argv);
  if (r < 0) help();
  if (r != PT_EXIT_OK) return r < 0 ? PT_EXIT_OK : r;
  const char *ops = a.ops;
  if (ops) return list_ops(ops);
  printf("%-20s %-34s %5s %6s %12s %12s\n", "network", "input", "ops", "convs", "parameters", "GFLOPs/image");
  for (int i = 0; i < pt_zoo_count(); i++) {
    pt_graph *g;
    pt_status s = pt_zoo_build(pt_zoo_name(i), &g);
    if (s != PT_OK) return pt_cli_fail(s);
    printf("%-20s %-34s %5d %6d %12lld %12.4f\n", pt_zoo_name(i), pt_zoo_describe(i), pt_graph_num_ops(g),
           pt_graph_count_ops(g, PT_OP_CONV2D), (long long)pt_graph_total_params(g), pt_graph_total_flops(g) / 1e9);
    pt_graph_free(g);
  }
  return PT_EXIT_OK;
}
