/* CPU convolution: im2col + OpenBLAS GEMM, OpenMP across images. Small feature maps are batched
 * (several images side by side in one im2col matrix) so the GEMM stays wide enough to be efficient;
 * depthwise convolutions use a direct loop; 1x1 stride-1 convolutions skip im2col. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "backend/cpu/pt_blas.h"
#include "core/error.h"
#include "kernels/knob_math.h"
#include "predtuner/tensor.h"

/* Wanted GEMM width (columns of the im2col matrix). */
#define PT__CONV_COLS 512

/* im2col of one image x (cin, h, w) into col rows (cin*kh*kw) of stride ldc, columns [0, oh*ow). */
static void im2col(const pt_conv_desc *d, const float *x, float *col, int64_t ldc) {
  const int P = d->oh * d->ow;
  for (int c = 0; c < d->cin; c++) {
    const float *src = x + (int64_t)c * d->h * d->w;
    for (int ki = 0; ki < d->kh; ki++)
      for (int kj = 0; kj < d->kw; kj++) {
        float *dst = col + ((int64_t)(c * d->kh + ki) * d->kw + kj) * ldc;
        for (int oy = 0; oy < d->oh; oy++) {
          int iy = pt_km_in_coord(oy, ki, d->sh, d->ph);
          float *row = dst + (int64_t)oy * d->ow;
          if (iy < 0 || iy >= d->h) {
            memset(row, 0, (size_t)d->ow * sizeof *row);
            continue;
          }
          const float *srow = src + (int64_t)iy * d->w;
          if (d->sw == 1) {
            /* contiguous run: ix = ox - pw + kj */
            int lo = d->pw - kj, hi = d->w + d->pw - kj; /* valid ox in [lo, hi) */
            if (lo < 0) lo = 0;
            if (hi > d->ow) hi = d->ow;
            if (hi < lo) hi = lo;
            for (int ox = 0; ox < lo; ox++) row[ox] = 0.0f;
            if (hi > lo) memcpy(row + lo, srow + lo - d->pw + kj, (size_t)(hi - lo) * sizeof *row);
            for (int ox = hi; ox < d->ow; ox++) row[ox] = 0.0f;
          } else {
            for (int ox = 0; ox < d->ow; ox++) {
              int ix = pt_km_in_coord(ox, kj, d->sw, d->pw);
              row[ox] = (ix >= 0 && ix < d->w) ? srow[ix] : 0.0f;
            }
          }
        }
      }
  }
  (void)P;
}

/* Direct depthwise convolution (groups == cin == cout) of images [i0, i1). */
static void depthwise(const pt_conv_desc *d, const float *x, const float *w, float *y, int i0, int i1) {
  for (int i = i0; i < i1; i++)
    for (int c = 0; c < d->cout; c++) {
      const float *src = x + ((int64_t)i * d->cin + c) * d->h * d->w;
      const float *wc = w + (int64_t)c * d->kh * d->kw;
      float *dst = y + ((int64_t)i * d->cout + c) * d->oh * d->ow;
      for (int oy = 0; oy < d->oh; oy++)
        for (int ox = 0; ox < d->ow; ox++) {
          float acc = 0.0f;
          for (int ki = 0; ki < d->kh; ki++) {
            int iy = pt_km_in_coord(oy, ki, d->sh, d->ph);
            if (iy < 0 || iy >= d->h) continue;
            for (int kj = 0; kj < d->kw; kj++) {
              int ix = pt_km_in_coord(ox, kj, d->sw, d->pw);
              if (ix >= 0 && ix < d->w) acc += src[(int64_t)iy * d->w + ix] * wc[ki * d->kw + kj];
            }
          }
          dst[(int64_t)oy * d->ow + ox] = acc;
        }
    }
}

pt_status pt__cpu_conv2d(void *vctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  pt_cpu_ctx *ctx = vctx;
  const int G = d->groups, cog = d->cout / G, cig = d->cin / G;
  const int64_t Kg = (int64_t)cig * d->kh * d->kw, K = Kg * G, P = (int64_t)d->oh * d->ow;
  const int64_t in_img = (int64_t)d->cin * d->h * d->w, out_img = (int64_t)d->cout * P;
  float *xr = NULL, *wr = NULL, *br = NULL;
  if (d->fp16) {
    xr = pt__cpu_rounded_copy(x, in_img * d->n);
    wr = pt__cpu_rounded_copy(w, (int64_t)d->cout * Kg);
    br = b ? pt__cpu_rounded_copy(b, d->cout) : NULL;
    if (!xr || !wr || (b && !br)) {
      free(xr);
      free(wr);
      free(br);
      return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the fp16 copies");
    }
    x = xr;
    w = wr;
    if (b) b = br;
  }
  const int direct1x1 = d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0 && G == 1;
  const int is_dw = G == d->cin && G == d->cout && !direct1x1;
  /* images per GEMM: enough to make ~PT__CONV_COLS columns */
  int B = (int)((PT__CONV_COLS + P - 1) / P);
  if (B < 1) B = 1;
  int nthreads = ctx->threads;
  if (nthreads > d->n) nthreads = d->n > 0 ? d->n : 1;
  int failed = 0;

#pragma omp parallel num_threads(nthreads) reduction(| : failed)
  {
    int t = omp_get_thread_num(), nt = omp_get_num_threads();
    int i0 = (int)((int64_t)d->n * t / nt), i1 = (int)((int64_t)d->n * (t + 1) / nt);
    if (is_dw) {
      depthwise(d, x, w, y, i0, i1);
    } else if (direct1x1) {
      for (int i = i0; i < i1; i++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->cout, (int)P, (int)K, 1.0f, w, (int)K,
                    x + (int64_t)i * in_img, (int)P, 0.0f, y + (int64_t)i * out_img, (int)P);
    } else {
      int bt = B < i1 - i0 ? B : (i1 - i0 > 0 ? i1 - i0 : 1);
      int64_t ldc = (int64_t)bt * P;
      float *col = malloc((size_t)(K * ldc) * sizeof *col);
      float *tmp = bt > 1 ? malloc((size_t)(d->cout * ldc) * sizeof *tmp) : NULL;
      if (!col || (bt > 1 && !tmp)) {
        failed = 1;
      } else {
        for (int i = i0; i < i1; i += bt) {
          int nb = i1 - i < bt ? i1 - i : bt;
          int64_t cols = (int64_t)nb * P;
          for (int j = 0; j < nb; j++) im2col(d, x + (int64_t)(i + j) * in_img, col + j * P, ldc);
          float *out = nb > 1 || bt > 1 ? tmp : y + (int64_t)i * out_img;
          for (int g = 0; g < G; g++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, (int)cols, (int)Kg, 1.0f,
                        w + (int64_t)g * cog * Kg, (int)Kg, col + g * Kg * ldc, (int)ldc, 0.0f,
                        out + (int64_t)g * cog * ldc, (int)ldc);
          if (out == tmp) /* tmp is (cout, nb*P): scatter to (nb, cout, P) */
            for (int j = 0; j < nb; j++)
              for (int co = 0; co < d->cout; co++)
                memcpy(y + (int64_t)(i + j) * out_img + co * P, tmp + co * ldc + j * P, (size_t)P * sizeof *y);
        }
      }
      free(col);
      free(tmp);
    }
    for (int i = i0; i < i1; i++) {
      float *yi = y + (int64_t)i * out_img;
      if (b)
        for (int co = 0; co < d->cout; co++) {
          float bv = b[co];
          float *r = yi + co * P;
          for (int64_t p = 0; p < P; p++) r[p] += bv;
        }
      if (d->fp16) pt_round_f16_array(yi, (size_t)out_img);
    }
  }
  free(xr);
  free(wr);
  free(br);
  if (failed) return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the im2col buffer (%lld x %lld floats)",
                               (long long)K, (long long)(B * P));
  return PT_OK;
}
