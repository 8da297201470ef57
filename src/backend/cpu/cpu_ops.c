/* CPU ops other than convolution. With fp16 set, inputs and parameters are read as their binary16
 * roundings and outputs are rounded to binary16. */
#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "backend/cpu/cpu_math.h"
#include "backend/cpu/pt_blas.h"
#include "core/error.h"
#include "kernels/knob_math.h"
#include "predtuner/tensor.h"

static inline float rd(float v, int fp16) { return fp16 ? pt_round_f16(v) : v; }

pt_status pt__cpu_linear(void *vctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                         float *y) {
  pt_cpu_ctx *ctx = vctx;
  float *xr = NULL, *wr = NULL;
  const int round_w = fp16 == PT_FP16_ROUND;
  if (fp16) {
    xr = pt__cpu_rounded_copy(x, (int64_t)n * in);
    wr = round_w ? pt__cpu_rounded_copy(w, (int64_t)out * in) : NULL;
    if (!xr || (round_w && !wr)) {
      free(xr);
      free(wr);
      return pt__error(PT_ENOMEM, "cpu linear: out of memory for the fp16 copies");
    }
    x = xr;
    if (round_w) w = wr;
  }
  int nt = ctx->threads < n ? ctx->threads : (n > 0 ? n : 1);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num(), T = omp_get_num_threads();
    int r0 = (int)((int64_t)n * t / T), r1 = (int)((int64_t)n * (t + 1) / T);
    if (r1 > r0)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, r1 - r0, out, in, 1.0f, x + (int64_t)r0 * in, in, w, in,
                  0.0f, y + (int64_t)r0 * out, out);
    for (int r = r0; r < r1; r++)
      for (int j = 0; j < out; j++) {
        float v = y[(int64_t)r * out + j] + (b ? rd(b[j], fp16) : 0.0f);
        y[(int64_t)r * out + j] = rd(v, fp16);
      }
  }
  free(xr);
  free(wr);
  return PT_OK;
}

pt_status pt__cpu_activation(void *vctx, pt_act act, int64_t count, int fp16, const float *x, float *y) {
  pt_cpu_ctx *ctx = vctx;
  if (act != PT_ACT_RELU && act != PT_ACT_TANH) return pt__error(PT_EUNSUPPORTED, "cpu activation: kind %d", (int)act);
  const int is_relu = act == PT_ACT_RELU;
  const int64_t chunk = 1 << 14;
  /* fp16: round the input, apply, round the output (ReLU of a half value is a half value) */
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t c0 = 0; c0 < count; c0 += chunk) {
    int64_t n = count - c0 < chunk ? count - c0 : chunk;
    const float *xs = x + c0;
    float *ys = y + c0;
    if (is_relu) {
      for (int64_t i = 0; i < n; i++) ys[i] = xs[i] > 0.0f ? xs[i] : 0.0f;
    } else {
      if (fp16) {
        if (ys != xs) memcpy(ys, xs, (size_t)n * sizeof *ys);
        pt_round_f16_array(ys, (size_t)n);
        xs = ys;
      }
      for (int64_t i = 0; i < n; i++) ys[i] = pt__cpu_tanhf(xs[i]);
    }
    if (fp16) pt_round_f16_array(ys, (size_t)n);
  }
  return PT_OK;
}

/* The max of a and b, NaN winning (as PyTorch's max pooling propagates NaN). */
static inline float max_nan(float a, float b) { return b > a || b != b ? b : a; }

/* 2x2 max pooling with stride 2 and no padding (every zoo network's), without the general loop's
 * bounds checks. fp16 rounds the result only: rounding is monotonic, so the max of rounded values is
 * the rounded max. */
static void max_pool_2x2(const pt_pool_desc *d, int threads, const float *x, float *y) {
  const int64_t planes = (int64_t)d->n * d->c;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *src = x + pl * d->h * d->w;
    float *dst = y + pl * d->oh * d->ow;
    for (int oy = 0; oy < d->oh; oy++) {
      const float *r0 = src + (int64_t)(2 * oy) * d->w, *r1 = r0 + d->w;
      float *o = dst + (int64_t)oy * d->ow;
      for (int ox = 0; ox < d->ow; ox++)
        o[ox] = max_nan(max_nan(max_nan(r0[2 * ox], r0[2 * ox + 1]), r1[2 * ox]), r1[2 * ox + 1]);
      if (d->fp16) pt_round_f16_array(o, (size_t)d->ow);
    }
  }
}

pt_status pt__cpu_pool2d(void *vctx, const pt_pool_desc *d, const float *x, float *y) {
  pt_cpu_ctx *ctx = vctx;
  const int64_t planes = (int64_t)d->n * d->c;
  const float area = (float)(d->kh * d->kw);
  if (d->is_max && d->kh == 2 && d->kw == 2 && d->sh == 2 && d->sw == 2 && !d->ph && !d->pw && 2 * d->oh <= d->h &&
      2 * d->ow <= d->w) {
    max_pool_2x2(d, ctx->threads, x, y);
    return PT_OK;
  }
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t pl = 0; pl < planes; pl++) {
    const float *src = x + pl * d->h * d->w;
    float *dst = y + pl * d->oh * d->ow;
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        float acc = d->is_max ? -INFINITY : 0.0f;
        for (int ki = 0; ki < d->kh; ki++) {
          int iy = pt_km_in_coord(oy, ki, d->sh, d->ph);
          if (iy < 0 || iy >= d->h) continue;
          for (int kj = 0; kj < d->kw; kj++) {
            int ix = pt_km_in_coord(ox, kj, d->sw, d->pw);
            if (ix < 0 || ix >= d->w) continue;
            float v = rd(src[(int64_t)iy * d->w + ix], d->fp16);
            if (d->is_max) {
              if (v > acc || isnan(v)) acc = v;
            } else {
              acc += v;
            }
          }
        }
        dst[(int64_t)oy * d->ow + ox] = rd(d->is_max ? acc : acc / area, d->fp16);
      }
  }
  return PT_OK;
}

pt_status pt__cpu_batchnorm2d(void *vctx, int n, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                              const float *b, const float *mean, const float *var, float *y) {
  pt_cpu_ctx *ctx = vctx;
  const int64_t planes = (int64_t)n * c;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t pl = 0; pl < planes; pl++) {
    int ch = (int)(pl % c);
    float scale = rd(w[ch], fp16) / sqrtf(rd(var[ch], fp16) + eps);
    float m = rd(mean[ch], fp16), bb = rd(b[ch], fp16);
    const float *src = x + pl * hw;
    float *dst = y + pl * hw;
    for (int64_t i = 0; i < hw; i++) dst[i] = rd((rd(src[i], fp16) - m) * scale + bb, fp16);
  }
  return PT_OK;
}

pt_status pt__cpu_add(void *vctx, int64_t count, int fp16, const float *a, const float *b, float *y) {
  pt_cpu_ctx *ctx = vctx;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t i = 0; i < count; i++) y[i] = rd(rd(a[i], fp16) + rd(b[i], fp16), fp16);
  return PT_OK;
}

pt_status pt__cpu_softmax(void *vctx, int n, int c, int fp16, const float *x, float *y) {
  (void)vctx;
  for (int r = 0; r < n; r++) {
    const float *src = x + (int64_t)r * c;
    float *dst = y + (int64_t)r * c;
    float mx = -INFINITY;
    for (int j = 0; j < c; j++) mx = fmaxf(mx, rd(src[j], fp16));
    double sum = 0.0;
    for (int j = 0; j < c; j++) sum += (dst[j] = expf(rd(src[j], fp16) - mx));
    for (int j = 0; j < c; j++) dst[j] = rd((float)(dst[j] / sum), fp16);
  }
  return PT_OK;
}

pt_status pt__cpu_quantize(void *vctx, int64_t count, float lo, float hi, const float *x, float *y) {
  pt_cpu_ctx *ctx = vctx;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t i = 0; i < count; i++) y[i] = pt_km_quantize(x[i], lo, hi);
  return PT_OK;
}

pt_status pt__cpu_promise_noise(void *vctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                                float *y) {
  pt_cpu_ctx *ctx = vctx;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t i = 0; i < count; i++) y[i] = x[i] + pt_km_normal(key, first + (uint64_t)i) * scale * x[i];
  return PT_OK;
}

pt_status pt__cpu_minmax(void *vctx, int64_t count, const float *x, float range[2]) {
  (void)vctx;
  float lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < count; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  range[0] = lo;
  range[1] = hi;
  return PT_OK;
}

pt_status pt__cpu_round_f16(void *vctx, int64_t count, const float *x, float *y) {
  pt_cpu_ctx *ctx = vctx;
  const int64_t chunk = 1 << 16;
#pragma omp parallel for num_threads(ctx->threads) schedule(static)
  for (int64_t c0 = 0; c0 < count; c0 += chunk) {
    int64_t n = count - c0 < chunk ? count - c0 : chunk;
    if (y != x) memcpy(y + c0, x + c0, (size_t)n * sizeof *y);
    pt_round_f16_array(y + c0, (size_t)n);
  }
  return PT_OK;
}
