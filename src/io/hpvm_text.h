/* HPVM's config text: the writer that export-hpvm (tuner/hpvm_export.c) and the piped-binary app
 * (app/piped.c) share. */
#ifndef PT_IO_HPVM_TEXT_H
#define PT_IO_HPVM_TEXT_H

#include <stddef.h>

#include "io/fileutil.h"
#include "predtuner/graph.h"

/* One tensor op of an HPVM line: its HPVM type and where its knob comes from. */
typedef struct pt__hpvm_op {
  char type[32]; /* conv, mul, add, relu, tanh, pool_max, pool_mean, group_conv, batchnorm, softmax */
  int op;        /* index into the config's ops, or -1: an add taking the precision of the op before */
} pt__hpvm_op;

/* HPVM's knob type of a knob name ("fp32", "fp16", "perf", "perf_fp16", "samp", "samp_fp16"), or NULL
 * for a knob HPVM does not know. */
const char *pt__hpvm_knob_type(const char *knob);

/* The HPVM op sequence of a network (*out malloc'ed, *n ops), op indices into the graph's ops. */
pt_status pt__hpvm_ops_from_graph(const pt_graph *g, pt__hpvm_op **out, int *n);
/* HPVM-style op names (<type>_<index>, indices 0..n_ops-1 in any order): *out gets the types in index
 * order and order[index] the position of that name. Returns 0 (nothing allocated) when the names are
 * not of that form, -1 when out of memory (error set), 1 otherwise. */
int pt__hpvm_ops_from_names(int n_ops, char *const *names, pt__hpvm_op **out, int *order);


/* One config block: "+++++", the header "conf<no> speedup 1.0 test_qos loss", a line per fused group
 * of ops, "-----". knob[op] is the knob of config op `op` (pt__hpvm_op.op); an add without an op
 * takes the precision of the op before it. */
pt_status pt__hpvm_put_block(pt__text *t, int conf_no, double speedup, double test_qos, double loss,
                             const pt__hpvm_op *h, int nh, const char *const *knob);

/* HPVM's config text ("0.0" and one block, speedup 1.0, QoS 1.0, loss 0.0: what PredTuner writes for
 * a piped binary) for one config: ops named <type>_<index> (indices 0..n_ops-1 in any order), with
 * their knob names. *text is malloc'ed. */
pt_status pt__hpvm_config_text(int n_ops, char *const *names, const char *const *knobs, char **text, size_t *len);

#endif
