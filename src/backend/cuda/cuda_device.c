/* The device: how many there are, memory with the messages users need, scratch buffers per lane, and
 * the lanes themselves (a stream with its cuDNN and cuBLAS handles). The backend's table is in
 * cuda_backend.c, the convolutions in cuda_conv.c; both build on what is here. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"

int pt__cuda_device_count(const char **why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *why = cudaGetErrorString(e);
    return 0;
  }
  if (n == 0) *why = "no CUDA device";
  return n;
}

pt_status pt__cuda_malloc(pt_cuda_ctx *c, size_t bytes, void **ptr, const char *what) {
  *ptr = NULL;
  cudaError_t e = cudaMalloc(ptr, bytes ? bytes : 256);
  if (e == cudaSuccess) return PT_OK;
  cudaGetLastError(); /* clear the sticky-free error state of a failed allocation */
  size_t fr = 0, tot = 0;
  cudaMemGetInfo(&fr, &tot);
  if (e == cudaErrorMemoryAllocation)
    return pt__error(PT_ENOMEM,
                     "cuda backend: out of GPU memory allocating %.1f MiB for %s (%.1f MiB free of %.1f MiB); try a "
                     "smaller --batch",
                     (double)bytes / 1048576.0, what, (double)fr / 1048576.0, (double)tot / 1048576.0);
  return pt__error(PT_EBACKEND, "cuda backend: cudaMalloc(%zu) for %s: %s", bytes, what, cudaGetErrorString(e));
}

pt_status pt__cuda_scratch(pt_cuda_ctx *c, int slot, size_t bytes, void **ptr) {
  if (bytes > c->ln->scr_bytes[slot] || !c->ln->scr[slot]) {
    /* the old buffer may still be read by queued work: finish it before freeing */
    PT_CUDA_CHECK(cudaStreamSynchronize(c->ln->stream));
    cudaFree(c->ln->scr[slot]);
    c->ln->scr[slot] = NULL;
    c->ln->scr_bytes[slot] = 0;
    size_t grown = bytes + bytes / 8; /* a little headroom: shapes grow a bit between layers */
    PT__TRY(pt__cuda_malloc(c, grown, &c->ln->scr[slot], "scratch"));
    c->ln->scr_bytes[slot] = grown;
  }
  *ptr = c->ln->scr[slot];
  return PT_OK;
}

/* ---- lanes ---- */

void pt__cuda_lane_free(pt_cu_lane *l) {
  if (l->stream) cudaStreamSynchronize(l->stream);
  for (int i = 0; i < PT_CU_NSCR; i++) cudaFree(l->scr[i]);
  cudaFree(l->ws);
  for (int i = 0; l->ev && i < PT_CU_EVENTS; i++)
    if (l->ev[i]) cudaEventDestroy(l->ev[i]);
  free(l->ev);
  if (l->blas) cublasDestroy(l->blas);
  if (l->dnn) cudnnDestroy(l->dnn);
  if (l->stream) cudaStreamDestroy(l->stream);
  memset(l, 0, sizeof *l);
}

pt_status pt__cuda_lane_make(pt_cu_lane *l) {
  cudaError_t e = cudaStreamCreateWithFlags(&l->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) {
    l->stream = NULL;
    return pt__error(PT_EBACKEND, "cuda backend: cudaStreamCreate: %s", cudaGetErrorString(e));
  }
  pt_status s = PT_OK;
  cudnnStatus_t ds = cudnnCreate(&l->dnn);
  if (ds != CUDNN_STATUS_SUCCESS) {
    l->dnn = NULL;
    s = pt__error(PT_EBACKEND, "cuda backend: cudnnCreate: %s", cudnnGetErrorString(ds));
  }
  if (s == PT_OK) cudnnSetStream(l->dnn, l->stream);
  cublasStatus_t bs = s == PT_OK ? cublasCreate(&l->blas) : CUBLAS_STATUS_SUCCESS;
  if (bs != CUBLAS_STATUS_SUCCESS) {
    l->blas = NULL;
    s = pt__error(PT_EBACKEND, "cuda backend: cublasCreate: %s", cublasGetStatusString(bs));
  }
  if (s == PT_OK) {
    cublasSetStream(l->blas, l->stream);
    /* fp32 GEMMs stay fp32 (no TF32): the CPU backend is the reference at 1e-5 */
    cublasSetMathMode(l->blas, CUBLAS_DEFAULT_MATH);
  }
  if (s != PT_OK) pt__cuda_lane_free(l);
  return s;
}

pt_status pt__cuda_sync_all(pt_cuda_ctx *c) {
  for (int i = 0; i < PT_CU_LANES_MAX; i++)
    if (c->lane[i].stream) PT_CUDA_CHECK(cudaStreamSynchronize(c->lane[i].stream));
  return PT_OK;
}
