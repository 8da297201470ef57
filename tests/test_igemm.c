/* The fused implicit-GEMM convolution's loop nest run on the CPU (the GPU kernel issue, point 2):
 * blocks, warps and 16-wide k steps walk the GEMM exactly as kernels/igemm_layout.h says; shared-
 * memory tiles are gathered with its A/B offsets and K table; fragments are loaded by an emulated
 * ldmatrix (each lane's row address, each register's source lane) and multiplied by an emulated
 * mma.m16n8k16 that rebuilds the 16x16 and 16x8 operands from the 32 lanes' fragments (every element
 * exactly once) and hands back D in the C layout; the epilogue writes through the C layout and the
 * M -> pixel map, and the skipped rows or columns are filled. Compared with a plain loop over the
 * knob definitions (naive_igemm_conv, kernels/knob_math.h), for exact convolutions, perforation of rows and columns at
 * several strides and offsets, and sampling at every skip, on odd sizes, 1-row outputs, channel
 * counts that are not multiples of 8 and more output channels than a block. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "predtuner/tensor.h"
#include "core/rng.h"
#include "kernels/igemm_layout.h"
#include "kernels/igemm_simt.h"
#include "mma_emu.h"
#include "naive.h"

typedef struct emu_case {
  pt_igemm_conv g;
  int samp_every, samp_offset;
  float samp_scale;
  int fp16; /* operands rounded to binary16 (the kernel's inputs), accumulation in fp32 */
} emu_case;

static float r16(float v, int on) { return on ? pt_round_f16(v) : v; }

/* ldmatrix.x4 of the A operand at (row0, col0) of a row-major tile with ld columns. */
static void ldmatrix_a(const float *tile, int ld, int row0, int col0, float a[32][8]) {
  const float *rows[32];
  for (int l = 0; l < 32; l++) rows[l] = tile + (size_t)(row0 + pt_ldm_a_row(l)) * (size_t)ld + col0 + pt_ldm_a_col(l);
  ldmatrix_x4_emulated(rows, a);
}

/* ldmatrix.x4 of two n8 B operands at (n0, k0) of an [n][k] tile: registers 0, 1 -> b0, b1 of the
 * first block, 2, 3 of the second. */
static void ldmatrix_b(const float *tile, int ld, int n0, int k0, float b0[32][4], float b1[32][4]) {
  const float *rows[32];
  float r[32][8];
  for (int l = 0; l < 32; l++) rows[l] = tile + (size_t)(n0 + pt_ldm_b_n(l)) * (size_t)ld + k0 + pt_ldm_b_k(l);
  ldmatrix_x4_emulated(rows, r);
  for (int l = 0; l < 32; l++)
    for (int i = 0; i < 4; i++) b0[l][i] = r[l][i], b1[l][i] = r[l][4 + i];
}

/* The kernel's loop nest: x NHWC, w (k, c, kh, kw), y NHWC. */
static void run_emulated(const emu_case *e, const int *table, const float *x, const float *w, const float *bias,
                         float *y) {
  const pt_igemm_conv *g = &e->g;
  static float sa[PT_IG_BM * PT_IG_BK], sb[PT_IG_BN * PT_IG_BK];
  static float acc[4][PT_IG_MI][PT_IG_NI][32][4];
  for (int bm = 0; bm < pt_igemm_blocks_m(g); bm++)
    for (int bn = 0; bn < pt_igemm_blocks_n(g); bn++) {
      memset(acc, 0, sizeof acc);
      for (int k0 = 0; k0 < g->kdim; k0 += PT_IG_BK) {
        for (int r = 0; r < PT_IG_BM; r++) /* the stage's tiles: what cp.async brings in */
          for (int kk = 0; kk < PT_IG_BK; kk++) {
            const int kg = k0 + kk, ent = kg < g->kdim ? table[kg] : 0;
            const long long ao = pt_igemm_a_offset(g, bm * PT_IG_BM + r, kg, ent);
            sa[r * PT_IG_BK + kk] = ao < 0 ? 0.0f : r16(x[ao], e->fp16);
            if (r < PT_IG_BN) {
              const long long bo = pt_igemm_b_offset(g, kg, bn * PT_IG_BN + r, ent);
              sb[r * PT_IG_BK + kk] = bo < 0 ? 0.0f : r16(w[bo] * e->samp_scale, e->fp16);
            }
          }
        for (int warp = 0; warp < 4; warp++)
          for (int ks = 0; ks < PT_IG_BK; ks += 16)
            for (int mi = 0; mi < PT_IG_MI; mi++) {
              float a[32][8];
              ldmatrix_a(sa, PT_IG_BK, pt_igemm_warp_m0(warp) + 16 * mi, ks, a);
              for (int ni = 0; ni < PT_IG_NI; ni += 2) {
                float b0[32][4], b1[32][4];
                ldmatrix_b(sb, PT_IG_BK, pt_igemm_warp_n0(warp) + 8 * ni, ks, b0, b1);
                mma_emulated(a, b0, acc[warp][mi][ni]);
                mma_emulated(a, b1, acc[warp][mi][ni + 1]);
              }
            }
      }
      for (int warp = 0; warp < 4; warp++) /* the epilogue: each lane's C elements to their pixels */
        for (int mi = 0; mi < PT_IG_MI; mi++)
          for (int ni = 0; ni < PT_IG_NI; ni++)
            for (int l = 0; l < 32; l++)
              for (int i = 0; i < 4; i++) {
                const int m = bm * PT_IG_BM + pt_igemm_warp_m0(warp) + 16 * mi + pt_mma_c_row(l, i);
                const int n = bn * PT_IG_BN + pt_igemm_warp_n0(warp) + 8 * ni + pt_mma_c_col(l, i);
                if (m >= g->m || n >= g->k) continue;
                int img, oy, ox;
                pt_igemm_pixel(g, m, &img, &oy, &ox);
                y[(((size_t)img * g->oh + oy) * g->ow + ox) * g->k + n] =
                    r16(acc[warp][mi][ni][l][i] + r16(bias[n], e->fp16), e->fp16);
              }
    }
}

/* One case: n, c, h, w, k, kernel, stride, pad; knob; fp16. */
static void check(int n, int c, int h, int wd, int k, int ks, int st, int pad, int perf_dir, int perf_stride,
                  int perf_offset, int samp_every, int samp_offset, int fp16) {
  emu_case e = {.g = naive_igemm_shape(n, c, h, wd, k, ks, st, pad, perf_dir, perf_stride, perf_offset),
                .samp_every = samp_every, .samp_offset = samp_offset,
                .samp_scale = samp_every ? pt_km_samp_scale(samp_every, 1.0) : 1.0f, .fp16 = fp16};
  int *table = malloc(PT_IG_KMAX * sizeof *table);
  const int kdim = pt_igemm_k_table(c, ks, ks, samp_every, samp_offset, table);
  cr_assert_gt(kdim, 0);
  pt_igemm_sizes(&e.g, kdim);
  const size_t nx = (size_t)n * h * wd * c, nw = (size_t)k * c * ks * ks, ny = (size_t)n * k * e.g.oh * e.g.ow;
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc((size_t)k * sizeof *b);
  float *y = calloc(ny, sizeof *y), *ref = calloc(ny, sizeof *ref);
  pt_rng r;
  pt_rng_seed(&r, (uint64_t)(n * 7 + c * 131 + h * 17 + k * 3 + perf_dir * 1009 + samp_every * 31 + fp16));
  fill_uniform(&r, x, (int64_t)nx, -1, 1);
  fill_uniform(&r, w, (int64_t)nw, -0.5f, 0.5f);
  fill_uniform(&r, b, k, -0.2f, 0.2f);
  if (fp16) { /* the kernel's operands are binary16: the reference gets the same ones */
    for (size_t i = 0; i < nx; i++) x[i] = pt_round_f16(x[i]);
  }
  run_emulated(&e, table, x, w, b, y);
  naive_igemm_fill(&e.g, y);
  naive_igemm_conv(&e.g, samp_every, samp_offset, e.samp_scale, x, w, b, ref);
  const double err = norm_err(y, ref, (int64_t)ny);
  cr_assert_lt(err, fp16 ? 2e-3 : 1e-5,
               "n%d c%d %dx%d k%d %dx%d s%d p%d perf %d/%d/%d samp %d/%d fp16 %d: normalised error %g", n, c, h, wd, k,
               ks, ks, st, pad, perf_dir, perf_stride, perf_offset, samp_every, samp_offset, fp16, err);
  free(x), free(w), free(b), free(y), free(ref), free(table);
}

Test(igemm, fragment_layouts_cover_each_element_once) {
  /* ldmatrix.x4 into A, then the mma's A layout: lane l's element i is the tile's (row, col) */
  float tile[16 * 16], a[32][8];
  for (int i = 0; i < 256; i++) tile[i] = (float)i;
  ldmatrix_a(tile, 16, 0, 0, a);
  for (int l = 0; l < 32; l++)
    for (int i = 0; i < 8; i++)
      cr_assert_eq(a[l][i], (float)(pt_mma_a_row(l, i) * 16 + pt_mma_a_col(l, i)), "lane %d element %d", l, i);
  float bt[16 * 16], b0[32][4], b1[32][4]; /* [n][k] */
  for (int i = 0; i < 256; i++) bt[i] = (float)i;
  ldmatrix_b(bt, 16, 0, 0, b0, b1);
  for (int l = 0; l < 32; l++)
    for (int i = 0; i < 4; i++) {
      cr_assert_eq(b0[l][i], (float)(pt_mma_b_n(l, i) * 16 + pt_mma_b_k(l, i)), "lane %d b0 %d", l, i);
      cr_assert_eq(b1[l][i], (float)((8 + pt_mma_b_n(l, i)) * 16 + pt_mma_b_k(l, i)), "lane %d b1 %d", l, i);
    }
}

Test(igemm, exact_convolutions_in_fp32_and_fp16) {
  for (int fp16 = 0; fp16 <= 1; fp16++) {
    check(2, 3, 9, 7, 5, 3, 1, 1, 0, 0, 0, 0, 0, fp16);     /* 3 channels, odd sizes */
    check(1, 16, 8, 8, 16, 3, 1, 1, 0, 0, 0, 0, 0, fp16);   /* one block, K = 144 */
    check(3, 20, 12, 11, 70, 3, 1, 1, 0, 0, 0, 0, 0, fp16); /* M and N over a block, C not a multiple of 8 */
    check(2, 24, 11, 13, 24, 3, 2, 1, 0, 0, 0, 0, 0, fp16); /* stride 2 */
    check(2, 8, 3, 9, 8, 3, 1, 0, 0, 0, 0, 0, 0, fp16);     /* a 1-row output */
    check(1, 12, 7, 7, 9, 5, 1, 2, 0, 0, 0, 0, 0, fp16);    /* 5x5 */
    check(2, 33, 6, 5, 17, 1, 1, 0, 0, 0, 0, 0, 0, fp16);   /* 1x1, K = 33 */
  }
}

Test(igemm, perforation_of_rows_and_columns) {
  for (int dir = 1; dir <= 2; dir++)
    for (int s = 2; s <= 4; s++)
      for (int o = 0; o < s; o++) {
        check(2, 16, 10, 9, 20, 3, 1, 1, dir, s, o, 0, 0, 1);
        check(1, 5, 7, 12, 8, 3, 2, 1, dir, s, o, 0, 0, 0);
      }
}

Test(igemm, sampling_at_every_skip_shrinks_k) {
  int table[PT_IG_KMAX];
  cr_assert_eq(pt_igemm_k_table(16, 3, 3, 2, 0, table), 72, "skip every 2 keeps half of 144");
  cr_assert_eq(pt_igemm_k_table(16, 3, 3, 3, 1, table), 96, "skip 3 on 3x3 keeps two taps in three");
  cr_assert_eq(pt_igemm_k_table(16, 3, 3, 4, 2, table), 108, "skip every 4 keeps three in four");
  for (int every = 2; every <= 4; every++)
    for (int o = 0; o < every; o++) {
      check(2, 16, 9, 8, 24, 3, 1, 1, 0, 0, 0, every, o, 1);
      check(1, 7, 6, 7, 10, 3, 1, 1, 0, 0, 0, every, o, 0);
      check(1, 6, 8, 8, 8, 5, 1, 2, 0, 0, 0, every, o, 1); /* 5x5: the flat rule */
    }
  check(2, 16, 10, 9, 20, 3, 1, 1, 1, 2, 1, 2, 1, 1); /* perforation and sampling at once */
}

/* ---- the fp32 CUDA-core variant (kernels/conv_simt.cu) ---- */

/* Its loop nest: per block, every thread's tile loads (pt_simt_a_elem / b_elem), its 8 x 4 outputs
 * (pt_simt_m0 / n0), then the fill over biased neighbours. x and y NCHW; owner counts every write. */
static void run_simt(const pt_igemm_conv *g, const int *table, const float *x, const float *w, float scale,
                     const float *bias, float *y, int *owner) {
  static float as[PT_SIMT_BK][PT_SIMT_LDA], bs[PT_SIMT_BK][PT_SIMT_LDB];
  static float acc[PT_SIMT_THREADS][PT_SIMT_TM][PT_SIMT_TN];
  for (int bm = 0; bm < (g->m + PT_SIMT_BM - 1) / PT_SIMT_BM; bm++)
    for (int bn = 0; bn < (g->k + PT_SIMT_BN - 1) / PT_SIMT_BN; bn++) {
      const int m0 = bm * PT_SIMT_BM, n0 = bn * PT_SIMT_BN;
      memset(acc, 0, sizeof acc);
      for (int k0 = 0; k0 < g->kdim; k0 += PT_SIMT_BK) {
        for (int t = 0; t < PT_SIMT_THREADS; t++) {
          int kk0, ml0, img = 0, iy0 = 0, ix0 = 0;
          pt_simt_a_elem(t, 0, &kk0, &ml0);
          const int in_m = pt_simt_a_origin(g, m0 + ml0, &img, &iy0, &ix0);
          for (int i = 0; i < PT_SIMT_BM * PT_SIMT_BK / PT_SIMT_THREADS; i++) {
            int kk, ml;
            pt_simt_a_elem(t, i, &kk, &ml);
            cr_assert_eq(ml, ml0, "a thread's A loads share one pixel");
            const long long o = in_m && k0 + kk < g->kdim ? pt_simt_a_at(g, img, iy0, ix0, table[k0 + kk]) : -1;
            as[kk][ml] = o < 0 ? 0.0f : x[o];
          }
          for (int i = 0; i < PT_SIMT_BN * PT_SIMT_BK / PT_SIMT_THREADS; i++) {
            int kk, nl;
            pt_simt_b_elem(t, i, &kk, &nl);
            const int n = n0 + nl, kg = k0 + kk;
            bs[kk][nl] = kg < g->kdim && n < g->k ? w[pt_igemm_b_offset(g, kg, n, table[kg])] * scale : 0.0f;
          }
        }
        for (int t = 0; t < PT_SIMT_THREADS; t++)
          for (int kk = 0; kk < PT_SIMT_BK; kk++)
            for (int i = 0; i < PT_SIMT_TM; i++)
              for (int j = 0; j < PT_SIMT_TN; j++)
                acc[t][i][j] = fmaf(as[kk][pt_simt_m0(t) + i], bs[kk][pt_simt_n0(t) + j], acc[t][i][j]);
      }
      for (int t = 0; t < PT_SIMT_THREADS; t++)
        for (int i = 0; i < PT_SIMT_TM; i++)
          for (int j = 0; j < PT_SIMT_TN; j++) {
            const int m = m0 + pt_simt_m0(t) + i, n = n0 + pt_simt_n0(t) + j;
            if (m >= g->m || n >= g->k) continue;
            const long long o = pt_simt_y_offset(g, m, n);
            y[o] = acc[t][i][j] + bias[n];
            owner[o]++;
          }
    }
  if (!g->perf_dir) return;
  const int rows = g->perf_dir == 1, len = rows ? g->oh : g->ow, other = rows ? g->ow : g->oh;
  for (int img = 0; img < g->n; img++)
    for (int n = 0; n < g->k; n++)
      for (int at = g->perf_offset; at < len; at += g->perf_stride)
        for (int j = 0; j < other; j++) {
          int a, b;
          pt_km_perf_fill_src(at, len, &a, &b);
          float *plane = y + ((size_t)img * g->k + n) * g->oh * g->ow;
#define AT(p) plane[rows ? (size_t)(p) * g->ow + j : (size_t)j * g->ow + (p)]
          AT(at) = a < 0 ? bias[n] : a == b ? AT(a) : (AT(a) + AT(b)) / 2.0f;
          owner[(size_t)(&AT(at) - y)]++;
#undef AT
        }
}

static void check_simt(int n, int c, int h, int wd, int k, int ks, int st, int pad, int perf_dir, int perf_stride,
                       int perf_offset, int samp_every, int samp_offset) {
  pt_igemm_conv g = naive_igemm_shape(n, c, h, wd, k, ks, st, pad, perf_dir, perf_stride, perf_offset);
  int *table = malloc(PT_IG_KMAX * sizeof *table);
  const int kdim = pt_igemm_k_table(c, ks, ks, samp_every, samp_offset, table);
  cr_assert_gt(kdim, 0);
  pt_igemm_sizes(&g, kdim);
  const float scale = samp_every ? pt_km_samp_scale(samp_every, 1.0) : 1.0f;
  const size_t nx = (size_t)n * h * wd * c, nw = (size_t)k * c * ks * ks, ny = (size_t)n * k * g.oh * g.ow;
  float *x = malloc(nx * sizeof *x), *xc = malloc(nx * sizeof *xc), *w = malloc(nw * sizeof *w);
  float *b = malloc((size_t)k * sizeof *b), *y = malloc(ny * sizeof *y), *ref = malloc(ny * sizeof *ref);
  int *owner = calloc(ny, sizeof *owner);
  pt_rng r;
  pt_rng_seed(&r, (uint64_t)(n * 5 + c * 11 + h * 13 + k * 3 + perf_dir * 101 + samp_every * 7));
  fill_uniform(&r, x, (int64_t)nx, -1, 1); /* NHWC for the reference */
  fill_uniform(&r, w, (int64_t)nw, -0.5f, 0.5f);
  fill_uniform(&r, b, k, -0.2f, 0.2f);
  for (int img = 0; img < n; img++)
    for (int ch = 0; ch < c; ch++)
      for (int pix = 0; pix < h * wd; pix++) xc[((size_t)img * c + ch) * h * wd + pix] = x[((size_t)img * h * wd + pix) * c + ch];
  run_simt(&g, table, xc, w, scale, b, y, owner);
  naive_igemm_conv(&g, samp_every, samp_offset, scale, x, w, b, ref);
  double num = 0, den = 0;
  for (int img = 0; img < n; img++)
    for (int o = 0; o < k; o++)
      for (int p = 0; p < g.oh * g.ow; p++) {
        const size_t yi = ((size_t)img * k + o) * g.oh * g.ow + p;
        cr_assert_eq(owner[yi], 1, "output %zu written %d times", yi, owner[yi]);
        const double d = y[yi] - ref[((size_t)img * g.oh * g.ow + p) * k + o];
        num += d * d, den += (double)ref[((size_t)img * g.oh * g.ow + p) * k + o] * ref[((size_t)img * g.oh * g.ow + p) * k + o];
      }
  cr_assert_lt(sqrt(num / den), 1e-5, "simt n%d c%d %dx%d k%d %dx%d s%d perf %d/%d/%d samp %d/%d: normalised error %g", n,
               c, h, wd, k, ks, ks, st, perf_dir, perf_stride, perf_offset, samp_every, samp_offset, sqrt(num / den));
  free(x), free(xc), free(w), free(b), free(y), free(ref), free(owner), free(table);
}

Test(igemm, simt_fp32_every_knob) {
  check_simt(2, 3, 9, 7, 5, 3, 1, 1, 0, 0, 0, 0, 0);    /* odd sizes */
  check_simt(3, 20, 12, 11, 70, 3, 1, 1, 0, 0, 0, 0, 0); /* M and N over a block */
  check_simt(2, 8, 11, 13, 8, 3, 2, 1, 0, 0, 0, 0, 0);   /* stride 2 */
  check_simt(2, 8, 3, 9, 8, 3, 1, 0, 0, 0, 0, 0, 0);     /* a 1-row output */
  check_simt(1, 6, 7, 7, 9, 5, 1, 2, 0, 0, 0, 0, 0);     /* 5x5 */
  check_simt(2, 33, 6, 5, 17, 1, 1, 0, 0, 0, 0, 0, 0);   /* 1x1 */
  for (int dir = 1; dir <= 2; dir++)
    for (int s = 2; s <= 4; s++)
      for (int o = 0; o < s; o++) check_simt(2, 6, 10, 9, 10, 3, 1, 1, dir, s, o, 0, 0);
  for (int every = 2; every <= 4; every++)
    for (int o = 0; o < every; o++) {
      check_simt(1, 7, 6, 7, 10, 3, 1, 1, 0, 0, 0, every, o);
      check_simt(1, 4, 8, 8, 8, 5, 1, 2, 0, 0, 0, every, o);
    }
}
