/* How far one convolution variant's output is from another's: sum (a - ref)^2, sum ref^2 and the
 * count of non-finite values of a, for the backend's timed choice, which never keeps a variant that
 * disagrees with the reference (cuda_conv_pick.c). Block sums in double, then one atomic per block. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_norm_err(int64_t n, const float *a, const float *ref, double *acc) {
  __shared__ double sd[256], sr[256];
  __shared__ unsigned long long bad;
  if (threadIdx.x == 0) bad = 0;
  __syncthreads();
  double d = 0.0, r = 0.0;
  unsigned long long nb = 0;
  PT__GRID_LOOP(i, n) {
    const float v = a[i], w = ref[i];
    if (!isfinite(v)) nb++;
    else d += ((double)v - w) * ((double)v - w);
    r += (double)w * w;
  }
  sd[threadIdx.x] = d, sr[threadIdx.x] = r;
  if (nb) atomicAdd(&bad, nb);
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if ((int)threadIdx.x < s) sd[threadIdx.x] += sd[threadIdx.x + s], sr[threadIdx.x] += sr[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(&acc[0], sd[0]);
    atomicAdd(&acc[1], sr[0]);
    if (bad) atomicAdd(&acc[2], (double)bad);
  }
}

extern "C" pt_status pt__cu_norm_err(cudaStream_t stream, int64_t n, const float *a, const float *ref, double *scratch,
                                     double host[3]) {
  if (cudaMemsetAsync(scratch, 0, 3 * sizeof(double), stream) != cudaSuccess)
    return pt__error(PT_EBACKEND, "norm_err: %s", cudaGetErrorString(cudaGetLastError()));
  const unsigned blocks = pt__grid(n, 256) < 1024 ? pt__grid(n, 256) : 1024;
  pt_k_norm_err<<<blocks, 256, 0, stream>>>(n, a, ref, scratch);
  PT__TRY(pt__launched("norm_err"));
  if (cudaMemcpyAsync(host, scratch, 3 * sizeof(double), cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess)
    return pt__error(PT_EBACKEND, "norm_err: %s", cudaGetErrorString(cudaGetLastError()));
  return PT_OK;
}
