/* configs.png / configs.svg with PLplot, laid out like PredTuner's plot_configs: (1) QoS vs speedup
 * of kept and best configs with the keep threshold, (2) predicted vs validated QoS of the best
 * configs when they were validated, (3) tune vs test QoS loss when they were tested; beyond
 * PredTuner, (4) predicted vs measured speedup of the best configs when they were timed. */
#include <math.h>
#include <plplot/plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "tuner/plot_file.h"
#include "tuner/tuner_internal.h"

enum { C_FG = PT__C_FG, C_KEPT = PT__C_KEPT, C_BEST = PT__C_BEST, C_LINE = PT__C_LINE, C_ALT = PT__C_ALT };

static void range_of(const double *a, const double *b, int n, const uint8_t *mask, double extra, double *lo, double *hi) {
  *lo = INFINITY;
  *hi = -INFINITY;
  for (int i = 0; i < n; i++) {
    if (mask && !mask[i]) continue;
    if (isfinite(a[i])) *lo = fmin(*lo, a[i]), *hi = fmax(*hi, a[i]);
    if (b && isfinite(b[i])) *lo = fmin(*lo, b[i]), *hi = fmax(*hi, b[i]);
  }
  if (isfinite(extra)) *lo = fmin(*lo, extra), *hi = fmax(*hi, extra);
  if (!isfinite(*lo)) *lo = 0, *hi = 1;
  double pad = (*hi - *lo) * 0.06;
  if (pad <= 0) pad = fabs(*hi) * 0.05 + 0.05;
  *lo -= pad;
  *hi += pad;
}

static void points(const double *x, const double *y, int n, const uint8_t *mask, int want, int color, int sym) {
  PLFLT *px = pt__malloc((size_t)(n + 1) * sizeof *px), *py = pt__malloc((size_t)(n + 1) * sizeof *py);
  int m = 0;
  for (int i = 0; px && py && i < n; i++)
    if ((!mask || mask[i] == want) && isfinite(x[i]) && isfinite(y[i])) px[m] = x[i], py[m++] = y[i];
  plcol0(color);
  plssym(0, sym == 4 ? 0.45 : 0.9);
  if (m) plpoin(m, px, py, sym);
  free(px);
  free(py);
}

static void vline(double x, double ylo, double yhi) {
  plcol0(C_LINE);
  pllsty(2);
  pljoin(x, ylo, x, yhi);
  pllsty(1);
}

/* The box's place in its subpage (left, right), and where titles and legends sit in the box's
 * units: the left margin holds the y label, so a title centred on the box or a legend starting at
 * its left edge would run past the subpage's right edge, where PLplot clips it. */
#define VP_L 0.24
#define VP_R 0.95
#define ON_SUBPAGE(x) (((x) - VP_L) / (VP_R - VP_L))

/* Legend lines under the x label, outside the data, from near the subpage's left edge. */
static void legend_text(int row, int color, const char *text) {
  plcol0(color);
  plmtex("b", 3.6 + 1.3 * row, ON_SUBPAGE(0.06), 0.0, text);
}

/* A major tick step of 1, 2 or 5 times a power of ten with at most 5 intervals over [lo, hi]
 * (PLplot's own choice crowds the labels of a narrow panel into each other); 0: PLplot's. */
static double tick_step(double lo, double hi) {
  const double raw = (hi - lo) / 5;
  if (!(raw > 0) || !isfinite(raw)) return 0;
  const double p = pow(10, floor(log10(raw))), m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* A panel's viewport, window, box and labels, placed by hand: pllab puts the y label 5 character
 * heights left of the box, past the left edge of a subpage this narrow, where PLplot clipped it to
 * fragments; here it sits just clear of the tick labels, and the title is centred on the subpage. */
static void frame(double xl, double xh, double yl, double yh, const char *xlab, const char *ylab, const char *title) {
  pladv(0);
  plvpor(VP_L, VP_R, 0.32, 0.90);
  plcol0(C_FG);
  plwind(xl, xh, yl, yh);
  plbox("bcnst", tick_step(xl, xh), 0, "bcnstv", tick_step(yl, yh), 0);
  plmtex("b", 3.2, 0.5, 0.5, xlab);
  plmtex("l", 3.3, 0.5, 0.5, ylab);
  plmtex("t", 2.0, ON_SUBPAGE(0.5), 0.5, title);
}

static void panel(double xl, double xh, double yl, double yh, const char *xlab, const char *title) {
  frame(xl, xh, yl, yh, xlab, "Speedup (x)", title);
}

/* One plot being drawn: the data, which panels there are, and scratch coordinates. */
typedef struct plot_job {
  const pt__plot_data *d;
  int show_loss, nbest, val_panel, test_panel, meas_panel;
  double base, keep; /* the tune baseline, the keep threshold as plotted (QoS or loss) */
  double *x1, *x2, *x3; /* (n) x coordinates of the panels */
} plot_job;

/* 1. kept and best: QoS (or loss) vs speedup */
static void panel_kept(const plot_job *j) {
  const pt__plot_data *d = j->d;
  const int n = d->n;
  double xl, xh, yl, yh;
  char label[128];
  for (int i = 0; i < n; i++) j->x1[i] = j->show_loss ? j->base - d->qos[i] : d->qos[i];
  range_of(j->x1, NULL, n, NULL, j->keep, &xl, &xh);
  range_of(d->speedup, NULL, n, NULL, 1.0, &yl, &yh);
  panel(xl, xh, yl, yh, j->show_loss ? "QoS loss (tune set)" : "QoS (tune set)", "kept and best configs");
  points(j->x1, d->speedup, n, d->is_best, 0, C_KEPT, 4);
  points(j->x1, d->speedup, n, d->is_best, 1, C_BEST, 17);
  vline(j->keep, yl, yh);
  snprintf(label, sizeof label, "kept (%d)", n - j->nbest);
  legend_text(1, C_KEPT, label);
  snprintf(label, sizeof label, "best (%d)", j->nbest);
  legend_text(2, C_BEST, label);
  snprintf(label, sizeof label, "keep threshold %.2f", j->keep);
  legend_text(3, C_LINE, label);
}

/* 2. predicted vs validated QoS of the best configs (after panel_kept, whose x1 it reuses) */
static void panel_validated(const plot_job *j) {
  const pt__plot_data *d = j->d;
  const int n = d->n;
  double xl, xh, yl, yh;
  for (int i = 0; i < n; i++) j->x2[i] = j->show_loss ? j->base - d->val_qos[i] : d->val_qos[i];
  range_of(j->x1, j->x2, n, d->is_best, j->keep, &xl, &xh);
  range_of(d->speedup, NULL, n, d->is_best, NAN, &yl, &yh);
  panel(xl, xh, yl, yh, j->show_loss ? "QoS loss (tune set)" : "QoS (tune set)", "predicted vs validated QoS");
  points(j->x1, d->speedup, n, d->is_best, 1, C_KEPT, 4);
  points(j->x2, d->speedup, n, d->is_best, 1, C_BEST, 17);
  vline(j->keep, yl, yh);
  legend_text(1, C_KEPT, "predicted");
  legend_text(2, C_BEST, "validated");
}

/* 3. tune vs test QoS loss (always as loss, as PredTuner) */
static void panel_test(const plot_job *j) {
  const pt__plot_data *d = j->d;
  const int n = d->n;
  double xl, xh, yl, yh;
  char label[128];
  for (int i = 0; i < n; i++) {
    j->x2[i] = j->base - (j->val_panel ? d->val_qos[i] : d->qos[i]);
    j->x3[i] = d->base_test - d->test_qos[i];
  }
  double tk = d->base_test - d->test_keep;
  range_of(j->x2, j->x3, n, d->is_best, tk, &xl, &xh);
  range_of(d->speedup, NULL, n, d->is_best, NAN, &yl, &yh);
  panel(xl, xh, yl, yh, "QoS loss", "tune vs test set");
  points(j->x2, d->speedup, n, d->is_best, 1, C_KEPT, 4);
  points(j->x3, d->speedup, n, d->is_best, 1, C_ALT, 17);
  vline(tk, yl, yh);
  legend_text(1, C_KEPT, "tune set");
  legend_text(2, C_ALT, "test set");
  snprintf(label, sizeof label, "test keep threshold %.2f", tk);
  legend_text(3, C_LINE, label);
}

/* 4. predicted vs measured speedup of the best configs that were timed, with the line y = x */
static void panel_measured(const plot_job *j) {
  const pt__plot_data *d = j->d;
  const int n = d->n;
  double lo, hi; /* one range for both axes, so y = x is the diagonal */
  range_of(d->speedup, d->measured, n, d->is_best, 1.0, &lo, &hi);
  frame(lo, hi, lo, hi, "Predicted speedup (x)", "Measured speedup (x)", "measured speedup");
  plcol0(C_LINE);
  pllsty(2);
  pljoin(lo, lo, hi, hi);
  pllsty(1);
  points(d->speedup, d->measured, n, d->is_best, 1, C_BEST, 17);
  legend_text(1, C_BEST, "best configs (timed)");
  legend_text(2, C_LINE, "measured = predicted");
}

/* Which panels there are: validation and test ones when every best config has those QoS, the
 * measured one when any best config was timed. */
static void choose_panels(plot_job *j) {
  const pt__plot_data *d = j->d;
  int all_val = 1, all_test = 1, any_meas = 0;
  for (int i = 0; i < d->n; i++) {
    if (!d->is_best[i]) continue;
    j->nbest++;
    all_val &= !isnan(d->val_qos[i]);
    all_test &= !isnan(d->test_qos[i]);
    any_meas |= isfinite(d->measured[i]) != 0;
  }
  j->val_panel = j->nbest && all_val;
  j->test_panel = j->nbest && all_test;
  j->meas_panel = any_meas;
}

static void draw_panels(void *ctx) {
  plot_job *j = ctx;
  panel_kept(j);
  if (j->val_panel) panel_validated(j);
  if (j->test_panel) panel_test(j);
  if (j->meas_panel) panel_measured(j);
}

pt_status pt__plot_draw(const pt__plot_data *d, const char *path, int show_qos_loss) {
  plot_job j = {.d = d, .show_loss = show_qos_loss, .base = d->base_tune,
                .keep = show_qos_loss ? d->base_tune - d->tune_keep : d->tune_keep};
  j.x1 = pt__calloc((size_t)d->n + 1, sizeof *j.x1);
  j.x2 = pt__calloc((size_t)d->n + 1, sizeof *j.x2);
  j.x3 = pt__calloc((size_t)d->n + 1, sizeof *j.x3);
  pt_status s = PT_OK;
  if (!j.x1 || !j.x2 || !j.x3) {
    s = pt__error(PT_ENOMEM, "%s: out of memory for the plot", path);
  } else {
    choose_panels(&j);
    const int panels = 1 + j.val_panel + j.test_panel + j.meas_panel;
    const pt__figure fig = {600 + 450 * (panels - 1), 600, panels, 1, draw_panels, &j};
    s = pt__plot_file(path, &fig);
  }
  free(j.x1), free(j.x2), free(j.x3);
  return s;
}
