/* The app behind the opaque pt_app: its ops, each op's knob list (position 0 = baseline), and the
 * operations a kind of app provides. Models and the tuner index per-(op, position) tables by
 * "entries": entry(op, pos) = entry_off[op] + pos. */
#ifndef PT_APP_INTERNAL_H
#define PT_APP_INTERNAL_H

#include "predtuner/app.h"
#include "predtuner/log.h"

typedef struct pt__app_vt {
  /* Empirical QoS and cost of n configs (NULL with n == 1: the exact network); cost NULL: QoS only
   * (the DNN app then shares the work of configs' common prefixes without timing them). */
  pt_status (*measure)(pt_app *app, int n, const uint16_t *cfgs, int test, double *qos, double *cost);
  /* Models measure one (op, knob) change over the exact network (op < 0: the exact network itself):
   * its QoS on the tune set (NULL: measure() on the config with only op off position 0) and, for
   * P1, its raw output (out_rows x out_cols; NULL when the app has no output tensor). */
  pt_status (*measure_single)(pt_app *app, int op, int pos, double *qos);
  pt_status (*output)(pt_app *app, int op, int pos, float *out);
  /* P1: the QoS of an output tensor (out_rows x out_cols) against the tune labels. */
  double (*output_qos)(const pt_app *app, const float *out);
  /* cost_profiled: seconds per op for every entry. */
  pt_status (*profile)(pt_app *app, double *entry_seconds, pt_progress *prog);
  void (*destroy)(pt_app *app);
} pt__app_vt;

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
  int n_entries;
  int out_rows, out_cols;/* P1 output shape, 0 when the app has none */
  const int32_t *out_labels; /* (out_rows) tune labels: P1's QoS is top-1 accuracy over them */
  struct pt_backend *be;     /* the backend the app runs on (NULL for generic apps): P1 may run there */
};

/* Allocates the op tables of an app with n_ops ops and n_entries (op, knob) pairs in total. */
pt_status pt__app_alloc(pt_app *app, int n_ops, int n_entries);
/* Frees the tables (not the app). */
void pt__app_free_tables(pt_app *app);

#endif
