/* The pickle VM's state and primitives, shared by the opcode interpreter (pickle.c) and the model of
 * what torch.save's pickles call (pickle_torch.c). */
#ifndef PT_IO_PICKLE_VM_H
#define PT_IO_PICKLE_VM_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "io/pickle.h"

struct pt__pickle {
  pt__pk **all; /* every object made, for freeing */
  size_t n_all, cap_all;
  size_t consumed;
};

/* One run of the VM over a pickle program. */
typedef struct pt__pkvm {
  pt__pickle *p;
  const uint8_t *b;
  size_t len, pos;
  const char *what;
  pt__pk **stack;
  int sp, cap_stack;
  int *marks;
  int n_marks, cap_marks;
  pt__pk **memo;
  size_t n_memo;
} pt__pkvm;

/* "<what>: pickle: <msg> (at byte <pos>)" as PT_EFORMAT. */
pt_status pt__pkvm_bad(pt__pkvm *m, const char *fmt, ...) PT__PRINTF(2, 3);
/* A new object of kind, owned by the pickle (NULL when out of memory). */
pt__pk *pt__pkvm_mk(pt__pkvm *m, pt__pk_kind kind);
/* Appends x to o's items; nonzero when out of memory. */
int pt__pkvm_add(pt__pk *o, pt__pk *x);
/* Pushes o (NULL: the allocation that made it failed) / pops the top of the stack. */
pt_status pt__pkvm_push(pt__pkvm *m, pt__pk *o);
pt_status pt__pkvm_pop(pt__pkvm *m, pt__pk **o);
/* BINPERSID: a ('storage', type, key, location, numel) id becomes a storage object. */
pt_status pt__pkvm_persid(pt__pkvm *m);
/* REDUCE: torch's tensor and parameter rebuilds, OrderedDict, or a record of the call. */
pt_status pt__pkvm_reduce(pt__pkvm *m);

#endif
