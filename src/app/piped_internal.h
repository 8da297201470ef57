/* The piped-binary app (docs/tune-binary.md): metadata and the tensor stream, parsed apart from the process
 * handling so that they can be tested and fuzzed alone. */
#ifndef PT_APP_PIPED_INTERNAL_H
#define PT_APP_PIPED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/status.h"

typedef struct pt__pmeta_knob {
  char *name;
  double speedup;
  int has_priority;
  long priority;   /* baseline_priority */
  unsigned devices;/* PT_DEVICE_* bits; 0 = every device */
} pt__pmeta_knob;

typedef struct pt__pmeta_op {
  char *name;     /* <type>_<index> */
  double cost;    /* op_cost */
  int n_knobs;
  int *knobs;     /* indices into knobs[] */
} pt__pmeta_op;

typedef struct pt__pmeta {
  pt__pmeta_op *ops; /* in op_knobs order */
  int n_ops;
  pt__pmeta_knob *knobs;
  int n_knobs;
  /* absolute, or relative to the metadata file's folder (resolved by the parser) */
  char *tune_labels_path, *conf_path, *fifo_path_r, *fifo_path_w;
} pt__pmeta;

/* Parses M.json (PredTuner's metadata of a piped binary): op sets of op_cost and op_knobs equal,
 * every knob used defined, speedups > 0. dir: the folder relative paths are resolved against. */
pt_status pt__pmeta_parse(const char *text, size_t len, const char *src, const char *dir, pt__pmeta *out);
void pt__pmeta_free(pt__pmeta *m);

/* The binary's answer: tensors back to back, each uint64 ndims, uint64 dims[ndims], float32 data.
 * Concatenated along the first dimension (the others must agree) into rows x cols, trailing
 * dimensions flattened (HPVM writes (N, C, 1, 1)). *data is malloc'ed. */
pt_status pt__parse_hpvm_tensors(const uint8_t *buf, size_t len, const char *src, float **data, int64_t *rows,
                                 int64_t *cols);

#endif
