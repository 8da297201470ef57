/* The search stage of the pipeline: the journal (opened, or resumed: every journaled config told to
 * the search and kept), then rounds of ask, evaluate, tell and journal until max_iter distinct
 * configs are evaluated, the space is exhausted or the time budget is spent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/log.h"
#include "predtuner/search.h"
#include "tuner/journal.h"
#include "tuner/tuner_internal.h"

/* Appends n evaluated configs to the tuner's list; early[k] (NULL: none) marks those stopped early. */
static pt_status append(pt_tuner *t, int n, const uint16_t *cfgs, const double *qos, const double *cost, int pred,
                        const uint8_t *early) {
  int no = t->app->n_ops;
  if (t->n + n > t->cap) {
    int64_t cap = t->cap ? t->cap : 1024;
    while (cap < t->n + n) cap *= 2;
    void *a = pt__realloc(t->cfg, (size_t)cap * (size_t)no * sizeof *t->cfg);
    if (a) t->cfg = a;
    void *b = pt__realloc(t->qos, (size_t)cap * sizeof *t->qos);
    if (b) t->qos = b;
    void *c = pt__realloc(t->cost, (size_t)cap * sizeof *t->cost);
    if (c) t->cost = c;
    void *d = pt__realloc(t->pred, (size_t)cap), *e = pt__realloc(t->early, (size_t)cap);
    if (d) t->pred = d;
    if (e) t->early = e;
    if (!a || !b || !c || !d || !e) return pt__error(PT_ENOMEM, "tuner: out of memory for %lld configs", (long long)cap);
    t->cap = cap;
  }
  memcpy(t->cfg + t->n * no, cfgs, (size_t)n * (size_t)no * sizeof *cfgs);
  for (int k = 0; k < n; k++) {
    t->qos[t->n + k] = qos[k];
    t->cost[t->n + k] = cost[k];
    t->pred[t->n + k] = (uint8_t)pred;
    t->early[t->n + k] = early ? early[k] : 0;
  }
  t->n += n;
  return PT_OK;
}

static pt_status make_search(const pt_tuner *t, const pt_tune_opts *o, const pt__evaluator *ev, pt_search **se) {
  const pt_app *app = t->app;
  PT__TRY(pt_search_create(app->n_ops, app->n_knobs, o->seed, se));
  pt_search_set_threshold(*se, t->sum.thresholds.tuner);
  return pt_search_set_tables(*se, ev->search_loss, ev->search_cost);
}

/* A failed config, counted by its status (the summary's failed_by). */
static void count_failure(pt_tuner *t, pt_status st) {
  t->sum.failed++;
  int k = -(int)st;
  t->sum.failed_by[k > 0 && k < PT_STATUS_COUNT ? k : -PT_EBACKEND]++;
}

/* Every journaled config, told to the search and appended to the tuner's list (failed ones stay failed). */
static pt_status resume(pt_tuner *t, pt__journal *jr, pt_search *se) {
  pt_app *app = t->app;
  pt__journal_rows r;
  pt_status s = pt__journal_read(jr, app, &r);
  for (int64_t i = 0; s == PT_OK && i < r.n; i++) {
    const uint8_t early = r.status[i] == PT__STOPPED;
    s = pt_search_tell(se, 1, r.cfgs + i * app->n_ops, r.qos + i, r.cost + i);
    if (s == PT_OK) s = append(t, 1, r.cfgs + i * app->n_ops, r.qos + i, r.cost + i, r.predicted[i], &early);
    if (s == PT_OK && early) t->sum.early_stopped++;
    else if (s == PT_OK && r.status[i] != PT_OK) count_failure(t, (pt_status)r.status[i]);
  }
  int64_t loose = 0; /* stopped against a stricter keep threshold than this run's */
  for (int64_t i = 0; s == PT_OK && i < r.n; i++) loose += r.status[i] == PT__STOPPED && r.qos[i] > t->sum.thresholds.tune_keep;
  if (loose)
    pt_log(PT_LOG_WARN, "%lld journaled configs were stopped early against a stricter keep threshold; they are not kept "
           "(--overwrite measures every config afresh)", (long long)loose);
  if (s == PT_OK) {
    t->sum.resumed = r.n;
    pt_log(PT_LOG_INFO, "resumed %lld configs from the journal (%lld failed, %lld stopped early)", (long long)r.n,
           (long long)t->sum.failed, (long long)t->sum.early_stopped);
  }
  pt__journal_rows_free(&r);
  return s;
}

static pt_status open_journal(pt_tuner *t, const pt_tune_opts *o, pt_search *se, pt__journal **jr) {
  *jr = NULL;
  if (!o->output_dir) return PT_OK;
  char path[4096];
  PT__TRY(pt__model_path(o->output_dir, "tuning.sqlite", 1, path, sizeof path));
  PT__TRY(pt__journal_open(path, o->resume, o->overwrite, t->app, pt_qos_model_name(t->qos_model),
                           pt_cost_model_name(t->cost_model), jr));
  return o->resume ? resume(t, *jr, se) : PT_OK;
}

/* Scratch of one round: configs asked, their results and techniques. */
typedef struct round_buf {
  uint16_t *cfg;    /* (batch, n_ops) */
  double *qos, *cost;
  const char **tech;
  pt__fail *fail;
  uint8_t *early; /* (batch) stopped early */
} round_buf;

/* More failed configs than the limit (resumed ones count: a run that failed systematically stops
 * again when resumed as it was) stop the search; sum.stopped says why, with the last reason. */
static void check_limit(pt_tuner *t, const pt_tune_opts *o, const char *last_why) {
  int limit = o->max_failures >= 0 ? o->max_failures : (o->max_iter / 4 > 8 ? o->max_iter / 4 : 8);
  if (t->sum.failed > limit && !t->sum.stopped[0])
    snprintf(t->sum.stopped, sizeof t->sum.stopped, "%lld configs failed, more than --max-failures %d%s%s",
             (long long)t->sum.failed, limit, last_why[0] ? "; the last: " : "", last_why);
}

/* The failures of a round: counted, the first five of the run on the terminal (all in tune.log). */
static void note_failures(pt_tuner *t, const pt_tune_opts *o, const pt_app *app, int got, const round_buf *b,
                          int64_t *fresh_failed) {
  const char *last = "";
  for (int k = 0; k < got; k++) {
    if (b->fail[k].status == PT__STOPPED) t->sum.early_stopped++;
    if (b->fail[k].status == PT_OK || b->fail[k].status == PT__STOPPED) continue;
    count_failure(t, b->fail[k].status);
    char cfg[256];
    size_t at = 0;
    for (int op = 0; op < app->n_ops && at < sizeof cfg; op++)
      at += (size_t)snprintf(cfg + at, sizeof cfg - at, op ? " %u" : "%u", b->cfg[(int64_t)k * app->n_ops + op]);
    pt_log(++*fresh_failed <= 5 ? PT_LOG_WARN : PT_LOG_DEBUG, "config [%s] failed: %s", cfg, b->fail[k].why);
    last = b->fail[k].why;
  }
  check_limit(t, o, last);
}

/* Rounds of ask, evaluate, tell, journal, append. */
static pt_status rounds(pt_tuner *t, const pt_tune_opts *o, pt__evaluator *ev, pt_search *se, pt__journal *jr) {
  const pt_app *app = t->app;
  const int nb = o->search_batch, pred = pt__eval_predicts_qos(ev);
  round_buf b = {pt__malloc((size_t)nb * (size_t)app->n_ops * sizeof *b.cfg), pt__malloc((size_t)nb * sizeof *b.qos),
                 pt__malloc((size_t)nb * sizeof *b.cost), pt__malloc((size_t)nb * sizeof *b.tech),
                 pt__malloc((size_t)nb * sizeof *b.fail), pt__malloc((size_t)nb)};
  pt_status s = PT_OK;
  int64_t fresh_failed = 0;
  if (!b.cfg || !b.qos || !b.cost || !b.tech || !b.fail || !b.early)
    s = pt__error(PT_ENOMEM, "tuner: out of memory for a search batch of %d", nb);
  if (s == PT_OK) check_limit(t, o, "");
  pt_progress prog;
  const double start = pt_now();
  pt_progress_begin(&prog, o->progress, "search", o->max_iter);
  pt_progress_update(&prog, t->n < o->max_iter ? t->n : o->max_iter);
  while (s == PT_OK && t->n < o->max_iter && !t->sum.stopped[0]) {
    int want = o->max_iter - (int)t->n < nb ? o->max_iter - (int)t->n : nb;
    int got = pt_search_ask(se, want, b.cfg);
    if (got < 0) {
      s = PT_ENOMEM;
      break;
    }
    if (got == 0) {
      pt_log(PT_LOG_INFO, "search space exhausted after %lld configs", (long long)t->n);
      break;
    }
    double t0 = pt_now();
    int nf = pt__eval_batch(ev, got, b.cfg, b.qos, b.cost, b.fail);
    if (nf < 0) {
      s = (pt_status)nf;
      break;
    }
    double each = (pt_now() - t0) / got;
    s = pt_search_tell(se, got, b.cfg, b.qos, b.cost);
    for (int k = 0; k < got; k++) b.tech[k] = pt_search_config_technique(se, b.cfg + (int64_t)k * app->n_ops);
    if (s == PT_OK && jr) s = pt__journal_add(jr, app, got, b.cfg, b.qos, b.cost, pred, each, b.tech, b.fail);
    for (int k = 0; k < got; k++) b.early[k] = b.fail[k].status == PT__STOPPED;
    if (s == PT_OK) s = append(t, got, b.cfg, b.qos, b.cost, pred, b.early);
    if (s == PT_OK) note_failures(t, o, app, got, &b, &fresh_failed);
    pt_progress_update(&prog, t->n);
    if (s == PT_OK && o->time_budget > 0 && t->n < o->max_iter && !t->sum.stopped[0] &&
        (double)t->n < t->sum.space_size && pt_now() - start >= o->time_budget) {
      t->sum.stopped_on_time = 1; /* between batches: every evaluated config is journaled and kept */
      pt_log(PT_LOG_INFO, "search stopped on time: the budget of %g s was spent after %lld configs", o->time_budget,
             (long long)t->n);
      break;
    }
  }
  pt_progress_end(&prog);
  free(b.cfg), free(b.qos), free(b.cost), free(b.tech), free(b.fail), free(b.early);
  if (t->sum.stopped[0]) pt_log(PT_LOG_ERROR, "search stopped: %s", t->sum.stopped);
  return s;
}

/* The summary's search numbers (after a failed search too) and, when it succeeded, the log's record. */
static void report(pt_tuner *t, const pt_search *se, double seconds, int ok) {
  pt_tune_summary *sum = &t->sum;
  const int no = t->app->n_ops;
  sum->search_seconds = seconds;
  sum->evaluated = t->n;
  int64_t fresh = t->n - sum->resumed;
  sum->configs_per_s = seconds > 0 ? (double)fresh / seconds : 0;
  for (int64_t i = 0; i < t->n; i++) {
    int zero = 1;
    for (int op = 0; op < no && zero; op++) zero = t->cfg[i * no + op] == 0;
    if (zero) sum->baseline_config_tune_qos = t->qos[i];
  }
  if (!ok) return;
  pt_log(PT_LOG_INFO, "search: %lld configs (%lld new) in %.2f s, %.0f configs/s", (long long)t->n, (long long)fresh,
         seconds, sum->configs_per_s);
  for (int k = 0; k < pt_search_num_techniques(); k++) {
    int64_t pr, im;
    pt_search_technique_stats(se, k, &pr, &im);
    if (pr)
      pt_log(PT_LOG_INFO, "  technique %-15s proposed %lld, improved the best %lld times", pt_search_technique_name(k),
             (long long)pr, (long long)im);
  }
}

pt_status pt__tune_search(pt_tuner *t, const pt_tune_opts *o, pt__evaluator *ev) {
  pt_search *se = NULL;
  pt__journal *jr = NULL;
  pt_status s = make_search(t, o, ev, &se);
  if (s == PT_OK) s = open_journal(t, o, se, &jr);
  double t0 = pt_now();
  if (s == PT_OK) s = rounds(t, o, ev, se, jr);
  if (se) report(t, se, pt_now() - t0, s == PT_OK);
  if (s == PT_OK && jr) {
    char v[64];
    snprintf(v, sizeof v, "%.17g", t->sum.baseline_tune_qos);
    s = pt__journal_meta(jr, "baseline_tune_qos", v);
  }
  pt__journal_close(jr);
  pt_search_free(se);
  return s;
}
