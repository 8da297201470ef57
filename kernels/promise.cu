/* PromiseSim on the GPU: 8-bit quantisation and multiplicative Gaussian noise. The noise comes from
 * the counter-based generator in kernels/knob_math.h (not cuRAND), so every element gets the same
 * sample as on the CPU backend whatever the batch or launch shape: a GPU run is reproducible and
 * testable against the CPU bit for bit up to libm rounding. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_quantize(int64_t n, float lo, float hi, const float *x, float *y) {
  PT__GRID_LOOP(i, n) y[i] = pt_km_quantize(x[i], lo, hi);
}

__global__ void pt_k_promise_noise(int64_t n, float scale, uint64_t key, uint64_t first, const float *x, float *y) {
  PT__GRID_LOOP(i, n) y[i] = x[i] + pt_km_normal(key, first + (uint64_t)i) * scale * x[i];
}

extern "C" pt_status pt__cu_quantize(cudaStream_t stream, int64_t n, float lo, float hi, const float *x, float *y) {
  if (n <= 0) return PT_OK;
  pt_k_quantize<<<pt__grid(n, 256), 256, 0, stream>>>(n, lo, hi, x, y);
  return pt__launched("quantize");
}

extern "C" pt_status pt__cu_promise_noise(cudaStream_t stream, int64_t n, float scale, uint64_t key, uint64_t first,
                                          const float *x, float *y) {
  if (n <= 0) return PT_OK;
  pt_k_promise_noise<<<pt__grid(n, 256), 256, 0, stream>>>(n, scale, key, first, x, y);
  return pt__launched("promise_noise");
}
