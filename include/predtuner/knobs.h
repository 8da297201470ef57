/* Approximation knobs (docs/design.md, "Knobs"): knob sets, which knobs apply to which op, the
 * baseline, and configs (op -> knob) resolved against a network. Knob files and config files are
 * read by io.h's functions. */
#ifndef PREDTUNER_KNOBS_H
#define PREDTUNER_KNOBS_H

#include <stddef.h>

#include "predtuner/approx.h"
#include "predtuner/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pt_knob_class {
  PT_KNOB_FP32 = 0,   /* FP32Baseline: the exact op */
  PT_KNOB_FP16,       /* FP16Approx */
  PT_KNOB_PERFORATE,  /* PerforateConv2dStride */
  PT_KNOB_SAMPLING,   /* Conv2dSampling */
  PT_KNOB_PROMISE,    /* PromiseSim */
} pt_knob_class;

#define PT_DEVICE_CPU 1u
#define PT_DEVICE_GPU 2u

typedef struct pt_knob {
  char name[64];
  pt_knob_class cls;
  double exp_speedup;    /* 1.0 for FP32Baseline */
  unsigned devices;      /* PT_DEVICE_* bits; 0 = no "devices" given = every device */
  int has_priority;      /* "baseline_priority" given */
  int baseline_priority;
  /* class parameters */
  pt_perf_dir perf_dir; int stride, offset;  /* PerforateConv2dStride ("direction_is_row" in files) */
  int skip_every, skip_offset;               /* Conv2dSampling */
  double interp_rate;                        /* Conv2dSampling */
  int use_fp16;                              /* PerforateConv2dStride, Conv2dSampling */
  int noise_level;                           /* PromiseSim, 0..8 */
} pt_knob;

/* PyTorch-side class name: "FP32Baseline", "PerforateConv2dStride", ... */
const char *pt_knob_class_name(pt_knob_class c);
/* Whether knob k can be applied to an op of type t (docs/design.md, "Knobs"). */
int pt_knob_applies(const pt_knob *k, pt_op_type t);
/* How the executor runs an op under knob k. */
pt_op_exec pt_knob_exec(const pt_knob *k);

typedef struct pt_knob_set pt_knob_set;

/* The 56 knobs of PredTuner's default file. Knob files are read by pt_knobs_load (io.h). */
pt_status pt_knobs_default(pt_knob_set **out);
void pt_knobs_free(pt_knob_set *ks);
int pt_knobs_count(const pt_knob_set *ks);
const pt_knob *pt_knobs_at(const pt_knob_set *ks, int i);
/* Index of the knob named name, or -1. */
int pt_knobs_find(const pt_knob_set *ks, const char *name);

/* Target devices for filtering knobs: PT_DEVICE_CPU, PT_DEVICE_GPU, or 0 for "any" (no filter).
 * Parses "cpu", "gpu", "any"; returns -1 for anything else. */
int pt_device_parse(const char *s);
const char *pt_device_name(unsigned device);

/* The search space of one network: per op, the knobs that apply to it and exist on the target
 * device, plus the baseline (the highest baseline_priority among those knobs; a built-in exact knob
 * "__baseline__" when none has one), which every op's list contains. */
typedef struct pt_space pt_space;

pt_status pt_space_build(const pt_graph *g, const pt_knob_set *ks, unsigned target_device, pt_space **out);
void pt_space_free(pt_space *s);
const pt_knob *pt_space_baseline(const pt_space *s);
unsigned pt_space_target(const pt_space *s);
int pt_space_num_ops(const pt_space *s);
/* Number of knobs for op, and the j-th of them (the baseline comes first). */
int pt_space_op_count(const pt_space *s, int op);
const pt_knob *pt_space_op_knob(const pt_space *s, int op, int j);
/* Distinct knobs used anywhere in the space. */
int pt_space_num_knobs(const pt_space *s);

/* Turns (op, knob) pairs into per-op executor settings (ops_out has pt_graph_num_ops entries and
 * knob_out, when not NULL, the chosen knob per op). Ops not named get the space's baseline. Unknown
 * op, unknown knob, a knob that does not apply to the op, or an op named twice is an error naming
 * them. Applicability is by op type only: the target device limits the search, not what can run. */
pt_status pt_config_resolve(const pt_space *s, const pt_knob_set *ks, int n, const char *const *ops,
                            const char *const *knobs, pt_op_exec *ops_out, const pt_knob **knob_out);

#ifdef __cplusplus
}
#endif
#endif
