/* CUDA convolutions. Exact ones run through cuDNN (fp32 with FMA math so that results stay within
 * 1e-5 of the CPU reference; fp16 on tensor cores), with the algorithm found once per shape
 * (cudnnFindConvolutionForwardAlgorithmEx) and cached with its descriptors. Approximate ones
 * compute only what the knob keeps:
 *  - perforation, variant "cudnn": the kept rows (columns) of residue r modulo the stride are a
 *    convolution with the stride multiplied by the perforation stride over the input shifted by r
 *    rows, which cuDNN runs at full speed; the input is padded once so that every residue can use
 *    zero padding;
 *  - sampling, variant "cudnn": cuDNN's exact convolution by weights with the dropped elements
 *    zeroed and the kept ones scaled (no less work than exact, but cuDNN's speed);
 *  - perforation or sampling, variant "gemm": reduced im2col (kept positions x kept filter
 *    elements) + one cuBLAS GEMM per group (batched);
 * then one kernel scatters the computed outputs, fills the skipped ones, adds the bias and rounds
 * (kernels/conv_epilogue.cu). Index math: kernels/knob_math.h. The implicit-GEMM variant is
 * cuda_igemm.c; which variant runs is timed once per shape and knob (cuda_conv_pick.c) unless the
 * environment fixes it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "kernels/knob_math.h"
#include "predtuner/log.h"

#define PT__CU_WS_MAX ((size_t)1 << 30)    /* cuDNN workspace ceiling */
#define PT__CU_COL_MAX ((size_t)512 << 20) /* im2col bytes per chunk of images */

static void drop_last(pt_cuda_ctx *c);

void pt__cuda_conv_cache_free(pt_cuda_ctx *c) {
  while (c->n_algos > 0) drop_last(c);
  free(c->algos);
  c->algos = NULL;
  c->n_algos = c->cap_algos = 0;
  free(c->picks);
  c->picks = NULL;
  c->n_picks = c->cap_picks = 0;
}

static pt_status ensure_ws(pt_cuda_ctx *c, size_t bytes) {
  if (bytes <= c->ln->ws_bytes && c->ln->ws) return PT_OK;
  PT_CUDA_CHECK(cudaStreamSynchronize(c->ln->stream));
  cudaFree(c->ln->ws);
  c->ln->ws = NULL;
  c->ln->ws_bytes = 0;
  PT__TRY(pt__cuda_malloc(c, bytes, &c->ln->ws, "the cuDNN workspace"));
  c->ln->ws_bytes = bytes;
  return PT_OK;
}

/* A cuDNN convolution of x (n, cin, hx, wx; strides xs) by w (cout, cin/groups, kh, kw) into packed
 * y (n, cout, yh, yw), in fp32 or binary16 (half). */
typedef struct cu_conv {
  int half, n, cin, hx, wx, xs[3], cout, kh, kw, groups, ph, pw, sh, sw, yh, yw;
  int nhwc; /* x, w and y channels-last (packed; xs unused) */
} cu_conv;

/* Drops the newest cache entry (its shape turned out unusable). */
static void drop_last(pt_cuda_ctx *c) {
  pt_cu_algo *a = &c->algos[--c->n_algos];
  cudnnDestroyTensorDescriptor(a->xd);
  cudnnDestroyTensorDescriptor(a->yd);
  cudnnDestroyFilterDescriptor(a->wd);
  cudnnDestroyConvolutionDescriptor(a->cd);
}

static pt_status find_algo(pt_cuda_ctx *c, const cu_conv *v, const void *x, const void *w, void *y, pt_cu_algo **out) {
  int key[20] = {v->half, v->n, v->cin, v->hx, v->wx, v->xs[0], v->xs[1], v->xs[2], v->cout, v->kh,
                 v->kw, v->groups, v->ph, v->pw, v->sh, v->sw, v->yh, v->yw, v->nhwc, 0};
  for (int i = 0; i < c->n_algos; i++)
    if (!memcmp(c->algos[i].key, key, sizeof key)) {
      *out = &c->algos[i];
      return PT_OK;
    }
  if (c->n_algos == c->cap_algos) {
    int cap = c->cap_algos ? 2 * c->cap_algos : 32;
    pt_cu_algo *na = pt__realloc(c->algos, (size_t)cap * sizeof *na);
    if (!na) return pt__error(PT_ENOMEM, "cuda conv: out of memory");
    c->algos = na;
    c->cap_algos = cap;
  }
  pt_cu_algo *a = &c->algos[c->n_algos];
  memset(a, 0, sizeof *a);
  memcpy(a->key, key, sizeof key);
  cudnnDataType_t dt = v->half ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  PT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&a->xd));
  PT_CUDNN_CHECK(cudnnCreateTensorDescriptor(&a->yd));
  PT_CUDNN_CHECK(cudnnCreateFilterDescriptor(&a->wd));
  PT_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&a->cd));
  c->n_algos++; /* from here on the descriptors are freed with the cache */
  const cudnnTensorFormat_t fmt = v->nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  if (v->nhwc)
    PT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(a->xd, fmt, dt, v->n, v->cin, v->hx, v->wx));
  else
    PT_CUDNN_CHECK(cudnnSetTensor4dDescriptorEx(a->xd, dt, v->n, v->cin, v->hx, v->wx, v->xs[0], v->xs[1], v->xs[2], 1));
  PT_CUDNN_CHECK(cudnnSetTensor4dDescriptor(a->yd, fmt, dt, v->n, v->cout, v->yh, v->yw));
  PT_CUDNN_CHECK(cudnnSetFilter4dDescriptor(a->wd, dt, fmt, v->cout, v->cin / v->groups, v->kh, v->kw));
  PT_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(a->cd, v->ph, v->pw, v->sh, v->sw, 1, 1, CUDNN_CROSS_CORRELATION,
                                                 CUDNN_DATA_FLOAT));
  PT_CUDNN_CHECK(cudnnSetConvolutionGroupCount(a->cd, v->groups));
  PT_CUDNN_CHECK(cudnnSetConvolutionMathType(a->cd, v->half ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH));
  int on, oc, oh, ow;
  PT_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(a->cd, a->xd, a->wd, &on, &oc, &oh, &ow));
  if (on != v->n || oc != v->cout || oh != v->yh || ow != v->yw) {
    drop_last(c);
    return pt__error(PT_ESHAPE, "cuda conv: cuDNN computes a (%d, %d, %d, %d) output, expected (%d, %d, %d, %d)", on, oc,
                     oh, ow, v->n, v->cout, v->yh, v->yw);
  }
  PT__TRY(ensure_ws(c, (size_t)256 << 20));
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int got = 0;
  PT_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(c->ln->dnn, a->xd, x, a->wd, w, a->cd, a->yd, y,
                                                        CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &got, perf, c->ln->ws,
                                                        c->ln->ws_bytes));
  int pick = -1;
  for (int i = 0; i < got && pick < 0; i++) {
    if (perf[i].status != CUDNN_STATUS_SUCCESS) continue;
    /* fp32 must not silently become TF32 */
    if (!v->half && (perf[i].mathType == CUDNN_TENSOR_OP_MATH || perf[i].mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
      continue;
    pick = i;
  }
  if (pick < 0) {
    drop_last(c);
    return pt__error(PT_EUNSUPPORTED, "cuda conv: cuDNN has no %s algorithm for this shape", v->half ? "fp16" : "fp32");
  }
  a->algo = perf[pick].algo;
  a->ws = perf[pick].memory;
  PT_CUDNN_CHECK(cudnnSetConvolutionMathType(a->cd, perf[pick].mathType));
  *out = a;
  return PT_OK;
}

static pt_status run_cudnn(pt_cuda_ctx *c, const cu_conv *v, const void *x, const void *w, void *y) {
  pt_cu_algo *a;
  PT__TRY(find_algo(c, v, x, w, y, &a));
  if (a->ws > c->ln->ws_bytes) PT__TRY(ensure_ws(c, a->ws));
  const float one = 1.0f, zero = 0.0f;
  PT_CUDNN_CHECK(cudnnConvolutionForward(c->ln->dnn, &one, a->xd, x, a->wd, w, a->cd, a->algo, c->ln->ws, a->ws, &zero, a->yd,
                                         y));
  return PT_OK;
}

static int64_t wcount(const pt_conv_desc *d) { return (int64_t)d->cout * (d->cin / d->groups) * d->kh * d->kw; }

/* binary16 copy of the weights in scratch (they are rounded by the conversion). */
static pt_status half_weights(pt_cuda_ctx *c, const pt_conv_desc *d, const float *w, void **wh) {
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_W, (size_t)wcount(d) * 2, wh));
  return pt__cu_f32_to_f16(c->ln->stream, wcount(d), w, *wh);
}

pt_status pt__cuda_conv_cudnn(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y) {
  const int half = d->fp16 != 0;
  cu_conv v = {half, d->n, d->cin, d->h, d->w, {d->cin * d->h * d->w, d->h * d->w, d->w}, d->cout, d->kh, d->kw,
               d->groups, d->ph, d->pw, d->sh, d->sw, d->oh, d->ow, 0};
  const int64_t nx = (int64_t)d->n * d->cin * d->h * d->w, ny = (int64_t)d->n * d->cout * d->oh * d->ow;
  if (!half) {
    PT__TRY(run_cudnn(c, &v, x, w, y));
    return b ? pt__cu_conv_epilogue(c->ln->stream, d->n, d->cout, (int64_t)d->oh * d->ow, y, 0, b, 0, y) : PT_OK;
  }
  void *xh, *wh, *yh;
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_X, (size_t)nx * 2, &xh));
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_OUT, (size_t)ny * 2, &yh));
  PT__TRY(pt__cu_f32_to_f16(c->ln->stream, nx, x, xh));
  PT__TRY(half_weights(c, d, w, &wh));
  PT__TRY(run_cudnn(c, &v, xh, wh, yh));
  return pt__cu_conv_epilogue(c->ln->stream, d->n, d->cout, (int64_t)d->oh * d->ow, yh, 1, b, 1, y);
}

pt_status pt__cuda_conv_perf_cudnn_fmt(pt_cuda_ctx *c, const pt_conv_desc *d, int nhwc, const float *x,
                                       const float *w, const float *b, float *y) {
  if (!d->perf_dir || d->samp_every) return pt__error(PT_EINVAL, "cuda conv: the strided variant is for perforation only");
  const int half = d->fp16 != 0, rows = d->perf_dir == PT_PERF_ROWS, s = d->perf_stride, esz = half ? 2 : 4;
  const int hp = d->h + 2 * d->ph, wp = d->w + 2 * d->pw, size = rows ? d->oh : d->ow;
  const void *wk = w;
  if (nhwc) { /* cuDNN's NHWC filter order, binary16 or float32 */
    void *wt;
    PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_W, (size_t)wcount(d) * esz, &wt));
    if (half) PT__TRY(pt__cu_weights_khwc(c->ln->stream, d->cout, d->cin / d->groups, d->kh, d->kw, w, wt));
    else return pt__error(PT_EUNSUPPORTED, "cuda conv: the NHWC perforation variant is fp16 only");
    wk = wt;
  } else if (half) {
    PT__TRY(half_weights(c, d, w, (void **)&wk));
  }
  pt_cu_compact cp = {NULL, half, 1, nhwc, 0, 0, {0}, {0}};
  int64_t total = 0, win = 0;
  const int64_t other = rows ? d->ow : d->oh;
  for (int r = 0; r < 8; r++) cp.cls_off[r] = -1;
  for (int r = 0; r < s; r++) {
    if (r == d->perf_offset || r >= size) continue;
    cp.cls_cnt[r] = (size - 1 - r) / s + 1;
    cp.cls_off[r] = total;
    total += (int64_t)d->n * d->cout * cp.cls_cnt[r] * other;
    int64_t len = (int64_t)(cp.cls_cnt[r] - 1) * s * (rows ? d->sh : d->sw) + (rows ? d->kh : d->kw);
    int64_t wsz = (int64_t)d->n * d->cin * len * (rows ? wp : hp);
    if (wsz > win) win = wsz;
  }
  void *out = NULL, *xw = NULL;
  if (total > 0) PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_OUT, (size_t)total * esz, &out));
  if (win > 0) PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_X, (size_t)win * esz, &xw));
  for (int r = 0; r < s; r++) {
    if (cp.cls_off[r] < 0) continue;
    /* residue r's input window, packed: its rows (columns) start at r * stride of the padded input,
     * so the convolution needs no padding and a stride multiplied by the perforation stride */
    const int cnt = cp.cls_cnt[r], st = rows ? d->sh : d->sw, k = rows ? d->kh : d->kw;
    const int len = (cnt - 1) * s * st + k, hx = rows ? len : hp, wx = rows ? wp : len;
    PT__TRY(pt__cu_pad_window(c->ln->stream, d, rows, r * st, len, nhwc, x, xw, half));
    cu_conv v = {half, d->n, d->cin, hx, wx, {d->cin * hx * wx, hx * wx, wx}, d->cout, d->kh, d->kw, d->groups, 0, 0,
                 rows ? s * d->sh : d->sh, rows ? d->sw : s * d->sw, rows ? cnt : d->oh, rows ? d->ow : cnt, nhwc};
    PT__TRY(run_cudnn(c, &v, xw, wk, (char *)out + (size_t)cp.cls_off[r] * esz));
  }
  cp.src = out;
  return pt__cu_conv_scatter(c->ln->stream, d, &cp, b, y);
}

pt_status pt__cuda_conv_perf_cudnn(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w,
                                   const float *b, float *y) {
  /* fp16 runs channels-last, where cuDNN's strided tensor-core kernels need no layout transposes */
  return pt__cuda_conv_perf_cudnn_fmt(c, d, d->fp16 != 0 && c->perf_nhwc, x, w, b, y);
}

pt_status pt__cuda_conv_gemm(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                             float *y) {
  const int half = d->fp16 != 0, esz = half ? 2 : 4, G = d->groups, cog = d->cout / G, cig = d->cin / G;
  const int kg = cig * d->kh * d->kw;
  /* the kept filter elements (all of them without sampling): a small table on the device */
  int nkg = kg;
  const int *kept_dev = NULL;
  if (d->samp_every) {
    int *kept = pt__malloc((size_t)kg * sizeof *kept);
    if (!kept) return pt__error(PT_ENOMEM, "cuda conv: out of memory");
    nkg = pt_km_samp_kept(kg, d->kh, d->kw, d->samp_every, d->samp_offset, kept);
    void *tab;
    pt_status st = pt__cuda_scratch(c, PT_CU_SCR_TAB, (size_t)(nkg ? nkg : 1) * sizeof(int), &tab);
    if (st == PT_OK && nkg && cudaMemcpyAsync(tab, kept, (size_t)nkg * sizeof(int), cudaMemcpyHostToDevice, c->ln->stream) !=
                                  cudaSuccess)
      st = pt__error(PT_EBACKEND, "cuda conv: table upload: %s", cudaGetErrorString(cudaGetLastError()));
    free(kept);
    PT__TRY(st);
    kept_dev = tab;
  }
  const int nr = d->perf_dir == PT_PERF_ROWS ? pt_km_perf_kept_count(d->oh, d->perf_stride, d->perf_offset) : d->oh;
  const int nc = d->perf_dir == PT_PERF_COLS ? pt_km_perf_kept_count(d->ow, d->perf_stride, d->perf_offset) : d->ow;
  void *wk;
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_W, (size_t)d->cout * (nkg ? nkg : 1) * esz, &wk));
  PT__TRY(pt__cu_gather_weights(c->ln->stream, d->cout, kg, kept_dev, nkg, d->samp_every ? d->samp_scale : 1.0f, w, wk,
                                half));
  /* images per chunk, so that the im2col matrix stays bounded */
  const int64_t per_img = (int64_t)G * nkg * nr * nc * esz;
  int chunk = per_img > 0 ? (int)(PT__CU_COL_MAX / (size_t)per_img) : d->n;
  if (chunk < 1) chunk = 1;
  if (chunk > d->n) chunk = d->n;
  const int64_t in_img = (int64_t)d->cin * d->h * d->w, out_img = (int64_t)d->cout * d->oh * d->ow;
  void *col = NULL, *out = NULL;
  if (per_img > 0) PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_COL, (size_t)(per_img * chunk), &col));
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_OUT, (size_t)d->cout * chunk * (nr * nc > 0 ? nr * nc : 1) * 4, &out));
  for (int i0 = 0; i0 < d->n; i0 += chunk) {
    pt_conv_desc sub = *d;
    sub.n = d->n - i0 < chunk ? d->n - i0 : chunk;
    const float *xs = x + (int64_t)i0 * in_img;
    float *ys = y + (int64_t)i0 * out_img;
    const int64_t M = (int64_t)sub.n * nr * nc;
    if (M > 0 && nkg > 0) {
      PT__TRY(pt__cu_im2col(c->ln->stream, &sub, kept_dev, nkg, xs, col, half));
      const float one = 1.0f, zero = 0.0f;
      cudaDataType_t t = half ? CUDA_R_16F : CUDA_R_32F;
      /* row-major out_g (cog, M) = wk_g (cog, nkg) . col_g (nkg, M), as column-major out^T = col^T wk^T */
      PT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(c->ln->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)M, cog, nkg, &one, col, t,
                                                 (int)M, (long long)nkg * M, wk, t, nkg, (long long)cog * nkg, &zero,
                                                 out, CUDA_R_32F, (int)M, (long long)cog * M, G, CUBLAS_COMPUTE_32F,
                                                 CUBLAS_GEMM_DEFAULT));
    } else if (M > 0) { /* every filter element dropped: the product is zero */
      PT_CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)d->cout * M * 4, c->ln->stream));
    }
    pt_cu_compact cp = {out, 0, 0, 0, nr, nc, {0}, {0}};
    PT__TRY(pt__cu_conv_scatter(c->ln->stream, &sub, &cp, b, ys));
  }
  return PT_OK;
}

pt_status pt__cuda_conv_samp_cudnn(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w,
                                   const float *b, float *y) {
  if (!d->samp_every || d->perf_dir) return pt__error(PT_EINVAL, "cuda conv: the masked-weights variant is for sampling only");
  void *wm;
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_COL, (size_t)wcount(d) * sizeof(float), &wm));
  PT__TRY(pt__cu_mask_weights(c->ln->stream, d, w, wm));
  pt_conv_desc e = *d;
  e.samp_every = e.samp_offset = 0;
  e.samp_scale = 0.0f;
  /* binary16: the masked fp32 weights are rounded by the conversion, as the CPU rounds w * scale */
  if (e.fp16) e.fp16 = PT_FP16_ROUND;
  return pt__cuda_conv_cudnn(c, &e, x, wm, b, y);
}
