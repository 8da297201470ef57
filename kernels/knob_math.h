/* Index math shared by the CPU backend and the CUDA kernels, so that the CPU tests check exactly
 * what the GPU runs. Everything here is `static inline` and marked PT_HD: __host__ __device__ under
 * nvcc, nothing in plain C. (The knob index math of DESIGN.md 4 joins this file with the knobs.) */
#ifndef PT_KNOB_MATH_H
#define PT_KNOB_MATH_H

#include <stdint.h>

#ifdef __CUDACC__
#define PT_HD __host__ __device__
#else
#define PT_HD
#endif

/* Output size of a convolution or pooling window along one axis. */
PT_HD static inline int pt_km_out_size(int in, int kernel, int stride, int pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

/* Input coordinate read by output coordinate o at kernel tap k; may be out of [0, in). */
PT_HD static inline int pt_km_in_coord(int o, int k, int stride, int pad) { return o * stride - pad + k; }

#endif
