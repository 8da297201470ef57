/* The P1 predictor on the GPU: one launch scores a batch of configs over every tune sample. The
 * deltas are sample-major (rows, n_slots, cols), so a block copies the slices of its few samples
 * into shared memory once and then loops over all the configs of the batch; each (config, sample)
 * item sums base + the config's deltas column by column in the CPU's order (bit-identical sums),
 * takes the argmax (a row with a non-finite value is wrong, as on the CPU) and counts a hit in a
 * shared counter per config. A second kernel adds the per-block counts. */
#include <stdlib.h>
#include <string.h>

#include "kernels/cuda_common.cuh"

#define PT__P1_MAX_ROWS 32

/* Rows per block that fit in `smem` bytes beside n counters; 0 when one row does not fit. */
static int pt__p1_rows_per_block(int cols, int n_slots, int n, size_t smem) {
  size_t per_row = ((size_t)n_slots + 1) * (size_t)cols * sizeof(float), fixed = (size_t)n * sizeof(int);
  if (fixed + per_row > smem) return 0;
  size_t r = (smem - fixed) / per_row;
  return r > PT__P1_MAX_ROWS ? PT__P1_MAX_ROWS : (int)r;
}

static size_t pt__p1_smem_limit(void) {
  static size_t limit;
  if (!limit) {
    int dev = 0, v = 0;
    cudaGetDevice(&dev);
    if (cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev) != cudaSuccess || v <= 0) v = 48 << 10;
    limit = (size_t)v;
  }
  return limit;
}

/* A block's start: zeroed per-config counters (sm[0..n)), then, when staged, its nr rows of base
 * and deltas copied to shared memory after them; *B and *D point at the rows to read. */
__device__ static void pt__p1_block_begin(float *sm, int n, int R, int nr, int r0, int cols, int n_slots, int staged,
                                          const float *base, const float *delta, const float **B, const float **D) {
  int *cnt = (int *)sm;
  float *sbase = sm + n, *sdelta = sbase + (size_t)R * cols;
  for (int k = threadIdx.x; k < n; k += blockDim.x) cnt[k] = 0;
  *B = base + (size_t)r0 * cols;
  *D = delta + (size_t)r0 * n_slots * cols;
  if (staged) {
    for (int i = threadIdx.x; i < nr * cols; i += blockDim.x) sbase[i] = (*B)[i];
    for (size_t i = threadIdx.x; i < (size_t)nr * n_slots * cols; i += blockDim.x) sdelta[i] = (*D)[i];
    *B = sbase;
    *D = sdelta;
  }
  __syncthreads();
}

/* staged: the block's rows are in shared memory; else deltas are read from global memory. */
__global__ void pt_k_p1_predict(int rows, int cols, int n_slots, int R, int staged, const float *base,
                                const float *delta, const int32_t *labels, int n, int max_k, const int *slots,
                                const int *ns, int *partial) {
  extern __shared__ float sm[];
  int *cnt = (int *)sm;
  const int r0 = blockIdx.x * R, nr = rows - r0 < R ? rows - r0 : R;
  const float *B, *D;
  pt__p1_block_begin(sm, n, R, nr, r0, cols, n_slots, staged, base, delta, &B, &D);
  for (int item = threadIdx.x; item < n * nr; item += blockDim.x) {
    int r = item % nr, k = item / nr;
    const int *sl = slots + (size_t)k * max_k;
    const int nk = ns[k];
    const float *br = B + (size_t)r * cols, *dr = D + (size_t)r * n_slots * cols;
    int best = 0, finite = 1;
    float bestv = 0.0f;
    for (int j = 0; j < cols; j++) {
      float v = br[j];
      for (int s = 0; s < nk; s++) v += dr[(size_t)sl[s] * cols + j];
      finite &= isfinite(v);
      if (j == 0 || v > bestv) {
        best = j;
        bestv = v;
      }
    }
    if (finite && best == labels[r0 + r]) atomicAdd(&cnt[k], 1); /* a non-finite output is wrong */
  }
  __syncthreads();
  for (int k = threadIdx.x; k < n; k += blockDim.x) partial[(size_t)blockIdx.x * n + k] = cnt[k];
}

/* Variant 2 for up to PT__P1_REG_COLS classes with staged rows: an item keeps its row's sums in
 * registers and walks the config's slots once (one slot index load per slot instead of one per
 * slot and column); each column still adds base, then the slots in order, as the CPU does. */
#define PT__P1_REG_COLS 16
__global__ void pt_k_p1_predict_regs(int rows, int cols, int n_slots, int R, const float *base, const float *delta,
                                     const int32_t *labels, int n, int max_k, const int *slots, const int *ns,
                                     int *partial) {
  extern __shared__ float sm[];
  int *cnt = (int *)sm;
  const int r0 = blockIdx.x * R, nr = rows - r0 < R ? rows - r0 : R;
  const float *sbase, *sdelta;
  pt__p1_block_begin(sm, n, R, nr, r0, cols, n_slots, 1, base, delta, &sbase, &sdelta);
  for (int item = threadIdx.x; item < n * nr; item += blockDim.x) {
    int r = item % nr, k = item / nr;
    const int *sl = slots + (size_t)k * max_k;
    const int nk = ns[k];
    const float *br = sbase + (size_t)r * cols, *dr = sdelta + (size_t)r * n_slots * cols;
    float acc[PT__P1_REG_COLS];
#pragma unroll
    for (int j = 0; j < PT__P1_REG_COLS; j++)
      if (j < cols) acc[j] = br[j];
    for (int s = 0; s < nk; s++) {
      const float *d = dr + (size_t)__ldg(&sl[s]) * cols;
#pragma unroll
      for (int j = 0; j < PT__P1_REG_COLS; j++)
        if (j < cols) acc[j] += d[j];
    }
    int best = 0;
    float bestv = acc[0];
#pragma unroll
    for (int j = 1; j < PT__P1_REG_COLS; j++)
      if (j < cols && (acc[j] > bestv || (isnan(bestv) && !isnan(acc[j])))) {
        best = j;
        bestv = acc[j];
      }
    if (best == labels[r0 + r]) atomicAdd(&cnt[k], 1);
  }
  __syncthreads();
  for (int k = threadIdx.x; k < n; k += blockDim.x) partial[(size_t)blockIdx.x * n + k] = cnt[k];
}

__global__ void pt_k_p1_sum(int nblocks, int n, const int *partial, int *correct) {
  PT__GRID_LOOP(k, n) {
    int s = 0;
    for (int b = 0; b < nblocks; b++) s += partial[(size_t)b * n + k];
    correct[k] = s;
  }
}

static void pt__p1_plan(int rows, int cols, int n_slots, int n, int *R, int *staged, size_t *smem) {
  size_t limit = pt__p1_smem_limit();
  int r = pt__p1_rows_per_block(cols, n_slots, n, limit);
  *staged = r > 0;
  *R = r > 0 ? r : 8;
  if (*R > rows) *R = rows > 0 ? rows : 1;
  *smem = (size_t)n * sizeof(int) + (*staged ? ((size_t)n_slots + 1) * (size_t)cols * (size_t)*R * sizeof(float) : 0);
}

extern "C" int64_t pt__cu_p1_partial_size(int rows, int cols, int n_slots, int n) {
  int R, staged;
  size_t smem;
  pt__p1_plan(rows, cols, n_slots, n, &R, &staged, &smem);
  return (int64_t)((rows + R - 1) / R) * n;
}

extern "C" pt_status pt__cu_p1_predict(cudaStream_t stream, int rows, int cols, int n_slots, const float *base,
                                       const float *delta, const int32_t *labels, int n, int max_k, const int *slots,
                                       const int *ns, int *partial, int *correct) {
  if (n <= 0 || rows <= 0) return PT_OK;
  int R, staged;
  size_t smem;
  pt__p1_plan(rows, cols, n_slots, n, &R, &staged, &smem);
  if (smem > pt__p1_smem_limit())
    return pt__error(PT_EUNSUPPORTED, "cuda P1: a batch of %d configs needs %zu bytes of shared memory (limit %zu)", n,
                     smem, pt__p1_smem_limit());
  /* variant 2 unless PT_CUDA_P1_KERNEL=1 asks for the first (the simplest, kept as the reference) */
  const char *v = getenv("PT_CUDA_P1_KERNEL");
  int nblocks = (rows + R - 1) / R;
  if (staged && cols <= PT__P1_REG_COLS && !(v && !strcmp(v, "1"))) {
    if (smem > (48 << 10))
      PT_CUDA_CHECK(cudaFuncSetAttribute(pt_k_p1_predict_regs, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    pt_k_p1_predict_regs<<<nblocks, 256, smem, stream>>>(rows, cols, n_slots, R, base, delta, labels, n, max_k, slots,
                                                         ns, partial);
  } else {
    if (smem > (48 << 10))
      PT_CUDA_CHECK(cudaFuncSetAttribute(pt_k_p1_predict, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    pt_k_p1_predict<<<nblocks, 256, smem, stream>>>(rows, cols, n_slots, R, staged, base, delta, labels, n, max_k,
                                                    slots, ns, partial);
  }
  PT__TRY(pt__launched("p1_predict"));
  pt_k_p1_sum<<<pt__grid(n, 128), 128, 0, stream>>>(nblocks, n, partial, correct);
  return pt__launched("p1_sum");
}
