/* The CUDA backend's context and the pieces its files share. Work goes to lanes (the backend
 * interface's name for streams): each lane has its stream, cuDNN and cuBLAS handles bound to it, and
 * scratch buffers that grow on demand and are reused across calls (the executor keeps activations in
 * its own pool, so scratch only holds half-precision copies, im2col matrices and compact outputs).
 * Lane 0 always exists; pt_exec_run_many spreads configs over more (PT_CUDA_LANES). */
#ifndef PT_CUDA_INTERNAL_H
#define PT_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cudnn.h>

#include "backend/backend_iface.h"
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"

/* Scratch slots: what each holds during one op. */
enum {
  PT_CU_SCR_X,   /* input copy: binary16, or padded (strided perforation) */
  PT_CU_SCR_W,   /* weights: binary16 or gathered (sampling) */
  PT_CU_SCR_COL, /* im2col matrix */
  PT_CU_SCR_OUT, /* compact or binary16 output before the epilogue */
  PT_CU_SCR_TAB, /* small index tables (kept filter elements) */
  PT_CU_SCR_RED, /* reductions (minmax, the variant check's error sums) */
  PT_CU_SCR_REF, /* the reference output while variants are timed */
  PT_CU_NSCR
};

/* Variants of a convolution (bench/bench_cuda_conv.c times them): cuDNN (exact; perforation:
 * strided convolutions over the kept residues; sampling: an exact convolution by masked, scaled
 * weights), reduced im2col + cuBLAS GEMM, or the implicit-GEMM kernels (cuda_igemm.c). AUTO times
 * each on the first call of a shape and knob, checks it against the first that ran, and keeps the
 * fastest that agrees (cuda_conv_pick.c; environment: PT_CUDA_EXACT_VARIANT, PT_CUDA_PERF_VARIANT,
 * PT_CUDA_SAMP_VARIANT). */
typedef enum { PT_CU_VAR_AUTO = 0, PT_CU_VAR_CUDNN, PT_CU_VAR_GEMM, PT_CU_VAR_IGEMM, PT_CU_NVAR } pt_cu_variant;

/* The variant AUTO chose for one convolution (shape and knob). */
typedef struct pt_cu_pick {
  int key[24];
  pt_cu_variant v;
  float ms[PT_CU_NVAR]; /* timed milliseconds per variant (infinite: failed, or disagreed) */
} pt_cu_pick;

/* One cuDNN convolution shape with its descriptors and the algorithm chosen for it. */
typedef struct pt_cu_algo {
  int key[20];
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd;
  cudnnConvolutionFwdAlgo_t algo;
  size_t ws;
} pt_cu_algo;

#define PT_CU_LANES_MAX 8
#define PT_CU_EVENTS 256 /* events per lane: mark m is recorded in ev[m % PT_CU_EVENTS] */

typedef struct pt_cu_lane {
  cudaStream_t stream; /* NULL: lane not made yet */
  cudnnHandle_t dnn;
  cublasHandle_t blas;
  void *scr[PT_CU_NSCR];
  size_t scr_bytes[PT_CU_NSCR];
  void *ws; /* cuDNN workspace */
  size_t ws_bytes;
  cudaEvent_t *ev; /* (PT_CU_EVENTS), made on the first mark */
  int64_t marks;   /* marks given so far */
} pt_cu_lane;

typedef struct pt_cuda_ctx {
  int device;
  pt_cu_lane lane[PT_CU_LANES_MAX];
  pt_cu_lane *ln; /* the current lane: every call queues its work on ln->stream */
  int cur, n_lanes; /* current lane's index; lanes offered to the executor (PT_CUDA_LANES) */
  pt_cu_algo *algos;
  int n_algos, cap_algos;
  pt_cu_variant exact_variant, perf_variant, samp_variant;
  pt_cu_pick *picks;
  int n_picks, cap_picks;
  int perf_nhwc; /* fp16 strided perforation in NHWC (PT_CUDA_PERF_NHWC=0 turns it off) */
  size_t mem_total;
  char desc[256];
} pt_cuda_ctx;

/* Device memory with the out-of-memory message users need (how much, what is free, what to do);
 * this and the lane functions below are in cuda_device.c. */
pt_status pt__cuda_malloc(pt_cuda_ctx *c, size_t bytes, void **ptr, const char *what);
/* A lane's stream and the cuDNN and cuBLAS handles bound to it (a handle is not shared between
 * streams: cuBLAS keeps its workspace per handle); freed with everything the lane holds. */
pt_status pt__cuda_lane_make(pt_cu_lane *l);
void pt__cuda_lane_free(pt_cu_lane *l);
/* Waits for the work queued on every lane. */
pt_status pt__cuda_sync_all(pt_cuda_ctx *c);
/* Scratch slot `slot` of the current lane with at least `bytes` (grown, never shrunk). */
pt_status pt__cuda_scratch(pt_cuda_ctx *c, int slot, size_t bytes, void **ptr);

/* Convolution variants (cuda_conv.c). All compute what pt__cpu_conv2d computes. */
pt_status pt__cuda_conv2d(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y);
/* Exact convolution through cuDNN (fp32 with FMA math, fp16 on tensor cores). */
pt_status pt__cuda_conv_cudnn(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y);
/* Perforation through cuDNN: one strided convolution per kept residue of the perforated axis. */
pt_status pt__cuda_conv_perf_cudnn(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w,
                                   const float *b, float *y);
/* The same with the layout chosen: nhwc (fp16 only) or NCHW. */
pt_status pt__cuda_conv_perf_cudnn_fmt(pt_cuda_ctx *c, const pt_conv_desc *d, int nhwc, const float *x,
                                       const float *w, const float *b, float *y);
/* Sampling through cuDNN: an exact convolution by the masked, scaled weights. */
pt_status pt__cuda_conv_samp_cudnn(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w,
                                   const float *b, float *y);
/* The implicit-GEMM kernels (cuda_igemm.c): binary16 on tensor cores, float32 on CUDA cores;
 * PT_EUNSUPPORTED for grouped convolutions and shapes their plans refuse. */
pt_status pt__cuda_conv_igemm(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w,
                              const float *b, float *y);
/* A variant's name (cudnn, gemm, igemm; auto) and the variant of a name (-1: none). */
const char *pt__cuda_variant_name(pt_cu_variant v);
int pt__cuda_variant_of(const char *name);
/* Reduced im2col + cuBLAS GEMM: perforation, sampling, or (neither) exact. */
pt_status pt__cuda_conv_gemm(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                             float *y);
void pt__cuda_conv_cache_free(pt_cuda_ctx *c);

/* Optional features by name (cuda_p1.c): the P1 predictor. */
pt_backend_proc pt__cuda_get_proc(void *ctx, const char *name);

/* Linear layer through cuBLAS (cuda_ops.c). */
pt_status pt__cuda_linear(void *ctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                          float *y);

/* cuDNN and cuBLAS failures as pt_status. */
#define PT_CUDNN_CHECK(call)                                                                                   \
  do {                                                                                                         \
    cudnnStatus_t pt__st_ = (call);                                                                            \
    if (pt__st_ != CUDNN_STATUS_SUCCESS)                                                                       \
      return pt__error(pt__st_ == CUDNN_STATUS_ALLOC_FAILED ? PT_ENOMEM : PT_EBACKEND, "%s:%d: %s: %s", __FILE__, \
                       __LINE__, #call, cudnnGetErrorString(pt__st_));                                         \
  } while (0)
#define PT_CUBLAS_CHECK(call)                                                                                   \
  do {                                                                                                          \
    cublasStatus_t pt__st_ = (call);                                                                            \
    if (pt__st_ != CUBLAS_STATUS_SUCCESS)                                                                       \
      return pt__error(pt__st_ == CUBLAS_STATUS_ALLOC_FAILED ? PT_ENOMEM : PT_EBACKEND, "%s:%d: %s: %s", __FILE__, \
                       __LINE__, #call, cublasGetStatusString(pt__st_));                                        \
  } while (0)

#endif
