/* Min and max of a tensor (PromiseSim's range calibration), NaN ignored: per-block partials, then one
 * block folds them. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_minmax_partial(int64_t n, const float *x, float *part) {
  __shared__ float slo[256], shi[256];
  float lo = INFINITY, hi = -INFINITY;
  PT__GRID_LOOP(i, n) {
    float v = x[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  slo[threadIdx.x] = lo;
  shi[threadIdx.x] = hi;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) {
      slo[threadIdx.x] = fminf(slo[threadIdx.x], slo[threadIdx.x + s]);
      shi[threadIdx.x] = fmaxf(shi[threadIdx.x], shi[threadIdx.x + s]);
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    part[2 * blockIdx.x] = slo[0];
    part[2 * blockIdx.x + 1] = shi[0];
  }
}

__global__ void pt_k_minmax_fold(int nb, float *part) {
  __shared__ float slo[PT_CU_MINMAX_BLOCKS], shi[PT_CU_MINMAX_BLOCKS];
  int t = threadIdx.x;
  slo[t] = t < nb ? part[2 * t] : INFINITY;
  shi[t] = t < nb ? part[2 * t + 1] : -INFINITY;
  __syncthreads();
  for (int s = PT_CU_MINMAX_BLOCKS / 2; s > 0; s >>= 1) {
    if (t < s) {
      slo[t] = fminf(slo[t], slo[t + s]);
      shi[t] = fmaxf(shi[t], shi[t + s]);
    }
    __syncthreads();
  }
  if (t == 0) {
    part[0] = slo[0];
    part[1] = shi[0];
  }
}

extern "C" pt_status pt__cu_minmax(cudaStream_t stream, int64_t n, const float *x, float *scratch,
                                   float host_range[2]) {
  host_range[0] = INFINITY;
  host_range[1] = -INFINITY;
  if (n <= 0) return PT_OK;
  unsigned nb = pt__grid(n, 256);
  if (nb > PT_CU_MINMAX_BLOCKS) nb = PT_CU_MINMAX_BLOCKS;
  pt_k_minmax_partial<<<nb, 256, 0, stream>>>(n, x, scratch);
  PT__TRY(pt__launched("minmax_partial"));
  pt_k_minmax_fold<<<1, PT_CU_MINMAX_BLOCKS, 0, stream>>>((int)nb, scratch);
  PT__TRY(pt__launched("minmax_fold"));
  PT_CUDA_CHECK(cudaMemcpyAsync(host_range, scratch, 2 * sizeof(float), cudaMemcpyDeviceToHost, stream));
  PT_CUDA_CHECK(cudaStreamSynchronize(stream));
  return PT_OK;
}
