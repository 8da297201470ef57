/* Max and average pooling (average counts padding, as PyTorch's count_include_pad=True); one thread
 * per output element. NaN propagates through max as on the CPU. */
#include "kernels/cuda_common.cuh"

__global__ void pt_k_pool2d(pt_pool_desc d, const float *x, float *y) {
  const int64_t total = (int64_t)d.n * d.c * d.oh * d.ow;
  const float area = (float)(d.kh * d.kw);
  PT__GRID_LOOP(i, total) {
    int ox = (int)(i % d.ow), oy = (int)((i / d.ow) % d.oh);
    int64_t pl = i / ((int64_t)d.oh * d.ow);
    const float *src = x + pl * d.h * d.w;
    float acc = d.is_max ? -INFINITY : 0.0f;
    for (int ki = 0; ki < d.kh; ki++) {
      int iy = pt_km_in_coord(oy, ki, d.sh, d.ph);
      if (iy < 0 || iy >= d.h) continue;
      for (int kj = 0; kj < d.kw; kj++) {
        int ix = pt_km_in_coord(ox, kj, d.sw, d.pw);
        if (ix < 0 || ix >= d.w) continue;
        float v = pt__rd(src[(int64_t)iy * d.w + ix], d.fp16);
        if (d.is_max) {
          if (v > acc || isnan(v)) acc = v;
        } else {
          acc += v;
        }
      }
    }
    y[i] = pt__rd(d.is_max ? acc : acc / area, d.fp16);
  }
}

extern "C" pt_status pt__cu_pool2d(cudaStream_t stream, const pt_pool_desc *d, const float *x, float *y) {
  int64_t total = (int64_t)d->n * d->c * d->oh * d->ow;
  if (total <= 0) return PT_OK;
  pt_k_pool2d<<<pt__grid(total, 256), 256, 0, stream>>>(*d, x, y);
  return pt__launched("pool2d");
}
