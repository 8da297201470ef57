/* The tuner: the search engine's contracts, the pipeline through the generic app and the C API, the
 * CLI on the demo (results, plots, journal, resume after a kill). */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "predtuner/predtuner.h"

#include "additive_app.h"

/* ---- the search engine ---- */

static double fake_qos(const uint16_t *c, int n) {
  double q = 100;
  for (int i = 0; i < n; i++) q -= (c[i] * 7 + i) % 5 * 0.4;
  return q;
}

Test(search, exhausts_a_small_space_without_duplicates) {
  int nk[4] = {3, 1, 4, 2};
  pt_search *s;
  cr_assert_eq(pt_search_create(4, nk, 7, &s), PT_OK);
  cr_assert_float_eq(pt_search_space_size(s), 24, 0);
  uint16_t all[64 * 4];
  int total = 0, got;
  while ((got = pt_search_ask(s, 5, all + total * 4)) > 0) {
    double q[5], c[5];
    for (int k = 0; k < got; k++) q[k] = fake_qos(all + (total + k) * 4, 4), c[k] = 1.0 + k;
    cr_assert_eq(pt_search_tell(s, got, all + total * 4, q, c), PT_OK);
    total += got;
    cr_assert_leq(total, 24);
  }
  cr_assert_eq(total, 24, "every config exactly once");
  for (int i = 0; i < 4; i++) cr_assert_eq(all[i], 0, "the baseline comes first");
  for (int i = 0; i < total; i++)
    for (int j = 0; j < i; j++) cr_assert(memcmp(all + i * 4, all + j * 4, 8), "config %d repeats %d", i, j);
  cr_assert_eq(pt_search_ask(s, 5, all), 0);
  double q = 1, c = 1;
  cr_assert_eq(pt_search_tell(s, 1, all, &q, &c), PT_EINVAL, "told twice");
  uint16_t badc[4] = {0, 1, 0, 0};
  cr_assert_eq(pt_search_tell(s, 1, badc, &q, &c), PT_EINVAL, "position out of range");
  pt_search_free(s);
}

static void run_search(uint64_t seed, int iters, uint16_t *out) {
  int nk[12];
  for (int i = 0; i < 12; i++) nk[i] = 2 + i % 5;
  pt_search *s;
  cr_assert_eq(pt_search_create(12, nk, seed, &s), PT_OK);
  pt_search_set_threshold(s, 97.0);
  int done = 0;
  while (done < iters) {
    int got = pt_search_ask(s, iters - done < 32 ? iters - done : 32, out + done * 12);
    cr_assert_gt(got, 0);
    double q[32], c[32];
    for (int k = 0; k < got; k++) {
      const uint16_t *cf = out + (done + k) * 12;
      q[k] = fake_qos(cf, 12);
      c[k] = 0;
      for (int i = 0; i < 12; i++) c[k] += 1.0 / (1 + cf[i]);
    }
    cr_assert_eq(pt_search_tell(s, got, out + done * 12, q, c), PT_OK);
    done += got;
  }
  cr_assert_eq(pt_search_num_seen(s), iters, "stops at max_iter");
  pt_search_free(s);
}

Test(search, seed_makes_runs_reproducible_and_no_config_twice) {
  enum { N = 2000 };
  uint16_t *a = malloc(N * 12 * 2), *b = malloc(N * 12 * 2), *c = malloc(N * 12 * 2);
  run_search(42, N, a);
  run_search(42, N, b);
  run_search(43, N, c);
  cr_assert(!memcmp(a, b, N * 12 * 2), "same seed, same proposals");
  cr_assert(memcmp(a, c, N * 12 * 2), "another seed, other proposals");
  pt_search *s; /* duplicates: re-insert into a fresh set */
  int nk[12];
  for (int i = 0; i < 12; i++) nk[i] = 2 + i % 5;
  cr_assert_eq(pt_search_create(12, nk, 0, &s), PT_OK);
  for (int i = 0; i < N; i++) {
    double q = 1, co = 1;
    cr_assert_eq(pt_search_tell(s, 1, a + i * 12, &q, &co), PT_OK, "config %d was a duplicate", i);
  }
  pt_search_free(s);
  free(a), free(b), free(c);
}

Test(search, objective_orders_by_threshold_then_cost_or_qos) {
  int nk[2] = {4, 4};
  pt_search *s;
  cr_assert_eq(pt_search_create(2, nk, 1, &s), PT_OK);
  pt_search_set_threshold(s, 90);
  uint16_t c[5][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {0, 1}};
  double q[5] = {85, 89, 91, 95, 90}, co[5] = {0.5, 0.1, 0.8, 0.9, 0.85};
  double bq, bc;
  cr_assert_eq(pt_search_tell(s, 2, &c[0][0], q, co), PT_OK);
  pt_search_best(s, &bq, &bc);
  cr_assert_float_eq(bq, 89, 0, "below the threshold: higher QoS wins, whatever the cost");
  cr_assert_eq(pt_search_tell(s, 1, &c[2][0], q + 2, co + 2), PT_OK);
  pt_search_best(s, &bq, &bc);
  cr_assert_float_eq(bq, 91, 0, "above beats below");
  cr_assert_eq(pt_search_tell(s, 1, &c[3][0], q + 3, co + 3), PT_OK);
  pt_search_best(s, &bq, &bc);
  cr_assert_float_eq(bq, 91, 0, "above: lower cost wins over higher QoS");
  cr_assert_eq(pt_search_tell(s, 1, &c[4][0], q + 4, co + 4), PT_OK);
  pt_search_best(s, &bq, &bc);
  cr_assert_float_eq(bc, 0.8, 0, "QoS equal to the threshold passes; cost 0.85 loses to 0.8");
  pt_search_set_threshold(s, 80);
  pt_search_best(s, &bq, &bc);
  cr_assert_float_eq(bc, 0.1, 0, "a new threshold re-ranks");
  pt_search_free(s);
}

/* ---- the pipeline through the C API ---- */

/* Every text of the SVG at path that reads label (PLplot writes each character as &#xNN;) lies with
 * its glyphs inside the clip region PLplot draws it in (its subpage): PLplot clips a label placed
 * past the subpage's edge to fragments. Returns how many there were. */
static int labels_inside(const char *path, const char *label) {
  FILE *f = fopen(path, "r");
  cr_assert(f, "%s", path);
  static char svg[1 << 22];
  size_t n = fread(svg, 1, sizeof svg - 1, f);
  fclose(f);
  svg[n] = 0;
  double clip_x[64] = {0}, cur_clip = 0;
  int found = 0;
  for (char *p = svg; (p = strchr(p, '<')) != NULL; p++) {
    int id;
    double x0;
    if (!strncmp(p, "<clipPath", 9) && sscanf(strstr(p, "id=\"text-clipping"), "id=\"text-clipping%d", &id) == 1 &&
        id >= 0 && id < 64 && sscanf(strstr(p, "points=\""), "points=\"%lf", &x0) == 1) {
      double lo = x0; /* the polygon's smallest x */
      for (char *q = strstr(p, "points=\"") + 8; *q && *q != '"'; q++)
        if (q[-1] == ' ' || q[-1] == '"') lo = fmin(lo, atof(q));
      clip_x[id] = lo;
    } else if (!strncmp(p, "<g", 2) && sscanf(p, "<g clip-path=\"url(#text-clipping%d)", &id) == 1 && id >= 0 && id < 64) {
      cur_clip = clip_x[id];
    } else if (!strncmp(p, "<text", 5)) {
      char text[256];
      size_t k = 0;
      const char *t = strstr(p, "<tspan");
      t = t ? strchr(t, '>') : NULL;
      for (t = t ? t + 1 : ""; *t && *t != '<' && k + 1 < sizeof text; k++) {
        unsigned c;
        if (sscanf(t, "&#x%x;", &c) == 1) text[k] = (char)c, t = strchr(t, ';') + 1;
        else text[k] = *t++;
      }
      text[k] = 0;
      if (strcmp(text, label)) continue;
      double font = 0, a, b, c, d2, e, f2;
      cr_assert_eq(sscanf(strstr(p, "font-size=\""), "font-size=\"%lf", &font), 1);
      cr_assert_eq(sscanf(strstr(p, "matrix("), "matrix(%lf %lf %lf %lf %lf %lf", &a, &b, &c, &d2, &e, &f2), 6);
      cr_assert_geq(e - font, cur_clip, "%s: \"%s\" at x %.1f (font %.0f) starts left of its subpage at %.1f", path,
                    label, e, font, cur_clip);
      found++;
    }
  }
  return found;
}


static int dominated_by(double q1, double s1, double q2, double s2) { return q2 >= q1 && s2 >= s1 && (q2 > q1 || s2 > s1); }

/* The sensitivity report of the additive app (qos_p2 exact, cost_linear): every non-baseline (op,
 * knob) once, its known loss and speedup, ranked by speedup per point of QoS lost. */
static void check_sensitivity(const char *d) {
  char path[512], *txt;
  snprintf(path, sizeof path, "%s/sensitivity.json", d);
  FILE *f = fopen(path, "r");
  cr_assert(f, "%s written", path);
  txt = malloc(1 << 16);
  size_t n = fread(txt, 1, (1 << 16) - 1, f);
  fclose(f);
  txt[n] = 0;
  cJSON *root = cJSON_Parse(txt);
  cr_assert(root);
  cr_assert_str_eq(cJSON_GetObjectItem(root, "qos_model")->valuestring, "qos_p2");
  cJSON *arr = cJSON_GetObjectItem(root, "entries");
  cr_assert_eq(cJSON_GetArraySize(arr), GOPS * 2, "each op's two non-baseline knobs");
  const char *names = "abcde", *knobs[3] = {"exact", "half", "quarter"};
  const double div[3] = {1, 2, 4};
  double prev = INFINITY;
  int seen = 0;
  for (int i = 0; i < cJSON_GetArraySize(arr); i++) {
    cJSON *e = cJSON_GetArrayItem(arr, i);
    int op = (int)(strchr(names, cJSON_GetObjectItem(e, "op")->valuestring[0]) - names), pos = 0;
    for (int p = 1; p < 3; p++)
      if (!strcmp(cJSON_GetObjectItem(e, "knob")->valuestring, knobs[p])) pos = p;
    cr_assert(op >= 0 && op < GOPS && pos > 0);
    seen |= 1 << (op * 3 + pos);
    const double cost = 10.0 * (op + 1), speedup = 150.0 / (150.0 - cost + cost / div[pos]);
    cr_assert_float_eq(cJSON_GetObjectItem(e, "qos_loss")->valuedouble, LOSS[op][pos] - LOSS[op][0], 1e-9);
    cr_assert_float_eq(cJSON_GetObjectItem(e, "speedup")->valuedouble, speedup, 1e-12);
    cr_assert_float_eq(cJSON_GetObjectItem(e, "speedup_predicted")->valuedouble, speedup, 1e-12);
    cr_assert(cJSON_IsNull(cJSON_GetObjectItem(e, "speedup_measured")), "a generic app's ops are not timed");
    cr_assert_str_eq(cJSON_GetObjectItem(e, "group")->valuestring, knobs[pos], "a generic app's knob is its own group");
    cr_assert_eq(cJSON_GetObjectItem(e, "rank")->valueint, i + 1);
    const cJSON *sc = cJSON_GetObjectItem(e, "speedup_per_qos_point");
    if (cJSON_IsNumber(sc)) { /* ranked: lossless ones (null) first, then by speedup per point */
      cr_assert_leq(sc->valuedouble, prev + 1e-12);
      prev = sc->valuedouble;
    } else {
      cr_assert(prev == INFINITY, "a lossless entry after a lossy one");
    }
  }
  cr_assert_eq(__builtin_popcount(seen), GOPS * 2);
  cJSON_Delete(root);
  free(txt);
  snprintf(path, sizeof path, "%s/sensitivity.txt", d);
  cr_assert(access(path, R_OK) == 0);
  snprintf(path, sizeof path, "%s/sensitivity.png", d);
  cr_assert(access(path, R_OK) == 0, "the heatmap");
  snprintf(path, sizeof path, "%s/sensitivity.svg", d); /* a row per op, a column per knob, labels readable */
  for (int op = 0; op < GOPS; op++) {
    char name[2] = {names[op], 0};
    cr_assert_eq(labels_inside(path, name), 1, "op %s's row label", name);
  }
  cr_assert_eq(labels_inside(path, "half"), 1);
  cr_assert_eq(labels_inside(path, "quarter"), 1);
}

Test(tuner, generic_app_pipeline_keeps_filters_and_writes_results) {
  pt_app *app = make_app();
  pt_tuner *t;
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  char *d = tmpdir();
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 150;
  o.qos_tuner_threshold = 2.0;
  o.qos_keep_threshold = 2.5;
  o.take_best_n = 12;
  o.cost_model = PT_COST_LINEAR;
  o.qos_model = PT_QOS_P2;
  o.search_batch = 16;
  o.output_dir = d;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_eq(s->evaluated, 150, "stops at max_iter");
  cr_assert_float_eq(s->baseline_tune_qos, 100, 1e-9);
  cr_assert_float_eq(s->thresholds.tune_keep, 97.5, 1e-9);
  cr_assert_float_eq(s->thresholds.test_keep, 97.5, 1e-9);
  cr_assert(s->validated, "a QoS model was used: validation runs by default");
  cr_assert_float_eq(s->mean_abs_validation_error, 0, 1e-9, "P2 is exact on additive losses");
  int nk = pt_tuner_count(t, PT_KEPT), nb = pt_tuner_count(t, PT_BEST_PREFILTER), nf = pt_tuner_count(t, PT_BEST);
  cr_assert_gt(nk, 0);
  cr_assert_leq(nb, 12 > nk ? nk : 12 + nk);
  double *kq = malloc(sizeof(double) * nk), *ks = malloc(sizeof(double) * nk);
  for (int i = 0; i < nk; i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_KEPT, i, &c);
    cr_assert_gt(c.qos, 97.5, "kept above the keep threshold");
    double cost = 0, base = 10 + 20 + 30 + 40 + 50;
    for (int op = 0; op < GOPS; op++) cost += 10.0 * (op + 1) / (c.knobs[op] == 0 ? 1 : c.knobs[op] == 1 ? 2 : 4);
    cr_assert_float_eq(c.cost, cost / base, 1e-12, "relative cost_linear");
    kq[i] = c.qos, ks[i] = c.speedup;
  }
  /* every Pareto point of the kept set is among the best, and the best's front is non-dominated */
  int *front = malloc(sizeof(int) * nk);
  int n_front = pt_pareto_front(kq, ks, nk, front);
  cr_assert_geq(nb, n_front);
  for (int f = 0; f < n_front; f++) {
    int found = 0;
    for (int i = 0; i < nb && !found; i++) {
      pt_tuned_config c;
      pt_tuner_get(t, PT_BEST_PREFILTER, i, &c);
      found = c.qos == kq[front[f]] && c.speedup == ks[front[f]];
    }
    cr_assert(found, "front point %d is among the best", f);
    for (int g = 0; g < n_front; g++)
      cr_assert(!dominated_by(kq[front[f]], ks[front[f]], kq[front[g]], ks[front[g]]), "front is non-dominated");
  }
  for (int i = 0; i < nf; i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_BEST, i, &c);
    cr_assert(!isnan(c.test_qos), "test QoS filled");
    cr_assert_geq(c.test_qos, s->thresholds.test_keep, "filtered by the test keep threshold");
    cr_assert_geq(c.validated_qos, s->thresholds.tune_keep);
  }
  int dropped = 0; /* the test set loses 10 % more: some best configs must fail it */
  for (int i = 0; i < nb; i++) {
    pt_tuned_config c;
    pt_tuner_get(t, PT_BEST_PREFILTER, i, &c);
    dropped += c.test_qos < s->thresholds.test_keep;
  }
  cr_assert_eq(nf, nb - dropped);
  char path[512];
  snprintf(path, sizeof path, "%s/configs.json", d);
  cr_assert_eq(pt_tuner_dump_configs(t, path, 1), PT_OK, "%s", pt_last_error());
  pt_config_list *cl;
  cr_assert_eq(pt_configs_load(path, &cl), PT_OK, "%s", pt_last_error());
  cr_assert_eq(cl->n, nk, "--dump-all writes every kept config");
  pt_configs_free(cl);
  check_sensitivity(d);
  snprintf(path, sizeof path, "%s/configs.svg", d);
  cr_assert_eq(pt_tuner_plot(t, path, 1), PT_OK, "%s", pt_last_error());
  struct stat st;
  cr_assert(stat(path, &st) == 0 && st.st_size > 1000, "a plot was drawn");
  cr_assert_geq(labels_inside(path, "Speedup (x)"), 2, "every panel's y label, readable");
  snprintf(path, sizeof path, "%s/configs.pdf", d);
  cr_assert_eq(pt_tuner_plot(t, path, 0), PT_EINVAL, "unknown plot format");
  free(kq), free(ks), free(front);
  pt_tuner_free(t);
  pt_app_free(app);
  tmpdir_remove(d);
}

/* --time-budget: the search ends after the batch that spends it (journaled, kept), the rest of the
 * pipeline runs, configs.json says so, and a resumed run without a budget continues from there. */
Test(tuner, time_budget_ends_the_search_between_batches) {
  pt_app *app = make_app();
  pt_tuner *t;
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  char *d = tmpdir(), path[512];
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.max_iter = 150;
  o.cost_model = PT_COST_LINEAR;
  o.qos_model = PT_QOS_P2;
  o.search_batch = 16;
  o.output_dir = d;
  o.time_budget = 1e-9; /* spent by the first batch */
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  const pt_tune_summary *s = pt_tuner_summary(t);
  cr_assert_eq(s->evaluated, 16, "one batch, then the budget is spent");
  cr_assert(s->stopped_on_time);
  cr_assert_eq(s->stopped[0], 0, "on time is not a failure");
  cr_assert_gt(pt_tuner_count(t, PT_KEPT), 0, "selection ran");
  snprintf(path, sizeof path, "%s/configs.json", d);
  cr_assert_eq(pt_tuner_dump_configs(t, path, 0), PT_OK, "%s", pt_last_error());
  FILE *f = fopen(path, "r");
  char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  cJSON *root = cJSON_Parse(buf);
  cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(root, "stopped_on_time")), "configs.json records it");
  cJSON_Delete(root);
  o.time_budget = 0; /* resumed without a budget: the journaled 16 are kept, the rest evaluated */
  o.resume = 1;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  cr_assert_eq(s->evaluated, 150);
  cr_assert_eq(s->resumed, 16);
  cr_assert(!s->stopped_on_time);
  snprintf(path, sizeof path, "%s/sensitivity.json", d);
  cr_assert(access(path, F_OK) == 0, "a QoS model: the sensitivity report");
  o.resume = 0; /* an empirical run over it: no report, and not the earlier one either */
  o.overwrite = 1;
  o.qos_model = PT_QOS_EMPIRICAL;
  o.max_iter = 20;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_OK, "%s", pt_last_error());
  cr_assert(access(path, F_OK) != 0, "the earlier run's report is gone");
  o.overwrite = 0;
  o.output_dir = NULL;
  const double bad[] = {-1, NAN, INFINITY};
  for (int i = 0; i < 3; i++) {
    o.time_budget = bad[i];
    cr_assert_eq(pt_tuner_tune(t, &o), PT_EINVAL, "budget %g", bad[i]);
    cr_assert(strstr(pt_last_error(), "time budget"), "%s", pt_last_error());
  }
  pt_tuner_free(t);
  pt_app_free(app);
  tmpdir_remove(d);
}

/* The CLI and the library share these names (and configs.json and the journal record them). */
/* The layout table the Python package checks its ctypes structs against (include/predtuner/abi.h). */
Test(tuner, abi_layout_table_gives_sizes_and_offsets) {
  cr_assert_eq(pt_abi_layout("pt_tune_opts", NULL), (int64_t)sizeof(pt_tune_opts));
  cr_assert_eq(pt_abi_layout("pt_tune_opts", "max_iter"), (int64_t)offsetof(pt_tune_opts, max_iter));
  cr_assert_eq(pt_abi_layout("pt_tune_opts", "progress"), (int64_t)offsetof(pt_tune_opts, progress));
  cr_assert_eq(pt_abi_layout("pt_tune_summary", "mean_speedup_error"),
               (int64_t)offsetof(pt_tune_summary, mean_speedup_error));
  cr_assert_eq(pt_abi_layout("pt_dnn_app_opts", "prefix_cache_mib"), (int64_t)offsetof(pt_dnn_app_opts, prefix_cache_mib));
  cr_assert_eq(pt_abi_layout("pt_knob", NULL), (int64_t)sizeof(pt_knob));
  cr_assert_eq(pt_abi_layout("pt_knob", "noise_level"), (int64_t)offsetof(pt_knob, noise_level));
  cr_assert_eq(pt_abi_layout("pt_tune_opts", "no_such_field"), -1);
  cr_assert_eq(pt_abi_layout("pt_no_such_type", NULL), -1);
  cr_assert_eq(pt_abi_layout(NULL, NULL), -1);
  cr_assert_str_eq(pt_version(), PT_VERSION_STRING);
}

Test(tuner, model_names_round_trip) {
  const char *qn[] = {"empirical", "qos_p1", "qos_p2"}, *cn[] = {"empirical", "cost_linear", "cost_profiled"};
  for (int m = 0; m < 3; m++) {
    cr_assert_str_eq(pt_qos_model_name((pt_qos_model)m), qn[m]);
    cr_assert_eq(pt_qos_model_parse(qn[m]), m);
    cr_assert_str_eq(pt_cost_model_name((pt_cost_model)m), cn[m]);
    cr_assert_eq(pt_cost_model_parse(cn[m]), m);
  }
  cr_assert_eq(pt_qos_model_parse("qos_p3"), -1);
  cr_assert_eq(pt_qos_model_parse("cost_linear"), -1);
  cr_assert_eq(pt_cost_model_parse("qos_p1"), -1);
  cr_assert_eq(pt_cost_model_parse(NULL), -1);
  cr_assert_null(pt_qos_model_name((pt_qos_model)3));
  cr_assert_null(pt_cost_model_name((pt_cost_model)-1));
}

Test(tuner, bad_options_are_errors) {
  pt_app *app = make_app();
  pt_tuner *t;
  cr_assert_eq(pt_tuner_create(app, &t), PT_OK);
  pt_tune_opts o;
  pt_tune_opts_init(&o);
  o.qos_model = (pt_qos_model)3;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_EINVAL);
  cr_assert(strstr(pt_last_error(), "unknown QoS model 3"), "%s", pt_last_error());
  pt_tune_opts_init(&o);
  o.cost_model = (pt_cost_model)-1;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_EINVAL);
  cr_assert(strstr(pt_last_error(), "unknown cost model -1"), "%s", pt_last_error());
  pt_tune_opts_init(&o);
  o.qos_model = PT_QOS_P1;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_EUNSUPPORTED, "a generic app has no output tensor");
  pt_tune_opts_init(&o);
  o.max_iter = 0;
  cr_assert_eq(pt_tuner_tune(t, &o), PT_EINVAL);
  pt_tune_opts_init(&o); /* empirical cost from a callback that reports none */
  cr_assert_eq(pt_tuner_tune(t, &o), PT_ERANGE);
  cr_assert_eq(pt_tuner_dump_configs(t, "/tmp/x.json", 0), PT_EINVAL, "nothing tuned");
  pt_tuner_free(t);
  pt_app_free(app);
}

Test(tuner, example_generic_app_runs) {
  char *d = tmpdir(), cmd[1024];
  snprintf(cmd, sizeof cmd, "%s %s/out > %s/log 2>&1", PT_GENERIC_APP_PATH, d, d);
  cr_assert_eq(system(cmd), 0, "examples/generic_app failed (see its output)");
  snprintf(cmd, sizeof cmd, "grep -q 'best configs' %s/log && test -s %s/out/configs.json && rm -rf %s", d, d, d);
  cr_assert_eq(system(cmd), 0);
  free(d);
}

/* ---- the CLI on the demo ---- */

static int64_t journal_rows(const char *path) {
  sqlite3 *db;
  int64_t n = -1;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM evals", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
      n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return n;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  b[fread(b, 1, (size_t)n, f)] = 0;
  fclose(f);
  return b;
}

Test(cli, demo_tune_writes_results_that_hold, .timeout = 600) {
  char *d = tmpdir(), cmd[2048], path[600];
  snprintf(cmd, sizeof cmd,
           "%s tune --tune-count 200 --test-count 200 --batch-size 100 --max-iter 300 --threads 2 --output %s/out "
           "--dump-all > %s/stdout 2> %s/stderr",
           PT_CLI_PATH, d, d, d);
  cr_assert_eq(system(cmd), 0, "tune failed: see %s/stderr", d);
  snprintf(path, sizeof path, "%s/out/configs.json", d);
  char *txt = slurp(path);
  cr_assert_not_null(txt);
  cJSON *root = cJSON_Parse(txt);
  cr_assert_not_null(root, "configs.json parses");
  double keep = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "thresholds"), "tune_keep")->valuedouble;
  double tkeep = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "thresholds"), "test_keep")->valuedouble;
  double base = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "baseline"), "tune_qos")->valuedouble;
  cr_assert_float_eq(keep, base - 3.0, 1e-9, "demo keep threshold 3.0 relative");
  cr_assert_str_eq(cJSON_GetObjectItem(root, "qos_model")->valuestring, "qos_p1");
  const cJSON *c;
  int n = 0, best = 0, tested = 0;
  cJSON_ArrayForEach(c, cJSON_GetObjectItem(root, "configs")) {
    double q = cJSON_GetObjectItem(c, "qos")->valuedouble, co = cJSON_GetObjectItem(c, "cost")->valuedouble;
    cr_assert_gt(q, keep);
    cr_assert_float_eq(cJSON_GetObjectItem(c, "speedup")->valuedouble, 1.0 / co, 1e-12, "speedup = 1/cost");
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(c, "knobs")), 10, "every op named");
    if (cJSON_IsTrue(cJSON_GetObjectItem(c, "best"))) {
      best++;
      const cJSON *tq = cJSON_GetObjectItem(c, "test_qos"), *vq = cJSON_GetObjectItem(c, "validated_qos");
      cr_assert(cJSON_IsNumber(tq) && cJSON_IsNumber(vq), "best configs are validated and tested");
      tested += tq->valuedouble >= tkeep && vq->valuedouble >= keep;
    }
    n++;
  }
  cr_assert_gt(n, 0);
  cr_assert_gt(best, 0);
  cr_assert_leq(best, 20);
  cr_assert_gt(tested, 0);
  cJSON_Delete(root);
  free(txt);
  snprintf(path, sizeof path, "%s/out/tuning.sqlite", d);
  cr_assert_eq(journal_rows(path), 300, "journal holds every evaluated config");
  snprintf(cmd, sizeof cmd, "test -s %s/out/configs.png && test -s %s/out/configs.svg && test -s %s/out/tune.log && "
           "test -s %s/out/models/p1.safetensors && grep -q 'files in' %s/stdout", d, d, d, d, d);
  cr_assert_eq(system(cmd), 0, "plots, log, model and summary");
  /* plot redraws from the results file */
  snprintf(cmd, sizeof cmd, "%s plot %s/out/configs.json -o %s/re.svg > /dev/null && test -s %s/re.svg", PT_CLI_PATH, d, d, d);
  cr_assert_eq(system(cmd), 0);
  snprintf(path, sizeof path, "%s/out/configs.svg", d); /* the demo's plot: every y label readable */
  cr_assert_geq(labels_inside(path, "Speedup (x)"), 3);
  snprintf(path, sizeof path, "%s/re.svg", d);
  cr_assert_geq(labels_inside(path, "Speedup (x)"), 3);
  /* a second run reuses the stored model: no qos_p1 init progress */
  snprintf(cmd, sizeof cmd,
           "%s tune --tune-count 200 --test-count 200 --batch-size 100 --max-iter 20 --threads 2 --output %s/out --overwrite "
           "> /dev/null 2> %s/stderr2 && ! grep -q 'qos_p1 init' %s/stderr2",
           PT_CLI_PATH, d, d, d);
  cr_assert_eq(system(cmd), 0, "model reused");
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  system(cmd);
  free(d);
}

Test(cli, killed_tune_resumes_without_losing_or_repeating, .timeout = 600) {
  char *d = tmpdir(), cmd[2048], path[600], out[600];
  snprintf(path, sizeof path, "%s/out/tuning.sqlite", d);
  snprintf(out, sizeof out, "%s/out", d);
  const char *args[] = {PT_CLI_PATH, "tune", "--qos-model", "empirical", "--cost-model", "cost_linear", "--tune-count",
                        "100", "--test-count", "100", "--batch-size", "100", "--max-iter", "120", "--search-batch", "4",
                        "--threads", "1", "--no-test", "--output", out, NULL};
  pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    execv(PT_CLI_PATH, (char *const *)args);
    _exit(127);
  }
  int64_t rows = 0;
  for (int i = 0; i < 6000 && rows < 12; i++) {
    usleep(10000);
    rows = access(path, F_OK) == 0 ? journal_rows(path) : 0;
  }
  kill(pid, SIGKILL);
  int status;
  waitpid(pid, &status, 0);
  cr_assert(WIFSIGNALED(status), "the run was killed mid-search (it exited first, status %d, with %lld journal rows seen)",
            WIFEXITED(status) ? WEXITSTATUS(status) : -1, (long long)rows);
  int64_t before = journal_rows(path);
  cr_assert_geq(before, 12);
  cr_assert_lt(before, 120);
  sqlite3 *db;
  sqlite3_open(path, &db);
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "SELECT group_concat(config || ':' || qos, ';') FROM (SELECT * FROM evals ORDER BY id)", -1, &st, NULL);
  sqlite3_step(st);
  char *snapshot = strdup((const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);

  snprintf(cmd, sizeof cmd,
           "%s tune --qos-model empirical --cost-model cost_linear --tune-count 100 --test-count 100 --batch-size 100 "
           "--max-iter 120 --search-batch 4 --threads 1 --no-test --output %s --resume > %s/stdout 2>/dev/null",
           PT_CLI_PATH, out, d);
  cr_assert_eq(system(cmd), 0);
  cr_assert_eq(journal_rows(path), 120, "resumed to max_iter");
  snprintf(cmd, sizeof cmd, "grep -q '(%lld resumed)' %s/stdout", (long long)before, d);
  cr_assert_eq(system(cmd), 0, "the resumed run read back every journaled config");
  sqlite3_open(path, &db);
  sqlite3_prepare_v2(db, "SELECT group_concat(config || ':' || qos, ';') FROM (SELECT * FROM evals ORDER BY id LIMIT ?)", -1, &st, NULL);
  sqlite3_bind_int64(st, 1, before);
  sqlite3_step(st);
  cr_assert_str_eq((const char *)sqlite3_column_text(st, 0), snapshot, "journaled configs survive unchanged");
  sqlite3_finalize(st);
  sqlite3_prepare_v2(db, "SELECT COUNT(DISTINCT config) FROM evals", -1, &st, NULL);
  sqlite3_step(st);
  cr_assert_eq(sqlite3_column_int64(st, 0), 120, "no config evaluated twice");
  sqlite3_finalize(st);
  sqlite3_close(db);
  /* resuming with other models is refused, naming the journal */
  snprintf(cmd, sizeof cmd,
           "%s tune --qos-model qos_p2 --cost-model cost_linear --tune-count 100 --test-count 100 --max-iter 130 "
           "--threads 1 --no-test --output %s --resume > /dev/null 2> %s/err; test $? -eq 1 && grep -q 'tuning.sqlite: cannot resume' %s/err",
           PT_CLI_PATH, out, d, d);
  cr_assert_eq(system(cmd), 0);
  free(snapshot);
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  system(cmd);
  free(d);
}

Test(cli, tune_rejects_bad_input) {
  char *d = tmpdir(), cmd[2048];
  struct {
    const char *args;
    int rc;
    const char *msg;
  } cases[] = {
      {"--qos-model qos_p9", 2, "--qos-model takes"},
      {"--max-iter 0", 2, "--max-iter"},
      {"--qos-tuner-threshold abc", 2, "expects a number"},
      {"--frobnicate", 2, "unknown argument"},
      {"--model lenet_mnist", 2, "go together"},
      {"--resume --tune-count 10 --test-count 10", 1, "no journal to resume"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    snprintf(cmd, sizeof cmd, "cd %s && %s tune %s > /dev/null 2> err; test $? -eq %d && grep -q -- '%s' err", d,
             PT_CLI_PATH, cases[i].args, cases[i].rc, cases[i].msg);
    cr_assert_eq(system(cmd), 0, "case %zu: %s", i, cases[i].args);
  }
  /* a garbage p2.json in the model folder: one line naming it, exit 1 */
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/o/models && echo '{\"df\": 3' > %s/o/models/p2.json && %s tune --qos-model qos_p2 --cost-model "
           "cost_linear --tune-count 10 --test-count 10 --output %s/o > /dev/null 2> %s/err; test $? -eq 1 && "
           "grep -q 'p2.json: not valid JSON' %s/err",
           d, d, PT_CLI_PATH, d, d, d);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/q/models && echo '{\"seconds\": {\"convs.0\": {\"11\": -1}}}' > %s/q/models/cost_profiled.json && "
           "%s tune --cost-model cost_profiled --tune-count 10 --test-count 10 --output %s/q > /dev/null 2> %s/err; "
           "test $? -eq 1 && grep -q 'cost_profiled.json: op .convs.0. knob .11.: expected seconds' %s/err",
           d, d, PT_CLI_PATH, d, d, d);
  cr_assert_eq(system(cmd), 0, "garbage cost_profiled.json");
  snprintf(cmd, sizeof cmd, "echo '{\"configs\": 1}' > %s/c.json && %s plot %s/c.json 2> %s/err; test $? -eq 1 && grep -q 'c.json' %s/err",
           d, PT_CLI_PATH, d, d, d);
  cr_assert_eq(system(cmd), 0, "plot of a bad file");
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  system(cmd);
  free(d);
}
