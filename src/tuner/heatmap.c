/* The sensitivity heatmap with PLplot (heatmap.h): one row per op, one column per knob group,
 * cells coloured from green (no loss) to red (the largest loss on the map), grey where the group
 * has no knob on the op; each cell says its loss and speedup. Sized in pixels from the number of
 * rows and the longest op name, so every label fits its margin. */
#include <math.h>
#include <plplot/plplot.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "tuner/heatmap.h"
#include "tuner/plot_file.h"

enum { CELL_W = 150, CELL_H = 26, TOP = 70, BOTTOM = 90, RIGHT = 30, CHAR_W = 8 };

typedef struct heat_job {
  const pt__heat *h;
  int w, hgt, left;
  double max_loss;
} heat_job;

static void cell(const heat_job *j, int op, int g) {
  const pt__heat *h = j->h;
  const double v = h->loss[(size_t)op * h->n_groups + g], sp = h->speedup[(size_t)op * h->n_groups + g];
  PLFLT x[4] = {g, g + 1, g + 1, g}, y0 = h->n_ops - op - 1, y[4] = {y0, y0, y0 + 1, y0 + 1};
  char text[64];
  if (isnan(v)) {
    plcol0(PT__C_GREY);
    snprintf(text, sizeof text, "-");
  } else {
    plcol1(j->max_loss > 0 ? fmin(1.0, fmax(0.0, v / j->max_loss)) : 0.0);
    if (isfinite(sp)) snprintf(text, sizeof text, "%.3g  %.2fx", v, sp);
    else snprintf(text, sizeof text, "%.3g", v);
  }
  plfill(4, x, y);
  plcol0(PT__C_FG);
  plptex(g + 0.5, y0 + 0.35, 1, 0, 0.5, text);
}

/* s for PLplot's text functions, which take '#' as their escape character: doubled, it is itself. */
static const char *literal(const char *s, char *buf, size_t n) {
  size_t k = 0;
  for (; *s && k + 2 < n; s++) {
    if (*s == '#') buf[k++] = '#';
    buf[k++] = *s;
  }
  buf[k] = 0;
  return buf;
}

static void draw_map(void *ctx) {
  const heat_job *j = ctx;
  const pt__heat *h = j->h;
  static const PLFLT pos[3] = {0, 0.5, 1}, r[3] = {0.40, 1.00, 0.90}, g[3] = {0.80, 0.85, 0.30}, b[3] = {0.40, 0.35, 0.25};
  plscmap1n(256);
  plscmap1l(1, 3, pos, r, g, b, NULL);
  pladv(0);
  plvpor((double)j->left / j->w, 1.0 - (double)RIGHT / j->w, (double)BOTTOM / j->hgt, 1.0 - (double)TOP / j->hgt);
  plwind(0, h->n_groups, 0, h->n_ops);
  plschr(0, 0.75);
  for (int op = 0; op < h->n_ops; op++)
    for (int k = 0; k < h->n_groups; k++) cell(j, op, k);
  plcol0(PT__C_FG);
  plbox("bc", 0, 0, "bc", 0, 0);
  char name[200];
  for (int op = 0; op < h->n_ops; op++)
    plmtex("lv", 0.6, (h->n_ops - op - 0.5) / h->n_ops, 1.0, literal(h->op_names[op], name, sizeof name));
  for (int k = 0; k < h->n_groups; k++)
    plmtex("t", 0.8, (k + 0.5) / h->n_groups, 0.5, literal(h->groups[k], name, sizeof name));
  char line[160];
  snprintf(line, sizeof line, "cell: the lowest QoS loss of the group's knobs on the op, and that knob's speedup");
  plmtex("b", 1.6, 0.0, 0.0, line);
  snprintf(line, sizeof line, "colour: loss 0 (green) to %.3g (red); grey: no such knob on the op (or no loss known)",
           j->max_loss);
  plmtex("b", 3.0, 0.0, 0.0, line);
  if (h->note) plmtex("b", 4.4, 0.0, 0.0, h->note);
  plschr(0, 0.95);
  plmtex("t", 2.6, 0.5, 0.5, h->title);
}

pt_status pt__heatmap_draw(const pt__heat *h, const char *path) {
  if (h->n_ops < 1 || h->n_groups < 1) return pt__error(PT_EINVAL, "%s: a heatmap needs ops and knobs", path);
  heat_job j = {.h = h, .max_loss = 0};
  size_t longest = 0;
  for (int op = 0; op < h->n_ops; op++) longest = strlen(h->op_names[op]) > longest ? strlen(h->op_names[op]) : longest;
  for (size_t i = 0; i < (size_t)h->n_ops * h->n_groups; i++)
    if (isfinite(h->loss[i])) j.max_loss = fmax(j.max_loss, h->loss[i]);
  j.left = 30 + CHAR_W * (int)(longest < 48 ? longest : 48);
  j.w = j.left + CELL_W * h->n_groups + RIGHT;
  if (j.w < 640) j.w = 640; /* room for the notes under the map */
  j.hgt = TOP + CELL_H * h->n_ops + BOTTOM;
  const pt__figure fig = {j.w, j.hgt, 1, 1, draw_map, &j};
  return pt__plot_file(path, &fig);
}
