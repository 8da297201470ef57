/* What follows a convolution's or linear layer's product: the bias, FP16Approx's output rounding,
 * and for perforation the scatter of the computed rows/columns into place with the skipped ones
 * filled from their neighbours. Operation order is the CPU backend's, so fp32 agrees to rounding
 * and fp16 to the last binary16 step. */
#include "kernels/cuda_common.cuh"

template <typename IT>
__global__ void pt_k_conv_epilogue(int64_t total, int c, int64_t hw, const void *src, int src_half, const float *b,
                                   int fp16, float *y) {
  PT__GRID_LOOP(i, total) {
    float v = src_half ? __half2float(((const __half *)src)[i]) : ((const float *)src)[i];
    if (b) v += pt__rd(b[((IT)i / (IT)hw) % (IT)c], fp16);
    y[i] = pt__rd(v, fp16);
  }
}

__global__ void pt_k_linear_bias(int64_t total, int out, int fp16, const float *b, float *y) {
  PT__GRID_LOOP(i, total) y[i] = pt__rd(y[i] + (b ? pt__rd(b[i % out], fp16) : 0.0f), fp16);
}

/* One computed output at kept coordinates (oy, ox), from either compact layout. */
__device__ __forceinline__ float pt__kept(const pt_conv_desc &d, const pt_cu_compact &c, int img, int co, int oy,
                                          int ox) {
  int64_t idx;
  const int s = d.perf_stride;
  if (c.cls == 0) {
    int r = d.perf_dir == PT_PERF_ROWS ? pt_km_perf_compact_index(oy, s, d.perf_offset) : oy;
    int q = d.perf_dir == PT_PERF_COLS ? pt_km_perf_compact_index(ox, s, d.perf_offset) : ox;
    idx = (int64_t)co * ((int64_t)d.n * c.nr * c.nc) + ((int64_t)img * c.nr + r) * c.nc + q;
  } else if (d.perf_dir == PT_PERF_ROWS) {
    int rr = oy % s;
    idx = c.cls_off[rr] + (c.nhwc ? (((int64_t)img * c.cls_cnt[rr] + oy / s) * d.ow + ox) * d.cout + co
                                  : (((int64_t)img * d.cout + co) * c.cls_cnt[rr] + oy / s) * d.ow + ox);
  } else {
    int rr = ox % s;
    idx = c.cls_off[rr] + (c.nhwc ? (((int64_t)img * d.oh + oy) * c.cls_cnt[rr] + ox / s) * d.cout + co
                                  : (((int64_t)img * d.cout + co) * d.oh + oy) * c.cls_cnt[rr] + ox / s);
  }
  float v = c.half ? __half2float(((const __half *)c.src)[idx]) : ((const float *)c.src)[idx];
  /* fp16 perforation rounds the convolution before the fill (a binary16 source already is) */
  return d.fp16 && d.perf_dir ? pt__rd16(v) : v;
}

/* IT: the index type of the decomposition. 64-bit division is emulated on the GPU and costs more than
 * the whole memory-bound kernel, so tensors under 2^31 elements decompose in 32 bits. */
template <typename IT>
__global__ void pt_k_conv_scatter(pt_conv_desc d, pt_cu_compact c, const float *b, float *y) {
  const int64_t total = (int64_t)d.n * d.cout * d.oh * d.ow;
  const int fp16 = d.fp16 != 0;
  PT__GRID_LOOP(i64, total) {
    const IT i = (IT)i64, ow = (IT)d.ow, oh = (IT)d.oh, cout = (IT)d.cout;
    int ox = (int)(i % ow), oy = (int)((i / ow) % oh);
    int co = (int)((i / (oh * ow)) % cout), img = (int)(i / (cout * oh * ow));
    const int pos = d.perf_dir == PT_PERF_ROWS ? oy : ox, size = d.perf_dir == PT_PERF_ROWS ? d.oh : d.ow;
    float v;
    if (d.perf_dir && pt_km_perf_skipped(pos, d.perf_stride, d.perf_offset)) {
      int a, bb;
      pt_km_perf_fill_src(pos, size, &a, &bb);
      if (a < 0) {
        v = 0.0f;
      } else {
        float va = d.perf_dir == PT_PERF_ROWS ? pt__kept(d, c, img, co, a, ox) : pt__kept(d, c, img, co, oy, a);
        if (a == bb) {
          v = va;
        } else {
          float vb = d.perf_dir == PT_PERF_ROWS ? pt__kept(d, c, img, co, bb, ox) : pt__kept(d, c, img, co, oy, bb);
          v = fp16 ? pt__rd16(pt__rd16(va + vb) * 0.5f) : (va + vb) / 2.0f;
        }
      }
    } else {
      v = pt__kept(d, c, img, co, oy, ox);
    }
    if (b) v += pt__rd(b[co], fp16);
    if (fp16 && (b || !d.perf_dir)) v = pt__rd16(v);
    y[i64] = v;
  }
}

extern "C" pt_status pt__cu_conv_epilogue(cudaStream_t stream, int64_t n, int c, int64_t hw, const void *src,
                                          int src_half, const float *b, int fp16, float *y) {
  int64_t total = n * c * hw;
  if (total <= 0) return PT_OK;
  if (total < ((int64_t)1 << 31))
    pt_k_conv_epilogue<uint32_t><<<pt__grid(total, 256), 256, 0, stream>>>(total, c, hw, src, src_half, b, fp16, y);
  else
    pt_k_conv_epilogue<int64_t><<<pt__grid(total, 256), 256, 0, stream>>>(total, c, hw, src, src_half, b, fp16, y);
  return pt__launched("conv_epilogue");
}

extern "C" pt_status pt__cu_linear_bias(cudaStream_t stream, int n, int out, int fp16, const float *b, float *y) {
  int64_t total = (int64_t)n * out;
  if (total <= 0) return PT_OK;
  pt_k_linear_bias<<<pt__grid(total, 256), 256, 0, stream>>>(total, out, fp16, b, y);
  return pt__launched("linear_bias");
}

extern "C" pt_status pt__cu_conv_scatter(cudaStream_t stream, const pt_conv_desc *d, const pt_cu_compact *c,
                                         const float *b, float *y) {
  int64_t total = (int64_t)d->n * d->cout * d->oh * d->ow;
  if (total <= 0) return PT_OK;
  if (total < ((int64_t)1 << 31)) pt_k_conv_scatter<uint32_t><<<pt__grid(total, 256), 256, 0, stream>>>(*d, *c, b, y);
  else pt_k_conv_scatter<int64_t><<<pt__grid(total, 256), 256, 0, stream>>>(*d, *c, b, y);
  return pt__launched("conv_scatter");
}
