/* predtuner-gpu: the command-line front end. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void usage(void) {
  printf(
          "usage: predtuner-gpu <command> [options]\n"
          "\n"
          "Accuracy-aware approximation tuning for CNN inference.\n"
          "\n"
          "commands:\n"
          "  tune      search approximation configs within a QoS budget; writes configs.json, plots,\n"
          "            a journal (no options: tunes the bundled demo)\n"
          "  tune-binary  tune an HPVM-compiled program through its FIFOs (PredTuner's piped binary)\n"
          "  sensitivity  each knob alone on each op: QoS loss, predicted and measured speedup, ranked;\n"
          "            JSON, text and a heatmap (also written by every tune with a QoS model)\n"
          "  plot      redraw the plot of a tuning run from its configs.json\n"
          "  report    rebuild the report.html of a tuning run's output folder\n"
          "  export-hpvm  write a tuning run's configs as HPVM's config text\n"
          "  measure   run a network on a data set: accuracy (QoS), images/s, wall time\n"
          "            (no options: the bundled demo LeNet)\n"
          "  zoo       list the built-in networks, or the ops of one (--ops NAME)\n"
          "  knobs     list the approximation knobs, and how many apply to each op of a model\n"
          "  version   print the version and the backends built in\n"
          "\n"
          "'predtuner-gpu <command> --help' describes each command.\n"
          "\n"
          "environment (CPU backend):\n"
          "  PT_CPU_DNNL=M               which convolutions run on oneDNN when built with it: 0 (none),\n"
          "                              exact (exact fp32), all (every knob it can), default (exact,\n"
          "                              FP16Approx, perforation, with AVX-512 sampling every 2 and\n"
          "                              every 3 on small maps: the knob benchmark's choice)\n"
          "  PT_CPU_DIRECT=0|1           the direct kernel for sampling and perforation: 0 off,\n"
          "                              1 for every convolution it takes (default: those knobs)\n"
          "  PT_CPU_DIRECT_ISA=avx2      that kernel in AVX2 even where the CPU has AVX-512\n"
          "environment (CUDA backend):\n"
          "  PT_CUDA_LANES=N             streams a batch of configs is spread over (1-8, default 2)\n"
          "  PT_CUDA_EXACT_VARIANT=V     exact convolutions through cudnn, gemm or igemm (the implicit-GEMM\n"
          "                              kernels); default auto: the fastest that agrees with cuDNN, timed\n"
          "                              once per shape\n"
          "  PT_CUDA_PERF_VARIANT=V      perforation through cudnn, gemm or igemm (default auto)\n"
          "  PT_CUDA_SAMP_VARIANT=V      sampling through cudnn, gemm or igemm (default auto)\n");
}

static int cmd_version(void) {
  printf("predtuner-gpu %s\nbackends:", PT_VERSION_STRING);
  for (int i = 0; i < pt_backend_count(); i++) {
    const char *why;
    int ok = pt_backend_available_at(i, &why);
    printf(" %s%s%s%s", pt_backend_name_at(i), ok ? "" : " (unavailable: ", ok ? "" : why, ok ? "" : ")");
  }
  printf("\nmpi: %s\n", pt_dist_describe());
  return PT_EXIT_OK;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "predtuner-gpu: no command given; usage: predtuner-gpu <command> [options] (see --help)\n");
    return PT_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage();
    return PT_EXIT_OK;
  }
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) return cmd_version();
  if (!strcmp(cmd, "measure")) return pt_cmd_measure(argc - 1, argv + 1);
  if (!strcmp(cmd, "tune")) return pt_cmd_tune(argc - 1, argv + 1);
  if (!strcmp(cmd, "tune-binary")) return pt_cmd_tune_binary(argc - 1, argv + 1);
  if (!strcmp(cmd, "sensitivity")) return pt_cmd_sensitivity(argc - 1, argv + 1);
  if (!strcmp(cmd, "plot")) return pt_cmd_plot(argc - 1, argv + 1);
  if (!strcmp(cmd, "report")) return pt_cmd_report(argc - 1, argv + 1);
  if (!strcmp(cmd, "export-hpvm")) return pt_cmd_export_hpvm(argc - 1, argv + 1);
  if (!strcmp(cmd, "zoo")) return pt_cmd_zoo(argc - 1, argv + 1);
  if (!strcmp(cmd, "knobs")) return pt_cmd_knobs(argc - 1, argv + 1);
  fprintf(stderr, "predtuner-gpu: unknown command '%s' (see 'predtuner-gpu --help')\n", cmd);
  return PT_EXIT_USAGE;
}
