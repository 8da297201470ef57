/* HPVM config text (docs/design.md, "HPVM interoperation"). HPVM applies a config line to one HPVM
 * node, a fused group of tensor ops [conv|linear] [add] [tanh|relu] [maxpool], so the lines here
 * follow HPVM's node structure: for a zoo network the convolutions' and linear layers' biases (inside
 * the op here, a separate tensor add in HPVM) and the residual adds (not knob-able here) are written
 * as `add` entries in the precision of the op before them. Op names in HPVM's <type>_<index> form
 * carry their types (and their adds) themselves. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/graph_internal.h"
#include "io/hpvm_text.h"

/* Position in HPVM's fusion chain, -1 for ops that stand alone. */
static int chain_role(const char *t) {
  if (!strcmp(t, "conv") || !strcmp(t, "mul")) return 0;
  if (!strcmp(t, "add")) return 1;
  if (!strcmp(t, "relu") || !strcmp(t, "tanh")) return 2;
  if (!strcmp(t, "pool_max")) return 3;
  return -1;
}

const char *pt__hpvm_knob_type(const char *k) {
  char *end;
  long v = strtol(k, &end, 10);
  if (!*k || *end) return NULL;
  if (v == 11) return "fp32";
  if (v == 12) return "fp16";
  if (v >= 121 && v <= 138) return "perf";
  if (v >= 151 && v <= 168) return "perf_fp16";
  if (v >= 231 && v <= 239) return "samp";
  if (v >= 261 && v <= 269) return "samp_fp16";
  return NULL;
}

static int is_fp16_type(const char *t) { return t && strstr(t, "fp16") != NULL; }

/* Shortest %g that reads back as the same double, without an exponent where one is not needed
 * (90, not 9e+01). */
static void fmt_num(char *buf, size_t n, double v) {
  for (int p = 1; p <= 17; p++) {
    snprintf(buf, n, "%.*g", p, v);
    if (strtod(buf, NULL) == v && (!strchr(buf, 'e') || p == 17)) return;
  }
}

pt_status pt__hpvm_ops_from_graph(const pt_graph *g, pt__hpvm_op **out, int *n_out) {
  pt__hpvm_op *h = pt__calloc((size_t)2 * g->n_nodes + 1, sizeof *h);
  if (!h) return pt__error(PT_ENOMEM, "export-hpvm: out of memory");
  int n = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const pt_node *nd = &g->nodes[i];
    int op = -1;
    for (int o = 0; o < g->n_ops; o++)
      if (g->ops[o] == i) op = o;
    const char *t = NULL;
    switch (nd->type) {
      case PT_OP_CONV2D:
        t = nd->p.conv.groups > 1 && nd->p.conv.groups == nd->p.conv.cin && nd->p.conv.groups == nd->p.conv.cout
                ? "group_conv" : "conv";
        break;
      case PT_OP_LINEAR: t = "mul"; break;
      case PT_OP_RELU: t = "relu"; break;
      case PT_OP_TANH: t = "tanh"; break;
      case PT_OP_MAXPOOL2D: t = "pool_max"; break;
      case PT_OP_AVGPOOL2D: t = "pool_mean"; break;
      case PT_OP_BATCHNORM2D: t = "batchnorm"; break;
      case PT_OP_SOFTMAX: t = "softmax"; break;
      case PT_OP_ADD: t = "add"; break;
      default: break; /* flatten: a view, no HPVM op */
    }
    if (!t) continue;
    if (op < 0 && nd->type != PT_OP_ADD) continue;
    snprintf(h[n].type, sizeof h[n].type, "%s", t);
    h[n++].op = nd->type == PT_OP_ADD ? -1 : op;
    if ((nd->type == PT_OP_CONV2D || nd->type == PT_OP_LINEAR) && nd->param[1] >= 0) { /* the bias */
      snprintf(h[n].type, sizeof h[n].type, "add");
      h[n++].op = -1;
    }
  }
  *out = h;
  *n_out = n;
  return PT_OK;
}

int pt__hpvm_ops_from_names(int n_ops, char *const *names, pt__hpvm_op **out, int *order) {
  static const struct { const char *from, *to; } MAP[] = {
      {"convolution", "conv"}, {"linear", "mul"}, {"maxpool", "pool_max"}, {"avgpool", "pool_mean"},
      {"depthwise_convolution", "group_conv"}};
  pt__hpvm_op *h = pt__calloc((size_t)n_ops + 1, sizeof *h);
  if (!h) {
    pt__error(PT_ENOMEM, "HPVM config: out of memory for %d op names", n_ops);
    return -1;
  }
  for (int i = 0; i < n_ops; i++) h[i].op = -2;
  for (int k = 0; k < n_ops; k++) {
    const char *us = strrchr(names[k], '_');
    char *end;
    long idx = us ? strtol(us + 1, &end, 10) : -1;
    if (!us || us == names[k] || !us[1] || *end || idx < 0 || idx >= n_ops || h[idx].op != -2 ||
        (size_t)(us - names[k]) >= sizeof h[0].type) {
      free(h);
      return 0;
    }
    snprintf(h[idx].type, sizeof h[idx].type, "%.*s", (int)(us - names[k]), names[k]);
    for (size_t m = 0; m < sizeof MAP / sizeof MAP[0]; m++)
      if (!strcmp(h[idx].type, MAP[m].from)) snprintf(h[idx].type, sizeof h[idx].type, "%s", MAP[m].to);
    h[idx].op = (int)idx;
    order[idx] = k;
  }
  *out = h;
  return 1;
}

pt_status pt__hpvm_put_block(pt__text *t, int conf_no, double speedup, double test_qos, double loss,
                             const pt__hpvm_op *h, int nh, const char *const *knob) {
  char sp[40], tq[40], lo[40];
  fmt_num(sp, sizeof sp, speedup);
  fmt_num(tq, sizeof tq, test_qos);
  fmt_num(lo, sizeof lo, loss);
  pt_status s = pt__text_put(t, "+++++\nconf%d %s 1.0 %s %s\n", conf_no, sp, tq, lo);
  int line = 1, role = -1;
  const char *prec_t = "fp32", *prec_k = "11";
  for (int i = 0; s == PT_OK && i < nh; i++) {
    int r = chain_role(h[i].type);
    int start = i == 0 || r < 0 || r <= role;
    if (start) s = pt__text_put(t, "%s%d gpu", i ? "\n" : "", line++);
    role = r < 0 ? 4 : r; /* a lone op closes its line */
    const char *kt, *kn;
    if (h[i].op >= 0) {
      kn = knob[h[i].op];
      kt = pt__hpvm_knob_type(kn);
      prec_t = is_fp16_type(kt) ? "fp16" : "fp32";
      prec_k = is_fp16_type(kt) ? "12" : "11";
    } else {
      kt = prec_t;
      kn = prec_k;
    }
    if (s == PT_OK) s = pt__text_put(t, " %s %s %s", h[i].type, kt, kn);
  }
  if (s == PT_OK) s = pt__text_put(t, "\n-----\n");
  return s;
}

pt_status pt__hpvm_config_text(int n_ops, char *const *names, const char *const *knobs, char **text, size_t *text_len) {
  *text = NULL;
  *text_len = 0;
  pt__hpvm_op *h = NULL;
  int *order = pt__calloc((size_t)n_ops + 1, sizeof *order);
  const char **by_idx = pt__calloc((size_t)n_ops + 1, sizeof *by_idx);
  pt_status s = PT_OK;
  int named = 0;
  if (!order || !by_idx) s = pt__error(PT_ENOMEM, "HPVM config: out of memory for %d ops", n_ops);
  else if ((named = pt__hpvm_ops_from_names(n_ops, names, &h, order)) < 0) s = PT_ENOMEM;
  else if (!named) s = pt__error(PT_EINVAL, "HPVM config: op names are not <type>_<index> with indices 0..%d", n_ops - 1);
  for (int i = 0; s == PT_OK && i < n_ops; i++) {
    by_idx[i] = knobs[order[i]];
    if (!pt__hpvm_knob_type(by_idx[i]))
      s = pt__error(PT_EINVAL, "HPVM config: knob '%s' of op '%s' has no HPVM knob type (HPVM knows 11, 12, 121-138, "
                    "151-168, 231-239, 261-269)", by_idx[i], names[order[i]]);
  }
  pt__text t = {0};
  if (s == PT_OK) s = pt__text_put(&t, "0.0\n");
  if (s == PT_OK) s = pt__hpvm_put_block(&t, 1, 1.0, 1.0, 0.0, h, n_ops, by_idx);
  if (s == PT_OK) {
    *text = t.buf;
    *text_len = t.len;
  } else {
    free(t.buf);
  }
  free(h);
  free(order);
  free(by_idx);
  return s;
}

