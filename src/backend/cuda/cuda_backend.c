/* The CUDA backend: device memory through plain cudaMalloc, lanes of streams, cuDNN for exact
 * convolutions, cuBLAS for GEMMs, and the kernels in kernels/ (*.cu) for everything else. It registers
 * itself as "cuda" (CMake lists it before "cpu", so "auto" picks it where a GPU is present). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/log.h"

/* Streams run_many uses unless PT_CUDA_LANES says otherwise. */
#define PT_CUDA_LANES_DEFAULT 2

static int cu_lanes(void *ctx) { return ((pt_cuda_ctx *)ctx)->n_lanes; }

static pt_status cu_use_lane(void *ctx, int lane) {
  pt_cuda_ctx *c = ctx;
  if (lane < 0 || lane >= c->n_lanes) return pt__error(PT_EINVAL, "cuda backend: lane %d of %d", lane, c->n_lanes);
  if (!c->lane[lane].stream) PT__TRY(pt__cuda_lane_make(&c->lane[lane]));
  c->cur = lane;
  c->ln = &c->lane[lane];
  return PT_OK;
}

static pt_status cu_lane_mark(void *ctx, int64_t *mark) {
  pt_cuda_ctx *c = ctx;
  pt_cu_lane *l = c->ln;
  if (!l->ev) {
    if (!(l->ev = pt__calloc(PT_CU_EVENTS, sizeof *l->ev))) return pt__error(PT_ENOMEM, "cuda backend: out of memory");
    for (int i = 0; i < PT_CU_EVENTS; i++) {
      cudaError_t e = cudaEventCreateWithFlags(&l->ev[i], cudaEventDisableTiming);
      if (e == cudaSuccess) continue;
      while (i-- > 0) cudaEventDestroy(l->ev[i]); /* all or none, so that the next mark tries again */
      free(l->ev);
      l->ev = NULL;
      return pt__error(PT_EBACKEND, "cuda backend: cudaEventCreate: %s", cudaGetErrorString(e));
    }
  }
  *mark = ++l->marks;
  PT_CUDA_CHECK(cudaEventRecord(l->ev[*mark % PT_CU_EVENTS], l->stream));
  return PT_OK;
}

/* A mark older than the event ring has been recorded over by a later mark of the same lane: waiting
 * for that one is waiting a little longer, never too little. */
static pt_status cu_lane_wait(void *ctx, int lane, int64_t mark) {
  pt_cuda_ctx *c = ctx;
  if (lane < 0 || lane >= c->n_lanes || !c->lane[lane].ev || mark < 1 || mark > c->lane[lane].marks)
    return pt__error(PT_EINVAL, "cuda backend: lane %d waits for mark %lld of lane %d, which was not given", c->cur,
                     (long long)mark, lane);
  if (lane == c->cur) return PT_OK; /* a stream is in order */
  PT_CUDA_CHECK(cudaStreamWaitEvent(c->ln->stream, c->lane[lane].ev[mark % PT_CU_EVENTS], 0));
  return PT_OK;
}

static void cu_destroy(void *ctx) {
  pt_cuda_ctx *c = ctx;
  if (!c) return;
  pt__cuda_sync_all(c);
  pt__cuda_conv_cache_free(c);
  for (int i = 0; i < PT_CU_LANES_MAX; i++) pt__cuda_lane_free(&c->lane[i]);
  free(c);
}

static const char *cu_describe(void *ctx) { return ((pt_cuda_ctx *)ctx)->desc; }

static pt_status cu_alloc(void *ctx, size_t bytes, void **ptr) {
  return pt__cuda_malloc(ctx, (bytes + 255) & ~(size_t)255, ptr, "a tensor");
}
static void cu_release(void *ctx, void *ptr) {
  pt__cuda_sync_all(ctx); /* queued kernels, on any lane, may still read it */
  cudaFree(ptr);
}
static pt_status cu_upload(void *ctx, void *dst, const void *src, size_t bytes) {
  pt_cuda_ctx *c = ctx;
  /* pageable host memory: the copy has taken the bytes when it returns, so src may be reused */
  PT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, c->ln->stream));
  return PT_OK;
}
static pt_status cu_download(void *ctx, void *dst, const void *src, size_t bytes) {
  pt_cuda_ctx *c = ctx;
  PT__TRY(pt__cuda_sync_all(c)); /* src may have been written on another lane */
  PT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, c->ln->stream));
  PT_CUDA_CHECK(cudaStreamSynchronize(c->ln->stream));
  return PT_OK;
}
static pt_status cu_sync(void *ctx) { return pt__cuda_sync_all(ctx); }
static pt_status cu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
  PT_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, ((pt_cuda_ctx *)ctx)->ln->stream));
  return PT_OK;
}

static pt_status cu_activation(void *ctx, pt_act act, int64_t count, int fp16, const float *x, float *y) {
  if (act != PT_ACT_RELU && act != PT_ACT_TANH) return pt__error(PT_EUNSUPPORTED, "cuda activation: kind %d", (int)act);
  return pt__cu_activation(((pt_cuda_ctx *)ctx)->ln->stream, act == PT_ACT_RELU, count, fp16, x, y);
}
static pt_status cu_pool2d(void *ctx, const pt_pool_desc *d, const float *x, float *y) {
  return pt__cu_pool2d(((pt_cuda_ctx *)ctx)->ln->stream, d, x, y);
}
static pt_status cu_batchnorm(void *ctx, int n, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                              const float *b, const float *mean, const float *var, float *y) {
  return pt__cu_batchnorm(((pt_cuda_ctx *)ctx)->ln->stream, n, c, hw, eps, fp16, x, w, b, mean, var, y);
}
static pt_status cu_add(void *ctx, int64_t count, int fp16, const float *a, const float *b, float *y) {
  return pt__cu_add(((pt_cuda_ctx *)ctx)->ln->stream, count, fp16, a, b, y);
}
static pt_status cu_softmax(void *ctx, int n, int c, int fp16, const float *x, float *y) {
  return pt__cu_softmax(((pt_cuda_ctx *)ctx)->ln->stream, n, c, fp16, x, y);
}
static pt_status cu_quantize(void *ctx, int64_t count, float lo, float hi, const float *x, float *y) {
  return pt__cu_quantize(((pt_cuda_ctx *)ctx)->ln->stream, count, lo, hi, x, y);
}
static pt_status cu_noise(void *ctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                          float *y) {
  return pt__cu_promise_noise(((pt_cuda_ctx *)ctx)->ln->stream, count, scale, key, first, x, y);
}
static pt_status cu_round_f16(void *ctx, int64_t count, const float *x, float *y) {
  return pt__cu_round_f16(((pt_cuda_ctx *)ctx)->ln->stream, count, x, y);
}
static pt_status cu_minmax(void *ctx, int64_t count, const float *x, float range[2]) {
  pt_cuda_ctx *c = ctx;
  void *scr;
  PT__TRY(pt__cuda_sync_all(c)); /* x may have been written on another lane */
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_RED, 2 * PT_CU_MINMAX_BLOCKS * sizeof(float), &scr));
  return pt__cu_minmax(c->ln->stream, count, x, scr, range);
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
    .copy = cu_copy,
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
    .get_proc = pt__cuda_get_proc,
    .lanes = cu_lanes,
    .use_lane = cu_use_lane,
    .lane_mark = cu_lane_mark,
    .lane_wait = cu_lane_wait,
};

static int cu_available(const char **why) { return pt__cuda_device_count(why) > 0; }

/* PT_CUDA_EXACT_VARIANT / PT_CUDA_PERF_VARIANT / PT_CUDA_SAMP_VARIANT: cudnn, gemm, igemm, or unset
 * (auto) for the timed choice. */
static pt_cu_variant variant_from_env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) return PT_CU_VAR_AUTO;
  int k = pt__cuda_variant_of(v);
  if (k >= 0) return (pt_cu_variant)k;
  pt_log(PT_LOG_WARN, "%s=%s is not cudnn, gemm, igemm or auto; choosing automatically", name, v);
  return PT_CU_VAR_AUTO;
}

/* PT_CUDA_LANES: how many streams pt_exec_run_many spreads a batch of configs over (1..8). */
static int lanes_from_env(void) {
  const char *v = getenv("PT_CUDA_LANES");
  if (!v || !*v) return PT_CUDA_LANES_DEFAULT;
  char *end;
  long n = strtol(v, &end, 10);
  if (*end || n < 1 || n > PT_CU_LANES_MAX) {
    pt_log(PT_LOG_WARN, "PT_CUDA_LANES=%s is not a number from 1 to %d; using %d", v, PT_CU_LANES_MAX,
           PT_CUDA_LANES_DEFAULT);
    return PT_CUDA_LANES_DEFAULT;
  }
  return (int)n;
}

static pt_status cu_create(int threads, pt_backend **out) {
  (void)threads;
  *out = NULL;
  pt_backend *be = pt__calloc(1, sizeof *be);
  pt_cuda_ctx *c = pt__calloc(1, sizeof *c);
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
  if (e != cudaSuccess) s = pt__error(PT_EBACKEND, "cuda backend: %s", cudaGetErrorString(e));
  c->ln = &c->lane[0];
  c->n_lanes = 1;
  if (s == PT_OK) s = pt__cuda_lane_make(&c->lane[0]);
  if (s != PT_OK) { /* the backend's own teardown: this part of the layer does not call the registry */
    cu_destroy(c);
    free(be);
    return s;
  }
  c->n_lanes = lanes_from_env();
  c->exact_variant = variant_from_env("PT_CUDA_EXACT_VARIANT");
  c->perf_variant = variant_from_env("PT_CUDA_PERF_VARIANT");
  c->samp_variant = variant_from_env("PT_CUDA_SAMP_VARIANT");
  const char *nh = getenv("PT_CUDA_PERF_NHWC");
  c->perf_nhwc = !(nh && !strcmp(nh, "0"));
  int rt = 0, drv = 0;
  cudaRuntimeGetVersion(&rt);
  cudaDriverGetVersion(&drv);
  size_t cv = cudnnGetVersion();
  c->mem_total = prop.totalGlobalMem;
  snprintf(c->desc, sizeof c->desc,
           "CUDA %s (sm_%d%d, %.0f GiB), runtime %d.%d, driver %d.%d, cuDNN %zu.%zu.%zu, %d stream%s for batches",
           prop.name, prop.major, prop.minor, (double)prop.totalGlobalMem / 1073741824.0, rt / 1000, rt % 1000 / 10,
           drv / 1000, drv % 1000 / 10, cv / 10000, cv % 10000 / 100, cv % 100, c->n_lanes, c->n_lanes > 1 ? "s" : "");
  *out = be;
  return PT_OK;
}

const pt_backend_reg pt__backend_reg_cuda = {.name = "cuda", .available = cu_available, .create = cu_create};
