/* Exact convolutions of the CPU backend on oneDNN (built with PT_DNNL): one primitive per shape,
 * created on first use and kept, in the layouts oneDNN prefers (src, weights and dst "any"), with
 * the reorders from and to the executor's NCHW counted in every call. Weights are reordered on each
 * call rather than cached by pointer: a host pointer says nothing about what it holds now (callers
 * may free and reuse it), and the reorder reads the weights once, as the convolution does.
 * What takes this path and why is in docs/decisions.md ("The CPU kernel issue"). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "backend/cpu/cpu_internal.h"
#include "core/alloc.h"
#include "core/error.h"

/* One convolution as oneDNN runs it: input and output as (strided) views of the caller's NCHW
 * tensors, so that a perforated convolution's kept rows or columns are convolutions of their own. */
typedef struct dn_shape {
  int64_t n, cin, h, w, cout, oh, ow, kh, kw, sh, sw, pad_t, pad_b, pad_l, pad_r, groups, has_bias, threads;
  int64_t xs[4], ys[4]; /* strides of the input and output views (elements) */
} dn_shape;

/* One shape's convolution: its primitive and the reorders around it (NULL where the layouts agree). */
typedef struct dn_conv {
  dn_shape key;
  int unsupported; /* oneDNN has no convolution for this shape: the backend's own kernels run it */
  dnnl_primitive_t conv, r_src, r_w, r_dst;
  dnnl_memory_desc_t src_user, src_conv, w_user, w_conv, b_md, dst_conv, dst_user;
} dn_conv;

struct pt__cpu_dnnl {
  dnnl_engine_t eng;
  dnnl_stream_t stream;
  dn_conv *c;
  int n_c, cap_c;
  void *scratch; /* reordered operands: src, weights, dst */
  size_t scratch_bytes;
  void *class_out; /* a perforated convolution's kept rows or columns, dense (floats) */
  size_t class_bytes;
};

static pt_status dn_error(dnnl_status_t st, const char *what) {
  pt_status s = st == dnnl_out_of_memory ? PT_ENOMEM : st == dnnl_unimplemented ? PT_EUNSUPPORTED : PT_EBACKEND;
  return pt__error(s, "cpu conv2d (oneDNN): %s: %s%s", what, dnnl_status2str(st),
                   st == dnnl_out_of_memory ? " (out of memory)" : "");
}

#define DN_TRY(call, what)                        \
  do {                                            \
    dnnl_status_t dn_st_ = (call);                \
    if (dn_st_ != dnnl_success) return dn_error(dn_st_, what); \
  } while (0)

static void conv_destroy(dn_conv *c) {
  if (c->conv) dnnl_primitive_destroy(c->conv);
  if (c->r_src) dnnl_primitive_destroy(c->r_src);
  if (c->r_w) dnnl_primitive_destroy(c->r_w);
  if (c->r_dst) dnnl_primitive_destroy(c->r_dst);
}

void pt__cpu_dnnl_free(pt__cpu_dnnl *dn) {
  if (!dn) return;
  for (int i = 0; i < dn->n_c; i++) conv_destroy(&dn->c[i]);
  if (dn->stream) dnnl_stream_destroy(dn->stream);
  if (dn->eng) dnnl_engine_destroy(dn->eng);
  free(dn->c);
  free(dn->scratch);
  free(dn->class_out);
  free(dn);
}

static pt_status dn_create(pt__cpu_dnnl **out) {
  pt__cpu_dnnl *dn = pt__calloc(1, sizeof *dn);
  if (!dn) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory");
  dnnl_status_t st = dnnl_engine_create(&dn->eng, dnnl_cpu, 0);
  if (st == dnnl_success) st = dnnl_stream_create(&dn->stream, dn->eng, dnnl_stream_default_flags);
  if (st != dnnl_success) {
    pt__cpu_dnnl_free(dn);
    return dn_error(st, "engine");
  }
  *out = dn;
  return PT_OK;
}

/* A reorder from a to b, or NULL when they are the same layout. */
static pt_status reorder_make(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b,
                              dnnl_primitive_t *r) {
  *r = NULL;
  if (dnnl_memory_desc_equal(a, b)) return PT_OK;
  dnnl_primitive_desc_t pd;
  DN_TRY(dnnl_reorder_primitive_desc_create(&pd, a, dn->eng, b, dn->eng, NULL), "reorder");
  dnnl_status_t st = dnnl_primitive_create(r, pd);
  dnnl_primitive_desc_destroy(pd);
  return st == dnnl_success ? PT_OK : dn_error(st, "reorder primitive");
}

static pt_status conv_make(pt__cpu_dnnl *dn, const dn_shape *k, dn_conv *c) {
  const int G = (int)k->groups, wnd = G > 1 ? 5 : 4; /* grouped: weights (G, cout/G, cin/G, kh, kw) */
  const dnnl_dims_t src = {k->n, k->cin, k->h, k->w}, bias = {k->cout}, dst = {k->n, k->cout, k->oh, k->ow},
                    strides = {k->sh, k->sw}, pad_l = {k->pad_t, k->pad_l}, pad_r = {k->pad_b, k->pad_r};
  dnnl_dims_t wt = {k->cout, k->cin, k->kh, k->kw};
  if (G > 1) {
    const dnnl_dims_t gw = {G, k->cout / G, k->cin / G, k->kh, k->kw};
    memcpy(wt, gw, sizeof gw);
  }
  dnnl_memory_desc_t any_src, any_w, any_dst;
  dnnl_dims_t xs = {0}, ys = {0}; /* the API reads DNNL_MAX_NDIMS strides */
  memcpy(xs, k->xs, sizeof k->xs);
  memcpy(ys, k->ys, sizeof k->ys);
  DN_TRY(dnnl_memory_desc_init_by_strides(&c->src_user, 4, src, dnnl_f32, xs), "src");
  DN_TRY(dnnl_memory_desc_init_by_tag(&c->w_user, wnd, wt, dnnl_f32, G > 1 ? dnnl_goihw : dnnl_oihw), "weights");
  DN_TRY(dnnl_memory_desc_init_by_strides(&c->dst_user, 4, dst, dnnl_f32, ys), "dst");
  DN_TRY(dnnl_memory_desc_init_by_tag(&c->b_md, 1, bias, dnnl_f32, dnnl_x), "bias");
  DN_TRY(dnnl_memory_desc_init_by_tag(&any_src, 4, src, dnnl_f32, dnnl_format_tag_any), "src");
  DN_TRY(dnnl_memory_desc_init_by_tag(&any_w, wnd, wt, dnnl_f32, dnnl_format_tag_any), "weights");
  DN_TRY(dnnl_memory_desc_init_by_tag(&any_dst, 4, dst, dnnl_f32, dnnl_format_tag_any), "dst");
  dnnl_convolution_desc_t cd;
  DN_TRY(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &any_src, &any_w,
                                            k->has_bias ? &c->b_md : NULL, &any_dst, strides, pad_l, pad_r),
         "convolution");
  dnnl_primitive_desc_t pd;
  DN_TRY(dnnl_primitive_desc_create(&pd, &cd, NULL, dn->eng, NULL), "convolution");
  c->src_conv = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  c->w_conv = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  c->dst_conv = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  dnnl_status_t st = dnnl_primitive_create(&c->conv, pd);
  dnnl_primitive_desc_destroy(pd);
  if (st != dnnl_success) return dn_error(st, "convolution primitive");
  PT__TRY(reorder_make(dn, &c->src_user, &c->src_conv, &c->r_src));
  PT__TRY(reorder_make(dn, &c->w_user, &c->w_conv, &c->r_w));
  return reorder_make(dn, &c->dst_conv, &c->dst_user, &c->r_dst);
}

/* The primitive of this shape, made on first use. */
static pt_status conv_get(pt__cpu_dnnl *dn, const dn_shape *k, dn_conv **out) {
  for (int i = 0; i < dn->n_c; i++)
    if (!memcmp(&dn->c[i].key, k, sizeof *k)) {
      *out = &dn->c[i];
      return dn->c[i].unsupported ? PT_EUNSUPPORTED : PT_OK;
    }
  if (dn->n_c == dn->cap_c) {
    int cap = dn->cap_c ? 2 * dn->cap_c : 16;
    dn_conv *nc = pt__realloc(dn->c, (size_t)cap * sizeof *nc);
    if (!nc) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for %d primitives", cap);
    dn->c = nc;
    dn->cap_c = cap;
  }
  dn_conv *c = &dn->c[dn->n_c];
  memset(c, 0, sizeof *c);
  c->key = *k;
  pt_status s = conv_make(dn, k, c);
  if (s != PT_OK) {
    conv_destroy(c);
    if (s != PT_EUNSUPPORTED) return s;
    memset(c, 0, sizeof *c); /* remembered, so the shape is not tried again */
    c->key = *k;
    c->unsupported = 1;
  }
  dn->n_c++;
  *out = c;
  return s;
}

static pt_status mem(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *md, void *p, dnnl_memory_t *m) {
  DN_TRY(dnnl_memory_create(m, md, dn->eng, p), "memory");
  return PT_OK;
}

static pt_status exec2(pt__cpu_dnnl *dn, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  DN_TRY(dnnl_primitive_execute(r, dn->stream, 2, a), "reorder");
  return PT_OK;
}

/* A 64-byte aligned buffer of at least `need` bytes in *buf (kept between calls). */
static pt_status grow(void **buf, size_t *bytes, size_t need, const char *what) {
  if (need <= *bytes) return PT_OK;
  free(*buf);
  *bytes = 0;
  if (!(*buf = pt__aligned_alloc(64, (need + 63) & ~(size_t)63)))
    return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for %zu bytes of %s", need, what);
  *bytes = need;
  return PT_OK;
}

/* The convolution of c with its reorders; scratch holds the reordered operands. */
static pt_status conv_run(pt__cpu_dnnl *dn, const dn_conv *c, const float *x, const float *w, const float *b,
                          float *y) {
  const size_t s_b = c->r_src ? dnnl_memory_desc_get_size(&c->src_conv) : 0,
               w_b = c->r_w ? dnnl_memory_desc_get_size(&c->w_conv) : 0,
               d_b = c->r_dst ? dnnl_memory_desc_get_size(&c->dst_conv) : 0, need = s_b + w_b + d_b + 3 * 64;
  PT__TRY(grow(&dn->scratch, &dn->scratch_bytes, need, "reordered operands"));
  char *p = dn->scratch;
  void *xs = c->r_src ? p : (void *)x, *ws = c->r_w ? p + ((s_b + 63) & ~(size_t)63) : (void *)w,
       *ys = c->r_dst ? p + ((s_b + 63) & ~(size_t)63) + ((w_b + 63) & ~(size_t)63) : (void *)y;
  dnnl_memory_t m[7] = {0}; /* x, w, y as given; their conv layouts; bias */
  pt_status s = mem(dn, &c->src_user, (void *)x, &m[0]);
  if (s == PT_OK) s = mem(dn, &c->w_user, (void *)w, &m[1]);
  if (s == PT_OK) s = mem(dn, &c->dst_user, y, &m[2]);
  if (s == PT_OK) s = mem(dn, &c->src_conv, xs, &m[3]);
  if (s == PT_OK) s = mem(dn, &c->w_conv, ws, &m[4]);
  if (s == PT_OK) s = mem(dn, &c->dst_conv, ys, &m[5]);
  if (s == PT_OK && b) s = mem(dn, &c->b_md, (void *)b, &m[6]);
  if (s == PT_OK && c->r_src) s = exec2(dn, c->r_src, m[0], m[3]);
  if (s == PT_OK && c->r_w) s = exec2(dn, c->r_w, m[1], m[4]);
  if (s == PT_OK) {
    dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, m[3]}, {DNNL_ARG_WEIGHTS, m[4]}, {DNNL_ARG_DST, m[5]}, {DNNL_ARG_BIAS, m[6]}};
    dnnl_status_t st = dnnl_primitive_execute(c->conv, dn->stream, b ? 4 : 3, a);
    if (st != dnnl_success) s = dn_error(st, "convolution");
  }
  if (s == PT_OK && c->r_dst) s = exec2(dn, c->r_dst, m[5], m[2]);
  if (s == PT_OK) {
    dnnl_status_t st = dnnl_stream_wait(dn->stream);
    if (st != dnnl_success) s = dn_error(st, "stream");
  }
  for (int i = 0; i < 7; i++)
    if (m[i]) dnnl_memory_destroy(m[i]);
  return s;
}

/* Perforation on oneDNN repeats the input's reorder for each kept class of rows or columns, and
 * column classes write strided; by bench/RESULTS.md ("knob speedups against the oneDNN convolution")
 * only rows at stride 2 gain over the backend's own im2col perforation. */
int pt__cpu_dnnl_takes(const pt_conv_desc *d, int mode) {
  if (d->fp16 || d->samp_every || mode == PT_CPU_DNNL_OFF) return 0;
  if (!d->perf_dir) return 1;
  return mode == PT_CPU_DNNL_ALL || (mode == PT_CPU_DNNL_DEFAULT && d->perf_dir == PT_PERF_ROWS && d->perf_stride == 2);
}

/* The exact convolution d as one oneDNN convolution over the whole tensors. */
static dn_shape shape_exact(const pt_conv_desc *d, int has_bias, int threads) {
  dn_shape k = {d->n, d->cin, d->h, d->w, d->cout, d->oh, d->ow, d->kh, d->kw, d->sh, d->sw, d->ph, 0, d->pw, 0,
                d->groups, has_bias, threads, {0}, {0}};
  /* PyTorch's padding is symmetric; the far side is what makes the output size come out */
  k.pad_b = (d->oh - 1) * d->sh + d->kh - d->h - d->ph;
  k.pad_r = (d->ow - 1) * d->sw + d->kw - d->w - d->pw;
  const int64_t xs[4] = {(int64_t)d->cin * d->h * d->w, (int64_t)d->h * d->w, d->w, 1},
                ys[4] = {(int64_t)d->cout * d->oh * d->ow, (int64_t)d->oh * d->ow, d->ow, 1};
  memcpy(k.xs, xs, sizeof xs);
  memcpy(k.ys, ys, sizeof ys);
  return k;
}

/* Perforation: the output rows (or columns) r, r + S, r + 2S, ... of d are a convolution of their
 * own with S times the stride, over the input from the first row (column) they read, written dense
 * (n, cout, count, ow) or (n, cout, oh, count) and then scattered into y: oneDNN refuses output
 * views whose row stride times count overruns a plane, which most of these are. *x_off: where the
 * input view starts. Returns 1, 0 when the class is empty, -1 when it reads no input row (column):
 * padding alone, which the backend's own kernels handle. */
static int shape_class(const pt_conv_desc *d, int threads, int r, dn_shape *k, int64_t *x_off) {
  *k = shape_exact(d, 0, threads);
  const int S = d->perf_stride, rows = d->perf_dir == PT_PERF_ROWS;
  const int64_t size = rows ? d->oh : d->ow, stride = rows ? d->sh : d->sw, pad = rows ? d->ph : d->pw,
                in = rows ? d->h : d->w, kern = rows ? d->kh : d->kw;
  if (r >= size) return 0;
  const int64_t count = (size - r + S - 1) / S, q = r * stride - pad; /* q: first input row read */
  const int64_t skip = q > 0 ? q : 0, view = in - skip, near = q < 0 ? -q : 0;
  if (view < 1) return -1;
  const int64_t far = (count - 1) * S * stride + kern - view - near;
  if (rows)
    k->h = view, k->oh = count, k->sh = S * stride, k->pad_t = near, k->pad_b = far, *x_off = skip * d->w;
  else
    k->w = view, k->ow = count, k->sw = S * stride, k->pad_l = near, k->pad_r = far, *x_off = skip;
  const int64_t ys[4] = {k->cout * k->oh * k->ow, k->oh * k->ow, k->ow, 1};
  memcpy(k->ys, ys, sizeof ys);
  return 1;
}

/* Class r's dense output c (n, cout, k->oh, k->ow) into its rows or columns of y. */
static void scatter_class(const pt_conv_desc *d, const dn_shape *k, int r, const float *c, float *y, int threads) {
  const int S = d->perf_stride, rows = d->perf_dir == PT_PERF_ROWS;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t pl = 0; pl < (int64_t)d->n * d->cout; pl++) {
    const float *src = c + pl * k->oh * k->ow;
    float *dst = y + pl * (int64_t)d->oh * d->ow;
    if (rows)
      for (int64_t i = 0; i < k->oh; i++)
        memcpy(dst + (r + i * S) * (int64_t)d->ow, src + i * k->ow, (size_t)k->ow * sizeof *dst);
    else
      for (int64_t yy = 0; yy < d->oh; yy++)
        for (int64_t j = 0; j < k->ow; j++) dst[yy * d->ow + r + j * S] = src[yy * k->ow + j];
  }
}

/* The kept classes (every residue but the offset's) without bias, then the fill of the skipped one
 * and the bias, as the backend's own perforation does. */
static pt_status perforated(pt__cpu_dnnl *dn, const pt_conv_desc *d, int T, const float *x, const float *w,
                            const float *b, float *y) {
  dn_shape k;
  int64_t xo;
  for (int r = 0; r < d->perf_stride; r++) /* every kept row (column) gets written, or none is */
    if (r != d->perf_offset && shape_class(d, T, r, &k, &xo) < 0)
      return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): perforated rows that read only padding");
  for (int r = 0; r < d->perf_stride; r++) {
    dn_conv *c;
    if (r == d->perf_offset || shape_class(d, T, r, &k, &xo) <= 0) continue;
    PT__TRY(conv_get(dn, &k, &c));
    const size_t bytes = (size_t)(k.n * k.cout * k.oh * k.ow) * sizeof(float);
    PT__TRY(grow(&dn->class_out, &dn->class_bytes, bytes, "perforated output"));
    PT__TRY(conv_run(dn, c, x + xo, w, NULL, dn->class_out));
    scatter_class(d, &k, r, dn->class_out, y, T);
  }
  pt__cpu_perf_fill_bias(d, b, y, T);
  return PT_OK;
}

pt_status pt__cpu_dnnl_conv2d(pt_cpu_ctx *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y) {
  if (!ctx->dnnl) PT__TRY(dn_create(&ctx->dnnl));
  const int T = ctx->threads > 0 ? ctx->threads : 1, old = omp_get_max_threads();
  omp_set_num_threads(T); /* oneDNN's OpenMP runtime takes the calling thread's count */
  pt_status s = PT_OK;
  if (!d->perf_dir) {
    const dn_shape k = shape_exact(d, b != NULL, T);
    dn_conv *c = NULL;
    s = conv_get(ctx->dnnl, &k, &c);
    if (s == PT_OK) s = conv_run(ctx->dnnl, c, x, w, b, y);
  } else {
    s = perforated(ctx->dnnl, d, T, x, w, b, y);
  }
  omp_set_num_threads(old);
  return s;
}

const char *pt__cpu_dnnl_describe(void) {
  static char buf[64];
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, sizeof buf, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  return buf;
}
