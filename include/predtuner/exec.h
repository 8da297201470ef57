/* Running a network with loaded weights on a backend. */
#ifndef PREDTUNER_EXEC_H
#define PREDTUNER_EXEC_H

#include <stdint.h>

#include "predtuner/backend.h"
#include "predtuner/graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_exec pt_exec;

/* How one op is computed. Zero-initialised means exact fp32. */
typedef struct pt_op_exec {
  uint8_t fp16; /* FP16Approx: the op in half precision (DESIGN.md 4) */
} pt_op_exec;

/* Uploads g's weights to the backend. Every weight must be loaded (pt_weights_load or
 * pt_graph_init_random). The graph must outlive the executor. */
pt_status pt_exec_create(const pt_graph *g, pt_backend *be, pt_exec **out);
void pt_exec_free(pt_exec *ex);

/* Runs n images: input (n, C, H, W) host floats -> output (n, num_classes) host floats.
 * ops: NULL (all exact) or one entry per op, indexed like pt_graph_op_name. */
pt_status pt_exec_run(pt_exec *ex, const float *input, int n, const pt_op_exec *ops, float *output);

#ifdef __cplusplus
}
#endif
#endif
