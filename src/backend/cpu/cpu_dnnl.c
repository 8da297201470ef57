/* Convolutions of the CPU backend on oneDNN (built with PT_DNNL): one primitive per shape, created
 * on first use and kept, in the layouts oneDNN prefers (src, weights and dst "any"), with the
 * reorders from and to the executor's NCHW counted in every call. Weights are reordered on each
 * call rather than cached by pointer: a host pointer says nothing about what it holds now (callers
 * may free and reuse it), and the reorder reads the weights once, as the convolution does. This
 * file runs exact convolutions and FP16Approx (rounded operands, fp32 accumulation, the rounded
 * epilogue of cpu_conv.c); cpu_dnnl_knobs.c runs perforation and sampling on the same primitives.
 * What takes this path and why is in docs/decisions.md ("The CPU kernel issue"). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

#include "backend/cpu/cpu_dnnl_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/tensor.h"

pt_status pt__dn_error(dnnl_status_t st, const char *what) {
  pt_status s = st == dnnl_out_of_memory ? PT_ENOMEM : st == dnnl_unimplemented ? PT_EUNSUPPORTED : PT_EBACKEND;
  return pt__error(s, "cpu conv2d (oneDNN): %s: %s%s", what, dnnl_status2str(st),
                   st == dnnl_out_of_memory ? " (out of memory)" : "");
}

pt_status pt__dn_grow(dn_buf *b, size_t need, const char *what) {
  if (need <= b->bytes) return PT_OK;
  free(b->p);
  b->bytes = 0;
  if (!(b->p = pt__aligned_alloc(64, pt__dn_up64(need))))
    return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for %zu bytes of %s", need, what);
  b->bytes = need;
  return PT_OK;
}

static void conv_destroy(dn_conv *c) {
  if (c->conv) dnnl_primitive_destroy(c->conv);
  if (c->r_src) dnnl_primitive_destroy(c->r_src);
  if (c->r_w) dnnl_primitive_destroy(c->r_w);
  if (c->r_dst) dnnl_primitive_destroy(c->r_dst);
}

void pt__cpu_dnnl_free(pt__cpu_dnnl *dn) {
  if (!dn) return;
  for (int i = 0; i < dn->n_c; i++) {
    conv_destroy(dn->c[i]);
    free(dn->c[i]);
  }
  for (int i = 0; i < dn->n_r; i++) dnnl_primitive_destroy(dn->r[i].r);
  if (dn->stream) dnnl_stream_destroy(dn->stream);
  if (dn->eng) dnnl_engine_destroy(dn->eng);
  free(dn->c);
  free(dn->r);
  dn_buf *bufs[] = {&dn->scratch, &dn->bx, &dn->bo, &dn->bw, &dn->fx, &dn->fw, &dn->fb};
  for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(bufs[i]->p);
  free(dn);
}

pt_status pt__dn_md_strided(int64_t n, int64_t c, int64_t h, int64_t w, const int64_t s[4], dnnl_memory_desc_t *md) {
  const dnnl_dims_t dims = {n, c, h, w};
  dnnl_dims_t st = {0}; /* the API reads DNNL_MAX_NDIMS strides */
  memcpy(st, s, 4 * sizeof *s);
  PT__DN_TRY(dnnl_memory_desc_init_by_strides(md, 4, dims, dnnl_f32, st), "strided view");
  return PT_OK;
}

pt_status pt__dn_md_blocked(const pt__cpu_dnnl *dn, int64_t n, int64_t c, int64_t h, int64_t w,
                            dnnl_memory_desc_t *md) {
  if (!dn->blk) return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): no blocked layout known on this CPU");
  const dnnl_dims_t dims = {n, c, h, w};
  PT__DN_TRY(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dn->blk_tag), "blocked layout");
  return PT_OK;
}

/* Whether a probe convolution (64 -> 64 channels, 8x8, 3x3) with activations in layout tag (any:
 * oneDNN's choice) has a JIT kernel; *got: the source layout it then takes. */
static int probe_layout(pt__cpu_dnnl *dn, dnnl_format_tag_t tag, dnnl_memory_desc_t *got) {
  const dnnl_dims_t src = {1, 64, 8, 8}, wt = {64, 64, 3, 3}, one = {1, 1};
  dnnl_memory_desc_t a, w, d;
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd;
  if (dnnl_memory_desc_init_by_tag(&a, 4, src, dnnl_f32, tag) != dnnl_success ||
      dnnl_memory_desc_init_by_tag(&w, 4, wt, dnnl_f32, dnnl_format_tag_any) != dnnl_success ||
      dnnl_memory_desc_init_by_tag(&d, 4, src, dnnl_f32, tag) != dnnl_success ||
      dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &a, &w, NULL, &d, one,
                                         one, one) != dnnl_success ||
      dnnl_primitive_desc_create(&pd, &cd, NULL, dn->eng, NULL) != dnnl_success)
    return 0;
  const char *impl = NULL;
  const int jit = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
                  strncmp(impl, "ref", 3) != 0;
  *got = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  dnnl_primitive_desc_destroy(pd);
  return jit;
}

/* The blocked layout for activations on this CPU (nChw16c with AVX-512, nChw8c with AVX2), from
 * probe convolutions; perforation and sampling share reorders through it. oneDNN's own choice
 * first; where that is another layout (channels last on some AVX-512 CPUs), the first blocked one
 * with a JIT kernel. */
static void probe_blocked(pt__cpu_dnnl *dn) {
  const dnnl_dims_t src = {1, 64, 8, 8};
  dnnl_memory_desc_t got, b16, b8;
  if (dnnl_memory_desc_init_by_tag(&b16, 4, src, dnnl_f32, dnnl_nChw16c) != dnnl_success ||
      dnnl_memory_desc_init_by_tag(&b8, 4, src, dnnl_f32, dnnl_nChw8c) != dnnl_success)
    return;
  if (probe_layout(dn, dnnl_format_tag_any, &got)) {
    if (dnnl_memory_desc_equal(&got, &b16)) dn->blk = 16, dn->blk_tag = dnnl_nChw16c;
    if (dnnl_memory_desc_equal(&got, &b8)) dn->blk = 8, dn->blk_tag = dnnl_nChw8c;
  }
  if (!dn->blk && probe_layout(dn, dnnl_nChw16c, &got)) dn->blk = 16, dn->blk_tag = dnnl_nChw16c;
  if (!dn->blk && probe_layout(dn, dnnl_nChw8c, &got)) dn->blk = 8, dn->blk_tag = dnnl_nChw8c;
}

static pt_status dn_create(pt__cpu_dnnl **out) {
  pt__cpu_dnnl *dn = pt__calloc(1, sizeof *dn);
  if (!dn) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory");
  dnnl_status_t st = dnnl_engine_create(&dn->eng, dnnl_cpu, 0);
  if (st == dnnl_success) st = dnnl_stream_create(&dn->stream, dn->eng, dnnl_stream_default_flags);
  if (st != dnnl_success) {
    pt__cpu_dnnl_free(dn);
    return pt__dn_error(st, "engine");
  }
  probe_blocked(dn);
  *out = dn;
  return PT_OK;
}

/* A reorder from a to b, or NULL when they are the same layout. */
static pt_status reorder_make(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b,
                              dnnl_primitive_t *r) {
  *r = NULL;
  if (dnnl_memory_desc_equal(a, b)) return PT_OK;
  dnnl_primitive_desc_t pd;
  PT__DN_TRY(dnnl_reorder_primitive_desc_create(&pd, a, dn->eng, b, dn->eng, NULL), "reorder");
  dnnl_status_t st = dnnl_primitive_create(r, pd);
  dnnl_primitive_desc_destroy(pd);
  return st == dnnl_success ? PT_OK : pt__dn_error(st, "reorder primitive");
}

/* The primitive descriptor of k: layouts "any" (or blocked), dilation, the sum post-op. A shape
 * oneDNN runs only with its reference implementation counts as unsupported: our kernels are faster. */
static pt_status conv_pd(pt__cpu_dnnl *dn, const dn_shape *k, dn_conv *c, dnnl_primitive_desc_t *pd) {
  const int G = (int)k->groups, wnd = G > 1 ? 5 : 4; /* grouped: weights (G, cout/G, cin/G, kh, kw) */
  const dnnl_dims_t bias = {k->cout}, strides = {k->sh, k->sw}, dil = {k->dh, k->dw}, pad_l = {k->pad_t, k->pad_l},
                    pad_r = {k->pad_b, k->pad_r};
  dnnl_dims_t wt = {k->cout, k->cin, k->kh, k->kw};
  if (G > 1) {
    const dnnl_dims_t gw = {G, k->cout / G, k->cin / G, k->kh, k->kw};
    memcpy(wt, gw, sizeof gw);
  }
  dnnl_memory_desc_t src, w, dst;
  PT__DN_TRY(dnnl_memory_desc_init_by_tag(&c->w_user, wnd, wt, dnnl_f32, G > 1 ? dnnl_goihw : dnnl_oihw), "weights");
  PT__DN_TRY(dnnl_memory_desc_init_by_tag(&c->b_md, 1, bias, dnnl_f32, dnnl_x), "bias");
  PT__DN_TRY(dnnl_memory_desc_init_by_tag(&w, wnd, wt, dnnl_f32, dnnl_format_tag_any), "weights");
  if (k->blocked) {
    PT__TRY(pt__dn_md_blocked(dn, k->n, k->cin, k->h, k->w, &src));
    PT__TRY(pt__dn_md_blocked(dn, k->n, k->cout, k->oh, k->ow, &dst));
  } else {
    const dnnl_dims_t sd = {k->n, k->cin, k->h, k->w}, dd = {k->n, k->cout, k->oh, k->ow};
    PT__TRY(pt__dn_md_strided(k->n, k->cin, k->h, k->w, k->xs, &c->src_user));
    PT__TRY(pt__dn_md_strided(k->n, k->cout, k->oh, k->ow, k->ys, &c->dst_user));
    PT__DN_TRY(dnnl_memory_desc_init_by_tag(&src, 4, sd, dnnl_f32, dnnl_format_tag_any), "src");
    PT__DN_TRY(dnnl_memory_desc_init_by_tag(&dst, 4, dd, dnnl_f32, dnnl_format_tag_any), "dst");
  }
  dnnl_convolution_desc_t cd;
  dnnl_status_t ds = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                                                  &src, &w, k->has_bias ? &c->b_md : NULL, &dst,
                                                                  strides, dil, pad_l, pad_r);
  if (ds == dnnl_invalid_arguments) /* a geometry oneDNN does not describe (padding): our kernels run it */
    return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): convolution geometry not accepted");
  if (ds != dnnl_success) return pt__dn_error(ds, "convolution");
  dnnl_primitive_attr_t attr = NULL;
  dnnl_post_ops_t po = NULL;
  dnnl_status_t st = dnnl_success;
  if (k->sum) {
    st = dnnl_primitive_attr_create(&attr);
    if (st == dnnl_success) st = dnnl_post_ops_create(&po);
    if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
    if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(attr, po);
  }
  if (st == dnnl_success) st = dnnl_primitive_desc_create(pd, &cd, attr, dn->eng, NULL);
  if (po) dnnl_post_ops_destroy(po);
  if (attr) dnnl_primitive_attr_destroy(attr);
  if (st != dnnl_success) return pt__dn_error(st, "convolution primitive descriptor");
  const char *impl = NULL;
  if (dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
      !strncmp(impl, "ref", 3)) {
    dnnl_primitive_desc_destroy(*pd);
    return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): only the reference convolution (%s)", impl);
  }
  return PT_OK;
}

static pt_status conv_make(pt__cpu_dnnl *dn, const dn_shape *k, dn_conv *c) {
  dnnl_primitive_desc_t pd;
  PT__TRY(conv_pd(dn, k, c, &pd));
  c->src_conv = *dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  c->w_conv = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  c->dst_conv = *dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  dnnl_status_t st = dnnl_primitive_create(&c->conv, pd);
  dnnl_primitive_desc_destroy(pd);
  if (st != dnnl_success) return pt__dn_error(st, "convolution primitive");
  PT__TRY(reorder_make(dn, &c->w_user, &c->w_conv, &c->r_w));
  if (k->blocked) return PT_OK;
  PT__TRY(reorder_make(dn, &c->src_user, &c->src_conv, &c->r_src));
  return reorder_make(dn, &c->dst_conv, &c->dst_user, &c->r_dst);
}

pt_status pt__dn_conv_get(pt__cpu_dnnl *dn, const dn_shape *k, dn_conv **out) {
  for (int i = 0; i < dn->n_c; i++)
    if (!memcmp(&dn->c[i]->key, k, sizeof *k)) {
      *out = dn->c[i];
      return dn->c[i]->unsupported ? pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): shape not supported") : PT_OK;
    }
  if (dn->n_c == dn->cap_c) {
    int cap = dn->cap_c ? 2 * dn->cap_c : 16;
    dn_conv **nc = pt__realloc(dn->c, (size_t)cap * sizeof *nc);
    if (!nc) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for %d primitives", cap);
    dn->c = nc;
    dn->cap_c = cap;
  }
  dn_conv *c = pt__calloc(1, sizeof *c); /* its own allocation: callers hold it while adding others */
  if (!c) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for a primitive");
  c->key = *k;
  pt_status s = conv_make(dn, k, c);
  if (s != PT_OK) {
    conv_destroy(c);
    if (s != PT_EUNSUPPORTED) {
      free(c);
      return s;
    }
    memset(c, 0, sizeof *c); /* remembered, so the shape is not tried again */
    c->key = *k;
    c->unsupported = 1;
  }
  dn->c[dn->n_c++] = c;
  *out = c;
  return s;
}

static pt_status mem(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *md, void *p, dnnl_memory_t *m) {
  PT__DN_TRY(dnnl_memory_create(m, md, dn->eng, p), "memory");
  return PT_OK;
}

static pt_status exec2(pt__cpu_dnnl *dn, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  PT__DN_TRY(dnnl_primitive_execute(r, dn->stream, 2, a), "reorder");
  return PT_OK;
}

static pt_status wait(pt__cpu_dnnl *dn) {
  PT__DN_TRY(dnnl_stream_wait(dn->stream), "stream");
  return PT_OK;
}


/* The convolution itself on memories m (src, weights, dst in the conv's layouts; bias or NULL). */
static pt_status conv_exec(pt__cpu_dnnl *dn, const dn_conv *c, dnnl_memory_t src, dnnl_memory_t w, dnnl_memory_t dst,
                           dnnl_memory_t b) {
  dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, dst}, {DNNL_ARG_BIAS, b}};
  PT__DN_TRY(dnnl_primitive_execute(c->conv, dn->stream, b ? 4 : 3, a), "running the convolution");
  return PT_OK;
}

pt_status pt__dn_conv_run(pt__cpu_dnnl *dn, const dn_conv *c, const float *x, const float *w, const float *b,
                          float *y) {
  const size_t s_b = c->r_src ? pt__dn_up64(dnnl_memory_desc_get_size(&c->src_conv)) : 0,
               w_b = c->r_w ? pt__dn_up64(dnnl_memory_desc_get_size(&c->w_conv)) : 0,
               d_b = c->r_dst ? dnnl_memory_desc_get_size(&c->dst_conv) : 0;
  PT__TRY(pt__dn_grow(&dn->scratch, s_b + w_b + d_b + 64, "reordered operands"));
  char *p = dn->scratch.p;
  void *xs = c->r_src ? p : (void *)x, *ws = c->r_w ? p + s_b : (void *)w, *ys = c->r_dst ? p + s_b + w_b : (void *)y;
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
  if (s == PT_OK) s = conv_exec(dn, c, m[3], m[4], m[5], m[6]);
  if (s == PT_OK && c->r_dst) s = exec2(dn, c->r_dst, m[5], m[2]);
  if (s == PT_OK) s = wait(dn);
  for (int i = 0; i < 7; i++)
    if (m[i]) dnnl_memory_destroy(m[i]);
  return s;
}

pt_status pt__dn_weights(pt__cpu_dnnl *dn, const dn_conv *c, const float *w, void *wc) {
  if (!c->r_w) {
    memcpy(wc, w, dnnl_memory_desc_get_size(&c->w_conv));
    return PT_OK;
  }
  dnnl_memory_t a = NULL, b = NULL;
  pt_status s = mem(dn, &c->w_user, (void *)w, &a);
  if (s == PT_OK) s = mem(dn, &c->w_conv, wc, &b);
  if (s == PT_OK) s = exec2(dn, c->r_w, a, b);
  if (s == PT_OK) s = wait(dn);
  if (a) dnnl_memory_destroy(a);
  if (b) dnnl_memory_destroy(b);
  return s;
}

pt_status pt__dn_conv_run_prepared(pt__cpu_dnnl *dn, const dn_conv *c, const void *xb, const void *wc,
                                   const float *b, void *yb) {
  dnnl_memory_t m[4] = {0}; /* src, weights, dst, bias */
  pt_status s = mem(dn, &c->src_conv, (void *)xb, &m[0]);
  if (s == PT_OK) s = mem(dn, &c->w_conv, (void *)wc, &m[1]);
  if (s == PT_OK) s = mem(dn, &c->dst_conv, yb, &m[2]);
  if (s == PT_OK && b) s = mem(dn, &c->b_md, (void *)b, &m[3]);
  if (s == PT_OK) s = conv_exec(dn, c, m[0], m[1], m[2], m[3]);
  if (s == PT_OK) s = wait(dn);
  for (int i = 0; i < 4; i++)
    if (m[i]) dnnl_memory_destroy(m[i]);
  return s;
}

pt_status pt__dn_conv_run_blocked(pt__cpu_dnnl *dn, const dn_conv *c, const void *xb, const float *w,
                                  const float *b, void *yb) {
  if (!c->r_w) return pt__dn_conv_run_prepared(dn, c, xb, w, b, yb);
  PT__TRY(pt__dn_grow(&dn->scratch, dnnl_memory_desc_get_size(&c->w_conv) + 64, "reordered weights"));
  PT__TRY(pt__dn_weights(dn, c, w, dn->scratch.p));
  return pt__dn_conv_run_prepared(dn, c, xb, dn->scratch.p, b, yb);
}

/* The reorder from -> to, made on first use and kept. */
static pt_status reorder_get(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                             dnnl_primitive_t *out) {
  for (int i = 0; i < dn->n_r; i++)
    if (dnnl_memory_desc_equal(&dn->r[i].from, from) && dnnl_memory_desc_equal(&dn->r[i].to, to)) {
      *out = dn->r[i].r;
      return PT_OK;
    }
  if (dn->n_r == dn->cap_r) {
    int cap = dn->cap_r ? 2 * dn->cap_r : 16;
    dn_reorder *nr = pt__realloc(dn->r, (size_t)cap * sizeof *nr);
    if (!nr) return pt__error(PT_ENOMEM, "cpu conv2d (oneDNN): out of memory for %d reorders", cap);
    dn->r = nr;
    dn->cap_r = cap;
  }
  dnnl_primitive_t r;
  PT__TRY(reorder_make(dn, from, to, &r));
  if (!r) return pt__error(PT_EINVAL, "cpu conv2d (oneDNN): a reorder between equal layouts");
  dn->r[dn->n_r++] = (dn_reorder){*from, *to, r};
  *out = r;
  return PT_OK;
}

pt_status pt__dn_reorder_ready(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to) {
  if (dnnl_memory_desc_equal(from, to)) return PT_OK;
  dnnl_primitive_t r;
  return reorder_get(dn, from, to, &r);
}

pt_status pt__dn_reorder(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *from, const void *src,
                         const dnnl_memory_desc_t *to, void *dst) {
  if (dnnl_memory_desc_equal(from, to)) { /* e.g. a view that already is the wanted layout */
    memcpy(dst, src, dnnl_memory_desc_get_size(from));
    return PT_OK;
  }
  dnnl_primitive_t r;
  PT__TRY(reorder_get(dn, from, to, &r));
  dnnl_memory_t a = NULL, b = NULL;
  pt_status s = mem(dn, from, (void *)src, &a);
  if (s == PT_OK) s = mem(dn, to, dst, &b);
  if (s == PT_OK) s = exec2(dn, r, a, b);
  if (s == PT_OK) s = wait(dn);
  if (a) dnnl_memory_destroy(a);
  if (b) dnnl_memory_destroy(b);
  return s;
}

/* Which convolutions go to oneDNN under each PT_CPU_DNNL mode. The default's choice per knob class
 * is the knob benchmark's (bench/RESULTS.md, "knob speedups against the oneDNN convolution" and
 * "sampling and perforation stride 3 on oneDNN", "stride 4 on oneDNN"): exact convolutions and
 * FP16Approx, perforation at every stride, and where oneDNN runs AVX-512 (pt__cpu_dnnl_conv2d)
 * sampling every 2 (every 3 on maps up to 8 wide); the other sampling is faster on the backend's
 * own kernels. */
int pt__cpu_dnnl_takes(const pt_conv_desc *d, int mode) {
  if (d->perf_dir && d->samp_every) return 0;
  switch (mode) {
  case PT_CPU_DNNL_ALL: return 1;
  case PT_CPU_DNNL_DEFAULT:
    if (d->samp_every) return d->samp_every == 2 || (d->samp_every == 3 && d->ow <= 8);
    return 1;
  case PT_CPU_DNNL_EXACT: return !d->fp16 && !d->perf_dir && !d->samp_every;
  default: return 0;
  }
}

dn_shape pt__dn_shape_exact(const pt_conv_desc *d, int has_bias, int threads) {
  dn_shape k = {.n = d->n, .cin = d->cin, .h = d->h, .w = d->w, .cout = d->cout, .oh = d->oh, .ow = d->ow,
                .kh = d->kh, .kw = d->kw, .sh = d->sh, .sw = d->sw, .pad_t = d->ph, .pad_l = d->pw,
                .groups = d->groups, .has_bias = has_bias, .threads = threads};
  /* PyTorch's padding is symmetric; the far side is what makes the output size come out */
  k.pad_b = (d->oh - 1) * d->sh + d->kh - d->h - d->ph;
  k.pad_r = (d->ow - 1) * d->sw + d->kw - d->w - d->pw;
  const int64_t xs[4] = {(int64_t)d->cin * d->h * d->w, (int64_t)d->h * d->w, d->w, 1},
                ys[4] = {(int64_t)d->cout * d->oh * d->ow, (int64_t)d->oh * d->ow, d->ow, 1};
  memcpy(k.xs, xs, sizeof xs);
  memcpy(k.ys, ys, sizeof ys);
  return k;
}

/* Exact (fp32, or FP16Approx on rounded operands: the bias and the rounding in the epilogue). */
static pt_status exact(pt__cpu_dnnl *dn, const pt_conv_desc *d, int T, const float *x, const float *w,
                       const float *b, float *y) {
  const dn_shape k = pt__dn_shape_exact(d, b && !d->fp16, T);
  dn_conv *c;
  PT__TRY(pt__dn_conv_get(dn, &k, &c));
  PT__TRY(pt__dn_conv_run(dn, c, x, w, d->fp16 ? NULL : b, y));
  if (d->fp16) pt__dn_fp16_epilogue(d, b, y, T);
  return PT_OK;
}

void pt__dn_fp16_epilogue(const pt_conv_desc *d, const float *b, float *y, int threads) {
  const int64_t P = (int64_t)d->oh * d->ow;
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t pl = 0; pl < (int64_t)d->n * d->cout; pl++) pt__cpu_conv_epilogue(d, y + pl * P, 0, b ? &b[pl % d->cout] : NULL);
}

void pt__dn_round16(float *dst, const float *src, int64_t n, int T) {
  const int64_t chunk = 1 << 14;
#pragma omp parallel for num_threads(T) schedule(static)
  for (int64_t i = 0; i < n; i += chunk) {
    const size_t len = (size_t)(n - i < chunk ? n - i : chunk);
    if (dst != src) memcpy(dst + i, src + i, len * sizeof *dst);
    pt_round_f16_array(dst + i, len);
  }
}

/* A binary16-rounded copy of src (n floats) in buf. */
static pt_status rounded(dn_buf *buf, const float *src, int64_t n, int T, const float **out) {
  PT__TRY(pt__dn_grow(buf, (size_t)(n > 0 ? n : 1) * sizeof(float), "binary16 operands"));
  pt__dn_round16(buf->p, src, n, T);
  *out = buf->p;
  return PT_OK;
}

pt_status pt__cpu_dnnl_conv2d(pt_cpu_ctx *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y) {
  if (!ctx->dnnl) PT__TRY(dn_create(&ctx->dnnl));
  pt__cpu_dnnl *dn = ctx->dnnl;
  /* sampling by default only where oneDNN runs AVX-512 (its nChw16c layout): with AVX2 the own
   * direct kernel measured faster (bench/RESULTS.md, "sampling and perforation stride 3 on oneDNN") */
  if (d->samp_every && ctx->use_dnnl == PT_CPU_DNNL_DEFAULT && dn->blk != 16)
    return pt__error(PT_EUNSUPPORTED, "cpu conv2d (oneDNN): sampling runs on oneDNN by default only with AVX-512");
  const int T = ctx->threads > 0 ? ctx->threads : 1, old = omp_get_max_threads();
  omp_set_num_threads(T); /* oneDNN's OpenMP runtime takes the calling thread's count */
  pt_status s = PT_OK;
  const float *xe = x, *we = w, *be = b;
  if (d->fp16) { /* sampling scales, and so rounds, its own copy of the weights; both knobs round x as they copy it */
    if (!d->samp_every && !d->perf_dir) s = rounded(&dn->fx, x, (int64_t)d->n * d->cin * d->h * d->w, T, &xe);
    if (s == PT_OK && d->fp16 == PT_FP16_ROUND && !d->samp_every)
      s = rounded(&dn->fw, w, (int64_t)d->cout * (d->cin / d->groups) * d->kh * d->kw, T, &we);
    if (s == PT_OK && b && d->fp16 == PT_FP16_ROUND) s = rounded(&dn->fb, b, d->cout, 1, &be);
  }
  if (s == PT_OK)
    s = d->perf_dir     ? pt__dn_perforated(dn, d, T, xe, we, be, y)
        : d->samp_every ? pt__dn_sampled(dn, d, T, xe, we, be, y)
                        : exact(dn, d, T, xe, we, be, y);
  omp_set_num_threads(old);
  return s;
}

const char *pt__cpu_dnnl_describe(void) {
  static char buf[64];
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, sizeof buf, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
  return buf;
}
