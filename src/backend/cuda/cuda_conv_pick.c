/* Which variant runs a convolution: the environment's, or the fastest correct one, chosen on the first
 * call of each shape and knob and cached. Every variant runs twice (the first run finds cuDNN's
 * algorithm and warms the caches), the second timed with CUDA events; the first variant that runs is
 * the reference (cuDNN where it can, then the GEMM path, both checked against the CPU by the test
 * suite), and a later one whose output is non-finite or further from it than rounding explains is
 * never chosen — so a kernel that computes wrong values on some GPU or shape costs time once, never
 * a result; one that faults ends the run with an error naming it. */
#include <math.h>
#include <string.h>

#include "backend/cuda/cuda_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/log.h"

typedef pt_status (*conv_fn)(pt_cuda_ctx *, const pt_conv_desc *, const float *, const float *, const float *, float *);

static const char *const NAMES[PT_CU_NVAR] = {"auto", "cudnn", "gemm", "igemm"};

const char *pt__cuda_variant_name(pt_cu_variant v) { return v >= 0 && v < PT_CU_NVAR ? NAMES[v] : "?"; }

int pt__cuda_variant_of(const char *name) {
  for (int v = 0; v < PT_CU_NVAR; v++)
    if (!strcmp(name, NAMES[v])) return v;
  return -1;
}

static conv_fn variant_fn(pt_cu_variant v, const pt_conv_desc *d) {
  if (v == PT_CU_VAR_GEMM) return pt__cuda_conv_gemm;
  if (v == PT_CU_VAR_IGEMM) return pt__cuda_conv_igemm;
  return d->perf_dir ? pt__cuda_conv_perf_cudnn : d->samp_every ? pt__cuda_conv_samp_cudnn : pt__cuda_conv_cudnn;
}

static const char *kind(const pt_conv_desc *d) {
  return d->perf_dir ? "perforation" : d->samp_every ? "sampling" : "exact";
}

/* Runs variant v. One that cannot run this shape (unsupported, a launch it cannot make, no memory
 * for its scratch) is not an error here: another covers it. A fault that leaves the context unusable
 * (an illegal address, found by synchronising) is. */
static pt_status try_variant(pt_cuda_ctx *c, pt_cu_variant v, const pt_conv_desc *d, const float *x, const float *w,
                             const float *b, float *y) {
  pt_status s = variant_fn(v, d)(c, d, x, w, b, y);
  if (s == PT_EUNSUPPORTED || s == PT_EBACKEND || s == PT_ENOMEM) {
    pt_log(PT_LOG_DEBUG, "cuda conv: variant %s failed (%s)", NAMES[v], pt_last_error());
    cudaGetLastError();
    cudaError_t e = cudaStreamSynchronize(c->ln->stream);
    if (e != cudaSuccess)
      return pt__error(PT_EBACKEND, "cuda conv: variant %s faulted: %s", NAMES[v], cudaGetErrorString(e));
    return PT_EUNSUPPORTED;
  }
  return s;
}

/* Normalised distance of y from ref that two correct variants can differ by: each is within the
 * suite's 1e-5 (fp32) / 2e-3 (fp16) of the CPU, so within twice that of each other, with a margin;
 * an indexing error gives distances of order 1. */
static double tolerance(const pt_conv_desc *d) { return d->fp16 ? 5e-3 : 5e-5; }

/* Times variant v into y (ms: +inf when it cannot run); a fatal error (a fault) is returned. */
static pt_status time_variant(pt_cuda_ctx *c, pt_cu_variant v, const pt_conv_desc *d, const float *x, const float *w,
                              const float *b, float *y, cudaEvent_t e0, cudaEvent_t e1, float *ms) {
  *ms = INFINITY;
  pt_status r = try_variant(c, v, d, x, w, b, y);
  if (r == PT_OK) {
    cudaEventRecord(e0, c->ln->stream);
    r = try_variant(c, v, d, x, w, b, y);
    cudaEventRecord(e1, c->ln->stream);
    if (r != PT_OK) return r == PT_EUNSUPPORTED ? PT_OK : r;
    cudaError_t e = cudaEventSynchronize(e1);
    if (e != cudaSuccess) return pt__error(PT_EBACKEND, "cuda conv: variant %s faulted: %s", NAMES[v], cudaGetErrorString(e));
    cudaEventElapsedTime(ms, e0, e1);
  }
  return r == PT_EUNSUPPORTED ? PT_OK : r;
}

/* y against the reference: keeps *ms, or makes it +inf (logged) when y disagrees. */
static pt_status check_variant(pt_cuda_ctx *c, pt_cu_variant v, pt_cu_variant ref_v, const pt_conv_desc *d,
                               const float *y, const float *ref, float *ms) {
  void *acc;
  double h[3];
  const int64_t ny = (int64_t)d->n * d->cout * d->oh * d->ow;
  PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_RED, 3 * sizeof(double), &acc));
  PT__TRY(pt__cu_norm_err(c->ln->stream, ny, y, ref, acc, h));
  const double err = h[1] > 0 ? sqrt(h[0] / h[1]) : sqrt(h[0]);
  if (h[2] == 0 && err <= tolerance(d)) return PT_OK;
  pt_log(PT_LOG_WARN, "cuda conv %dx%dx%dx%d -> %d (%s%s): variant %s disagrees with %s (%.0f non-finite, normalised "
         "error %.3g); not used", d->n, d->cin, d->h, d->w, d->cout, kind(d), d->fp16 ? ", fp16" : "", NAMES[v],
         NAMES[ref_v], h[2], err);
  *ms = INFINITY;
  return PT_OK;
}

/* Times and checks every variant; out: the fastest that agrees. y is left holding anything. */
static pt_status choose(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                        float *y, float ms[PT_CU_NVAR], pt_cu_variant *out) {
  cudaEvent_t e0, e1;
  PT_CUDA_CHECK(cudaEventCreate(&e0));
  if (cudaEventCreate(&e1) != cudaSuccess) {
    cudaEventDestroy(e0);
    return pt__error(PT_EBACKEND, "cuda conv: cudaEventCreate failed");
  }
  const int64_t ny = (int64_t)d->n * d->cout * d->oh * d->ow;
  void *ref = NULL;
  pt_cu_variant ref_v = PT_CU_VAR_AUTO;
  /* other lanes' work would share the GPU with the timed runs and skew the choice */
  pt_status s = pt__cuda_sync_all(c);
  for (int v = PT_CU_VAR_CUDNN; v < PT_CU_NVAR && s == PT_OK; v++) {
    s = time_variant(c, (pt_cu_variant)v, d, x, w, b, y, e0, e1, &ms[v]);
    if (s != PT_OK || isinf(ms[v])) continue;
    if (ref_v == PT_CU_VAR_AUTO) { /* the first that runs is the reference */
      s = pt__cuda_scratch(c, PT_CU_SCR_REF, (size_t)ny * sizeof(float), &ref);
      if (s == PT_OK && cudaMemcpyAsync(ref, y, (size_t)ny * sizeof(float), cudaMemcpyDeviceToDevice, c->ln->stream) !=
                            cudaSuccess)
        s = pt__error(PT_EBACKEND, "cuda conv: %s", cudaGetErrorString(cudaGetLastError()));
      ref_v = (pt_cu_variant)v;
    } else {
      s = check_variant(c, (pt_cu_variant)v, ref_v, d, y, ref, &ms[v]);
    }
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  if (ref && cudaStreamSynchronize(c->ln->stream) == cudaSuccess) { /* only choices need the copy */
    cudaFree(c->ln->scr[PT_CU_SCR_REF]);
    c->ln->scr[PT_CU_SCR_REF] = NULL, c->ln->scr_bytes[PT_CU_SCR_REF] = 0;
  }
  PT__TRY(s);
  *out = PT_CU_VAR_AUTO;
  for (int v = PT_CU_VAR_CUDNN; v < PT_CU_NVAR; v++)
    if (!isinf(ms[v]) && (*out == PT_CU_VAR_AUTO || ms[v] < ms[*out])) *out = (pt_cu_variant)v;
  if (*out == PT_CU_VAR_AUTO) return pt__error(PT_EBACKEND, "cuda conv: no variant could run this convolution");
  return PT_OK;
}

/* The AUTO choice for this shape and knob, from the cache or (fresh) made now. */
static pt_status pick_variant(pt_cuda_ctx *c, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y, pt_cu_variant *out) {
  int key[24] = {d->n, d->cin, d->h, d->w, d->cout, d->kh, d->kw, d->sh, d->sw, d->ph, d->pw, d->groups,
                 d->fp16 != 0, d->perf_dir, d->perf_stride, d->perf_offset, d->samp_every, d->samp_offset, 0};
  for (int i = 0; i < c->n_picks; i++)
    if (!memcmp(c->picks[i].key, key, sizeof key)) {
      *out = c->picks[i].v;
      return PT_OK;
    }
  if (c->n_picks == c->cap_picks) {
    int cap = c->cap_picks ? 2 * c->cap_picks : 32;
    pt_cu_pick *np = pt__realloc(c->picks, (size_t)cap * sizeof *np);
    if (!np) return pt__error(PT_ENOMEM, "cuda conv: out of memory");
    c->picks = np;
    c->cap_picks = cap;
  }
  pt_cu_pick *p = &c->picks[c->n_picks];
  memset(p, 0, sizeof *p);
  memcpy(p->key, key, sizeof key);
  for (int v = 0; v < PT_CU_NVAR; v++) p->ms[v] = INFINITY;
  PT__TRY(choose(c, d, x, w, b, y, p->ms, &p->v));
  c->n_picks++;
  pt_log(PT_LOG_DEBUG, "cuda conv %dx%dx%dx%d -> %d (%s%s): cuDNN %.3f ms, GEMM %.3f ms, igemm %.3f ms: %s", d->n,
         d->cin, d->h, d->w, d->cout, kind(d), d->fp16 ? ", fp16" : "", p->ms[PT_CU_VAR_CUDNN], p->ms[PT_CU_VAR_GEMM],
         p->ms[PT_CU_VAR_IGEMM], NAMES[p->v]);
  *out = p->v;
  return PT_OK;
}

pt_status pt__cuda_conv2d(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  pt_cuda_ctx *c = ctx;
  pt_cu_variant v = d->perf_dir ? c->perf_variant : d->samp_every ? c->samp_variant : c->exact_variant;
  if (v == PT_CU_VAR_AUTO) PT__TRY(pick_variant(c, d, x, w, b, y, &v));
  pt_status s = variant_fn(v, d)(c, d, x, w, b, y);
  if (s == PT_EUNSUPPORTED && v != PT_CU_VAR_GEMM) { /* a shape the chosen variant cannot run: the GEMM
                                                        path computes the same thing */
    pt_log(PT_LOG_DEBUG, "cuda conv: variant %s failed (%s); using im2col + GEMM", NAMES[v], pt_last_error());
    cudaGetLastError();
    s = pt__cuda_conv_gemm(c, d, x, w, b, y);
  }
  return s;
}
