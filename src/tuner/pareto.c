/* Thresholds and best-config selection, exactly as docs/design.md ("The tuning pipeline") says. */
#include <math.h>
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/pareto.h"

pt_thresholds pt_thresholds_compute(double base_tune_qos, double base_test_qos, double tuner_threshold,
                                    double keep_threshold, int relative) {
  pt_thresholds t;
  double keep = isnan(keep_threshold) ? tuner_threshold : keep_threshold;
  if (relative) {
    t.tuner = base_tune_qos - tuner_threshold;
    t.tune_keep = base_tune_qos - keep;
    t.test_keep = base_test_qos - keep;
  } else {
    t.tuner = tuner_threshold;
    t.tune_keep = t.test_keep = keep;
  }
  return t;
}

typedef struct pt__pt {
  double q, s;
  int i;
} pt__pt;

/* QoS descending, then speedup descending, then index ascending. */
static int by_qos_desc(const void *a, const void *b) {
  const pt__pt *x = a, *y = b;
  if (x->q != y->q) return x->q > y->q ? -1 : 1;
  if (x->s != y->s) return x->s > y->s ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

int pt_pareto_front(const double *qos, const double *speedup, int n, int *idx) {
  pt__pt *p = pt__malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
  if (!p) {
    pt__error(PT_ENOMEM, "Pareto front: out of memory for %d points", n);
    return -1;
  }
  int m = 0;
  for (int i = 0; i < n; i++)
    if (!isnan(qos[i]) && !isnan(speedup[i])) p[m++] = (pt__pt){qos[i], speedup[i], i};
  qsort(p, (size_t)m, sizeof *p, by_qos_desc);
  /* sweeping from the highest QoS down, a point is efficient iff its speedup beats every point of
   * higher-or-equal QoS seen so far (which are exactly the points >= it in QoS) */
  int nf = 0;
  double best = -INFINITY;
  for (int k = 0; k < m; k++)
    if (p[k].s > best) {
      best = p[k].s;
      idx[nf++] = p[k].i;
    }
  free(p);
  for (int a = 0, b = nf - 1; a < b; a++, b--) { /* to QoS ascending */
    int t = idx[a];
    idx[a] = idx[b];
    idx[b] = t;
  }
  return nf;
}

double pt_pareto_distance(const double *qos, const double *speedup, const int *front, int nf, double q, double s) {
  if (nf <= 0) return INFINITY;
  if (nf == 1) return hypot(q - qos[front[0]], s - speedup[front[0]]);
  int k = 0; /* segment front[k] .. front[k+1] */
  while (k < nf - 2 && q > qos[front[k + 1]]) k++;
  double x0 = qos[front[k]], y0 = speedup[front[k]], x1 = qos[front[k + 1]], y1 = speedup[front[k + 1]];
  double dx = x1 - x0, dy = y1 - y0;
  return fabs(dx * (s - y0) - dy * (q - x0)) / hypot(dx, dy);
}

typedef struct pt__dist {
  double d;
  int i;
} pt__dist;

static int by_dist(const void *a, const void *b) {
  const pt__dist *x = a, *y = b;
  if (x->d != y->d) return x->d < y->d ? -1 : 1;
  return (x->i > y->i) - (x->i < y->i);
}

int pt_pareto_take_best(const double *qos, const double *speedup, int n, int take_best_n, int *idx) {
  int nf = pt_pareto_front(qos, speedup, n, idx);
  if (nf < 0 || take_best_n <= nf) return nf;
  char *on = pt__calloc((size_t)(n > 0 ? n : 1), 1);
  pt__dist *rest = pt__malloc((size_t)(n > 0 ? n : 1) * sizeof *rest);
  if (!on || !rest) {
    free(on);
    free(rest);
    pt__error(PT_ENOMEM, "best configs: out of memory for %d points", n);
    return -1;
  }
  for (int k = 0; k < nf; k++) on[idx[k]] = 1;
  int m = 0;
  for (int i = 0; i < n; i++)
    if (!on[i] && !isnan(qos[i]) && !isnan(speedup[i]))
      rest[m++] = (pt__dist){pt_pareto_distance(qos, speedup, idx, nf, qos[i], speedup[i]), i};
  qsort(rest, (size_t)m, sizeof *rest, by_dist);
  int total = nf;
  for (int k = 0; k < m && total < take_best_n; k++) idx[total++] = rest[k].i;
  free(on);
  free(rest);
  return total;
}
