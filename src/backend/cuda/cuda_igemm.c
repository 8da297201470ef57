/* The implicit-GEMM convolution variant ("igemm"): binary16 convolutions through the halo-tile
 * tensor-core kernel (kernels/conv_igemm_halo.cu), float32 ones through the CUDA-core kernel
 * (kernels/conv_simt.cu); exact, perforated and sampled alike, each computing only what the knob
 * keeps. Grouped convolutions and shapes the kernels' plans refuse are PT_EUNSUPPORTED: the timed
 * choice (cuda_conv_pick.c) then runs another variant. */
#include <stdlib.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/error.h"

/* The kernels' view of d (groups == 1). */
static pt_igemm_conv igemm_conv(const pt_conv_desc *d) {
  pt_igemm_conv g = {d->n, d->cin, d->h, d->w, d->cout, d->oh, d->ow, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw,
                     d->perf_dir, d->perf_dir ? d->perf_stride : 0, d->perf_dir ? d->perf_offset : 0, 0, 0, 0, 0};
  return g;
}

static pt_status conv_half(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                           float *y) {
  const pt_igemm_conv g = igemm_conv(d);
  pt_ig2_plan p;
  if (pt_ig2_make(&p, &g, 1, d->samp_every, d->samp_every ? d->samp_offset : 0))
    return pt__error(PT_EUNSUPPORTED, "cuda conv igemm: the halo-tile plan does not take this shape");
  void *xs, *wk;
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_X, (size_t)pt_ig2_xs_bytes(&p), &xs));
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_W, (size_t)pt_ig2_wk_bytes(&p), &wk));
  return pt__cu_conv_ig2(c->ln->stream, &p, x, w, d->samp_every ? d->samp_scale : 1.0f, b, xs, wk, y);
}

static pt_status conv_float(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                            float *y) {
  pt_igemm_conv g = igemm_conv(d);
  int *table = pt__malloc(PT_IG_KMAX * sizeof *table);
  if (!table) return pt__error(PT_ENOMEM, "cuda conv igemm: out of memory");
  const int kdim = pt_igemm_k_table(d->cin, d->kh, d->kw, d->samp_every, d->samp_offset, table);
  pt_igemm_sizes(&g, kdim);
  pt_status s = PT_OK;
  void *tab = NULL, *wt = NULL;
  if (kdim <= 0 || g.m <= 0) s = pt__error(PT_EUNSUPPORTED, "cuda conv igemm: %d kept filter elements", kdim);
  if (s == PT_OK) s = pt__cuda_scratch(c, PT_CU_SCR_TAB, (size_t)kdim * sizeof(int), &tab);
  if (s == PT_OK && cudaMemcpyAsync(tab, table, (size_t)kdim * sizeof(int), cudaMemcpyHostToDevice, c->ln->stream) !=
                        cudaSuccess)
    s = pt__error(PT_EBACKEND, "cuda conv igemm: table upload: %s", cudaGetErrorString(cudaGetLastError()));
  free(table); /* a copy from pageable memory is staged before cudaMemcpyAsync returns */
  if (s == PT_OK) s = pt__cuda_scratch(c, PT_CU_SCR_W, (size_t)kdim * d->cout * sizeof(float), &wt);
  if (s == PT_OK)
    s = pt__cu_conv_simt(c->ln->stream, &g, tab, x, w, d->samp_every ? d->samp_scale : 1.0f, b, wt, y);
  return s;
}

pt_status pt__cuda_conv_igemm(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y) {
  if (d->groups != 1) return pt__error(PT_EUNSUPPORTED, "cuda conv igemm: grouped convolutions go to cuDNN");
  return d->fp16 ? conv_half(c, d, x, w, b, y) : conv_float(c, d, x, w, b, y);
}
