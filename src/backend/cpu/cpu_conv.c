/* CPU convolution: im2col + OpenBLAS GEMM, OpenMP across images, with the approximations done for
 * real: perforation builds im2col columns only for the kept output rows/columns (the GEMM is
 * ~1/stride narrower) and fills the rest; sampling builds im2col rows only for the kept filter
 * elements (the reduction dimension shrinks by ~1/skip_every). Work is cut into blocks of images
 * x output rows: small feature maps put several images side by side in one im2col matrix so the
 * GEMM stays wide, large ones are split by rows so every thread has work even at batch 1 and the
 * buffers stay bounded. Depthwise convolutions use a direct loop over the kept taps; exact 1x1
 * stride-1 convolutions skip im2col.
 *
 * The steps, one function each: plan (what to compute), operands (fp16 rounding, reduced weights),
 * blocks (how work is cut), then per block im2col, GEMM and scatter, and per output plane the
 * epilogue (perforation fill, bias, rounding). Index math comes from kernels/knob_math.h, shared
 * with the CUDA kernels. */
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
  int *kept;   /* (nkg) kept flat filter elements of one group's filter */
  int nkg;     /* kept elements per group */
  int *krows;  /* (nk = nkg * groups) reduction rows: flat (c, ki, kj) over all input channels */
  int nk;
  int *rows;   /* (nr) computed output rows */
  int nr;
  int *cols;   /* (nc) computed output columns */
  int nc;
  int all_cols; /* cols is 0..ow-1 */
  int *ixs;     /* (kw, nc): input column read at kernel column kj for cols[q], -1 if padding */
  /* column perforation, fused scatter + fill: output column x takes compact column ca[x] (kind 0),
   * the mean of ca[x] and cb[x] (kind 1) or zero (kind 2); NULL otherwise */
  int *ca, *cb, *ckind;
} conv_plan;

static void plan_free(conv_plan *p) {
  free(p->kept), free(p->krows), free(p->rows), free(p->cols), free(p->ixs), free(p->ca);
  memset(p, 0, sizeof *p);
}

/* Column perforation's fused scatter map (p->ca, cb, ckind). */
static pt_status plan_column_fill(const pt_conv_desc *d, conv_plan *p) {
  int *m = pt__malloc((size_t)d->ow * 4 * sizeof *m);
  if (!m) return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the column map (%d columns)", d->ow);
  int *ca = m, *cb = m + d->ow, *ck = m + 2 * d->ow, *cidx = m + 3 * d->ow;
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
  p->ca = ca, p->cb = cb, p->ckind = ck;
  return PT_OK;
}

/* The plan: kept filter elements, kept rows and columns, input columns per kernel column. */
static pt_status plan_build(const pt_conv_desc *d, conv_plan *p) {
  const int G = d->groups, Kg = d->cin / G * d->kh * d->kw;
  memset(p, 0, sizeof *p);
  p->kept = pt__malloc((size_t)(Kg ? Kg : 1) * sizeof *p->kept);
  p->krows = pt__malloc((size_t)(Kg ? Kg : 1) * G * sizeof *p->krows);
  p->rows = pt__malloc((size_t)d->oh * sizeof *p->rows);
  p->cols = pt__malloc((size_t)d->ow * sizeof *p->cols);
  p->ixs = pt__malloc((size_t)d->kw * (size_t)(d->ow ? d->ow : 1) * sizeof *p->ixs);
  if (!p->kept || !p->krows || !p->rows || !p->cols || !p->ixs)
    return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the plan (%d filter elements)", Kg);
  p->nkg = pt_km_samp_kept(Kg, d->kh, d->kw, d->samp_every, d->samp_offset, p->kept);
  p->nk = p->nkg * G;
  for (int g = 0; g < G; g++)
    for (int t = 0; t < p->nkg; t++) p->krows[g * p->nkg + t] = g * Kg + p->kept[t];
  for (int i = 0; i < d->oh; i++)
    if (d->perf_dir != PT_PERF_ROWS || !pt_km_perf_skipped(i, d->perf_stride, d->perf_offset)) p->rows[p->nr++] = i;
  for (int i = 0; i < d->ow; i++)
    if (d->perf_dir != PT_PERF_COLS || !pt_km_perf_skipped(i, d->perf_stride, d->perf_offset)) p->cols[p->nc++] = i;
  p->all_cols = p->nc == d->ow;
  for (int kj = 0; kj < d->kw; kj++)
    for (int q = 0; q < p->nc; q++) {
      int ix = pt_km_in_coord(p->cols[q], kj, d->sw, d->pw);
      p->ixs[kj * p->nc + q] = ix >= 0 && ix < d->w ? ix : -1;
    }
  return d->perf_dir == PT_PERF_COLS ? plan_column_fill(d, p) : PT_OK;
}

/* ---- operands ---- */

typedef struct conv_operands {
  const float *x, *w, *b; /* what the kernels read: w (cout, nkg) over the kept elements */
  float *xr, *wr, *br;    /* owned copies behind them, or NULL */
} conv_operands;

static void operands_free(conv_operands *o) { free(o->xr), free(o->wr), free(o->br); }

/* fp16: b rounded to binary16 (w too unless PT_FP16_PREROUNDED; x later, operands_round_x);
 * sampling: the weights reduced to the kept elements and scaled. */
static pt_status operands_prepare(const pt_conv_desc *d, const conv_plan *p, const float *x, const float *w,
                                  const float *b, conv_operands *o) {
  const int Kg = d->cin / d->groups * d->kh * d->kw;
  memset(o, 0, sizeof *o);
  o->x = x, o->w = w, o->b = b;
  if (d->fp16 == PT_FP16_ROUND || d->samp_every) {
    if (!(o->wr = pt__malloc((size_t)d->cout * (size_t)(p->nkg ? p->nkg : 1) * sizeof *o->wr)))
      return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the reduced weights");
    for (int co = 0; co < d->cout; co++)
      for (int t = 0; t < p->nkg; t++) {
        float v = w[(int64_t)co * Kg + p->kept[t]];
        if (d->samp_every) v *= d->samp_scale;
        o->wr[(int64_t)co * p->nkg + t] = d->fp16 ? pt_round_f16(v) : v;
      }
    o->w = o->wr;
  }
  if (b && d->fp16 == PT_FP16_ROUND && !(o->br = pt__cpu_rounded_copy(b, d->cout)))
    return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the binary16 bias");
  if (o->br) o->b = o->br;
  return PT_OK;
}

/* fp16: x rounded to binary16 into a copy of its own, for the kernels that read x itself (the
 * direct kernel rounds its own copies of the rows and needs none). */
static pt_status operands_round_x(const pt_conv_desc *d, conv_operands *o) {
  if (!(o->xr = pt__cpu_rounded_copy(o->x, (int64_t)d->cin * d->h * d->w * d->n)))
    return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the binary16 input");
  o->x = o->xr;
  return PT_OK;
}

/* ---- the job: plan, operands and how the work is cut ---- */

typedef struct conv_job {
  const pt_conv_desc *d;
  const conv_plan *p;
  const float *x, *w, *b;
  float *y;
  int64_t tb;       /* output columns per GEMM block */
  int ipb, rpb;     /* images and planned rows per block */
  int row_blocks, nblocks;
  int64_t ldc;      /* columns of a block's im2col matrix */
  int is_dw, direct1x1;
  int fused_cols;     /* column perforation fills while scattering the blocks */
  const float *wpk;   /* weights packed for the direct kernel (cpu_direct.c), or NULL: im2col + GEMM */
  pt__cpu_direct_plan dp; /* the direct kernel's cut, with wpk */
  int bias_in_blocks; /* fp32: the bias is added while scattering (one pass less over the output) */
  int epi;            /* where the epilogue runs (epi_where), set once the kernels are chosen */
} conv_job;

/* Where a job's epilogue (fill, bias, fp16 roundings) runs: after every block, in one pass over the
 * output planes; in each block of whole images, over its planes; or, with nothing to fill, in every
 * block over its own rows (the bias and the roundings touch nothing else), while they are in cache. */
enum epi_where { EPI_AFTER, EPI_PLANES, EPI_ROWS };

static void job_blocks(conv_job *j) {
  const pt_conv_desc *d = j->d;
  const conv_plan *p = j->p;
  const int64_t Pk = (int64_t)p->nr * p->nc; /* computed positions per channel */
  /* 512 output positions per GEMM: wide enough for the GEMM, small enough that even batch 1 gives
   * every thread blocks; the im2col buffer stays under 16 MB (4M floats) */
  int64_t tb = 512, cap = ((int64_t)4 << 20) / (p->nk > 0 ? p->nk : 1);
  if (tb > cap) tb = cap > 0 ? cap : 1;
  int ipb, rpb;
  if (Pk >= tb) {
    ipb = 1;
    rpb = (int)(tb / (p->nc > 0 ? p->nc : 1));
    if (rpb < 1) rpb = 1;
  } else {
    ipb = (int)(tb / (Pk > 0 ? Pk : 1));
    if (ipb < 1) ipb = 1;
    rpb = p->nr;
  }
  if (rpb > p->nr) rpb = p->nr;
  if (rpb < 1) rpb = 1;
  j->tb = tb, j->ipb = ipb, j->rpb = rpb;
  /* no block at all when perforation skips every row or column (an axis of length 1) */
  j->row_blocks = p->nr > 0 && p->nc > 0 ? (p->nr + rpb - 1) / rpb : 0;
  j->nblocks = j->row_blocks * ((d->n + ipb - 1) / ipb);
  j->ldc = (int64_t)ipb * rpb * p->nc;
  const int approx = d->perf_dir || d->samp_every, G = d->groups;
  j->direct1x1 = !approx && d->kh == 1 && d->kw == 1 && d->sh == 1 && d->sw == 1 && d->ph == 0 && d->pw == 0 && G == 1;
  j->is_dw = G == d->cin && G == d->cout && !j->direct1x1;
  /* (a perforation whose offset lies past the map skips no column: the epilogue rounds it in fp16) */
  j->fused_cols = d->perf_dir == PT_PERF_COLS && !j->is_dw && j->nblocks > 0 && !p->all_cols;
  /* the perforation fill then averages biased neighbours, equal to fill-then-bias up to rounding; a
   * zero fill (an axis of length 1) leaves no block, so it still gets its bias in the epilogue */
  j->bias_in_blocks = j->b && !d->fp16 && !j->is_dw && !j->direct1x1 && j->nblocks > 0;
}

/* Whether the epilogue fills skipped rows or columns (column perforation that fused its fill into
 * the blocks does not). */
static int epi_fills(const conv_job *j) {
  return j->d->perf_dir == PT_PERF_ROWS || (j->d->perf_dir == PT_PERF_COLS && !j->fused_cols);
}

/* j->epi, once fused_cols and bias_in_blocks are final (job_prepare). A block of whole images holds
 * every computed row of its images: the fill (rows read their neighbours) and the rest need nothing
 * from another block. */
static void job_epilogue_where(conv_job *j) {
  const int blocks = !j->is_dw && !j->direct1x1 && j->nblocks > 0;
  j->epi = !blocks ? EPI_AFTER : j->row_blocks == 1 ? EPI_PLANES : !epi_fills(j) ? EPI_ROWS : EPI_AFTER;
}

/* ---- per block ---- */

/* Row oy of output plane (image i, channel co). */
static inline float *y_row(const conv_job *j, int i, int co, int oy, int64_t out_img, int64_t P) {
  return j->y + (int64_t)i * out_img + co * P + (int64_t)oy * j->d->ow;
}

/* EPI_ROWS: pt__cpu_conv_epilogue without a fill on rows rows[0..nr) of images i.. (nb of them).
 * Nothing is filled, so every row is computed and the block's rows are consecutive: one run of
 * nr x ow floats per plane (short rows, e.g. 4x4 maps, would otherwise cost a call each). */
static void epilogue_rows(const conv_job *j, int i, int nb, const int *rows, int nr) {
  const pt_conv_desc *d = j->d;
  const int64_t P = (int64_t)d->oh * d->ow, out_img = (int64_t)d->cout * P;
  const int bias = j->b && !j->bias_in_blocks, round = d->fp16 && (bias || !d->perf_dir);
  if (!bias && !round) return;
  const int runs = rows[nr - 1] - rows[0] == nr - 1 ? 1 : nr; /* consecutive: one run */
  const int64_t len = runs == 1 ? (int64_t)nr * d->ow : d->ow;
  for (int k = 0; k < nb; k++)
    for (int co = 0; co < d->cout; co++)
      for (int r = 0; r < runs; r++) {
        float *o = y_row(j, i + k, co, rows[r], out_img, P);
        if (bias)
          for (int64_t x = 0; x < len; x++) o[x] += j->b[co];
        if (round) pt_round_f16_array(o, (size_t)len);
      }
}

/* im2col of one image x (cin, h, w): row t of col (stride ldc) holds, for reduction row krows[t],
 * the input values under output positions (rows[r], cols[c]), r-major, for the nr rows at rows. */
static void im2col(const pt_conv_desc *d, const conv_plan *p, const int *rows, int nr, const float *x, float *col,
                   int64_t ldc) {
  const int khw = d->kh * d->kw;
  for (int t = 0; t < p->nk; t++) {
    int k = p->krows[t], c = k / khw, ki = (k / d->kw) % d->kh, kj = k % d->kw;
    const float *src = x + (int64_t)c * d->h * d->w;
    float *dst = col + (int64_t)t * ldc;
    for (int r = 0; r < nr; r++) {
      int iy = pt_km_in_coord(rows[r], ki, d->sh, d->ph);
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

/* One GEMM per group: out (cout, ncols) with row stride ldo = w (cout, nkg) . col (nk, ncols). */
static void block_gemm(const conv_job *j, const float *col, int64_t ncols, float *out, int64_t ldo) {
  const pt_conv_desc *d = j->d;
  const int G = d->groups, cog = d->cout / G, nkg = j->p->nkg;
  for (int g = 0; g < G; g++) {
    float *o = out + (int64_t)g * cog * ldo;
    if (nkg == 0) { /* every element dropped: the product is zero */
      for (int co = 0; co < cog; co++) memset(o + co * ldo, 0, (size_t)ncols * sizeof *o);
      continue;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, cog, (int)ncols, nkg, 1.0f, j->w + (int64_t)g * cog * nkg,
                nkg, col + (int64_t)g * nkg * j->ldc, (int)j->ldc, 0.0f, o, (int)ldo);
  }
}

/* Column perforation: scatter a block (tmp (cout, nb x nr x nc)) into y and fill the skipped
 * columns in the same pass; in fp16 the convolution is rounded before the fill. */
static void scatter_fill_cols(const conv_job *j, int i, int nb, const int *rows, int nr, float *tmp) {
  const pt_conv_desc *d = j->d;
  const conv_plan *p = j->p;
  const int64_t P = (int64_t)d->oh * d->ow, out_img = (int64_t)d->cout * P, per = (int64_t)nr * p->nc;
  if (d->fp16)
    for (int co = 0; co < d->cout; co++) pt_round_f16_array(tmp + co * j->ldc, (size_t)(nb * per));
  for (int k = 0; k < nb; k++)
    for (int co = 0; co < d->cout; co++)
      for (int r = 0; r < nr; r++) {
        const float *src = tmp + co * j->ldc + k * per + (int64_t)r * p->nc;
        float *drow = y_row(j, i + k, co, rows[r], out_img, P);
        const float bv = j->bias_in_blocks ? j->b[co] : 0.0f;
        if (d->fp16) { /* sums, round, halve, round: whole rows at a time */
          for (int xx = 0; xx < d->ow; xx++)
            drow[xx] = p->ckind[xx] == 0 ? src[p->ca[xx]] : p->ckind[xx] == 2 ? 0.0f : src[p->ca[xx]] + src[p->cb[xx]];
          pt_round_f16_array(drow, (size_t)d->ow);
          for (int xx = 0; xx < d->ow; xx++)
            if (p->ckind[xx] == 1) drow[xx] *= 0.5f;
          pt_round_f16_array(drow, (size_t)d->ow);
        } else {
          for (int xx = 0; xx < d->ow; xx++) {
            float va = src[p->ca[xx]];
            drow[xx] = (p->ckind[xx] == 0 ? va : p->ckind[xx] == 2 ? 0.0f : (va + src[p->cb[xx]]) / 2.0f) + bv;
          }
        }
      }
}

/* A block (tmp (cout, nb x nr x nc)) into y (n, cout, oh, ow) at the planned positions. */
static void scatter(const conv_job *j, int i, int nb, const int *rows, int nr, const float *tmp) {
  const pt_conv_desc *d = j->d;
  const conv_plan *p = j->p;
  const int64_t P = (int64_t)d->oh * d->ow, out_img = (int64_t)d->cout * P, per = (int64_t)nr * p->nc;
  for (int k = 0; k < nb; k++)
    for (int co = 0; co < d->cout; co++) {
      const float *src = tmp + co * j->ldc + k * per;
      const float bv = j->bias_in_blocks ? j->b[co] : 0.0f;
      for (int r = 0; r < nr; r++) {
        float *drow = y_row(j, i + k, co, rows[r], out_img, P);
        const float *srow = src + (int64_t)r * p->nc;
        if (p->all_cols)
          for (int q = 0; q < p->nc; q++) drow[q] = srow[q] + bv;
        else
          for (int q = 0; q < p->nc; q++) drow[p->cols[q]] = srow[q] + bv;
      }
    }
}

/* Block blk of the GEMM path: im2col of its images x rows, the GEMMs, the scatter. A block that is
 * one whole image with every position computed goes straight into y. */
static void gemm_path_block(const conv_job *j, int blk, float *col, float *tmp) {
  const pt_conv_desc *d = j->d;
  const conv_plan *p = j->p;
  const int64_t P = (int64_t)d->oh * d->ow, in_img = (int64_t)d->cin * d->h * d->w, out_img = (int64_t)d->cout * P;
  int i = (blk / j->row_blocks) * j->ipb, r0 = (blk % j->row_blocks) * j->rpb;
  int nb = d->n - i < j->ipb ? d->n - i : j->ipb, nr = p->nr - r0 < j->rpb ? p->nr - r0 : j->rpb;
  const int *rows = p->rows + r0;
  const int64_t per = (int64_t)nr * p->nc, ncols = (int64_t)nb * per;
  if (j->wpk) { /* the direct kernel writes the computed rows in place (col is its scratch) */
    for (int k = 0; k < nb; k++)
      pt__cpu_direct_block(&j->dp, d, p->krows, p->nk, j->wpk, j->x + (int64_t)(i + k) * in_img, rows, nr,
                           j->bias_in_blocks ? j->b : NULL, j->y + (int64_t)(i + k) * out_img, col);
    if (j->epi == EPI_ROWS) epilogue_rows(j, i, nb, rows, nr);
    return;
  }
  const int direct = nb == 1 && nr == p->nr && per == P;
  float *obase = direct ? j->y + (int64_t)i * out_img : tmp;
  for (int k = 0; k < nb; k++) im2col(d, p, rows, nr, j->x + (int64_t)(i + k) * in_img, col + k * per, j->ldc);
  block_gemm(j, col, ncols, obase, direct ? P : j->ldc);
  if (direct) {
    if (j->bias_in_blocks)
      for (int co = 0; co < d->cout; co++) {
        float *o = obase + (int64_t)co * P, bv = j->b[co];
        for (int64_t k = 0; k < P; k++) o[k] += bv;
      }
  } else if (d->perf_dir == PT_PERF_COLS) {
    scatter_fill_cols(j, i, nb, rows, nr, tmp);
  } else {
    scatter(j, i, nb, rows, nr, tmp);
  }
  if (j->epi == EPI_ROWS) epilogue_rows(j, i, nb, rows, nr);
}

/* Direct depthwise convolution (groups == cin == cout) of image i at the planned positions, over the
 * kept taps (krows are tap indices within the single-channel filter; w is reduced to them). */
static void depthwise(const conv_job *j, int i) {
  const pt_conv_desc *d = j->d;
  const conv_plan *p = j->p;
  const int khw = d->kh * d->kw;
  for (int c = 0; c < d->cout; c++) {
    const float *src = j->x + ((int64_t)i * d->cin + c) * d->h * d->w;
    const float *wc = j->w + (int64_t)c * p->nkg;
    float *dst = j->y + ((int64_t)i * d->cout + c) * d->oh * d->ow;
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

/* Block blk of an exact 1x1 stride-1 convolution: columns of y = W . x, no im2col. */
static void direct1x1_block(const conv_job *j, int64_t blk, int64_t per_img) {
  const pt_conv_desc *d = j->d;
  const int Kg = d->cin, P = d->oh * d->ow;
  const int64_t cb = j->tb < P ? j->tb : P, in_img = (int64_t)d->cin * P, out_img = (int64_t)d->cout * P;
  int64_t i = blk / per_img, c0 = (blk % per_img) * cb, nc = P - c0 < cb ? P - c0 : cb;
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->cout, (int)nc, Kg, 1.0f, j->w, Kg, j->x + i * in_img + c0,
              P, 0.0f, j->y + i * out_img + c0, P);
}

/* ---- per output plane ---- */

/* Row o (ow floats) of column perforation d's output: its skipped columns from their neighbours. In
 * fp16 the row is rounded first and a mean is round16(round16(a + b) * 0.5), whole rows at a time
 * (F16C where present); the skipped entries are rounded too, harmlessly (they are overwritten). */
void pt__cpu_fill_cols_row(const pt_conv_desc *d, float *o) {
  if (d->fp16) pt_round_f16_array(o, (size_t)d->ow);
  for (int i = d->perf_offset; i < d->ow; i += d->perf_stride) {
    int a, b;
    pt_km_perf_fill_src(i, d->ow, &a, &b);
    o[i] = a < 0 ? 0.0f : a == b ? o[a] : d->fp16 ? o[a] + o[b] : (o[a] + o[b]) / 2.0f;
  }
  if (!d->fp16) return;
  pt_round_f16_array(o, (size_t)d->ow);
  for (int i = d->perf_offset; i < d->ow; i += d->perf_stride) {
    int a, b;
    pt_km_perf_fill_src(i, d->ow, &a, &b);
    if (a >= 0 && a != b) o[i] *= 0.5f;
  }
  pt_round_f16_array(o, (size_t)d->ow);
}

/* Fills the skipped rows or columns of one (oh, ow) plane from their neighbours. In fp16 the mean
 * is round16(round16(a + b) * 0.5), whole rows at a time (F16C when present). */
static void perf_fill(const pt_conv_desc *d, float *plane) {
  if (d->perf_dir == PT_PERF_COLS) {
    for (int yy = 0; yy < d->oh; yy++) pt__cpu_fill_cols_row(d, plane + (int64_t)yy * d->ow);
    return;
  }
  for (int i = d->perf_offset; i < d->oh; i += d->perf_stride) {
    int a, b;
    pt_km_perf_fill_src(i, d->oh, &a, &b);
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
  }
}

void pt__cpu_conv_epilogue(const pt_conv_desc *d, float *plane, int fill, const float *bias) {
  const int64_t P = (int64_t)d->oh * d->ow;
  if (fill) {
    /* fp16: the convolution is rounded before the fill (the skipped entries are rounded too,
     * harmlessly: the fill overwrites them) */
    if (d->fp16) pt_round_f16_array(plane, (size_t)P);
    perf_fill(d, plane);
  }
  if (bias)
    for (int64_t k = 0; k < P; k++) plane[k] += *bias;
  if (d->fp16 && (bias || !d->perf_dir)) pt_round_f16_array(plane, (size_t)P);
}

/* Plane pl = (image, channel) of the job. */
static void epilogue_plane(const conv_job *j, int64_t pl) {
  pt__cpu_conv_epilogue(j->d, j->y + pl * (int64_t)j->d->oh * j->d->ow, epi_fills(j),
                        j->b && !j->bias_in_blocks ? &j->b[pl % j->d->cout] : NULL);
}

/* Whether the block GEMMs run as the direct kernel (cpu_direct.c): for the knobs whose reduction,
 * rows or columns shrink (sampling, perforation) on shapes it takes; PT_CPU_DIRECT=0 turns it off, =1 uses
 * it for every convolution it takes (exact ones too: for the benchmark). */
static int use_direct(const pt_conv_desc *d, const conv_plan *p, conv_job *j) {
  if (j->is_dw || j->direct1x1 || j->nblocks == 0 || p->nk == 0 || !pt__cpu_direct_takes(d, p->all_cols, &j->dp))
    return 0;
  const char *e = getenv("PT_CPU_DIRECT");
  const int mode = !e ? -1 : !strcmp(e, "0") ? 0 : !strcmp(e, "1") ? 1 : -1;
  return mode >= 0 ? mode : d->samp_every || d->perf_dir;
}

/* ---- the entry ---- */

/* The input rows the direct kernel's largest block spans (its scratch is sized by it). */
static int direct_span(const conv_job *j) {
  const conv_plan *p = j->p;
  int span = 0;
  for (int r0 = 0; r0 < p->nr; r0 += j->rpb) {
    const int last = r0 + j->rpb < p->nr ? r0 + j->rpb - 1 : p->nr - 1, s = p->rows[last] - p->rows[r0] + j->d->kh;
    if (s > span) span = s;
  }
  return span;
}

/* Per-thread buffers of the block path: the direct kernel's scratch (col), or im2col's matrix (col)
 * and a block's output (tmp). */
typedef struct job_buf {
  float *col, *tmp;
} job_buf;

static void bufs_free(job_buf *b, int T) {
  for (int t = 0; b && t < T; t++) free(b[t].col), free(b[t].tmp);
  free(b);
}

/* T threads' buffers for j (NULL when it has no blocks or they do not fit). */
static job_buf *bufs_alloc(const conv_job *j, int T) {
  const pt_conv_desc *d = j->d;
  const int64_t ncol = j->wpk ? pt__cpu_direct_scratch(&j->dp, d, direct_span(j)) : (int64_t)(j->p->nk ? j->p->nk : 1) * j->ldc;
  const int64_t ntmp = j->wpk ? 0 : (int64_t)d->cout * j->ldc;
  job_buf *b = pt__calloc((size_t)T, sizeof *b);
  for (int t = 0; b && t < T; t++) {
    b[t].col = pt__malloc((size_t)ncol * sizeof *b[t].col);
    b[t].tmp = ntmp ? pt__malloc((size_t)ntmp * sizeof *b[t].tmp) : NULL;
    if (!b[t].col || (ntmp && !b[t].tmp)) {
      bufs_free(b, T);
      return NULL;
    }
  }
  return b;
}

/* The epilogue of block blk's planes, where the block holds whole images (EPI_PLANES). */
static void block_epilogue(const conv_job *j, int blk) {
  const int64_t i = (int64_t)blk * j->ipb, nb = j->d->n - i < j->ipb ? j->d->n - i : j->ipb;
  for (int64_t pl = i * j->d->cout; pl < (i + nb) * j->d->cout; pl++) epilogue_plane(j, pl);
}

/* Every block and every plane, on T threads with their buffers b (NULL without blocks). */
static void run_job(const conv_job *j, int T, job_buf *b) {
  const pt_conv_desc *d = j->d;
#pragma omp parallel num_threads(T)
  {
    if (j->is_dw) {
#pragma omp for schedule(static)
      for (int i = 0; i < d->n; i++) depthwise(j, i);
    } else if (j->direct1x1) {
      const int64_t P = (int64_t)d->oh * d->ow, cb = j->tb < P ? j->tb : P, per_img = (P + cb - 1) / cb;
#pragma omp for schedule(dynamic, 1)
      for (int64_t blk = 0; blk < d->n * per_img; blk++) direct1x1_block(j, blk, per_img);
    } else if (j->nblocks > 0) {
      const job_buf *mine = &b[omp_get_thread_num()];
#pragma omp for schedule(dynamic, 1)
      for (int blk = 0; blk < j->nblocks; blk++) {
        gemm_path_block(j, blk, mine->col, mine->tmp);
        if (j->epi == EPI_PLANES) block_epilogue(j, blk);
      }
    }
    if (j->epi == EPI_AFTER) {
#pragma omp for schedule(static)
      for (int64_t pl = 0; pl < (int64_t)d->n * d->cout; pl++) epilogue_plane(j, pl);
    }
  }
}

/* The job's buffers for T threads: the direct kernel's when it takes j and they fit, else (its
 * weights dropped) im2col + GEMM's; PT_ENOMEM when neither fits. */
static pt_status job_prepare(conv_job *j, int T, float **wpk, job_buf **b) {
  const pt_conv_desc *d = j->d;
  *wpk = NULL, *b = NULL;
  const int blocks = !j->is_dw && !j->direct1x1 && j->nblocks > 0;
  if (!blocks) return PT_OK;
  if (use_direct(d, j->p, j) && (*wpk = pt__malloc((size_t)pt__cpu_direct_packed_size(d, j->p->nk) * sizeof **wpk))) {
    pt__cpu_direct_pack(&j->dp, d, j->w, j->p->nk, *wpk);
    j->wpk = *wpk;
    if ((*b = bufs_alloc(j, T))) {
      /* column perforation: it writes the kept columns in place and fills the others row by row,
       * in fp16 with the epilogue's roundings and its bias too (cpu_direct.c); one that skips no
       * column (all_cols: no phases) leaves the epilogue its roundings */
      j->dp.fill = j->fused_cols = d->perf_dir == PT_PERF_COLS && j->dp.cs;
      if (j->dp.fill && j->b) j->bias_in_blocks = 1;
      return PT_OK;
    }
    free(*wpk), *wpk = NULL, j->wpk = NULL; /* im2col's buffers may still fit */
  }
  if ((*b = bufs_alloc(j, T))) return PT_OK;
  return pt__error(PT_ENOMEM, "cpu conv2d: out of memory for the im2col buffers (%d threads x %d x %lld floats)", T,
                   j->p->nk, (long long)j->ldc);
}

pt_status pt__cpu_conv2d(void *vctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  pt_cpu_ctx *ctx = vctx;
  if (ctx->use_dnnl && pt__cpu_dnnl_takes(d, ctx->use_dnnl)) {
    pt_status s = pt__cpu_dnnl_conv2d(ctx, d, x, w, b, y);
    if (s == PT_OK)
      ctx->paths[d->perf_dir ? PT_CONV_PATH_DNNL_PERF : d->samp_every ? PT_CONV_PATH_DNNL_SAMP : PT_CONV_PATH_DNNL_EXACT]++;
    if (s != PT_EUNSUPPORTED) return s;
  }
  conv_plan p;
  conv_operands o = {0};
  pt_status st = plan_build(d, &p);
  if (st == PT_OK) st = operands_prepare(d, &p, x, w, b, &o);
  if (st == PT_OK) {
    conv_job j = {.d = d, .p = &p, .x = o.x, .w = o.w, .b = o.b, .y = y};
    job_blocks(&j);
    const int T = ctx->threads > 0 ? ctx->threads : 1;
    float *wpk = NULL;
    job_buf *bufs = NULL;
    /* fp16: x's rounded copy before the buffers (as they were allocated before it was deferred:
     * glibc's reuse of freed blocks made the other order 7 % slower on 2x2 maps), unless the direct
     * kernel runs; after them when its buffers did not fit */
    if (d->fp16 && !use_direct(d, &p, &j) && (st = operands_round_x(d, &o)) == PT_OK) j.x = o.x;
    if (st == PT_OK) st = job_prepare(&j, T, &wpk, &bufs);
    job_epilogue_where(&j);
    if (st == PT_OK && d->fp16 && !j.wpk && !o.xr && (st = operands_round_x(d, &o)) == PT_OK) j.x = o.x;
    if (st == PT_OK) {
      run_job(&j, T, bufs);
      if (j.wpk) ctx->paths[PT_CONV_PATH_OWN_DIRECT]++;
    }
    bufs_free(bufs, T);
    free(wpk);
  }
  operands_free(&o);
  plan_free(&p);
  if (st == PT_OK) ctx->paths[PT_CONV_PATH_OWN]++;
  return st;
}
