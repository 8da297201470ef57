/* Entry points of the CUDA kernels in kernels/ (*.cu), callable from C. Every pointer is device memory
 * unless named host_*; every call is queued on `stream` and returns a pt_status (a failed launch
 * becomes PT_EBACKEND with CUDA's message). Half-precision buffers are uint16_t here (binary16 bits)
 * so that C code needs no cuda_fp16.h. Semantics mirror the CPU backend's op of the same name
 * (src/backend/cpu), which the GPU tests compare them with. */
#ifndef PT_CUDA_KERNELS_H
#define PT_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "backend/backend_iface.h"
#include "kernels/igemm_halo.h"
#include "kernels/igemm_simt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- fp16_round.cu ---- */
/* y (n) = binary16 bits of x rounded to nearest even. */
pt_status pt__cu_f32_to_f16(cudaStream_t stream, int64_t n, const float *x, uint16_t *y);
/* y (n) = x rounded to binary16, kept as float32 (x == y allowed). */
pt_status pt__cu_round_f16(cudaStream_t stream, int64_t n, const float *x, float *y);

/* ---- activation.cu, add.cu, batchnorm.cu, pool.cu, softmax.cu ---- */
pt_status pt__cu_activation(cudaStream_t stream, int is_relu, int64_t n, int fp16, const float *x, float *y);
pt_status pt__cu_add(cudaStream_t stream, int64_t n, int fp16, const float *a, const float *b, float *y);
pt_status pt__cu_batchnorm(cudaStream_t stream, int n, int c, int64_t hw, float eps, int fp16, const float *x,
                           const float *w, const float *b, const float *mean, const float *var, float *y);
pt_status pt__cu_pool2d(cudaStream_t stream, const pt_pool_desc *d, const float *x, float *y);
pt_status pt__cu_softmax(cudaStream_t stream, int n, int c, int fp16, const float *x, float *y);

/* ---- promise.cu ---- */
pt_status pt__cu_quantize(cudaStream_t stream, int64_t n, float lo, float hi, const float *x, float *y);
pt_status pt__cu_promise_noise(cudaStream_t stream, int64_t n, float scale, uint64_t key, uint64_t first,
                               const float *x, float *y);

/* ---- minmax.cu ---- */
#define PT_CU_MINMAX_BLOCKS 512
/* host_range = {min, max} of x (n), NaN ignored; scratch holds 2 * PT_CU_MINMAX_BLOCKS floats.
 * Synchronises the stream (the result is on the host). */
pt_status pt__cu_minmax(cudaStream_t stream, int64_t n, const float *x, float *scratch, float host_range[2]);

/* ---- conv_epilogue.cu: bias, fp16 rounding, and the perforation fill ---- */
/* y (n, c, hw) = src (n, c, hw) [+ b (c)], src float or binary16 (src_half). fp16: the bias is read
 * rounded and the sum is rounded, as FP16Approx does. src may equal y when both are float. */
pt_status pt__cu_conv_epilogue(cudaStream_t stream, int64_t n, int c, int64_t hw, const void *src, int src_half,
                               const float *b, int fp16, float *y);
/* y (n, out) = round?(y + round?(b)): the linear layer's bias after a GEMM. */
pt_status pt__cu_linear_bias(cudaStream_t stream, int n, int out, int fp16, const float *b, float *y);

/* Where the computed (kept) outputs of an approximate convolution are, for the scatter below. */
typedef struct pt_cu_compact {
  const void *src; /* float32, or binary16 when half */
  int half;
  int cls;     /* 0: GEMM layout (cout, n * nr * nc), position (image, kept row, kept column);
                  1: one packed (n, cout, cnt, ow) or (n, cout, oh, cnt) block per kept residue of the
                  perforated axis modulo the stride (the strided-convolution variant) */
  int nhwc;    /* layout 1: the blocks are channels-last, (n, cnt, ow, cout) or (n, oh, cnt, cout) */
  int nr, nc;  /* layout 0: kept rows and columns per image */
  int64_t cls_off[8]; /* layout 1: element offset of residue r's block in src (-1: none) */
  int cls_cnt[8];     /* layout 1: indices of residue r along the perforated axis */
} pt_cu_compact;
/* y (n, cout, oh, ow) from the computed outputs: kept positions copied, skipped rows/columns filled
 * from their neighbours (kernels/knob_math.h), bias added, fp16 rounding as the CPU backend does. */
pt_status pt__cu_conv_scatter(cudaStream_t stream, const pt_conv_desc *d, const pt_cu_compact *c, const float *b,
                              float *y);

/* ---- im2col.cu ---- */
/* Padded copy of x (n, cin, h, w) as (n, cin, h + 2ph, w + 2pw), float32 or binary16 (half). */
pt_status pt__cu_pad(cudaStream_t stream, const pt_conv_desc *d, const float *x, void *xp, int half);
/* Rows [start, start + len) (rows) or columns [start, start + len) of the padded input, packed as
 * (n, cin, len, w + 2pw) / (n, cin, h + 2ph, len), or channels-last (nhwc) in the same order. */
pt_status pt__cu_pad_window(cudaStream_t stream, const pt_conv_desc *d, int rows, int start, int len, int nhwc,
                            const float *x, void *xp, int half);
/* wm (cout, cin/groups, kh, kw) = w with the filter elements Conv2dSampling drops zeroed and the
 * others multiplied by d->samp_scale. */
pt_status pt__cu_mask_weights(cudaStream_t stream, const pt_conv_desc *d, const float *w, float *wm);
/* wt (cout, kh, kw, cig) binary16 = w (cout, cig, kh, kw): the filter order of NHWC convolutions. */
pt_status pt__cu_weights_khwc(cudaStream_t stream, int cout, int cig, int kh, int kw, const float *w, uint16_t *wt);
/* Reduced im2col: col (K', n * nr * nc), K' = groups * nkg rows (row g * nkg + t is flat filter
 * element kept[t] of group g's channels), columns (image, kept row, kept column) of the
 * perforation plan in d. float32 or binary16 (half). */
pt_status pt__cu_im2col(cudaStream_t stream, const pt_conv_desc *d, const int *kept, int nkg, const float *x,
                        void *col, int half);
/* The weights over the kept elements: wk (cout, nkg) = w (cout, Kg)[:, kept] * scale, rounded to
 * binary16 when half. */
pt_status pt__cu_gather_weights(cudaStream_t stream, int cout, int kg, const int *kept, int nkg, float scale,
                                const float *w, void *wk, int half);

/* ---- p1_predict.cu ---- */
/* P1 over a batch of configs. delta (rows, n_slots, cols) is sample-major, base (rows, cols),
 * labels (rows); slots (n, max_k) lists each config's delta slots (ns (n) of them, rest ignored).
 * correct (n) receives the number of rows whose argmax of base + sum of deltas equals the label.
 * partial: scratch of pt__cu_p1_partial_size(rows, cols, n_slots, n) ints. */
int64_t pt__cu_p1_partial_size(int rows, int cols, int n_slots, int n);
pt_status pt__cu_p1_predict(cudaStream_t stream, int rows, int cols, int n_slots, const float *base,
                            const float *delta, const int32_t *labels, int n, int max_k, const int *slots,
                            const int *ns, int *partial, int *correct);

#ifdef __cplusplus
}
#endif
/* ---- conv_igemm.cu: the fused implicit-GEMM convolution (kernels/igemm_layout.h) ---- */

/* Shared memory per block of pt__cu_conv_igemm. */
size_t pt__cu_igemm_smem_bytes(void);
/* w (k, c, kh, kw) fp32 -> wk (k, kpad) binary16 in the K table's order (table: device, g->kdim
 * entries), times scale; kpad >= kdim, a multiple of 8. */
pt_status pt__cu_igemm_weights(cudaStream_t stream, const pt_igemm_conv *g, const int *table, const float *w,
                               float scale, int kpad, void *wk);
/* y (n, oh, ow, k) binary16 = the convolution of x (n, h, w, c) binary16 with wk, plus bias (fp32,
 * or NULL), skipped rows or columns filled (g: pt_igemm_sizes done). Not yet chosen by the backend. */
pt_status pt__cu_conv_igemm(cudaStream_t stream, const pt_igemm_conv *g, const int *table, const void *x,
                            const void *wk, int kpad, const float *bias, void *y);

/* ---- conv_igemm_halo.cu: the halo-tile implicit-GEMM convolution (kernels/igemm_halo.h) ---- */

/* y (n, k, oh, ow) fp32 = the convolution planned in p (pt_ig2_make) of x (n, c, h, w) fp32 by w
 * (k, c, kh, kw) fp32 times scale, plus bias (or NULL), perforation's skipped outputs filled, with
 * FP16Approx's roundings when p->fp16; the products are binary16 on tensor cores. xs and wk: scratch
 * of pt_ig2_xs_bytes and pt_ig2_wk_bytes, 16-byte aligned. */
pt_status pt__cu_conv_ig2(cudaStream_t stream, const pt_ig2_plan *p, const float *x, const float *w, float scale,
                          const float *bias, void *xs, void *wk, float *y);

/* ---- conv_simt.cu: the fp32 implicit-GEMM convolution on CUDA cores (kernels/igemm_simt.h) ---- */

/* y (n, k, oh, ow) fp32 = the convolution g (pt_igemm_sizes done) of x (n, c, h, w) by w (k, c, kh,
 * kw) times scale over the K table (device, g->kdim entries), plus bias, skipped outputs filled. wt:
 * scratch of g->kdim * g->k floats. */
pt_status pt__cu_conv_simt(cudaStream_t stream, const pt_igemm_conv *g, const int *table, const float *x,
                           const float *w, float scale, const float *bias, float *wt, float *y);

/* ---- norm_err.cu ---- */
/* host = {sum (a - ref)^2 over finite a, sum ref^2, count of non-finite a} over n elements;
 * scratch: 3 doubles of device memory. Synchronises the stream. */
pt_status pt__cu_norm_err(cudaStream_t stream, int64_t n, const float *a, const float *ref, double *scratch,
                          double host[3]);

#endif
