/* Shared pieces of the predtuner-gpu subcommands. Only src/cli prints and exits. */
#ifndef PT_CLI_H
#define PT_CLI_H

#include "predtuner/predtuner.h"

#define PT_EXIT_OK 0
#define PT_EXIT_FAIL 1
#define PT_EXIT_USAGE 2

/* Prints "predtuner-gpu CMD: message (see 'predtuner-gpu CMD --help')" and returns PT_EXIT_USAGE. */
int pt_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints "predtuner-gpu: <last error>" and returns PT_EXIT_FAIL. */
int pt_cli_fail(pt_status s);
/* The bundled demo folder (zoo/demo in the source tree or the installed copy), or NULL. */
const char *pt_cli_demo_dir(void);

/* Target device implied by a backend name (cpu, cuda, auto): "cpu" or "gpu". */
const char *pt_cli_default_device(const char *backend);

int pt_cmd_zoo(int argc, char **argv);
int pt_cmd_measure(int argc, char **argv);
int pt_cmd_knobs(int argc, char **argv);
int pt_cmd_tune(int argc, char **argv);
int pt_cmd_tune_binary(int argc, char **argv);
int pt_cmd_sensitivity(int argc, char **argv);
int pt_cmd_plot(int argc, char **argv);
int pt_cmd_report(int argc, char **argv);
int pt_cmd_export_hpvm(int argc, char **argv);
/* The bundled demo's model, weights (written into weights_buf) and data; prints the error and
 * returns 0 when the demo is not found. */
int pt_cli_demo_inputs(char *weights_buf, size_t n, const char **model, const char **weights, const char **data);
/* "rows stride 2 offset 0 fp16" and the like. */
void pt_cli_knob_params(const pt_knob *k, char *buf, size_t n);

#endif
