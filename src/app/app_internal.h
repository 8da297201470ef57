/* The app behind the opaque pt_app: its ops, each op's knob list (position 0 = baseline), and the
 * operations a kind of app provides. Models and the tuner index per-(op, position) tables by
 * "entries": entry(op, pos) = entry_off[op] + pos. */
#ifndef PT_APP_INTERNAL_H
#define PT_APP_INTERNAL_H

#include "predtuner/app.h"
#include "predtuner/log.h"
#include "predtuner/measure.h"

typedef struct pt__app_vt {
  /* Empirical QoS and cost of n configs (NULL with n == 1: the exact network); cost NULL: QoS only
   * (the DNN app then shares the work of configs' common prefixes without timing them). */
  pt_status (*measure)(pt_app *app, int n, const uint16_t *cfgs, int test, double *qos, double *cost);
  /* measure() on the tune set with early stopping (pt_measure_many_stop's contract: a stopped config
   * gets stopped[k] = 1 and its bound as QoS). NULL: the app cannot stop a config part way. */
  pt_status (*measure_stop)(pt_app *app, int n, const uint16_t *cfgs, const pt_stop_rule *stop, double *qos,
                            double *cost, uint8_t *stopped);
  /* P1: the raw tune-set outputs (out_rows x out_cols each, into out[k]) of n one-op changes of the
   * exact network: op[k] at position pos[k], every other op at position 0 (op[k] < 0: the exact
   * network itself). NULL when the app has no output tensor. The DNN app runs them together so that
   * each costs its op and the ops after it. prog (or NULL) is advanced from done by the images run
   * per change (n x out_rows in all). */
  pt_status (*outputs)(pt_app *app, int n, const int *op, const int *pos, float *const *out, pt_progress *prog,
                       int64_t done);
  /* Measured speedups: the wall time of one run of cfg (NULL: the exact network) over the app's
   * timing images (*images of them: the DNN app's first batch of the tune set, the piped binary's
   * whole tune set). NULL when the app's costs are not times (generic apps). */
  pt_status (*time)(pt_app *app, const uint16_t *cfg, double *seconds, int64_t *images);
  /* P1: the QoS of an output tensor (out_rows x out_cols) against the tune labels. */
  double (*output_qos)(const pt_app *app, const float *out);
  /* cost_profiled: the per-op seconds of the knobs named by entries knob_entry[0 .. n-1], each
   * timed with that knob on every op that has it, into entry_seconds (every entry of those knobs;
   * others untouched). prog (or NULL) is advanced from done by the entries set. */
  pt_status (*profile)(pt_app *app, int n, const int *knob_entry, double *entry_seconds, pt_progress *prog,
                       int64_t done);
  void (*destroy)(pt_app *app);
} pt__app_vt;

/* What a stored result can depend on (docs/design.md, "Fingerprints"); a part the app does not have
 * is 0. Models and the journal store the parts they depend on and refuse to be used with others. */
typedef enum pt__fp_part {
  PT__FP_GRAPH,   /* the network's structure (piped: the metadata's ops and costs) */
  PT__FP_WEIGHTS, /* the weights' values (piped: the binary's bytes) */
  PT__FP_TUNE,    /* the tune set's images and labels as used (offset and count applied) */
  PT__FP_TEST,    /* the test set's */
  PT__FP_KNOBS,   /* each op's knob list with every knob's parameters and speedup */
  PT__FP_DEVICE,  /* the target device */
  PT__FP_BACKEND, /* the backend kind (cpu, cuda) */
  PT__FP_MEASURE, /* how QoS is measured: batch size, PromiseSim ranges and seed */
  PT__FP_N
} pt__fp_part;
#define PT__FP(p) (1u << (p))
#define PT__FP_MODEL (PT__FP(PT__FP_GRAPH) | PT__FP(PT__FP_WEIGHTS) | PT__FP(PT__FP_TUNE) | PT__FP(PT__FP_KNOBS) | PT__FP(PT__FP_MEASURE))
#define PT__FP_ALL ((1u << PT__FP_N) - 1)

struct pt_app {
  const pt__app_vt *vt;
  void *ctx;
  char name[128];
  char desc[1024];
  char target[8];        /* target device of the knob set ("cpu", "gpu", "any"; "" for generic apps) */
  char knobs_source[512];/* knob file or "built-in" */
  int n_ops;
  char **op_names;       /* (n_ops) */
  double *op_cost;       /* (n_ops) baseline cost for cost_linear */
  int *n_knobs;          /* (n_ops) */
  int *entry_off;        /* (n_ops + 1) */
  char **entry_knob;     /* (n_entries) knob names */
  double *entry_speedup; /* (n_entries) expected speedups */
  const char **entry_group; /* (n_entries) the knob's group for the sensitivity heatmap ("fp16",
                             * "perforate rows", ...; static strings), NULL: the knob's own name */
  int n_entries;
  int out_rows, out_cols;/* P1 output shape, 0 when the app has none */
  const int32_t *out_labels; /* (out_rows) tune labels: P1's QoS is top-1 accuracy over them */
  struct pt_backend *be;     /* the backend the app runs on (NULL for generic apps): P1 may run there */
  int qos_percent;           /* QoS is an accuracy in [0, 100] (DNN and piped apps) */
  uint64_t fp[PT__FP_N];     /* fingerprint parts, 0 where the app has none */
};

/* The parts in mask as "graph=1a2b...,weights=..." (parts the app lacks are left out). */
void pt__fp_format(const pt_app *app, unsigned mask, char *buf, size_t n);
/* Checks a stored fingerprint (NULL or "": none, e.g. a file written by PredTuner) of what file was
 * made from against this app's parts in mask: none is a warning; a part that differs is PT_ESTALE
 * naming the parts and the way out (a fresh output folder, or --force-reinit / --overwrite). */
pt_status pt__fp_check(const pt_app *app, unsigned mask, const char *stored, const char *file, const char *way_out);
/* The same over parts of something other than an app (fp: PT__FP_N parts, 0 where none). */
void pt__fp_format_parts(const uint64_t *fp, unsigned mask, char *buf, size_t n);
pt_status pt__fp_check_parts(const uint64_t *fp, unsigned mask, const char *stored, const char *file,
                             const char *way_out);
/* The knobs part of an app whose knobs are names and speedups (generic, piped): op names, knob
 * names and speedups in order. */
uint64_t pt__fp_space(const pt_app *app);
/* The graph part of an app whose ops are names and costs. */
uint64_t pt__fp_ops(const pt_app *app);
/* A file's bytes (0 when it cannot be read), a string's (0 for NULL or ""). */
uint64_t pt__fp_file(const char *path);
uint64_t pt__fp_text(const char *s);

/* pt_app_measure on the tune set with early stopping where the app can stop a config part way
 * (else measured in full: stopped all 0). */
pt_status pt__app_measure_stop(pt_app *app, int n, const uint16_t *cfgs, const pt_stop_rule *stop, double *qos,
                               double *cost, uint8_t *stopped);

/* The DNN app's executor (for its statistics), NULL for other apps. */
pt_exec *pt__dnn_app_exec(pt_app *app);

/* Allocates the op tables of an app with n_ops ops and n_entries (op, knob) pairs in total. */
pt_status pt__app_alloc(pt_app *app, int n_ops, int n_entries);
/* Frees the tables (not the app). */
void pt__app_free_tables(pt_app *app);

#endif
