/* Choosing the best configs (docs/design.md, "The tuning pipeline"): thresholds, the Pareto front in
 * the (QoS, speedup) plane, and the kept configs nearest to it. */
#ifndef PREDTUNER_PARETO_H
#define PREDTUNER_PARETO_H

#ifdef __cplusplus
extern "C" {
#endif

/* The absolute thresholds of a tuning run. Relative: tuner = base_tune - tuner_threshold, tune_keep =
 * base_tune - keep, test_keep = base_test - keep. Absolute: tuner = tuner_threshold and both keeps =
 * keep. keep_threshold NaN means "same as tuner_threshold" (PredTuner's default). */
typedef struct pt_thresholds {
  double tuner, tune_keep, test_keep;
} pt_thresholds;

pt_thresholds pt_thresholds_compute(double base_tune_qos, double base_test_qos, double tuner_threshold,
                                    double keep_threshold, int relative);

/* The Pareto-efficient points of (qos[i], speedup[i]), both higher-better: a point is dropped when
 * another is >= in both coordinates; of exact duplicates the lowest index is kept; points with a NaN
 * coordinate are never on the front. Writes their indices to idx sorted by QoS ascending (speedup
 * then descends) and returns how many; -1 when out of memory (pt_last_error says so). */
int pt_pareto_front(const double *qos, const double *speedup, int n, int *idx);

/* Distance of (q, s) to the front given by the nf indices in front (as pt_pareto_front returns
 * them): the perpendicular distance to the line through the front segment whose QoS interval holds
 * q (the first or last segment beyond the ends), or the Euclidean distance to the point when the
 * front has one point. */
double pt_pareto_distance(const double *qos, const double *speedup, const int *front, int nf, double q, double s);

/* The best configs: the front, then, while fewer than take_best_n, the other points nearest to the
 * front (ties: lower index first). Writes indices to idx (room for n) and returns how many:
 * max(front size, min(take_best_n, valid points)), or -1 when out of memory. take_best_n 0 means the
 * front only. */
int pt_pareto_take_best(const double *qos, const double *speedup, int n, int take_best_n, int *idx);

#ifdef __cplusplus
}
#endif
#endif
