/* The halo-tile implicit-GEMM convolution's loop nest run on the CPU (the GPU kernel issue, point 2):
 * kernels/conv_igemm_halo.cu's blocks, pipeline stages (16-channel chunks) and kept taps, with its
 * staged input (channels in the plan's class order), gathered weights, the halo tile loaded through
 * pt_ig2_halo_src and the swizzle of pt_ig2_a_at, ldmatrix rows from pt_ig2_a_pixel + tap offsets,
 * an emulated mma (tests/mma_emu.c), the epilogue's staging tile through the C layout, and the
 * output and fill through pt_ig2_row / pt_ig2_fill_at. Compared with the plain loop over the knob
 * definitions (naive_igemm_conv) for exact convolutions, row and column perforation at strides 2-4
 * and every offset, sampling at every skip and offset, whole-image and strip tiles, resident and
 * streamed weights, odd sizes, 1-row outputs and channel counts that are not multiples of 16. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "kernels/igemm_halo.h"
#include "mma_emu.h"
#include "naive.h"
#include "predtuner/tensor.h"

static float r16(float v, int on) { return on ? pt_round_f16(v) : v; }

/* The epilogue's order (conv_epilogue.cu): bias read rounded, the sum rounded. */
static float finish(const pt_ig2_plan *p, float v, const float *bias, int n) {
  if (bias) v += r16(bias[n], p->fp16);
  return p->fp16 && (bias || !p->g.perf_dir) ? pt_round_f16(v) : v;
}

/* One block (bx, output channel block by) of the kernel. xs: staged input; wk: gathered weights. */
static void run_block(const pt_ig2_plan *p, int bx, int by, const float *xs, const float *wk, const float *bias,
                      float *y) {
  const pt_igemm_conv *g = &p->g;
  const int n0 = by * PT_IG_BN, kpad = p->nblk * PT_IG2_CH;
  float *sa = calloc((size_t)PT_IG2_STAGES * p->a_halves, sizeof *sa);
  float *sb = calloc((size_t)p->b_halves * (p->resident ? 1 : PT_IG2_STAGES), sizeof *sb);
  static float acc[4][PT_IG_MI][PT_IG_NI][32][4], sy[PT_IG_BM * PT_IG2_LDY];
  memset(acc, 0, sizeof acc);
  int img0, r0, q0, iy0, ix0;
  pt_ig2_block(p, bx, &img0, &r0, &q0);
  pt_ig2_origin(p, bx, &iy0, &ix0);
  if (p->resident)
    for (int nl = 0; nl < PT_IG_BN; nl++)
      for (int b = 0; b < p->nblk; b++)
        for (int kk = 0; kk < PT_IG2_CH; kk++)
          sb[pt_ig2_b_at(p, nl, b, kk)] = n0 + nl < g->k ? wk[(size_t)(n0 + nl) * kpad + b * PT_IG2_CH + kk] : 0.0f;
  for (int j = 0; j < p->chunks; j++) {
    const int s = j % PT_IG2_STAGES, b0 = pt_ig2_blk0(p, j);
    float *A = sa + (size_t)s * p->a_halves, *B = p->resident ? sb : sb + (size_t)s * p->b_halves;
    for (int hp = 0; hp < p->a_halves / PT_IG2_CH; hp++) /* the stage's halo tile */
      for (int h = 0; h < 2; h++) {
        int img, iy, ix;
        const int ok = pt_ig2_halo_src_at(p, img0, iy0, ix0, hp, &img, &iy, &ix);
        for (int e = 0; e < 8; e++)
          A[pt_ig2_a_at(hp, h) + e] =
              ok ? xs[(((size_t)img * g->h + iy) * g->w + ix) * p->cp + j * PT_IG2_CH + 8 * h + e] : 0.0f;
      }
    const int ns = pt_ig2_steps(p, j);
    if (!p->resident)
      for (int nl = 0; nl < PT_IG_BN; nl++)
        for (int t = 0; t < ns; t++)
          for (int kk = 0; kk < PT_IG2_CH; kk++)
            B[pt_ig2_b_at(p, nl, t, kk)] =
                n0 + nl < g->k ? wk[(size_t)(n0 + nl) * kpad + (b0 + t) * PT_IG2_CH + kk] : 0.0f;
    for (int warp = 0; warp < 4; warp++) {
      const int wm = pt_igemm_warp_m0(warp), wn = pt_igemm_warp_n0(warp);
      unsigned long long mlo = pt_ig2_half_mask(p, 2 * j), mhi = pt_ig2_half_mask(p, 2 * j + 1);
      for (int i = 0, t = p->resident ? b0 : 0; i < ns; i++, t++) {
        const int tlo = pt_ig2_nth_tap(mlo, 0), thi = pt_ig2_nth_tap(mhi, 0);
        mlo &= mlo - 1, mhi &= mhi - 1;
        for (int mi = 0; mi < PT_IG_MI; mi++) {
          const float *rows[32];
          float a[32][8];
          for (int l = 0; l < 32; l++) {
            const int half = pt_ldm_a_col(l) >> 3, mine = half ? thi : tlo;
            const int off = mine < 0 ? 0 : pt_ig2_tap_off(p, mine);
            rows[l] = A + pt_ig2_a_at(pt_ig2_a_pixel(p, bx, wm + 16 * mi + pt_ldm_a_row(l)) + off, half);
          }
          ldmatrix_x4_emulated(rows, a);
          for (int ni = 0; ni < PT_IG_NI; ni += 2) {
            float r[32][8], b0f[32][4], b1f[32][4];
            for (int l = 0; l < 32; l++) rows[l] = B + pt_ig2_b_at(p, wn + 8 * ni + pt_ldm_b_n(l), t, pt_ldm_b_k(l));
            ldmatrix_x4_emulated(rows, r);
            for (int l = 0; l < 32; l++)
              for (int q = 0; q < 4; q++) b0f[l][q] = r[l][q], b1f[l][q] = r[l][4 + q];
            mma_emulated(a, b0f, acc[warp][mi][ni]);
            mma_emulated(a, b1f, acc[warp][mi][ni + 1]);
          }
        }
      }
    }
  }
  for (int warp = 0; warp < 4; warp++) /* the staging tile, through the C layout */
    for (int mi = 0; mi < PT_IG_MI; mi++)
      for (int ni = 0; ni < PT_IG_NI; ni++)
        for (int l = 0; l < 32; l++)
          for (int i = 0; i < 4; i++) {
            const float v = acc[warp][mi][ni][l][i];
            sy[(pt_igemm_warp_m0(warp) + 16 * mi + pt_mma_c_row(l, i)) * PT_IG2_LDY + pt_igemm_warp_n0(warp) + 8 * ni +
               pt_mma_c_col(l, i)] = p->fp16 && g->perf_dir ? pt_round_f16(v) : v;
          }
  for (int nl = 0; nl < PT_IG_BN; nl++) { /* the kept outputs, then the fill */
    const int n = n0 + nl;
    if (n >= g->k) continue;
    for (int ml = 0; ml < PT_IG_BM; ml++) {
      int slot, r, c;
      if (!pt_ig2_row(p, bx, ml, &slot, &r, &c)) continue;
      y[pt_ig2_y_at(g, img0 + slot, n, pt_ig2_out(g, 0, r), pt_ig2_out(g, 1, c))] =
          finish(p, sy[ml * PT_IG2_LDY + nl], bias, n);
    }
    for (int slot = 0; slot < p->ipb; slot++)
      for (int e = 0; e < pt_ig2_fill_count(p); e++) {
        int oy, ox, ma, mb, valid;
        pt_ig2_fill_at(p, bx, slot, e, &oy, &ox, &ma, &mb, &valid);
        if (!valid) continue;
        float v = 0.0f;
        if (ma >= 0) {
          const float va = sy[ma * PT_IG2_LDY + nl], vb = sy[mb * PT_IG2_LDY + nl];
          v = ma == mb ? va : p->fp16 ? pt_round_f16(pt_round_f16(va + vb) * 0.5f) : (va + vb) / 2.0f;
        }
        y[pt_ig2_y_at(g, img0 + slot, n, oy, ox)] = finish(p, v, bias, n);
      }
  }
  free(sa), free(sb);
}

/* One case; expect_mode: the tile the plan must choose (1 whole images, 2 strips; 0: any). */
static void check(int n, int c, int h, int wd, int k, int ks, int st, int pad, int perf_dir, int perf_stride,
                  int perf_offset, int every, int soff, int fp16, int expect_resident) {
  pt_igemm_conv g = naive_igemm_shape(n, c, h, wd, k, ks, st, pad, perf_dir, perf_stride, perf_offset);
  pt_ig2_plan p;
  cr_assert_eq(pt_ig2_make(&p, &g, fp16, every, every ? soff : 0), 0,
               "the plan must take n%d c%d %dx%d k%d %dx%d s%d p%d perf %d/%d/%d samp %d/%d", n, c, h, wd, k, ks, ks, st,
               pad, perf_dir, perf_stride, perf_offset, every, soff);
  if (expect_resident >= 0) cr_assert_eq(p.resident, expect_resident, "weights resident: %d", p.resident);
  const float scale = every ? pt_km_samp_scale(every, 1.0) : 1.0f;
  const size_t nx = (size_t)n * h * wd * c, nw = (size_t)k * c * ks * ks, ny = (size_t)n * k * g.oh * g.ow;
  float *x = malloc(nx * sizeof *x), *w = malloc(nw * sizeof *w), *b = malloc((size_t)k * sizeof *b);
  float *xs = calloc((size_t)(pt_ig2_xs_bytes(&p) / 2), sizeof *xs), *wk = malloc((size_t)(pt_ig2_wk_bytes(&p) / 2) * 4);
  float *y = malloc(ny * sizeof *y), *ref = malloc(ny * sizeof *ref), *refc = malloc(ny * sizeof *refc);
  pt_rng r;
  pt_rng_seed(&r, (uint64_t)(n * 7 + c * 131 + h * 17 + k * 3 + perf_dir * 1009 + every * 31 + fp16));
  fill_uniform(&r, x, (int64_t)nx, -1, 1); /* NHWC, as naive_igemm_conv reads it */
  fill_uniform(&r, w, (int64_t)nw, -0.5f, 0.5f);
  fill_uniform(&r, b, k, -0.2f, 0.2f);
  if (fp16)
    for (size_t i = 0; i < nx; i++) x[i] = pt_round_f16(x[i]);
  for (int img = 0; img < n; img++) /* what pt_k_ig2_stage writes */
    for (int pix = 0; pix < h * wd; pix++)
      for (int pc = 0; pc < p.cp; pc++) {
        const int ch = pt_ig2_chan(&p, pc);
        xs[((size_t)img * h * wd + pix) * p.cp + pc] = ch < 0 ? 0.0f : x[((size_t)img * h * wd + pix) * c + ch];
      }
  for (int o = 0; o < k; o++) /* what pt_k_ig2_weights writes */
    for (int kk = 0; kk < p.nblk * PT_IG2_CH; kk++) {
      const long long src = pt_ig2_w_src(&p, o, kk / PT_IG2_CH, kk % PT_IG2_CH);
      wk[(size_t)o * p.nblk * PT_IG2_CH + kk] = src < 0 ? 0.0f : r16(w[src] * scale, fp16);
    }
  for (size_t i = 0; i < ny; i++) y[i] = NAN;
  for (int bx = 0; bx < p.blocks; bx++)
    for (int by = 0; by < (k + PT_IG_BN - 1) / PT_IG_BN; by++) run_block(&p, bx, by, xs, wk, b, y);
  naive_igemm_conv(&g, every, soff, scale, x, w, b, ref);
  for (int img = 0; img < n; img++) /* NHWC -> NCHW */
    for (int o = 0; o < k; o++)
      for (int py = 0; py < g.oh; py++)
        for (int px = 0; px < g.ow; px++)
          refc[pt_ig2_y_at(&p.g, img, o, py, px)] = ref[(((size_t)img * g.oh + py) * g.ow + px) * k + o];
  const double err = norm_err(y, refc, (int64_t)ny); /* an output never written stays NaN: +inf */
  cr_assert_lt(err, fp16 ? 2e-3 : 1e-5,
               "n%d c%d %dx%d k%d %dx%d s%d p%d perf %d/%d/%d samp %d/%d fp16 %d (ipb %d, tile %dx%d, halo %dx%d, "
               "%d blocks, resident %d): normalised error %g",
               n, c, h, wd, k, ks, ks, st, pad, perf_dir, perf_stride, perf_offset, every, soff, fp16, p.ipb, p.tr,
               p.tc, p.hr, p.hc, p.blocks, p.resident, err);
  free(x), free(w), free(b), free(xs), free(wk), free(y), free(ref), free(refc);
}

Test(igemm_halo, plan_keeps_exactly_the_sampled_pairs_and_k_shrinks) {
  for (int every = 0; every <= 4; every++) {
    if (every == 1) continue;
    for (int o = 0; o < (every ? every : 1); o++)
      for (int c = 1; c <= 70; c += 23)
        for (int ks = 1; ks <= 5; ks += 2) {
          pt_igemm_conv g = {1, c, 8, 8, 4, 8, 8, ks, ks, 1, 1, ks / 2, ks / 2, 0, 0, 0, 0, 0, 0, 0};
          pt_ig2_plan p;
          if (pt_ig2_make(&p, &g, 1, every, o)) { /* refused only when sampling drops every element */
            for (int f = 0; f < c * ks * ks; f++) cr_assert(every && pt_km_samp_dropped(f, ks, ks, every, o));
            continue;
          }
          int *seen = calloc((size_t)c * ks * ks, sizeof *seen);
          for (int b = 0; b < p.nblk; b++)
            for (int kk = 0; kk < PT_IG2_CH; kk++) {
              const long long src = pt_ig2_w_src(&p, 0, b, kk); /* output channel 0: the flat index */
              if (src >= 0) seen[src]++;
            }
          for (int f = 0; f < c * ks * ks; f++)
            cr_assert_eq(seen[f], every && pt_km_samp_dropped(f, ks, ks, every, o) ? 0 : 1,
                         "c%d %dx%d every %d offset %d: flat %d used %d times", c, ks, ks, every, o, f, seen[f]);
          free(seen);
        }
  }
  pt_igemm_conv g = {2, 64, 32, 32, 64, 32, 32, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
  pt_ig2_plan p;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 0, 0), 0);
  cr_assert_eq(p.nblk * PT_IG2_CH, 576, "exact: K = 9 x 64");
  for (int o = 0; o < 2; o++) {
    cr_assert_eq(pt_ig2_make(&p, &g, 1, 2, o), 0);
    cr_assert_eq(p.nblk * PT_IG2_CH, 288, "skip every 2 on 64 channels: K exactly halves (offset %d)", o);
  }
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 4, 1), 0);
  cr_assert_eq(p.nblk * PT_IG2_CH, 432, "skip every 4: three quarters");
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 3, 0), 0);
  cr_assert_eq(p.nblk * PT_IG2_CH, 480, "skip 3 at 64 channels: classes of 22 padded to 24, 6 taps each");
  g.c = 128;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 3, 2), 0);
  cr_assert_eq(p.nblk * PT_IG2_CH, 864, "skip 3 at 128 channels: 3 classes of 48 slots, 6 taps each");
  g.c = 16;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 2, 1), 0);
  cr_assert(p.classes == 2 && p.nblk * PT_IG2_CH == 80, "skip 2 at 16 channels: two half taps a k step, K 80 of 144");
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 4, 0), 0);
  cr_assert(p.classes == 1 && p.nblk * PT_IG2_CH == 144, "skip 4 at 16 channels: classes of 4 would pad, in order");
  pt_igemm_conv big = g;
  big.kh = big.kw = 9;
  cr_assert_eq(pt_ig2_make(&p, &big, 1, 0, 0), -1, "81 taps: another variant");
}

Test(igemm_halo, tiles_whole_images_and_strips) {
  pt_igemm_conv g = {3, 16, 8, 8, 16, 8, 8, 3, 3, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0};
  pt_ig2_plan p;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 0, 0), 0);
  cr_assert(p.ipb == 2 && p.tr == 8 && p.tc == 8 && p.hr == 10 && p.hc == 10 && p.blocks == 2, "8x8: two images a block");
  g.h = g.w = g.oh = g.ow = 32, g.perf_dir = 1, g.perf_stride = 2;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 0, 0), 0);
  cr_assert(p.ipb == 1 && p.tr == 16 && p.tc == 8 && p.tiles_c == 4 && p.hr == 33 && p.hc == 10,
            "32x32 rows s2: 16 kept rows x 8 columns, the whole column strip (%d x %d, halo %d x %d)", p.tr, p.tc, p.hr,
            p.hc);
  g.perf_dir = 0;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 0, 0), 0);
  cr_assert(p.tr == 8 && p.tc == 16 && p.hr == 10 && p.hc == 18, "32x32 exact: 8 x 16 tiles");
}

Test(igemm_halo, exact_convolutions) {
  for (int fp16 = 0; fp16 <= 1; fp16++) {
    check(2, 3, 9, 7, 5, 3, 1, 1, 0, 0, 0, 0, 0, fp16, 1);     /* 3 channels, odd sizes, whole images */
    check(3, 20, 12, 11, 70, 3, 1, 1, 0, 0, 0, 0, 0, fp16, 1); /* strips, N over a block, C not a multiple of 16 */
    check(2, 24, 11, 13, 24, 3, 2, 1, 0, 0, 0, 0, 0, fp16, 1); /* stride 2 */
    check(2, 8, 3, 9, 8, 3, 1, 0, 0, 0, 0, 0, 0, fp16, 1);     /* a 1-row output */
    check(1, 12, 7, 7, 9, 5, 1, 2, 0, 0, 0, 0, 0, fp16, 1);    /* 5x5 */
    check(2, 33, 6, 5, 17, 1, 1, 0, 0, 0, 0, 0, 0, fp16, 1);   /* 1x1 */
  }
  check(2, 64, 16, 16, 64, 3, 1, 1, 0, 0, 0, 0, 0, 1, 1);  /* vgg's 64 -> 64, weights resident */
  check(1, 130, 9, 10, 20, 3, 1, 1, 0, 0, 0, 0, 0, 1, 0); /* 130 channels: weights streamed per stage */
}

Test(igemm_halo, perforation_of_rows_and_columns) {
  for (int dir = 1; dir <= 2; dir++)
    for (int s = 2; s <= 4; s++)
      for (int o = 0; o < s; o++) {
        check(2, 16, 10, 9, 20, 3, 1, 1, dir, s, o, 0, 0, 1, -1); /* whole images */
        check(1, 5, 7, 12, 8, 3, 2, 1, dir, s, o, 0, 0, 0, -1);
        check(1, 16, 20, 24, 8, 3, 1, 1, dir, s, o, 0, 0, 1, -1); /* strips of the perforated axis */
      }
  check(2, 8, 3, 9, 8, 3, 1, 0, 2, 2, 1, 0, 0, 1, -1); /* columns of a 1-row output */
  pt_igemm_conv g = {1, 8, 3, 9, 8, 1, 7, 3, 3, 1, 1, 0, 0, 1, 2, 0, 0, 0, 0, 0};
  pt_ig2_plan p;
  cr_assert_eq(pt_ig2_make(&p, &g, 1, 0, 0), -1, "rows of a 1-row output: nothing to compute, another variant");
}

Test(igemm_halo, sampling_at_every_skip_and_offset) {
  for (int every = 2; every <= 4; every++)
    for (int o = 0; o < every; o++) {
      check(2, 16, 9, 8, 24, 3, 1, 1, 0, 0, 0, every, o, 1, -1);
      check(1, 7, 6, 7, 10, 3, 1, 1, 0, 0, 0, every, o, 0, -1);
      check(1, 6, 8, 8, 8, 5, 1, 2, 0, 0, 0, every, o, 1, -1); /* 5x5: the flat rule */
      check(1, 64, 12, 12, 16, 3, 1, 1, 0, 0, 0, every, o, 1, -1);
      check(1, 16, 10, 10, 16, 3, 1, 1, 0, 0, 0, every, o, 1, -1); /* halves of different classes */
      check(1, 20, 6, 6, 8, 3, 1, 1, 0, 0, 0, every, o, 0, -1);
    }
  check(2, 16, 10, 9, 20, 3, 1, 1, 1, 2, 1, 2, 1, 1, -1); /* perforation and sampling at once */
}
