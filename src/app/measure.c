/* QoS as PredTuner computes it: accuracy per batch, averaged over batches (so a smaller last batch
 * weighs as much as a full one; with a batch size that divides N this is the overall accuracy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "predtuner/measure.h"

int pt_argmax(const float *v, int n) {
  int best = 0;
  for (int j = 1; j < n; j++)
    if (v[j] > v[best] || (isnan(v[best]) && !isnan(v[j]))) best = j;
  return best;
}

double pt_topk_accuracy(const float *out, const int32_t *labels, int n, int classes, int k) {
  if (n <= 0) return 0.0;
  if (k > classes) k = classes;
  int correct = 0;
  for (int i = 0; i < n; i++) {
    const float *row = out + (int64_t)i * classes;
    float lv = row[labels[i]];
    /* rank of the label: values strictly greater, plus equal values at lower indices (first wins) */
    int rank = 0;
    for (int j = 0; j < classes; j++)
      if (row[j] > lv || (row[j] == lv && j < labels[i]) || (isnan(lv) && !isnan(row[j]))) rank++;
    correct += rank < k;
  }
  return 100.0 * correct / n;
}

pt_status pt_measure(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, const pt_measure_opts *opts,
                     pt_measure_result *res) {
  memset(res, 0, sizeof *res);
  pt_measure_opts o = {0};
  if (opts) o = *opts;
  int bs = o.batch_size > 0 ? o.batch_size : 500;
  int classes = pt_graph_num_classes(g);
  int c, h, w;
  pt_graph_input_shape(g, &c, &h, &w);
  if (c != ds->c || h != ds->h || w != ds->w)
    return pt__error(PT_ESHAPE, "data set images are %dx%dx%d but model %s takes %dx%dx%d", ds->c, ds->h, ds->w,
                     pt_graph_name(g), c, h, w);
  if (bs > ds->n) bs = (int)ds->n;
  float *out = malloc((size_t)bs * (size_t)classes * sizeof *out);
  if (!out) return pt__error(PT_ENOMEM, "measure: out of memory");
  double acc_sum = 0, top5_sum = 0, t = 0;
  pt_status s = PT_OK;
  for (int64_t i = 0; i < ds->n; i += bs) {
    int n = (int)(ds->n - i < bs ? ds->n - i : bs);
    double t0 = pt_now();
    s = pt_exec_run_at(ex, ds->images + i * (int64_t)c * h * w, n, ds->first + i, o.ops, out);
    t += pt_now() - t0;
    if (s != PT_OK) break;
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
