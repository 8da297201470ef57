/* QoS as PredTuner computes it: accuracy per batch, averaged over batches (so a smaller last batch
 * weighs as much as a full one; with a batch size that divides N this is the overall accuracy). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "app/early_stop.h"
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

/* Rows of out (n, classes) whose label is among the k largest values (first index wins ties). */
static int topk_correct(const float *out, const int32_t *labels, int n, int classes, int k) {
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
  return correct;
}

double pt_topk_accuracy(const float *out, const int32_t *labels, int n, int classes, int k) {
  if (n <= 0) return 0.0;
  return 100.0 * topk_correct(out, labels, n, classes, k) / n;
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
  return pt_measure_many_stop(ex, g, ds, batch_size, n_cfg, ops, NULL, progress, accuracy, seconds, NULL);
}

/* One group of configs measured batch by batch (run_many over the configs still going): per config
 * its accuracies summed, images right and seen, and whether it is still going. */
typedef struct many_group {
  pt_exec *ex;
  const pt_graph *g;
  const pt_dataset *ds;
  const pt_stop_rule *stop; /* NULL: none stops */
  int bs, n_batches, classes, n_ops;
  const int *sizes;         /* (n_batches) images per batch */
  const pt_op_exec *ops;    /* (nk, n_ops) the group's configs */
  int nk;
  pt_op_exec *live_ops;     /* (nk, n_ops) scratch: the configs still going */
  int *live;                /* (nk) their indices */
  float *out;               /* (nk, bs, classes) */
  double *t;                /* (nk) or NULL: untimed */
  double *acc, *sec;        /* (nk) results */
  int64_t *k, *m;           /* (nk) images right, images run */
  uint8_t *going, *stopped; /* (nk) */
} many_group;

/* Batch b for every config still going; then each one that cannot end above the threshold stops.
 * *left: images x configs no longer run (for the progress count). */
static pt_status group_batch(many_group *gr, int b, int64_t *left) {
  const pt_dataset *ds = gr->ds;
  const int64_t i0 = (int64_t)b * gr->bs, img = (int64_t)ds->c * ds->h * ds->w;
  const int n = gr->sizes[b];
  int nl = 0;
  for (int k = 0; k < gr->nk; k++)
    if (gr->going[k]) {
      memcpy(gr->live_ops + (size_t)nl * gr->n_ops, gr->ops + (size_t)k * gr->n_ops, (size_t)gr->n_ops * sizeof *gr->ops);
      gr->live[nl++] = k;
    }
  if (!nl) return PT_OK;
  PT__TRY(pt_exec_run_many(gr->ex, ds->images + i0 * img, n, ds->first + i0, nl, gr->live_ops, gr->out, gr->t));
  for (int j = 0; j < nl; j++) {
    const int k = gr->live[j];
    const float *o = gr->out + (size_t)j * n * gr->classes;
    if (gr->t) gr->sec[k] += gr->t[j];
    if (pt_count_nonfinite(o, (int64_t)n * gr->classes)) { /* a config with a non-finite output has no QoS */
      gr->acc[k] = NAN, gr->going[k] = 0;
      *left += ds->n - i0;
      continue;
    }
    const int c = topk_correct(o, ds->labels + i0, n, gr->classes, 1);
    gr->acc[k] += 100.0 * c / n; /* pt_topk_accuracy's value */
    gr->k[k] += c, gr->m[k] += n;
    if (!gr->stop || gr->stop->mode == PT_EARLY_STOP_OFF || b + 1 == gr->n_batches) continue;
    double ub = pt__qos_bound_sums(gr->stop, gr->n_batches, gr->acc[k], gr->k[k], gr->m[k], gr->n_batches - b - 1,
                                   gr->sizes + b + 1);
    if (ub <= gr->stop->threshold - PT__STOP_MARGIN) {
      gr->going[k] = 0, gr->stopped[k] = 1;
      gr->acc[k] = ub * gr->n_batches; /* divided by n_batches with the others below */
      gr->sec[k] *= (double)ds->n / (double)gr->m[k];
      *left += ds->n - i0;
    }
  }
  return PT_OK;
}

pt_status pt_measure_many_stop(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, int batch_size, int n_cfg,
                               const pt_op_exec *ops, const pt_stop_rule *stop, pt_progress *progress,
                               double *accuracy, double *seconds, uint8_t *stopped) {
  int bs = batch_size > 0 ? batch_size : PT_BATCH_SIZE_DEFAULT;
  int c, h, w;
  PT__TRY(check_images(g, ds, &c, &h, &w));
  if (bs > ds->n) bs = (int)ds->n;
  many_group gr = {.ex = ex, .g = g, .ds = ds, .stop = stop, .bs = bs, .classes = pt_graph_num_classes(g),
                   .n_ops = pt_graph_num_ops(g), .n_batches = (int)((ds->n + bs - 1) / bs)};
  /* configs share work only within a group; a group's outputs stay under 64 MiB */
  size_t per_cfg = (size_t)bs * (size_t)gr.classes * sizeof(float);
  int group = (int)((64u << 20) / per_cfg);
  group = group < 1 ? 1 : group > n_cfg ? n_cfg : group;
  int *sizes = pt__malloc((size_t)gr.n_batches * sizeof *sizes);
  gr.live_ops = pt__malloc((size_t)group * (size_t)gr.n_ops * sizeof *gr.live_ops + 1);
  gr.live = pt__malloc((size_t)group * sizeof *gr.live);
  gr.out = pt__malloc((size_t)group * per_cfg);
  gr.t = seconds ? pt__malloc((size_t)group * sizeof *gr.t) : NULL;
  gr.sec = pt__malloc((size_t)group * sizeof *gr.sec);
  gr.k = pt__malloc((size_t)group * sizeof *gr.k), gr.m = pt__malloc((size_t)group * sizeof *gr.m);
  gr.going = pt__malloc((size_t)group), gr.stopped = pt__malloc((size_t)group);
  pt_status s = sizes && gr.live_ops && gr.live && gr.out && (!seconds || gr.t) && gr.sec && gr.k && gr.m && gr.going &&
                        gr.stopped ? PT_OK : pt__error(PT_ENOMEM, "measure: out of memory");
  for (int b = 0; s == PT_OK && b < gr.n_batches; b++) sizes[b] = (int)(ds->n - (int64_t)b * bs < bs ? ds->n - (int64_t)b * bs : bs);
  gr.sizes = sizes;
  int64_t done = 0;
  for (int k0 = 0; s == PT_OK && k0 < n_cfg; k0 += group) {
    gr.nk = n_cfg - k0 < group ? n_cfg - k0 : group;
    gr.ops = ops + (int64_t)k0 * gr.n_ops;
    gr.acc = accuracy + k0;
    for (int k = 0; k < gr.nk; k++) gr.acc[k] = gr.sec[k] = 0, gr.k[k] = gr.m[k] = 0, gr.going[k] = 1, gr.stopped[k] = 0;
    for (int b = 0; s == PT_OK && b < gr.n_batches; b++) {
      int64_t left = 0;
      s = group_batch(&gr, b, &left);
      int going = 0;
      for (int k = 0; k < gr.nk; k++) going += gr.going[k];
      done += left + (int64_t)sizes[b] * going;
      if (progress) pt_progress_update(progress, done);
    }
    for (int k = 0; s == PT_OK && k < gr.nk; k++) {
      accuracy[k0 + k] /= gr.n_batches;
      if (seconds) seconds[k0 + k] = gr.sec[k];
      if (stopped) stopped[k0 + k] = gr.stopped[k];
    }
  }
  free(sizes), free(gr.live_ops), free(gr.live), free(gr.out), free(gr.t), free(gr.sec), free(gr.k), free(gr.m);
  free(gr.going), free(gr.stopped);
  return s;
}
