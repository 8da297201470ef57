/* HPVM config text (DESIGN.md 9). HPVM applies a config line to one HPVM node, a fused group of
 * tensor ops [conv|linear] [add] [tanh|relu] [maxpool], so the lines here follow HPVM's node
 * structure: for a zoo network the convolutions' and linear layers' biases (inside the op here,
 * a separate tensor add in HPVM) and the residual adds (not knob-able here) are written as `add`
 * entries in the precision of the op before them. Op names in HPVM's <type>_<index> form carry
 * their types (and their adds) themselves. */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/graph_internal.h"
#include "io/fileutil.h"
#include "predtuner/frontend.h"
#include "predtuner/hpvm.h"
#include "predtuner/io.h"
#include "predtuner/knobs.h"
#include "predtuner/zoo.h"
#include "tuner/hpvm_internal.h"

/* One tensor op of an HPVM line: its HPVM type and where its knob comes from. */
typedef struct hop {
  char type[32]; /* conv, mul, add, relu, tanh, pool_max, pool_mean, group_conv, batchnorm, softmax */
  int op;        /* index into the config's ops, or -1: an add taking the precision of the op before */
} hop;

/* Position in HPVM's fusion chain, -1 for ops that stand alone. */
static int chain_role(const char *t) {
  if (!strcmp(t, "conv") || !strcmp(t, "mul")) return 0;
  if (!strcmp(t, "add")) return 1;
  if (!strcmp(t, "relu") || !strcmp(t, "tanh")) return 2;
  if (!strcmp(t, "pool_max")) return 3;
  return -1;
}

/* HPVM's knob type of a knob name, or NULL. */
static const char *knob_type(const char *k) {
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

/* The HPVM op sequence of a zoo network, with op indices into `names` (the graph's op names). */
static pt_status ops_from_graph(const pt_graph *g, hop **out, int *n_out) {
  hop *h = pt__calloc((size_t)2 * g->n_nodes + 1, sizeof *h);
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

/* HPVM-style op names (<type>_<index>, indices 0..n-1): the types, in index order. */
static int ops_from_names(int n_ops, char *const *names, hop **out, int *order) {
  static const struct { const char *from, *to; } MAP[] = {
      {"convolution", "conv"}, {"linear", "mul"}, {"maxpool", "pool_max"}, {"avgpool", "pool_mean"},
      {"depthwise_convolution", "group_conv"}};
  hop *h = pt__calloc((size_t)n_ops + 1, sizeof *h);
  if (!h) return 0;
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

typedef struct conf {
  double speedup, test_qos;
  const char **knob; /* (n_ops) knob per op, in `opnames` order */
} conf;

static int by_speedup(const void *a, const void *b) {
  const conf *x = a, *y = b;
  return (x->speedup > y->speedup) - (x->speedup < y->speedup);
}

/* Appends printf-formatted text to a growing buffer. */
static pt_status put(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*buf ? *buf + *len : NULL, *buf ? *cap - *len : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return pt__error(PT_EINVAL, "export-hpvm: formatting failed");
    if (*buf && *len + (size_t)k < *cap) {
      *len += (size_t)k;
      return PT_OK;
    }
    size_t nc = (*cap ? *cap * 2 : 4096) + (size_t)k;
    char *nb = pt__realloc(*buf, nc);
    if (!nb) return pt__error(PT_ENOMEM, "export-hpvm: out of memory");
    *buf = nb;
    *cap = nc;
  }
}

/* One config block: "+++++", the header, a line per fused group of ops, "-----". knob[op] is the
 * knob of config op `op` (hop.op); an add without an op takes the precision of the op before it. */
static pt_status put_block(char **buf, size_t *len, size_t *cap, int conf_no, double speedup, double test_qos,
                           double loss, const hop *h, int nh, const char *const *knob) {
  char sp[40], tq[40], lo[40];
  fmt_num(sp, sizeof sp, speedup);
  fmt_num(tq, sizeof tq, test_qos);
  fmt_num(lo, sizeof lo, loss);
  pt_status s = put(buf, len, cap, "+++++\nconf%d %s 1.0 %s %s\n", conf_no, sp, tq, lo);
  int line = 1, role = -1;
  const char *prec_t = "fp32", *prec_k = "11";
  for (int i = 0; s == PT_OK && i < nh; i++) {
    int r = chain_role(h[i].type);
    int start = i == 0 || r < 0 || r <= role;
    if (start) s = put(buf, len, cap, "%s%d gpu", i ? "\n" : "", line++);
    role = r < 0 ? 4 : r; /* a lone op closes its line */
    const char *kt, *kn;
    if (h[i].op >= 0) {
      kn = knob[h[i].op];
      kt = knob_type(kn);
      prec_t = is_fp16_type(kt) ? "fp16" : "fp32";
      prec_k = is_fp16_type(kt) ? "12" : "11";
    } else {
      kt = prec_t;
      kn = prec_k;
    }
    if (s == PT_OK) s = put(buf, len, cap, " %s %s %s", h[i].type, kt, kn);
  }
  if (s == PT_OK) s = put(buf, len, cap, "\n-----\n");
  return s;
}

pt_status pt__hpvm_config_text(int n_ops, char *const *names, const char *const *knobs, char **text, size_t *text_len) {
  *text = NULL;
  *text_len = 0;
  hop *h = NULL;
  int *order = pt__calloc((size_t)n_ops + 1, sizeof *order);
  const char **by_idx = pt__calloc((size_t)n_ops + 1, sizeof *by_idx);
  pt_status s = PT_OK;
  if (!order || !by_idx) s = pt__error(PT_ENOMEM, "HPVM config: out of memory");
  else if (!ops_from_names(n_ops, names, &h, order))
    s = pt__error(PT_EINVAL, "HPVM config: op names are not <type>_<index> with indices 0..%d", n_ops - 1);
  for (int i = 0; s == PT_OK && i < n_ops; i++) {
    by_idx[i] = knobs[order[i]];
    if (!knob_type(by_idx[i]))
      s = pt__error(PT_EINVAL, "HPVM config: knob '%s' of op '%s' has no HPVM knob type (HPVM knows 11, 12, 121-138, "
                    "151-168, 231-239, 261-269)", by_idx[i], names[order[i]]);
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (s == PT_OK) s = put(&buf, &len, &cap, "0.0\n");
  if (s == PT_OK) s = put_block(&buf, &len, &cap, 1, 1.0, 1.0, 0.0, h, n_ops, by_idx);
  if (s == PT_OK) {
    *text = buf;
    *text_len = len;
  } else {
    free(buf);
  }
  free(h);
  free(order);
  free(by_idx);
  return s;
}

typedef struct meta {
  char app[128], target[16], knobs_file[512];
  double base_test;
} meta;

static pt_status parse_meta(const char *text, size_t len, const char *src, void *out) {
  meta *m = out;
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", src);
  if (cJSON_IsObject(root)) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "app");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "target_device");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(root, "knobs_file");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(root, "baseline");
    const cJSON *bt = cJSON_IsObject(b) ? cJSON_GetObjectItemCaseSensitive(b, "test_qos") : NULL;
    if (cJSON_IsString(a)) snprintf(m->app, sizeof m->app, "%s", a->valuestring);
    if (cJSON_IsString(t)) snprintf(m->target, sizeof m->target, "%s", t->valuestring);
    if (cJSON_IsString(k)) snprintf(m->knobs_file, sizeof m->knobs_file, "%s", k->valuestring);
    if (cJSON_IsNumber(bt)) m->base_test = bt->valuedouble;
  }
  cJSON_Delete(root);
  return PT_OK;
}

/* The baseline knob of every op: the knob set's baseline for the run's target device. */
static pt_status baseline_knob(const meta *m, const pt_graph *g, char *name, size_t n) {
  if (!g) { /* HPVM-style ops: HPVM's own baseline is fp16 on the GPU */
    snprintf(name, n, "%s", !strcmp(m->target, "cpu") ? "11" : "12");
    return PT_OK;
  }
  pt_knob_set *ks;
  int builtin = !m->knobs_file[0] || !strcmp(m->knobs_file, "built-in");
  PT__TRY(builtin ? pt_knobs_default(&ks) : pt_knobs_load(m->knobs_file, &ks));
  int dev = pt_device_parse(m->target[0] ? m->target : "gpu");
  pt_space *sp;
  pt_status s = pt_space_build(g, ks, dev < 0 ? (unsigned)pt_device_parse("gpu") : (unsigned)dev, &sp);
  if (s == PT_OK) {
    snprintf(name, n, "%s", pt_space_baseline(sp)->name);
    pt_space_free(sp);
  }
  pt_knobs_free(ks);
  return s;
}

pt_status pt_hpvm_export(const char *configs_json, const char *model, double base_test_qos, const char *out_path) {
  meta m = {.base_test = NAN};
  PT__TRY(pt__parse_file(configs_json, parse_meta, &m));
  if (!isnan(base_test_qos)) m.base_test = base_test_qos;
  if (isnan(m.base_test))
    return pt__error(PT_EINVAL, "%s: no baseline.test_qos (give the baseline's test QoS with --baseline-test-qos)",
                     configs_json);
  pt_config_list *cl;
  PT__TRY(pt_configs_load(configs_json, &cl));
  pt_status s = PT_OK;
  pt_graph *g = NULL;
  hop *h = NULL;
  int nh = 0, n_ops = 0;
  char **opnames = NULL; /* the ops a config names, in the order configs' knobs are looked up */
  int *order = NULL;
  char base[64] = "";
  conf *cf = NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (cl->n == 0) s = pt__error(PT_EINVAL, "%s: no configs to export", configs_json);
  /* where op types come from: HPVM-style names, else the network */
  if (s == PT_OK && !model) {
    order = pt__malloc(((size_t)cl->configs[0].n + 1) * sizeof *order);
    if (!order) s = pt__error(PT_ENOMEM, "export-hpvm: out of memory");
    else if (ops_from_names(cl->configs[0].n, cl->configs[0].ops, &h, order)) {
      n_ops = nh = cl->configs[0].n;
      opnames = pt__malloc((size_t)n_ops * sizeof *opnames);
      if (!opnames) s = pt__error(PT_ENOMEM, "export-hpvm: out of memory");
      for (int i = 0; s == PT_OK && i < n_ops; i++) opnames[i] = cl->configs[0].ops[order[i]];
    } else if (!m.app[0]) {
      s = pt__error(PT_EINVAL, "%s: op names are not HPVM's <type>_<index> and no model is named (give --model)",
                    configs_json);
    } else {
      model = m.app;
    }
  }
  if (s == PT_OK && model) {
    s = pt_model_is_onnx(model) ? pt_onnx_load(model, &g) : pt_zoo_build(model, &g);
    if (s != PT_OK) pt__error_prefix("%s: the op types come from model '%s'", configs_json, model);
    if (s == PT_OK) s = ops_from_graph(g, &h, &nh);
    n_ops = g ? g->n_ops : 0;
    opnames = g ? pt__malloc(((size_t)n_ops + 1) * sizeof *opnames) : NULL;
    if (s == PT_OK && !opnames) s = pt__error(PT_ENOMEM, "export-hpvm: out of memory");
    for (int i = 0; s == PT_OK && i < n_ops; i++) opnames[i] = (char *)pt_graph_op_name(g, i);
  }
  if (s == PT_OK) s = baseline_knob(&m, g, base, sizeof base);
  /* every config: a knob for every op, each with an HPVM knob type */
  const int nc = cl->n + 1;
  if (s == PT_OK && !(cf = pt__calloc((size_t)nc, sizeof *cf))) s = pt__error(PT_ENOMEM, "export-hpvm: out of memory");
  for (int c = 0; s == PT_OK && c < nc; c++) {
    if (!(cf[c].knob = pt__calloc((size_t)n_ops + 1, sizeof *cf[c].knob))) {
      s = pt__error(PT_ENOMEM, "export-hpvm: out of memory");
      break;
    }
    if (c == 0) { /* the baseline config */
      cf[c].speedup = 1.0;
      cf[c].test_qos = m.base_test;
      for (int o = 0; o < n_ops; o++) cf[c].knob[o] = base;
      continue;
    }
    const pt_config *pc = &cl->configs[c - 1];
    cf[c].speedup = 1.0 / pc->cost;
    cf[c].test_qos = isnan(pc->test_qos) ? pc->qos : pc->test_qos;
    for (int k = 0; s == PT_OK && k < pc->n; k++) {
      int o = 0;
      while (o < n_ops && strcmp(opnames[o], pc->ops[k])) o++;
      if (o == n_ops) s = pt__error(PT_EINVAL, "%s: config %d names op '%s', which the network does not have",
                                    configs_json, c - 1, pc->ops[k]);
      else cf[c].knob[o] = pc->knobs[k];
    }
    for (int o = 0; s == PT_OK && o < n_ops; o++) {
      if (!cf[c].knob[o])
        s = pt__error(PT_EINVAL, "%s: config %d has no knob for op '%s'", configs_json, c - 1, opnames[o]);
      else if (!knob_type(cf[c].knob[o]))
        s = pt__error(PT_EINVAL, "%s: config %d: knob '%s' of op '%s' has no HPVM knob type (HPVM knows 11, 12, "
                      "121-138, 151-168, 231-239, 261-269)", configs_json, c - 1, cf[c].knob[o], opnames[o]);
    }
    if (s == PT_OK && !(cf[c].speedup > 0))
      s = pt__error(PT_EINVAL, "%s: config %d has no positive speedup (cost %g)", configs_json, c - 1, pc->cost);
  }
  if (s == PT_OK) qsort(cf + 1, (size_t)cl->n, sizeof *cf, by_speedup);
  if (s == PT_OK) { /* the baseline sorts among the others by its speedup of 1.0 */
    conf b0 = cf[0];
    int at = 0;
    while (at + 1 < nc && cf[at + 1].speedup < 1.0) {
      cf[at] = cf[at + 1];
      at++;
    }
    cf[at] = b0;
  }
  if (s == PT_OK) s = put(&buf, &len, &cap, "0.0\n");
  for (int c = 0; s == PT_OK && c < nc; c++)
    s = put_block(&buf, &len, &cap, c + 1, cf[c].speedup, cf[c].test_qos, m.base_test - cf[c].test_qos, h, nh, cf[c].knob);
  if (s == PT_OK) s = pt_write_file_atomic(out_path, buf, len);
  free(buf);
  for (int c = 0; cf && c < nc; c++) free(cf[c].knob);
  free(cf);
  free(opnames);
  free(order);
  free(h);
  pt_graph_free(g);
  pt_configs_free(cl);
  return s;
}
