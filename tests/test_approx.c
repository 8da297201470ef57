/* The exact semantics of every knob class (docs/design.md, "Knobs"): hand-computed cases, the index
 * math, the real (work-skipping) implementations against simple simulations on random inputs of many
 * shapes, PromiseSim, and every default knob on every zoo network. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_ext.h"
#include "kernels/knob_math.h"
#include "naive.h"
#include "predtuner/predtuner.h"

#define FIX PT_SOURCE_DIR "/tests/fixtures/"

static pt_backend *be;
static void setup(void) { cr_assert_eq(pt_backend_create("cpu", 2, &be), PT_OK); }
static void teardown(void) { pt_backend_free(be); }
TestSuite(approx, .init = setup, .fini = teardown);

/* ---------------- perforation: hand-computed cases ---------------- */

/* A 1x1 convolution with weight 1 from one channel to one channel: y = x (+ bias), so the
 * perforation's fill is visible directly. x is (1, 1, h, w). */
static void perforate_identity(const float *x, int h, int w, int row, int stride, int off, float bias, int fp16,
                               float *y) {
  pt_conv_desc d = {1, 1, h, w, 1, h, w, 1, 1, 1, 1, 0, 0, 1, fp16, row ? 1 : 2, stride, off, 0, 0, 0.0f};
  float one = 1.0f;
  for (int i = 0; i < h * w; i++) y[i] = NAN;
  cr_assert_eq(be->iface->conv2d(be->ctx, &d, x, &one, &bias, y), PT_OK);
}

Test(approx, perforation_hand_computed) {
  float y[16];
  const float sq[5] = {1, 4, 9, 16, 25};
  /* rows, stride 2, offset 0: rows 0, 2, 4 skipped: first copies row 1, middle averages, last copies */
  perforate_identity(sq, 5, 1, 1, 2, 0, 0.0f, 0, y);
  const float e0[5] = {4, 4, 10, 16, 16};
  for (int i = 0; i < 5; i++) cr_assert_eq(y[i], e0[i], "row %d", i);
  perforate_identity(sq, 5, 1, 1, 2, 1, 0.0f, 0, y);
  const float e1[5] = {1, 5, 9, 17, 25};
  for (int i = 0; i < 5; i++) cr_assert_eq(y[i], e1[i]);
  /* columns: the same along W; bias added after the fill */
  perforate_identity(sq, 1, 5, 0, 3, 2, 0.5f, 0, y);
  const float e2[5] = {1.5f, 4.5f, 10.5f, 16.5f, 25.5f}; /* col 2 = mean(4, 16) + 0.5 */
  for (int i = 0; i < 5; i++) cr_assert_eq(y[i], e2[i], "col %d: %g", i, y[i]);
  /* stride 3 offset 0 on 7 rows: skip 0, 3, 6 */
  const float r7[7] = {0, 10, 20, 31, 40, 50, 61};
  perforate_identity(r7, 7, 1, 1, 3, 0, 0.0f, 0, y);
  const float e3[7] = {10, 10, 20, 30, 40, 50, 50};
  for (int i = 0; i < 7; i++) cr_assert_eq(y[i], e3[i]);
  /* stride 4, every offset, on 6 columns */
  const float c6[6] = {1, 2, 4, 8, 16, 32};
  const float e4[4][6] = {{2, 2, 4, 8, 20, 32}, {1, 2.5f, 4, 8, 16, 16}, {1, 2, 5, 8, 16, 32}, {1, 2, 4, 10, 16, 32}};
  for (int off = 0; off < 4; off++) {
    perforate_identity(c6, 1, 6, 0, 4, off, 0.0f, 0, y);
    for (int i = 0; i < 6; i++) cr_assert_eq(y[i], e4[off][i], "offset %d col %d: %g", off, i, y[i]);
  }
  /* height 1: the only row is skipped and has no neighbour: zero (then bias) */
  const float one[3] = {7, 8, 9};
  perforate_identity(one, 1, 3, 1, 2, 0, 0.25f, 0, y);
  for (int i = 0; i < 3; i++) cr_assert_eq(y[i], 0.25f);
  /* height 2: offset 0 copies row 1 into row 0; offset 1 copies row 0 into the last row */
  const float two[4] = {1, 2, 3, 4}; /* (2, 2) */
  perforate_identity(two, 2, 2, 1, 2, 0, 0.0f, 0, y);
  cr_assert(y[0] == 3 && y[1] == 4 && y[2] == 3 && y[3] == 4);
  perforate_identity(two, 2, 2, 1, 2, 1, 0.0f, 0, y);
  cr_assert(y[0] == 1 && y[1] == 2 && y[2] == 1 && y[3] == 2);
  /* fp16: the fill averages in half precision: (1 + 2^-10) and 1 average to a half value */
  const float hx[3] = {1.0f, 5.0f, 1.0009765625f};
  perforate_identity(hx, 3, 1, 1, 2, 1, 0.0f, 1, y);
  cr_assert_eq(y[1], pt_round_f16(pt_round_f16(1.0f + 1.0009765625f) * 0.5f));
  cr_assert_eq(y[1], 1.0f); /* the exact mean 1.00048828125 is a tie that rounds to even */
}

Test(approx, perforation_index_math) {
  for (int stride = 2; stride <= 5; stride++)
    for (int off = 0; off < stride; off++)
      for (int size = 1; size <= 17; size++) {
        int kept = 0;
        for (int i = 0; i < size; i++) {
          int skipped = pt_km_perf_skipped(i, stride, off);
          cr_assert_eq(skipped, i >= off && (i - off) % stride == 0);
          if (!skipped) {
            cr_assert_eq(pt_km_perf_compact_index(i, stride, off), kept, "i %d stride %d off %d", i, stride, off);
            cr_assert_eq(pt_km_perf_kept_index(kept++, stride, off), i);
          }
        }
        cr_assert_eq(pt_km_perf_kept_count(size, stride, off), kept, "size %d stride %d off %d", size, stride, off);
      }
}

/* ---------------- sampling: index sets and scale ---------------- */

Test(approx, sampling_index_sets_and_scale) {
  /* general rule: flat indices offset, offset + every, ... over cin/groups x kh x kw */
  for (int f = 0; f < 18; f++) cr_assert_eq(pt_km_samp_dropped(f, 3, 3, 2, 0), f % 2 == 0);
  for (int f = 0; f < 8; f++) cr_assert_eq(pt_km_samp_dropped(f, 1, 1, 4, 3), f == 3 || f == 7);
  for (int f = 0; f < 50; f++) cr_assert_eq(pt_km_samp_dropped(f, 5, 5, 3, 1), f % 3 == 1);
  for (int f = 0; f < 12; f++) cr_assert_eq(pt_km_samp_dropped(f, 2, 2, 4, 2), f == 2 || f == 6 || f == 10);
  /* 3x3 with skip_every 3: channel c drops in-channel positions (c + offset) mod 3, +3, +6 */
  static const int drop_off0[3][3] = {{0, 3, 6}, {1, 4, 7}, {2, 5, 8}};
  for (int c = 0; c < 3; c++)
    for (int pos = 0; pos < 9; pos++) {
      int want = pos == drop_off0[c][0] || pos == drop_off0[c][1] || pos == drop_off0[c][2];
      cr_assert_eq(pt_km_samp_dropped(c * 9 + pos, 3, 3, 3, 0), want, "c %d pos %d", c, pos);
      int want2 = pos % 3 == (c + 2) % 3;
      cr_assert_eq(pt_km_samp_dropped(c * 9 + pos, 3, 3, 3, 2), want2);
    }
  cr_assert_eq(pt_km_samp_scale(2, 1.0), 2.0f);
  cr_assert_eq(pt_km_samp_scale(3, 1.0), 1.5f);
  cr_assert_eq(pt_km_samp_scale(4, 1.0), (float)(1.0 + 1.0 / 3.0));
  cr_assert_eq(pt_km_samp_scale(2, 0.5), 1.5f);
}

/* ---------------- real implementations vs simulations ---------------- */

typedef struct shape {
  int n, cin, h, w, cout, k, stride, pad, groups, bias;
} shape;

static const shape shapes[] = {
    {2, 3, 9, 9, 4, 3, 1, 1, 1, 1},   {1, 4, 8, 11, 6, 3, 2, 1, 1, 0},  {3, 6, 7, 7, 6, 3, 1, 1, 6, 0},
    {2, 8, 6, 5, 4, 3, 1, 1, 2, 1},   {2, 5, 12, 12, 7, 5, 1, 2, 1, 1}, {1, 16, 4, 4, 8, 1, 1, 0, 1, 1},
    {4, 3, 16, 16, 8, 3, 1, 1, 1, 1}, {2, 4, 5, 9, 3, 1, 2, 0, 1, 1},   {1, 2, 1, 6, 3, 3, 1, 1, 1, 1},
    {2, 3, 2, 2, 5, 3, 1, 1, 1, 1},   {9, 32, 4, 4, 16, 3, 1, 1, 1, 1}, {2, 12, 8, 8, 24, 3, 2, 1, 12, 1},
    /* padding at least the kernel: some kept rows read nothing but padding */
    {2, 3, 1, 1, 4, 1, 2, 1, 1, 1},   {1, 2, 3, 3, 3, 1, 2, 2, 1, 1},
    /* channels enough for oneDNN's blocked kernels (PT_CPU_DNNL=all runs the knobs there): 3x3,
     * stride 2 on odd sizes, 5x5, 1x1, depthwise, an odd channel count */
    {2, 32, 8, 8, 16, 3, 1, 1, 1, 1}, {2, 24, 9, 7, 16, 3, 2, 1, 1, 0}, {1, 20, 6, 6, 16, 5, 1, 2, 1, 1},
    {2, 32, 5, 5, 24, 1, 1, 0, 1, 1}, {2, 16, 8, 8, 16, 3, 1, 1, 16, 1}, {3, 17, 10, 10, 9, 3, 1, 1, 1, 1},
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static pt_conv_desc desc_of(const shape *s, int fp16) {
  int oh = pt_km_out_size(s->h, s->k, s->stride, s->pad), ow = pt_km_out_size(s->w, s->k, s->stride, s->pad);
  pt_conv_desc d = {s->n, s->cin, s->h, s->w, s->cout, oh, ow, s->k, s->k, s->stride, s->stride, s->pad, s->pad,
                    s->groups, fp16, 0, 0, 0, 0, 0, 0.0f};
  return d;
}

/* Simulation of perforation: full convolution without bias, (round), fill, bias (all rounded in fp16). */
static void simulate_perforation(const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  int64_t nx = (int64_t)d->n * d->cin * d->h * d->w, nw = (int64_t)d->cout * (d->cin / d->groups) * d->kh * d->kw;
  float *xs = malloc(nx * 4), *ws = malloc(nw * 4);
  memcpy(xs, x, nx * 4);
  memcpy(ws, w, nw * 4);
  if (d->fp16) {
    pt_round_f16_array(xs, nx);
    pt_round_f16_array(ws, nw);
  }
  naive_conv2d(d, xs, ws, NULL, y);
  int P = d->oh * d->ow;
  for (int i = 0; i < d->n * d->cout; i++) {
    float *pl = y + (int64_t)i * P;
    if (d->fp16) pt_round_f16_array(pl, P);
    int size = d->perf_dir == PT_PERF_ROWS ? d->oh : d->ow;
    for (int s = d->perf_offset; s < size; s += d->perf_stride)
      for (int o = 0; o < (d->perf_dir == PT_PERF_ROWS ? d->ow : d->oh); o++) {
        int a = s == 0 ? 1 : s - 1, bb = s == 0 ? 1 : (s == size - 1 ? s - 1 : s + 1);
        float *at = d->perf_dir == PT_PERF_ROWS ? &pl[s * d->ow + o] : &pl[o * d->ow + s];
        float va = 0, vb = 0;
        if (!(s == 0 && size == 1)) {
          va = d->perf_dir == PT_PERF_ROWS ? pl[a * d->ow + o] : pl[o * d->ow + a];
          vb = d->perf_dir == PT_PERF_ROWS ? pl[bb * d->ow + o] : pl[o * d->ow + bb];
        }
        *at = d->fp16 ? pt_round_f16(pt_round_f16(va + vb) * 0.5f) : (va + vb) / 2.0f;
      }
    if (b) {
      float bv = d->fp16 ? pt_round_f16(b[i % d->cout]) : b[i % d->cout];
      for (int k = 0; k < P; k++) pl[k] = d->fp16 ? pt_round_f16(pl[k] + bv) : pl[k] + bv;
    }
  }
  free(xs);
  free(ws);
}

/* Simulation of sampling: the filter with dropped elements zeroed and the rest scaled, in a full
 * convolution (operands and output rounded in fp16). */
static void simulate_sampling(const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  int Kg = (d->cin / d->groups) * d->kh * d->kw;
  int64_t nx = (int64_t)d->n * d->cin * d->h * d->w, nw = (int64_t)d->cout * Kg;
  float *xs = malloc(nx * 4), *ws = malloc(nw * 4), *bs = malloc(d->cout * 4);
  memcpy(xs, x, nx * 4);
  for (int co = 0; co < d->cout; co++) {
    for (int f = 0; f < Kg; f++)
      ws[co * Kg + f] = pt_km_samp_dropped(f, d->kh, d->kw, d->samp_every, d->samp_offset) ? 0.0f : w[co * Kg + f] * d->samp_scale;
    bs[co] = b ? b[co] : 0.0f;
  }
  if (d->fp16) {
    pt_round_f16_array(xs, nx);
    pt_round_f16_array(ws, nw);
    pt_round_f16_array(bs, d->cout);
  }
  naive_conv2d(d, xs, ws, b ? bs : NULL, y);
  if (d->fp16) pt_round_f16_array(y, (size_t)d->n * d->cout * d->oh * d->ow);
  free(xs);
  free(ws);
  free(bs);
}

/* One convolution d on bk with random operands from r (bias when bias) against its simulation
 * (sampling or perforation, as d says): within the tolerance, the output's guards intact. */
static void check_case(pt_backend *bk, pt_rng *r, const pt_conv_desc *d, int bias, const char *what) {
  int64_t nx = (int64_t)d->n * d->cin * d->h * d->w, nw = (int64_t)d->cout * (d->cin / d->groups) * d->kh * d->kw,
          ny = (int64_t)d->n * d->cout * d->oh * d->ow;
  float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(d->cout * 4), *ref = malloc(ny * 4);
  float *y = alloc_guarded(ny, 32);
  fill_uniform(r, x, nx, -1, 1);
  fill_uniform(r, w, nw, -0.5f, 0.5f);
  fill_uniform(r, b, d->cout, -0.3f, 0.3f);
  cr_assert_eq(bk->iface->conv2d(bk->ctx, d, x, w, bias ? b : NULL, y), PT_OK, "%s: %s", what, pt_last_error());
  if (d->samp_every) simulate_sampling(d, x, w, bias ? b : NULL, ref);
  else simulate_perforation(d, x, w, bias ? b : NULL, ref);
  double err = norm_err(y, ref, ny), tol = d->fp16 ? 2e-3 : 1e-5;
  cr_assert(err <= tol, "%s: error %g", what, err);
  /* fp16: every output is a binary16 value (the final rounding is not lost on any path) */
  for (int64_t i = 0; d->fp16 && i < ny; i++)
    cr_assert(y[i] == pt_round_f16(y[i]), "%s: output %lld (%.9g) is not a binary16 value", what, (long long)i, y[i]);
  cr_assert(guard_intact(y, ny, 32));
  free(x), free(w), free(b), free(ref), free(y);
}

/* A CPU backend with PT_CPU_DNNL=mode. */
static pt_backend *backend_with_mode(const char *mode) {
  setenv("PT_CPU_DNNL", mode, 1);
  pt_backend *bk;
  cr_assert_eq(pt_backend_create("cpu", 2, &bk), PT_OK, "PT_CPU_DNNL=%s: %s", mode, pt_last_error());
  unsetenv("PT_CPU_DNNL");
  return bk;
}

static void compare_real_and_simulated_on(pt_backend *bk, int sampling) {
  pt_rng r;
  pt_rng_seed(&r, sampling ? 77 : 78);
  int cases = 0;
  for (size_t si = 0; si < NSHAPES; si++)
    for (int fp16 = 0; fp16 < 2; fp16++)
      for (int stride = 2; stride <= 4; stride++)
        for (int off = 0; off < stride; off++)
          for (int dir = 1; dir <= (sampling ? 1 : 2); dir++) {
            const shape *s = &shapes[si];
            pt_conv_desc d = desc_of(s, fp16);
            if (sampling) {
              d.samp_every = stride;
              d.samp_offset = off;
              d.samp_scale = pt_km_samp_scale(stride, off == 1 ? 0.5 : 1.0);
            } else {
              d.perf_dir = dir;
              d.perf_stride = stride;
              d.perf_offset = off;
            }
            char what[160];
            snprintf(what, sizeof what, "%s shape %zu fp16 %d stride/every %d offset %d dir %d",
                     sampling ? "sampling" : "perforation", si, fp16, stride, off, dir);
            check_case(bk, &r, &d, s->bias, what);
            cases++;
          }
  cr_assert(cases > 100);
}

/* On the default backend, with every knob oneDNN can run there (PT_CPU_DNNL=all) and with none
 * (PT_CPU_DNNL=0; without oneDNN all three are the backend's own kernels). The backend's path
 * counts say each ran where it was meant to. */
static void compare_real_and_simulated(int sampling) {
  compare_real_and_simulated_on(be, sampling);
  const char *modes[] = {"all", "0"};
  for (int m = 0; m < 2; m++) {
    pt_backend *bk = backend_with_mode(modes[m]);
    compare_real_and_simulated_on(bk, sampling);
    int64_t n[PT_CONV_PATHS] = {0};
    pt_backend_conv_paths_fn paths = (pt_backend_conv_paths_fn)pt__backend_get_proc(bk, PT_BACKEND_PROC_CONV_PATHS);
    cr_assert(paths);
    paths(bk->ctx, n);
    const int64_t on_dnnl = n[sampling ? PT_CONV_PATH_DNNL_SAMP : PT_CONV_PATH_DNNL_PERF];
    if (m == 0 && PT_TEST_HAVE_DNNL)
      cr_assert(on_dnnl >= (sampling ? 20 : 50), "PT_CPU_DNNL=all: %lld on oneDNN, %lld own", (long long)on_dnnl,
                (long long)n[PT_CONV_PATH_OWN]);
    else
      cr_assert(on_dnnl == 0 && n[PT_CONV_PATH_DNNL_EXACT] == 0, "PT_CPU_DNNL=%s: %lld on oneDNN", modes[m],
                (long long)on_dnnl);
    cr_assert(n[PT_CONV_PATH_OWN] > 0);
    pt_backend_free(bk);
  }
}

/* Sampling on oneDNN runs its pieces chunk by chunk of images (at least 8 a chunk, more when the
 * L2 caches hold more): 19 images of 32 channels at 48x48 (~880 KB an image) are several chunks and
 * a shorter last one wherever the two threads' L2 halves hold under 19 images (L2 under ~16 MB). Each
 * chunk must land on its own images: the simulation checks every one. The default sends sampling
 * every 2 there only with AVX-512 (nChw16c), perforation always; the path counts say where each
 * ran. fp16 perforation rounds its blocked input in the same chunks of images. */
Test(approx, sampling_on_onednn_in_chunks_of_images) {
  if (!PT_TEST_HAVE_DNNL) {
    cr_skip_test("built without oneDNN");
    return;
  }
  const shape big = {19, 32, 48, 48, 32, 3, 1, 1, 1, 1};
  const char *modes[] = {"all", "default"};
  pt_rng r;
  pt_rng_seed(&r, 80);
  for (int m = 0; m < 2; m++) {
    pt_backend *bk = backend_with_mode(modes[m]);
    for (int k = 0; k < 4; k++) { /* every 2 at both offsets (offset 1: the other parity first), fp32 and fp16 */
      pt_conv_desc d = desc_of(&big, k & 1);
      d.samp_every = 2, d.samp_offset = k >> 1, d.samp_scale = pt_km_samp_scale(2, 1.0);
      char what[96];
      snprintf(what, sizeof what, "PT_CPU_DNNL=%s fp16 %d offset %d", modes[m], k & 1, k >> 1);
      check_case(bk, &r, &d, 1, what);
    }
    const shape small = {2, 32, 8, 8, 16, 3, 1, 1, 1, 1};
    for (int dir = 1; dir <= 2; dir++) { /* stride-3 rows and columns */
      pt_conv_desc d = desc_of(&small, 0);
      d.perf_dir = dir, d.perf_stride = 3, d.perf_offset = 1;
      check_case(bk, &r, &d, 1, dir == 1 ? "rows stride 3" : "columns stride 3");
    }
    for (int dir = 1; dir <= 2; dir++) { /* fp16 perforation rounds its input chunk by chunk of images */
      pt_conv_desc d = desc_of(&big, 1);
      d.perf_dir = dir, d.perf_stride = 2 + dir, d.perf_offset = 0;
      check_case(bk, &r, &d, 1, dir == 1 ? "fp16 rows stride 3, 19 images" : "fp16 columns stride 4, 19 images");
    }
    int64_t n[PT_CONV_PATHS] = {0};
    ((pt_backend_conv_paths_fn)pt__backend_get_proc(bk, PT_BACKEND_PROC_CONV_PATHS))(bk->ctx, n);
    /* oneDNN runs AVX-512 (nChw16c) where the CPU has its core set and no variable caps its ISA;
     * otherwise the default keeps sampling on the own kernels (all four or none) */
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"),
              capped = getenv("ONEDNN_MAX_CPU_ISA") || getenv("DNNL_MAX_CPU_ISA");
    const int64_t ns = n[PT_CONV_PATH_DNNL_SAMP];
    if (m == 0 || (avx512 && !capped))
      cr_assert_eq(ns, 4, "PT_CPU_DNNL=%s: %lld of 4 sampled on oneDNN", modes[m], (long long)ns);
    else
      cr_assert(ns == 0 || (ns == 4 && avx512), "default: %lld of 4 sampled on oneDNN", (long long)ns);
    cr_assert_eq(n[PT_CONV_PATH_DNNL_PERF], 4, "PT_CPU_DNNL=%s: %lld of 4 perforated on oneDNN", modes[m],
                 (long long)n[PT_CONV_PATH_DNNL_PERF]);
    pt_backend_free(bk);
  }
}

/* Perforation at stride 4 runs on oneDNN (the default and all): its classes need what the others do
 * not, an input cropped above a class whose lead row would read only padding (on 12x12 maps at
 * three of the four offsets) and a far padding that comes out negative (the last window ends
 * before the input does) taken as zero (at every offset), in rows and columns; each must match the
 * simulation. Padding of a whole filter (a first class that reads only padding, no rows to crop)
 * falls back to the own kernels and still matches. */
Test(approx, perforation_stride_4_on_onednn) {
  if (!PT_TEST_HAVE_DNNL) {
    cr_skip_test("built without oneDNN");
    return;
  }
  static const shape s4[] = {{3, 32, 12, 12, 16, 3, 1, 1, 1, 1}, {2, 16, 13, 10, 16, 3, 1, 1, 1, 0}};
  const char *modes[] = {"all", "default"};
  pt_rng r;
  pt_rng_seed(&r, 81);
  for (int m = 0; m < 2; m++) {
    pt_backend *bk = backend_with_mode(modes[m]);
    int cases = 0;
    for (size_t si = 0; si < sizeof s4 / sizeof *s4; si++)
      for (int k = 0; k < 16; k++) { /* rows/columns, fp32/fp16, offsets 0..3 */
        pt_conv_desc d = desc_of(&s4[si], k & 1);
        d.perf_dir = (k >> 1 & 1) ? PT_PERF_COLS : PT_PERF_ROWS, d.perf_stride = 4, d.perf_offset = k >> 2;
        char what[96];
        snprintf(what, sizeof what, "PT_CPU_DNNL=%s shape %zu fp16 %d dir %d offset %d", modes[m], si, k & 1,
                 d.perf_dir, d.perf_offset);
        check_case(bk, &r, &d, s4[si].bias, what);
        cases++;
      }
    int64_t n[PT_CONV_PATHS] = {0};
    ((pt_backend_conv_paths_fn)pt__backend_get_proc(bk, PT_BACKEND_PROC_CONV_PATHS))(bk->ctx, n);
    cr_assert_eq(n[PT_CONV_PATH_DNNL_PERF], cases, "PT_CPU_DNNL=%s: %lld of %d perforated on oneDNN", modes[m],
                 (long long)n[PT_CONV_PATH_DNNL_PERF], cases);
    const shape pad1 = {2, 16, 8, 8, 16, 3, 1, 1, 1, 1};
    for (int k = 0; k < 6; k++) { /* strides 2-4 at offset 1 (a first class at row 0), rows and columns */
      pt_conv_desc d = desc_of(&pad1, 0);
      d.perf_dir = (k & 1) ? PT_PERF_COLS : PT_PERF_ROWS, d.perf_stride = 2 + k / 2, d.perf_offset = 1;
      if (d.perf_dir == PT_PERF_ROWS) d.ph = 3, d.oh = pt_km_out_size(d.h, d.kh, d.sh, d.ph); /* along it only */
      else d.pw = 3, d.ow = pt_km_out_size(d.w, d.kw, d.sw, d.pw);
      char what[96];
      snprintf(what, sizeof what, "PT_CPU_DNNL=%s padding 3, dir %d stride %d", modes[m], d.perf_dir, d.perf_stride);
      check_case(bk, &r, &d, 1, what);
    }
    pt_backend_free(bk);
  }
}

/* In fp16 every path rounds the input to binary16 before it multiplies: 2.5e-8 (under half the
 * smallest binary16 subnormal) becomes 0, so every output is 0, where 1.5e-7 (between two
 * subnormals) leaves a sum far from 0. The knobs on oneDNN round as they copy the input into
 * their blocked layout (perforation chunk by chunk of images: 19 images at 48x48 are several
 * chunks where the L2 caches hold fewer; columns at stride 4 crop a class's input), the other
 * paths in a rounded copy; a tolerance against the simulation would not see a missed rounding.
 * Both fp16 modes (weights rounded here, or already by the caller). */
Test(approx, fp16_paths_round_their_input) {
  const shape shp[] = {{2, 32, 8, 8, 16, 3, 1, 1, 1, 0}, {19, 32, 48, 48, 16, 3, 1, 1, 1, 0}};
  const char *modes[] = {"all", "default", "0"};
  const int64_t nx = 19 * 32 * 48 * 48, nw = 16 * 32 * 9, ny = 19 * 16 * 48 * 48;
  float *x = malloc(nx * 4), *w = malloc(nw * 4), *y = malloc(ny * 4);
  for (int64_t i = 0; i < nw; i++) w[i] = 1.0f; /* a binary16 value: PT_FP16_PREROUNDED holds */
  for (int m = 0; m < 3; m++) {
    pt_backend *bk = backend_with_mode(modes[m]);
    for (int k = 0; k < 24; k++) { /* shape, fp16 mode; exact, rows s2, columns s4, sampling every 2, 3, 4 */
      const int v = k % 6, si = k / 12;
      pt_conv_desc d = desc_of(&shp[si], k / 6 % 2 ? PT_FP16_PREROUNDED : PT_FP16_ROUND);
      if (v == 1 || v == 2) d.perf_dir = v == 1 ? PT_PERF_ROWS : PT_PERF_COLS, d.perf_stride = 2 * v;
      if (v >= 3) d.samp_every = v - 1, d.samp_scale = pt_km_samp_scale(v - 1, 1.0);
      const int64_t n_y = (int64_t)d.n * d.cout * d.oh * d.ow;
      for (int tiny = 1; tiny >= 0; tiny--) {
        for (int64_t i = 0; i < (int64_t)d.n * d.cin * d.h * d.w; i++) x[i] = tiny ? 2.5e-8f : 1.5e-7f;
        cr_assert_eq(bk->iface->conv2d(bk->ctx, &d, x, w, NULL, y), PT_OK, "%s: %s", modes[m], pt_last_error());
        int64_t nonzero = 0;
        for (int64_t i = 0; i < n_y; i++) nonzero += y[i] != 0.0f;
        if (tiny)
          cr_assert_eq(nonzero, 0, "PT_CPU_DNNL=%s case %d: %lld outputs of an input that rounds to 0 are not 0",
                       modes[m], k, (long long)nonzero);
        else
          cr_assert(nonzero > n_y / 2, "PT_CPU_DNNL=%s case %d: only %lld outputs not 0", modes[m], k,
                    (long long)nonzero);
      }
    }
    int64_t n[PT_CONV_PATHS] = {0};
    ((pt_backend_conv_paths_fn)pt__backend_get_proc(bk, PT_BACKEND_PROC_CONV_PATHS))(bk->ctx, n);
    if (m == 0 && PT_TEST_HAVE_DNNL) { /* every perforation, and sampling every 2 at least, on oneDNN */
      cr_assert_eq(n[PT_CONV_PATH_DNNL_PERF], 16, "all: %lld of 16 perforated on oneDNN",
                   (long long)n[PT_CONV_PATH_DNNL_PERF]);
      cr_assert(n[PT_CONV_PATH_DNNL_SAMP] >= 8, "all: %lld sampled on oneDNN", (long long)n[PT_CONV_PATH_DNNL_SAMP]);
    }
    pt_backend_free(bk);
  }
  free(x), free(w), free(y);
}

/* Sampling strides beyond the knob set's (the executor takes any): lattices that would need far
 * padding of a whole stride fall back instead of failing, and the rest still match. */
Test(approx, sampling_unusual_strides_on_every_path) {
  static const shape odd[] = {{2, 32, 8, 8, 16, 3, 1, 1, 1, 1}, {2, 16, 6, 6, 8, 2, 1, 0, 1, 1},
                              {1, 16, 7, 7, 8, 4, 1, 0, 1, 0}, {1, 20, 9, 9, 8, 5, 2, 0, 1, 1}};
  const char *modes[] = {"all", "0"};
  pt_rng r;
  pt_rng_seed(&r, 79);
  for (int m = 0; m < 2; m++) {
    pt_backend *bk = backend_with_mode(modes[m]);
    for (size_t si = 0; si < sizeof odd / sizeof *odd; si++)
      for (int every = 2; every <= 9; every++)
        for (int k = 0; k < 4; k++) { /* offsets 0 and every - 1, fp32 and fp16 */
          const shape *s = &odd[si];
          const int fp16 = k & 1;
          pt_conv_desc d = desc_of(s, fp16);
          d.samp_every = every;
          d.samp_offset = k < 2 ? 0 : every - 1;
          d.samp_scale = pt_km_samp_scale(every, 1.0);
          char what[120];
          snprintf(what, sizeof what, "PT_CPU_DNNL=%s shape %zu every %d fp16 %d", modes[m], si, every, fp16);
          check_case(bk, &r, &d, s->bias, what);
        }
    pt_backend_free(bk);
  }
}

/* Whether the direct kernel takes column perforation d with vectors of v floats: every kept phase
 * (columns ph + stride * t) fills at least 3/4 of the lanes it takes (one vector up to v columns,
 * else tiles of 2v). */
static int direct_takes_cols(const pt_conv_desc *d, int v) {
  int any = 0;
  for (int ph = 0; ph < d->perf_stride; ph++) {
    const int m = ph < d->ow ? (d->ow - ph + d->perf_stride - 1) / d->perf_stride : 0;
    const int lanes = m <= v ? v : (m + 2 * v - 1) / (2 * v) * 2 * v;
    if (ph == d->perf_offset || m == 0) continue;
    if (4 * m < 3 * lanes) return 0;
    any = 1;
  }
  return any;
}

/* The direct kernel over kept filter elements (cpu_direct.c: rows of 16+ output pixels, stride 1,
 * AVX2 + FMA) and im2col + GEMM (PT_CPU_DIRECT=0), both against the simulations: sampling at every
 * rate and offset, row perforation, column perforation (phase by phase), exact convolutions through
 * it (PT_CPU_DIRECT=1), with tails of pixels (21 columns) and of channels (13 = 6 + 6 + 1), 5x5,
 * no padding, maps 8 wide (two rows a micro-tile, odd row counts), fp32 and fp16. */
Test(approx, direct_kernel_and_im2col_equal_simulation) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) cr_skip_test("this CPU has no AVX2 + FMA");
#else
  cr_skip_test("the direct kernel is x86-64 only");
#endif
  static const shape wide[] = {{2, 8, 16, 16, 8, 3, 1, 1, 1, 1}, {1, 5, 18, 21, 13, 3, 1, 1, 1, 1},
                               {1, 7, 17, 20, 7, 5, 1, 2, 1, 0}, {2, 3, 9, 18, 9, 3, 1, 0, 1, 1},
                               /* 8 wide: two rows a micro-tile, an odd row count */
                               {2, 6, 8, 8, 13, 3, 1, 1, 1, 1},  {1, 4, 7, 10, 5, 3, 1, 0, 1, 1},
                               /* several row blocks per image; 10 channels = 6 + 4 */
                               {1, 8, 40, 40, 10, 3, 1, 1, 1, 1},
                               /* channels enough for several chunks of the reduction */
                               {1, 48, 16, 16, 10, 3, 1, 1, 1, 1}, {1, 72, 8, 8, 7, 3, 1, 1, 1, 0},
                               {1, 40, 4, 32, 8, 3, 1, 1, 1, 1},
                               /* 8 wide, 6 and 7 rows: AVX-512's four-row tiles end in 2 and 3 */
                               {1, 5, 6, 8, 9, 3, 1, 1, 1, 1}, {1, 3, 7, 8, 6, 3, 1, 1, 1, 0},
                               /* padding wider than the filter: rows of nothing but padding */
                               {1, 3, 4, 18, 5, 1, 1, 2, 1, 1},
                               /* column perforation's phases: 16 columns (one AVX-512 vector, two
                                * rows a tile, 7 rows: the last alone), and 48/32/24 (tiles, tails) */
                               {2, 6, 7, 32, 9, 3, 1, 1, 1, 1}, {1, 5, 6, 96, 7, 3, 1, 1, 1, 1},
                               /* an odd width: stride 2's last column skipped or kept by the offset */
                               {1, 4, 5, 31, 6, 3, 1, 1, 1, 1}};
  enum { NWIDE = sizeof wide / sizeof *wide };
  pt_backend *bk = backend_with_mode("0");
  pt_backend_conv_paths_fn paths = (pt_backend_conv_paths_fn)pt__backend_get_proc(bk, PT_BACKEND_PROC_CONV_PATHS);
  cr_assert(paths);
  pt_rng r;
  pt_rng_seed(&r, 80);
  /* the direct kernel at its ISA (AVX-512 where the CPU has it), then AVX2's, then im2col + GEMM */
  const char *direct[] = {"1", "1", "0"}, *isa[] = {"", "avx2", ""};
#if defined(__x86_64__) && defined(__GNUC__)
  const int avx512 = __builtin_cpu_supports("avx512f");
  cr_log_info("direct kernel: %s", avx512 ? "AVX-512 (and AVX2 with PT_CPU_DIRECT_ISA=avx2)" : "AVX2 only on this CPU");
#else
  const int avx512 = 0;
#endif
  for (int m = 0; m < 3; m++) {
    setenv("PT_CPU_DIRECT", direct[m], 1);
    setenv("PT_CPU_DIRECT_ISA", isa[m], 1);
    int64_t before[PT_CONV_PATHS] = {0}, after[PT_CONV_PATHS] = {0};
    paths(bk->ctx, before);
    int ncases = 0, ntaken = 0;
    for (size_t si = 0; si <= NWIDE; si++)
      for (int fp16 = 0; fp16 < 2; fp16++) {
        /* the last one by hand: a 3x5 filter, no padding above and below, 2 left and right */
        const shape rect = {2, 5, 9, 20, 7, 3, 1, 0, 1, 1}, *s = si < NWIDE ? &wide[si] : &rect;
        pt_conv_desc base = desc_of(s, fp16);
        if (si == NWIDE) base.kw = 5, base.pw = 2, base.ow = pt_km_out_size(base.w, 5, 1, 2);
        char what[160];
        for (int every = 2; every <= 4; every++)
          for (int off = 0; off < every; off++) {
            pt_conv_desc d = base;
            d.samp_every = every, d.samp_offset = off, d.samp_scale = pt_km_samp_scale(every, 1.0);
            snprintf(what, sizeof what, "PT_CPU_DIRECT=%s%s shape %zu fp16 %d sampling %d/%d", direct[m], isa[m], si, fp16, every, off);
            check_case(bk, &r, &d, s->bias, what);
            d.samp_every = d.samp_offset = 0, d.samp_scale = 0.0f;
            d.perf_dir = PT_PERF_ROWS, d.perf_stride = every, d.perf_offset = off;
            snprintf(what, sizeof what, "PT_CPU_DIRECT=%s%s shape %zu fp16 %d rows %d/%d", direct[m], isa[m], si, fp16, every, off);
            check_case(bk, &r, &d, s->bias, what);
            /* AVX-512 leaves row perforation on maps 8 wide to im2col + GEMM */
            ncases += 2, ntaken += 1 + (base.ow >= 16 || !avx512 || m == 1);
            d.perf_dir = PT_PERF_COLS;
            snprintf(what, sizeof what, "PT_CPU_DIRECT=%s%s shape %zu fp16 %d cols %d/%d", direct[m], isa[m], si, fp16, every, off);
            check_case(bk, &r, &d, s->bias, what);
            ncases++, ntaken += direct_takes_cols(&d, avx512 && m != 1 ? 16 : 8);
          }
        { /* column perforation that skips no column (offset past the map): the plain kernel, rounded */
          pt_conv_desc d = base;
          d.perf_dir = PT_PERF_COLS, d.perf_stride = base.ow + 1, d.perf_offset = base.ow;
          snprintf(what, sizeof what, "PT_CPU_DIRECT=%s%s shape %zu fp16 %d cols skipping none", direct[m], isa[m], si, fp16);
          check_case(bk, &r, &d, s->bias, what);
          ncases++, ntaken++;
        }
        /* exact (through the direct kernel with PT_CPU_DIRECT=1) against the naive loop */
        pt_conv_desc d = base;
        const int64_t nx = (int64_t)d.n * d.cin * d.h * d.w, nw = (int64_t)d.cout * d.cin * d.kh * d.kw,
                      ny = (int64_t)d.n * d.cout * d.oh * d.ow;
        float *x = malloc(nx * 4), *w = malloc(nw * 4), *b = malloc(d.cout * 4), *y = alloc_guarded(ny, 32),
              *ref = malloc(ny * 4);
        fill_uniform(&r, x, nx, -1, 1), fill_uniform(&r, w, nw, -0.5f, 0.5f), fill_uniform(&r, b, d.cout, -0.3f, 0.3f);
        cr_assert_eq(bk->iface->conv2d(bk->ctx, &d, x, w, b, y), PT_OK, "%s", pt_last_error());
        if (fp16) pt_round_f16_array(x, nx), pt_round_f16_array(w, nw), pt_round_f16_array(b, d.cout);
        naive_conv2d(&d, x, w, b, ref);
        if (fp16) pt_round_f16_array(ref, ny);
        cr_assert(norm_err(y, ref, ny) <= (fp16 ? 2e-3 : 1e-5), "PT_CPU_DIRECT=%s shape %zu fp16 %d exact: error %g",
                  direct[m], si, fp16, norm_err(y, ref, ny));
        cr_assert(guard_intact(y, ny, 32));
        free(x), free(w), free(b), free(y), free(ref);
        ncases++, ntaken++;
      }
    /* the path really taken: every case it takes on the direct kernel, or none */
    paths(bk->ctx, after);
    const int64_t ran = after[PT_CONV_PATH_OWN_DIRECT] - before[PT_CONV_PATH_OWN_DIRECT];
    cr_assert_eq(ran, m < 2 ? ntaken : 0, "PT_CPU_DIRECT=%s ISA %s: %lld of %d on the direct kernel", direct[m], isa[m],
                 (long long)ran, ncases);
    cr_assert(m == 2 || ntaken * 2 > ncases);
  }
  unsetenv("PT_CPU_DIRECT_ISA");
  unsetenv("PT_CPU_DIRECT");
  pt_backend_free(bk);
}

Test(approx, perforation_real_equals_simulation) { compare_real_and_simulated(0); }
Test(approx, sampling_real_equals_simulation) { compare_real_and_simulated(1); }

/* ---------------- PromiseSim ---------------- */

Test(approx, promise_quantisation_levels) {
  /* [0, 2.56]: step 0.01; values floor to a step; out-of-range values clamp */
  cr_assert_float_eq(pt_km_quantize(0.0f, 0.0f, 2.56f), 0.0f, 1e-7);
  cr_assert_float_eq(pt_km_quantize(0.0149f, 0.0f, 2.56f), 0.01f, 1e-6);
  cr_assert_float_eq(pt_km_quantize(1.2345f, 0.0f, 2.56f), 1.23f, 1e-6);
  cr_assert_eq(pt_km_quantize(5.0f, 0.0f, 2.56f), 2.56f);
  cr_assert_eq(pt_km_quantize(-1.0f, 0.0f, 2.56f), 0.0f);
  cr_assert_eq(pt_km_quantize(3.0f, 1.0f, 1.0f), 1.0f); /* empty range */
  /* at most 257 distinct levels over a sweep */
  float prev = -1;
  int levels = 0;
  for (int i = 0; i <= 100000; i++) {
    float q = pt_km_quantize(-3.0f + 6.0f * (float)i / 100000.0f, -3.0f, 3.0f);
    if (q != prev) levels++;
    prev = q;
  }
  cr_assert(levels >= 256 && levels <= 257, "%d levels", levels);
  cr_assert_float_eq(pt_km_promise_scale(0), 0.75f, 0);
  cr_assert_float_eq(pt_km_promise_scale(8), 0.005f, 0);
  /* the noise generator: mean ~0, variance ~1 */
  double m = 0, v = 0;
  for (int i = 0; i < 200000; i++) {
    double z = pt_km_normal(42, (uint64_t)i);
    m += z;
    v += z * z;
  }
  m /= 200000;
  v = v / 200000 - m * m;
  cr_assert(fabs(m) < 0.01 && fabs(v - 1) < 0.02, "mean %g var %g", m, v);
}

Test(approx, promise_is_seeded_and_independent_of_batching) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  pt_graph_init_random(g, 5);
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
  int n = 4, per = 784;
  float *x = malloc(n * per * 4), a[40], b[40], c[40], e[40];
  pt_rng r;
  pt_rng_seed(&r, 1);
  fill_uniform(&r, x, n * per, 0, 1);
  pt_promise_ranges ranges[10];
  memset(ranges, 0, sizeof ranges);
  cr_assert_eq(pt_exec_calibrate(ex, x, n, ranges), PT_OK);
  for (int op = 0; op < 10; op++) {
    pt_op_type t = pt_graph_op_type(g, op);
    cr_assert_eq(ranges[op].set, t == PT_OP_CONV2D || t == PT_OP_LINEAR);
  }
  cr_assert(ranges[0].in[0] >= 0.0f && ranges[0].in[1] <= 1.0f && ranges[0].in[1] > 0.9f);
  pt_op_exec ops[10];
  memset(ops, 0, sizeof ops);
  ops[0].kind = PT_APPROX_PROMISE;
  ops[0].promise_level = 3;
  ops[6].kind = PT_APPROX_PROMISE; /* linears.0 */
  ops[6].promise_level = 7;
  cr_assert_eq(pt_exec_run(ex, x, n, ops, a), PT_EINVAL); /* no ranges yet */
  cr_assert_not_null(strstr(pt_last_error(), "convs.0"));
  cr_assert_eq(pt_exec_set_promise(ex, ranges, 7), PT_OK);
  cr_assert_eq(pt_exec_run(ex, x, n, ops, a), PT_OK);
  cr_assert_eq(pt_exec_run(ex, x, n, ops, b), PT_OK);
  cr_assert_eq(memcmp(a, b, sizeof a), 0, "same seed, different result");
  /* two batches of two give the same result as one batch of four */
  cr_assert_eq(pt_exec_run_at(ex, x, 2, 0, ops, c), PT_OK);
  cr_assert_eq(pt_exec_run_at(ex, x + 2 * per, 2, 2, ops, c + 20), PT_OK);
  cr_assert_eq(memcmp(a, c, sizeof a), 0, "result depends on batching");
  cr_assert_eq(pt_exec_run(ex, x, n, NULL, e), PT_OK);
  cr_assert_neq(memcmp(a, e, sizeof a), 0, "PromiseSim changed nothing");
  cr_assert_eq(pt_exec_set_promise(ex, ranges, 8), PT_OK);
  cr_assert_eq(pt_exec_run(ex, x, n, ops, b), PT_OK);
  cr_assert_neq(memcmp(a, b, sizeof a), 0, "another seed, same noise");
  free(x);
  pt_exec_free(ex);
  pt_graph_free(g);
}

/* ---------------- every default knob on every zoo network ---------------- */

Test(approx, every_default_knob_runs_on_every_zoo_network, .timeout = 900) {
  pt_knob_set *ks;
  cr_assert_eq(pt_knobs_default(&ks), PT_OK);
  pt_knob promise = {.name = "p4", .cls = PT_KNOB_PROMISE, .exp_speedup = 2, .noise_level = 4};
  for (int z = 0; z < pt_zoo_count(); z++) {
    pt_graph *g;
    cr_assert_eq(pt_zoo_build(pt_zoo_name(z), &g), PT_OK);
    pt_graph_init_random(g, (uint64_t)z);
    int c, h, w, no = pt_graph_num_ops(g), classes = pt_graph_num_classes(g);
    pt_graph_input_shape(g, &c, &h, &w);
    float *x = malloc((size_t)c * h * w * 4), *exact = malloc(classes * 4), *y = malloc(classes * 4);
    pt_rng r;
    pt_rng_seed(&r, 3);
    fill_uniform(&r, x, (int64_t)c * h * w, -1, 1);
    pt_exec *ex;
    cr_assert_eq(pt_exec_create(g, be, &ex), PT_OK);
    cr_assert_eq(pt_exec_run(ex, x, 1, NULL, exact), PT_OK);
    pt_promise_ranges *ranges = calloc(no, sizeof *ranges);
    cr_assert_eq(pt_exec_calibrate(ex, x, 1, ranges), PT_OK);
    cr_assert_eq(pt_exec_set_promise(ex, ranges, 1), PT_OK);
    pt_op_exec *ops = calloc(no, sizeof *ops);
    /* Under the sanitizers (ten times slower) the ImageNet networks, 80 % of this test's time, run
     * every fourth knob, the two of them different ones, and FP32 and PromiseSim; the small
     * networks, with the same kernels, run every knob; the release pass runs every knob on all. */
    const int sparse = PT_TEST_SANITIZED && h > 64;
    if (sparse) cr_log_info("%s: every fourth knob (sanitizer build)", pt_zoo_name(z));
    for (int k = 0; k <= pt_knobs_count(ks); k++) {
      const pt_knob *kn = k < pt_knobs_count(ks) ? pt_knobs_at(ks, k) : &promise;
      if (sparse && k < pt_knobs_count(ks) && kn->cls != PT_KNOB_FP32 && k % 4 != z % 4) continue;
      int applied = 0;
      for (int op = 0; op < no; op++) {
        int ok = pt_knob_applies(kn, pt_graph_op_type(g, op));
        ops[op] = ok ? pt_knob_exec(kn) : (pt_op_exec){0};
        applied += ok;
      }
      cr_assert(applied > 0);
      cr_assert_eq(pt_exec_run(ex, x, 1, ops, y), PT_OK, "%s knob %s: %s", pt_zoo_name(z), kn->name, pt_last_error());
      for (int j = 0; j < classes; j++) cr_assert(isfinite(y[j]), "%s knob %s: non-finite output", pt_zoo_name(z), kn->name);
      int same = !memcmp(y, exact, classes * 4);
      if (kn->cls == PT_KNOB_FP32) cr_assert(same, "%s: FP32Baseline differs from exact", pt_zoo_name(z));
      else cr_assert(!same, "%s knob %s changed nothing", pt_zoo_name(z), kn->name);
    }
    free(ops), free(ranges), free(x), free(exact), free(y);
    pt_exec_free(ex);
    pt_graph_free(g);
  }
  pt_knobs_free(ks);
}
