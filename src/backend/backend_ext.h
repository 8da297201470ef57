/* Optional backend features, found by name through the interface's get_proc (as ggml's
 * get_proc_address): a backend that has a feature returns its functions for these names; every other
 * backend returns NULL (or has no get_proc at all). Layers above use the wrappers below and never
 * see the interface table. */
#ifndef PT_BACKEND_EXT_H
#define PT_BACKEND_EXT_H

#include <stdint.h>

#include "backend/backend_iface.h"

/* ---- P1 on the device (the CUDA backend has it) ----
 * "p1_upload" copies a model once: base (rows, cols), delta (rows, n_slots, cols) sample-major,
 * labels (rows), all host memory. "p1_predict" scores n configs, each listing ns[k] delta slots in
 * slots (n, max_k), and writes to host correct (n) how many rows' argmax of base + sum of deltas
 * equals the label. "p1_free" releases a model. */
#define PT_BACKEND_PROC_P1_UPLOAD "p1_upload"
#define PT_BACKEND_PROC_P1_PREDICT "p1_predict"
#define PT_BACKEND_PROC_P1_FREE "p1_free"
typedef pt_status (*pt_backend_p1_upload_fn)(void *ctx, int rows, int cols, int n_slots, const float *base,
                                            const float *delta, const int32_t *labels, void **model);
typedef pt_status (*pt_backend_p1_predict_fn)(void *ctx, void *model, int n, int max_k, const int *slots,
                                             const int *ns, int64_t *correct);
typedef void (*pt_backend_p1_free_fn)(void *ctx, void *model);

/* ---- which kernels ran the convolutions (the CPU backend has it) ----
 * "conv_paths" adds to counts (PT_CONV_PATHS) how many convolutions ran on each path since the
 * backend was made: the backend's own kernels, or oneDNN exact, perforated, sampled; and, of the
 * own ones, how many ran on the direct kernel over the kept elements (cpu_direct.c). Tests check
 * that a path they mean to cover really ran; benchmarks say which one they timed. */
#define PT_BACKEND_PROC_CONV_PATHS "conv_paths"
enum {
  PT_CONV_PATH_OWN = 0,
  PT_CONV_PATH_DNNL_EXACT,
  PT_CONV_PATH_DNNL_PERF,
  PT_CONV_PATH_DNNL_SAMP,
  PT_CONV_PATH_OWN_DIRECT,
  PT_CONV_PATHS
};
typedef void (*pt_backend_conv_paths_fn)(void *ctx, int64_t counts[PT_CONV_PATHS]);

/* The backend's function for name, or NULL when it has none. */
pt_backend_proc pt__backend_get_proc(const pt_backend *be, const char *name);

/* Whether be scores P1 on its device. */
int pt__backend_has_p1(const pt_backend *be);
/* The wrappers: PT_EUNSUPPORTED (with a message) on a backend without P1. */
pt_status pt__backend_p1_upload(pt_backend *be, int rows, int cols, int n_slots, const float *base, const float *delta,
                                const int32_t *labels, void **model);
pt_status pt__backend_p1_predict(pt_backend *be, void *model, int n, int max_k, const int *slots, const int *ns,
                                 int64_t *correct);
void pt__backend_p1_free(pt_backend *be, void *model);

#endif
