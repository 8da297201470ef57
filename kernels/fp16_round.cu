/* float32 -> binary16 with round-to-nearest-even on the GPU. The CPU side of predtuner-gpu rounds
 * with pt_f32_to_f16; the GPU test runs this kernel over a sweep of values and demands identical
 * bits, which is what lets the CPU backend stand in for the GPU's fp16 knobs. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_f32_to_f16(const float *__restrict__ x, uint16_t *__restrict__ y, int64_t n) {
  PT__GRID_LOOP(i, n) y[i] = __half_as_ushort(__float2half_rn(x[i]));
}

__global__ void pt_k_round_f16(const float *x, float *y, int64_t n) {
  PT__GRID_LOOP(i, n) y[i] = pt__rd16(x[i]);
}

extern "C" pt_status pt__cu_f32_to_f16(cudaStream_t stream, int64_t n, const float *x, uint16_t *y) {
  if (n <= 0) return PT_OK;
  pt_k_f32_to_f16<<<pt__grid(n, 256), 256, 0, stream>>>(x, y, n);
  return pt__launched("f32_to_f16");
}

extern "C" pt_status pt__cu_round_f16(cudaStream_t stream, int64_t n, const float *x, float *y) {
  if (n <= 0) return PT_OK;
  pt_k_round_f16<<<pt__grid(n, 256), 256, 0, stream>>>(x, y, n);
  return pt__launched("round_f16");
}

/* Host buffers in and out (the bit-exactness test). */
extern "C" pt_status pt__cuda_f32_to_f16(const float *host_x, uint16_t *host_y, size_t n) {
  float *dx = NULL;
  uint16_t *dy = NULL;
  pt_status s = PT_OK;
  cudaError_t e = cudaMalloc((void **)&dx, n * sizeof *dx);
  if (e == cudaSuccess) e = cudaMalloc((void **)&dy, n * sizeof *dy);
  if (e == cudaSuccess) e = cudaMemcpy(dx, host_x, n * sizeof *dx, cudaMemcpyHostToDevice);
  if (e == cudaSuccess && (s = pt__cu_f32_to_f16(0, (int64_t)n, dx, dy)) != PT_OK) e = cudaErrorLaunchFailure;
  if (e == cudaSuccess) e = cudaMemcpy(host_y, dy, n * sizeof *dy, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess && s == PT_OK)
    s = pt__error(e == cudaErrorMemoryAllocation ? PT_ENOMEM : PT_EBACKEND, "cuda f32->f16 of %zu values: %s", n,
                  cudaGetErrorString(e));
  cudaFree(dx);
  cudaFree(dy);
  return s;
}
