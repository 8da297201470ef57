/* float32 -> binary16 with round-to-nearest-even on the GPU. The CPU side of predtuner-gpu rounds
 * with pt_f32_to_f16; the GPU test runs this kernel over a sweep of values and demands identical
 * bits, which is what lets the CPU backend stand in for the GPU's fp16 knobs. */
#include <cuda_fp16.h>
#include <stdint.h>

extern "C" {
#include "backend/cuda/cuda_check.h"
}

__global__ void pt_k_f32_to_f16(const float *__restrict__ x, uint16_t *__restrict__ y, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    y[i] = __half_as_ushort(__float2half_rn(x[i]));
}

/* Launcher: device buffers, caller's stream. */
static cudaError_t pt__launch_f32_to_f16(const float *x, uint16_t *y, size_t n, cudaStream_t stream) {
  unsigned blocks = (unsigned)((n + 255) / 256);
  if (blocks > 65535u * 8u) blocks = 65535u * 8u;
  if (blocks == 0) return cudaSuccess;
  pt_k_f32_to_f16<<<blocks, 256, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

/* Entry point: host buffers in and out. */
extern "C" pt_status pt__cuda_f32_to_f16(const float *host_x, uint16_t *host_y, size_t n) {
  float *dx = NULL;
  uint16_t *dy = NULL;
  pt_status s = PT_OK;
  cudaError_t e = cudaMalloc((void **)&dx, n * sizeof *dx);
  if (e == cudaSuccess) e = cudaMalloc((void **)&dy, n * sizeof *dy);
  if (e == cudaSuccess) e = cudaMemcpy(dx, host_x, n * sizeof *dx, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = pt__launch_f32_to_f16(dx, dy, n, 0);
  if (e == cudaSuccess) e = cudaMemcpy(host_y, dy, n * sizeof *dy, cudaMemcpyDeviceToHost);
  if (e != cudaSuccess)
    s = pt__error(e == cudaErrorMemoryAllocation ? PT_ENOMEM : PT_EBACKEND, "cuda f32->f16 of %zu values: %s", n,
                  cudaGetErrorString(e));
  cudaFree(dx);
  cudaFree(dy);
  return s;
}
