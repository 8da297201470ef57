#ifndef PT_CPU_INTERNAL_H
#define PT_CPU_INTERNAL_H

#include "backend/backend_ext.h"

typedef struct pt__cpu_dnnl pt__cpu_dnnl;

/* Which convolutions run on oneDNN (PT_CPU_DNNL): none, exact ones, exact ones and the perforations
 * the knob benchmark found faster there (the default), exact ones and every perforation. */
enum { PT_CPU_DNNL_OFF = 0, PT_CPU_DNNL_EXACT, PT_CPU_DNNL_DEFAULT, PT_CPU_DNNL_ALL };

/* One backend's calls come one at a time (the executor's contract): the oneDNN state below, made on
 * first use, and its kept buffers are not guarded for concurrent convolutions. */
typedef struct pt_cpu_ctx {
  int threads;
  char desc[160];
  pt__cpu_dnnl *dnnl; /* oneDNN's engine and primitives (cpu_dnnl.c), made on first use */
  int use_dnnl;       /* PT_CPU_DNNL_*: OFF when built without oneDNN */
  int64_t paths[PT_CONV_PATHS]; /* convolutions run per path (the "conv_paths" feature) */
} pt_cpu_ctx;

/* ---- oneDNN (cpu_dnnl.c with PT_DNNL, else cpu_dnnl_none.c) ---- */
/* Whether the convolution d is tried on oneDNN under mode (PT_CPU_DNNL_*; never without it).
 * pt__cpu_dnnl_conv2d returns PT_EUNSUPPORTED for a shape oneDNN has no convolution for; the caller
 * then runs its own. */
int pt__cpu_dnnl_takes(const pt_conv_desc *d, int mode);
pt_status pt__cpu_dnnl_conv2d(pt_cpu_ctx *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y);
void pt__cpu_dnnl_free(pt__cpu_dnnl *dn);
/* "oneDNN 2.6.3", or NULL without it. */
const char *pt__cpu_dnnl_describe(void);

pt_status pt__cpu_conv2d(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y);
pt_status pt__cpu_linear(void *ctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                         float *y);
pt_status pt__cpu_activation(void *ctx, pt_act act, int64_t count, int fp16, const float *x, float *y);
pt_status pt__cpu_pool2d(void *ctx, const pt_pool_desc *d, const float *x, float *y);
pt_status pt__cpu_batchnorm2d(void *ctx, int n, int c, int64_t hw, float eps, int fp16, const float *x, const float *w,
                              const float *b, const float *mean, const float *var, float *y);
pt_status pt__cpu_add(void *ctx, int64_t count, int fp16, const float *a, const float *b, float *y);
pt_status pt__cpu_softmax(void *ctx, int n, int c, int fp16, const float *x, float *y);

pt_status pt__cpu_quantize(void *ctx, int64_t count, float lo, float hi, const float *x, float *y);
pt_status pt__cpu_promise_noise(void *ctx, int64_t count, float scale, uint64_t key, uint64_t first, const float *x,
                                float *y);
pt_status pt__cpu_round_f16(void *ctx, int64_t count, const float *x, float *y);
pt_status pt__cpu_minmax(void *ctx, int64_t count, const float *x, float range[2]);

/* The epilogue of one output plane (oh, ow) of convolution d, for every path that computed it:
 * with fill, the skipped rows or columns of a perforation filled from the computed ones (in fp16
 * the convolution rounded first); then the bias *bias (NULL: none); in fp16 the final rounding
 * (cpu_conv.c). */
void pt__cpu_conv_epilogue(const pt_conv_desc *d, float *plane, int fill, const float *bias);

/* Row o (ow floats) of column perforation d's output: its skipped columns filled from their
 * neighbours, in fp16 rounded as the epilogue does (cpu_conv.c; for it and for cpu_direct.c). */
void pt__cpu_fill_cols_row(const pt_conv_desc *d, float *o);

/* A copy of src rounded to binary16 (for the fp16 path); NULL on allocation failure. */
float *pt__cpu_rounded_copy(const float *src, int64_t n);

/* ---- the direct convolution over kept filter elements (cpu_direct.c; AVX2 + FMA, AVX-512) ---- */
/* How it cuts d: nco output channels x px pixels a micro-tile, in vectors of v floats (8: AVX2,
 * 16: AVX-512), two rows a micro-tile on maps v wide; the reduction in chunks of chunk input
 * channels (a micro-tile's input lines for them fit in half of L1). */
typedef struct pt__cpu_direct_plan {
  int v, nco, px, two_rows, chunk;
  int pairs; /* AVX-512 on maps 8 wide: a vector is two rows (cpu_direct.c) */
  /* column perforation: its stride cs (the kept columns are cs - 1 phases x = ph + cs * t, each
   * computed as a row of its own from a copy of the input split into cs phases of lq floats);
   * 0 otherwise */
  int cs, lq, lanes; /* lanes: the most a phase's row takes */
  int fill; /* column perforation: fill the skipped columns of each finished row (the caller sets it) */
} pt__cpu_direct_plan;
/* Whether this CPU has it (AVX2 + FMA). */
int pt__cpu_direct_available(void);
/* Whether it takes d (groups 1, stride 1; every output column, rows of 16+ pixels or maps 8 wide,
 * with AVX-512 not row perforation on maps 8 wide; or column perforation whose phases fill at
 * least 3/4 of the vector lanes they take), and then its plan: AVX-512 where the CPU has it,
 * unless PT_CPU_DIRECT_ISA=avx2. */
int pt__cpu_direct_takes(const pt_conv_desc *d, int all_cols, pt__cpu_direct_plan *plan);
/* Packed weights: floats for nk kept elements, and w (cout, nk) packed into wp. */
int64_t pt__cpu_direct_packed_size(const pt_conv_desc *d, int nk);
void pt__cpu_direct_pack(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const float *w, int nk, float *wp);
/* Floats of scratch one thread needs for blocks whose input rows span at most span rows (the first
 * computed row's first input row to the last one's last). */
int64_t pt__cpu_direct_scratch(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, int span);
/* Rows rows[0..nr) (increasing) of y (cout, oh, ow), one image's output, = the convolution of its
 * input x (cin, h, w) over the nk kept elements krows (flat (c, ki, kj)) with packed wp, plus bias
 * (or NULL); the other rows are left alone. In fp16 it reads x rounded to binary16 (it rounds its
 * copy of the rows): pass x as it is. */
void pt__cpu_direct_block(const pt__cpu_direct_plan *pl, const pt_conv_desc *d, const int *krows, int nk,
                          const float *wp, const float *x, const int *rows, int nr, const float *bias, float *y,
                          float *scratch);

#endif
