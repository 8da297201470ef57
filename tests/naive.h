/* Plain-loop reference ops (double accumulation) and helpers shared by the tests. */
#ifndef PT_TEST_NAIVE_H
#define PT_TEST_NAIVE_H

#include <stdint.h>

#include "backend/backend_iface.h"
#include "core/rng.h"
#include "kernels/igemm_layout.h"
#include "predtuner/exec.h"

void naive_conv2d(const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y);
void naive_linear(int n, int in, int out, const float *x, const float *w, const float *b, float *y);
void naive_pool2d(const pt_pool_desc *d, const float *x, float *y);
void naive_batchnorm2d(int n, int c, int64_t hw, float eps, const float *x, const float *w, const float *b,
                       const float *mean, const float *var, float *y);
void naive_softmax(int n, int c, const float *x, float *y);
/* Runs the whole graph with the naive ops (exact fp32): in (n, C, H, W) -> out (n, classes). */
void naive_run_graph(const pt_graph *g, const float *in, int n, float *out);

/* The fused implicit-GEMM convolution's reference (tests/test_igemm.c, test_cuda_igemm.c): x (n, h,
 * w, c) and y (n, oh, ow, k) NHWC, w (k, c, kh, kw); a plain loop over the knob definitions of
 * kernels/knob_math.h (double accumulation; sampling's kept weights times samp_scale), then the
 * fill of perforation's skipped rows or columns (naive_igemm_fill, also for a kernel's output). */
void naive_igemm_conv(const pt_igemm_conv *g, int samp_every, int samp_offset, float samp_scale, const float *x,
                      const float *w, const float *b, float *y);
void naive_igemm_fill(const pt_igemm_conv *g, float *y);
/* The implicit-GEMM kernels' view of a square-kernel convolution of n images of c x h x w into k
 * channels (output size from ks, st, pad), perforated by (perf_dir, stride, offset); kr..kdim unset. */
pt_igemm_conv naive_igemm_shape(int n, int c, int h, int w, int k, int ks, int st, int pad, int perf_dir,
                                int perf_stride, int perf_offset);

/* ||a - b|| / ||b|| (||b|| floored at 1e-30); NaN anywhere gives +inf. */
double norm_err(const float *a, const float *b, int64_t n);
void fill_uniform(pt_rng *r, float *x, int64_t n, float lo, float hi);
/* malloc'd buffer of n floats followed by `guard` sentinel floats. */
float *alloc_guarded(int64_t n, int guard);
/* 1 if the `guard` floats after x[n] still hold the sentinel. */
int guard_intact(const float *x, int64_t n, int guard);
/* Reads a whole file, malloc'ed with a NUL after its bytes (NULL on failure); *len gets its size. */
void *read_all(const char *path, size_t *len);
/* Writes len bytes to path; returns 0 on success. */
int write_all(const char *path, const void *data, size_t len);
/* Writes len bytes to /tmp/pt_<tag>_<pid>_<name> and returns that path (a static buffer, valid until
 * the next call), or NULL when the file cannot be written. */
const char *write_tmp_file(const char *tag, const char *name, const void *data, size_t len);
/* One of a few knob settings for op `op` of g, picked by v: convolutions get every kind (exact,
 * fp16, PromiseSim, row and column perforation, sampling); linear layers exact, fp16 or
 * PromiseSim; other ops exact or fp16. */
pt_op_exec knob_setting_of(const pt_graph *g, int op, int v);

#endif
