/* The P1 predictor on the GPU, offered through get_proc (backend/backend_ext.h): the model's base,
 * deltas and labels live on the device; each batch of configs uploads its slot lists, runs the
 * kernel of kernels/p1_predict.cu and downloads one count per config. */
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ext.h"
#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/error.h"

typedef struct pt_cu_p1 {
  int rows, cols, n_slots;
  float *base, *delta; /* (rows, cols), (rows, n_slots, cols) */
  int32_t *labels;
  int *slots, *ns, *partial, *correct; /* per batch, grown */
  int cap_n, cap_k;
  int64_t cap_partial;
  int *h_correct;
} pt_cu_p1;

static void cu_p1_free(void *ctx, void *model) {
  pt_cu_p1 *m = model;
  if (!m) return;
  cudaStreamSynchronize(((pt_cuda_ctx *)ctx)->ln->stream);
  cudaFree(m->base), cudaFree(m->delta), cudaFree(m->labels);
  cudaFree(m->slots), cudaFree(m->ns), cudaFree(m->partial), cudaFree(m->correct);
  free(m->h_correct);
  free(m);
}

static pt_status cu_p1_upload(void *ctx, int rows, int cols, int n_slots, const float *base, const float *delta,
                              const int32_t *labels, void **model) {
  pt_cuda_ctx *c = ctx;
  pt_cu_p1 *m = pt__calloc(1, sizeof *m);
  if (!m) return pt__error(PT_ENOMEM, "cuda P1: out of memory");
  m->rows = rows, m->cols = cols, m->n_slots = n_slots;
  size_t nb = (size_t)rows * cols * sizeof(float), nd = nb * (size_t)(n_slots ? n_slots : 1);
  pt_status s = pt__cuda_malloc(c, nb, (void **)&m->base, "the P1 baseline");
  if (s == PT_OK) s = pt__cuda_malloc(c, nd, (void **)&m->delta, "the P1 deltas");
  if (s == PT_OK) s = pt__cuda_malloc(c, (size_t)rows * sizeof(int32_t), (void **)&m->labels, "the P1 labels");
  if (s == PT_OK && cudaMemcpy(m->base, base, nb, cudaMemcpyHostToDevice) != cudaSuccess) s = PT_EBACKEND;
  if (s == PT_OK && n_slots && cudaMemcpy(m->delta, delta, nd, cudaMemcpyHostToDevice) != cudaSuccess) s = PT_EBACKEND;
  if (s == PT_OK && cudaMemcpy(m->labels, labels, (size_t)rows * sizeof(int32_t), cudaMemcpyHostToDevice) != cudaSuccess)
    s = PT_EBACKEND;
  if (s == PT_EBACKEND) pt__error(s, "cuda P1: upload failed: %s", cudaGetErrorString(cudaGetLastError()));
  if (s != PT_OK) {
    cu_p1_free(ctx, m);
    return s;
  }
  *model = m;
  return PT_OK;
}

static pt_status cu_p1_predict(void *ctx, void *model, int n, int max_k, const int *slots, const int *ns,
                               int64_t *correct) {
  pt_cuda_ctx *c = ctx;
  pt_cu_p1 *m = model;
  if (n <= 0) return PT_OK;
  int k = max_k > 0 ? max_k : 1;
  if (n > m->cap_n || k > m->cap_k) {
    cudaStreamSynchronize(c->ln->stream);
    cudaFree(m->slots), cudaFree(m->ns), cudaFree(m->correct), free(m->h_correct);
    m->slots = m->ns = m->correct = m->h_correct = NULL;
    m->cap_n = m->cap_k = 0;
    PT__TRY(pt__cuda_malloc(c, (size_t)n * k * sizeof(int), (void **)&m->slots, "P1 config slots"));
    PT__TRY(pt__cuda_malloc(c, (size_t)n * sizeof(int), (void **)&m->ns, "P1 config slots"));
    PT__TRY(pt__cuda_malloc(c, (size_t)n * sizeof(int), (void **)&m->correct, "P1 counts"));
    if (!(m->h_correct = pt__malloc((size_t)n * sizeof(int)))) return pt__error(PT_ENOMEM, "cuda P1: out of memory");
    m->cap_n = n, m->cap_k = k;
  }
  int64_t np = pt__cu_p1_partial_size(m->rows, m->cols, m->n_slots, n);
  if (np > m->cap_partial) {
    cudaStreamSynchronize(c->ln->stream);
    cudaFree(m->partial);
    m->partial = NULL;
    m->cap_partial = 0;
    PT__TRY(pt__cuda_malloc(c, (size_t)np * sizeof(int), (void **)&m->partial, "P1 partial counts"));
    m->cap_partial = np;
  }
  PT_CUDA_CHECK(cudaMemcpyAsync(m->slots, slots, (size_t)n * k * sizeof(int), cudaMemcpyHostToDevice, c->ln->stream));
  PT_CUDA_CHECK(cudaMemcpyAsync(m->ns, ns, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->ln->stream));
  PT__TRY(pt__cu_p1_predict(c->ln->stream, m->rows, m->cols, m->n_slots, m->base, m->delta, m->labels, n, k, m->slots,
                            m->ns, m->partial, m->correct));
  PT_CUDA_CHECK(cudaMemcpyAsync(m->h_correct, m->correct, (size_t)n * sizeof(int), cudaMemcpyDeviceToHost, c->ln->stream));
  PT_CUDA_CHECK(cudaStreamSynchronize(c->ln->stream));
  for (int i = 0; i < n; i++) correct[i] = m->h_correct[i];
  return PT_OK;
}

pt_backend_proc pt__cuda_get_proc(void *ctx, const char *name) {
  (void)ctx;
  if (!strcmp(name, PT_BACKEND_PROC_P1_UPLOAD)) return (pt_backend_proc)cu_p1_upload;
  if (!strcmp(name, PT_BACKEND_PROC_P1_PREDICT)) return (pt_backend_proc)cu_p1_predict;
  if (!strcmp(name, PT_BACKEND_PROC_P1_FREE)) return (pt_backend_proc)cu_p1_free;
  return NULL;
}
