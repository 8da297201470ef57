/* The CUDA backend: device memory through plain cudaMalloc, one stream, cuDNN for exact
 * convolutions, cuBLAS for GEMMs, and the kernels in kernels/ (*.cu) for everything else. It registers
 * itself as "cuda" (CMake lists it before "cpu", so "auto" picks it where a GPU is present). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "predtuner/log.h"

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
  if (bytes > c->scr_bytes[slot] || !c->scr[slot]) {
    /* the old buffer may still be read by queued work: finish it before freeing */
    PT_CUDA_CHECK(cudaStreamSynchronize(c->stream));
    cudaFree(c->scr[slot]);
    c->scr[slot] = NULL;
    c->scr_bytes[slot] = 0;
    size_t grown = bytes + bytes / 8; /* a little headroom: shapes grow a bit between layers */
    PT__TRY(pt__cuda_malloc(c, grown, &c->scr[slot], "scratch"));
    c->scr_bytes[slot] = grown;
  }
  *ptr = c->scr[slot];
  return PT_OK;
}

static void cu_destroy(void *ctx) {
  pt_cuda_ctx *c = ctx;
  if (!c) return;
  if (c->stream) cudaStreamSynchronize(c->stream);
  pt__cuda_conv_cache_free(c);
  for (int i = 0; i < PT_CU_NSCR; i++) cudaFree(c->scr[i]);
  cudaFree(c->ws);
  if (c->blas) cublasDestroy(c->blas);
  if (c->dnn) cudnnDestroy(c->dnn);
  if (c->stream) cudaStreamDestroy(c->stream);
  free(c);
}

static const char *cu_describe(void *ctx) { return ((pt_cuda_ctx *)ctx)->desc; }

static pt_status cu_alloc(void *ctx, size_t bytes, void **ptr) {
  return pt__cuda_malloc(ctx, (bytes + 255) & ~(size_t)255, ptr, "a tensor");
}
static void cu_release(void *ctx, void *ptr) {
  pt_cuda_ctx *c = ctx;
  cudaStreamSynchronize(c->stream); /* queued kernels may still read it */
  cudaFree(ptr);
}
static pt_status cu_upload(void *ctx, void *dst, const void *src, size_t bytes) {
  pt_cuda_ctx *c = ctx;
  /* pageable host memory: the copy has taken the bytes when it returns, so src may be reused */
  PT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->stream));
  return PT_OK;
}
static pt_status cu_download(void *ctx, void *dst, const void *src, size_t bytes) {
  pt_cuda_ctx *c = ctx;
  PT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->stream));
  PT_CUDA_CHECK(cudaStreamSynchronize(c->stream));
  return PT_OK;
}
static pt_status cu_sync(void *ctx) {
  PT_CUDA_CHECK(cudaStreamSynchronize(((pt_cuda_ctx *)ctx)->stream));
  return PT_OK;
}

static pt_status cu_activation(void *ctx, pt_op_type type, int64_t count, int fp16, const float *x, float *y) {
  if (type != PT_OP_RELU && type != PT_OP_TANH)
    return pt__error(PT_EUNSUPPORTED, "cuda activation: %s is not an activation", pt_op_type_name(type));
  return pt__cu_activation(((pt_cuda_ctx *)ctx)->stream, type == PT_OP_RELU, count, fp16, x, y);
}
static pt_status cu_pool2d(void *ctx, const pt_pool_desc *d, const float *x, float *y) {
  return pt__cu_pool2d(((pt_cuda_ctx *)ctx)->stream, d, x, y);
}
static pt_status cu_batchnorm(void *ctx, int n, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                              const float *b, const float *mean, const float *var, float *y) {
  return pt__cu_batchnorm(((pt_cuda_ctx *)ctx)->stream, n, c, hw, eps, fp16, x, w, b, mean, var, y);
}
static pt_status cu_add(void *ctx, int64_t count, int fp16, const float *a, const float *b, float *y) {
  return pt__cu_add(((pt_cuda_ctx *)ctx)->stream, count, fp16, a, b, y);
}
static pt_status cu_softmax(void *ctx, int n, int c, int fp16, const float *x, float *y) {
  return pt__cu_softmax(((pt_cuda_ctx *)ctx)->stream, n, c, fp16, x, y);
}
static pt_status cu_quantize(void *ctx, int64_t count, float lo, float hi, const float *x, float *y) {
  return pt__cu_quantize(((pt_cuda_ctx *)ctx)->stream, count, lo, hi, x, y);
}
static pt_status cu_noise(void *ctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                          float *y) {
  return pt__cu_promise_noise(((pt_cuda_ctx *)ctx)->stream, count, scale, key, first, x, y);
}
static pt_status cu_round_f16(void *ctx, int64_t count, const float *x, float *y) {
  return pt__cu_round_f16(((pt_cuda_ctx *)ctx)->stream, count, x, y);
}
static pt_status cu_minmax(void *ctx, int64_t count, const float *x, float range[2]) {
  pt_cuda_ctx *c = ctx;
  void *scr;
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_RED, 2 * PT_CU_MINMAX_BLOCKS * sizeof(float), &scr));
  return pt__cu_minmax(c->stream, count, x, scr, range);
}

/* ---- P1 on the device ---- */
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
  cudaStreamSynchronize(((pt_cuda_ctx *)ctx)->stream);
  cudaFree(m->base), cudaFree(m->delta), cudaFree(m->labels);
  cudaFree(m->slots), cudaFree(m->ns), cudaFree(m->partial), cudaFree(m->correct);
  free(m->h_correct);
  free(m);
}

static pt_status cu_p1_upload(void *ctx, int rows, int cols, int n_slots, const float *base, const float *delta,
                              const int32_t *labels, void **model) {
  pt_cuda_ctx *c = ctx;
  pt_cu_p1 *m = calloc(1, sizeof *m);
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
    cudaStreamSynchronize(c->stream);
    cudaFree(m->slots), cudaFree(m->ns), cudaFree(m->correct), free(m->h_correct);
    m->slots = m->ns = m->correct = m->h_correct = NULL;
    m->cap_n = m->cap_k = 0;
    PT__TRY(pt__cuda_malloc(c, (size_t)n * k * sizeof(int), (void **)&m->slots, "P1 config slots"));
    PT__TRY(pt__cuda_malloc(c, (size_t)n * sizeof(int), (void **)&m->ns, "P1 config slots"));
    PT__TRY(pt__cuda_malloc(c, (size_t)n * sizeof(int), (void **)&m->correct, "P1 counts"));
    if (!(m->h_correct = malloc((size_t)n * sizeof(int)))) return pt__error(PT_ENOMEM, "cuda P1: out of memory");
    m->cap_n = n, m->cap_k = k;
  }
  int64_t np = pt__cu_p1_partial_size(m->rows, m->cols, m->n_slots, n);
  if (np > m->cap_partial) {
    cudaStreamSynchronize(c->stream);
    cudaFree(m->partial);
    m->partial = NULL;
    m->cap_partial = 0;
    PT__TRY(pt__cuda_malloc(c, (size_t)np * sizeof(int), (void **)&m->partial, "P1 partial counts"));
    m->cap_partial = np;
  }
  PT_CUDA_CHECK(cudaMemcpyAsync(m->slots, slots, (size_t)n * k * sizeof(int), cudaMemcpyHostToDevice, c->stream));
  PT_CUDA_CHECK(cudaMemcpyAsync(m->ns, ns, (size_t)n * sizeof(int), cudaMemcpyHostToDevice, c->stream));
  PT__TRY(pt__cu_p1_predict(c->stream, m->rows, m->cols, m->n_slots, m->base, m->delta, m->labels, n, k, m->slots,
                            m->ns, m->partial, m->correct));
  PT_CUDA_CHECK(cudaMemcpyAsync(m->h_correct, m->correct, (size_t)n * sizeof(int), cudaMemcpyDeviceToHost, c->stream));
  PT_CUDA_CHECK(cudaStreamSynchronize(c->stream));
  for (int i = 0; i < n; i++) correct[i] = m->h_correct[i];
  return PT_OK;
}

static const pt_backend_iface pt__cuda_iface = {
    .name = "cuda",
    .destroy = cu_destroy,
    .describe = cu_describe,
    .alloc = cu_alloc,
    .release = cu_release,
    .upload = cu_upload,
    .download = cu_download,
    .synchronize = cu_sync,
    .conv2d = pt__cuda_conv2d,
    .linear = pt__cuda_linear,
    .activation = cu_activation,
    .pool2d = cu_pool2d,
    .batchnorm2d = cu_batchnorm,
    .add = cu_add,
    .softmax = cu_softmax,
    .quantize = cu_quantize,
    .promise_noise = cu_noise,
    .round_f16 = cu_round_f16,
    .minmax = cu_minmax,
    .p1_upload = cu_p1_upload,
    .p1_predict = cu_p1_predict,
    .p1_free = cu_p1_free,
};

static int cu_available(const char **why) { return pt__cuda_device_count(why) > 0; }

/* PT_CUDA_PERF_VARIANT / PT_CUDA_SAMP_VARIANT: cudnn, gemm, or unset for the timed choice. */
static pt_cu_variant variant_from_env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v || !strcmp(v, "auto")) return PT_CU_VAR_AUTO;
  if (!strcmp(v, "cudnn")) return PT_CU_VAR_CUDNN;
  if (!strcmp(v, "gemm")) return PT_CU_VAR_GEMM;
  pt_log(PT_LOG_WARN, "%s=%s is not cudnn, gemm or auto; choosing automatically", name, v);
  return PT_CU_VAR_AUTO;
}

static pt_status cu_create(int threads, pt_backend **out) {
  (void)threads;
  *out = NULL;
  pt_backend *be = calloc(1, sizeof *be);
  pt_cuda_ctx *c = calloc(1, sizeof *c);
  if (!be || !c) {
    free(be);
    free(c);
    return pt__error(PT_ENOMEM, "cuda backend: out of memory");
  }
  be->iface = &pt__cuda_iface;
  be->ctx = c;
  pt_status s = PT_OK;
  struct cudaDeviceProp prop;
  cudaError_t e = cudaGetDevice(&c->device);
  if (e == cudaSuccess) e = cudaGetDeviceProperties(&prop, c->device);
  if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
  if (e != cudaSuccess) s = pt__error(PT_EBACKEND, "cuda backend: %s", cudaGetErrorString(e));
  cudnnStatus_t ds = CUDNN_STATUS_SUCCESS;
  if (s == PT_OK && (ds = cudnnCreate(&c->dnn)) != CUDNN_STATUS_SUCCESS)
    s = pt__error(PT_EBACKEND, "cuda backend: cudnnCreate: %s", cudnnGetErrorString(ds));
  if (s == PT_OK) cudnnSetStream(c->dnn, c->stream);
  cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
  if (s == PT_OK && (bs = cublasCreate(&c->blas)) != CUBLAS_STATUS_SUCCESS)
    s = pt__error(PT_EBACKEND, "cuda backend: cublasCreate: %s", cublasGetStatusString(bs));
  if (s == PT_OK) {
    cublasSetStream(c->blas, c->stream);
    /* fp32 GEMMs stay fp32 (no TF32): the CPU backend is the reference at 1e-5 */
    cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH);
  }
  if (s != PT_OK) {
    pt_backend_free(be);
    return s;
  }
  c->perf_variant = variant_from_env("PT_CUDA_PERF_VARIANT");
  c->samp_variant = variant_from_env("PT_CUDA_SAMP_VARIANT");
  const char *nh = getenv("PT_CUDA_PERF_NHWC");
  c->perf_nhwc = !(nh && !strcmp(nh, "0"));
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  size_t cv = cudnnGetVersion();
  c->mem_total = prop.totalGlobalMem;
  snprintf(c->desc, sizeof c->desc, "CUDA %s (sm_%d%d, %.0f GiB), runtime %d.%d, driver %d.%d, cuDNN %zu.%zu.%zu",
           prop.name, prop.major, prop.minor, (double)prop.totalGlobalMem / 1073741824.0, rt / 1000, rt % 1000 / 10,
           drv / 1000, drv % 1000 / 10, cv / 10000, cv % 10000 / 100, cv % 100);
  *out = be;
  return PT_OK;
}

const pt_backend_reg pt__backend_reg_cuda = {"cuda", cu_available, cu_create};
