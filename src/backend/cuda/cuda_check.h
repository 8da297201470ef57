/* CUDA runtime calls go through PT_CUDA_CHECK, which turns a failure into a pt_status with the
 * call, the file and line and CUDA's own message in the detail. */
#ifndef PT_CUDA_CHECK_H
#define PT_CUDA_CHECK_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define PT_CUDA_CHECK(call)                                                                          \
  do {                                                                                              \
    cudaError_t pt__e_ = (call);                                                                    \
    if (pt__e_ != cudaSuccess)                                                                      \
      return pt__error(pt__e_ == cudaErrorMemoryAllocation ? PT_ENOMEM : PT_EBACKEND, "%s:%d: %s: %s", \
                       __FILE__, __LINE__, #call, cudaGetErrorString(pt__e_));                      \
  } while (0)

/* Number of usable CUDA devices; 0 with *why set (static string) when there are none. */
int pt__cuda_device_count(const char **why);

/* Converts n floats to binary16 bits on the GPU (__float2half_rn): host buffers in and out. */
pt_status pt__cuda_f32_to_f16(const float *host_x, uint16_t *host_y, size_t n);

#endif
