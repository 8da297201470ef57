/* Compute backends (CPU always; CUDA when built with it), found through a registry. */
#ifndef PREDTUNER_BACKEND_H
#define PREDTUNER_BACKEND_H

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_backend pt_backend;

/* Backends compiled into this library, in preference order ("cuda", "cpu"). */
int pt_backend_count(void);
const char *pt_backend_name_at(int i);
/* Whether backend i can run here (a GPU for cuda); *why says why not (static string). */
int pt_backend_available_at(int i, const char **why);

/* name: "cpu", "cuda" or "auto" (the first available). threads: CPU threads (0 = OpenMP's default). */
pt_status pt_backend_create(const char *name, int threads, pt_backend **out);
void pt_backend_free(pt_backend *be);
const char *pt_backend_name(const pt_backend *be);
/* One line about the device ("CPU, 2 threads, OpenBLAS 0.3.21"). */
const char *pt_backend_describe(const pt_backend *be);

#ifdef __cplusplus
}
#endif
#endif
