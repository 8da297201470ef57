/* The backend interface: a table of function pointers plus a context pointer (ggml style). Every
 * pointer argument named x/y/w/b is backend memory from alloc(). Activations are (N, C, H, W) or
 * (N, F) float32; fp16 != 0 means the op is computed in half precision with FP16Approx semantics
 * (inputs, weights and bias rounded to binary16, output rounded to binary16; accumulation may be
 * fp32), the data staying float32 in memory. PT_FP16_PREROUNDED says the weights and bias passed
 * are binary16 values already (the executor keeps rounded copies), so the op need not round them.
 * Backends know tensors and descriptors only, never the graph IR (docs/design.md, "Layers"). */
#ifndef PT_BACKEND_IFACE_H
#define PT_BACKEND_IFACE_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/approx.h"
#include "predtuner/backend.h"

#define PT_FP16_ROUND 1
#define PT_FP16_PREROUNDED 2

typedef struct pt_conv_desc {
  int n, cin, h, w;  /* input (n, cin, h, w) */
  int cout, oh, ow;  /* output (n, cout, oh, ow) */
  int kh, kw, sh, sw, ph, pw, groups;
  int fp16;
  /* PerforateConv2dStride along perf_dir (pt_perf_dir; PT_PERF_NONE: none). Only the kept rows or
   * columns are computed; the skipped ones are filled (kernels/knob_math.h). */
  int perf_dir, perf_stride, perf_offset;
  /* Conv2dSampling: samp_every 0 = none. The reduction runs over the kept filter elements only,
   * with the kept weights multiplied by samp_scale. */
  int samp_every, samp_offset;
  float samp_scale;
} pt_conv_desc;

typedef struct pt_pool_desc {
  int n, c, h, w, oh, ow;
  int kh, kw, sh, sw, ph, pw;
  int is_max; /* else average, padding counted (PyTorch's count_include_pad=True) */
  int fp16;
} pt_pool_desc;

/* Elementwise activations. */
typedef enum pt_act { PT_ACT_RELU = 0, PT_ACT_TANH } pt_act;

/* What get_proc returns: a function whose real type the caller knows from the name (cast back to it
 * before calling), as ggml's get_proc_address. */
typedef void (*pt_backend_proc)(void);

typedef struct pt_backend_iface {
  const char *name;
  void (*destroy)(void *ctx);
  const char *(*describe)(void *ctx);
  pt_status (*alloc)(void *ctx, size_t bytes, void **ptr);
  void (*release)(void *ctx, void *ptr);
  pt_status (*upload)(void *ctx, void *dst, const void *host_src, size_t bytes);
  pt_status (*download)(void *ctx, void *host_dst, const void *src, size_t bytes);
  /* Waits for all queued work on every lane. */
  pt_status (*synchronize)(void *ctx);
  /* dst = src, both backend memory, queued on the current lane. */
  pt_status (*copy)(void *ctx, void *dst, const void *src, size_t bytes);

  /* y (n, cout, oh, ow) = conv(x (n, cin, h, w), w (cout, cin/groups, kh, kw)) + b (cout) or no bias */
  pt_status (*conv2d)(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y);
  /* y (n, out) = x (n, in) . w (out, in)^T + b (out) */
  pt_status (*linear)(void *ctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                      float *y);
  /* Elementwise ReLU or Tanh over count values. */
  pt_status (*activation)(void *ctx, pt_act act, int64_t count, int fp16, const float *x, float *y);
  pt_status (*pool2d)(void *ctx, const pt_pool_desc *d, const float *x, float *y);
  /* y = (x - mean) / sqrt(var + eps) * w + b per channel; x (n, c, hw) */
  pt_status (*batchnorm2d)(void *ctx, int n, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                           const float *b, const float *mean, const float *var, float *y);
  pt_status (*add)(void *ctx, int64_t count, int fp16, const float *a, const float *b, float *y);
  /* Softmax over the second dimension of x (n, c). */
  pt_status (*softmax)(void *ctx, int n, int c, int fp16, const float *x, float *y);

  /* PromiseSim pieces. y = pt_km_quantize(x, lo, hi) elementwise. */
  pt_status (*quantize)(void *ctx, int64_t count, float lo, float hi, const float *x, float *y);
  /* y[i] = x[i] + pt_km_normal(key, first + i) * scale * x[i] */
  pt_status (*promise_noise)(void *ctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                             float *y);
  /* y = x rounded to binary16 values (kept as float32). */
  pt_status (*round_f16)(void *ctx, int64_t count, const float *x, float *y);
  /* range[0] = min, range[1] = max of x (count > 0), to host memory; NaN is ignored. */
  pt_status (*minmax)(void *ctx, int64_t count, const float *x, float range[2]);

  /* Optional (NULL: no extensions): a feature that only some backends have, found by name
   * (backend/backend_ext.h lists the names and their function types); NULL when absent. */
  pt_backend_proc (*get_proc)(void *ctx, const char *name);

  /* Optional (NULL: everything runs in one queue, in call order). Lanes are independent in-order
   * queues (CUDA streams): work queued on different lanes may run concurrently and in any relative
   * order unless ordered by marks. Ops, upload and copy are queued on the current lane (lane 0
   * until use_lane); download, minmax, synchronize and release wait for every lane first.
   * lanes: how many there are (>= 1). lane_mark: a point on the current lane after everything
   * queued on it so far; marks of a lane increase. lane_wait: work queued on the current lane from
   * now on starts only after `lane` has reached `mark` (a mark it returned). */
  int (*lanes)(void *ctx);
  pt_status (*use_lane)(void *ctx, int lane);
  pt_status (*lane_mark)(void *ctx, int64_t *mark);
  pt_status (*lane_wait)(void *ctx, int lane, int64_t mark);
} pt_backend_iface;

struct pt_backend {
  const pt_backend_iface *iface;
  void *ctx;
};

/* What each backend folder provides to the registry (see backend_list.h, generated by CMake). */
typedef struct pt_backend_reg {
  const char *name;
  int (*available)(const char **why);
  pt_status (*create)(int threads, pt_backend **out);
} pt_backend_reg;

/* Adds a backend after the built ones (r must outlive every use; not thread-safe): the tests' test
 * backends are found by name like the built-in ones. "auto" never picks one. */
pt_status pt__backend_register(const pt_backend_reg *r);

#endif
