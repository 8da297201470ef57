/* The halo-tile implicit-GEMM convolution (the GPU kernel issue), fp16 on tensor cores: the
 * backend's fused kernel for exact, perforated and sampled convolutions. Plan and index math:
 * kernels/igemm_halo.h (what a block computes, where each fragment's rows live in the halo, which
 * taps each chunk keeps); tests/test_igemm_halo.c runs this loop nest on the CPU with an emulated
 * ldmatrix and mma.
 *
 * Three kernels: the input staged once as (n, h, w, cp) binary16 in the plan's channel order (the
 * backend's tensors are NCHW fp32, so some conversion is needed anyway; cuDNN's fp16 path pays one
 * too), the weights gathered into (chunk, tap) block order, then the convolution: a 3-stage
 * cp.async pipeline over 16-channel chunks, each stage the block's input tile with its halo (and,
 * unless all of the block's weights stay resident in shared memory, the chunk's weights); each k
 * step of the chunk (a kept tap of its low 8 channels beside one of its high 8) is ldmatrix.x4 +
 * mma.sync from that one tile. The epilogue
 * stages the block's results in shared memory, writes them NCHW fp32 and fills perforation's skipped
 * outputs from the block's own neighbours, with FP16Approx's roundings (kernels/conv_epilogue.cu's
 * order). */
#include "kernels/cuda_common.cuh"
#include "kernels/igemm_halo.h"
#include "kernels/mma_ptx.cuh"

/* x (n, c, h, w) fp32 -> xs (n, h, w, cp) binary16 in the plan's channel slots: 32 x 32 tiles
 * through shared memory so that both the reads (along pixels) and the writes (along slots) are
 * coalesced. grid (pixel tiles, slot tiles, n), 32 x 8 threads. */
__global__ void pt_k_ig2_stage(pt_ig2_plan p, const float *x, __half *xs) {
  __shared__ float t[32][33];
  const int hw = p.g.h * p.g.w, img = blockIdx.z, pix0 = blockIdx.x * 32, pc0 = blockIdx.y * 32;
  for (int j = threadIdx.y; j < 32; j += 8) {
    const int c = pc0 + j < p.cp ? pt_ig2_chan(&p, pc0 + j) : -1, pix = pix0 + threadIdx.x;
    t[j][threadIdx.x] = c >= 0 && pix < hw ? x[((long long)img * p.g.c + c) * hw + pix] : 0.0f;
  }
  __syncthreads();
  for (int j = threadIdx.y; j < 32; j += 8) {
    const int pix = pix0 + j, pc = pc0 + threadIdx.x;
    if (pix < hw && pc < p.cp) xs[((long long)img * hw + pix) * p.cp + pc] = __float2half_rn(t[threadIdx.x][j]);
  }
}

/* w (k, c, kh, kw) fp32 -> wk (k, nblk * 16) binary16 in block order, times scale; a thread per
 * (output channel, block) finds the block's chunk once for its 16 elements. */
__global__ void pt_k_ig2_weights(pt_ig2_plan p, const float *w, float scale, __half *wk) {
  PT__GRID_LOOP(i, (int64_t)p.g.k * p.nblk) {
    const int n = (int)(i / p.nblk), b = (int)(i % p.nblk);
    for (int kk = 0; kk < PT_IG2_CH; kk++) {
      const long long o = pt_ig2_w_src(&p, n, b, kk);
      wk[i * PT_IG2_CH + kk] = __float2half_rn(o < 0 ? 0.0f : w[o] * scale);
    }
  }
}

/* One stage: chunk j's halo tile into buffer s (and its weights unless they are resident). */
__device__ __forceinline__ void pt__ig2_load(const pt_ig2_plan &p, __half *sa, __half *sb, const __half *xs,
                                             const __half *wk, int img0, int iy0, int ix0, int n0, int j, int b0,
                                             int s) {
  __half *a = sa + s * p.a_halves;
  for (int q = threadIdx.x; q < p.a_halves / 8; q += PT_IG_THREADS) {
    const int hp = q >> 1, h = q & 1;
    int img, iy, ix;
    __half *dst = a + pt_ig2_a_at(hp, h);
    if (pt_ig2_halo_src_at(&p, img0, iy0, ix0, hp, &img, &iy, &ix))
      pt__cp_async16(dst, xs + (((long long)img * p.g.h + iy) * p.g.w + ix) * p.cp + j * PT_IG2_CH + 8 * h);
    else
      *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
  }
  if (p.resident) return;
  const int kpad = p.nblk * PT_IG2_CH, nt = pt_ig2_steps(&p, j); /* b0: the chunk's first block */
  __half *b = sb + s * p.b_halves;
  for (int q = threadIdx.x; q < PT_IG_BN * nt * 2; q += PT_IG_THREADS) {
    const int nl = q / (2 * nt), t = q % (2 * nt) >> 1, h = q & 1;
    __half *dst = b + pt_ig2_b_at(&p, nl, t, 8 * h);
    if (n0 + nl < p.g.k) pt__cp_async16(dst, wk + (long long)(n0 + nl) * kpad + (b0 + t) * PT_IG2_CH + 8 * h);
    else *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
  }
}

/* All of the block's weights, once (resident plans). */
__device__ __forceinline__ void pt__ig2_load_resident(const pt_ig2_plan &p, __half *sb, const __half *wk, int n0) {
  const int kpad = p.nblk * PT_IG2_CH;
  for (int q = threadIdx.x; q < PT_IG_BN * p.nblk * 2; q += PT_IG_THREADS) {
    const int nl = q / (2 * p.nblk), b = q % (2 * p.nblk) >> 1, h = q & 1;
    __half *dst = sb + pt_ig2_b_at(&p, nl, b, 8 * h);
    if (n0 + nl < p.g.k) pt__cp_async16(dst, wk + (long long)(n0 + nl) * kpad + b * PT_IG2_CH + 8 * h);
    else *reinterpret_cast<uint4 *>(dst) = make_uint4(0, 0, 0, 0);
  }
}

/* What FP16Approx does after the product (conv_epilogue.cu): bias read rounded, the sum rounded. */
__device__ __forceinline__ float pt__ig2_finish(const pt_ig2_plan &p, float v, const float *bias, int n) {
  if (bias) v += pt__rd(bias[n], p.fp16);
  return p.fp16 && (bias || !p.g.perf_dir) ? pt__rd16(v) : v;
}

/* The block's staged results (sy: BM x LDY floats) -> y (NCHW fp32), then the skipped outputs. */
__device__ __forceinline__ void pt__ig2_store(const pt_ig2_plan &p, const float *sy, const float *bias, float *y,
                                              int bx, int n0, int img0) {
  const pt_igemm_conv &g = p.g;
  for (int q = threadIdx.x; q < PT_IG_BN * PT_IG_BM; q += PT_IG_THREADS) {
    const int nl = q / PT_IG_BM, ml = q % PT_IG_BM, n = n0 + nl;
    int slot, r, c;
    if (n >= g.k || !pt_ig2_row(&p, bx, ml, &slot, &r, &c)) continue;
    y[pt_ig2_y_at(&g, img0 + slot, n, pt_ig2_out(&g, 0, r), pt_ig2_out(&g, 1, c))] =
        pt__ig2_finish(p, sy[ml * PT_IG2_LDY + nl], bias, n);
  }
  const int fc = pt_ig2_fill_count(&p), per = p.ipb * fc;
  for (int q = threadIdx.x; q < PT_IG_BN * per; q += PT_IG_THREADS) {
    const int nl = q / per, slot = q % per / fc, e = q % fc, n = n0 + nl;
    int oy, ox, ma, mb, valid;
    pt_ig2_fill_at(&p, bx, slot, e, &oy, &ox, &ma, &mb, &valid);
    if (n >= g.k || !valid) continue;
    float v = 0.0f;
    if (ma >= 0) {
      const float va = sy[ma * PT_IG2_LDY + nl], vb = sy[mb * PT_IG2_LDY + nl];
      v = ma == mb ? va : p.fp16 ? pt__rd16(pt__rd16(va + vb) * 0.5f) : (va + vb) / 2.0f;
    }
    y[pt_ig2_y_at(&g, img0 + slot, n, oy, ox)] = pt__ig2_finish(p, v, bias, n);
  }
}

/* grid (p.blocks, output channel blocks), PT_IG_THREADS threads, p.smem bytes of shared memory. */
__global__ void __launch_bounds__(PT_IG_THREADS) pt_k_conv_ig2(pt_ig2_plan p, const __half *xs, const __half *wk,
                                                               const float *bias, float *y) {
  extern __shared__ __align__(16) unsigned char pt__ig2_raw[];
  __half *sa = reinterpret_cast<__half *>(pt__ig2_raw), *sb = sa + PT_IG2_STAGES * p.a_halves;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, bx = blockIdx.x, n0 = blockIdx.y * PT_IG_BN;
  const int wm = pt_igemm_warp_m0(warp), wn = pt_igemm_warp_n0(warp), ahalf = pt_ldm_a_col(lane) >> 3;
  int img0, r0, q0, iy0, ix0;
  pt_ig2_block(&p, bx, &img0, &r0, &q0);
  pt_ig2_origin(&p, bx, &iy0, &ix0);
  int abase[PT_IG_MI]; /* this lane's ldmatrix row of each m16 tile, as a halo pixel at tap 0 */
#pragma unroll
  for (int mi = 0; mi < PT_IG_MI; mi++) abase[mi] = pt_ig2_a_pixel(&p, bx, wm + 16 * mi + pt_ldm_a_row(lane));
  float acc[PT_IG_MI][PT_IG_NI][4];
#pragma unroll
  for (int i = 0; i < PT_IG_MI; i++)
#pragma unroll
    for (int j = 0; j < PT_IG_NI; j++) acc[i][j][0] = acc[i][j][1] = acc[i][j][2] = acc[i][j][3] = 0.0f;
  if (p.resident) pt__ig2_load_resident(p, sb, wk, n0); /* joins the first stage's group */
  int bl = 0; /* the first block of the next chunk to load */
#pragma unroll
  for (int s = 0; s < PT_IG2_STAGES - 1; s++) {
    if (s < p.chunks) pt__ig2_load(p, sa, sb, xs, wk, img0, iy0, ix0, n0, s, bl, s), bl += pt_ig2_steps(&p, s);
    pt__cp_async_commit(); /* empty groups keep the count uniform */
  }
  for (int j = 0, tb = 0; j < p.chunks; j++) { /* tb: the chunk's first block (resident weights) */
    pt__cp_async_wait<PT_IG2_STAGES - 2>(); /* chunk j's group is in */
    __syncthreads(); /* ... for every thread, and chunk j - 1's buffer is free */
    const int jn = j + PT_IG2_STAGES - 1;
    if (jn < p.chunks)
      pt__ig2_load(p, sa, sb, xs, wk, img0, iy0, ix0, n0, jn, bl, jn % PT_IG2_STAGES), bl += pt_ig2_steps(&p, jn);
    pt__cp_async_commit();
    const __half *A = sa + (j % PT_IG2_STAGES) * p.a_halves;
    const __half *B = p.resident ? sb : sb + (j % PT_IG2_STAGES) * p.b_halves;
    /* each k step: the next kept tap of each half of the chunk; a lane's ldmatrix row is in its half */
    unsigned long long mlo = pt_ig2_half_mask(&p, 2 * j), mhi = pt_ig2_half_mask(&p, 2 * j + 1);
    const int ns = pt_ig2_steps(&p, j);
    for (int i = 0, t = p.resident ? tb : 0; i < ns; i++, t++) {
      const int tlo = mlo ? __ffsll((long long)mlo) - 1 : -1, thi = mhi ? __ffsll((long long)mhi) - 1 : -1;
      mlo &= mlo - 1, mhi &= mhi - 1;
      const int mine = ahalf ? thi : tlo, off = mine < 0 ? 0 : pt_ig2_tap_off(&p, mine);
      unsigned a[PT_IG_MI][4], b[PT_IG_NI][2];
#pragma unroll
      for (int mi = 0; mi < PT_IG_MI; mi++) pt__ldmatrix_x4(a[mi], A + pt_ig2_a_at(abase[mi] + off, ahalf));
#pragma unroll
      for (int ni = 0; ni < PT_IG_NI; ni += 2) {
        unsigned r[4];
        pt__ldmatrix_x4(r, B + pt_ig2_b_at(&p, wn + 8 * ni + pt_ldm_b_n(lane), t, pt_ldm_b_k(lane)));
        b[ni][0] = r[0], b[ni][1] = r[1], b[ni + 1][0] = r[2], b[ni + 1][1] = r[3];
      }
#pragma unroll
      for (int mi = 0; mi < PT_IG_MI; mi++)
#pragma unroll
        for (int ni = 0; ni < PT_IG_NI; ni++) pt__mma16816(acc[mi][ni], a[mi], b[ni][0], b[ni][1]);
    }
    tb += ns;
  }
  pt__cp_async_wait<0>();
  __syncthreads(); /* the pipeline's buffers become the epilogue's staging tile */
  float *sy = reinterpret_cast<float *>(pt__ig2_raw);
#pragma unroll
  for (int mi = 0; mi < PT_IG_MI; mi++)
#pragma unroll
    for (int ni = 0; ni < PT_IG_NI; ni++)
#pragma unroll
      for (int i = 0; i < 4; i++) {
        const float v = acc[mi][ni][i]; /* perforation rounds the product before the fill */
        sy[(wm + 16 * mi + pt_mma_c_row(lane, i)) * PT_IG2_LDY + wn + 8 * ni + pt_mma_c_col(lane, i)] =
            p.fp16 && p.g.perf_dir ? pt__rd16(v) : v;
      }
  __syncthreads();
  pt__ig2_store(p, sy, bias, y, bx, n0, img0);
}

extern "C" pt_status pt__cu_conv_ig2(cudaStream_t stream, const pt_ig2_plan *p, const float *x, const float *w,
                                     float scale, const float *bias, void *xs, void *wk, float *y) {
  if (((uintptr_t)xs | (uintptr_t)wk) & 15)
    return pt__error(PT_EINVAL, "conv_igemm_halo: staged input or weights not 16-byte aligned");
  const int hw = p->g.h * p->g.w;
  const dim3 sg((unsigned)((hw + 31) / 32), (unsigned)((p->cp + 31) / 32), (unsigned)p->g.n);
  pt_k_ig2_stage<<<sg, dim3(32, 8), 0, stream>>>(*p, x, (__half *)xs);
  PT__TRY(pt__launched("igemm_halo_stage"));
  const int64_t nw = (int64_t)p->g.k * p->nblk;
  pt_k_ig2_weights<<<pt__grid(nw, 256), 256, 0, stream>>>(*p, w, scale, (__half *)wk);
  PT__TRY(pt__launched("igemm_halo_weights"));
  /* the opt-in is the kernel's, per device: set once to the most any plan asks (racing threads
   * would only set the same value) */
  static int opted[64];
  int dev = 0;
  cudaGetDevice(&dev);
  if (dev < 0 || dev >= 64 || !opted[dev]) {
    cudaError_t e = cudaFuncSetAttribute(pt_k_conv_ig2, cudaFuncAttributeMaxDynamicSharedMemorySize, PT_IG2_SMEM_MAX);
    if (e != cudaSuccess) {
      cudaGetLastError();
      return pt__error(PT_EUNSUPPORTED, "conv_igemm_halo: %d bytes of shared memory: %s", PT_IG2_SMEM_MAX,
                       cudaGetErrorString(e));
    }
    if (dev >= 0 && dev < 64) opted[dev] = 1;
  }
  const dim3 grid((unsigned)p->blocks, (unsigned)((p->g.k + PT_IG_BN - 1) / PT_IG_BN));
  pt_k_conv_ig2<<<grid, PT_IG_THREADS, (size_t)p->smem, stream>>>(*p, (const __half *)xs, (const __half *)wk, bias, y);
  return pt__launched("conv_igemm_halo");
}
