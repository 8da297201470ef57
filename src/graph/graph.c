/* Graph builder, shape inference, FLOPs and parameter accounting. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"
#include "graph/graph_internal.h"
#include "kernels/knob_math.h"
#include "predtuner/log.h"

static const char *const pt__op_names[PT_OP__COUNT] = {
    "Conv2d", "Linear", "ReLU", "Tanh", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Softmax", "add", "flatten"};

const char *pt_op_type_name(pt_op_type t) {
  return (t >= 0 && t < PT_OP__COUNT) ? pt__op_names[t] : "unknown";
}

pt_graph *pt__graph_new(const char *name, int c, int h, int w, int num_classes) {
  pt_graph *g = pt__calloc(1, sizeof *g);
  if (!g) return NULL;
  snprintf(g->name, sizeof g->name, "%s", name);
  g->in_c = c;
  g->in_h = h;
  g->in_w = w;
  g->num_classes = num_classes;
  return g;
}

void pt_graph_free(pt_graph *g) {
  if (!g) return;
  for (int i = 0; i < g->n_params; i++) free(g->params[i].data);
  free(g->params);
  free(g->nodes);
  free(g->ops);
  free(g);
}

static int pt__g_fail(pt_graph *g, pt_status s, const char *fmt, const char *name, long a, long b) {
  if (g->err == PT_OK) {
    char msg[400];
    snprintf(msg, sizeof msg, fmt, name, a, b);
    g->err = s;
    snprintf(g->errmsg, sizeof g->errmsg, "graph %s: %s", g->name, msg);
  }
  return -1;
}

/* Input shape of a new node whose producer is `in`. */
static int pt__in_shape(const pt_graph *g, int in, int64_t shape[3]) {
  if (in < 0) {
    shape[0] = g->in_c;
    shape[1] = g->in_h;
    shape[2] = g->in_w;
    return 3;
  }
  const pt_node *n = &g->nodes[in];
  memcpy(shape, n->out_shape, sizeof n->out_shape);
  return n->out_ndim;
}

static pt_node *pt__g_push(pt_graph *g, pt_op_type type, const char *name, int is_op, int in) {
  if (g->err != PT_OK) return NULL;
  if (in >= g->n_nodes) {
    pt__g_fail(g, PT_EINVAL, "node %s: input %ld does not exist%ld", name, in, 0);
    return NULL;
  }
  if (g->n_nodes == g->cap_nodes) {
    int cap = g->cap_nodes ? 2 * g->cap_nodes : 64;
    pt_node *nn = pt__realloc(g->nodes, (size_t)cap * sizeof *nn);
    if (!nn) {
      pt__g_fail(g, PT_ENOMEM, "node %s: out of memory%ld%ld", name, 0, 0);
      return NULL;
    }
    g->nodes = nn;
    g->cap_nodes = cap;
  }
  pt_node *n = &g->nodes[g->n_nodes++];
  memset(n, 0, sizeof *n);
  n->type = type;
  snprintf(n->name, sizeof n->name, "%s", name);
  n->is_op = is_op;
  n->reg = is_op ? g->next_reg++ : -1;
  n->n_in = 1;
  n->in[0] = in;
  n->in[1] = -1;
  for (int i = 0; i < 4; i++) n->param[i] = -1;
  return n;
}

static int pt__g_param(pt_graph *g, pt_node *n, int slot, const char *suffix, int ndim, const int64_t *shape,
                       int learnable) {
  if (g->n_params == g->cap_params) {
    int cap = g->cap_params ? 2 * g->cap_params : 64;
    pt_param *np = pt__realloc(g->params, (size_t)cap * sizeof *np);
    if (!np) return pt__g_fail(g, PT_ENOMEM, "param %s: out of memory%ld%ld", n->name, 0, 0);
    g->params = np;
    g->cap_params = cap;
  }
  pt_param *p = &g->params[g->n_params];
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "%s.%s", n->name, suffix);
  p->ndim = ndim;
  memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
  p->learnable = learnable;
  n->param[slot] = g->n_params;
  return g->n_params++;
}

static int pt__idx(const pt_graph *g, const pt_node *n) { return (int)(n - g->nodes); }

int pt__g_conv(pt_graph *g, const char *name, int in, int cin, int cout, int k, int stride, int pad, int groups,
               int bias) {
  pt_conv_params p = {cin, cout, k, k, stride, stride, pad, pad, groups, bias};
  return pt__g_conv2(g, name, in, &p);
}

int pt__g_conv2(pt_graph *g, const char *name, int in, const pt_conv_params *cp) {
  pt_node *n = pt__g_push(g, PT_OP_CONV2D, name, 1, in);
  if (!n) return -1;
  int64_t s[3];
  int nd = pt__in_shape(g, in, s);
  const int cin = cp->cin, cout = cp->cout, groups = cp->groups;
  if (nd != 3 || s[0] != cin)
    return pt__g_fail(g, PT_ESHAPE, "%s: Conv2d expects %ld input channels, got %ld", name, cin, nd == 3 ? s[0] : -1);
  if (groups < 1 || cin % groups || cout % groups || cp->kh < 1 || cp->kw < 1 || cp->sh < 1 || cp->sw < 1 ||
      cp->ph < 0 || cp->pw < 0)
    return pt__g_fail(g, PT_EINVAL, "%s: bad Conv2d parameters (groups %ld, kernel %ld)", name, groups, cp->kh);
  if (s[1] + 2 * cp->ph < cp->kh || s[2] + 2 * cp->pw < cp->kw)
    return pt__g_fail(g, PT_ESHAPE, "%s: kernel %ld larger than padded input height %ld", name, cp->kh,
                      s[1] + 2 * cp->ph);
  n->p.conv = *cp;
  n->out_ndim = 3;
  n->out_shape[0] = cout;
  n->out_shape[1] = pt_km_out_size((int)s[1], cp->kh, cp->sh, cp->ph);
  n->out_shape[2] = pt_km_out_size((int)s[2], cp->kw, cp->sw, cp->pw);
  int64_t ws[4] = {cout, cin / groups, cp->kh, cp->kw}, bs[1] = {cout};
  pt__g_param(g, n, 0, "weight", 4, ws, 1);
  if (cp->has_bias) pt__g_param(g, n, 1, "bias", 1, bs, 1);
  return g->err == PT_OK ? pt__idx(g, n) : -1;
}

int pt__g_linear(pt_graph *g, const char *name, int in, int nin, int nout) {
  return pt__g_linear2(g, name, in, nin, nout, 1);
}

int pt__g_linear2(pt_graph *g, const char *name, int in, int nin, int nout, int has_bias) {
  pt_node *n = pt__g_push(g, PT_OP_LINEAR, name, 1, in);
  if (!n) return -1;
  int64_t s[3];
  int nd = pt__in_shape(g, in, s);
  if (nd != 1 || s[0] != nin)
    return pt__g_fail(g, PT_ESHAPE, "%s: Linear expects %ld input features, got %ld", name, nin,
                      nd == 1 ? s[0] : -1);
  n->p.linear.in = nin;
  n->p.linear.out = nout;
  n->p.linear.has_bias = has_bias;
  n->out_ndim = 1;
  n->out_shape[0] = nout;
  int64_t ws[2] = {nout, nin}, bs[1] = {nout};
  pt__g_param(g, n, 0, "weight", 2, ws, 1);
  if (has_bias) pt__g_param(g, n, 1, "bias", 1, bs, 1);
  return g->err == PT_OK ? pt__idx(g, n) : -1;
}

static int pt__g_same_shape(pt_graph *g, pt_node *n, int in) {
  n->out_ndim = pt__in_shape(g, in, n->out_shape);
  return pt__idx(g, n);
}

int pt__g_act(pt_graph *g, const char *name, int in, pt_op_type type) {
  pt_node *n = pt__g_push(g, type, name, 1, in);
  return n ? pt__g_same_shape(g, n, in) : -1;
}

int pt__g_softmax(pt_graph *g, const char *name, int in) {
  pt_node *n = pt__g_push(g, PT_OP_SOFTMAX, name, 1, in);
  if (!n) return -1;
  if (pt__in_shape(g, in, n->out_shape) != 1) return pt__g_fail(g, PT_ESHAPE, "%s: Softmax expects (N, F) input%ld%ld", name, 0, 0);
  return pt__g_same_shape(g, n, in);
}

int pt__g_pool(pt_graph *g, const char *name, int in, pt_op_type type, int k, int stride, int pad) {
  pt_pool_params p = {k, k, stride, stride, pad, pad};
  return pt__g_pool2(g, name, in, type, &p);
}

int pt__g_pool2(pt_graph *g, const char *name, int in, pt_op_type type, const pt_pool_params *pp) {
  pt_node *n = pt__g_push(g, type, name, 1, in);
  if (!n) return -1;
  int64_t s[3];
  if (pt__in_shape(g, in, s) != 3) return pt__g_fail(g, PT_ESHAPE, "%s: pooling expects (C, H, W) input%ld%ld", name, 0, 0);
  if (pp->kh < 1 || pp->kw < 1 || pp->sh < 1 || pp->sw < 1 || pp->ph < 0 || pp->pw < 0 || pp->ph >= pp->kh ||
      pp->pw >= pp->kw)
    return pt__g_fail(g, PT_EINVAL, "%s: bad pooling kernel %ld / padding %ld", name, pp->kh, pp->ph);
  if (s[1] + 2 * pp->ph < pp->kh || s[2] + 2 * pp->pw < pp->kw)
    return pt__g_fail(g, PT_ESHAPE, "%s: pooling kernel %ld larger than input %ld", name, pp->kh, s[1]);
  n->p.pool = *pp;
  n->out_ndim = 3;
  n->out_shape[0] = s[0];
  n->out_shape[1] = pt_km_out_size((int)s[1], pp->kh, pp->sh, pp->ph);
  n->out_shape[2] = pt_km_out_size((int)s[2], pp->kw, pp->sw, pp->pw);
  return pt__idx(g, n);
}

int pt__g_bn(pt_graph *g, const char *name, int in, int c, float eps) {
  pt_node *n = pt__g_push(g, PT_OP_BATCHNORM2D, name, 1, in);
  if (!n) return -1;
  int64_t s[3];
  if (pt__in_shape(g, in, s) != 3 || s[0] != c)
    return pt__g_fail(g, PT_ESHAPE, "%s: BatchNorm2d expects %ld channels, got %ld", name, c, s[0]);
  n->p.bn.c = c;
  n->p.bn.eps = eps;
  int64_t cs[1] = {c};
  pt__g_param(g, n, 0, "weight", 1, cs, 1);
  pt__g_param(g, n, 1, "bias", 1, cs, 1);
  pt__g_param(g, n, 2, "running_mean", 1, cs, 0);
  pt__g_param(g, n, 3, "running_var", 1, cs, 0);
  return g->err == PT_OK ? pt__g_same_shape(g, n, in) : -1;
}

int pt__g_add(pt_graph *g, const char *name, int a, int b) {
  pt_node *n = pt__g_push(g, PT_OP_ADD, name, 0, a);
  if (!n) return -1;
  if (b >= g->n_nodes - 1) return pt__g_fail(g, PT_EINVAL, "%s: input %ld does not exist%ld", name, b, 0);
  int64_t sa[3], sb[3];
  int na = pt__in_shape(g, a, sa), nb = pt__in_shape(g, b, sb);
  if (na != nb || memcmp(sa, sb, (size_t)na * sizeof *sa))
    return pt__g_fail(g, PT_ESHAPE, "%s: add of different shapes (%ld vs %ld elements)", name,
                      (long)pt_shape_numel(na, sa), (long)pt_shape_numel(nb, sb));
  n->n_in = 2;
  n->in[1] = b;
  return pt__g_same_shape(g, n, a);
}

int pt__g_flatten(pt_graph *g, int in) {
  char name[128];
  snprintf(name, sizeof name, "%s+flatten", in >= 0 ? g->nodes[in].name : "input");
  pt_node *n = pt__g_push(g, PT_OP_FLATTEN, name, 0, in);
  if (!n) return -1;
  int64_t s[3];
  int nd = pt__in_shape(g, in, s);
  n->out_ndim = 1;
  n->out_shape[0] = pt_shape_numel(nd, s);
  return pt__idx(g, n);
}

int pt__g_reserve_reg(pt_graph *g) { return g->next_reg++; }

void pt__g_set_reg(pt_graph *g, int node, int reg) {
  if (node >= 0 && node < g->n_nodes && g->nodes[node].is_op) g->nodes[node].reg = reg;
}

pt_status pt__graph_finish(pt_graph *g) {
  if (g->err != PT_OK) return pt__error(g->err, "%s", g->errmsg);
  if (g->n_nodes == 0) return pt__error(PT_EINVAL, "graph %s: no nodes", g->name);
  const pt_node *out = &g->nodes[g->n_nodes - 1];
  /* num_classes 0: a network that is not a classifier (ONNX conformance graphs); any output */
  if (g->num_classes > 0 && (out->out_ndim != 1 || out->out_shape[0] != g->num_classes))
    return pt__error(PT_ESHAPE, "graph %s: output has %lld features, expected %d classes", g->name,
                     (long long)pt_shape_numel(out->out_ndim, out->out_shape), g->num_classes);
  free(g->ops);
  g->ops = pt__malloc((size_t)g->n_nodes * sizeof *g->ops);
  if (!g->ops) return pt__error(PT_ENOMEM, "graph %s: out of memory", g->name);
  g->n_ops = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].is_op) g->ops[g->n_ops++] = i;
  /* registration order; nearly sorted already (only residual blocks swap), so insertion sort */
  for (int i = 1; i < g->n_ops; i++) {
    int v = g->ops[i], j = i;
    while (j > 0 && g->nodes[g->ops[j - 1]].reg > g->nodes[v].reg) {
      g->ops[j] = g->ops[j - 1];
      j--;
    }
    g->ops[j] = v;
  }
  for (int i = 0; i < g->n_ops; i++)
    for (int j = 0; j < i; j++)
      if (!strcmp(g->nodes[g->ops[i]].name, g->nodes[g->ops[j]].name))
        return pt__error(PT_EINVAL, "graph %s: two ops named '%s'", g->name, g->nodes[g->ops[i]].name);
  return PT_OK;
}

/* ---- accessors ---- */

const char *pt_graph_name(const pt_graph *g) { return g->name; }
void pt_graph_input_shape(const pt_graph *g, int *c, int *h, int *w) {
  *c = g->in_c;
  *h = g->in_h;
  *w = g->in_w;
}
int pt_graph_num_classes(const pt_graph *g) { return g->num_classes; }
int64_t pt_graph_output_numel(const pt_graph *g) {
  return g->n_nodes ? pt__node_out_numel(g, g->n_nodes - 1) : 0;
}
int pt_graph_num_ops(const pt_graph *g) { return g->n_ops; }
const pt_node *pt__graph_op_node(const pt_graph *g, int op) { return &g->nodes[g->ops[op]]; }
const char *pt_graph_op_name(const pt_graph *g, int op) { return pt__graph_op_node(g, op)->name; }
pt_op_type pt_graph_op_type(const pt_graph *g, int op) { return pt__graph_op_node(g, op)->type; }

int pt_graph_op_out_shape(const pt_graph *g, int op, int64_t shape[3]) {
  const pt_node *n = pt__graph_op_node(g, op);
  memcpy(shape, n->out_shape, sizeof n->out_shape);
  return n->out_ndim;
}

int64_t pt__node_out_numel(const pt_graph *g, int i) {
  if (i < 0) return (int64_t)g->in_c * g->in_h * g->in_w;
  return pt_shape_numel(g->nodes[i].out_ndim, g->nodes[i].out_shape);
}

double pt__node_flops(const pt_graph *g, const pt_node *n) {
  double out = (double)pt_shape_numel(n->out_ndim, n->out_shape);
  switch (n->type) {
    case PT_OP_CONV2D: {
      const pt_conv_params *c = &n->p.conv;
      double wnum = (double)c->cout * (c->cin / c->groups) * c->kh * c->kw;
      return wnum * (double)n->out_shape[1] * (double)n->out_shape[2];
    }
    case PT_OP_LINEAR: return (double)n->p.linear.in * n->p.linear.out;
    case PT_OP_BATCHNORM2D: return 6.0 * out;
    case PT_OP_RELU: return out;
    case PT_OP_MAXPOOL2D:
    case PT_OP_AVGPOOL2D: return (double)n->p.pool.kh * n->p.pool.kw * out;
    default: (void)g; return 0.0;
  }
}

double pt_graph_op_flops(const pt_graph *g, int op) { return pt__node_flops(g, pt__graph_op_node(g, op)); }

int64_t pt_graph_op_params(const pt_graph *g, int op) {
  const pt_node *n = pt__graph_op_node(g, op);
  int64_t total = 0;
  for (int k = 0; k < 4; k++) {
    if (n->param[k] < 0) continue;
    const pt_param *p = &g->params[n->param[k]];
    if (p->learnable) total += pt_shape_numel(p->ndim, p->shape);
  }
  return total;
}

int pt_graph_find_op(const pt_graph *g, const char *name) {
  for (int i = 0; i < g->n_ops; i++)
    if (!strcmp(pt_graph_op_name(g, i), name)) return i;
  return -1;
}

int64_t pt_graph_total_params(const pt_graph *g) {
  int64_t t = 0;
  for (int i = 0; i < g->n_ops; i++) t += pt_graph_op_params(g, i);
  return t;
}

double pt_graph_total_flops(const pt_graph *g) {
  double t = 0;
  for (int i = 0; i < g->n_ops; i++) t += pt_graph_op_flops(g, i);
  return t;
}

int pt_graph_count_ops(const pt_graph *g, pt_op_type t) {
  int c = 0;
  for (int i = 0; i < g->n_ops; i++) c += pt_graph_op_type(g, i) == t;
  return c;
}

int pt_graph_num_tensors(const pt_graph *g) { return g->n_params; }
const char *pt_graph_tensor_name(const pt_graph *g, int i) { return g->params[i].name; }
int64_t pt_graph_tensor_nonfinite(const pt_graph *g, int i) {
  const pt_param *p = &g->params[i];
  if (!p->data) return 0;
  int64_t n = 1, bad = 0;
  for (int d = 0; d < p->ndim; d++) n *= p->shape[d];
  for (int64_t k = 0; k < n; k++) bad += !isfinite(p->data[k]);
  return bad;
}

pt_status pt_graph_check_weights(const pt_graph *g, const char *file, int strict) {
  for (int i = 0; i < g->n_params; i++) {
    int64_t bad = pt_graph_tensor_nonfinite(g, i);
    if (!bad) continue;
    if (strict)
      return pt__error(PT_ENONFINITE, "%s: tensor '%s' holds %lld NaN or infinite values (--strict)", file,
                       g->params[i].name, (long long)bad);
    pt_log(PT_LOG_WARN, "%s: tensor '%s' holds %lld NaN or infinite values", file, g->params[i].name, (long long)bad);
  }
  return PT_OK;
}

int pt_graph_tensor_shape(const pt_graph *g, int i, int64_t shape[4]) {
  memcpy(shape, g->params[i].shape, sizeof g->params[i].shape);
  return g->params[i].ndim;
}

void pt_graph_init_random(pt_graph *g, uint64_t seed) {
  pt_rng r;
  pt_rng_seed(&r, seed);
  for (int i = 0; i < g->n_nodes; i++) {
    pt_node *n = &g->nodes[i];
    int fan_in = 1;
    if (n->type == PT_OP_CONV2D) fan_in = n->p.conv.cin / n->p.conv.groups * n->p.conv.kh * n->p.conv.kw;
    if (n->type == PT_OP_LINEAR) fan_in = n->p.linear.in;
    float bound = sqrtf(6.0f / (float)fan_in);
    for (int k = 0; k < 4; k++) {
      if (n->param[k] < 0) continue;
      pt_param *p = &g->params[n->param[k]];
      int64_t cnt = pt_shape_numel(p->ndim, p->shape);
      free(p->data);
      p->data = pt__malloc((size_t)cnt * sizeof(float));
      if (!p->data) continue; /* left unloaded: the executor reports it */
      for (int64_t j = 0; j < cnt; j++) {
        float v;
        if (n->type == PT_OP_BATCHNORM2D)
          v = k == 0 ? pt_rng_range(&r, 0.4f, 0.8f) : k == 3 ? pt_rng_range(&r, 0.5f, 1.5f) : pt_rng_range(&r, -0.1f, 0.1f);
        else
          v = k == 0 ? pt_rng_range(&r, -bound, bound) : pt_rng_range(&r, -0.05f, 0.05f);
        p->data[j] = v;
      }
    }
  }
}

void pt_graph_fingerprint(const pt_graph *g, uint64_t *structure, uint64_t *weights) {
  uint64_t h = pt__hash_str(PT__HASH_INIT, g->name);
  int in[4] = {g->in_c, g->in_h, g->in_w, g->num_classes};
  h = pt__hash_bytes(h, in, sizeof in);
  for (int i = 0; i < g->n_nodes; i++) { /* every field that changes what a node computes */
    const pt_node *n = &g->nodes[i];
    int f[5] = {(int)n->type, n->is_op, n->n_in, n->in[0], n->in[1]};
    h = pt__hash_str(pt__hash_bytes(h, f, sizeof f), n->name);
    h = pt__hash_bytes(pt__hash_bytes(h, n->out_shape, sizeof n->out_shape), &n->p, sizeof n->p);
    h = pt__hash_bytes(h, n->param, sizeof n->param);
  }
  uint64_t w = PT__HASH_INIT;
  for (int i = 0; i < g->n_params; i++) {
    const pt_param *p = &g->params[i];
    int64_t numel = 1;
    for (int d = 0; d < p->ndim; d++) numel *= p->shape[d];
    h = pt__hash_bytes(pt__hash_str(h, p->name), p->shape, sizeof p->shape);
    if (p->data) w = pt__hash_bytes(w, p->data, (size_t)numel * sizeof *p->data);
  }
  *structure = pt__hash_final(h);
  *weights = pt__hash_final(w);
}
