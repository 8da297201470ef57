/* The DNN app: a zoo network with its weights, a tune and a test set, a knob set and a backend.
 * QoS is classification accuracy (per-batch mean, as PredTuner); empirical cost is the wall time of
 * running the data set. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/hash.h"
#include "predtuner/backend.h"
#include "predtuner/frontend.h"
#include "predtuner/knobs.h"
#include "predtuner/log.h"
#include "predtuner/measure.h"
#include "predtuner/promise.h"

typedef struct dnn_ctx {
  pt_graph *g;
  pt_backend *be;
  pt_exec *ex;
  pt_dataset *tune, *test;
  pt_knob_set *ks;
  pt_space *sp;
  int batch;
  const pt_knob **entry; /* (n_entries) the knob of each (op, position) */
  pt_op_exec *ops;       /* (n_ops) scratch */
  double *op_seconds;    /* (n_ops) scratch for profiling */
} dnn_ctx;

static void config_ops(pt_app *app, const uint16_t *cfg, pt_op_exec *ops) {
  dnn_ctx *d = app->ctx;
  for (int op = 0; op < app->n_ops; op++) ops[op] = pt_knob_exec(d->entry[app->entry_off[op] + cfg[op]]);
}

/* Every config of the batch over the data set in one pass per batch of images (pt_measure_many):
 * configs that agree on the first ops share their work. */
static pt_status dnn_measure(pt_app *app, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  dnn_ctx *d = app->ctx;
  pt_dataset *ds = test ? d->test : d->tune;
  if (!cfgs) { /* the exact network */
    pt_measure_opts mo = {.batch_size = d->batch};
    pt_measure_result r;
    PT__TRY(pt_measure(d->ex, d->g, ds, &mo, &r));
    qos[0] = r.accuracy;
    if (cost) cost[0] = r.seconds;
    return PT_OK;
  }
  pt_op_exec *ops = pt__malloc((size_t)n * (size_t)app->n_ops * sizeof *ops);
  if (!ops) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  for (int k = 0; k < n; k++) config_ops(app, cfgs + (int64_t)k * app->n_ops, ops + (int64_t)k * app->n_ops);
  pt_status s = pt_measure_many(d->ex, d->g, ds, d->batch, n, ops, NULL, qos, cost);
  free(ops);
  return s;
}

/* dnn_measure on the tune set, stopping configs that cannot end above the rule's threshold. */
static pt_status dnn_measure_stop(pt_app *app, int n, const uint16_t *cfgs, const pt_stop_rule *stop, double *qos,
                                  double *cost, uint8_t *stopped) {
  dnn_ctx *d = app->ctx;
  pt_op_exec *ops = pt__malloc((size_t)n * (size_t)app->n_ops * sizeof *ops);
  if (!ops) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  for (int k = 0; k < n; k++) config_ops(app, cfgs + (int64_t)k * app->n_ops, ops + (int64_t)k * app->n_ops);
  pt_status s = pt_measure_many_stop(d->ex, d->g, d->tune, d->batch, n, ops, stop, NULL, qos, cost, stopped);
  free(ops);
  return s;
}

/* The tune set's outputs under n one-op changes, every batch of images run through
 * pt_exec_run_many for a group of changes at once: changes of op i share the exact network's work
 * up to op i, so each costs its op and the ops after it, with outputs bit for bit those of running
 * it alone. Memory: the group's staged outputs (under 64 MiB) plus the executor's checkpoints (at
 * most one set of live activations per op, for one batch of images). */
static pt_status dnn_outputs(pt_app *app, int n, const int *op, const int *pos, float *const *out, pt_progress *prog,
                             int64_t done) {
  dnn_ctx *d = app->ctx;
  const pt_dataset *ds = d->tune;
  const int64_t img = (int64_t)ds->c * ds->h * ds->w, cols = app->out_cols;
  const int bs = (int)(ds->n < d->batch ? ds->n : d->batch);
  const size_t per = (size_t)bs * (size_t)cols * sizeof(float);
  int group = (int)((64u << 20) / per);
  group = group < 1 ? 1 : group > n ? n : group;
  pt_op_exec *ops = pt__malloc((size_t)group * (size_t)app->n_ops * sizeof *ops);
  float *stage = pt__malloc((size_t)group * per);
  pt_status s = ops && stage ? PT_OK : pt__error(PT_ENOMEM, "app %s: out of memory for %d outputs", app->name, group);
  for (int k0 = 0; s == PT_OK && k0 < n; k0 += group) {
    const int nk = n - k0 < group ? n - k0 : group;
    memset(ops, 0, (size_t)nk * (size_t)app->n_ops * sizeof *ops);
    for (int k = 0; k < nk; k++)
      if (op[k0 + k] >= 0)
        ops[(size_t)k * (size_t)app->n_ops + (size_t)op[k0 + k]] = pt_knob_exec(d->entry[app->entry_off[op[k0 + k]] + pos[k0 + k]]);
    for (int64_t i = 0; s == PT_OK && i < ds->n; i += bs) {
      const int nb = (int)(ds->n - i < bs ? ds->n - i : bs);
      s = pt_exec_run_many(d->ex, ds->images + i * img, nb, ds->first + i, nk, ops, stage, NULL);
      for (int k = 0; s == PT_OK && k < nk; k++)
        memcpy(out[k0 + k] + i * cols, stage + (size_t)k * (size_t)nb * (size_t)cols, (size_t)nb * (size_t)cols * sizeof *stage);
      done += (int64_t)nb * nk;
      if (prog && s == PT_OK) pt_progress_update(prog, done);
    }
  }
  free(ops);
  free(stage);
  return s;
}

/* One timed run of the first batch of the tune set (input upload and output download included, so
 * the backend has finished when the clock stops). */
static pt_status dnn_time(pt_app *app, const uint16_t *cfg, double *seconds, int64_t *images) {
  dnn_ctx *d = app->ctx;
  const pt_dataset *ds = d->tune;
  const int n = (int)(ds->n < d->batch ? ds->n : d->batch);
  float *out = pt__malloc((size_t)n * (size_t)app->out_cols * sizeof *out);
  if (!out) return pt__error(PT_ENOMEM, "app %s: out of memory for a timed run", app->name);
  if (cfg) config_ops(app, cfg, d->ops);
  double t0 = pt_now();
  pt_status s = pt_exec_run_at(d->ex, ds->images, n, ds->first, cfg ? d->ops : NULL, out);
  *seconds = pt_now() - t0;
  *images = n;
  free(out);
  return s;
}

static double dnn_output_qos(const pt_app *app, const float *out) {
  const dnn_ctx *d = app->ctx;
  return pt_topk_accuracy(out, d->tune->labels, (int)d->tune->n, app->out_cols, 1);
}

/* Per-op time of the knobs named by entries knob_entry[0 .. n-1]: one run per knob, with that knob
 * on every op that has it (the baseline elsewhere), on the first batch of the tune set; the fastest
 * of three runs counts, for every entry of that knob. */
static pt_status dnn_profile(pt_app *app, int n_knobs, const int *knob_entry, double *entry_seconds, pt_progress *prog,
                             int64_t done) {
  dnn_ctx *d = app->ctx;
  const pt_dataset *ds = d->tune;
  int n = (int)(ds->n < d->batch ? ds->n : d->batch);
  float *out = pt__malloc((size_t)n * (size_t)app->out_cols * sizeof *out);
  double *best = pt__malloc((size_t)app->n_ops * sizeof *best);
  pt_status s = out && best ? PT_OK : pt__error(PT_ENOMEM, "app %s: out of memory for profiling", app->name);
  for (int i = 0; s == PT_OK && i < n_knobs; i++) {
    if (knob_entry[i] < 0 || knob_entry[i] >= app->n_entries) {
      s = pt__error(PT_EINVAL, "app %s: no knob choice %d to profile", app->name, knob_entry[i]);
      break;
    }
    const char *knob = app->entry_knob[knob_entry[i]];
    for (int op = 0; op < app->n_ops; op++) { /* this knob where the op has it, else the baseline */
      int p = pt_app_op_find_knob(app, op, knob);
      d->ops[op] = pt_knob_exec(d->entry[app->entry_off[op] + (p < 0 ? 0 : p)]);
      best[op] = INFINITY;
    }
    for (int rep = 0; s == PT_OK && rep < 3; rep++) {
      memset(d->op_seconds, 0, (size_t)app->n_ops * sizeof *d->op_seconds);
      pt_exec_time_ops(d->ex, d->op_seconds);
      s = pt_exec_run_at(d->ex, ds->images, n, ds->first, d->ops, out);
      pt_exec_time_ops(d->ex, NULL);
      for (int op = 0; op < app->n_ops; op++) best[op] = fmin(best[op], d->op_seconds[op]);
    }
    for (int op = 0; s == PT_OK && op < app->n_ops; op++) {
      int p = pt_app_op_find_knob(app, op, knob);
      if (p < 0) continue;
      entry_seconds[app->entry_off[op] + p] = best[op];
      done++;
    }
    if (prog) pt_progress_update(prog, done);
  }
  free(out);
  free(best);
  return s;
}

static void dnn_destroy(pt_app *app) {
  dnn_ctx *d = app->ctx;
  if (!d) return;
  pt_exec_prefix_stats st = {0};
  if (d->ex) pt_exec_prefix_cache_stats(d->ex, &st);
  if (st.restores > 0) {
    const int64_t ran = pt_exec_nodes_run(d->ex);
    pt_log(PT_LOG_INFO, "exact-prefix cache: %lld resumptions saved %lld node runs of %lld (%.1f %%); %d states, %.1f MiB",
           (long long)st.restores, (long long)st.nodes_saved, (long long)(ran + st.nodes_saved),
           100.0 * (double)st.nodes_saved / (double)(ran + st.nodes_saved), st.entries, (double)st.bytes / (1 << 20));
  }
  pt_exec_free(d->ex);
  pt_backend_free(d->be);
  pt_dataset_close(d->tune);
  pt_dataset_close(d->test);
  pt_space_free(d->sp);
  pt_knobs_free(d->ks);
  pt_graph_free(d->g);
  free(d->entry);
  free(d->ops);
  free(d->op_seconds);
  free(d);
}

static const pt__app_vt DNN_VT = {
    .measure = dnn_measure,
    .measure_stop = dnn_measure_stop,
    .outputs = dnn_outputs,
    .time = dnn_time,
    .output_qos = dnn_output_qos,
    .profile = dnn_profile,
    .destroy = dnn_destroy,
};

pt_exec *pt__dnn_app_exec(pt_app *app) { return app->vt == &DNN_VT ? ((dnn_ctx *)app->ctx)->ex : NULL; }

static const char *default_device(const pt_backend *be) { return strcmp(pt_backend_name(be), "cpu") ? "gpu" : "cpu"; }

static uint64_t fp_dataset(const pt_dataset *ds) {
  uint64_t h = pt__hash_u64(PT__HASH_INIT, (uint64_t)ds->first);
  h = pt__hash_bytes(h, ds->images, (size_t)ds->n * (size_t)ds->c * (size_t)ds->h * (size_t)ds->w * sizeof(float));
  return pt__hash_final(pt__hash_bytes(h, ds->labels, (size_t)ds->n * sizeof *ds->labels));
}

/* What the app's stored models and journals depend on (app_internal.h, pt__fp_part). */
static void fingerprint(pt_app *app, const pt_dnn_app_opts *o) {
  dnn_ctx *d = app->ctx;
  pt_graph_fingerprint(d->g, &app->fp[PT__FP_GRAPH], &app->fp[PT__FP_WEIGHTS]);
  app->fp[PT__FP_TUNE] = fp_dataset(d->tune);
  app->fp[PT__FP_TEST] = fp_dataset(d->test);
  uint64_t h = PT__HASH_INIT;
  for (int op = 0; op < app->n_ops; op++) { /* the knobs' semantics, not only their names */
    h = pt__hash_str(h, app->op_names[op]);
    for (int p = 0; p < app->n_knobs[op]; p++) {
      const pt_knob *k = d->entry[app->entry_off[op] + p];
      pt_op_exec x = pt_knob_exec(k);
      uint8_t b[8] = {x.kind, x.fp16, x.perf_dir, x.perf_stride, x.perf_offset, x.samp_every, x.samp_offset, x.promise_level};
      h = pt__hash_f64(pt__hash_f64(pt__hash_bytes(pt__hash_str(h, k->name), b, sizeof b), x.samp_interp), k->exp_speedup);
    }
  }
  app->fp[PT__FP_KNOBS] = pt__hash_final(h);
  app->fp[PT__FP_DEVICE] = pt__fp_text(app->target);
  app->fp[PT__FP_BACKEND] = pt__fp_text(pt_backend_name(d->be));
  h = pt__hash_u64(pt__hash_u64(PT__HASH_INIT, (uint64_t)d->batch), o->seed);
  app->fp[PT__FP_MEASURE] = pt__hash_final(pt__hash_u64(h, o->promise_ranges ? pt__fp_file(o->promise_ranges) : 0));
}

/* A knob's column in the sensitivity heatmap: its class, perforation by direction. */
static const char *knob_group(const pt_knob *k) {
  switch (k->cls) {
    case PT_KNOB_FP32: return "fp32";
    case PT_KNOB_FP16: return "fp16";
    case PT_KNOB_PERFORATE: return k->perf_dir == PT_PERF_COLS ? "perforate cols" : "perforate rows";
    case PT_KNOB_SAMPLING: return "sampling";
    case PT_KNOB_PROMISE: return "promise";
  }
  return "other";
}

/* PromiseSim needs quantisation ranges: from the file, or calibrated on the tune set. */
static pt_status setup_promise(pt_app *app, const pt_dnn_app_opts *o) {
  dnn_ctx *d = app->ctx;
  int any = 0;
  for (int e = 0; e < app->n_entries; e++) any |= d->entry[e]->cls == PT_KNOB_PROMISE;
  if (!any) return PT_OK;
  pt_promise_ranges *r = pt__calloc((size_t)app->n_ops, sizeof *r);
  if (!r) return pt__error(PT_ENOMEM, "app %s: out of memory for PromiseSim's ranges", app->name);
  pt_status s = o->promise_ranges ? pt_promise_ranges_load(o->promise_ranges, d->g, r)
                                  : pt_promise_calibrate(d->ex, d->g, d->tune, d->batch, r);
  if (s == PT_OK) s = pt_exec_set_promise(d->ex, r, o->seed);
  free(r);
  return s;
}

pt_status pt_app_dnn_create(const pt_dnn_app_opts *o, pt_app **out) {
  *out = NULL;
  if (!o || !o->model || !o->data) return pt__error(PT_EINVAL, "DNN app: needs a model and data");
  pt_app *app = pt__calloc(1, sizeof *app);
  dnn_ctx *d = pt__calloc(1, sizeof *d);
  if (!app || !d) {
    free(app);
    free(d);
    return pt__error(PT_ENOMEM, "DNN app: out of memory");
  }
  app->vt = &DNN_VT;
  app->ctx = d;
  d->batch = o->batch_size > 0 ? o->batch_size : PT_BATCH_SIZE_DEFAULT;
  int c = 0, h = 0, w = 0, target = 0;
  pt_status s = pt_model_load(o->model, o->weights, &d->g);
  if (s == PT_OK) s = pt_graph_check_weights(d->g, o->weights ? o->weights : o->model, o->strict);
  if (s == PT_OK && pt_graph_num_classes(d->g) <= 0)
    s = pt__error(PT_EUNSUPPORTED, "%s: the network's output is not (batch, classes), so it cannot be scored on labels",
                  o->model);
  if (s == PT_OK) {
    pt_graph_input_shape(d->g, &c, &h, &w);
    int nc = pt_graph_num_classes(d->g);
    s = pt_dataset_open(o->data, "tune", c, h, w, nc, o->tune_offset, o->tune_count > 0 ? o->tune_count : -1, &d->tune);
    if (s == PT_OK)
      s = pt_dataset_open(o->data, "test", c, h, w, nc, o->test_offset, o->test_count > 0 ? o->test_count : -1, &d->test);
  }
  if (s == PT_OK) s = pt_backend_create(o->backend ? o->backend : "auto", o->threads, &d->be);
  if (s == PT_OK) s = pt_exec_create(d->g, d->be, &d->ex);
  if (s == PT_OK && o->prefix_cache_mib >= 0) /* the tune set's exact prefixes, kept across batches of configs */
    pt_exec_set_prefix_cache(d->ex, (size_t)(o->prefix_cache_mib ? o->prefix_cache_mib : PT_PREFIX_CACHE_MIB_DEFAULT) << 20);
  if (s == PT_OK) app->be = d->be;
  const char *tdev = o->target_device ? o->target_device : (d->be ? default_device(d->be) : "cpu");
  if (s == PT_OK && (target = pt_device_parse(tdev)) < 0)
    s = pt__error(PT_EINVAL, "target device '%s': expected cpu, gpu or any", tdev);
  if (s == PT_OK) s = o->knobs_file ? pt_knobs_load(o->knobs_file, &d->ks) : pt_knobs_default(&d->ks);
  if (s == PT_OK) s = pt_space_build(d->g, d->ks, (unsigned)target, &d->sp);
  int no = d->g ? pt_graph_num_ops(d->g) : 0, ne = 0;
  for (int op = 0; s == PT_OK && op < no; op++) ne += pt_space_op_count(d->sp, op);
  if (s == PT_OK) s = pt__app_alloc(app, no, ne);
  if (s == PT_OK) {
    d->entry = pt__calloc((size_t)ne, sizeof *d->entry);
    d->ops = pt__calloc((size_t)no, sizeof *d->ops);
    d->op_seconds = pt__calloc((size_t)no, sizeof *d->op_seconds);
    if (!d->entry || !d->ops || !d->op_seconds) s = pt__error(PT_ENOMEM, "DNN app: out of memory");
  }
  if (s == PT_OK) {
    snprintf(app->name, sizeof app->name, "%s", o->name && o->name[0] ? o->name : pt_graph_name(d->g));
    snprintf(app->target, sizeof app->target, "%s", pt_device_name((unsigned)target));
    snprintf(app->knobs_source, sizeof app->knobs_source, "%s", o->knobs_file ? o->knobs_file : "built-in");
    app->out_rows = (int)d->tune->n;
    app->out_cols = pt_graph_num_classes(d->g);
    app->out_labels = d->tune->labels;
    int e = 0;
    for (int op = 0; op < no && s == PT_OK; op++) {
      app->op_names[op] = pt__strdup(pt_graph_op_name(d->g, op));
      app->op_cost[op] = pt_graph_op_flops(d->g, op);
      app->n_knobs[op] = pt_space_op_count(d->sp, op);
      app->entry_off[op] = e;
      if (!app->op_names[op]) s = pt__error(PT_ENOMEM, "DNN app: out of memory");
      for (int p = 0; p < app->n_knobs[op] && s == PT_OK; p++, e++) {
        d->entry[e] = pt_space_op_knob(d->sp, op, p);
        app->entry_knob[e] = pt__strdup(d->entry[e]->name);
        app->entry_speedup[e] = d->entry[e]->exp_speedup;
        app->entry_group[e] = knob_group(d->entry[e]);
        if (!app->entry_knob[e]) s = pt__error(PT_ENOMEM, "DNN app: out of memory");
      }
    }
    app->entry_off[no] = e;
    snprintf(app->desc, sizeof app->desc,
             "%s (%d ops), weights %s, data %s (tune %lld, test %lld images), %s, knobs %s (target %s, baseline \"%s\")",
             o->model, no, o->weights, o->data, (long long)d->tune->n, (long long)d->test->n,
             pt_backend_describe(d->be), app->knobs_source, app->target, pt_space_baseline(d->sp)->name);
  }
  if (s == PT_OK) s = setup_promise(app, o);
  if (s == PT_OK) {
    app->qos_percent = 1;
    fingerprint(app, o);
  }
  if (s != PT_OK) {
    pt_app_free(app);
    return s;
  }
  *out = app;
  return PT_OK;
}
