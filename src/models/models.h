/* QoS and cost models (docs/design.md, "QoS, cost and models"). All tables are per entry ((op, knob position) pairs, see
 * app_internal.h). Model files live in a storage folder, are reused when present (and made from
 * this app's inputs: their fingerprint, docs/design.md "Fingerprints"), extended when the app has
 * entries they lack, and written atomically as initialisation goes. reinit: build afresh, ignoring
 * (and then replacing) a stored file. */
#define PT__MODELS_WAY_OUT "use a fresh --output (or --model-storage) folder, or --force-reinit to rebuild it"
/* What the cost profile depends on (the QoS models: PT__FP_MODEL). */
#define PT__FP_COST (PT__FP(PT__FP_GRAPH) | PT__FP(PT__FP_KNOBS) | PT__FP(PT__FP_DEVICE) | PT__FP(PT__FP_BACKEND) | PT__FP(PT__FP_MEASURE))
#ifndef PT_MODELS_H
#define PT_MODELS_H

#include <stdio.h>

#include "app/app_internal.h"


/* cost_linear: FLOPs(op) / exp_speedup(knob). */
pt_status pt__cost_linear(const pt_app *app, double *entry_cost);
/* cost_profiled: measured seconds per op and knob on the app's backend (<dir>/cost_profiled.json);
 * meas (or NULL: this process) times the knobs when it can (pt_measurer.profile). */
pt_status pt__cost_profiled(pt_app *app, const char *dir, int reinit, FILE *progress, const pt_measurer *meas,
                            double *entry_cost);

/* qos_p2: q0 + sum over ops of (q[op][knob] - q0); <dir>/p2.json in PredTuner's layout. */
typedef struct pt__p2 {
  double q0;
  double *q; /* (n_entries) */
} pt__p2;
/* meas (or NULL: this process) measures the entries' QoS (pt_measurer.measure). */
pt_status pt__p2_init(pt_app *app, const char *dir, int reinit, FILE *progress, const pt_measurer *meas, pt__p2 *m);
/* Reads a p2.json into m (q entries the file lacks are NaN); *missing counts them. */
pt_status pt__p2_load(const char *path, const pt_app *app, pt__p2 *m, int *missing);
void pt__p2_predict(const pt_app *app, const pt__p2 *m, int n, const uint16_t *cfgs, double *qos);
void pt__p2_free(pt__p2 *m);

/* qos_p1: accuracy of T0 + sum over ops of D[op][knob]; <dir>/p1.safetensors. Deltas are stored in
 * blocks of PT__P1_ROWS rows, every entry's block side by side, so a batch of configs walks each
 * block of every delta while it is in cache; inside a block, column-major (cols, PT__P1_ROWS), so the
 * argmax runs over the block's rows at once in vector lanes. All-zero deltas (exact knobs) are not
 * stored. */
#define PT__P1_ROWS 16
typedef struct pt__p1 {
  int rows, cols, n_blocks, n_slots;
  float *base;  /* (rows, cols) */
  float *base_t;/* (n_blocks, cols, PT__P1_ROWS): base blocked like the deltas, rows past the end zero */
  int *slot;    /* (n_entries) slot of the entry's delta, -1 when it is all zeros */
  float *delta; /* (n_blocks, n_slots, cols, PT__P1_ROWS), rows past the end zero */
  const int32_t *labels;
  struct pt_backend *be; /* where dev lives, when the backend predicts P1 (pt__p1_attach) */
  void *dev;
} pt__p1;
/* Moves prediction onto a backend that offers it (the CUDA backend): one upload of the model in
 * sample-major layout; later predictions run there. PT_EUNSUPPORTED when the backend has none;
 * the model keeps predicting on the CPU after any failure. */
pt_status pt__p1_attach(pt__p1 *m, struct pt_backend *be);
/* meas (or NULL: this process) measures the entries' outputs when it can (pt_measurer.outputs). */
pt_status pt__p1_init(pt_app *app, const char *dir, int reinit, FILE *progress, const pt_measurer *meas, pt__p1 *m);
/* PT_ENOMEM when the CPU's scratch cannot be had (a device failure falls back to the CPU). */
pt_status pt__p1_predict(const pt_app *app, const pt__p1 *m, int n, const uint16_t *cfgs, double *qos);
void pt__p1_free(pt__p1 *m);
/* Builds a P1 model from given tensors (base (rows, cols); deltas per entry, NULL = zeros): for
 * benchmarks and tests. */
pt_status pt__p1_from_tensors(const pt_app *app, int rows, int cols, const float *base, const float *const *deltas,
                              const int32_t *labels, pt__p1 *m);

/* "<dir>/<file>" into buf; creates dir (and parents) when mk. */
pt_status pt__model_path(const char *dir, const char *file, int mk, char *buf, size_t n);

#endif
