/* What the oneDNN files of the CPU backend share (built with PT_DNNL only): the primitive cache,
 * the reorders and the scratch buffers. cpu_dnnl.c owns them and runs exact convolutions;
 * cpu_dnnl_knobs.c runs perforation and sampling on them in the engine's blocked layout. */
#ifndef PT_CPU_DNNL_INTERNAL_H
#define PT_CPU_DNNL_INTERNAL_H

#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/cpu_internal.h"

/* One convolution as oneDNN runs it. Either on (strided) views of the caller's NCHW tensors, with
 * the reorders to and from oneDNN's preferred layouts, or (blocked) on src and dst already in the
 * engine's blocked layout (nChw8c or nChw16c), so that several convolutions share one reorder. */
typedef struct dn_shape {
  int64_t n, cin, h, w, cout, oh, ow, kh, kw, sh, sw, dh, dw, pad_t, pad_b, pad_l, pad_r, groups, has_bias, threads;
  int64_t sum;     /* dst += the convolution (oneDNN's sum post-op) */
  int64_t blocked; /* src and dst in the engine's blocked layout, no reorders of them */
  int64_t xs[4], ys[4]; /* strides of the input and output views (elements); unused when blocked */
} dn_shape;

/* One shape's convolution: its primitive and the reorders around it (NULL where the layouts agree). */
typedef struct dn_conv {
  dn_shape key;
  int unsupported; /* oneDNN has no fast convolution for this shape: the backend's own kernels run it */
  dnnl_primitive_t conv, r_src, r_w, r_dst;
  dnnl_memory_desc_t src_user, src_conv, w_user, w_conv, b_md, dst_conv, dst_user;
} dn_conv;

typedef struct dn_reorder {
  dnnl_memory_desc_t from, to;
  dnnl_primitive_t r;
} dn_reorder;

/* A kept buffer that grows to the largest request (64-byte aligned). */
typedef struct dn_buf {
  void *p;
  size_t bytes;
} dn_buf;

struct pt__cpu_dnnl {
  dnnl_engine_t eng;
  dnnl_stream_t stream;
  int blk;                 /* channels per block of the blocked layout (8 or 16); 0: none known */
  dnnl_format_tag_t blk_tag; /* dnnl_nChw8c or dnnl_nChw16c */
  dn_conv **c; /* each its own allocation, so that a dn_conv * stays valid as others are added */
  int n_c, cap_c;
  dn_reorder *r;
  int n_r, cap_r;
  dn_buf scratch; /* reordered operands of one convolution: src, weights, dst */
  dn_buf bx;      /* the input in the blocked layout (perforation, sampling) */
  dn_buf bo;      /* blocked outputs: perforation's kept classes, sampling's sum */
  dn_buf bw;      /* a sampling piece's weights */
  dn_buf fx, fw, fb; /* fp16: the input (of exact convolutions), weights and bias rounded to binary16 */
};

pt_status pt__dn_error(dnnl_status_t st, const char *what);
#define PT__DN_TRY(call, what)                                         \
  do {                                                                 \
    dnnl_status_t dn_st_ = (call);                                     \
    if (dn_st_ != dnnl_success) return pt__dn_error(dn_st_, what);     \
  } while (0)

pt_status pt__dn_grow(dn_buf *b, size_t need, const char *what);
/* b rounded up to the buffers' 64-byte alignment. */
static inline size_t pt__dn_up64(size_t b) { return (b + 63) & ~(size_t)63; }
/* FP16Approx's epilogue on every plane of y (n, cout, oh, ow) computed without bias: the bias b
 * (NULL: none), the rounding (cpu_conv.c's, as the own kernels do it). */
void pt__dn_fp16_epilogue(const pt_conv_desc *d, const float *b, float *y, int threads);
/* src (n floats) rounded to binary16 into dst (dst == src: in place), chunk by chunk on T threads. */
void pt__dn_round16(float *dst, const float *src, int64_t n, int T);
/* The primitive of shape k, made on first use; PT_EUNSUPPORTED when oneDNN has none (or only a
 * reference implementation) for it. */
pt_status pt__dn_conv_get(pt__cpu_dnnl *dn, const dn_shape *k, dn_conv **out);
/* c on the caller's tensors (x, y in c's user layouts), with the reorders; b may be NULL. */
pt_status pt__dn_conv_run(pt__cpu_dnnl *dn, const dn_conv *c, const float *x, const float *w, const float *b,
                          float *y);
/* A blocked c: src xb and dst yb already in the blocked layout; w (oihw or goihw) is reordered. */
pt_status pt__dn_conv_run_blocked(pt__cpu_dnnl *dn, const dn_conv *c, const void *xb, const float *w,
                                  const float *b, void *yb);
/* w (oihw or goihw) into wc in c's weights layout (dnnl_memory_desc_get_size(&c->w_conv) bytes),
 * for calls of pt__dn_conv_run_prepared that share one reorder. */
pt_status pt__dn_weights(pt__cpu_dnnl *dn, const dn_conv *c, const float *w, void *wc);
/* A blocked c on weights wc already in its layout (pt__dn_weights). */
pt_status pt__dn_conv_run_prepared(pt__cpu_dnnl *dn, const dn_conv *c, const void *xb, const void *wc,
                                   const float *b, void *yb);
/* The exact convolution d as one oneDNN convolution over the caller's whole NCHW tensors. */
dn_shape pt__dn_shape_exact(const pt_conv_desc *d, int has_bias, int threads);
/* The reorder from -> to made (and cached) now, so that a later pt__dn_reorder cannot fail as
 * unsupported after the caller has written part of its output. */
pt_status pt__dn_reorder_ready(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to);
/* from -> to through a cached reorder primitive (a copy where the layouts are equal). */
pt_status pt__dn_reorder(pt__cpu_dnnl *dn, const dnnl_memory_desc_t *from, const void *src,
                         const dnnl_memory_desc_t *to, void *dst);
/* (n, c, h, w) float32: dense in the blocked layout, or a view with element strides s. */
pt_status pt__dn_md_blocked(const pt__cpu_dnnl *dn, int64_t n, int64_t c, int64_t h, int64_t w,
                            dnnl_memory_desc_t *md);
pt_status pt__dn_md_strided(int64_t n, int64_t c, int64_t h, int64_t w, const int64_t s[4], dnnl_memory_desc_t *md);

/* cpu_dnnl_knobs.c: d perforated or sampled on oneDNN; w, b already rounded where d->fp16 asks,
 * x not: both round it as they copy it into their blocked layout. PT_EUNSUPPORTED, before anything is
 * written, when oneDNN cannot take the shape. */
pt_status pt__dn_perforated(pt__cpu_dnnl *dn, const pt_conv_desc *d, int threads, const float *x, const float *w,
                            const float *b, float *y);
pt_status pt__dn_sampled(pt__cpu_dnnl *dn, const pt_conv_desc *d, int threads, const float *x, const float *w,
                         const float *b, float *y);

#endif
