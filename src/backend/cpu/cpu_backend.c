/* The CPU backend: host memory, OpenMP across images, OpenBLAS for GEMMs. It is the reference every
 * other backend is tested against, and a real fallback when there is no GPU. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/cpu_internal.h"
#include "backend/cpu/pt_blas.h"
#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/tensor.h"

static void cpu_destroy(void *ctx) {
  pt__cpu_dnnl_free(((pt_cpu_ctx *)ctx)->dnnl);
  free(ctx);
}
static const char *cpu_describe(void *ctx) { return ((pt_cpu_ctx *)ctx)->desc; }

static pt_status cpu_alloc(void *ctx, size_t bytes, void **ptr) {
  (void)ctx;
  size_t rounded = (bytes + 63) & ~(size_t)63;
  *ptr = pt__aligned_alloc(64, rounded ? rounded : 64);
  if (!*ptr) return pt__error(PT_ENOMEM, "cpu backend: cannot allocate %zu bytes", bytes);
  return PT_OK;
}
static void cpu_release(void *ctx, void *ptr) {
  (void)ctx;
  free(ptr);
}
static pt_status cpu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
  (void)ctx;
  memcpy(dst, src, bytes);
  return PT_OK;
}
static pt_status cpu_sync(void *ctx) {
  (void)ctx;
  return PT_OK;
}

static void cpu_conv_paths(void *ctx, int64_t counts[PT_CONV_PATHS]) {
  for (int i = 0; i < PT_CONV_PATHS; i++) counts[i] += ((pt_cpu_ctx *)ctx)->paths[i];
}

static pt_backend_proc cpu_get_proc(void *ctx, const char *name) {
  (void)ctx;
  return !strcmp(name, PT_BACKEND_PROC_CONV_PATHS) ? (pt_backend_proc)cpu_conv_paths : NULL;
}

static const pt_backend_iface pt__cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .describe = cpu_describe,
    .alloc = cpu_alloc,
    .release = cpu_release,
    .upload = cpu_copy,
    .download = cpu_copy,
    .synchronize = cpu_sync,
    .copy = cpu_copy,
    .conv2d = pt__cpu_conv2d,
    .linear = pt__cpu_linear,
    .activation = pt__cpu_activation,
    .pool2d = pt__cpu_pool2d,
    .batchnorm2d = pt__cpu_batchnorm2d,
    .add = pt__cpu_add,
    .softmax = pt__cpu_softmax,
    .quantize = pt__cpu_quantize,
    .promise_noise = pt__cpu_promise_noise,
    .minmax = pt__cpu_minmax,
    .round_f16 = pt__cpu_round_f16,
    .get_proc = cpu_get_proc,
};

/* PT_CPU_DNNL: 0 = never, exact = exact convolutions only, all = every knob it can run too (for the
 * benchmark that decides what takes it; docs/decisions.md), default (or unset) = what that
 * benchmark chose. Without oneDNN every value means 0. */
static pt_status dnnl_mode(int have, int *mode) {
  const char *v = getenv("PT_CPU_DNNL");
  static const char *names[] = {"0", "exact", "default", "all"};
  *mode = PT_CPU_DNNL_DEFAULT;
  if (v && *v) {
    *mode = -1;
    for (int i = 0; i < 4; i++)
      if (!strcmp(v, names[i])) *mode = i;
    if (*mode < 0)
      return pt__error(PT_EINVAL, "cpu backend: PT_CPU_DNNL=%.40s is not one of 0, exact, default, all", v);
  }
  if (!have) *mode = PT_CPU_DNNL_OFF;
  return PT_OK;
}

static int cpu_available(const char **why) {
  *why = "";
  return 1;
}

static pt_status cpu_create(int threads, pt_backend **out) {
  pt_backend *be = pt__calloc(1, sizeof *be);
  pt_cpu_ctx *c = pt__calloc(1, sizeof *c);
  if (!be || !c) {
    free(be);
    free(c);
    return pt__error(PT_ENOMEM, "cpu backend: out of memory");
  }
  const char *dn = pt__cpu_dnnl_describe();
  pt_status st = dnnl_mode(dn != NULL, &c->use_dnnl);
  if (st != PT_OK) {
    free(be);
    free(c);
    return st;
  }
  c->threads = threads > 0 ? threads : omp_get_max_threads();
  /* Each OpenMP thread runs its own single-threaded GEMM on its share of the images. */
  pt__blas_set_threads(1);
  snprintf(c->desc, sizeof c->desc, "CPU, %d thread%s, %s%s%s", c->threads, c->threads == 1 ? "" : "s",
           pt__blas_describe(), c->use_dnnl ? ", " : "", c->use_dnnl ? dn : "");
  be->iface = &pt__cpu_iface;
  be->ctx = c;
  *out = be;
  return PT_OK;
}

const pt_backend_reg pt__backend_reg_cpu = {.name = "cpu", .available = cpu_available, .create = cpu_create};

float *pt__cpu_rounded_copy(const float *src, int64_t n) {
  float *d = pt__malloc((size_t)(n > 0 ? n : 1) * sizeof *d);
  if (!d) return NULL;
  memcpy(d, src, (size_t)n * sizeof *d);
  pt_round_f16_array(d, (size_t)n);
  return d;
}
