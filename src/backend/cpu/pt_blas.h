/* The one place that knows we use OpenBLAS's CBLAS. */
#ifndef PT_BLAS_H
#define PT_BLAS_H

#include <cblas.h>

void openblas_set_num_threads(int num_threads);
char *openblas_get_config(void);

static inline void pt__blas_set_threads(int n) { openblas_set_num_threads(n); }
static inline const char *pt__blas_describe(void) { return openblas_get_config(); }

#endif
