/* The QoS and cost models on hand-made tables: qos_p2 (sums, PredTuner's p2.json, garbage),
 * qos_p1 (accuracy of the summed tensors; on the CPU and through the device layout against its plain
 * definition), cost_linear. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_ext.h"
#include "models/models.h"
#include "predtuner/predtuner.h"

#include "additive_app.h"

Test(models, p2_prediction_is_the_hand_sum) {
  pt_app *app = make_app();
  pt__p2 m;
  cr_assert_eq(pt__p2_init(app, NULL, 0, NULL, NULL, &m), PT_OK, "%s", pt_last_error());
  cr_assert_float_eq(m.q0, 100.0, 1e-12);
  uint16_t c[GOPS] = {1, 2, 0, 1, 2};
  double q;
  pt__p2_predict(app, &m, 1, c, &q);
  cr_assert_float_eq(q, 100 - 0.3 - 0.9 - 0.05 - 3.0, 1e-9);
  /* a non-additive table: q0 + sum(q - q0) exactly */
  m.q0 = 90;
  for (int e = 0; e < app->n_entries; e++) m.q[e] = 90 - e;
  pt__p2_predict(app, &m, 1, c, &q);
  double want = 90;
  for (int op = 0; op < GOPS; op++) want += (90 - (app->entry_off[op] + c[op])) - 90;
  cr_assert_float_eq(q, want, 1e-9);
  pt__p2_free(&m);
  pt_app_free(app);
}

Test(models, p2_predtuner_file_loads_and_garbage_fails) {
  pt_app *app = make_app();
  char *d = tmpdir(), path[512];
  snprintf(path, sizeof path, "%s/p2.json", d);
  /* PredTuner's DataFrame.to_dict layout: {knob: {op: qos or null}}, extra knobs ignored */
  FILE *f = fopen(path, "w");
  fprintf(f, "{\"app_name\": \"TestTorchApp\", \"df\": {\"exact\": {\"a\": 95.5, \"b\": 95.5, \"c\": 95.5, \"d\": 95.5, "
             "\"e\": 95.5}, \"half\": {\"a\": 95.0, \"b\": null, \"c\": 94.0, \"d\": 95.25, \"e\": 93.5}, \"12\": {\"a\": "
             "91.0, \"b\": null, \"c\": null, \"d\": null, \"e\": null}}, \"bqos\": 95.5}");
  fclose(f);
  pt__p2 m = {0};
  int missing = -1;
  cr_assert_eq(pt__p2_load(path, app, &m, &missing), PT_OK, "%s", pt_last_error());
  cr_assert_float_eq(m.q0, 95.5, 1e-12);
  cr_assert_float_eq(m.q[app->entry_off[2] + 1], 94.0, 1e-12);
  cr_assert_float_eq(m.q[app->entry_off[3] + 1], 95.25, 1e-12);
  cr_assert(isnan(m.q[app->entry_off[1] + 1]), "null stays unknown");
  cr_assert_eq(missing, 1 + GOPS, "b/half and every quarter are missing");
  /* init completes the table by measuring only what is missing, and saves it */
  pt__p2_free(&m);
  calls = 0;
  cr_assert_eq(pt__p2_init(app, d, 0, NULL, NULL, &m), PT_OK, "%s", pt_last_error());
  cr_assert_eq(calls, 1 + GOPS);
  cr_assert_float_eq(m.q[app->entry_off[1] + 1], 100 - 0.1, 1e-9);
  cr_assert_float_eq(m.q[app->entry_off[2] + 1], 94.0, 1e-12, "kept from the file");
  pt__p2_free(&m);
  calls = 0;
  cr_assert_eq(pt__p2_init(app, d, 0, NULL, NULL, &m), PT_OK);
  cr_assert_eq(calls, 0, "a complete file is reused");
  pt__p2_free(&m);

  const char *bad[] = {"{\"df\": {}, \"bqos\": \"x\"}", "{\"df\": {\"half\": {\"zz\": 1}}, \"bqos\": 1}",
                       "{\"df\": {\"half\": {\"a\": \"high\"}}, \"bqos\": 1}", "[1, 2", "{\"bqos\": 3}"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    f = fopen(path, "w");
    fputs(bad[i], f);
    fclose(f);
    cr_assert_neq(pt__p2_load(path, app, &m, &missing), PT_OK, "accepted %s", bad[i]);
    cr_assert(strstr(pt_last_error(), "p2.json"), "error names the file: %s", pt_last_error());
    pt__p2_free(&m);
  }
  unlink(path);
  rmdir(d);
  free(d);
  pt_app_free(app);
}

Test(models, p1_prediction_is_accuracy_of_the_summed_tensors) {
  pt_app *app = make_app();
  /* 3 samples x 2 classes; labels 0, 1, 0 */
  const int32_t labels[3] = {0, 1, 0};
  const float base[6] = {1, 0, 0, 1, 1, 0}; /* all correct */
  float d_a1[6] = {-2, 0, 0, 0, 0, 0};      /* a=half flips sample 0 */
  float d_b2[6] = {2, 0, 0, 0, 0, 0};       /* b=quarter pushes sample 0 back */
  float d_c1[6] = {0, 0, 0, 0, -0.5f, 1};   /* c=half flips sample 2 */
  float zero[6] = {0};
  const float *deltas[64] = {0};
  deltas[app->entry_off[0] + 1] = d_a1;
  deltas[app->entry_off[1] + 2] = d_b2;
  deltas[app->entry_off[2] + 1] = d_c1;
  deltas[app->entry_off[3] + 1] = zero;
  pt__p1 m;
  cr_assert_eq(pt__p1_from_tensors(app, 3, 2, base, deltas, labels, &m), PT_OK);
  cr_assert_eq(m.n_slots, 3, "all-zero deltas get no storage");
  cr_assert_eq(m.slot[app->entry_off[3] + 1], -1);
  uint16_t cfgs[5][GOPS] = {{0}, {1, 0, 0, 0, 0}, {1, 2, 0, 0, 0}, {1, 0, 1, 1, 0}, {0, 2, 1, 0, 0}};
  double q[5];
  cr_assert_eq(pt__p1_predict(app, &m, 5, &cfgs[0][0], q), PT_OK);
  cr_assert_float_eq(q[0], 100.0, 1e-9);
  cr_assert_float_eq(q[1], 200.0 / 3, 1e-9);
  cr_assert_float_eq(q[2], 100.0, 1e-9);
  cr_assert_float_eq(q[3], 100.0 / 3, 1e-9);
  cr_assert_float_eq(q[4], 200.0 / 3, 1e-9);
  pt__p1_free(&m);
  pt_app_free(app);
}

Test(models, cost_linear_is_flops_over_speedup) {
  pt_app *app = make_app();
  double c[64];
  cr_assert_eq(pt__cost_linear(app, c), PT_OK);
  cr_assert_float_eq(c[app->entry_off[2] + 2], 30.0 / 4, 1e-12);
  cr_assert_float_eq(c[app->entry_off[4] + 1], 50.0 / 2, 1e-12);
  cr_assert_eq(pt__cost_profiled(app, NULL, 0, NULL, NULL, c), PT_EUNSUPPORTED, "a generic app cannot be profiled");
  pt_app_free(app);
}

/* ---- P1 on the CPU against a plain evaluation of its definition ---- */

static uint64_t p1_rng = 12345;
static float p1_rand(void) {
  p1_rng = p1_rng * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((p1_rng >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/* A device P1 predictor played in plain C through the backend interface, as the interface defines
 * it: deltas sample-major (rows, n_slots, cols), each row's base plus its config's deltas in the
 * order listed. pt__p1_attach converts the CPU's blocked layout for it exactly as for the GPU, so
 * this checks that conversion and the device path of pt__p1_predict without a GPU. */
typedef struct ref_p1 {
  int rows, cols, n_slots;
  float *base, *delta;
  int32_t *labels;
} ref_p1;
static int ref_p1_calls;

static pt_status ref_p1_upload(void *ctx, int rows, int cols, int n_slots, const float *base, const float *delta,
                               const int32_t *labels, void **model) {
  (void)ctx;
  ref_p1 *m = calloc(1, sizeof *m);
  size_t nb = (size_t)rows * cols, nd = nb * (size_t)n_slots;
  m->rows = rows, m->cols = cols, m->n_slots = n_slots;
  m->base = malloc(nb * sizeof *m->base);
  m->delta = malloc((nd ? nd : 1) * sizeof *m->delta);
  m->labels = malloc((size_t)rows * sizeof *m->labels);
  memcpy(m->base, base, nb * sizeof *m->base);
  memcpy(m->delta, delta, nd * sizeof *m->delta);
  memcpy(m->labels, labels, (size_t)rows * sizeof *m->labels);
  *model = m;
  return PT_OK;
}
static pt_status ref_p1_predict(void *ctx, void *model, int n, int max_k, const int *slots, const int *ns,
                                int64_t *correct) {
  (void)ctx;
  const ref_p1 *m = model;
  float *v = malloc((size_t)m->cols * sizeof *v);
  for (int k = 0; k < n; k++) {
    correct[k] = 0;
    for (int r = 0; r < m->rows; r++) {
      for (int j = 0; j < m->cols; j++) v[j] = m->base[(size_t)r * m->cols + j];
      for (int i = 0; i < ns[k]; i++) {
        const float *dl = m->delta + ((size_t)r * m->n_slots + (size_t)slots[(size_t)k * max_k + i]) * m->cols;
        for (int j = 0; j < m->cols; j++) v[j] += dl[j];
      }
      int best = 0, finite = isfinite(v[0]);
      for (int j = 1; j < m->cols; j++) {
        if (v[j] > v[best]) best = j;
        finite &= isfinite(v[j]) != 0;
      }
      correct[k] += finite && best == m->labels[r]; /* a row holding a NaN is wrong */
    }
  }
  free(v);
  ref_p1_calls++;
  return PT_OK;
}
static void ref_p1_free(void *ctx, void *model) {
  (void)ctx;
  ref_p1 *m = model;
  free(m->base), free(m->delta), free(m->labels), free(m);
}
static pt_backend_proc ref_p1_get_proc(void *ctx, const char *name) {
  (void)ctx;
  if (!strcmp(name, PT_BACKEND_PROC_P1_UPLOAD)) return (pt_backend_proc)ref_p1_upload;
  if (!strcmp(name, PT_BACKEND_PROC_P1_PREDICT)) return (pt_backend_proc)ref_p1_predict;
  if (!strcmp(name, PT_BACKEND_PROC_P1_FREE)) return (pt_backend_proc)ref_p1_free;
  return NULL;
}
static const pt_backend_iface ref_p1_iface = {.name = "ref-p1", .get_proc = ref_p1_get_proc};

/* 5 ops with 2..6 knobs (some deltas all zero, so they get no slot), rows not a multiple of the
 * block, NaNs in the baseline; every config's prediction equals top-1 accuracy of base + its deltas
 * summed in op order (first maximum wins, a NaN loses to any number), on the CPU and through the
 * device interface (ref_p1 above). */
static void p1_matches_naive(int cols) {
  pt_app app;
  memset(&app, 0, sizeof app);
  const int nops = 5, nk[5] = {2, 6, 3, 5, 4}, rows = 1003;
  int total = 0;
  for (int i = 0; i < nops; i++) total += nk[i];
  cr_assert_eq(pt__app_alloc(&app, nops, total), PT_OK);
  for (int i = 0, off = 0; i < nops; i++) app.n_knobs[i] = nk[i], app.entry_off[i] = off, off += nk[i];
  app.entry_off[nops] = total;
  float *base = malloc((size_t)rows * cols * sizeof *base);
  int32_t *labels = malloc(rows * sizeof *labels);
  for (int i = 0; i < rows * cols; i++) base[i] = p1_rand();
  for (int r = 0; r < rows; r += 97) base[r * cols + (r % cols)] = NAN;
  for (int r = 0; r < rows; r++) labels[r] = (int32_t)((uint32_t)(p1_rand() * 1000 + 1000) % (uint32_t)cols);
  float **d = calloc((size_t)total, sizeof *d);
  for (int op = 0; op < nops; op++)
    for (int p = 1; p < nk[op]; p++) {
      float *x = calloc((size_t)rows * cols, sizeof *x); /* knob 2 of op 1 changes nothing: no slot */
      if (!(op == 1 && p == 2))
        for (int i = 0; i < rows * cols; i++) x[i] = 0.5f * p1_rand();
      d[app.entry_off[op] + p] = x;
    }
  pt__p1 m;
  cr_assert_eq(pt__p1_from_tensors(&app, rows, cols, base, (const float *const *)d, labels, &m), PT_OK);
  cr_assert_eq(m.slot[app.entry_off[1] + 2], -1);
  const int n = 300;
  uint16_t *cfg = malloc((size_t)n * nops * sizeof *cfg);
  for (int k = 0; k < n; k++)
    for (int op = 0; op < nops; op++)
      cfg[k * nops + op] = (uint16_t)(k == 0 ? 0 : (uint32_t)(p1_rand() * 1000 + 1000) % (uint32_t)nk[op]);
  double *q = malloc(n * sizeof *q);
  cr_assert_eq(pt__p1_predict(&app, &m, n, cfg, q), PT_OK);
  /* the same model attached to the plain-C device: the same predictions, computed there */
  pt__p1 md;
  cr_assert_eq(pt__p1_from_tensors(&app, rows, cols, base, (const float *const *)d, labels, &md), PT_OK);
  pt_backend ref = {&ref_p1_iface, NULL};
  cr_assert_eq(pt__p1_attach(&md, &ref), PT_OK, "%s", pt_last_error());
  double *qd = malloc(n * sizeof *qd);
  int calls = ref_p1_calls;
  cr_assert_eq(pt__p1_predict(&app, &md, n, cfg, qd), PT_OK);
  cr_assert_eq(ref_p1_calls, calls + 1, "the prediction did not run on the device");
  for (int k = 0; k < n; k++)
    cr_assert_eq(qd[k], q[k], "%d classes, config %d: CPU %.6f, through the device layout %.6f", cols, k, q[k], qd[k]);
  free(qd);
  pt__p1_free(&md);
  float *v = malloc((size_t)cols * sizeof *v);
  int distinct = 0;
  for (int k = 0; k < n; k++) {
    int correct = 0;
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) v[j] = base[r * cols + j];
      for (int op = 0; op < nops; op++) {
        const float *x = d[app.entry_off[op] + cfg[k * nops + op]];
        if (x && m.slot[app.entry_off[op] + cfg[k * nops + op]] >= 0)
          for (int j = 0; j < cols; j++) v[j] += x[r * cols + j];
      }
      int best = 0, finite = isfinite(v[0]);
      for (int j = 1; j < cols; j++) {
        if (v[j] > v[best]) best = j;
        finite &= isfinite(v[j]) != 0;
      }
      correct += finite && best == labels[r];
    }
    cr_assert_eq(q[k], 100.0 * correct / rows, "%d classes, config %d: P1 %.6f, plain %.6f", cols, k, q[k],
                 100.0 * correct / rows);
    distinct += q[k] != q[0];
  }
  cr_assert_gt(distinct, n / 2);
  pt__p1_free(&m);
  for (int e = 0; e < total; e++) free(d[e]);
  free(d), free(base), free(labels), free(cfg), free(q), free(v);
  pt__app_free_tables(&app);
}

Test(p1, cpu_and_device_layout_predictions_match_the_definition) {
  p1_matches_naive(10);
  p1_matches_naive(3);
  p1_matches_naive(37);
}
