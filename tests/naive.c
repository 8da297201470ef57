#include "naive.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/graph_internal.h"

void naive_conv2d(const pt_conv_desc *d, const float *x, const float *w, const float *b, float *y) {
  int cig = d->cin / d->groups, cog = d->cout / d->groups;
  for (int i = 0; i < d->n; i++)
    for (int co = 0; co < d->cout; co++) {
      int g = co / cog;
      for (int oy = 0; oy < d->oh; oy++)
        for (int ox = 0; ox < d->ow; ox++) {
          double acc = b ? b[co] : 0.0;
          for (int ci = 0; ci < cig; ci++)
            for (int ky = 0; ky < d->kh; ky++)
              for (int kx = 0; kx < d->kw; kx++) {
                int iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
                if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
                int c = g * cig + ci;
                acc += (double)x[(((int64_t)i * d->cin + c) * d->h + iy) * d->w + ix] *
                       w[(((int64_t)co * cig + ci) * d->kh + ky) * d->kw + kx];
              }
          y[(((int64_t)i * d->cout + co) * d->oh + oy) * d->ow + ox] = (float)acc;
        }
    }
}

void naive_linear(int n, int in, int out, const float *x, const float *w, const float *b, float *y) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < out; j++) {
      double acc = b ? b[j] : 0.0;
      for (int k = 0; k < in; k++) acc += (double)x[(int64_t)i * in + k] * w[(int64_t)j * in + k];
      y[(int64_t)i * out + j] = (float)acc;
    }
}

void naive_pool2d(const pt_pool_desc *d, const float *x, float *y) {
  for (int p = 0; p < d->n * d->c; p++)
    for (int oy = 0; oy < d->oh; oy++)
      for (int ox = 0; ox < d->ow; ox++) {
        double acc = d->is_max ? -INFINITY : 0.0;
        for (int ky = 0; ky < d->kh; ky++)
          for (int kx = 0; kx < d->kw; kx++) {
            int iy = oy * d->sh - d->ph + ky, ix = ox * d->sw - d->pw + kx;
            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w) continue;
            double v = x[((int64_t)p * d->h + iy) * d->w + ix];
            acc = d->is_max ? fmax(acc, v) : acc + v;
          }
        y[((int64_t)p * d->oh + oy) * d->ow + ox] = (float)(d->is_max ? acc : acc / (d->kh * d->kw));
      }
}

void naive_batchnorm2d(int n, int c, int64_t hw, float eps, const float *x, const float *w, const float *b,
                       const float *mean, const float *var, float *y) {
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (int64_t k = 0; k < hw; k++) {
        int64_t at = ((int64_t)i * c + ch) * hw + k;
        y[at] = (float)(((double)x[at] - mean[ch]) / sqrt((double)var[ch] + eps) * w[ch] + b[ch]);
      }
}

void naive_softmax(int n, int c, const float *x, float *y) {
  for (int i = 0; i < n; i++) {
    double mx = -INFINITY, s = 0;
    for (int j = 0; j < c; j++) mx = fmax(mx, x[i * c + j]);
    for (int j = 0; j < c; j++) s += exp(x[i * c + j] - mx);
    for (int j = 0; j < c; j++) y[i * c + j] = (float)(exp(x[i * c + j] - mx) / s);
  }
}

static const float *prm(const pt_graph *g, const pt_node *nd, int k) {
  return nd->param[k] >= 0 ? g->params[nd->param[k]].data : NULL;
}

void naive_run_graph(const pt_graph *g, const float *in, int n, float *out) {
  float **buf = calloc((size_t)g->n_nodes, sizeof *buf);
  for (int i = 0; i < g->n_nodes; i++) {
    const pt_node *nd = &g->nodes[i];
    const float *x = nd->in[0] < 0 ? in : buf[nd->in[0]];
    int64_t ish[3];
    if (nd->in[0] < 0) {
      ish[0] = g->in_c;
      ish[1] = g->in_h;
      ish[2] = g->in_w;
    } else {
      memcpy(ish, g->nodes[nd->in[0]].out_shape, sizeof ish);
    }
    int64_t cnt = (int64_t)n * pt__node_out_numel(g, i);
    float *y = buf[i] = malloc((size_t)cnt * sizeof *y);
    switch (nd->type) {
      case PT_OP_CONV2D: {
        const pt_conv_params *c = &nd->p.conv;
        pt_conv_desc d = {n, c->cin, (int)ish[1], (int)ish[2], c->cout, (int)nd->out_shape[1], (int)nd->out_shape[2],
                          c->kh, c->kw, c->sh, c->sw, c->ph, c->pw, c->groups, 0, 0, 0, 0, 0, 0, 0.0f};
        naive_conv2d(&d, x, prm(g, nd, 0), prm(g, nd, 1), y);
        break;
      }
      case PT_OP_LINEAR: naive_linear(n, nd->p.linear.in, nd->p.linear.out, x, prm(g, nd, 0), prm(g, nd, 1), y); break;
      case PT_OP_RELU:
        for (int64_t k = 0; k < cnt; k++) y[k] = x[k] > 0 ? x[k] : 0;
        break;
      case PT_OP_TANH:
        for (int64_t k = 0; k < cnt; k++) y[k] = (float)tanh(x[k]);
        break;
      case PT_OP_MAXPOOL2D:
      case PT_OP_AVGPOOL2D: {
        const pt_pool_params *p = &nd->p.pool;
        pt_pool_desc d = {n, (int)ish[0], (int)ish[1], (int)ish[2], (int)nd->out_shape[1], (int)nd->out_shape[2],
                          p->kh, p->kw, p->sh, p->sw, p->ph, p->pw, nd->type == PT_OP_MAXPOOL2D, 0};
        naive_pool2d(&d, x, y);
        break;
      }
      case PT_OP_BATCHNORM2D:
        naive_batchnorm2d(n, nd->p.bn.c, nd->out_shape[1] * nd->out_shape[2], nd->p.bn.eps, x, prm(g, nd, 0),
                          prm(g, nd, 1), prm(g, nd, 2), prm(g, nd, 3), y);
        break;
      case PT_OP_ADD: {
        const float *x2 = nd->in[1] < 0 ? in : buf[nd->in[1]];
        for (int64_t k = 0; k < cnt; k++) y[k] = x[k] + x2[k];
        break;
      }
      case PT_OP_SOFTMAX: naive_softmax(n, (int)nd->out_shape[0], x, y); break;
      case PT_OP_FLATTEN: memcpy(y, x, (size_t)cnt * sizeof *y); break;
      default: break;
    }
  }
  memcpy(out, buf[g->n_nodes - 1], (size_t)n * g->num_classes * sizeof *out);
  for (int i = 0; i < g->n_nodes; i++) free(buf[i]);
  free(buf);
}

double norm_err(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(a[i]) || isnan(b[i])) return INFINITY;
    double d = (double)a[i] - b[i];
    num += d * d;
    den += (double)b[i] * b[i];
  }
  return sqrt(num) / fmax(sqrt(den), 1e-30);
}

void fill_uniform(pt_rng *r, float *x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; i++) x[i] = pt_rng_range(r, lo, hi);
}

#define SENTINEL 12345.678f
float *alloc_guarded(int64_t n, int guard) {
  float *p = malloc((size_t)(n + guard) * sizeof *p);
  for (int64_t i = 0; i < n; i++) p[i] = NAN; /* poisoned: an op that skips an element fails the check */
  for (int i = 0; i < guard; i++) p[n + i] = SENTINEL;
  return p;
}
int guard_intact(const float *x, int64_t n, int guard) {
  for (int i = 0; i < guard; i++)
    if (x[n + i] != SENTINEL) return 0;
  return 1;
}

void *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *d = malloc((size_t)n + 1);
  if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
    free(d);
    d = NULL;
  }
  if (d) d[n] = '\0'; /* text can be searched as a string */
  fclose(f);
  if (len) *len = (size_t)n;
  return d;
}

int write_all(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  size_t w = fwrite(data, 1, len, f);
  fclose(f);
  return w == len ? 0 : -1;
}

const char *write_tmp_file(const char *tag, const char *name, const void *data, size_t len) {
  static char path[256];
  snprintf(path, sizeof path, "/tmp/pt_%s_%d_%s", tag, (int)getpid(), name);
  return write_all(path, data, len) == 0 ? path : NULL;
}

pt_op_exec knob_setting_of(const pt_graph *g, int op, int v) {
  pt_op_exec e = {0};
  pt_op_type t = g->nodes[g->ops[op]].type;
  switch (t == PT_OP_CONV2D ? v % 6 : t == PT_OP_LINEAR ? v % 3 : v % 2) {
    case 0: break;
    case 1: e.fp16 = 1; break;
    case 2: e.kind = PT_APPROX_PROMISE, e.promise_level = 3; break;
    case 3: e.kind = PT_APPROX_PERFORATE, e.perf_dir = PT_PERF_ROWS, e.perf_stride = 2, e.perf_offset = 1; break;
    case 4: e.kind = PT_APPROX_PERFORATE, e.perf_dir = PT_PERF_COLS, e.perf_stride = 3, e.perf_offset = 0, e.fp16 = 1; break;
    case 5: e.kind = PT_APPROX_SAMPLING, e.samp_every = 2, e.samp_offset = 1, e.samp_interp = 1.0f; break;
  }
  return e;
}

void naive_igemm_conv(const pt_igemm_conv *g, int samp_every, int samp_offset, float samp_scale, const float *x,
                      const float *w, const float *b, float *y) {
  for (int img = 0; img < g->n; img++)
    for (int oy = 0; oy < g->oh; oy++)
      for (int ox = 0; ox < g->ow; ox++)
        for (int n = 0; n < g->k; n++) {
          double acc = b ? b[n] : 0.0;
          for (int ch = 0; ch < g->c; ch++)
            for (int tap = 0; tap < g->kh * g->kw; tap++) {
              if (samp_every && pt_km_samp_dropped(ch * g->kh * g->kw + tap, g->kh, g->kw, samp_every, samp_offset)) continue;
              const int iy = oy * g->sh - g->ph + tap / g->kw, ix = ox * g->sw - g->pw + tap % g->kw;
              if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w) continue;
              acc += (double)x[(((int64_t)img * g->h + iy) * g->w + ix) * g->c + ch] *
                     (w[((int64_t)n * g->c + ch) * g->kh * g->kw + tap] * samp_scale);
            }
          y[(((int64_t)img * g->oh + oy) * g->ow + ox) * g->k + n] = (float)acc;
        }
  naive_igemm_fill(g, y);
}

void naive_igemm_fill(const pt_igemm_conv *g, float *y) {
  if (!g->perf_dir) return;
  const int rows = g->perf_dir == 1, len = rows ? g->oh : g->ow, other = rows ? g->ow : g->oh;
  for (int img = 0; img < g->n; img++)
    for (int i = 0; i < len; i++) {
      if (!pt_km_perf_skipped(i, g->perf_stride, g->perf_offset)) continue;
      int a, b;
      pt_km_perf_fill_src(i, len, &a, &b);
      for (int j = 0; j < other; j++)
        for (int n = 0; n < g->k; n++) {
#define YAT(p) y[(((int64_t)img * g->oh + (rows ? (p) : j)) * g->ow + (rows ? j : (p))) * g->k + n]
          YAT(i) = a < 0 ? 0.0f : 0.5f * (YAT(a) + YAT(b));
#undef YAT
        }
    }
}

pt_igemm_conv naive_igemm_shape(int n, int c, int h, int w, int k, int ks, int st, int pad, int perf_dir,
                                int perf_stride, int perf_offset) {
  pt_igemm_conv g = {n, c, h, w, k, pt_km_out_size(h, ks, st, pad), pt_km_out_size(w, ks, st, pad), ks, ks, st, st,
                     pad, pad, perf_dir, perf_stride, perf_offset, 0, 0, 0, 0};
  return g;
}
