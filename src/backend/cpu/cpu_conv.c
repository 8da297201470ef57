/* CPU convolution: im2col + OpenBLAS GEMM, OpenMP across images, with the approximations done for
 * real: perforation builds im2col columns only for the kept output rows/columns (the GEMM is
 * ~1/stride narrower) and fills the rest; sampling builds im2col rows only for the kept filter
 * elements (the reduction dimension shrinks by ~1/skip_every). Work is cut into blocks of images
 * x output rows: small feature maps put several images side by side in one im2col matrix so the
 * GEMM stays wide, large ones are split by rows so every thread has work even at batch 1 and the
 * buffers stay bounded. Depthwise convolutions use a direct loop over the kept taps; exact 1x1
 * stride-1 convolutions skip im2col.
 * Index math comes from kernels/knob_math.h, shared with the CUDA kernels. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "backend/cpu/pt_blas.h"
#include "core/alloc.h"
#include "core/error.h"
#include "kernels/knob_math.h"
#include "predtuner/tensor.h"

/* What to compute: rows of the reduction (filter elements) and output positions. */
typedef struct conv_plan {
  const int *krows; /* nk reduction rows (flat (c, ki, kj) over all input channels) */
  int nk;           /* rows per group: nkg; total nk = nkg * G */
  int nkg;
  const int *rows; /* nr output rows */
  int nr;
  const int *cols; /* nc output columns */
  int nc;
  int all_cols;     /* cols is 0..ow-1 */
  const int *ixs;   /* (kw, nc): input column read at kernel column kj for cols[q], -1 if padding */
  /* column perforation, fused scatter + fill: output column x takes compact column ca[x] (kind 0),
   * the mean of ca[x] and cb[x] (kind 1) or zero (kind 2) */
  const int *ca, *cb, *ckind;
} conv_plan;

/* im2col of one image x (cin, h, w): row t of col (stride ldc) holds, for reduction row krows[t],
 * the input values under output positions (rows[r], cols[c]), r-major. */
static void im2col(const pt_conv_desc *d, const conv_plan *p, const float *x, float *col, int64_t ldc) {
  const int khw = d->kh * d->kw;
  for (int t = 0; t < p->nk; t++) {
    int k = p->krows[t], c = k / khw, ki = (k / d->kw) % d->kh, kj = k % d->kw;
    const float *src = x + (int64_t)c * d->h * d->w;
    float *dst = col + (int64_t)t * ldc;
    for (int r = 0; r < p->nr; r++) {
      int iy = pt_km_in_coord(p->rows[r], ki, d->sh, d->ph);
      float *row = dst + (int64_t)r * p->nc;
      if (iy < 0 || iy >= d->h) {
        memset(row, 0, (size_t)p->nc * sizeof *row);
        continue;
      }
      const float *srow = src + (int64_t)iy * d->w;
      if (p->all_cols && d->sw == 1) { /* contiguous run: ix = ox - pw + kj */
        int lo = d->pw - kj, hi = d->w + d->pw - kj;
        if (lo < 0) lo = 0;
        if (hi > d->ow) hi = d->ow;
        if (hi < lo) hi = lo;
        for (int ox = 0; ox < lo; ox++) row[ox] = 0.0f;
        if (hi > lo) memcpy(row + lo, srow + lo - d->pw + kj, (size_t)(hi - lo) * sizeof *row);
        for (int ox = hi; ox < d->ow; ox++) row[ox] = 0.0f;
      } else {
        const int *ix = p->ixs + (int64_t)kj * p->nc;
        for (int q = 0; q < p->nc; q++) row[q] = ix[q] >= 0 ? srow[ix[q]] : 0.0f;
      }
    }
  }
}

/* Direct depthwise convolution (groups == cin == cout) of images [i0, i1) at the planned
 * positions, over the kept taps (krows are tap indices within the single-channel filter). */
static void depthwise(const pt_conv_desc *d, const conv_plan *p, const float *x, const float *w, float *y, int i0,
                      int i1) {
  const int khw = d->kh * d->kw;
  for (int i = i0; i < i1; i++)
    for (int c = 0; c < d->cout; c++) {
      const float *src = x + ((int64_t)i * d->cin + c) * d->h * d->w;
      const float *wc = w + (int64_t)c * p->nkg; /* weights already reduced to the kept taps */
      float *dst = y + ((int64_t)i * d->cout + c) * d->oh * d->ow;
      for (int r = 0; r < p->nr; r++)
        for (int q = 0; q < p->nc; q++) {
          int oy = p->rows[r], ox = p->cols[q];
          float acc = 0.0f;
          for (int t = 0; t < p->nkg; t++) {
            int tap = p->krows[t] % khw;
            int iy = pt_km_in_coord(oy, tap / d->kw, d->sh, d->ph), ix = pt_km_in_coord(ox, tap % d->kw, d->sw, d->pw);
            if (iy >= 0 && iy < d->h && ix >= 0 && ix < d->w) acc += src[(int64_t)iy * d->w + ix] * wc[t];
          }
          dst[(int64_t)oy * d->ow + ox] = acc;
        }
    }
}

static inline float rd16(float v) { return pt_round_f16(v); }

/* Fills the skipped rows or columns of one (oh, ow) plane from their neighbours. In fp16 the mean
 * is round16(round16(a + b) * 0.5); rows round whole rows at a time (F16C when present). */
static void perf_fill(const pt_conv_desc *d, float *plane) {
  const int size = d->perf_dir == PT_PERF_ROWS ? d->oh : d->ow;
  for (int i = d->perf_offset; i < size; i += d->perf_stride) {
    int a, b;
    pt_km_perf_fill_src(i, size, &a, &b);
    if (d->perf_dir == PT_PERF_ROWS) {
      float *dst = plane + (int64_t)i * d->ow;
      const float *pa = a >= 0 ? plane + (int64_t)a * d->ow : NULL, *pb = b >= 0 ? plane + (int64_t)b * d->ow : NULL;
      if (!pa) {
        memset(dst, 0, (size_t)d->ow * sizeof *dst);
      } else if (a == b) {
        memcpy(dst, pa, (size_t)d->ow * sizeof *dst);
      } else if (d->fp16) {
        for (int x = 0; x < d->ow; x++) dst[x] = pa[x] + pb[x];
        pt_round_f16_array(dst, (size_t)d->ow);
        for (int x = 0; x < d->ow; x++) dst[x] *= 0.5f;
        pt_round_f16_array(dst, (size_t)d->ow);
      } else {
        for (int x = 0; x < d->ow; x++) dst[x] = (pa[x] + pb[x]) / 2.0f;
      }
    } else {
      for (int yy = 0; yy < d->oh; yy++) {
        float *row = plane + (int64_t)yy * d->ow;
        float v = a < 0 ? 0.0f : a == b ? row[a] : d->fp16 ? rd16(rd16(row[a] + row[b]) * 0.5f) : (row[a] + row[b]) / 2.0f;
        row[i] = v;
      }
    }
  }
}

pt_status pt__cpu_conv2d(void *vctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  pt_cpu_ctx *ctx = vctx;
  const int G = d->groups, cog = d->cout / G, cig = d->cin / G;
  const int Kg = cig * d->kh * d->kw;
  const int64_t P = (int64_t)d->oh * d->ow;
  const int64_t in_img = (int64_t)d->cin * d->h * d->w, out_img = (int64_t)d->cout * P;
  pt_status st = PT_OK;

  /* The plan: kept filter elements, kept rows and columns. */
  int *kept = pt__malloc((size_t)Kg * sizeof *kept), *krows = pt__malloc((size_t)Kg * G * sizeof *krows);
  int *rows = pt__malloc((size_t)d->oh * sizeof *rows), *cols = pt__malloc((size_t)d->ow * sizeof *cols), *ixs = NULL;
  int *cmap = NULL;
  float *xr = NULL, *wr = NULL, *br = NULL;
  if (!kept || !krows || !rows || !cols) goto oom;
  int nkg = 0;
  for (int f = 0; f < Kg; f++)
    if (!d->samp_every || !pt_km_samp_dropped(f, d->kh, d->kw, d->samp_every, d->samp_offset)) kept[nkg++] = f;
  for (int g = 0; g < G; g++)
    for (int t = 0; t < nkg; t++) krows[g * nkg + t] = g * Kg + kept[t];
  conv_plan p = {krows, nkg * G, nkg, rows, 0, cols, 0, 1, NULL, NULL, NULL, NULL};
  for (int i = 0; i < d->oh; i++)
    if (d->perf_dir != 1 || !pt_km_perf_skipped(i, d->perf_stride, d->perf_offset)) rows[p.nr++] = i;
  for (int i = 0; i < d->ow; i++)
    if (d->perf_dir != 2 || !pt_km_perf_skipped(i, d->perf_stride, d->perf_offset)) cols[p.nc++] = i;
  p.all_cols = p.nc == d->ow;
  if (!(ixs = pt__malloc((size_t)d->kw * (size_t)(p.nc ? p.nc : 1) * sizeof *ixs))) goto oom;
  for (int kj = 0; kj < d->kw; kj++)
    for (int q = 0; q < p.nc; q++) {
      int ix = pt_km_in_coord(cols[q], kj, d->sw, d->pw);
      ixs[kj * p.nc + q] = ix >= 0 && ix < d->w ? ix : -1;
    }
  p.ixs = ixs;
  if (d->perf_dir == PT_PERF_COLS) {
    if (!(cmap = pt__malloc((size_t)d->ow * 4 * sizeof *cmap))) goto oom;
    int *ca = cmap, *cb = cmap + d->ow, *ck = cmap + 2 * d->ow, *cidx = cmap + 3 * d->ow;
    for (int xx = 0, k = 0; xx < d->ow; xx++) cidx[xx] = pt_km_perf_skipped(xx, d->perf_stride, d->perf_offset) ? -1 : k++;
    for (int xx = 0; xx < d->ow; xx++) {
      if (cidx[xx] >= 0) {
        ca[xx] = cb[xx] = cidx[xx];
        ck[xx] = 0;
        continue;
      }
      int a, bb;
      pt_km_perf_fill_src(xx, d->ow, &a, &bb);
      ca[xx] = a >= 0 ? cidx[a] : 0;
      cb[xx] = bb >= 0 ? cidx[bb] : 0;
      ck[xx] = a < 0 ? 2 : (a == bb ? 0 : 1);
    }
    p.ca = ca;
    p.cb = cb;
    p.ckind = ck;
  }
  const int64_t Pk = (int64_t)p.nr * p.nc; /* computed positions per channel */

  /* Operands: fp16 rounding, and the weights reduced to the kept elements (scaled when sampling). */
  if (d->fp16 && !(xr = pt__cpu_rounded_copy(x, in_img * d->n))) goto oom;
  const float *wk = w; /* weights over the kept elements */
  if (d->fp16 == PT_FP16_ROUND || d->samp_every) {
    if (!(wr = pt__malloc((size_t)d->cout * (size_t)(nkg ? nkg : 1) * sizeof *wr))) goto oom;
    for (int co = 0; co < d->cout; co++)
      for (int t = 0; t < nkg; t++) {
        float v = w[(int64_t)co * Kg + kept[t]];
        if (d->samp_every) v *= d->samp_scale;
        wr[(int64_t)co * nkg + t] = d->fp16 ? rd16(v) : v;
      }
    wk = wr;
  }
  if (b && d->fp16 == PT_FP16_ROUND && !(br = pt__cpu_rounded_copy(b, d->cout))) goto oom;
  if (xr) x = xr;
  if (br) b = br;

  const int approx = d->perf_dir || d->samp_every;
  const int direct1x1 = !approx && d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0 &&
                        G == 1;
  const int is_dw = G == d->cin && G == d->cout && !direct1x1;
  const int T = ctx->threads > 0 ? ctx->threads : 1;

  /* Work is split into blocks of (images x planned rows) sized so that each GEMM is a few thousand
   * columns wide, the im2col buffer stays under 64 MB, and there are enough blocks for every
   * thread even at batch 1. */
  const int64_t total = (int64_t)d->n * Pk;
  int64_t tb = total / T;
  if (tb > 512) tb = 512;
  if (tb < 512) tb = 512;
  int64_t cap = ((int64_t)4 << 20) / (p.nk > 0 ? p.nk : 1);
  if (tb > cap) tb = cap > 0 ? cap : 1;
  int ipb, rpb; /* images and rows per block */
  if (Pk >= tb) {
    ipb = 1;
    rpb = (int)(tb / (p.nc > 0 ? p.nc : 1));
    if (rpb < 1) rpb = 1;
  } else {
    ipb = (int)(tb / (Pk > 0 ? Pk : 1));
    if (ipb < 1) ipb = 1;
    rpb = p.nr;
  }
  if (rpb > p.nr) rpb = p.nr;
  if (rpb < 1) rpb = 1;
  /* no block at all when perforation skips every row or column (an axis of length 1) */
  const int row_blocks = p.nr > 0 && p.nc > 0 ? (p.nr + rpb - 1) / rpb : 0, img_blocks = (d->n + ipb - 1) / ipb;
  const int nblocks = row_blocks * img_blocks;
  const int64_t ldc = (int64_t)ipb * rpb * p.nc;
  /* column perforation fills while scattering the GEMM blocks; the depthwise path fills after */
  const int fused_cols = d->perf_dir == PT_PERF_COLS && !is_dw && nblocks > 0;
  /* fp32: the bias is added while the blocks are scattered (one pass less over the output); the
   * perforation fill then averages biased neighbours, equal to fill-then-bias up to rounding. A
   * zero fill (an axis of length 1) leaves no block, so it still gets its bias below. */
  const int bias_in_blocks = b && !d->fp16 && !is_dw && !direct1x1 && nblocks > 0;
  int failed = 0;

#pragma omp parallel num_threads(T) reduction(| : failed)
  {
    if (is_dw) {
#pragma omp for schedule(static)
      for (int i = 0; i < d->n; i++) depthwise(d, &p, x, wk, y, i, i + 1);
    } else if (direct1x1) { /* blocks of columns of y = W . x, no im2col */
      const int64_t cb = tb < P ? tb : P, per_img = (P + cb - 1) / cb;
#pragma omp for schedule(dynamic, 1)
      for (int64_t blk = 0; blk < d->n * per_img; blk++) {
        int64_t i = blk / per_img, c0 = (blk % per_img) * cb, nc = P - c0 < cb ? P - c0 : cb;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->cout, (int)nc, Kg, 1.0f, wk, Kg,
                    x + i * in_img + c0, (int)P, 0.0f, y + i * out_img + c0, (int)P);
      }
    } else if (nblocks > 0) {
      float *col = pt__malloc((size_t)((int64_t)(p.nk ? p.nk : 1) * ldc) * sizeof *col);
      float *tmp = pt__malloc((size_t)((int64_t)d->cout * ldc) * sizeof *tmp);
      if (!col || !tmp) failed = 1;
#pragma omp for schedule(dynamic, 1)
      for (int blk = 0; blk < nblocks; blk++) {
        if (failed) continue;
        int i = (blk / row_blocks) * ipb, r0 = (blk % row_blocks) * rpb;
        int nb = d->n - i < ipb ? d->n - i : ipb, nr = p.nr - r0 < rpb ? p.nr - r0 : rpb;
        conv_plan sub = p;
        sub.rows = p.rows + r0;
        sub.nr = nr;
        const int64_t per = (int64_t)nr * p.nc, ncols = (int64_t)nb * per;
        for (int j = 0; j < nb; j++) im2col(d, &sub, x + (int64_t)(i + j) * in_img, col + j * per, ldc);
        /* a block that is one whole image with every position computed: GEMM straight into y */
        const int direct = nb == 1 && nr == p.nr && per == P;
        const int64_t ldo = direct ? P : ldc;
        float *obase = direct ? y + (int64_t)i * out_img : tmp;
        for (int g = 0; g < G; g++) {
          float *out = obase + (int64_t)g * cog * ldo;
          if (nkg == 0) { /* every element dropped: the product is zero */
            for (int co = 0; co < cog; co++) memset(out + co * ldo, 0, (size_t)ncols * sizeof *out);
            continue;
          }
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, (int)ncols, nkg, 1.0f, wk + (int64_t)g * cog * nkg,
                      nkg, col + (int64_t)g * nkg * ldc, (int)ldc, 0.0f, out, (int)ldo);
        }
        if (direct) {
          if (bias_in_blocks)
            for (int co = 0; co < d->cout; co++) {
              float *o = obase + (int64_t)co * P, bv = b[co];
              for (int64_t k = 0; k < P; k++) o[k] += bv;
            }
          continue;
        }
        if (d->perf_dir == PT_PERF_COLS) { /* column perforation: scatter and fill each output row in one pass */
          if (d->fp16) /* the convolution is rounded before the fill */
            for (int co = 0; co < d->cout; co++) pt_round_f16_array(tmp + co * ldc, (size_t)ncols);
          for (int j = 0; j < nb; j++)
            for (int co = 0; co < d->cout; co++)
              for (int r = 0; r < nr; r++) {
                const float *src = tmp + co * ldc + j * per + (int64_t)r * p.nc;
                float *drow = y + (int64_t)(i + j) * out_img + co * P + (int64_t)sub.rows[r] * d->ow;
                const float bv = bias_in_blocks ? b[co] : 0.0f;
                if (d->fp16) { /* sums, round, halve, round: whole rows at a time */
                  for (int xx = 0; xx < d->ow; xx++)
                    drow[xx] = p.ckind[xx] == 0 ? src[p.ca[xx]] : p.ckind[xx] == 2 ? 0.0f : src[p.ca[xx]] + src[p.cb[xx]];
                  pt_round_f16_array(drow, (size_t)d->ow);
                  for (int xx = 0; xx < d->ow; xx++)
                    if (p.ckind[xx] == 1) drow[xx] *= 0.5f;
                  pt_round_f16_array(drow, (size_t)d->ow);
                } else {
                  for (int xx = 0; xx < d->ow; xx++) {
                    float va = src[p.ca[xx]];
                    drow[xx] = (p.ckind[xx] == 0 ? va : p.ckind[xx] == 2 ? 0.0f : (va + src[p.cb[xx]]) / 2.0f) + bv;
                  }
                }
              }
          continue;
        }
        /* tmp (cout, nb x nr x nc) -> y (n, cout, oh, ow) at the planned positions */
        for (int j = 0; j < nb; j++)
          for (int co = 0; co < d->cout; co++) {
            const float *src = tmp + co * ldc + j * per;
            float *dst = y + (int64_t)(i + j) * out_img + co * P;
            const float bv = bias_in_blocks ? b[co] : 0.0f;
            for (int r = 0; r < nr; r++) {
              float *drow = dst + (int64_t)sub.rows[r] * d->ow;
              const float *srow = src + (int64_t)r * p.nc;
              if (p.all_cols)
                for (int q = 0; q < p.nc; q++) drow[q] = srow[q] + bv;
              else
                for (int q = 0; q < p.nc; q++) drow[cols[q]] = srow[q] + bv;
            }
          }
      }
      free(col);
      free(tmp);
    }
    /* Epilogue per plane: (fp16: round the convolution), perforation fill, bias, rounding. */
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < (int64_t)d->n * d->cout; pl++) {
      int co = (int)(pl % d->cout);
      float *plane = y + pl * P;
      if (d->perf_dir == PT_PERF_ROWS || (d->perf_dir == PT_PERF_COLS && !fused_cols)) {
        /* fp16: the convolution is rounded before the fill (the skipped entries are rounded
         * too, harmlessly: the fill overwrites them) */
        if (d->fp16) pt_round_f16_array(plane, (size_t)P);
        perf_fill(d, plane);
      }
      if (b && !bias_in_blocks)
        for (int64_t k = 0; k < P; k++) plane[k] += b[co];
      if (d->fp16 && (b || !d->perf_dir)) pt_round_f16_array(plane, (size_t)P);
    }
  }
  if (failed)
    st = pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the im2col buffer (%d x %lld floats)", p.nk,
                   (long long)ldc);
  goto done;
oom:
  st = pt__error(PT_ENOMEM, "cpu conv2d: out of memory");
done:
  free(kept);
  free(krows);
  free(rows);
  free(cols);
  free(ixs);
  free(cmap);
  free(xr);
  free(wr);
  free(br);
  return st;
}
