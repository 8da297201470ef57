/* The approximation vocabulary every layer shares: how one op is computed (docs/design.md, "Knobs").
 * Knobs map to a pt_op_exec, the executor runs an op by it, and a backend's convolution descriptor
 * carries the same perforation direction. */
#ifndef PREDTUNER_APPROX_H
#define PREDTUNER_APPROX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pt_approx_kind {
  PT_APPROX_NONE = 0,  /* exact (or FP16Approx when fp16 is set) */
  PT_APPROX_PERFORATE, /* PerforateConv2dStride (convolutions) */
  PT_APPROX_SAMPLING,  /* Conv2dSampling (convolutions) */
  PT_APPROX_PROMISE,   /* PromiseSim (convolutions and linear layers) */
} pt_approx_kind;

/* The one encoding of a perforation direction: which axis of the output is perforated. Knob files
 * say it as PredTuner does ("direction_is_row": true = rows). */
typedef enum pt_perf_dir {
  PT_PERF_NONE = 0, /* no perforation */
  PT_PERF_ROWS = 1, /* rows (H) are skipped */
  PT_PERF_COLS = 2, /* columns (W) are skipped */
} pt_perf_dir;

/* How one op is computed. Zero-initialised means exact fp32. Compared and sorted as bytes by
 * pt_exec_run_many, so it has no padding. */
typedef struct pt_op_exec {
  uint8_t kind;         /* pt_approx_kind */
  uint8_t fp16;         /* half precision: FP16Approx, or the use_fp16 of perforation/sampling */
  uint8_t perf_dir;     /* perforation: pt_perf_dir (PT_PERF_ROWS or PT_PERF_COLS) */
  uint8_t perf_stride;  /* perforation: >= 2 */
  uint8_t perf_offset;  /* perforation: < stride */
  uint8_t samp_every;   /* sampling: skip_every >= 2 */
  uint8_t samp_offset;  /* sampling: skip_offset */
  uint8_t promise_level;/* PromiseSim noise level 0..8 */
  float samp_interp;    /* sampling: interp_rate */
} pt_op_exec;

#ifdef __cplusplus
}
#endif
#endif
