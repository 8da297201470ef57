/* Inference batch norm, y = (x - mean) / sqrt(var + eps) * w + b per channel of x (n, c, hw); the
 * same operation order as the CPU backend so that fp32 results agree to rounding. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_batchnorm(int64_t total, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                               const float *b, const float *mean, const float *var, float *y) {
  PT__GRID_LOOP(i, total) {
    int ch = (int)((i / hw) % c);
    float scale = pt__rd(w[ch], fp16) / sqrtf(pt__rd(var[ch], fp16) + eps);
    y[i] = pt__rd((pt__rd(x[i], fp16) - pt__rd(mean[ch], fp16)) * scale + pt__rd(b[ch], fp16), fp16);
  }
}

extern "C" pt_status pt__cu_batchnorm(cudaStream_t stream, int n, int c, int64_t hw, float eps, int fp16,
                                      const float *x, const float *w, const float *b, const float *mean,
                                      const float *var, float *y) {
  int64_t total = (int64_t)n * c * hw;
  if (total <= 0) return PT_OK;
  pt_k_batchnorm<<<pt__grid(total, 256), 256, 0, stream>>>(total, c, hw, eps, fp16, x, w, b, mean, var, y);
  return pt__launched("batchnorm");
}
