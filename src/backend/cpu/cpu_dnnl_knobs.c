/* Perforation and sampling of the CPU backend on oneDNN's convolutions, still skipping the work
 * the knobs skip (docs/design.md, "Knobs"; docs/decisions.md, "The CPU kernel issue").
 *
 * Both work in the engine's blocked layout (nChw8c or nChw16c), so that the input is reordered once
 * however many convolutions read it:
 * - perforation: each kept class of rows (columns) r, r + S, ... is a convolution of its own with S
 *   times the stride over the whole input; a class whose first row reads past the near padding
 *   starts `lead` rows earlier (oneDNN takes no negative padding) and those rows are dropped, or,
 *   where that earlier row would read nothing but padding (which oneDNN's kernels refuse), reads
 *   its own copy of the input without the rows above its first (`crop`). One
 *   pass then writes the kept rows into the caller's NCHW output, fills the skipped ones and adds
 *   the bias, plane by plane while the plane is in cache.
 * - sampling: the channels whose filters keep the same taps form classes (channel c and c + P
 *   alike; for 3x3 filters P = skip_every), each reordered once from a strided view; a class's kept
 *   taps are covered by lattices {(a + i*da, b + l*db)}, each a small dilated convolution over that
 *   class, all summed into one output (oneDNN's sum post-op). The work is the kept taps' only. The
 *   pieces run chunk by chunk of images, so that each adds into a sum still in cache.
 * Anything oneDNN cannot run this way returns PT_EUNSUPPORTED before the output is touched, and the
 * backend's own kernels run it. */
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/cpu_dnnl_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "kernels/knob_math.h"
#include "predtuner/tensor.h"

static pt_status nchw_md(int64_t n, int64_t c, int64_t h, int64_t w, dnnl_memory_desc_t *md) {
  const int64_t s[4] = {c * h * w, h * w, w, 1};
  return pt__dn_md_strided(n, c, h, w, s, md);
}

/* Images a pass of the pieces takes: the chunk's blocked classes and summed output (per_image
 * bytes an image) fit in half of the threads' L2 caches (1 MB an L2 where the CPU does not say), so
 * that every piece after the first adds into a sum still in cache instead of one streamed from
 * memory; but at least 8 images, since each pass costs a few oneDNN calls and parallel loops of its
 * own (on vgg16's 32x32 layers 1 or 2 images a pass lost to the whole batch, 8 won on every layer;
 * bench/RESULTS.md). Perforation runs its one convolution a class over the whole batch: in chunks
 * it measured slower; in fp16 it rounds its blocked input chunk by chunk so. */
static int64_t l2_chunk(const pt_conv_desc *d, size_t per_image, int T) {
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  const size_t budget = (size_t)T * (size_t)(l2 >= (1 << 16) && l2 <= (1L << 28) ? l2 : 1L << 20) / 2;
  const int64_t nb = (int64_t)(budget / (per_image ? per_image : 1));
  return nb < 8 ? (d->n < 8 ? d->n : 8) : nb < d->n ? nb : d->n;
}

/* ---- perforation ---- */

#define PERF_MAX_CLASSES 8

/* A kept class r of a perforation: `lead` dropped rows (columns), then rows r, r + S, ..., over the
 * input without its first `crop` rows. */
typedef struct perf_class {
  int r, lead, crop;
  dn_conv *c;
  size_t off;  /* its blocked output in dn->bo */
  size_t xoff; /* its blocked input in dn->bx (shared by the classes of equal crop) */
} perf_class;

/* d with its spatial axes swapped: column perforation runs as row perforation of the transposed
 * tensors, because oneDNN's kernels lose much more to a horizontal stride than to a vertical one. */
static pt_conv_desc transposed(const pt_conv_desc *d) {
  pt_conv_desc t = *d;
  t.h = d->w, t.w = d->h, t.oh = d->ow, t.ow = d->oh, t.kh = d->kw, t.kw = d->kh;
  t.sh = d->sw, t.sw = d->sh, t.ph = d->pw, t.pw = d->ph, t.perf_dir = PT_PERF_ROWS;
  return t;
}

/* d's convolution on blocked tensors, without its reorders' strides. */
static dn_shape blocked_shape(const pt_conv_desc *d, int T) {
  dn_shape k = pt__dn_shape_exact(d, 0, T);
  memset(k.xs, 0, sizeof k.xs);
  memset(k.ys, 0, sizeof k.ys);
  k.blocked = 1;
  return k;
}

/* Class r's convolution of the row perforation d over the input (without its first *crop rows);
 * 0 when the class is empty or oneDNN could not describe it. */
static int perf_shape(const pt_conv_desc *d, int T, int r, dn_shape *k, int *lead, int *crop) {
  const int64_t S = d->perf_stride, step = S * d->sh;
  if (r >= d->oh) return 0;
  const int64_t count = (d->oh - r + S - 1) / S, q = (int64_t)r * d->sh - d->ph; /* q: first input row read */
  int64_t ld = q > 0 ? (q + step - 1) / step : 0, near = ld * step - q, cut = 0;
  if (near >= d->kh && q <= 0) return 0; /* padding of a whole filter or more: oneDNN's kernels refuse it */
  if (near >= d->kh) ld = 0, near = 0, cut = q; /* a lead row of padding only: crop instead */
  const int64_t out = count + ld, h = d->h - cut, far = (out - 1) * step + d->kh - h - near;
  if (far + step <= 0) return 0;
  *k = blocked_shape(d, T);
  /* far < 0 (the last window ends before the input does) as 0: the output size comes out the same
   * (oneDNN rounds down), and its kernels take no negative padding */
  k->h = h, k->oh = out, k->sh = step, k->pad_t = near, k->pad_b = far > 0 ? far : 0;
  *lead = (int)ld, *crop = (int)cut;
  return 1;
}

/* Where each kept output row (column) u is in the blocked outputs dn->bo, in floats: at
 * src[3u] + i * src[3u + 1] + cb * src[3u + 2] for image i, channel block cb; src[3u] < 0: skipped. */
typedef struct perf_map {
  const int64_t *src;
  const float *bo;
  int blk;
} perf_map;

/* Image i, channels cb*B.. of the kept rows into y's planes, then the fill, the bias and (fp16)
 * the rounding of each plane. Column perforation's outputs hold transposed planes. */
static void perf_write_block(const pt_conv_desc *d, const perf_map *m, int64_t i, int64_t cb, const float *b,
                             float *y) {
  const int B = m->blk, rows = d->perf_dir == PT_PERF_ROWS, size = rows ? d->oh : d->ow;
  const int64_t P = (int64_t)d->oh * d->ow, along = rows ? d->ow : d->oh;
  for (int bb = 0; bb < B && cb * B + bb < d->cout; bb++) {
    const int64_t co = cb * B + bb;
    float *plane = y + (i * d->cout + co) * P;
    for (int u = 0; u < size; u++) {
      const int64_t *s = m->src + 3 * u;
      if (s[0] < 0) continue;
      const float *src = m->bo + s[0] + i * s[1] + cb * s[2] + bb;
      if (rows)
        for (int64_t v = 0; v < along; v++) plane[(int64_t)u * d->ow + v] = src[v * B];
      else
        for (int64_t v = 0; v < along; v++) plane[v * d->ow + u] = src[v * B];
    }
    pt__cpu_conv_epilogue(d, plane, 1, b ? &b[co] : NULL);
  }
}

/* The weights (cout, cin/groups, kh, kw) with their spatial axes swapped, into out. */
static void transpose_weights(const pt_conv_desc *d, const float *w, float *out) {
  const int64_t planes = (int64_t)d->cout * (d->cin / d->groups);
  for (int64_t p = 0; p < planes; p++)
    for (int kj = 0; kj < d->kw; kj++)
      for (int ki = 0; ki < d->kh; ki++)
        out[(p * d->kw + kj) * d->kh + ki] = w[(p * d->kh + ki) * d->kw + kj];
}

/* x (n, cin, h, w) into dst in the blocked layout of md (transposed for columns), the rows
 * (columns) above the first `crop` ones left out. In fp16 (x not rounded yet) chunk by chunk of
 * images, each rounded to binary16 while in cache: one pass over x less than a rounded copy first. */
static pt_status perf_input(pt__cpu_dnnl *dn, const pt_conv_desc *d, const pt_conv_desc *dt, int T, int crop,
                            const float *x, const dnnl_memory_desc_t *md, void *dst) {
  const int cols = d->perf_dir == PT_PERF_COLS;
  const int64_t hw = (int64_t)d->h * d->w, s[4] = {d->cin * hw, hw, cols ? 1 : d->w, cols ? d->w : 1};
  dnnl_memory_desc_t user;
  if (!d->fp16) {
    PT__TRY(pt__dn_md_strided(d->n, d->cin, dt->h - crop, dt->w, s, &user));
    return pt__dn_reorder(dn, &user, x + crop * s[2], md, dst);
  }
  const size_t per = dnnl_memory_desc_get_size(md) / (size_t)(d->n > 0 ? d->n : 1); /* floats of an image, x4 */
  const int64_t nb = l2_chunk(d, per, T);
  for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
    const int64_t cnt = d->n - i0 < nb ? d->n - i0 : nb, len = cnt * (int64_t)(per / sizeof(float));
    dnnl_memory_desc_t part;
    float *o = (float *)dst + i0 * (int64_t)(per / sizeof(float));
    PT__TRY(pt__dn_md_strided(cnt, d->cin, dt->h - crop, dt->w, s, &user));
    PT__TRY(pt__dn_md_blocked(dn, cnt, d->cin, dt->h - crop, dt->w, &part));
    PT__TRY(pt__dn_reorder(dn, &user, x + i0 * s[0] + crop * s[2], &part, o));
    pt__dn_round16(o, o, len, T);
  }
  return PT_OK;
}

/* The writer over every image and channel block of y. */
static void perf_write(const pt_conv_desc *d, const perf_map *m, int T, const float *b, float *y) {
  const int64_t CB = (d->cout + m->blk - 1) / m->blk;
#pragma omp parallel for num_threads(T) schedule(static)
  for (int64_t t = 0; t < (int64_t)d->n * CB; t++) perf_write_block(d, m, t / CB, t % CB, b, y);
}

/* Column perforation's weights transposed (into dn->bw), row perforation's as they are. */
static pt_status perf_weights(pt__cpu_dnnl *dn, const pt_conv_desc *d, const float **w) {
  if (d->perf_dir != PT_PERF_COLS) return PT_OK;
  PT__TRY(pt__dn_grow(&dn->bw, (size_t)d->cout * (d->cin / d->groups) * d->kh * d->kw * sizeof(float), "weights"));
  transpose_weights(d, *w, dn->bw.p);
  *w = dn->bw.p;
  return PT_OK;
}

/* One convolution a kept class of rows, each over its (cropped) blocked input. */
static pt_status perf_by_classes(pt__cpu_dnnl *dn, const pt_conv_desc *d, const pt_conv_desc *dt, int T,
                                 const float *x, const float *w, const float *b, float *y) {
  const int S = dt->perf_stride, size = dt->oh;
  perf_class pc[PERF_MAX_CLASSES];
  int npc = 0;
  size_t bytes = 0, xbytes = 0;
  for (int r = 0; r < S; r++) { /* every primitive first: an unsupported one leaves y untouched */
    dn_shape k;
    int lead, crop;
    if (r == dt->perf_offset || r >= size) continue;
    if (!perf_shape(dt, T, r, &k, &lead, &crop))
      return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): a perforation class oneDNN does not describe");
    PT__TRY(pt__dn_conv_get(dn, &k, &pc[npc].c));
    pc[npc].r = r, pc[npc].lead = lead, pc[npc].crop = crop, pc[npc].off = bytes, pc[npc].xoff = xbytes;
    for (int j = 0; j < npc; j++)
      if (pc[j].crop == crop) pc[npc].xoff = pc[j].xoff;
    if (pc[npc].xoff == xbytes) xbytes += pt__dn_up64(dnnl_memory_desc_get_size(&pc[npc].c->src_conv));
    bytes += pt__dn_up64(dnnl_memory_desc_get_size(&pc[npc].c->dst_conv));
    npc++;
  }
  if (!npc) return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): a perforation that computes nothing");
  PT__TRY(pt__dn_grow(&dn->bx, xbytes, "blocked input"));
  PT__TRY(pt__dn_grow(&dn->bo, bytes, "perforated outputs"));
  PT__TRY(perf_weights(dn, d, &w));
  for (int k = 0; k < npc; k++) { /* each crop's input once */
    int first = 1;
    for (int j = 0; j < k; j++) first &= pc[j].xoff != pc[k].xoff;
    if (first) PT__TRY(perf_input(dn, d, dt, T, pc[k].crop, x, &pc[k].c->src_conv, (char *)dn->bx.p + pc[k].xoff));
  }
  for (int k = 0; k < npc; k++)
    PT__TRY(pt__dn_conv_run_blocked(dn, pc[k].c, (char *)dn->bx.p + pc[k].xoff, w, NULL, (char *)dn->bo.p + pc[k].off));
  int64_t *src = pt__malloc((size_t)size * 3 * sizeof *src);
  if (!src) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for the row map (%d)", size);
  const int64_t CB = (d->cout + dn->blk - 1) / dn->blk, along = (int64_t)dt->ow * dn->blk;
  for (int u = 0; u < size; u++) src[3 * u] = -1;
  for (int k = 0; k < npc; k++) {
    const int64_t oh = pc[k].c->key.oh;
    for (int u = pc[k].r, q = pc[k].lead; u < size; u += S, q++)
      src[3 * u] = (int64_t)(pc[k].off / sizeof(float)) + q * along, src[3 * u + 1] = CB * oh * along,
              src[3 * u + 2] = oh * along;
  }
  const perf_map m = {src, dn->bo.p, dn->blk};
  perf_write(d, &m, T, b, y);
  free(src);
  return PT_OK;
}

pt_status pt__dn_perforated(pt__cpu_dnnl *dn, const pt_conv_desc *d, int T, const float *x, const float *w,
                            const float *b, float *y) {
  const pt_conv_desc dt = d->perf_dir == PT_PERF_COLS ? transposed(d) : *d;
  if (!dn->blk || dt.perf_stride > PERF_MAX_CLASSES)
    return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): perforation not on oneDNN here");
  return perf_by_classes(dn, d, &dt, T, x, w, b, y);
}

/* ---- sampling ---- */

#define SAMP_MAX_PERIOD 8
#define SAMP_MAX_PIECES 16

/* Taps (a + i*da, b + l*db), i < nr, l < nc, of the filters of channel class cls. */
typedef struct samp_piece {
  int cls, a, da, nr, b, db, nc;
  dn_conv *c;
} samp_piece;

/* Channels c0, c0 + P, ...: cnt of them, keeping the same taps; blocked in dn->bx at off. */
typedef struct samp_class {
  int c0, cnt;
  uint64_t mask;
  size_t off;
  dnnl_memory_desc_t blk;
} samp_class;

/* Channels c0, c0 + P, ... (cnt) of x (n, cin, h, w) into out in the blocked layout (blocks of B
 * channels, the padding channels zero), rounded to binary16 in fp16 (each tile while in cache:
 * one pass over x less than a rounded copy first). Our own loop rather than a oneDNN reorder:
 * oneDNN refuses the strided view when cnt * P overruns cin. */
static void class_to_blocked(const pt_conv_desc *d, const samp_class *cl, int P, int B, const float *x, float *out,
                             int T) {
  const int64_t hw = (int64_t)d->h * d->w, CB = (cl->cnt + B - 1) / B;
#pragma omp parallel for num_threads(T) schedule(static)
  for (int64_t t = 0; t < (int64_t)d->n * CB; t++) {
    const int64_t i = t / CB, cb = t % CB;
    const float *src[16];
    int full = 1;
    for (int bb = 0; bb < B; bb++) {
      const int64_t j = cb * B + bb;
      src[bb] = j < cl->cnt ? x + (i * d->cin + cl->c0 + j * P) * hw : NULL;
      full &= src[bb] != NULL;
    }
    float *o = out + t * hw * B;
    if (full) /* the B input planes read side by side, each output vector written whole */
      for (int64_t p = 0; p < hw; p++)
        for (int bb = 0; bb < B; bb++) o[p * B + bb] = src[bb][p];
    else
      for (int64_t p = 0; p < hw; p++)
        for (int bb = 0; bb < B; bb++) o[p * B + bb] = src[bb] ? src[bb][p] : 0.0f;
    if (d->fp16) pt_round_f16_array(o, (size_t)(hw * B));
  }
}

static int lattice_in(uint64_t mask, int kw, int a, int da, int nr, int b, int db, int nc) {
  for (int i = 0; i < nr; i++)
    for (int l = 0; l < nc; l++)
      if (!(mask >> ((a + i * da) * kw + b + l * db) & 1)) return 0;
  return 1;
}

/* The lattice with the most taps inside mask (the first found among equals); its tap count. */
static int best_lattice(uint64_t mask, int kh, int kw, samp_piece *best) {
  int most = 0;
  for (int a = 0; a < kh; a++)
    for (int b = 0; b < kw; b++)
      for (int da = 1; da < (kh > 1 ? kh : 2); da++)
        for (int nr = 1; a + (nr - 1) * da < kh; nr++) {
          if (nr == 1 && da > 1) continue; /* the same taps as da == 1 */
          for (int db = 1; db < (kw > 1 ? kw : 2); db++)
            for (int nc = 1; b + (nc - 1) * db < kw; nc++) {
              if (nc == 1 && db > 1) continue;
              if (!lattice_in(mask, kw, a, da, nr, b, db, nc)) break;
              if (nr * nc > most) most = nr * nc, *best = (samp_piece){0, a, da, nr, b, db, nc, NULL};
            }
        }
  return most;
}

/* The channel classes and their pieces; 0 when sampling does not decompose so (grouped, large
 * filters, irregular patterns, taps beyond the padding). */
static int samp_plan(const pt_conv_desc *d, samp_class *cl, int *ncl, samp_piece *pc, int *npc) {
  const int khw = d->kh * d->kw;
  if (d->groups != 1 || khw > 64) return 0;
  int P = 0;
  for (int p = 1; p <= SAMP_MAX_PERIOD && !P; p++) {
    int same = 1;
    for (int c = p; c < d->cin && same; c++)
      for (int t = 0; t < khw && same; t++)
        same = pt_km_samp_dropped(c * khw + t, d->kh, d->kw, d->samp_every, d->samp_offset) ==
               pt_km_samp_dropped((c % p) * khw + t, d->kh, d->kw, d->samp_every, d->samp_offset);
    if (same) P = p;
  }
  if (!P) return 0;
  *ncl = *npc = 0;
  for (int c0 = 0; c0 < P && c0 < d->cin; c0++) {
    uint64_t mask = 0;
    for (int t = 0; t < khw; t++)
      if (!pt_km_samp_dropped(c0 * khw + t, d->kh, d->kw, d->samp_every, d->samp_offset)) mask |= (uint64_t)1 << t;
    if (!mask) continue; /* every tap dropped: these channels add nothing */
    cl[*ncl] = (samp_class){.c0 = c0, .cnt = (d->cin - c0 + P - 1) / P, .mask = mask};
    for (uint64_t left = mask; left;) {
      samp_piece p;
      if (*npc == SAMP_MAX_PIECES || !best_lattice(left, d->kh, d->kw, &p)) return 0;
      /* oneDNN takes no negative near padding, nor far padding of a whole stride or more */
      const int64_t far_b = (int64_t)(d->oh - 1) * d->sh + (int64_t)(p.nr - 1) * p.da + 1 - d->h - (d->ph - p.a),
                    far_r = (int64_t)(d->ow - 1) * d->sw + (int64_t)(p.nc - 1) * p.db + 1 - d->w - (d->pw - p.b);
      if (p.a > d->ph || p.b > d->pw || far_b + d->sh <= 0 || far_r + d->sw <= 0) return 0;
      p.cls = *ncl;
      for (int i = 0; i < p.nr; i++)
        for (int l = 0; l < p.nc; l++) left &= ~((uint64_t)1 << ((p.a + i * p.da) * d->kw + p.b + l * p.db));
      pc[(*npc)++] = p;
    }
    (*ncl)++;
  }
  return *npc > 0 ? P : 0;
}

static dn_shape piece_shape(const pt_conv_desc *d, int T, const samp_class *cl, const samp_piece *p, int first,
                            int has_bias) {
  dn_shape k = {.n = d->n, .cin = cl->cnt, .h = d->h, .w = d->w, .cout = d->cout, .oh = d->oh, .ow = d->ow,
                .kh = p->nr, .kw = p->nc, .sh = d->sh, .sw = d->sw, .dh = p->da - 1, .dw = p->db - 1,
                .pad_t = d->ph - p->a, .pad_l = d->pw - p->b, .groups = 1, .has_bias = first && has_bias,
                .threads = T, .sum = !first, .blocked = 1};
  k.pad_b = (int64_t)(d->oh - 1) * d->sh + (int64_t)(p->nr - 1) * p->da + 1 - d->h - k.pad_t;
  k.pad_r = (int64_t)(d->ow - 1) * d->sw + (int64_t)(p->nc - 1) * p->db + 1 - d->w - k.pad_l;
  return k;
}

/* The piece's weights (cout, cnt, nr, nc), scaled by samp_scale (and rounded in fp16). */
static void piece_weights(const pt_conv_desc *d, int P, const samp_class *cl, const samp_piece *p, const float *w,
                          float *out) {
  const int khw = d->kh * d->kw;
  for (int co = 0; co < d->cout; co++)
    for (int j = 0; j < cl->cnt; j++)
      for (int i = 0; i < p->nr; i++)
        for (int l = 0; l < p->nc; l++) {
          const int64_t c = cl->c0 + (int64_t)j * P, tap = (int64_t)(p->a + i * p->da) * d->kw + p->b + l * p->db;
          float v = w[((int64_t)co * d->cin + c) * khw + tap] * d->samp_scale;
          *out++ = d->fp16 ? pt_round_f16(v) : v;
        }
}

/* The pieces' primitives for chunks of nb images (pr[0..npc)); PT_EUNSUPPORTED when oneDNN cannot
 * run one. */
static pt_status samp_prims(pt__cpu_dnnl *dn, const pt_conv_desc *d, int T, int64_t nb, const samp_class *cl,
                            const samp_piece *pc, int npc, int has_bias, dn_conv **pr) {
  pt_conv_desc dc = *d;
  dc.n = (int)nb;
  for (int i = 0; i < npc; i++) {
    const dn_shape k = piece_shape(&dc, T, &cl[pc[i].cls], &pc[i], i == 0, has_bias);
    PT__TRY(pt__dn_conv_get(dn, &k, &pr[i]));
  }
  return PT_OK;
}

pt_status pt__dn_sampled(pt__cpu_dnnl *dn, const pt_conv_desc *d, int T, const float *x, const float *w,
                         const float *b, float *y) {
  samp_class cl[SAMP_MAX_PERIOD];
  samp_piece pc[SAMP_MAX_PIECES];
  int ncl, npc, P;
  if (!dn->blk || !(P = samp_plan(d, cl, &ncl, pc, &npc)))
    return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): sampling pattern not on oneDNN");
  if (d->n <= 0) return PT_OK; /* no images: nothing to write */
  size_t xb = 0, per_image = 0, wu = 0, wcb = 0, wof[SAMP_MAX_PIECES], cof[SAMP_MAX_PIECES];
  for (int i = 0; i < ncl; i++) {
    dnnl_memory_desc_t one;
    PT__TRY(pt__dn_md_blocked(dn, 1, cl[i].cnt, d->h, d->w, &one));
    per_image += pt__dn_up64(dnnl_memory_desc_get_size(&one));
  }
  dnnl_memory_desc_t oone;
  PT__TRY(pt__dn_md_blocked(dn, 1, d->cout, d->oh, d->ow, &oone));
  per_image += dnnl_memory_desc_get_size(&oone) + (size_t)d->cout * d->oh * d->ow * sizeof(float);
  const int64_t nb = l2_chunk(d, per_image, T), last = d->n % nb; /* last: the remainder chunk's images */
  const int has_bias = b && !d->fp16;
  dn_conv *pr[SAMP_MAX_PIECES], *prl[SAMP_MAX_PIECES]; /* every primitive first: an unsupported one leaves y untouched */
  PT__TRY(samp_prims(dn, d, T, nb, cl, pc, npc, has_bias, pr));
  if (last) PT__TRY(samp_prims(dn, d, T, last, cl, pc, npc, has_bias, prl));
  for (int i = 0; i < ncl; i++) {
    PT__TRY(pt__dn_md_blocked(dn, nb, cl[i].cnt, d->h, d->w, &cl[i].blk));
    cl[i].off = xb;
    xb += pt__dn_up64(dnnl_memory_desc_get_size(&cl[i].blk));
  }
  for (int i = 0; i < npc; i++) { /* each piece's weights (oihw), then in its primitive's layout */
    wof[i] = wu, cof[i] = wcb;
    wu += pt__dn_up64((size_t)d->cout * cl[pc[i].cls].cnt * pc[i].nr * pc[i].nc * sizeof(float));
    wcb += pt__dn_up64(dnnl_memory_desc_get_size(&pr[i]->w_conv));
  }
  PT__TRY(pt__dn_grow(&dn->bx, xb, "blocked input"));
  PT__TRY(pt__dn_grow(&dn->bo, dnnl_memory_desc_get_size(&pr[0]->dst_conv), "blocked output"));
  PT__TRY(pt__dn_grow(&dn->bw, wu + wcb, "sampled weights"));
  char *wb = dn->bw.p;
  for (int i = 0; i < npc; i++) {
    piece_weights(d, P, &cl[pc[i].cls], &pc[i], w, (float *)(wb + wof[i]));
    PT__TRY(pt__dn_weights(dn, pr[i], (const float *)(wb + wof[i]), wb + wu + cof[i]));
  }
  dnnl_memory_desc_t out_nb, out_last; /* the chunks' NCHW outputs, their reorders made before y is written */
  PT__TRY(nchw_md(nb, d->cout, d->oh, d->ow, &out_nb));
  PT__TRY(pt__dn_reorder_ready(dn, &pr[0]->dst_conv, &out_nb));
  if (last) {
    PT__TRY(nchw_md(last, d->cout, d->oh, d->ow, &out_last));
    PT__TRY(pt__dn_reorder_ready(dn, &prl[0]->dst_conv, &out_last));
  }
  const int64_t plane = (int64_t)d->cout * d->oh * d->ow;
  for (int64_t i0 = 0; i0 < d->n; i0 += nb) {
    const int64_t cnt = d->n - i0 < nb ? d->n - i0 : nb;
    dn_conv *const *use = cnt == nb ? pr : prl;
    pt_conv_desc dc = *d;
    dc.n = (int)cnt;
    const float *xi = x + i0 * d->cin * d->h * d->w;
    for (int i = 0; i < ncl; i++)
      class_to_blocked(&dc, &cl[i], P, dn->blk, xi, (float *)((char *)dn->bx.p + cl[i].off), T);
    for (int i = 0; i < npc; i++) {
      const void *xc = (char *)dn->bx.p + cl[pc[i].cls].off;
      const float *bi = i == 0 && has_bias ? b : NULL;
      if (use == pr)
        PT__TRY(pt__dn_conv_run_prepared(dn, use[i], xc, wb + wu + cof[i], bi, dn->bo.p));
      else /* the shorter last chunk: its primitives reorder the weights themselves (once) */
        PT__TRY(pt__dn_conv_run_blocked(dn, use[i], xc, (const float *)(wb + wof[i]), bi, dn->bo.p));
    }
    PT__TRY(pt__dn_reorder(dn, &use[0]->dst_conv, dn->bo.p, use == pr ? &out_nb : &out_last, y + i0 * plane));
    if (d->fp16) pt__dn_fp16_epilogue(&dc, b, y + i0 * plane, T);
  }
  return PT_OK;
}
