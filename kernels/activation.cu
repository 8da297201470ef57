/* ReLU and Tanh. fp16: the input is read rounded and the output rounded (FP16Approx). */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_activation(int is_relu, int64_t n, int fp16, const float *x, float *y) {
  PT__GRID_LOOP(i, n) {
    float v = x[i];
    if (is_relu) v = v > 0.0f ? v : 0.0f;
    else v = tanhf(pt__rd(v, fp16));
    y[i] = pt__rd(v, fp16);
  }
}

extern "C" pt_status pt__cu_activation(cudaStream_t stream, int is_relu, int64_t n, int fp16, const float *x, float *y) {
  if (n <= 0) return PT_OK;
  pt_k_activation<<<pt__grid(n, 256), 256, 0, stream>>>(is_relu, n, fp16, x, y);
  return pt__launched("activation");
}
