/* Early stopping's bounds (docs/design.md, "Early stopping"). QoS is PredTuner's: the mean over
 * batches of each batch's accuracy, so a remaining batch adds at most 100 / n_batches points
 * whatever its size.
 *
 * confident: the images are taken as independent trials that are right with an unknown
 * probability p. The remaining batches form G runs of equal size (G <= 2: the full ones and a
 * partial last one); each run's accuracies sum to 100 x (its batches) x (its fraction right), one
 * binomial. With L = ln((B - 1)(1 + G) / delta) (the rule is checked after each of the first B - 1
 * batches): the measured images (k right of m) bound p by p_u, the
 * largest p with m * KL(k/m || p) <= L (Chernoff: a p above it makes k or fewer right that
 * unlikely); given p <= p_u, a run of N_g images is right on more than a fraction q_g, the smallest q
 * with N_g * KL(q || p_u) >= L, with probability at most delta / ((B - 1)(1 + G)). With all bounds of
 * all checks holding (probability >= 1 - delta), the QoS is at most (the measured batches' accuracies + 100
 * x sum over runs of (its batches) x q_g) / n_batches. */
#include <math.h>
#include <string.h>

#include "app/early_stop.h"

static const char *const NAMES[] = {"off", "exact", "confident"};

const char *pt_early_stop_name(pt_early_stop m) { return (int)m >= 0 && (int)m < 3 ? NAMES[m] : NULL; }

int pt_early_stop_parse(const char *name) {
  for (int i = 0; name && i < 3; i++)
    if (!strcmp(NAMES[i], name)) return i;
  return -1;
}

/* KL(a || b) between Bernoulli distributions (0 log 0 = 0; infinite where b leaves a's support). */
static double kl(double a, double b) {
  double r = 0;
  if (a > 0) r += b > 0 ? a * log(a / b) : INFINITY;
  if (a < 1) r += b < 1 ? (1 - a) * log((1 - a) / (1 - b)) : INFINITY;
  return r;
}

/* The largest p in [a, 1] with m * KL(a || p) <= lim (KL grows with p above a). */
static double upper_param(double a, double m, double lim) {
  if (m * kl(a, 1.0) <= lim) return 1.0;
  double lo = a, hi = 1.0;
  for (int i = 0; i < 60; i++) {
    double mid = 0.5 * (lo + hi);
    if (m * kl(a, mid) <= lim) lo = mid;
    else hi = mid;
  }
  return hi; /* the side that keeps the bound an upper one */
}

/* The smallest q in [p, 1] with n * KL(q || p) >= lim, or 1 when even q = 1 is not that unlikely. */
static double upper_frac(double p, double n, double lim) {
  if (n * kl(1.0, p) < lim) return 1.0;
  double lo = p, hi = 1.0;
  for (int i = 0; i < 60; i++) {
    double mid = 0.5 * (lo + hi);
    if (n * kl(mid, p) >= lim) hi = mid;
    else lo = mid;
  }
  return hi;
}

double pt__qos_bound_sums(const pt_stop_rule *rule, int n_batches, double acc_sum, int64_t k, int64_t m, int rest,
                          const int *rest_sizes) {
  if (rest <= 0) return acc_sum / n_batches;
  if (rule->mode != PT_EARLY_STOP_CONFIDENT) return (acc_sum + 100.0 * rest) / n_batches;
  if (m <= 0) return 100.0;
  /* runs of equal-sized remaining batches (all full but the last): a run's batches are one binomial */
  int runs = 1;
  for (int j = 1; j < rest; j++) runs += rest_sizes[j] != rest_sizes[j - 1];
  const double delta = rule->delta > 0 && rule->delta < 1 ? rule->delta : 1e-4;
  /* the rule is checked after each of the first n_batches - 1 batches, each check on 1 + runs bounds:
   * every one of them may fail with delta / ((n_batches - 1) (1 + runs)) */
  const double checks = n_batches > 1 ? n_batches - 1 : 1;
  const double lim = log(checks * (1.0 + runs) / delta);
  const double pu = upper_param((double)k / (double)m, (double)m, lim);
  double ub = acc_sum;
  for (int j = 0; j < rest;) {
    int r = 1;
    while (j + r < rest && rest_sizes[j + r] == rest_sizes[j]) r++;
    ub += 100.0 * r * upper_frac(pu, (double)r * rest_sizes[j], lim);
    j += r;
  }
  return ub / n_batches;
}

double pt_qos_bound(const pt_stop_rule *rule, int n_batches, const int *sizes, const int *correct, int done) {
  if (!rule || n_batches < 1 || done < 0 || done > n_batches || !sizes || (done && !correct)) return NAN;
  for (int b = 0; b < n_batches; b++)
    if (sizes[b] < 1 || (b < done && (correct[b] < 0 || correct[b] > sizes[b]))) return NAN;
  double acc = 0;
  int64_t k = 0, m = 0;
  for (int b = 0; b < done; b++) {
    acc += 100.0 * correct[b] / sizes[b]; /* as pt_topk_accuracy computes a batch's accuracy */
    k += correct[b];
    m += sizes[b];
  }
  return pt__qos_bound_sums(rule, n_batches, acc, k, m, n_batches - done, sizes + done);
}
