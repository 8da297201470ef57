/* Softmax over the classes of x (n, c): one thread per row (c is a classifier's class count, so a
 * row is short); the sum is accumulated in double as on the CPU. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_softmax(int n, int c, int fp16, const float *x, float *y) {
  PT__GRID_LOOP(r, n) {
    const float *src = x + r * c;
    float *dst = y + r * c;
    float mx = -INFINITY;
    for (int j = 0; j < c; j++) mx = fmaxf(mx, pt__rd(src[j], fp16));
    double sum = 0.0;
    for (int j = 0; j < c; j++) sum += (dst[j] = expf(pt__rd(src[j], fp16) - mx));
    for (int j = 0; j < c; j++) dst[j] = pt__rd((float)(dst[j] / sum), fp16);
  }
}

extern "C" pt_status pt__cu_softmax(cudaStream_t stream, int n, int c, int fp16, const float *x, float *y) {
  if (n <= 0) return PT_OK;
  pt_k_softmax<<<pt__grid(n, 128), 128, 0, stream>>>(n, c, fp16, x, y);
  return pt__launched("softmax");
}
