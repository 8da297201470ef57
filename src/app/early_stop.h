/* Early stopping's bound from running sums (early_stop.c), shared by pt_qos_bound and the
 * measurement loop of pt_measure_many_stop. */
#ifndef PT_APP_EARLY_STOP_H
#define PT_APP_EARLY_STOP_H

#include <stdint.h>

#include "predtuner/measure.h"

/* A config stops when its bound is at or below the threshold by this margin: the bound and the QoS
 * measured in full sum the same accuracies in other orders. */
#define PT__STOP_MARGIN 1e-9

/* pt_qos_bound from what was measured: acc_sum (the measured batches' accuracies summed, percent),
 * k right of m images, and the sizes of the `rest` remaining batches. */
double pt__qos_bound_sums(const pt_stop_rule *rule, int n_batches, double acc_sum, int64_t k, int64_t m, int rest,
                          const int *rest_sizes);

#endif
