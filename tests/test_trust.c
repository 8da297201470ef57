/* Never a wrong answer, never a silent loss (docs/design.md, "Failed configs", "Fingerprints"):
 * non-finite outputs, stale models and journals, one run per folder, failed configs, options
 * outside their domain, one line per failure. Library-level cases use generic apps; the rest run
 * the CLI on the bundled demo with small sets. */
#include <criterion/criterion.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "additive_app.h"
#include "backend/backend_iface.h"
#include "predtuner/predtuner.h"

#define DEMO PT_SOURCE_DIR "/zoo/demo"
#define SMALL "--tune-count 100 --test-count 100 --batch-size 100 --threads 2"

/* Runs a shell command built like printf; its exit status (-1 when it did not exit). */
static int sh(const char *fmt, ...) {
  char cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* How many lines of path contain what (-1: no file). */
static int lines_with(const char *path, const char *what) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char line[8192];
  int n = 0;
  while (fgets(line, sizeof line, f)) n += strstr(line, what) != NULL;
  fclose(f);
  return n;
}

static int64_t journal_count(const char *path, const char *where) {
  sqlite3 *db;
  int64_t n = -1;
  char sql[512];
  snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM evals%s%s", where ? " WHERE " : "", where ? where : "");
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

/* A copy of the demo's weights with tensor `which` scaled by scale (NAN: every value NaN). */
static void write_weights(const char *path, int which, float scale) {
  pt_safetensors *st;
  cr_assert_eq(pt_st_open(DEMO "/lenet_mnist.safetensors", &st), PT_OK, "%s", pt_last_error());
  pt_st_writer *w;
  cr_assert_eq(pt_st_writer_new(&w), PT_OK);
  for (int i = 0; i < pt_st_count(st); i++) {
    pt_tensor t = {PT_F32, 0, {0}, NULL, 0};
    t.ndim = pt_st_shape(st, i, t.shape);
    int64_t n = 1;
    for (int d = 0; d < t.ndim; d++) n *= t.shape[d];
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert_eq(pt_st_read_f32(st, i, v), PT_OK);
    for (int64_t k = 0; i == which && k < n; k++) v[k] = isnan(scale) ? NAN : v[k] * scale;
    t.data = v;
    cr_assert_eq(pt_st_writer_add(w, pt_st_name(st, i), &t), PT_OK);
    free(v);
  }
  cr_assert_eq(pt_st_writer_save(w, path), PT_OK, "%s", pt_last_error());
  pt_st_writer_free(w);
  pt_st_close(st);
}

/* ---- 1. a non-finite output is never a right answer ---- */

Test(nonfinite, topk_counts_rows_holding_nan_or_inf_as_wrong) {
  float out[4 * 3] = {NAN, NAN, NAN, /* label 0: an all-NaN row once ranked the label first */
                      5, NAN, 1,     /* label 0 is the largest number, but the row holds a NaN */
                      INFINITY, 0, 1, 0.2f, 0.7f, 0.1f};
  int32_t labels[4] = {0, 0, 0, 1};
  cr_assert_float_eq(pt_topk_accuracy(out, labels, 4, 3, 1), 25.0, 1e-12);
  cr_assert_float_eq(pt_topk_accuracy(out, labels, 4, 3, 3), 25.0, 1e-12);
  cr_assert_eq(pt_count_nonfinite(out, 12), 5);
}

Test(nonfinite, nan_weights_are_named_and_the_network_fails_at_the_op, .timeout = 120) {
  char *d = tmpdir(), w[512];
  snprintf(w, sizeof w, "%s/nan.safetensors", d);
  write_weights(w, 0, NAN);
  cr_assert_eq(sh("%s measure --model lenet_mnist --weights %s --data %s --count 100 2> %s/err > /dev/null", PT_CLI_PATH,
                  w, DEMO, d), 1);
  char err[600];
  snprintf(err, sizeof err, "%s/err", d);
  cr_assert_eq(lines_with(err, "NaN or infinite values"), 1, "a warning naming the tensor");
  cr_assert_eq(lines_with(err, "exact network's output holds NaN or infinity on images 0-99; first at op '"), 1);
  cr_assert_eq(sh("%s measure --model lenet_mnist --weights %s --data %s --strict 2> %s/err > /dev/null", PT_CLI_PATH, w,
                  DEMO, d), 1);
  cr_assert_eq(lines_with(err, "(--strict)"), 1);
  /* tune: the baseline is an error, never "100 %" */
  cr_assert_eq(sh("%s tune --model lenet_mnist --weights %s --data %s " SMALL " --max-iter 5 --output %s/out --quiet "
                  "2> %s/err > /dev/null", PT_CLI_PATH, w, DEMO, d, d), 1);
  cr_assert_eq(lines_with(err, "first at op '"), 1, "printed once");
  sh("rm -rf %s", d);
  free(d);
}

Test(nonfinite, a_nan_image_is_named_when_the_data_set_is_opened, .timeout = 60) {
  char *d = tmpdir(), path[512];
  cr_assert_eq(sh("cp %s/*.bin %s/", DEMO, d), 0);
  snprintf(path, sizeof path, "%s/tune_input.bin", d);
  FILE *f = fopen(path, "r+b");
  cr_assert_not_null(f);
  float nan = NAN;
  fseek(f, (long)(3 * 28 * 28 + 17) * 4, SEEK_SET); /* image 3 */
  fwrite(&nan, 4, 1, f);
  fclose(f);
  cr_assert_eq(sh("%s measure --data %s --model lenet_mnist --weights %s/lenet_mnist.safetensors --batch-size 50 "
                  "2> %s/err > /dev/null", PT_CLI_PATH, d, DEMO, d), 1);
  snprintf(path, sizeof path, "%s/err", d);
  cr_assert_eq(lines_with(path, "tune_input.bin: image 3 holds NaN at value 17"), 1);
  sh("rm -rf %s", d);
  free(d);
}

/* ---- 4. a failing config is a result ---- */

/* 4 ops of 3 knobs: knob 2 of op 0 fails (an error, for a whole batch too), knob 2 of op 1 gives NaN;
 * hits counts how often each config was measured. */
static int hits[81];
static pt_status failing_measure(void *user, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  (void)user;
  for (int k = 0; k < n; k++)
    if (cfgs[k * 4] == 2) return pt_app_set_error(PT_EBACKEND, "knob 2 of op 0 fails");
  for (int k = 0; k < n; k++) {
    const uint16_t *c = cfgs + k * 4;
    if (!test) hits[((c[0] * 3 + c[1]) * 3 + c[2]) * 3 + c[3]]++;
    qos[k] = c[1] == 2 ? NAN : 100 - c[0] - c[1] - 0.5 * c[2] - 0.25 * c[3];
    cost[k] = NAN;
  }
  return PT_OK;
}

static pt_app *failing_app(void) {
  static const pt_generic_knob k[3] = {{"exact", 1.0}, {"half", 2.0}, {"quarter", 4.0}};
  pt_generic_op ops[4] = {{"a", 10, 3, k}, {"b", 20, 3, k}, {"c", 30, 3, k}, {"d", 40, 3, k}};
  pt_app *app;
  cr_assert_eq(pt_app_generic_create("failing", 4, ops, failing_measure, NULL, &app), PT_OK, "%s", pt_last_error());
  return app;
}

static pt_status tune_failing(const char *dir, int resume, int max_failures, pt_app **app, pt_tuner **t) {
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 81;
  o.search_batch = 16;
  o.cost_model = PT_COST_LINEAR;
  o.qos_tuner_threshold = 3;
  o.output_dir = dir;
  o.resume = resume;
  o.max_failures = max_failures;
  *app = failing_app();
  cr_assert_eq(pt_tuner_create(*app, t), PT_OK);
  return pt_tuner_tune(*t, &o);
}

static void free_tuner(pt_tuner *t, pt_app *app) {
  pt_tuner_free(t);
  pt_app_free(app);
}

Test(failed, failing_configs_are_journaled_never_kept_and_stay_failed_on_resume, .timeout = 60) {
  char *d = tmpdir(), path[512];
  pt_tuner *t;
  pt_app *app;
  memset(hits, 0, sizeof hits);
  cr_assert_eq(tune_failing(d, 0, 100, &app, &t), PT_OK, "%s", pt_last_error());
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_eq(s->evaluated, 81, "the whole space, failures included");
  cr_assert_eq(s->failed, 27 + 18);
  cr_assert_eq(s->failed_by[-PT_EBACKEND], 27);
  cr_assert_eq(s->failed_by[-PT_ENONFINITE], 18);
  cr_assert_str_empty(s->stopped);
  for (int i = 0; i < pt_tuner_count(t, PT_KEPT); i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_KEPT, i, &c);
    cr_assert(c.knobs[0] != 2 && c.knobs[1] != 2, "a failed config was kept");
    cr_assert(isfinite(c.qos));
  }
  cr_assert_gt(pt_tuner_count(t, PT_BEST), 0);
  free_tuner(t, app);
  snprintf(path, sizeof path, "%s/tuning.sqlite", d);
  cr_assert_eq(journal_count(path, NULL), 81);
  cr_assert_eq(journal_count(path, "status != 0 AND qos IS NULL"), 45);
  cr_assert_eq(journal_count(path, "error LIKE '%knob 2 of op 0 fails%'"), 27);
  cr_assert_eq(journal_count(path, "error LIKE '%non-finite QoS%'"), 18);
  /* resumed: nothing is measured again, the failures are still failures */
  int before = 0;
  for (int i = 0; i < 81; i++) before += hits[i];
  cr_assert_eq(tune_failing(d, 1, 100, &app, &t), PT_OK, "%s", pt_last_error());
  int after = 0;
  for (int i = 0; i < 81; i++) after += hits[i];
  cr_assert_eq(pt_tuner_summary(t)->failed, 45);
  cr_assert_eq(pt_tuner_summary(t)->resumed, 81);
  cr_assert_eq(after, before + 1, "only the exact program (the baseline) is measured again on the tune set");
  free_tuner(t, app);
  sh("rm -rf %s", d);
  free(d);
}

Test(failed, a_run_failing_systematically_stops_and_keeps_what_it_has, .timeout = 60) {
  char *d = tmpdir();
  pt_tuner *t;
  pt_app *app;
  cr_assert_eq(tune_failing(d, 0, 8, &app, &t), PT_OK, "%s", pt_last_error());
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_not_null(strstr(s->stopped, "more than --max-failures 8"), "%s", s->stopped);
  cr_assert_lt(s->evaluated, 81);
  cr_assert_gt(s->failed, 8);
  char path[512];
  snprintf(path, sizeof path, "%s/tuning.sqlite", d);
  cr_assert_eq(journal_count(path, NULL), s->evaluated, "every evaluated config is journaled");
  free_tuner(t, app);
  sh("rm -rf %s", d);
  free(d);
}

/* A test backend: the CPU backend, except that a convolution perforated with stride 3 fails
 * (failing_nan 0) or writes NaN (failing_nan 1). */
static pt_backend_iface failing_iface;
static int failing_nan;
static pt_status (*cpu_conv)(void *, const pt_conv_desc *, const float *, const float *, const float *,
                                              float *);
#define PT__TRY_TEST(e)              \
  do {                               \
    pt_status s_ = (e);              \
    if (s_ != PT_OK) return s_;      \
  } while (0)
static pt_status failing_conv(void *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y) {
  if (d->perf_stride == 3 && !failing_nan)
    return pt_app_set_error(PT_EBACKEND, "failing backend: perforation stride 3 fails");
  pt_status s = cpu_conv(ctx, d, x, w, b, y);
  for (int64_t i = 0; d->perf_stride == 3 && i < (int64_t)d->n * d->cout * d->oh * d->ow; i++) y[i] = NAN;
  return s;
}
static int failing_available(const char **why) {
  (void)why;
  return 1;
}
static pt_status failing_create(int threads, pt_backend **out) {
  PT__TRY_TEST(pt_backend_create("cpu", threads, out));
  failing_iface = *(*out)->iface;
  cpu_conv = (*out)->iface->conv2d;
  failing_iface.conv2d = failing_conv;
  (*out)->iface = &failing_iface;
  return PT_OK;
}
static const pt_backend_reg FAILING = {"failing", failing_available, failing_create};

Test(failed, a_backend_failing_on_chosen_knobs_fails_those_configs_only, .timeout = 300) {
  pt_status r = pt__backend_register(&FAILING);
  cr_assert(r == PT_OK || r == PT_EEXIST);
  char *d = tmpdir(), w[512], path[512];
  snprintf(w, sizeof w, "%s/lenet_mnist.safetensors", DEMO);
  pt_dnn_app_opts ao = {.model = "lenet_mnist", .weights = w, .data = DEMO, .backend = "failing", .threads = 2,
                        .batch_size = 100, .tune_count = 100, .test_count = 100, .target_device = "cpu"};
  pt_app *app;
  cr_assert_eq(pt_app_dnn_create(&ao, &app), PT_OK, "%s", pt_last_error());
  pt_tuner *t;
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 160;
  o.search_batch = 32;
  o.cost_model = PT_COST_LINEAR;
  o.max_failures = 1000;
  o.output_dir = d;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_gt(s->failed, 0);
  cr_assert_eq(s->failed, s->failed_by[-PT_EBACKEND]);
  pt_knob_set *ks;
  cr_assert_eq(pt_knobs_default(&ks), PT_OK);
  /* every evaluated config failed exactly when one of its ops was perforated with stride 3 */
  snprintf(path, sizeof path, "%s/tuning.sqlite", d);
  sqlite3 *db;
  sqlite3_stmt *st;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT config, status, error FROM evals", -1, &st, NULL), SQLITE_OK);
  int rows = 0, failed = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    const char *c = (const char *)sqlite3_column_text(st, 0);
    int stride3 = 0;
    for (int op = 0; op < pt_app_num_ops(app); op++) {
      char *end;
      long pos = strtol(c, &end, 10);
      c = end;
      const pt_knob *k = pt_knobs_at(ks, pt_knobs_find(ks, pt_app_op_knob(app, op, (int)pos)));
      stride3 |= pt_knob_exec(k).perf_stride == 3;
    }
    int bad = sqlite3_column_int(st, 1) != 0;
    cr_assert_eq(bad, stride3, "row %d: failed %d, perforated with stride 3 %d", rows, bad, stride3);
    if (bad) cr_assert_not_null(strstr((const char *)sqlite3_column_text(st, 2), "perforation stride 3 fails"));
    failed += bad;
    rows++;
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  cr_assert_eq(rows, 160);
  cr_assert_eq(failed, s->failed);
  cr_assert_gt(pt_tuner_count(t, PT_BEST), 0, "the configs that work were still tuned");
  pt_knobs_free(ks);
  pt_tuner_free(t);
  pt_app_free(app);
  sh("rm -rf %s", d);
  free(d);
}

/* Tunes the demo on the failing backend (writing NaN) with qos model m. */
static pt_tuner *tune_nan(pt_app **app, const char *dir, pt_qos_model m) {
  static char w[512];
  snprintf(w, sizeof w, "%s/lenet_mnist.safetensors", DEMO);
  pt_dnn_app_opts ao = {.model = "lenet_mnist", .weights = w, .data = DEMO, .backend = "failing", .threads = 2,
                        .batch_size = 100, .tune_count = 100, .test_count = 100, .target_device = "cpu"};
  cr_assert_eq(pt_app_dnn_create(&ao, app), PT_OK, "%s", pt_last_error());
  pt_tuner *t;
  cr_assert_eq(pt_tuner_create(*app, &t), PT_OK);
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 80;
  o.search_batch = 32;
  o.qos_model = m;
  o.cost_model = PT_COST_LINEAR;
  o.max_failures = 1000;
  o.output_dir = dir;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  return t;
}

Test(failed, configs_with_nan_outputs_fail_and_p2_scores_such_knobs_zero, .timeout = 300) {
  pt_status r = pt__backend_register(&FAILING);
  cr_assert(r == PT_OK || r == PT_EEXIST);
  failing_nan = 1;
  char *d = tmpdir(), sub[512];
  pt_app *app;
  snprintf(sub, sizeof sub, "%s/empirical", d);
  pt_tuner *t = tune_nan(&app, sub, PT_QOS_EMPIRICAL);
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_gt(s->failed, 0);
  cr_assert_eq(s->failed, s->failed_by[-PT_ENONFINITE], "NaN outputs are non-finite failures");
  pt_tuner_free(t);
  pt_app_free(app);
  snprintf(sub, sizeof sub, "%s/p2", d);
  t = tune_nan(&app, sub, PT_QOS_P2);
  cr_assert_eq(pt_tuner_summary(t)->failed, 0, "predicted QoS is finite");
  pt_knob_set *ks;
  cr_assert_eq(pt_knobs_default(&ks), PT_OK);
  for (int i = 0; i < pt_tuner_count(t, PT_KEPT); i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_KEPT, i, &c);
    for (int op = 0; op < pt_app_num_ops(app); op++)
      cr_assert_neq(pt_knob_exec(pt_knobs_at(ks, pt_knobs_find(ks, pt_app_op_knob(app, op, c.knobs[op])))).perf_stride, 3,
                    "a knob with NaN outputs was kept");
  }
  cr_assert_gt(pt_tuner_count(t, PT_KEPT), 0);
  pt_knobs_free(ks);
  pt_tuner_free(t);
  pt_app_free(app);
  failing_nan = 0;
  sh("rm -rf %s", d);
  free(d);
}

/* The binary of the piped tests aborts on the 8 configs that give both linears knob 151. */
Test(failed, a_binary_crashing_on_some_configs_is_started_again, .timeout = 300) {
  char *d = tmpdir(), path[512];
  cr_assert_eq(sh("cp '%s' %s/bin && cd %s && ./bin --init %s crash_151_151", PT_FAKE_BIN, d, d, d), 0);
  cr_assert_eq(sh("%s tune-binary --binary %s/bin --metadata %s/metadata.json --qos-model empirical --max-iter 288 "
                  "--search-batch 32 --output %s/out > %s/stdout 2> %s/err", PT_CLI_PATH, d, d, d, d, d), 0);
  snprintf(path, sizeof path, "%s/out/tuning.sqlite", d);
  cr_assert_eq(journal_count(path, NULL), 288, "the whole space");
  cr_assert_eq(journal_count(path, "status != 0 AND error LIKE '%killed by signal 6%'"), 8);
  snprintf(path, sizeof path, "%s/stdout", d);
  cr_assert_eq(lines_with(path, "failed         8 configs: 8 input/output error"), 1);
  sh("rm -rf %s", d);
  free(d);
}

Test(failed, a_binary_answering_nan_fails_those_configs_and_a_bad_accuracy_is_an_error, .timeout = 300) {
  char *d = tmpdir(), path[512];
  cr_assert_eq(sh("cp '%s' %s/bin && cd %s && ./bin --init %s nan_151", PT_FAKE_BIN, d, d, d), 0);
  cr_assert_eq(sh("%s tune-binary --binary %s/bin --metadata %s/metadata.json --qos-model empirical --max-iter 288 "
                  "--search-batch 32 --quiet --output %s/out > /dev/null 2> %s/err", PT_CLI_PATH, d, d, d, d), 0);
  snprintf(path, sizeof path, "%s/out/tuning.sqlite", d);
  cr_assert_eq(journal_count(path, "status != 0 AND error LIKE '%output holds 200 NaN or infinite values%'"), 48,
               "every config giving linear_0 knob 151 (1 in 6 of 288)");
  cr_assert_eq(journal_count(path, "status != 0"), 48);
  cr_assert_eq(sh("cp '%s' %s/bin2 && cd %s && ./bin2 --init %s accuracy_200", PT_FAKE_BIN, d, d, d), 0);
  cr_assert_eq(sh("%s tune-binary --binary %s/bin2 --metadata %s/metadata.json --quiet --output %s/out2 > /dev/null "
                  "2> %s/err", PT_CLI_PATH, d, d, d, d), 1);
  snprintf(path, sizeof path, "%s/err", d);
  cr_assert_eq(lines_with(path, "final_accuracy 200 is not an accuracy in [0, 100]"), 1);
  sh("rm -rf %s", d);
  free(d);
}

/* ---- 2. fingerprints; 3. no silent loss ---- */

Test(fingerprint, journals_and_models_are_bound_to_their_inputs, .timeout = 300) {
  char *d = tmpdir(), w2[512], err[512], jr[512];
  snprintf(w2, sizeof w2, "%s/other.safetensors", d);
  snprintf(err, sizeof err, "%s/err", d);
  snprintf(jr, sizeof jr, "%s/out/tuning.sqlite", d);
  write_weights(w2, 1, 1.01f);
  const char *base = "%s tune --model lenet_mnist --weights %s --data %s " SMALL " --max-iter 30 --output %s/out "
                     "--qos-model qos_p1 --cost-model cost_linear --quiet %s > /dev/null 2> %s";
  cr_assert_eq(sh(base, PT_CLI_PATH, DEMO "/lenet_mnist.safetensors", DEMO, d, "", err), 0);
  cr_assert_eq(journal_count(jr, NULL), 30);
  /* the same folder again, without --resume: refused, nothing lost */
  cr_assert_eq(sh(base, PT_CLI_PATH, DEMO "/lenet_mnist.safetensors", DEMO, d, "", err), 1);
  cr_assert_eq(lines_with(err, "an earlier run's journal is here; --resume continues it, --overwrite replaces it"), 1);
  cr_assert_eq(journal_count(jr, NULL), 30);
  /* other weights: neither the journal nor the stored P1 model may be used */
  cr_assert_eq(sh(base, PT_CLI_PATH, w2, DEMO, d, "--resume", err), 1);
  cr_assert_eq(lines_with(err, "made from other inputs: it does not match this run's weights"), 1);
  cr_assert_eq(sh(base, PT_CLI_PATH, w2, DEMO, d, "--overwrite", err), 1);
  cr_assert_eq(lines_with(err, "p1.safetensors: made from other inputs: it does not match this run's weights; use a "
                               "fresh --output (or --model-storage) folder, or --force-reinit"), 1);
  cr_assert_eq(journal_count(jr, NULL), 30, "a refused run writes nothing");
  cr_assert_eq(sh(base, PT_CLI_PATH, w2, DEMO, d, "--overwrite --force-reinit", err), 0);
  /* other tune data, on resume */
  cr_assert_eq(sh("%s tune --model lenet_mnist --weights %s --data %s --tune-count 50 --test-count 100 --batch-size 100 "
                  "--max-iter 40 --output %s/out --qos-model qos_p1 --cost-model cost_linear --quiet --resume "
                  "--model-storage %s/m2 > /dev/null 2> %s", PT_CLI_PATH, w2, DEMO, d, d, err), 1);
  cr_assert_eq(lines_with(err, "does not match this run's tune data"), 1);
  /* a refused --resume --force-reinit replaces no stored model: the run can still be resumed */
  cr_assert_eq(sh(base, PT_CLI_PATH, w2, DEMO, d, "--resume --force-reinit --tune-count 50", err), 1);
  cr_assert_eq(sh(base, PT_CLI_PATH, w2, DEMO, d, "--resume", err), 0, "the journal and its model still fit");
  /* a journal missing a meta key (a first batch cut short, or edited) is not resumed */
  sqlite3 *db;
  cr_assert_eq(sqlite3_open(jr, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "DELETE FROM meta WHERE key = 'fingerprint'", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  cr_assert_eq(sh(base, PT_CLI_PATH, w2, DEMO, d, "--resume", err), 1);
  cr_assert_eq(lines_with(err, "tuning.sqlite: the journal has no fingerprint"), 1);
  sh("rm -rf %s", d);
  free(d);
}

Test(fingerprint, p2_files_are_checked_numbers_and_all, .timeout = 300) {
  char *d = tmpdir(), err[512];
  snprintf(err, sizeof err, "%s/err", d);
  const char *run = "%s tune " SMALL " --max-iter 10 --output %s/out --qos-model qos_p2 --overwrite --quiet > /dev/null "
                    "2> %s";
  cr_assert_eq(sh(run, PT_CLI_PATH, d, err), 0);
  /* PredTuner writes no fingerprint: a warning, then used */
  cr_assert_eq(sh("sed -i 's/\"fingerprint\":\"[^\"]*\",//' %s/out/models/p2.json", d), 0);
  cr_assert_eq(sh(run, PT_CLI_PATH, d, err), 0);
  cr_assert_eq(lines_with(err, "p2.json: no fingerprint (written by PredTuner or predtuner-gpu 0.1)"), 1);
  /* a QoS no accuracy can have */
  cr_assert_eq(sh("sed -i 's/\"bqos\":[-0-9.e+]*/\"bqos\":1e300/' %s/out/models/p2.json", d), 0);
  cr_assert_eq(sh(run, PT_CLI_PATH, d, err), 1);
  cr_assert_eq(lines_with(err, "\"bqos\": QoS 1e+300 is not an accuracy in [0, 100]"), 1);
  /* an edited exact QoS that no longer matches the network */
  cr_assert_eq(sh("sed -i 's/\"bqos\":1e300/\"bqos\":50/' %s/out/models/p2.json", d), 0);
  cr_assert_eq(sh(run, PT_CLI_PATH, d, err), 1);
  cr_assert_eq(lines_with(err, "p2.json: its exact QoS (bqos) is 50 but the exact network measures"), 1);
  sh("rm -rf %s", d);
  free(d);
}

Test(fingerprint, promise_ranges_are_bound_to_their_network_and_weights, .timeout = 120) {
  char *d = tmpdir(), w2[512], err[512];
  snprintf(w2, sizeof w2, "%s/other.safetensors", d);
  snprintf(err, sizeof err, "%s/err", d);
  write_weights(w2, 2, 0.5f);
  const char *knobs = "--knobs " PT_SOURCE_DIR "/tests/fixtures/knobs_custom.json --knob convs.0=promise5";
  cr_assert_eq(sh("%s measure --count 100 %s --save-promise-ranges %s/r.json > /dev/null 2> %s", PT_CLI_PATH, knobs, d,
                  err), 0);
  cr_assert_eq(sh("%s measure --count 100 %s --promise-ranges %s/r.json > /dev/null 2> %s", PT_CLI_PATH, knobs, d, err),
               0, "the same network and weights");
  cr_assert_eq(sh("%s measure --count 100 --model lenet_mnist --weights %s --data %s %s --promise-ranges %s/r.json "
                  "> /dev/null 2> %s", PT_CLI_PATH, w2, DEMO, knobs, d, err), 1);
  cr_assert_eq(lines_with(err, "r.json: made from other inputs: it does not match this run's weights; calibrate again"), 1);
  /* hand-made ranges (PredTuner needs them) have no fingerprint: a warning */
  cr_assert_eq(sh("sed -i '/\"fingerprint\"/d' %s/r.json && %s measure --count 100 %s --promise-ranges "
                  "%s/r.json > /dev/null 2> %s", d, PT_CLI_PATH, knobs, d, err), 0);
  cr_assert_eq(lines_with(err, "r.json: no fingerprint"), 1);
  sh("rm -rf %s", d);
  free(d);
}

Test(lock, one_run_per_output_folder, .timeout = 120) {
  char *d = tmpdir(), lockp[512], err[512];
  snprintf(lockp, sizeof lockp, "%s/tune.lock", d);
  snprintf(err, sizeof err, "%s/err", d);
  int ready[2];
  cr_assert_eq(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) { /* another run holding the folder */
    if (pt_output_lock(d) != PT_OK) _exit(1);
    if (write(ready[1], "x", 1) != 1) _exit(1);
    pause();
    _exit(0);
  }
  char c;
  cr_assert_eq(read(ready[0], &c, 1), 1);
  cr_assert_eq(sh("%s tune " SMALL " --max-iter 5 --output %s --quiet > /dev/null 2> %s", PT_CLI_PATH, d, err), 1);
  char want[128];
  snprintf(want, sizeof want, "another run (pid %d) is writing into this folder", (int)child);
  cr_assert_eq(lines_with(err, want), 1);
  cr_assert_eq(access(lockp, F_OK), 0, "the holder's lock file is untouched");
  cr_assert_eq(sh("test ! -e %s/tune.log", d), 0, "the second run wrote nothing");
  kill(child, SIGKILL);
  waitpid(child, NULL, 0);
  /* the killed run's file is stale: taken over, removed at the end */
  cr_assert_eq(access(lockp, F_OK), 0);
  cr_assert_eq(pt_output_lock(d), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_output_lock(d), PT_OK, "counted within a process");
  pt_output_unlock(d);
  cr_assert_eq(access(lockp, F_OK), 0);
  pt_output_unlock(d);
  cr_assert_neq(access(lockp, F_OK), 0, "released");
  /* a link planted as the lock file is never written through */
  cr_assert_eq(sh("echo keep > %s/victim && ln -s %s/victim %s", d, d, lockp), 0);
  cr_assert_eq(pt_output_lock(d), PT_EIO);
  cr_assert_eq(sh("grep -qx keep %s/victim", d), 0);
  sh("rm -rf %s", d);
  free(d);
}

/* ---- 5. options in their domain; 6. one line ---- */

Test(options, thresholds_and_values_outside_their_domain_are_refused, .timeout = 300) {
  char *d = tmpdir(), err[512];
  snprintf(err, sizeof err, "%s/err", d);
  struct {
    const char *args;
    int rc;
    const char *msg;
  } cases[] = {
      {"--qos-tuner-threshold -1", 1, "above the baseline's"},
      {"--qos-tuner-threshold 150", 1, "below 0 %"},
      {"--qos-keep-threshold -0.5", 1, "the keep threshold (a loss relative to the baseline) puts the target QoS at"},
      {"--absolute", 2, "--absolute needs --qos-tuner-threshold"},
      {"--absolute --qos-tuner-threshold 100.5", 1, "above the baseline's"},
      {"--absolute --qos-tuner-threshold -3", 1, "below 0 %"},
      {"--output --resume", 2, "--output needs a value (DIR)"},
      {"--max-iter 0", 2, "--max-iter expects an integer in [1, 1073741824], got '0'"},
      {"--qos-keep-threshold nan", 2, "--qos-keep-threshold expects a number"},
      {"--seed -4", 2, "--seed expects an integer in [0, 2147483647]"},
      {"--max-failures=x", 2, "--max-failures expects an integer"},
      {"--resume=1", 2, "--resume takes no value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int rc = sh("%s tune " SMALL " --max-iter 5 --output %s/o%zu --quiet %s > /dev/null 2> %s", PT_CLI_PATH, d, i,
                cases[i].args, err);
    cr_assert_eq(rc, cases[i].rc, "%s: exit %d", cases[i].args, rc);
    cr_assert_eq(lines_with(err, cases[i].msg), 1, "%s: no line '%s'", cases[i].args, cases[i].msg);
  }
  sh("rm -rf %s", d);
  free(d);
}

Test(oneline, failures_print_one_line, .timeout = 120) {
  char *d = tmpdir(), err[512];
  snprintf(err, sizeof err, "%s/err", d);
  cr_assert_eq(sh("%s tune " SMALL " --max-iter 5 --output %s/o --quiet > /dev/null 2>&1", PT_CLI_PATH, d), 0);
  /* PLplot into a missing folder: one line, no "IMMEDIATE EXIT" */
  cr_assert_eq(sh("%s plot %s/o/configs.json -o %s/missing/x.png > /dev/null 2> %s", PT_CLI_PATH, d, d, err), 1);
  cr_assert_eq(lines_with(err, ""), 1);
  cr_assert_eq(lines_with(err, "missing/x.png: cannot write: No such file or directory"), 1);
  /* a failed tune says why once */
  cr_assert_eq(sh("%s tune --model lenet_mnist --weights %s/none.safetensors --data %s --output %s/o2 2> %s > /dev/null",
                  PT_CLI_PATH, d, DEMO, d, err), 1);
  cr_assert_eq(lines_with(err, "none.safetensors"), 1);
  sh("rm -rf %s", d);
  free(d);
}
