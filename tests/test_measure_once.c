/* The measurement issue: QoS-model initialisation that shares the exact prefix gives the same
 * models as running every (op, knob) change alone; the best configs are timed against the exact
 * network. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"
#include "predtuner/predtuner.h"

#include "additive_app.h"

#define DEMO PT_SOURCE_DIR "/zoo/demo"
enum { TUNE = 300, BATCH = 128 }; /* the last batch is partial */

static char *once_dir(void) {
  static char d[64];
  snprintf(d, sizeof d, "/tmp/pt_once_XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  return d;
}

static pt_app *demo_app(void) {
  pt_dnn_app_opts ao = {.model = "lenet_mnist", .weights = DEMO "/lenet_mnist.safetensors", .data = DEMO,
                        .backend = "cpu", .threads = 2, .batch_size = BATCH, .tune_count = TUNE, .test_count = 100,
                        .target_device = "any", .seed = 7};
  pt_app *app = NULL;
  cr_assert_eq(pt_app_dnn_create(&ao, &app), PT_OK, "%s", pt_last_error());
  return app;
}

/* Everything a change run alone needs: the demo network on the CPU with the app's knobs and
 * PromiseSim calibrated as the app does it. */
typedef struct ref {
  pt_graph *g;
  pt_backend *be;
  pt_exec *ex;
  pt_dataset *ds;
  pt_knob_set *ks;
  pt_space *sp;
  pt_op_exec *ops;
  int classes;
} ref;

static void ref_open(ref *r) {
  memset(r, 0, sizeof *r);
  cr_assert_eq(pt_model_load("lenet_mnist", DEMO "/lenet_mnist.safetensors", &r->g), PT_OK, "%s", pt_last_error());
  int c, h, w;
  pt_graph_input_shape(r->g, &c, &h, &w);
  r->classes = pt_graph_num_classes(r->g);
  cr_assert_eq(pt_dataset_open(DEMO, "tune", c, h, w, r->classes, 0, TUNE, &r->ds), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_backend_create("cpu", 2, &r->be), PT_OK);
  cr_assert_eq(pt_exec_create(r->g, r->be, &r->ex), PT_OK);
  cr_assert_eq(pt_knobs_default(&r->ks), PT_OK);
  cr_assert_eq(pt_space_build(r->g, r->ks, 0, &r->sp), PT_OK);
  int n_ops = pt_graph_num_ops(r->g);
  pt_promise_ranges *pr = calloc((size_t)n_ops, sizeof *pr);
  cr_assert_eq(pt_promise_calibrate(r->ex, r->g, r->ds, BATCH, pr), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_exec_set_promise(r->ex, pr, 7), PT_OK);
  free(pr);
  r->ops = calloc((size_t)n_ops, sizeof *r->ops);
}

static void ref_close(ref *r) {
  free(r->ops);
  pt_space_free(r->sp);
  pt_knobs_free(r->ks);
  pt_exec_free(r->ex);
  pt_backend_free(r->be);
  pt_dataset_close(r->ds);
  pt_graph_free(r->g);
}

/* The tune set's output (TUNE x classes) with only op at position pos (op < 0: exact), batch by
 * batch as one config alone runs; returns its QoS as PredTuner defines it (mean of batch accuracies). */
static double ref_output(ref *r, int op, int pos, float *out) {
  int n_ops = pt_graph_num_ops(r->g);
  memset(r->ops, 0, (size_t)n_ops * sizeof *r->ops);
  if (op >= 0) r->ops[op] = pt_knob_exec(pt_space_op_knob(r->sp, op, pos));
  int64_t img = (int64_t)r->ds->c * r->ds->h * r->ds->w;
  double acc = 0;
  int batches = 0;
  for (int64_t i = 0; i < r->ds->n; i += BATCH, batches++) {
    int n = (int)(r->ds->n - i < BATCH ? r->ds->n - i : BATCH);
    float *o = out + i * r->classes;
    cr_assert_eq(pt_exec_run_at(r->ex, r->ds->images + i * img, n, r->ds->first + i, op >= 0 ? r->ops : NULL, o),
                 PT_OK, "%s", pt_last_error());
    acc += pt_count_nonfinite(o, (int64_t)n * r->classes) ? NAN : pt_topk_accuracy(o, r->ds->labels + i, n, r->classes, 1);
  }
  return acc / batches;
}

Test(init, p1_and_p2_from_shared_prefixes_equal_every_change_run_alone, .timeout = 300) {
  pt_app *app = demo_app();
  char *d = once_dir();
  pt__p1 m1;
  cr_assert_eq(pt__p1_init(app, d, 1, NULL, &m1), PT_OK, "%s", pt_last_error());
  pt__p1_free(&m1);
  pt__p2 m2;
  cr_assert_eq(pt__p2_init(app, NULL, 1, NULL, &m2), PT_OK, "%s", pt_last_error());
  char path[256];
  snprintf(path, sizeof path, "%s/p1.safetensors", d);
  pt_safetensors *st = NULL;
  cr_assert_eq(pt_st_open(path, &st), PT_OK, "%s", pt_last_error());
  ref r;
  ref_open(&r);
  cr_assert_eq(pt_app_num_ops(app), pt_graph_num_ops(r.g));
  size_t per = (size_t)TUNE * (size_t)r.classes;
  float *base = malloc(per * sizeof *base), *out = malloc(per * sizeof *out), *got = malloc(per * sizeof *got);
  double q0 = ref_output(&r, -1, 0, base);
  cr_assert_eq(m2.q0, q0, "P2's exact QoS %.17g, alone %.17g", m2.q0, q0);
  cr_assert_eq(pt_st_read_f32(st, pt_st_find(st, "baseline"), got), PT_OK);
  cr_assert_eq(memcmp(got, base, per * sizeof *got), 0, "the stored exact output differs");
  int entries = 0, changed = 0;
  for (int op = 0; op < pt_app_num_ops(app); op++) {
    cr_assert_eq(pt_app_op_num_knobs(app, op), pt_space_op_count(r.sp, op));
    for (int p = 0; p < pt_app_op_num_knobs(app, op); p++, entries++) {
      double q = ref_output(&r, op, p, out);
      for (size_t i = 0; i < per; i++) out[i] -= base[i];
      char name[256];
      snprintf(name, sizeof name, "delta/%s/%s", pt_app_op_name(app, op), pt_app_op_knob(app, op, p));
      int t = pt_st_find(st, name);
      cr_assert_geq(t, 0, "%s is missing", name);
      cr_assert_eq(pt_st_read_f32(st, t, got), PT_OK);
      cr_expect_eq(memcmp(got, out, per * sizeof *got), 0, "%s differs from the change run alone", name);
      double want = isfinite(q) ? q : 0.0; /* a knob that alone is non-finite scores 0 */
      cr_expect_eq(m2.q[entries], want, "P2 %s: %.17g, alone %.17g", name, m2.q[entries], want);
      for (size_t i = 0; i < per && p; i++)
        if (out[i] != 0.0f) {
          changed++;
          break;
        }
    }
  }
  cr_assert_gt(entries, 40, "the demo has %d (op, knob) entries", entries);
  cr_assert_gt(changed, entries / 2, "only %d of %d knobs change the output", changed, entries);
  free(base), free(out), free(got);
  pt_st_close(st);
  ref_close(&r);
  pt__p2_free(&m2);
  pt_app_free(app);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  cr_expect_eq(system(cmd), 0);
}

/* ---- measured speedups ---- */

static void tune_demo(pt_app *app, int passes, const char *dir, pt_tuner **t) {
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 40;
  o.qos_model = PT_QOS_P2;
  o.cost_model = PT_COST_LINEAR;
  o.take_best_n = 4;
  o.time_passes = passes;
  o.output_dir = dir;
  o.overwrite = 1;
  cr_assert_eq(pt_tuner_create(app, t), PT_OK);
  cr_assert_eq(pt_tuner_tune(*t, &o), PT_OK, "%s", pt_last_error());
}

Test(timing, every_best_config_is_timed_against_the_exact_network, .timeout = 300) {
  pt_app *app = demo_app();
  char *d = once_dir();
  pt_tuner *t;
  tune_demo(app, 3, d, &t);
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_eq(s->timed_passes, 3);
  cr_assert_eq(s->timed_images, BATCH, "a timed pass runs the first batch of the tune set");
  cr_assert(s->exact_seconds > 0 && s->exact_seconds < 30, "exact %g s", s->exact_seconds);
  int n = pt_tuner_count(t, PT_BEST);
  cr_assert_gt(n, 0);
  double err = 0;
  for (int i = 0; i < n; i++) {
    pt_tuned_config c;
    cr_assert_eq(pt_tuner_get(t, PT_BEST, i, &c), PT_OK);
    cr_assert(c.measured_seconds > 0 && c.measured_seconds < 30, "config %d: %g s", i, c.measured_seconds);
    cr_assert_eq(c.measured_speedup, s->exact_seconds / c.measured_seconds);
    err += fabs(c.speedup - c.measured_speedup) / c.measured_speedup; /* the demo's baseline config is exact */
  }
  cr_assert_float_eq(s->mean_speedup_error, err / n, 1e-12);
  /* configs.json carries them; a plot made from it gets the measured panel's data */
  char path[256];
  snprintf(path, sizeof path, "%s/configs.json", d);
  cr_assert_eq(pt_tuner_dump_configs(t, path, 0), PT_OK);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "grep -c '\"measured_speedup\":' %s | grep -qx %d && grep -q '\"exact_seconds\":' %s", path, n, path);
  cr_assert_eq(system(cmd), 0, "configs.json lacks the measured speedups");
  snprintf(cmd, sizeof cmd, "%s/re.png", d);
  cr_assert_eq(pt_plot_configs_file(path, cmd, 0), PT_OK, "%s", pt_last_error());
  pt_tuner_free(t);
  /* --time-passes 0: nothing timed, NaN everywhere, null in the JSON */
  tune_demo(app, 0, d, &t);
  cr_assert_eq(pt_tuner_summary(t)->timed_passes, 0);
  cr_assert(isnan(pt_tuner_summary(t)->exact_seconds));
  pt_tuned_config c;
  cr_assert_eq(pt_tuner_get(t, PT_BEST, 0, &c), PT_OK);
  cr_assert(isnan(c.measured_seconds) && isnan(c.measured_speedup));
  cr_assert_eq(pt_tuner_dump_configs(t, path, 0), PT_OK);
  snprintf(cmd, sizeof cmd, "grep -q '\"measured_speedup\":\tnull' %s", path);
  cr_assert_eq(system(cmd), 0, "an untimed config's measured speedup is not null");
  pt_tuner_free(t);
  pt_app_free(app);
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  cr_expect_eq(system(cmd), 0);
}

Test(timing, a_generic_app_whose_costs_are_not_times_is_not_timed) {
  pt_app *app = make_app();
  pt_tuner *t;
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 30;
  o.cost_model = PT_COST_LINEAR;
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  cr_assert_gt(pt_tuner_count(t, PT_BEST), 0);
  cr_assert_eq(pt_tuner_summary(t)->timed_passes, 0);
  pt_tuned_config c;
  cr_assert_eq(pt_tuner_get(t, PT_BEST, 0, &c), PT_OK);
  cr_assert(isnan(c.measured_speedup));
  o.time_passes = -1;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_EINVAL);
  pt_tuner_free(t);
  pt_app_free(app);
}
