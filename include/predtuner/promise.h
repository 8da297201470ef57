/* PromiseSim quantisation ranges: from a JSON file, or calibrated on the tuning set. */
#ifndef PREDTUNER_PROMISE_H
#define PREDTUNER_PROMISE_H

#include "predtuner/exec.h"
#include "predtuner/io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads {"<op>": {"input": [lo, hi], "weight": [lo, hi], "bias": [lo, hi], "output": [lo, hi]}, ...}
 * into ranges (pt_graph_num_ops entries, zeroed first). Only convolutions and linear layers may be
 * named; "bias" may be left out for a layer without bias; lo <= hi. */
pt_status pt_promise_ranges_load(const char *path, const pt_graph *g, pt_promise_ranges *ranges);
/* Writes the ranges that are set, in the same format (atomically). */
pt_status pt_promise_ranges_save(const char *path, const pt_graph *g, const pt_promise_ranges *ranges);
/* Calibrates ranges over the whole data set (the exact network, batches of batch_size). */
pt_status pt_promise_calibrate(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, int batch_size,
                               pt_promise_ranges *ranges);

#ifdef __cplusplus
}
#endif
#endif
