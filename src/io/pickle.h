/* The subset of Python's pickle that torch.save writes for state_dicts and checkpoints. Nothing is
 * executed: globals become names, calls (REDUCE, NEWOBJ) become records of what would be called,
 * except the few torch rebuild functions and OrderedDict, which become tensors and dicts. */
#ifndef PT_IO_PICKLE_H
#define PT_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/status.h"
#include "predtuner/tensor.h"

typedef enum pt__pk_kind {
  PK_NONE, PK_BOOL, PK_INT, PK_FLOAT, PK_STR, PK_BYTES, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL,
  PK_OBJECT,  /* the result of calling something we do not model */
  PK_STORAGE, /* a persistent id ('storage', type, key, location, numel[, view]) */
  PK_TENSOR,  /* torch._utils._rebuild_tensor(_v2) / _rebuild_parameter */
} pt__pk_kind;

typedef struct pt__pk pt__pk;
struct pt__pk {
  pt__pk_kind kind;
  int64_t i;        /* INT, BOOL */
  double f;         /* FLOAT */
  char *s;          /* STR, BYTES (NUL-terminated too); GLOBAL: "module.name"; STORAGE: key */
  size_t slen;
  pt__pk **items;   /* TUPLE, LIST; DICT: key, value, key, value, ...; OBJECT: callable, args */
  int n, cap;
  /* STORAGE */
  char dtype[8];    /* "F32", "F16", "BF16", "F64", "I64", ... */
  int64_t numel;
  /* TENSOR */
  pt__pk *storage;
  int64_t offset;   /* in elements */
  int ndim;
  int64_t size[PT_MAX_DIMS], stride[PT_MAX_DIMS];
};

typedef struct pt__pickle pt__pickle; /* owns every object it made */

/* Runs the pickle program in data (which must end with STOP); *result is the unpickled value. */
pt_status pt__pickle_load(const void *data, size_t len, const char *what, pt__pickle **out, pt__pk **result);
/* Bytes consumed by the last load (the legacy format has several pickles back to back). */
size_t pt__pickle_consumed(const pt__pickle *p);
void pt__pickle_free(pt__pickle *p);
/* Value of key (a string) in a DICT, or NULL. */
pt__pk *pt__pk_get(const pt__pk *dict, const char *key);

#endif
