/* QoS as PredTuner computes it: accuracy per batch, averaged over batches (so a smaller last batch
 * weighs as much as a full one; with a batch size that divides N this is the overall accuracy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/measure.h"

int pt_argmax(const float *v, int n) {
  int best = 0;
  for (int j = 1; j < n; j++)
    if (v[j] > v[best] || (isnan(v[best]) && !isnan(v[j]))) best = j;
  return best;
}

int64_t pt_count_nonfinite(const float *v, int64_t n) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; i++) bad += !isfinite(v[i]);
  return bad;
}

double pt_topk_accuracy(const float *out, const int32_t *labels, int n, int classes, int k) {
  if (n <= 0) return 0.0;
  if (k > classes) k = classes;
  int correct = 0;
  for (int i = 0; i < n; i++) {
    const float *row = out + (int64_t)i * classes;
    if (pt_count_nonfinite(row, classes)) continue; /* an image with a non-finite output is wrong */
    float lv = row[labels[i]];
    /* rank of the label: values strictly greater, plus equal values at lower indices (first wins) */
    int rank = 0;
    for (int j = 0; j < classes; j++)
      if (row[j] > lv || (row[j] == lv && j < labels[i])) rank++;
    correct += rank < k;
  }
  return 100.0 * correct / n;
}

/* An error naming the op whose output first holds a non-finite value on images [first, first + n). */
static pt_status nonfinite_error(pt_exec *ex, const pt_graph *g, const float *images, int n, int64_t first,
                                 const pt_op_exec *ops) {
  const char *where = NULL;
  pt_status s = pt_exec_find_nonfinite(ex, images, n, first, ops, &where);
  if (s != PT_OK) return s;
  if (!where) where = "(none on a second run)";
  return pt__error(PT_ENONFINITE, "%s: the %s network's output holds NaN or infinity on images %lld-%lld; first at op '%s'",
                   pt_graph_name(g), ops ? "approximated" : "exact", (long long)first, (long long)(first + n - 1), where);
}

/* The data set's images must be the model's input shape (c, h, w). */
static pt_status check_images(const pt_graph *g, const pt_dataset *ds, int *c, int *h, int *w) {
  pt_graph_input_shape(g, c, h, w);
  if (*c != ds->c || *h != ds->h || *w != ds->w)
    return pt__error(PT_ESHAPE, "data set images are %dx%dx%d but model %s takes %dx%dx%d", ds->c, ds->h, ds->w,
                     pt_graph_name(g), *c, *h, *w);
  return PT_OK;
}

pt_status pt_measure(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, const pt_measure_opts *opts,
                     pt_measure_result *res) {
  memset(res, 0, sizeof *res);
  pt_measure_opts o = {0};
  if (opts) o = *opts;
  int bs = o.batch_size > 0 ? o.batch_size : PT_BATCH_SIZE_DEFAULT;
  int classes = pt_graph_num_classes(g);
  int c, h, w;
  PT__TRY(check_images(g, ds, &c, &h, &w));
  if (bs > ds->n) bs = (int)ds->n;
  float *out = pt__malloc((size_t)bs * (size_t)classes * sizeof *out);
  if (!out) return pt__error(PT_ENOMEM, "measure: out of memory");
  double acc_sum = 0, top5_sum = 0, t = 0;
  pt_status s = PT_OK;
  for (int64_t i = 0; i < ds->n; i += bs) {
    int n = (int)(ds->n - i < bs ? ds->n - i : bs);
    double t0 = pt_now();
    s = pt_exec_run_at(ex, ds->images + i * (int64_t)c * h * w, n, ds->first + i, o.ops, out);
    t += pt_now() - t0;
    if (s != PT_OK) break;
    if (pt_count_nonfinite(out, (int64_t)n * classes)) {
      s = nonfinite_error(ex, g, ds->images + i * (int64_t)c * h * w, n, ds->first + i, o.ops);
      break;
    }
    acc_sum += pt_topk_accuracy(out, ds->labels + i, n, classes, 1);
    top5_sum += pt_topk_accuracy(out, ds->labels + i, n, classes, 5);
    if (o.predictions)
      for (int j = 0; j < n; j++) o.predictions[i + j] = pt_argmax(out + (int64_t)j * classes, classes);
    res->batches++;
    res->images += n;
    if (o.progress) pt_progress_update(o.progress, res->images);
  }
  free(out);
  if (s != PT_OK) return s;
  res->accuracy = acc_sum / res->batches;
  res->top5 = top5_sum / res->batches;
  res->seconds = t;
  res->images_per_s = t > 0 ? (double)res->images / t : 0.0;
  return PT_OK;
}

pt_status pt_measure_many(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, int batch_size, int n_cfg,
                          const pt_op_exec *ops, pt_progress *progress, double *accuracy, double *seconds) {
  int bs = batch_size > 0 ? batch_size : PT_BATCH_SIZE_DEFAULT;
  int classes = pt_graph_num_classes(g), n_ops = pt_graph_num_ops(g);
  int c, h, w;
  PT__TRY(check_images(g, ds, &c, &h, &w));
  if (bs > ds->n) bs = (int)ds->n;
  /* configs share work only within a group; a group's outputs stay under 64 MiB */
  size_t per_cfg = (size_t)bs * (size_t)classes * sizeof(float);
  int group = (int)((64u << 20) / per_cfg);
  if (group < 1) group = 1;
  if (group > n_cfg) group = n_cfg;
  float *out = pt__malloc((size_t)group * per_cfg);
  double *t = seconds ? pt__malloc((size_t)group * sizeof *t) : NULL;
  if (!out || (seconds && !t)) {
    free(out), free(t);
    return pt__error(PT_ENOMEM, "measure: out of memory");
  }
  pt_status s = PT_OK;
  int64_t done = 0;
  for (int k0 = 0; s == PT_OK && k0 < n_cfg; k0 += group) {
    int nk = n_cfg - k0 < group ? n_cfg - k0 : group;
    for (int k = 0; k < nk; k++) {
      accuracy[k0 + k] = 0;
      if (seconds) seconds[k0 + k] = 0;
    }
    int batches = 0;
    for (int64_t i = 0; s == PT_OK && i < ds->n; i += bs) {
      int n = (int)(ds->n - i < bs ? ds->n - i : bs);
      s = pt_exec_run_many(ex, ds->images + i * (int64_t)c * h * w, n, ds->first + i, nk,
                           ops + (int64_t)k0 * n_ops, out, t);
      if (s != PT_OK) break;
      for (int k = 0; k < nk; k++) {
        const float *o = out + (size_t)k * n * classes; /* a config with a non-finite output has no QoS */
        accuracy[k0 + k] += pt_count_nonfinite(o, (int64_t)n * classes) ? NAN : pt_topk_accuracy(o, ds->labels + i, n, classes, 1);
        if (seconds) seconds[k0 + k] += t[k];
      }
      batches++;
      done += (int64_t)n * nk;
      if (progress) pt_progress_update(progress, done);
    }
    for (int k = 0; s == PT_OK && k < nk; k++) accuracy[k0 + k] /= batches;
  }
  free(out), free(t);
  return s;
}
