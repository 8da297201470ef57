/* export-hpvm (docs/design.md, "HPVM interoperation"): a tuning run's configs as HPVM's config text.
 * The op types come from the network (a zoo name or an .onnx file) or from HPVM-style op names; the
 * text itself is written by io/hpvm_text.c. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "io/hpvm_text.h"
#include "predtuner/frontend.h"
#include "predtuner/hpvm.h"
#include "predtuner/io.h"
#include "predtuner/knobs.h"
#include "predtuner/zoo.h"

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

/* One exported config: its speedup, test QoS and a knob per op. */
typedef struct conf {
  double speedup, test_qos;
  const char **knob; /* (n_ops) knob per op, in `opnames` order */
} conf;

/* Everything one export holds. */
typedef struct export_ctx {
  const char *path; /* the configs.json, for messages */
  meta m;
  pt_config_list *cl;
  pt_graph *g;       /* the network the op types come from, or NULL */
  pt__hpvm_op *h;    /* (nh) the HPVM op sequence */
  int nh, n_ops;
  char **opnames;    /* (n_ops) the ops a config names, in the order configs' knobs are looked up */
  int *order;
  char base[64];     /* the baseline knob */
  conf *cf;          /* (cl->n + 1) the baseline config, then every config */
} export_ctx;

static void ctx_free(export_ctx *x) {
  for (int c = 0; x->cf && x->cl && c < x->cl->n + 1; c++) free(x->cf[c].knob);
  free(x->cf), free(x->opnames), free(x->order), free(x->h);
  pt_graph_free(x->g);
  pt_configs_free(x->cl);
}

/* The op types: from HPVM-style names in the first config, else from the network (model, or the
 * configs' "app"). */
static pt_status op_types(export_ctx *x, const char *model) {
  const pt_config *c0 = &x->cl->configs[0];
  if (!model) {
    if (!(x->order = pt__malloc(((size_t)c0->n + 1) * sizeof *x->order)))
      return pt__error(PT_ENOMEM, "export-hpvm: out of memory");
    int named = pt__hpvm_ops_from_names(c0->n, c0->ops, &x->h, x->order);
    if (named < 0) return PT_ENOMEM;
    if (named) {
      x->n_ops = x->nh = c0->n;
      if (!(x->opnames = pt__malloc((size_t)x->n_ops * sizeof *x->opnames)))
        return pt__error(PT_ENOMEM, "export-hpvm: out of memory");
      for (int i = 0; i < x->n_ops; i++) x->opnames[i] = c0->ops[x->order[i]];
      return PT_OK;
    }
    if (!x->m.app[0])
      return pt__error(PT_EINVAL, "%s: op names are not HPVM's <type>_<index> and no model is named (give --model)",
                       x->path);
    model = x->m.app;
  }
  pt_status s = pt_model_is_onnx(model) ? pt_onnx_load(model, &x->g) : pt_zoo_build(model, &x->g);
  if (s != PT_OK) {
    pt__error_prefix("%s: the op types come from model '%s'", x->path, model);
    return s;
  }
  PT__TRY(pt__hpvm_ops_from_graph(x->g, &x->h, &x->nh));
  x->n_ops = pt_graph_num_ops(x->g);
  if (!(x->opnames = pt__malloc(((size_t)x->n_ops + 1) * sizeof *x->opnames)))
    return pt__error(PT_ENOMEM, "export-hpvm: out of memory");
  for (int i = 0; i < x->n_ops; i++) x->opnames[i] = (char *)pt_graph_op_name(x->g, i);
  return PT_OK;
}

/* The baseline knob of every op: the knob set's baseline for the run's target device. */
static pt_status baseline_knob(export_ctx *x) {
  const meta *m = &x->m;
  if (!x->g) { /* HPVM-style ops: HPVM's own baseline is fp16 on the GPU */
    snprintf(x->base, sizeof x->base, "%s", !strcmp(m->target, "cpu") ? "11" : "12");
    return PT_OK;
  }
  pt_knob_set *ks;
  int builtin = !m->knobs_file[0] || !strcmp(m->knobs_file, "built-in");
  PT__TRY(builtin ? pt_knobs_default(&ks) : pt_knobs_load(m->knobs_file, &ks));
  int dev = pt_device_parse(m->target[0] ? m->target : "gpu");
  pt_space *sp;
  pt_status s = pt_space_build(x->g, ks, dev < 0 ? (unsigned)pt_device_parse("gpu") : (unsigned)dev, &sp);
  if (s == PT_OK) {
    snprintf(x->base, sizeof x->base, "%s", pt_space_baseline(sp)->name);
    pt_space_free(sp);
  }
  pt_knobs_free(ks);
  return s;
}

/* Config c (0: the baseline): a knob for every op, each with an HPVM knob type. */
static pt_status make_conf(export_ctx *x, int c) {
  conf *cf = &x->cf[c];
  if (!(cf->knob = pt__calloc((size_t)x->n_ops + 1, sizeof *cf->knob)))
    return pt__error(PT_ENOMEM, "export-hpvm: out of memory");
  if (c == 0) {
    cf->speedup = 1.0;
    cf->test_qos = x->m.base_test;
    for (int o = 0; o < x->n_ops; o++) cf->knob[o] = x->base;
    return PT_OK;
  }
  const pt_config *pc = &x->cl->configs[c - 1];
  cf->speedup = 1.0 / pc->cost;
  cf->test_qos = isnan(pc->test_qos) ? pc->qos : pc->test_qos;
  for (int k = 0; k < pc->n; k++) {
    int o = 0;
    while (o < x->n_ops && strcmp(x->opnames[o], pc->ops[k])) o++;
    if (o == x->n_ops)
      return pt__error(PT_EINVAL, "%s: config %d names op '%s', which the network does not have", x->path, c - 1,
                       pc->ops[k]);
    cf->knob[o] = pc->knobs[k];
  }
  for (int o = 0; o < x->n_ops; o++) {
    if (!cf->knob[o]) return pt__error(PT_EINVAL, "%s: config %d has no knob for op '%s'", x->path, c - 1, x->opnames[o]);
    if (!pt__hpvm_knob_type(cf->knob[o]))
      return pt__error(PT_EINVAL, "%s: config %d: knob '%s' of op '%s' has no HPVM knob type (HPVM knows 11, 12, "
                       "121-138, 151-168, 231-239, 261-269)", x->path, c - 1, cf->knob[o], x->opnames[o]);
  }
  if (!(cf->speedup > 0))
    return pt__error(PT_EINVAL, "%s: config %d has no positive speedup (cost %g)", x->path, c - 1, pc->cost);
  return PT_OK;
}

static int by_speedup(const void *a, const void *b) {
  const conf *p = a, *q = b;
  return (p->speedup > q->speedup) - (p->speedup < q->speedup);
}

/* Every config sorted by speedup, the baseline among them by its speedup of 1.0. */
static void sort_confs(export_ctx *x) {
  const int nc = x->cl->n + 1;
  qsort(x->cf + 1, (size_t)x->cl->n, sizeof *x->cf, by_speedup);
  conf b0 = x->cf[0];
  int at = 0;
  while (at + 1 < nc && x->cf[at + 1].speedup < 1.0) {
    x->cf[at] = x->cf[at + 1];
    at++;
  }
  x->cf[at] = b0;
}

static pt_status write_text(const export_ctx *x, const char *out_path) {
  pt__text t = {0};
  pt_status s = pt__text_put(&t, "0.0\n");
  for (int c = 0; s == PT_OK && c < x->cl->n + 1; c++)
    s = pt__hpvm_put_block(&t, c + 1, x->cf[c].speedup, x->cf[c].test_qos, x->m.base_test - x->cf[c].test_qos, x->h,
                           x->nh, x->cf[c].knob);
  if (s == PT_OK) s = pt_write_file_atomic(out_path, t.buf, t.len);
  free(t.buf);
  return s;
}

pt_status pt_hpvm_export(const char *configs_json, const char *model, double base_test_qos, const char *out_path) {
  export_ctx x = {.path = configs_json, .m = {.base_test = NAN}};
  PT__TRY(pt__parse_file(configs_json, parse_meta, &x.m));
  if (!isnan(base_test_qos)) x.m.base_test = base_test_qos;
  if (isnan(x.m.base_test))
    return pt__error(PT_EINVAL, "%s: no baseline.test_qos (give the baseline's test QoS with --baseline-test-qos)",
                     configs_json);
  PT__TRY(pt_configs_load(configs_json, &x.cl));
  pt_status s = x.cl->n ? PT_OK : pt__error(PT_EINVAL, "%s: no configs to export", configs_json);
  if (s == PT_OK) s = op_types(&x, model);
  if (s == PT_OK) s = baseline_knob(&x);
  if (s == PT_OK && !(x.cf = pt__calloc((size_t)x.cl->n + 1, sizeof *x.cf)))
    s = pt__error(PT_ENOMEM, "export-hpvm: out of memory");
  for (int c = 0; s == PT_OK && c < x.cl->n + 1; c++) s = make_conf(&x, c);
  if (s == PT_OK) {
    sort_confs(&x);
    s = write_text(&x, out_path);
  }
  ctx_free(&x);
  return s;
}
