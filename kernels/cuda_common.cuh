/* Shared by the kernels/ (*.cu) files: grid sizing, binary16 rounding, and the launch check that turns
 * a failed launch into a pt_status. */
#ifndef PT_CUDA_COMMON_CUH
#define PT_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <stdint.h>

extern "C" {
#include "backend/cuda/cuda_check.h"
#include "backend/cuda/cuda_kernels.h"
}
#include "kernels/knob_math.h"

/* Grid-stride loops: enough blocks to fill the GPU, never more than the work needs. */
static inline unsigned pt__grid(int64_t n, int threads) {
  int64_t b = (n + threads - 1) / threads;
  if (b > 65535 * 16) b = 65535 * 16;
  return (unsigned)(b > 0 ? b : 1);
}

#define PT__GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)

/* float32 -> nearest binary16 value, kept as float32 (what pt_round_f16 does on the CPU). */
__device__ __forceinline__ float pt__rd16(float v) { return __half2float(__float2half_rn(v)); }
__device__ __forceinline__ float pt__rd(float v, int fp16) { return fp16 ? pt__rd16(v) : v; }

/* After a launch: the launch error, as a pt_status naming the kernel. */
static inline pt_status pt__launched(const char *what) {
  cudaError_t e = cudaGetLastError();
  if (e == cudaSuccess) return PT_OK;
  return pt__error(PT_EBACKEND, "cuda kernel %s: %s", what, cudaGetErrorString(e));
}

#endif
