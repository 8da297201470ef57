#include <stdint.h>

#include "backend/cuda/cuda_check.h"

int pt__cuda_device_count(const char **why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *why = cudaGetErrorString(e);
    return 0;
  }
  if (n == 0) *why = "no CUDA device";
  return n;
}
