/* Apps (docs/design.md, "Concepts"): something whose QoS and cost can be measured for a config. The DNN app is a
 * network with tune and test sets; the generic app lets a C program tune anything through a
 * callback (PredTuner's TorchApp and ApproxApp/ModeledApp).
 *
 * A config is an array of one uint16_t per op: the position of the op's knob in that op's knob list
 * (pt_app_op_knob); position 0 is always the baseline knob. */
#ifndef PREDTUNER_APP_H
#define PREDTUNER_APP_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_app pt_app;

/* ---- the DNN app ---- */
typedef struct pt_dnn_app_opts {
  const char *model;         /* zoo network name */
  const char *weights;       /* safetensors file */
  const char *data;          /* folder with tune_/test_ input.bin and labels.bin */
  const char *backend;       /* "cpu", "cuda" or "auto" (NULL = auto) */
  int threads;               /* CPU threads, 0 = all */
  int batch_size;            /* images per run, 0 = PT_BATCH_SIZE_DEFAULT (measure.h) */
  int64_t tune_offset, tune_count; /* images of the tune set to use (count <= 0: all) */
  int64_t test_offset, test_count; /* same for the test set */
  const char *knobs_file;    /* knob declarations (PredTuner JSON), NULL = the built-in 56 */
  const char *target_device; /* "cpu", "gpu", "any"; NULL = the backend's device */
  const char *promise_ranges;/* PromiseSim ranges JSON, NULL = calibrate on the tune set when needed */
  uint64_t seed;             /* PromiseSim noise seed */
  const char *name;          /* app name (for results and model files), NULL = the model name */
  int strict;                /* weights holding NaN or infinity are an error (default: a warning) */
  int prefix_cache_mib;      /* the executor's exact-prefix cache (pt_exec_set_prefix_cache), MiB:
                                0 = PT_PREFIX_CACHE_MIB_DEFAULT, < 0 = off */
} pt_dnn_app_opts;

#define PT_PREFIX_CACHE_MIB_DEFAULT 256

pt_status pt_app_dnn_create(const pt_dnn_app_opts *opts, pt_app **out);

/* ---- the piped-binary app (an HPVM program driven through FIFOs; docs/tune-binary.md) ---- */
typedef struct pt_piped_app_opts {
  const char *binary;        /* the program; started once in its own folder, stdout discarded */
  const char *metadata;      /* M.json: op_cost, op_knobs, knobs, tune_labels_path, conf_path, fifo_path_r/_w */
  const char *name;          /* app name, NULL = the binary's file name */
  const char *target_device; /* drop knobs whose "devices" lack it; NULL = keep all */
  double timeout_s;          /* longest wait for one answer, 0 = 600 s */
} pt_piped_app_opts;

/* Starts the binary and runs the baseline once (checking the protocol and the output shape against
 * the tune labels). The child never outlives the app or this process. */
pt_status pt_app_piped_create(const pt_piped_app_opts *opts, pt_app **out);
/* The files a binary started with these options writes or reads as its own, absolute, one per
 * line: final_accuracy in its folder, conf_path, fifo_path_r, fifo_path_w (from the metadata; the
 * binary is not started). Two processes of one machine sharing a line would drive each other's
 * binary (an MPI job checks this before any rank starts one: pt_dist_claim). */
pt_status pt_app_piped_files(const pt_piped_app_opts *opts, char *out, size_t n);

/* ---- the generic app ---- */
typedef struct pt_generic_knob {
  const char *name;
  double speedup; /* expected speedup, for cost_linear (the baseline's is usually 1) */
} pt_generic_knob;

typedef struct pt_generic_op {
  const char *name;
  double cost;                   /* the op's baseline cost (e.g. FLOPs), for cost_linear */
  int n_knobs;
  const pt_generic_knob *knobs;  /* knobs[0] is the baseline */
} pt_generic_op;

/* Measures n configs (n x n_ops knob positions, row-major) on the tuning inputs (test = 0) or the
 * held-out test inputs (test = 1): writes a higher-is-better QoS to qos[i] and a cost (any unit,
 * > 0) to cost[i], or NaN where the cost is not measured (then only a cost model can be used). A
 * non-OK return (set the message with pt_app_set_error) fails the batch: the tuner then measures
 * its configs one at a time and records those that fail again, or whose QoS is not finite, as
 * failed configs (docs/design.md, "Failed configs"); measuring the exact program must succeed. */
typedef pt_status (*pt_generic_measure_fn)(void *user, int n, const uint16_t *configs, int test, double *qos,
                                           double *cost);

/* The ops and knobs are copied; user must stay valid while the app lives. */
pt_status pt_app_generic_create(const char *name, int n_ops, const pt_generic_op *ops, pt_generic_measure_fn fn,
                                void *user, pt_app **out);
/* For callbacks: sets the detail message that pt_last_error() returns, and returns s. */
pt_status pt_app_set_error(pt_status s, const char *msg);

void pt_app_free(pt_app *app);

/* ---- what every app exposes ---- */
const char *pt_app_name(const pt_app *app);
int pt_app_num_ops(const pt_app *app);
const char *pt_app_op_name(const pt_app *app, int op);
/* The op's baseline cost as cost_linear uses it (FLOPs for DNN ops). */
double pt_app_op_cost(const pt_app *app, int op);
int pt_app_op_num_knobs(const pt_app *app, int op);
const char *pt_app_op_knob(const pt_app *app, int op, int pos);
double pt_app_op_knob_speedup(const pt_app *app, int op, int pos);
/* Position of knob name in op's list, or -1. */
int pt_app_op_find_knob(const pt_app *app, int op, const char *name);
/* Number of distinct configs (as a double: it overflows any integer for deep networks). */
double pt_app_space_size(const pt_app *app);
/* One line about the app (model, data, backend, knob set). */
const char *pt_app_describe(const pt_app *app);

/* Empirical QoS and cost of n configs (NULL configs with n == 1: the exact network, which for a DNN
 * differs from the baseline config when the baseline knob is FP16). */
pt_status pt_app_measure(pt_app *app, int n, const uint16_t *configs, int test, double *qos, double *cost);

#ifdef __cplusplus
}
#endif
#endif
