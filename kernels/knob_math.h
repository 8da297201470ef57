/* Index math shared by the CPU backend and the CUDA kernels, so that the CPU tests check exactly
 * what the GPU runs. Everything here is `static inline` and marked PT_HD: __host__ __device__ under
 * nvcc, nothing in plain C. The semantics are docs/design.md's ("Knobs"), to the letter. */
#ifndef PT_KNOB_MATH_H
#define PT_KNOB_MATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PT_HD __host__ __device__
#else
#define PT_HD
#endif

/* ---- convolution / pooling windows ---- */

/* Output size of a convolution or pooling window along one axis. */
PT_HD static inline int pt_km_out_size(int in, int kernel, int stride, int pad) {
  return (in + 2 * pad - kernel) / stride + 1;
}

/* Input coordinate read by output coordinate o at kernel tap k; may be out of [0, in). */
PT_HD static inline int pt_km_in_coord(int o, int k, int stride, int pad) { return o * stride - pad + k; }

/* ---- PerforateConv2dStride: along one axis of the output, indices offset, offset+stride, ...
 * are skipped (not computed) and filled from their neighbours. stride >= 2, 0 <= offset < stride. */

PT_HD static inline int pt_km_perf_skipped(int i, int stride, int offset) {
  return i >= offset && (i - offset) % stride == 0;
}

/* How many of the `size` indices are computed. */
PT_HD static inline int pt_km_perf_kept_count(int size, int stride, int offset) {
  int skipped = size > offset ? (size - offset + stride - 1) / stride : 0;
  return size - skipped;
}

/* The k-th computed index (k < pt_km_perf_kept_count): maps a compact output row to its place. */
PT_HD static inline int pt_km_perf_kept_index(int k, int stride, int offset) {
  if (k < offset) return k;
  int j = k - offset;
  return offset + (j / (stride - 1)) * stride + 1 + j % (stride - 1);
}

/* The inverse of pt_km_perf_kept_index: the compact position of a computed index i (i must not be
 * skipped), i.e. how many computed indices come before it. */
PT_HD static inline int pt_km_perf_compact_index(int i, int stride, int offset) {
  int skipped_before = i > offset ? (i - 1 - offset) / stride + 1 : 0;
  return i - skipped_before;
}

/* Where a skipped index i of an axis of length `size` takes its value from: *a and *b are the
 * neighbours to average, or *a == *b for a copy; *a == -1 means zero (an axis of length 1).
 * Index 0 copies index 1; the last index copies the one before; others average i-1 and i+1. */
PT_HD static inline void pt_km_perf_fill_src(int i, int size, int *a, int *b) {
  if (i == 0) {
    *a = *b = size > 1 ? 1 : -1;
  } else if (i == size - 1) {
    *a = *b = i - 1;
  } else {
    *a = i - 1;
    *b = i + 1;
  }
}

/* ---- Conv2dSampling: per output channel, the flattened filter (cin/groups x kh x kw) loses the
 * elements at skip_offset, skip_offset + skip_every, ...; when skip_every == kh == kw == 3 the
 * dropped in-channel positions of channel c are instead (c + skip_offset) mod 3, +3, +6. */

PT_HD static inline int pt_km_samp_dropped(int flat, int kh, int kw, int skip_every, int skip_offset) {
  if (skip_every == 3 && kh == 3 && kw == 3) {
    int c = flat / 9, pos = flat % 9;
    return pos % 3 == (c + skip_offset) % 3;
  }
  return flat >= skip_offset && (flat - skip_offset) % skip_every == 0;
}

/* The filter elements Conv2dSampling keeps of one group's flattened filter (kg = cin/groups x kh x
 * kw elements), in order: their flat indices go to kept (room for kg) and the count is returned.
 * skip_every == 0 keeps every element. */
PT_HD static inline int pt_km_samp_kept(int kg, int kh, int kw, int skip_every, int skip_offset, int *kept) {
  int n = 0;
  for (int f = 0; f < kg; f++)
    if (!skip_every || !pt_km_samp_dropped(f, kh, kw, skip_every, skip_offset)) kept[n++] = f;
  return n;
}

/* Scale applied to the kept weights: 1 + interp_rate / (skip_every - 1), as a float32 (PyTorch
 * multiplies the float32 weight by this Python scalar in float32). */
PT_HD static inline float pt_km_samp_scale(int skip_every, double interp_rate) {
  return (float)(1.0 + 1.0 / (double)(skip_every - 1) * interp_rate);
}

/* ---- PromiseSim ---- */

/* 8-bit quantisation over [lo, hi]: step (hi - lo) / 256, floor to a step, clamp to [lo, hi]. An
 * empty range (hi <= lo) maps everything to lo. */
PT_HD static inline float pt_km_quantize(float t, float lo, float hi) {
  if (!(hi > lo)) return lo;
  float step = (hi - lo) / 256.0f;
  float q = floorf((t - lo) / step) * step + lo;
  return q < lo ? lo : (q > hi ? hi : q);
}

/* PROMISE's noise scale for noise levels 0..8. */
PT_HD static inline float pt_km_promise_scale(int level) {
  const float s[9] = {0.75f, 0.64f, 0.336f, 0.21f, 0.168f, 0.14f, 0.11f, 0.0784f, 0.005f};
  return s[level < 0 ? 0 : (level > 8 ? 8 : level)];
}

/* A standard normal sample that depends only on (key, index): a counter-based generator
 * (splitmix64 hashing + Box-Muller), so the noise of an element is the same whatever the batch
 * size, thread count or backend. */
PT_HD static inline uint64_t pt_km_hash64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

PT_HD static inline float pt_km_normal(uint64_t key, uint64_t index) {
  uint64_t h = pt_km_hash64(key ^ pt_km_hash64(index));
  /* two 26-bit uniforms in (0, 1] and [0, 1) */
  double u1 = ((double)(h >> 38) + 1.0) / 67108864.0;
  double u2 = (double)((h >> 6) & 0x3ffffff) / 67108864.0;
  return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

#endif
