/* The reduced im2col behind the approximate convolutions: columns only for the computed output
 * positions (perforation) and rows only for the kept filter elements (sampling), so the GEMM that
 * follows is smaller by the knob's factor. Also the padded input copy of the strided-convolution
 * perforation variant and the gathered (sampled, scaled) weights. Index math: kernels/knob_math.h. */
#include "kernels/cuda_common.cuh"

template <typename T> __device__ __forceinline__ T pt__cvt(float v);
template <> __device__ __forceinline__ float pt__cvt<float>(float v) { return v; }
template <> __device__ __forceinline__ __half pt__cvt<__half>(float v) { return __float2half_rn(v); }

template <typename T>
__global__ void pt_k_pad(pt_conv_desc d, const float *x, T *xp) {
  const int hp = d.h + 2 * d.ph, wp = d.w + 2 * d.pw;
  const int64_t total = (int64_t)d.n * d.cin * hp * wp;
  PT__GRID_LOOP(i, total) {
    int px = (int)(i % wp), py = (int)((i / wp) % hp);
    int64_t pl = i / ((int64_t)hp * wp);
    int iy = py - d.ph, ix = px - d.pw;
    float v = iy >= 0 && iy < d.h && ix >= 0 && ix < d.w ? x[(pl * d.h + iy) * d.w + ix] : 0.0f;
    xp[i] = pt__cvt<T>(v);
  }
}

/* Rows [start, start + len) (rows != 0) or columns [start, start + len) of the zero-padded input,
 * packed, in NCHW or NHWC order: one residue's input window of the strided perforation variant. */
template <typename T, typename IT>
__global__ void pt_k_pad_window(pt_conv_desc d, int rows, int start, int len, int nhwc, const float *x, T *xp) {
  const int hp = d.h + 2 * d.ph, wp = d.w + 2 * d.pw;
  const IT H = rows ? len : hp, W = rows ? wp : len, C = d.cin;
  const int64_t total = (int64_t)d.n * C * H * W;
  PT__GRID_LOOP(i64, total) {
    const IT i = (IT)i64;
    int c, xx, yy;
    int64_t img;
    if (nhwc) {
      c = (int)(i % C), xx = (int)((i / C) % W), yy = (int)((i / (C * W)) % H);
      img = (int64_t)(i / (C * W * H));
    } else {
      xx = (int)(i % W), yy = (int)((i / W) % H), c = (int)((i / (W * H)) % C);
      img = (int64_t)(i / (W * H * C));
    }
    int iy = (rows ? start + yy : yy) - d.ph, ix = (rows ? xx : start + xx) - d.pw;
    float v = iy >= 0 && iy < d.h && ix >= 0 && ix < d.w ? x[((img * d.cin + c) * d.h + iy) * d.w + ix] : 0.0f;
    xp[i64] = pt__cvt<T>(v);
  }
}

/* Weights (cout, cig, kh, kw) -> (cout, kh, kw, cig) binary16 (cuDNN's NHWC filter order). */
__global__ void pt_k_weights_khwc(int cout, int cig, int kh, int kw, const float *w, __half *wt) {
  const int64_t total = (int64_t)cout * cig * kh * kw;
  PT__GRID_LOOP(i, total) {
    int c = (int)(i % cig), kj = (int)((i / cig) % kw), ki = (int)((i / ((int64_t)cig * kw)) % kh);
    int64_t co = i / ((int64_t)cig * kw * kh);
    wt[i] = __float2half_rn(w[((co * cig + c) * kh + ki) * kw + kj]);
  }
}

template <typename T, typename IT>
__global__ void pt_k_im2col(pt_conv_desc d, const int *kept, int nkg, int nr, int nc, const float *x, T *col) {
  const IT M = (IT)d.n * nr * nc;
  const int groups = d.groups, cig = d.cin / groups, khw = d.kh * d.kw;
  const int64_t total = (int64_t)groups * nkg * M;
  PT__GRID_LOOP(i64, total) {
    const IT i = (IT)i64, m = i % M;
    int t = (int)(i / M);
    int g = t / nkg, flat = kept ? kept[t % nkg] : t % nkg;
    int q = (int)(m % (IT)nc), r = (int)((m / (IT)nc) % (IT)nr), img = (int)(m / ((IT)nc * nr));
    int oy = d.perf_dir == PT_PERF_ROWS ? pt_km_perf_kept_index(r, d.perf_stride, d.perf_offset) : r;
    int ox = d.perf_dir == PT_PERF_COLS ? pt_km_perf_kept_index(q, d.perf_stride, d.perf_offset) : q;
    int c = g * cig + flat / khw, ki = (flat / d.kw) % d.kh, kj = flat % d.kw;
    int iy = pt_km_in_coord(oy, ki, d.sh, d.ph), ix = pt_km_in_coord(ox, kj, d.sw, d.pw);
    float v = iy >= 0 && iy < d.h && ix >= 0 && ix < d.w ? x[(((int64_t)img * d.cin + c) * d.h + iy) * d.w + ix] : 0.0f;
    col[i64] = pt__cvt<T>(v);
  }
}

template <typename T>
__global__ void pt_k_gather_weights(int cout, int kg, const int *kept, int nkg, float scale, const float *w, T *wk) {
  const int64_t total = (int64_t)cout * nkg;
  PT__GRID_LOOP(i, total) {
    int co = (int)(i / nkg), t = (int)(i % nkg);
    float v = w[(int64_t)co * kg + (kept ? kept[t] : t)];
    wk[i] = pt__cvt<T>(scale != 1.0f ? v * scale : v);
  }
}

/* wm (cout, kg) = w with Conv2dSampling's dropped filter elements zeroed and the kept ones scaled:
 * an exact convolution by wm computes the sampled one (the zeros add nothing). */
__global__ void pt_k_mask_weights(int cout, int kg, int kh, int kw, int every, int offset, float scale, const float *w,
                                  float *wm) {
  const int64_t total = (int64_t)cout * kg;
  PT__GRID_LOOP(i, total) {
    int f = (int)(i % kg);
    wm[i] = pt_km_samp_dropped(f, kh, kw, every, offset) ? 0.0f : w[i] * scale;
  }
}

extern "C" pt_status pt__cu_mask_weights(cudaStream_t stream, const pt_conv_desc *d, const float *w, float *wm) {
  const int kg = d->cin / d->groups * d->kh * d->kw;
  const int64_t total = (int64_t)d->cout * kg;
  if (total <= 0) return PT_OK;
  pt_k_mask_weights<<<pt__grid(total, 256), 256, 0, stream>>>(d->cout, kg, d->kh, d->kw, d->samp_every, d->samp_offset,
                                                              d->samp_scale, w, wm);
  return pt__launched("mask_weights");
}

extern "C" pt_status pt__cu_pad(cudaStream_t stream, const pt_conv_desc *d, const float *x, void *xp, int half) {
  int64_t total = (int64_t)d->n * d->cin * (d->h + 2 * d->ph) * (d->w + 2 * d->pw);
  if (total <= 0) return PT_OK;
  if (half) pt_k_pad<__half><<<pt__grid(total, 256), 256, 0, stream>>>(*d, x, (__half *)xp);
  else pt_k_pad<float><<<pt__grid(total, 256), 256, 0, stream>>>(*d, x, (float *)xp);
  return pt__launched("pad");
}

extern "C" pt_status pt__cu_im2col(cudaStream_t stream, const pt_conv_desc *d, const int *kept, int nkg,
                                   const float *x, void *col, int half) {
  int nr = d->perf_dir == PT_PERF_ROWS ? pt_km_perf_kept_count(d->oh, d->perf_stride, d->perf_offset) : d->oh;
  int nc = d->perf_dir == PT_PERF_COLS ? pt_km_perf_kept_count(d->ow, d->perf_stride, d->perf_offset) : d->ow;
  int64_t total = (int64_t)d->groups * nkg * d->n * nr * nc;
  if (total <= 0) return PT_OK;
  const unsigned g = pt__grid(total, 256);
  const int small = total < ((int64_t)1 << 31);
  if (half && small) pt_k_im2col<__half, uint32_t><<<g, 256, 0, stream>>>(*d, kept, nkg, nr, nc, x, (__half *)col);
  else if (half) pt_k_im2col<__half, int64_t><<<g, 256, 0, stream>>>(*d, kept, nkg, nr, nc, x, (__half *)col);
  else if (small) pt_k_im2col<float, uint32_t><<<g, 256, 0, stream>>>(*d, kept, nkg, nr, nc, x, (float *)col);
  else pt_k_im2col<float, int64_t><<<g, 256, 0, stream>>>(*d, kept, nkg, nr, nc, x, (float *)col);
  return pt__launched("im2col");
}

extern "C" pt_status pt__cu_gather_weights(cudaStream_t stream, int cout, int kg, const int *kept, int nkg, float scale,
                                           const float *w, void *wk, int half) {
  int64_t total = (int64_t)cout * nkg;
  if (total <= 0) return PT_OK;
  if (half)
    pt_k_gather_weights<__half><<<pt__grid(total, 256), 256, 0, stream>>>(cout, kg, kept, nkg, scale, w, (__half *)wk);
  else
    pt_k_gather_weights<float><<<pt__grid(total, 256), 256, 0, stream>>>(cout, kg, kept, nkg, scale, w, (float *)wk);
  return pt__launched("gather_weights");
}

extern "C" pt_status pt__cu_pad_window(cudaStream_t stream, const pt_conv_desc *d, int rows, int start, int len,
                                       int nhwc, const float *x, void *xp, int half) {
  int64_t total = (int64_t)d->n * d->cin * len * (rows ? d->w + 2 * d->pw : d->h + 2 * d->ph);
  if (total <= 0) return PT_OK;
  const unsigned g = pt__grid(total, 256);
  const int small = total < ((int64_t)1 << 31);
  if (half && small) pt_k_pad_window<__half, uint32_t><<<g, 256, 0, stream>>>(*d, rows, start, len, nhwc, x, (__half *)xp);
  else if (half) pt_k_pad_window<__half, int64_t><<<g, 256, 0, stream>>>(*d, rows, start, len, nhwc, x, (__half *)xp);
  else if (small) pt_k_pad_window<float, uint32_t><<<g, 256, 0, stream>>>(*d, rows, start, len, nhwc, x, (float *)xp);
  else pt_k_pad_window<float, int64_t><<<g, 256, 0, stream>>>(*d, rows, start, len, nhwc, x, (float *)xp);
  return pt__launched("pad_window");
}

extern "C" pt_status pt__cu_weights_khwc(cudaStream_t stream, int cout, int cig, int kh, int kw, const float *w,
                                         uint16_t *wt) {
  int64_t total = (int64_t)cout * cig * kh * kw;
  if (total <= 0) return PT_OK;
  pt_k_weights_khwc<<<pt__grid(total, 256), 256, 0, stream>>>(cout, cig, kh, kw, w, (__half *)wt);
  return pt__launched("weights_khwc");
}
