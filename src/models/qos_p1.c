/* qos_p1 (ApproxTuner's P1): the output of the exact network T0 plus, per op, the change D that
 * op's knob makes alone; the predicted QoS is the top-1 accuracy of T0 + sum of the Ds. Stored as
 * p1.safetensors: "baseline" (rows, cols) and "delta/<op>/<knob>" (rows, cols). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend_ext.h"
#include "core/alloc.h"
#include "core/error.h"
#include "models/models.h"
#include "predtuner/io.h"

void pt__p1_free(pt__p1 *m) {
  if (m->dev) pt__backend_p1_free(m->be, m->dev);
  free(m->base);
  free(m->base_t);
  free(m->slot);
  free(m->delta);
  memset(m, 0, sizeof *m);
}

/* Lays per-entry deltas out in row blocks; all-zero ones get no slot. */
static pt_status build_blocked(const pt_app *app, int rows, int cols, const float *base, const float *const *d,
                               const int32_t *labels, pt__p1 *m) {
  memset(m, 0, sizeof *m);
  m->rows = rows;
  m->cols = cols;
  m->labels = labels;
  m->n_blocks = (rows + PT__P1_ROWS - 1) / PT__P1_ROWS;
  size_t blk = (size_t)PT__P1_ROWS * (size_t)cols;
  m->base = pt__malloc((size_t)rows * (size_t)cols * sizeof *m->base);
  m->base_t = pt__calloc((size_t)m->n_blocks * blk + 1, sizeof *m->base_t);
  m->slot = pt__malloc((size_t)app->n_entries * sizeof *m->slot);
  if (!m->base || !m->base_t || !m->slot) return pt__error(PT_ENOMEM, "qos_p1: out of memory for the blocked model");
  memcpy(m->base, base, (size_t)rows * (size_t)cols * sizeof *base);
  for (int r = 0; r < rows; r++)
    for (int j = 0; j < cols; j++)
      m->base_t[(size_t)(r / PT__P1_ROWS) * blk + (size_t)j * PT__P1_ROWS + (size_t)(r % PT__P1_ROWS)] =
          base[(size_t)r * (size_t)cols + (size_t)j];
  size_t per = (size_t)rows * (size_t)cols;
  for (int e = 0; e < app->n_entries; e++) {
    int nz = 0;
    for (size_t i = 0; d[e] && i < per && !nz; i++) nz = d[e][i] != 0.0f;
    m->slot[e] = nz ? m->n_slots++ : -1;
  }
  m->delta = pt__calloc((size_t)m->n_blocks * (size_t)(m->n_slots ? m->n_slots : 1) * blk, sizeof *m->delta);
  if (!m->delta) return pt__error(PT_ENOMEM, "qos_p1: out of memory for %d blocked deltas", m->n_slots);
  for (int e = 0; e < app->n_entries; e++) {
    if (m->slot[e] < 0) continue;
    for (int r = 0; r < rows; r++) {
      float *dst = m->delta + ((size_t)(r / PT__P1_ROWS) * (size_t)m->n_slots + (size_t)m->slot[e]) * blk +
                   (size_t)(r % PT__P1_ROWS);
      for (int j = 0; j < cols; j++) dst[(size_t)j * PT__P1_ROWS] = d[e][(size_t)r * (size_t)cols + (size_t)j];
    }
  }
  return PT_OK;
}

pt_status pt__p1_from_tensors(const pt_app *app, int rows, int cols, const float *base, const float *const *deltas,
                              const int32_t *labels, pt__p1 *m) {
  pt_status s = build_blocked(app, rows, cols, base, deltas, labels, m);
  if (s != PT_OK) pt__p1_free(m);
  return s;
}

static void delta_name(const pt_app *app, int e, int op, char *buf, size_t n) {
  snprintf(buf, n, "delta/%s/%s", app->op_names[op], app->entry_knob[e]);
}

static pt_status save_p1(const char *path, const pt_app *app, int rows, int cols, float *base, float **d) {
  pt_st_writer *w = NULL;
  PT__TRY(pt_st_writer_new(&w));
  pt_tensor t = {PT_F32, 2, {rows, cols}, base, 0};
  pt_status s = pt_st_writer_add(w, "baseline", &t);
  if (s == PT_OK) s = pt_st_writer_metadata(w, "app_name", app->name);
  char fp[512];
  pt__fp_format(app, PT__FP_MODEL, fp, sizeof fp);
  if (s == PT_OK) s = pt_st_writer_metadata(w, "fingerprint", fp);
  char name[512];
  for (int op = 0; s == PT_OK && op < app->n_ops; op++)
    for (int p = 0; s == PT_OK && p < app->n_knobs[op]; p++) {
      int e = app->entry_off[op] + p;
      if (!d[e]) continue;
      delta_name(app, e, op, name, sizeof name);
      t.data = d[e];
      s = pt_st_writer_add(w, name, &t);
    }
  if (s == PT_OK) s = pt_st_writer_save(w, path);
  pt_st_writer_free(w);
  return s;
}

/* Reads what a previous (maybe interrupted) init stored. */
static pt_status load_p1(const char *path, const pt_app *app, int rows, int cols, float *base, float **d, int *have_base) {
  pt_safetensors *st = NULL;
  PT__TRY(pt_st_open(path, &st));
  pt_status s = pt__fp_check(app, PT__FP_MODEL, pt_st_metadata(st, "fingerprint"), path, PT__MODELS_WAY_OUT);
  int64_t shape[PT_MAX_DIMS];
  int bi = pt_st_find(st, "baseline");
  if (s != PT_OK) {
  } else if (bi < 0) s = pt__error(PT_EFORMAT, "%s: no \"baseline\" tensor", path);
  else if (pt_st_shape(st, bi, shape) != 2 || shape[0] != rows || shape[1] != cols)
    s = pt__error(PT_ESHAPE, "%s: baseline is not [%d,%d] (the tune set's outputs): a model of other data? delete it or "
                             "use another --model-storage", path, rows, cols);
  if (s == PT_OK) s = pt_st_read_f32(st, bi, base);
  if (s == PT_OK) *have_base = 1;
  char name[512];
  for (int op = 0; s == PT_OK && op < app->n_ops; op++)
    for (int p = 0; s == PT_OK && p < app->n_knobs[op]; p++) {
      int e = app->entry_off[op] + p;
      delta_name(app, e, op, name, sizeof name);
      int i = pt_st_find(st, name);
      if (i < 0) continue;
      if (pt_st_shape(st, i, shape) != 2 || shape[0] != rows || shape[1] != cols)
        s = pt__error(PT_ESHAPE, "%s: tensor '%s' is not [%d,%d]", path, name, rows, cols);
      else if (!(d[e] = pt__malloc((size_t)rows * (size_t)cols * sizeof(float))))
        s = pt__error(PT_ENOMEM, "%s: out of memory for tensor '%s'", path, name);
      else
        s = pt_st_read_f32(st, i, d[e]);
    }
  pt_st_close(st);
  return s;
}

/* Entries measured together (they share the exact network's work up to their ops). The file is
 * saved between groups once 30 s have passed since the last save, so an interrupted init loses at
 * most that much work plus one group. */
#define P1_GROUP 32

/* The deltas of entries e[0 .. n-1] (output under the entry minus base), measured by meas when it
 * measures outputs, else here; none is kept on failure. */
static pt_status measure_group(pt_app *app, const pt_measurer *meas, int n, const int *e, const float *base, float **d,
                               pt_progress *prog, int64_t done) {
  const size_t per = (size_t)app->out_rows * (size_t)app->out_cols;
  int *op = pt__malloc(2 * (size_t)n * sizeof *op), *pos = op ? op + n : NULL;
  float **out = pt__malloc((size_t)n * sizeof *out);
  pt_status s = op && out ? PT_OK : pt__error(PT_ENOMEM, "qos_p1: out of memory for a group of %d knob choices", n);
  for (int k = 0; k < n && s == PT_OK; k++) {
    for (op[k] = 0; app->entry_off[op[k] + 1] <= e[k]; op[k]++) {}
    pos[k] = e[k] - app->entry_off[op[k]];
    if (!(d[e[k]] = pt__malloc(per * sizeof(float))))
      s = pt__error(PT_ENOMEM, "qos_p1: out of memory for the delta of op '%s' knob '%s'", app->op_names[op[k]],
                    app->entry_knob[e[k]]);
    out[k] = d[e[k]];
  }
  if (s == PT_OK)
    s = meas && meas->outputs ? meas->outputs(meas->ctx, app, n, op, pos, out, prog, done)
                              : app->vt->outputs(app, n, op, pos, out, prog, done);
  for (int k = 0; s == PT_OK && k < n; k++)
    for (size_t i = 0; i < per; i++) d[e[k]][i] -= base[i];
  for (int k = 0; s != PT_OK && k < n; k++) { /* never store a half-made delta */
    free(d[e[k]]);
    d[e[k]] = NULL;
  }
  free(op);
  free(out);
  return s;
}

pt_status pt__p1_init(pt_app *app, const char *dir, int reinit, FILE *progress, const pt_measurer *meas, pt__p1 *m) {
  memset(m, 0, sizeof *m);
  if (!app->vt->outputs || app->out_rows <= 0)
    return pt__error(PT_EUNSUPPORTED, "qos_p1 needs an app with an output tensor (a DNN app); app %s has none", app->name);
  int rows = app->out_rows, cols = app->out_cols;
  size_t per = (size_t)rows * (size_t)cols;
  float *base = pt__malloc(per * sizeof *base);
  float **d = pt__calloc((size_t)app->n_entries, sizeof *d);
  int *todo = pt__malloc((size_t)app->n_entries * sizeof *todo + 1);
  char path[4096] = "";
  int have_base = 0;
  pt_status s = base && d && todo ? PT_OK : pt__error(PT_ENOMEM, "qos_p1: out of memory for the model (%d x %d)", rows, cols);
  if (s == PT_OK && dir) {
    s = pt__model_path(dir, "p1.safetensors", 1, path, sizeof path);
    if (s == PT_OK && !reinit && access(path, F_OK) == 0) s = load_p1(path, app, rows, cols, base, d, &have_base);
  }
  const int exact_op = -1, exact_pos = 0;
  if (s == PT_OK && !have_base) s = app->vt->outputs(app, 1, &exact_op, &exact_pos, &base, NULL, 0);
  int missing = 0;
  for (int e = 0; s == PT_OK && e < app->n_entries; e++)
    if (!d[e]) todo[missing++] = e;
  pt_progress prog; /* counts images run, `rows` per entry */
  pt_progress_begin(&prog, s == PT_OK && missing ? progress : NULL, "qos_p1 init (images x knobs)", (int64_t)missing * rows);
  double last_save = pt_now();
  int done = 0;
  const int group = P1_GROUP * (meas && meas->outputs && meas->width > 1 ? meas->width : 1);
  while (s == PT_OK && done < missing) {
    int n = missing - done < group ? missing - done : group;
    s = measure_group(app, meas, n, todo + done, base, d, &prog, (int64_t)done * rows);
    if (s != PT_OK) break;
    done += n;
    if (path[0] && done < missing && pt_now() - last_save > 30.0) { /* an interrupted init resumes from here */
      s = save_p1(path, app, rows, cols, base, d);
      last_save = pt_now();
    }
  }
  pt_progress_end(&prog);
  if (s == PT_OK && path[0] && (done || !have_base)) s = save_p1(path, app, rows, cols, base, d);
  if (s == PT_OK) s = build_blocked(app, rows, cols, base, (const float *const *)d, app->out_labels, m);
  for (int e = 0; d && e < app->n_entries; e++) free(d[e]);
  free(d);
  free(base);
  free(todo);
  if (s != PT_OK) pt__p1_free(m);
  return s;
}

/* Correct predictions of each config over one row block. slots: (n, n_ops) the configs' non-zero
 * delta slots, ns: (n) how many each has (found once per batch, not once per block). The block is
 * column-major, so the sums and the argmax (first maximum; a row with a non-finite value is
 * wrong, as in pt_topk_accuracy) work on PT__P1_ROWS rows at once and vectorise. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
/* the portable build targets baseline x86-64 (SSE2); the hot loop also gets an AVX2 copy (faster here than
 * an AVX-512 one), chosen at load time by the CPU */
__attribute__((target_clones("avx2", "default")))
#endif
static void predict_block(const pt__p1 *m, int b, int n, int n_ops, const int *slots, const int *ns, float *acc,
                          int64_t *correct) {
  enum { R = PT__P1_ROWS };
  const int cols = m->cols, r0 = b * R;
  const int nr = m->rows - r0 < R ? m->rows - r0 : R;
  const size_t blk = (size_t)R * (size_t)cols;
  const float *dblk = m->delta + (size_t)b * (size_t)m->n_slots * blk;
  const float *bb = m->base_t + (size_t)b * blk;
  int32_t lab[R];
  for (int r = 0; r < R; r++) lab[r] = r < nr ? m->labels[r0 + r] : -1;
  for (int k = 0; k < n; k++) {
    const int *sl = slots + (size_t)k * (size_t)n_ops;
    const int cnt = ns[k];
    if (cnt == 0) {
      memcpy(acc, bb, blk * sizeof *acc);
    } else {
      const float *d0 = dblk + (size_t)sl[0] * blk;
      for (size_t i = 0; i < blk; i++) acc[i] = bb[i] + d0[i];
      for (int j = 1; j < cnt; j++) {
        const float *dv = dblk + (size_t)sl[j] * blk;
        for (size_t i = 0; i < blk; i++) acc[i] += dv[i];
      }
    }
    float bv[R], fin[R]; /* fin: 0 while the row is finite (x - x is NaN for NaN and inf) */
    int32_t bi[R];
    for (int r = 0; r < R; r++) bv[r] = acc[r], bi[r] = 0, fin[r] = acc[r] - acc[r];
    for (int j = 1; j < cols; j++) {
      const float *col = acc + (size_t)j * R;
      for (int r = 0; r < R; r++) {
        const float v = col[r];
        const int take = v > bv[r];
        bv[r] = take ? v : bv[r];
        bi[r] = take ? j : bi[r];
        fin[r] += v - v;
      }
    }
    int ok = 0;
    for (int r = 0; r < R; r++) ok += bi[r] == lab[r] && fin[r] == 0.0f;
    correct[k] += ok;
  }
}

pt_status pt__p1_attach(pt__p1 *m, pt_backend *be) {
  if (!pt__backend_has_p1(be))
    return pt__error(PT_EUNSUPPORTED, "backend %s has no P1 predictor", be ? pt_backend_name(be) : "(none)");
  /* blocked (n_blocks, n_slots, cols, PT__P1_ROWS) -> sample-major (rows, n_slots, cols) */
  size_t cols = (size_t)m->cols, ns = (size_t)m->n_slots;
  float *sm = pt__malloc((size_t)m->rows * (ns ? ns : 1) * cols * sizeof *sm);
  if (!sm) return pt__error(PT_ENOMEM, "P1: out of memory for the device layout");
  for (int r = 0; r < m->rows; r++)
    for (size_t sl = 0; sl < ns; sl++)
      for (size_t j = 0; j < cols; j++)
        sm[((size_t)r * ns + sl) * cols + j] =
            m->delta[(((size_t)(r / PT__P1_ROWS) * ns + sl) * cols + j) * PT__P1_ROWS + (size_t)(r % PT__P1_ROWS)];
  void *dev = NULL;
  pt_status s = pt__backend_p1_upload(be, m->rows, m->cols, m->n_slots, m->base, sm, m->labels, &dev);
  free(sm);
  if (s != PT_OK) return s;
  if (m->dev) pt__backend_p1_free(m->be, m->dev);
  m->be = be;
  m->dev = dev;
  return PT_OK;
}

/* The configs' non-zero delta slots: slots (n, n_ops), ns (n). */
static void config_slots(const pt_app *app, const pt__p1 *m, int n, const uint16_t *cfgs, int *slots, int *ns) {
  for (int k = 0; k < n; k++) {
    const uint16_t *c = cfgs + (int64_t)k * app->n_ops;
    int *sl = slots + (size_t)k * (size_t)app->n_ops, cnt = 0;
    for (int op = 0; op < app->n_ops; op++) {
      int v = m->slot[app->entry_off[op] + c[op]];
      if (v >= 0) sl[cnt++] = v;
    }
    ns[k] = cnt;
  }
}

pt_status pt__p1_predict(const pt_app *app, const pt__p1 *m, int n, const uint16_t *cfgs, double *qos) {
  if (m->dev) { /* on the device; any failure falls back to the CPU below */
    int *slots = pt__calloc((size_t)n * (size_t)app->n_ops + 1, sizeof *slots), *ns = pt__calloc((size_t)n + 1, sizeof *ns);
    int64_t *correct = pt__calloc((size_t)n + 1, sizeof *correct);
    pt_status s = slots && ns && correct ? PT_OK : pt__error(PT_ENOMEM, "qos_p1: out of memory for a batch of %d", n);
    if (s == PT_OK) {
      config_slots(app, m, n, cfgs, slots, ns);
      s = pt__backend_p1_predict(m->be, m->dev, n, app->n_ops, slots, ns, correct);
    }
    if (s == PT_OK)
      for (int k = 0; k < n; k++) qos[k] = 100.0 * (double)correct[k] / (double)m->rows;
    else
      pt_log(PT_LOG_WARN, "P1 on %s failed (%s); predicting on the CPU", pt_backend_name(m->be), pt_last_error());
    free(slots), free(ns), free(correct);
    if (s == PT_OK) return PT_OK;
  }
  int64_t *correct = pt__calloc((size_t)n, sizeof *correct);
  int *slots = pt__malloc((size_t)n * (size_t)app->n_ops * sizeof *slots), *ns = pt__malloc((size_t)n * sizeof *ns);
  if (!correct || !slots || !ns) {
    free(correct), free(slots), free(ns);
    return pt__error(PT_ENOMEM, "qos_p1: out of memory for a batch of %d configs", n);
  }
  config_slots(app, m, n, cfgs, slots, ns);
  int failed = 0;
#pragma omp parallel
  {
    int64_t *mine = pt__calloc((size_t)n, sizeof *mine);
    float *acc = pt__malloc((size_t)PT__P1_ROWS * (size_t)m->cols * sizeof *acc + 64);
    int ok = mine && acc;
#pragma omp for schedule(static)
    for (int b = 0; b < m->n_blocks; b++)
      if (ok) predict_block(m, b, n, app->n_ops, slots, ns, acc, mine);
#pragma omp critical
    {
      if (!ok) failed = 1;
      for (int k = 0; ok && k < n; k++) correct[k] += mine[k];
    }
    free(mine);
    free(acc);
  }
  for (int k = 0; k < n; k++) qos[k] = failed ? NAN : 100.0 * (double)correct[k] / (double)m->rows;
  free(correct), free(slots), free(ns);
  return failed ? pt__error(PT_ENOMEM, "qos_p1: out of memory for a thread's scratch") : PT_OK;
}
