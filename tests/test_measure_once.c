/* The measurement issue: QoS-model initialisation that shares the exact prefix gives the same
 * models as running every (op, knob) change alone; the best configs are timed against the exact
 * network. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sqlite3.h>
#include <string.h>

#include "app/app_internal.h"
#include "core/rng.h"
#include "models/models.h"
#include "predtuner/predtuner.h"

#include "additive_app.h"

#define DEMO PT_SOURCE_DIR "/zoo/demo"
enum { TUNE = 150, BATCH = 64 }; /* the last batch is partial */

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
  cr_assert_eq(pt__p1_init(app, d, 1, NULL, NULL, &m1), PT_OK, "%s", pt_last_error());
  pt__p1_free(&m1);
  pt__p2 m2;
  cr_assert_eq(pt__p2_init(app, NULL, 1, NULL, NULL, &m2), PT_OK, "%s", pt_last_error());
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
  o.max_iter = 12;
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

/* ---- early stopping ---- */

static double kl(double a, double b) {
  return (a > 0 ? a * log(a / b) : 0) + (a < 1 ? (1 - a) * log((1 - a) / (1 - b)) : 0);
}

Test(early_stop, bounds_on_hand_made_cases) {
  const int sizes[3] = {1000, 1000, 500}; /* the last batch is partial: it weighs as much as a full one */
  const int correct[3] = {900, 800, 250};
  pt_stop_rule ex = {PT_EARLY_STOP_EXACT, 0, 0}, cf = {PT_EARLY_STOP_CONFIDENT, 0, 1e-4};
  cr_assert_float_eq(pt_qos_bound(&ex, 3, sizes, correct, 0), 100.0, 1e-12);
  cr_assert_float_eq(pt_qos_bound(&ex, 3, sizes, correct, 1), (90.0 + 100 + 100) / 3, 1e-12);
  cr_assert_float_eq(pt_qos_bound(&ex, 3, sizes, correct, 2), (90.0 + 80 + 100) / 3, 1e-12);
  cr_assert_float_eq(pt_qos_bound(&ex, 3, sizes, correct, 3), (90.0 + 80 + 50) / 3, 1e-12, "all measured: the QoS");
  cr_assert_float_eq(pt_qos_bound(&cf, 3, sizes, correct, 3), (90.0 + 80 + 50) / 3, 1e-12);
  cr_assert_float_eq(pt_qos_bound(&cf, 3, sizes, correct, 0), 100.0, 1e-12, "nothing measured: no bound");
  /* confident after two batches: p_u from 1700 of 2000 right, then the 500-image batch given p_u;
   * 2 checks (after batches 1 and 2) of 2 bounds each share delta */
  double b = pt_qos_bound(&cf, 3, sizes, correct, 2);
  double lim1 = log(2 * 2 / 1e-4), lim2 = lim1;
  double pu = NAN, q = NAN;
  for (double lo = 0.85, hi = 1, i = 0; i < 200; i++) { /* m KL(0.85 || p) = lim1 */
    pu = 0.5 * (lo + hi);
    *(2000 * kl(0.85, pu) <= lim1 ? &lo : &hi) = pu;
  }
  for (double lo = pu, hi = 1, i = 0; i < 200; i++) { /* 500 KL(q || p_u) = lim2 */
    q = 0.5 * (lo + hi);
    *(500 * kl(q, pu) >= lim2 ? &hi : &lo) = q;
  }
  cr_assert(pu > 0.85 && pu < 0.9 && q > pu && q < 1, "p_u %g, q %g", pu, q);
  cr_assert_float_eq(b, (90.0 + 80 + 100 * q) / 3, 1e-6, "confident %.9f, by hand %.9f", b, (90.0 + 80 + 100 * q) / 3);
  cr_assert_lt(b, pt_qos_bound(&ex, 3, sizes, correct, 2));
  pt_stop_rule loose = cf;
  loose.delta = 0.1;
  cr_assert_lt(pt_qos_bound(&loose, 3, sizes, correct, 2), b, "a larger delta gives a lower bound");
  /* two runs remain (two full batches, one partial): 3 checks of 3 bounds each share delta */
  const int s4[4] = {1000, 1000, 1000, 500}, c4[4] = {850};
  double lim = log(3 * 3 / 1e-4), q2 = NAN, q1 = NAN;
  for (double lo = 0.85, hi = 1, i = 0; i < 200; i++) {
    pu = 0.5 * (lo + hi);
    *(1000 * kl(0.85, pu) <= lim ? &lo : &hi) = pu;
  }
  for (double lo = pu, hi = 1, i = 0; i < 200; i++) { /* the two full batches: 2000 images */
    q2 = 0.5 * (lo + hi);
    *(2000 * kl(q2, pu) >= lim ? &hi : &lo) = q2;
  }
  for (double lo = pu, hi = 1, i = 0; i < 200; i++) { /* the partial one */
    q1 = 0.5 * (lo + hi);
    *(500 * kl(q1, pu) >= lim ? &hi : &lo) = q1;
  }
  cr_assert_float_eq(pt_qos_bound(&cf, 4, s4, c4, 1), (85.0 + 200 * q2 + 100 * q1) / 4, 1e-6);
  /* every image right so far: p_u = 1 and the bound is the exact one */
  const int all[3] = {1000, 1000, 500};
  cr_assert_float_eq(pt_qos_bound(&cf, 3, sizes, all, 1), pt_qos_bound(&ex, 3, sizes, all, 1), 1e-12);
  cr_assert(isnan(pt_qos_bound(&ex, 3, sizes, correct, 4)), "done past the end");
  cr_assert(isnan(pt_qos_bound(NULL, 3, sizes, correct, 1)));
  const int zero[2] = {100, 0}, hundred[2] = {100, 100}, over[2] = {101, 0};
  cr_assert(isnan(pt_qos_bound(&ex, 2, zero, correct, 0)), "an empty batch");
  cr_assert(isnan(pt_qos_bound(&ex, 2, hundred, over, 1)), "more right than images");
  cr_assert_eq(pt_early_stop_parse("confident"), PT_EARLY_STOP_CONFIDENT);
  cr_assert_eq(pt_early_stop_parse("maybe"), -1);
  cr_assert_str_eq(pt_early_stop_name(PT_EARLY_STOP_OFF), "off");
}

/* Empirical QoS, cost_linear, no test set, no timing: the search alone. */
static void empirical_opts(pt_tune_opts *o, int iters, const char *dir) {
  pt_tune_opts_init(o);
  o->max_iter = iters;
  o->cost_model = PT_COST_LINEAR;
  o->time_passes = 0;
  o->test_configs = 0;
  o->output_dir = dir;
}

/* Tunes app empirically with early stopping `mode`, then measures every stopped config in full:
 * none may end above the keep threshold, none above its bound. Returns how many stopped. */
static int stopped_configs_hold(pt_app *app, pt_early_stop mode, double threshold, int iters) {
  char *d = once_dir();
  pt_tuner *t;
  pt_tune_opts o;
  empirical_opts(&o, iters, d);
  o.qos_tuner_threshold = o.qos_keep_threshold = threshold;
  o.early_stop = mode;
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  const double keep = pt_tuner_summary(t)->thresholds.tune_keep;
  char db[128], line[256];
  snprintf(db, sizeof db, "%s/tuning.sqlite", d);
  sqlite3 *h;
  sqlite3_stmt *st;
  cr_assert_eq(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(h, "SELECT qos, config FROM evals WHERE status = 1", -1, &st, NULL), SQLITE_OK);
  int n_ops = pt_app_num_ops(app), stopped = 0;
  uint16_t *cfg = calloc((size_t)n_ops, sizeof *cfg);
  while (sqlite3_step(st) == SQLITE_ROW) {
    double bound = sqlite3_column_double(st, 0);
    char *at = (char *)sqlite3_column_text(st, 1);
    for (int op = 0; op < n_ops; op++) cfg[op] = (uint16_t)strtol(at, &at, 10);
    double q;
    cr_assert_eq(pt_app_measure(app, 1, cfg, 0, &q, NULL), PT_OK, "%s", pt_last_error());
    cr_expect_leq(bound, keep, "a stopped config's bound %.4f is above the keep threshold %.4f", bound, keep);
    cr_expect_leq(q, keep, "%s stopped a config that measures %.4f in full, above the keep threshold %.4f",
                  pt_early_stop_name(mode), q, keep);
    if (mode == PT_EARLY_STOP_EXACT) cr_expect_leq(q, bound + 1e-9, "measured %.6f above its exact bound %.6f", q, bound);
    stopped++;
  }
  sqlite3_finalize(st);
  sqlite3_close(h);
  cr_assert_eq(pt_tuner_summary(t)->early_stopped, stopped);
  free(cfg);
  pt_tuner_free(t);
  snprintf(line, sizeof line, "rm -rf %s", d);
  cr_expect_eq(system(line), 0);
  return stopped;
}

Test(early_stop, stopped_configs_measured_in_full_stay_below_the_keep_threshold_demo, .timeout = 600) {
  pt_dnn_app_opts ao = {.model = "lenet_mnist", .weights = DEMO "/lenet_mnist.safetensors", .data = DEMO,
                        .backend = "cpu", .threads = 2, .batch_size = 50, .tune_count = 500, .test_count = 100,
                        .target_device = "any"};
  pt_app *app = NULL;
  cr_assert_eq(pt_app_dnn_create(&ao, &app), PT_OK, "%s", pt_last_error());
  int ex = stopped_configs_hold(app, PT_EARLY_STOP_EXACT, 2.0, 40);
  int cf = stopped_configs_hold(app, PT_EARLY_STOP_CONFIDENT, 2.0, 40);
  cr_assert_gt(ex, 0, "exact stopped no config: the test shows nothing");
  /* 40 configs are asked in one batch, so both runs measure the same ones; confident's bound is the lower */
  cr_assert_geq(cf, ex, "confident stopped %d configs, exact %d", cf, ex);
  pt_app_free(app);
}

Test(early_stop, stopped_configs_measured_in_full_stay_below_the_keep_threshold_alexnet2, .timeout = 600) {
  char *d = once_dir(), w[128];
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("alexnet2_cifar10", &g), PT_OK);
  pt_graph_init_random(g, 5);
  snprintf(w, sizeof w, "%s/w.safetensors", d);
  cr_assert_eq(pt_weights_save(g, w, 0), PT_OK);
  /* 100 random images labelled with the exact network's own predictions: the exact QoS is 100 % and
   * approximations lose accuracy, as with a trained network */
  enum { N = 100 };
  char cmd[512];
  float *x = malloc((size_t)N * 3 * 32 * 32 * sizeof *x), *out = malloc((size_t)N * 10 * sizeof *out);
  pt_backend *be;
  pt_exec *e;
  cr_assert_eq(pt_backend_create("cpu", 2, &be), PT_OK);
  cr_assert_eq(pt_exec_create(g, be, &e), PT_OK);
  for (int split = 0; split < 2; split++) {
    uint64_t r = 99 + (uint64_t)split;
    for (int i = 0; i < N * 3 * 32 * 32; i++) {
      r = r * 6364136223846793005ull + 1442695040888963407ull;
      x[i] = (float)((r >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
    cr_assert_eq(pt_exec_run(e, x, N, NULL, out), PT_OK, "%s", pt_last_error());
    FILE *f;
    snprintf(cmd, sizeof cmd, "%s/%s_input.bin", d, split ? "test" : "tune");
    cr_assert_not_null(f = fopen(cmd, "wb"));
    cr_assert_eq(fwrite(x, sizeof *x, (size_t)N * 3 * 32 * 32, f), (size_t)N * 3 * 32 * 32);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/%s_labels.bin", d, split ? "test" : "tune");
    cr_assert_not_null(f = fopen(cmd, "wb"));
    for (int i = 0; i < N; i++) {
      int32_t l = pt_argmax(out + i * 10, 10);
      fwrite(&l, 4, 1, f);
    }
    fclose(f);
  }
  pt_exec_free(e);
  pt_backend_free(be);
  pt_graph_free(g);
  free(x), free(out);
  pt_dnn_app_opts ao = {.model = "alexnet2_cifar10", .weights = w, .data = d, .backend = "cpu", .threads = 2,
                        .batch_size = 10, .target_device = "cpu"};
  pt_app *app = NULL;
  cr_assert_eq(pt_app_dnn_create(&ao, &app), PT_OK, "%s", pt_last_error());
  int ex = stopped_configs_hold(app, PT_EARLY_STOP_EXACT, 2.0, 30);
  stopped_configs_hold(app, PT_EARLY_STOP_CONFIDENT, 2.0, 30);
  cr_assert_gt(ex, 0, "exact stopped no config: the test shows nothing");
  pt_app_free(app);
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  cr_expect_eq(system(cmd), 0);
}

static void set_format(const char *dir, const char *fmt, char *now, size_t n) {
  char db[128];
  snprintf(db, sizeof db, "%s/tuning.sqlite", dir);
  sqlite3 *h;
  sqlite3_stmt *st;
  cr_assert_eq(sqlite3_open(db, &h), SQLITE_OK);
  if (fmt) {
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE meta SET value = '%s' WHERE key = 'format'", fmt);
    cr_assert_eq(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
  }
  cr_assert_eq(sqlite3_prepare_v2(h, "SELECT value FROM meta WHERE key = 'format'", -1, &st, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
  snprintf(now, n, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(h);
}

Test(early_stop, a_format_2_journal_resumes_and_an_unknown_format_is_refused, .timeout = 300) {
  pt_app *app = demo_app();
  char *d = once_dir(), fmt[16];
  pt_tuner *t;
  pt_tune_opts o;
  empirical_opts(&o, 8, d);
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  set_format(d, NULL, fmt, sizeof fmt);
  cr_assert_str_eq(fmt, "3");
  set_format(d, "2", fmt, sizeof fmt); /* as the trust issue's version wrote it */
  o.resume = 1;
  o.max_iter = 12;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_tuner_summary(t)->resumed, 8);
  set_format(d, NULL, fmt, sizeof fmt);
  cr_assert_str_eq(fmt, "3", "a resumed format-2 journal is a 3 now");
  set_format(d, "9", fmt, sizeof fmt);
  cr_assert_eq(pt_tuner_tune(t, &o), PT_ESTALE);
  cr_assert_not_null(strstr(pt_last_error(), "journal format '9'"), "%s", pt_last_error());
  pt_tuner_free(t);
  pt_app_free(app);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  cr_expect_eq(system(cmd), 0);
}

/* ---- the exact-prefix cache under the DNN app ---- */

/* The app keeps the tune set's exact prefixes across measurements (on by default): QoS values
 * equal those of an app without the cache, and later calls resume configs from kept states. */
Test(prefix_cache, the_dnn_apps_measurements_equal_those_without_it, .timeout = 300) {
  pt_app *on = demo_app(), *off = NULL;
  pt_dnn_app_opts ao = {.model = "lenet_mnist", .weights = DEMO "/lenet_mnist.safetensors", .data = DEMO,
                        .backend = "cpu", .threads = 2, .batch_size = BATCH, .tune_count = TUNE, .test_count = 100,
                        .target_device = "any", .seed = 7, .prefix_cache_mib = -1};
  cr_assert_eq(pt_app_dnn_create(&ao, &off), PT_OK, "%s", pt_last_error());
  const int n_ops = pt_app_num_ops(on), n_cfg = 12;
  uint16_t *cfgs = calloc((size_t)n_cfg * n_ops, sizeof *cfgs);
  double q_on[12], q_off[12];
  pt_rng r;
  pt_rng_seed(&r, 3);
  for (int call = 0; call < 3; call++) {
    for (int k = 0; k < n_cfg; k++) { /* the first q ops at the baseline (position 0), the rest random */
      int q = (int)pt_rng_below(&r, (uint64_t)n_ops + 1);
      for (int op = 0; op < n_ops; op++)
        cfgs[k * n_ops + op] = op < q ? 0 : (uint16_t)pt_rng_below(&r, (uint64_t)pt_app_op_num_knobs(on, op));
    }
    cr_assert_eq(pt_app_measure(on, n_cfg, cfgs, 0, q_on, NULL), PT_OK, "%s", pt_last_error());
    cr_assert_eq(pt_app_measure(off, n_cfg, cfgs, 0, q_off, NULL), PT_OK, "%s", pt_last_error());
    for (int k = 0; k < n_cfg; k++)
      cr_assert(q_on[k] == q_off[k], "call %d config %d: QoS %.6f with the cache, %.6f without", call, k, q_on[k],
                q_off[k]);
  }
  pt_exec_prefix_stats st_on, st_off;
  pt_exec_prefix_cache_stats(pt__dnn_app_exec(on), &st_on);
  pt_exec_prefix_cache_stats(pt__dnn_app_exec(off), &st_off);
  cr_assert(st_on.restores > 0 && st_on.nodes_saved > 0, "restores %lld", (long long)st_on.restores);
  cr_assert(st_on.bytes <= (size_t)PT_PREFIX_CACHE_MIB_DEFAULT << 20);
  cr_assert(st_off.stored == 0 && st_off.restores == 0);
  free(cfgs);
  pt_app_free(on);
  pt_app_free(off);
}
