/* Thresholds and best-config selection on hand-made point sets (docs/design.md, "The tuning pipeline"). */
#include <criterion/criterion.h>
#include <math.h>

#include "predtuner/pareto.h"

Test(pareto, threshold_arithmetic) {
  pt_thresholds t = pt_thresholds_compute(90.0, 89.0, 2.0, NAN, 1);
  cr_assert_float_eq(t.tuner, 88.0, 1e-12);
  cr_assert_float_eq(t.tune_keep, 88.0, 1e-12);
  cr_assert_float_eq(t.test_keep, 87.0, 1e-12);
  t = pt_thresholds_compute(90.0, 89.0, 2.0, 3.0, 1);
  cr_assert_float_eq(t.tuner, 88.0, 1e-12);
  cr_assert_float_eq(t.tune_keep, 87.0, 1e-12);
  cr_assert_float_eq(t.test_keep, 86.0, 1e-12);
  t = pt_thresholds_compute(90.0, 89.0, 85.0, 84.0, 0);
  cr_assert(t.tuner == 85.0 && t.tune_keep == 84.0 && t.test_keep == 84.0);
  t = pt_thresholds_compute(90.0, 89.0, 85.0, NAN, 0);
  cr_assert(t.tune_keep == 85.0 && t.test_keep == 85.0);
}

/* A(90,1.0) B(89,1.5) C(88,1.4) D(87,2.0) E(87,1.9) F(85,2.0) G(86,0.5) */
static const double Q[] = {90, 89, 88, 87, 87, 85, 86}, S[] = {1.0, 1.5, 1.4, 2.0, 1.9, 2.0, 0.5};

Test(pareto, front_drops_every_point_another_matches_or_beats) {
  int idx[7];
  int nf = pt_pareto_front(Q, S, 7, idx);
  cr_assert_eq(nf, 3);
  cr_assert(idx[0] == 3 && idx[1] == 1 && idx[2] == 0, "front %d %d %d", idx[0], idx[1], idx[2]); /* D, B, A */
  /* F ties D in speedup with lower QoS, E ties D in QoS with lower speedup: both dropped */
}

Test(pareto, duplicates_keep_one_and_nan_is_never_taken) {
  const double q[] = {80, 80, NAN, 70}, s[] = {2, 2, 9, 3};
  int idx[4];
  int nf = pt_pareto_front(q, s, 4, idx);
  cr_assert_eq(nf, 2);
  cr_assert(idx[0] == 3 && idx[1] == 0);
  cr_assert_eq(pt_pareto_take_best(q, s, 4, 10, idx), 3); /* the duplicate, never the NaN */
  cr_assert_eq(idx[2], 1);
}

Test(pareto, distance_rule) {
  /* front (0, 2) -- (2, 0): the line q + s = 2 */
  const double q[] = {0, 2, 0, 3, 1}, s[] = {2, 0, 0, 1, 0.5};
  int front[2] = {0, 1};
  cr_assert_float_eq(pt_pareto_distance(q, s, front, 2, 0, 0), sqrt(2.0), 1e-12);
  cr_assert_float_eq(pt_pareto_distance(q, s, front, 2, 1, 0.5), 0.5 / sqrt(2.0), 1e-12);
  /* beyond the last point: still the last segment's line */
  cr_assert_float_eq(pt_pareto_distance(q, s, front, 2, 3, 1), 2.0 / sqrt(2.0), 1e-12);
  /* three points: (0,4) (1,3) (3,1) (4,0 not on front): a point at q=2 uses the second segment */
  const double q3[] = {0, 1, 3}, s3[] = {4, 3.5, 1};
  int f3[3] = {0, 1, 2};
  double d = pt_pareto_distance(q3, s3, f3, 3, 2, 0); /* line through (1,3.5) and (3,1) */
  double dx = 2, dy = -2.5;
  cr_assert_float_eq(d, fabs(dx * (0 - 3.5) - dy * (2 - 1)) / hypot(dx, dy), 1e-12);
  /* below the first point's QoS: the first segment, through (0,4) and (1,3.5) */
  d = pt_pareto_distance(q3, s3, f3, 3, -1, 0);
  cr_assert_float_eq(d, fabs(1 * (0 - 4) - (-0.5) * (-1 - 0)) / hypot(1, -0.5), 1e-12);
  /* one-point front: Euclidean distance */
  int f1[1] = {1};
  cr_assert_float_eq(pt_pareto_distance(q, s, f1, 1, 5, 4), 5.0, 1e-12);
}

Test(pareto, take_best_n_smaller_and_larger_than_the_front) {
  int idx[7];
  /* smaller than the front: the whole front and nothing else */
  cr_assert_eq(pt_pareto_take_best(Q, S, 7, 2, idx), 3);
  cr_assert_eq(pt_pareto_take_best(Q, S, 7, 0, idx), 3);
  /* larger: the front, then the others by distance to it */
  int n = pt_pareto_take_best(Q, S, 7, 5, idx);
  cr_assert_eq(n, 5);
  int front[3] = {3, 1, 0};
  double dist[7];
  for (int i = 0; i < 7; i++) dist[i] = pt_pareto_distance(Q, S, front, 3, Q[i], S[i]);
  /* C(88,1.4) lies between D and B: its segment is D-B; E and F are near D; G is far */
  cr_assert(dist[2] < dist[6] && dist[4] < dist[6] && dist[5] < dist[6]);
  cr_assert(dist[idx[3]] <= dist[idx[4]]);
  for (int k = 3; k < 5; k++) cr_assert(idx[k] != 6, "the farthest point was taken");
  cr_assert_eq(pt_pareto_take_best(Q, S, 7, 100, idx), 7);
  cr_assert_eq(idx[6], 6);
}

Test(pareto, one_point_front) {
  const double q[] = {95, 90, 91, 80}, s[] = {3, 1, 2.5, 2.9};
  int idx[4];
  cr_assert_eq(pt_pareto_front(q, s, 4, idx), 1);
  cr_assert_eq(idx[0], 0);
  cr_assert_eq(pt_pareto_take_best(q, s, 4, 2, idx), 2);
  /* nearest by Euclidean distance to (95, 3): (91, 2.5) at 4.03 before (90, 1) and (80, 2.9) */
  cr_assert_eq(idx[1], 2);
}
