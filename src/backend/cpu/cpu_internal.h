#ifndef PT_CPU_INTERNAL_H
#define PT_CPU_INTERNAL_H

#include "backend/backend_iface.h"

typedef struct pt_cpu_ctx {
  int threads;
  char desc[160];
} pt_cpu_ctx;

pt_status pt__cpu_conv2d(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y);
pt_status pt__cpu_linear(void *ctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                         float *y);
pt_status pt__cpu_activation(void *ctx, pt_act act, int64_t count, int fp16, const float *x, float *y);
pt_status pt__cpu_pool2d(void *ctx, const pt_pool_desc *d, const float *x, float *y);
pt_status pt__cpu_batchnorm2d(void *ctx, int n, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                              const float *b, const float *mean, const float *var, float *y);
pt_status pt__cpu_add(void *ctx, int64_t count, int fp16, const float *a, const float *b, float *y);
pt_status pt__cpu_softmax(void *ctx, int n, int c, int fp16, const float *x, float *y);

pt_status pt__cpu_quantize(void *ctx, int64_t count, float lo, float hi, const float *x, float *y);
pt_status pt__cpu_promise_noise(void *ctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                                float *y);
pt_status pt__cpu_round_f16(void *ctx, int64_t count, const float *x, float *y);
pt_status pt__cpu_minmax(void *ctx, int64_t count, const float *x, float range[2]);

/* A copy of src rounded to binary16 (for the fp16 path); NULL on allocation failure. */
float *pt__cpu_rounded_copy(const float *src, int64_t n);

#endif
