/* The batched ask/tell search (docs/design.md, "Search"). Every proposal comes from one technique picked by an
 * AUC bandit (OpenTuner's default meta-technique): a technique's score is the area under its recent
 * "improved the best" curve (later successes weigh more) plus an exploration bonus. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/rng.h"
#include "predtuner/search.h"
#include "search/configset.h"

enum { T_TOLD, T_BASELINE, T_RANDOM, T_GREEDY_UNIFORM, T_GREEDY_NORMAL, T_DE, T_GROW, T_GUIDED, T__COUNT };
static const char *const TECH_NAMES[T__COUNT] = {"told", "baseline", "random", "greedy-uniform", "greedy-normal",
                                                 "diff-evolution", "grow", "model-guided"};

#define BANDIT_WINDOW 200 /* OpenTuner uses 500 for runs of thousands of evaluations; ours are often shorter */
#define BANDIT_C 0.05
#define DE_POP 24
#define ELITES 16
#define RETRIES 24

typedef struct tech_state {
  uint8_t hist[BANDIT_WINDOW]; /* ring of recent outcomes (1 = improved the best) */
  int hist_n, hist_at;
  double hist_sum, hist_wsum; /* sum of outcomes and of outcome x age rank (1 = oldest): O(1) AUC */
  int64_t proposed, improved, pending; /* pending: asked in the current batch, not yet told */
} tech_state;

struct pt_search {
  int n_ops;
  int *n_knobs, *entry_off, n_entries;
  int *tunable, n_tunable; /* ops with more than one knob */
  double space;
  pt_rng rng;
  double threshold;
  pt__configset cs;
  int64_t best;       /* index in cs, -1 before any tell */
  int64_t *pass;      /* indices of told configs at or above the threshold */
  int64_t n_pass, cap_pass;
  int64_t elite[ELITES]; /* best passing configs, best first */
  int n_elite;
  int64_t de_pop[DE_POP];
  int de_n, de_next;
  double *loss, *cost;   /* per entry (NAN = unknown); cost NULL when not given */
  int64_t baseline_idx;  /* index of the all-zero config when told, -1 otherwise */
  tech_state tech[T__COUNT];
  int64_t total_uses;
  uint16_t *scratch;     /* (4, n_ops) */
};

const char *pt_search_config_technique(const pt_search *s, const uint16_t *cfg) {
  int64_t i = pt__cs_find(&s->cs, cfg);
  return i < 0 ? NULL : TECH_NAMES[s->cs.tech[i]];
}

int pt_search_num_techniques(void) { return T__COUNT; }
const char *pt_search_technique_name(int t) { return t >= 0 && t < T__COUNT ? TECH_NAMES[t] : "?"; }

void pt_search_technique_stats(const pt_search *s, int t, int64_t *proposed, int64_t *improved) {
  *proposed = t >= 0 && t < T__COUNT ? s->tech[t].proposed : 0;
  *improved = t >= 0 && t < T__COUNT ? s->tech[t].improved : 0;
}

pt_status pt_search_create(int n_ops, const int *n_knobs, uint64_t seed, pt_search **out) {
  *out = NULL;
  if (n_ops <= 0) return pt__error(PT_EINVAL, "search: %d ops", n_ops);
  pt_search *s = pt__calloc(1, sizeof *s);
  if (!s) return pt__error(PT_ENOMEM, "search: out of memory");
  s->n_ops = n_ops;
  s->n_knobs = pt__malloc((size_t)n_ops * sizeof *s->n_knobs);
  s->entry_off = pt__malloc((size_t)(n_ops + 1) * sizeof *s->entry_off);
  s->tunable = pt__malloc((size_t)n_ops * sizeof *s->tunable);
  s->scratch = pt__malloc((size_t)4 * (size_t)n_ops * sizeof *s->scratch);
  pt_status st = s->n_knobs && s->entry_off && s->tunable && s->scratch ? pt__cs_init(&s->cs, n_ops)
                                                                         : pt__error(PT_ENOMEM, "search: out of memory");
  if (st != PT_OK) {
    pt_search_free(s);
    return st;
  }
  s->space = 1;
  s->entry_off[0] = 0;
  for (int i = 0; i < n_ops; i++) {
    if (n_knobs[i] < 1 || n_knobs[i] > 65535) {
      pt_search_free(s);
      return pt__error(PT_EINVAL, "search: op %d has %d knobs", i, n_knobs[i]);
    }
    s->n_knobs[i] = n_knobs[i];
    s->entry_off[i + 1] = s->entry_off[i] + n_knobs[i];
    s->space *= n_knobs[i];
    if (n_knobs[i] > 1) s->tunable[s->n_tunable++] = i;
  }
  s->n_entries = s->entry_off[n_ops];
  s->loss = pt__malloc((size_t)s->n_entries * sizeof *s->loss);
  if (!s->loss) {
    pt_status st2 = pt__error(PT_ENOMEM, "search: out of memory for %d knob choices", s->n_entries);
    pt_search_free(s);
    return st2;
  }
  for (int e = 0; e < s->n_entries; e++) s->loss[e] = NAN;
  for (int i = 0; i < n_ops; i++) s->loss[s->entry_off[i]] = 0.0; /* the baseline loses nothing */
  pt_rng_seed(&s->rng, seed);
  s->threshold = -INFINITY;
  s->best = s->baseline_idx = -1;
  *out = s;
  return PT_OK;
}

void pt_search_free(pt_search *s) {
  if (!s) return;
  pt__cs_free(&s->cs);
  free(s->n_knobs);
  free(s->entry_off);
  free(s->tunable);
  free(s->scratch);
  free(s->pass);
  free(s->loss);
  free(s->cost);
  free(s);
}

int64_t pt_search_num_seen(const pt_search *s) { return s->cs.n; }
double pt_search_space_size(const pt_search *s) { return s->space; }

const uint16_t *pt_search_best(const pt_search *s, double *qos, double *cost) {
  if (s->best < 0) return NULL;
  if (qos) *qos = s->cs.qos[s->best];
  if (cost) *cost = s->cs.cost[s->best];
  return pt__cs_at(&s->cs, s->best);
}

/* ---- objective ---- */

static void add_elite(pt_search *s, int64_t i);
static pt_status push_pass(pt_search *s, int64_t i);

static int passes(const pt_search *s, double q) { return q >= s->threshold; } /* NaN never passes */

/* Whether config a beats config b (both told). */
static int better(const pt_search *s, int64_t a, int64_t b) {
  double qa = s->cs.qos[a], qb = s->cs.qos[b], ca = s->cs.cost[a], cb = s->cs.cost[b];
  int pa = passes(s, qa), pb = passes(s, qb);
  if (pa != pb) return pa;
  if (isnan(qa) != isnan(qb)) return !isnan(qa);
  if (pa) return ca < cb || (ca == cb && qa > qb);
  return qa > qb || (qa == qb && ca < cb);
}

void pt_search_set_threshold(pt_search *s, double qos_threshold) {
  s->threshold = qos_threshold;
  /* re-rank what is known under the new threshold */
  s->best = -1;
  s->n_pass = s->n_elite = 0;
  for (int64_t i = 0; i < s->cs.n; i++) {
    if (!s->cs.told[i]) continue;
    if (s->best < 0 || better(s, i, s->best)) s->best = i;
    if (passes(s, s->cs.qos[i]) && push_pass(s, i) == PT_OK) add_elite(s, i);
  }
}

pt_status pt_search_set_tables(pt_search *s, const double *qos_loss, const double *cost) {
  if (qos_loss)
    for (int e = 0; e < s->n_entries; e++) s->loss[e] = qos_loss[e];
  if (cost) {
    if (!s->cost && !(s->cost = pt__malloc((size_t)s->n_entries * sizeof *s->cost)))
      return pt__error(PT_ENOMEM, "search: out of memory for %d knob costs", s->n_entries);
    memcpy(s->cost, cost, (size_t)s->n_entries * sizeof *cost);
  }
  return PT_OK;
}

/* ---- techniques: each writes a candidate into c (which may be a duplicate; the caller checks) ---- */

static void random_config(pt_search *s, uint16_t *c) {
  for (int i = 0; i < s->n_ops; i++) c[i] = (uint16_t)pt_rng_below(&s->rng, (uint64_t)s->n_knobs[i]);
}

static double rng_normal(pt_rng *r) {
  double u = pt_rng_uniform(r), v = pt_rng_uniform(r);
  return sqrt(-2.0 * log(1.0 - u)) * cos(6.283185307179586 * v);
}

/* Changes m distinct tunable ops of c to another of their knobs. */
static void mutate(pt_search *s, uint16_t *c, int m) {
  if (m > s->n_tunable) m = s->n_tunable;
  int *ops = s->tunable;
  for (int k = 0; k < m; k++) { /* partial Fisher-Yates over the tunable ops */
    int j = k + (int)pt_rng_below(&s->rng, (uint64_t)(s->n_tunable - k));
    int t = ops[k];
    ops[k] = ops[j];
    ops[j] = t;
    int op = ops[k], nk = s->n_knobs[op];
    c[op] = (uint16_t)((c[op] + 1 + pt_rng_below(&s->rng, (uint64_t)(nk - 1))) % (uint64_t)nk);
  }
}

static int64_t pick_parent(pt_search *s) {
  if (s->n_pass == 0) return s->best;
  if (s->n_elite && pt_rng_uniform(&s->rng) < 0.5) return s->elite[pt_rng_below(&s->rng, (uint64_t)s->n_elite)];
  return s->pass[pt_rng_below(&s->rng, (uint64_t)s->n_pass)];
}

static void greedy(pt_search *s, uint16_t *c, int normal) {
  if (s->best < 0) {
    random_config(s, c);
    return;
  }
  memcpy(c, pt__cs_at(&s->cs, s->best), (size_t)s->n_ops * sizeof *c);
  int m;
  if (normal) { /* mostly one or two ops, occasionally more */
    double sigma = s->n_tunable > 8 ? s->n_tunable / 8.0 : 1.0;
    m = 1 + (int)fabs(rng_normal(&s->rng) * sigma);
  } else {
    m = 1 + (int)pt_rng_below(&s->rng, (uint64_t)s->n_tunable);
  }
  mutate(s, c, m);
}

/* Outward from passing configs (or the baseline): one or two more ops approximated. */
static void grow(pt_search *s, uint16_t *c) {
  int64_t p = pick_parent(s);
  if (p < 0)
    memset(c, 0, (size_t)s->n_ops * sizeof *c);
  else
    memcpy(c, pt__cs_at(&s->cs, p), (size_t)s->n_ops * sizeof *c);
  mutate(s, c, 1 + (pt_rng_uniform(&s->rng) < 0.25));
}

/* Discrete differential evolution: a trial mixes the target with a donor built from a + (b != c). */
static void diff_evolution(pt_search *s, uint16_t *c) {
  if (s->de_n < 4) {
    random_config(s, c);
    return;
  }
  int t = s->de_next++ % s->de_n;
  int a, b, d;
  do a = (int)pt_rng_below(&s->rng, (uint64_t)s->de_n); while (a == t);
  do b = (int)pt_rng_below(&s->rng, (uint64_t)s->de_n); while (b == t || b == a);
  do d = (int)pt_rng_below(&s->rng, (uint64_t)s->de_n); while (d == t || d == a || d == b);
  const uint16_t *xt = pt__cs_at(&s->cs, s->de_pop[t]), *xa = pt__cs_at(&s->cs, s->de_pop[a]),
                 *xb = pt__cs_at(&s->cs, s->de_pop[b]), *xd = pt__cs_at(&s->cs, s->de_pop[d]);
  int forced = s->n_tunable ? s->tunable[pt_rng_below(&s->rng, (uint64_t)s->n_tunable)] : 0;
  for (int i = 0; i < s->n_ops; i++) {
    uint16_t donor = xa[i];
    if (xb[i] != xd[i] && pt_rng_uniform(&s->rng) < 0.5) donor = pt_rng_uniform(&s->rng) < 0.5 ? xb[i] : xd[i];
    c[i] = (i == forced || pt_rng_uniform(&s->rng) < 0.5) ? donor : xt[i];
  }
}

/* Model-guided: from the baseline, add the (op, knob) with the best cost saved per QoS lost (with
 * noise) while the summed predicted loss stays inside a random share of the QoS budget. */
static void guided(pt_search *s, uint16_t *c) {
  memset(c, 0, (size_t)s->n_ops * sizeof *c);
  if (!s->cost || s->baseline_idx < 0 || !s->n_tunable) {
    grow(s, c);
    return;
  }
  double budget = s->cs.qos[s->baseline_idx] - s->threshold;
  if (!(budget > 0) || isinf(budget)) budget = 1.0;
  budget *= 0.25 + 1.25 * pt_rng_uniform(&s->rng);
  double known = 0;
  int nk = 0;
  for (int e = 0; e < s->n_entries; e++)
    if (!isnan(s->loss[e]) && s->loss[e] > 0) known += s->loss[e], nk++;
  double unknown_loss = nk ? known / nk : budget / 4; /* optimistic-ish: try what was never measured */
  /* one pass over the tunable ops in random order: each takes its best-scoring knob that still fits */
  double used = 0;
  int *ops = s->tunable;
  for (int k = 0; k < s->n_tunable; k++) {
    int j = k + (int)pt_rng_below(&s->rng, (uint64_t)(s->n_tunable - k));
    int t = ops[k];
    ops[k] = ops[j];
    ops[j] = t;
    int op = ops[k], best_p = 0;
    const double *co = s->cost + s->entry_off[op];
    double best_score = 0, best_l = 0;
    for (int p = 1; p < s->n_knobs[op]; p++) {
      double save = co[0] - co[p];
      double l = s->loss[s->entry_off[op] + p];
      if (isnan(l)) l = unknown_loss;
      if (l < 0) l = 0;
      if (!(save > 0) || used + l > budget) continue;
      double score = save / (l + 1e-3 * budget) * (0.3 + 1.4 * pt_rng_uniform(&s->rng)); /* noise: diverse configs */
      if (score > best_score) best_score = score, best_p = p, best_l = l;
    }
    c[op] = (uint16_t)best_p;
    used += best_l;
  }
}

static void propose(pt_search *s, int t, uint16_t *c) {
  switch (t) {
  case T_RANDOM: random_config(s, c); break;
  case T_GREEDY_UNIFORM: greedy(s, c, 0); break;
  case T_GREEDY_NORMAL: greedy(s, c, 1); break;
  case T_DE: diff_evolution(s, c); break;
  case T_GROW: grow(s, c); break;
  case T_GUIDED: guided(s, c); break;
  default: memset(c, 0, (size_t)s->n_ops * sizeof *c); break;
  }
}

static double bandit_score(const pt_search *s, int t) {
  const tech_state *ts = &s->tech[t];
  int64_t uses = ts->hist_n + ts->pending;
  if (uses == 0) return INFINITY;
  double auc = ts->hist_n ? ts->hist_wsum / (ts->hist_n * (ts->hist_n + 1) / 2.0) : 0.0;
  double total = 1; /* every use so far, told or still pending, so a batch spreads over techniques */
  for (int k = T_RANDOM; k < T__COUNT; k++) total += s->tech[k].hist_n + s->tech[k].pending;
  return auc + BANDIT_C * sqrt(2.0 * log(total) / (double)uses);
}

static int pick_technique(pt_search *s) {
  int best = T_RANDOM;
  double bs = -1;
  for (int t = T_RANDOM; t < T__COUNT; t++) {
    double sc = bandit_score(s, t);
    if (sc > bs) bs = sc, best = t;
  }
  return best;
}

/* The next unseen config in mixed-radix order from a random start; for small spaces only. */
static int enumerate_unseen(pt_search *s, uint16_t *c) {
  if (s->space > 4e6) return 0;
  random_config(s, c);
  for (double k = 0; k < s->space; k++) {
    if (pt__cs_find(&s->cs, c) < 0) return 1;
    for (int i = 0; i < s->n_ops; i++) { /* increment */
      if (++c[i] < s->n_knobs[i]) break;
      c[i] = 0;
    }
  }
  return 0;
}

int pt_search_ask(pt_search *s, int max, uint16_t *configs) {
  int got = 0;
  for (int k = 0; k < max; k++) {
    if ((double)s->cs.n >= s->space) break;
    uint16_t *c = configs + (int64_t)got * s->n_ops;
    int t = s->cs.n == 0 ? T_BASELINE : pick_technique(s);
    int ok = 0;
    for (int r = 0; r < RETRIES && !ok; r++) {
      propose(s, t, c);
      ok = pt__cs_find(&s->cs, c) < 0;
    }
    for (int r = 0; r < 2 * RETRIES && !ok; r++) { /* the technique is stuck: fall back to random */
      random_config(s, c);
      ok = pt__cs_find(&s->cs, c) < 0;
    }
    if (!ok) ok = enumerate_unseen(s, c);
    if (!ok) break;
    if (pt__cs_add(&s->cs, c, t) < 0) {
      pt__error(PT_ENOMEM, "search: out of memory for %lld configs", (long long)s->cs.n + 1);
      return -1;
    }
    s->tech[t].pending++;
    s->tech[t].proposed++;
    got++;
  }
  return got;
}

static void add_elite(pt_search *s, int64_t i) {
  int pos = s->n_elite;
  while (pos > 0 && better(s, i, s->elite[pos - 1])) pos--;
  if (pos >= ELITES) return;
  int n = s->n_elite < ELITES ? s->n_elite + 1 : ELITES;
  memmove(s->elite + pos + 1, s->elite + pos, (size_t)(n - 1 - pos) * sizeof *s->elite);
  s->elite[pos] = i;
  s->n_elite = n;
}

static pt_status push_pass(pt_search *s, int64_t i) {
  if (s->n_pass == s->cap_pass) {
    int64_t cap = s->cap_pass ? 2 * s->cap_pass : 256;
    int64_t *p = pt__realloc(s->pass, (size_t)cap * sizeof *p);
    if (!p) return pt__error(PT_ENOMEM, "search: out of memory for %lld passing configs", (long long)cap);
    s->pass = p;
    s->cap_pass = cap;
  }
  s->pass[s->n_pass++] = i;
  return PT_OK;
}

static void credit(pt_search *s, int t, int improved) {
  tech_state *ts = &s->tech[t];
  if (ts->pending) ts->pending--;
  if (ts->hist_n == BANDIT_WINDOW) { /* the oldest leaves; every other outcome's rank drops by one */
    ts->hist_wsum -= ts->hist_sum;
    ts->hist_sum -= ts->hist[ts->hist_at];
    ts->hist_n--;
  }
  ts->hist[ts->hist_at] = (uint8_t)improved;
  ts->hist_at = (ts->hist_at + 1) % BANDIT_WINDOW;
  ts->hist_n++;
  ts->hist_sum += improved;
  ts->hist_wsum += (double)improved * ts->hist_n;
  ts->improved += improved;
  s->total_uses++;
}

/* Learns single-op QoS losses relative to the baseline (for the model-guided technique). */
static void learn_loss(pt_search *s, int64_t i) {
  const uint16_t *c = pt__cs_at(&s->cs, i);
  int changed = -1;
  for (int op = 0; op < s->n_ops; op++)
    if (c[op]) {
      if (changed >= 0) return;
      changed = op;
    }
  if (changed < 0 || s->baseline_idx < 0) return;
  double *l = &s->loss[s->entry_off[changed] + c[changed]];
  if (isnan(*l)) *l = s->cs.qos[s->baseline_idx] - s->cs.qos[i];
}

pt_status pt_search_tell(pt_search *s, int n, const uint16_t *configs, const double *qos, const double *cost) {
  for (int k = 0; k < n; k++) {
    const uint16_t *c = configs + (int64_t)k * s->n_ops;
    for (int op = 0; op < s->n_ops; op++)
      if (c[op] >= s->n_knobs[op])
        return pt__error(PT_EINVAL, "search: op %d has knob position %u of %d", op, c[op], s->n_knobs[op]);
    int64_t i = pt__cs_find(&s->cs, c);
    if (i < 0 && (i = pt__cs_add(&s->cs, c, T_TOLD)) < 0)
      return pt__error(PT_ENOMEM, "search: out of memory for %lld configs", (long long)s->cs.n + 1);
    else if (s->cs.told[i])
      return pt__error(PT_EINVAL, "search: a config was told twice");
    s->cs.told[i] = 1;
    s->cs.qos[i] = qos[k];
    s->cs.cost[i] = cost[k];
    int all_zero = 1;
    for (int op = 0; op < s->n_ops && all_zero; op++) all_zero = c[op] == 0;
    if (all_zero) {
      s->baseline_idx = i;
      for (int64_t j = 0; j < s->cs.n; j++)
        if (s->cs.told[j]) learn_loss(s, j);
    } else {
      learn_loss(s, i);
    }
    int improved = s->best < 0 || better(s, i, s->best);
    if (improved) s->best = i;
    if (s->cs.tech[i] != T_TOLD) credit(s, s->cs.tech[i], improved && s->cs.n > 1);
    if (passes(s, qos[k])) {
      PT__TRY(push_pass(s, i));
      add_elite(s, i);
    }
    /* differential evolution: fill the population, then a trial replaces the member it beats */
    if (s->de_n < DE_POP) {
      s->de_pop[s->de_n++] = i;
    } else if (s->cs.tech[i] == T_DE) {
      int t = (int)pt_rng_below(&s->rng, DE_POP);
      if (better(s, i, s->de_pop[t])) s->de_pop[t] = i;
    }
  }
  return PT_OK;
}
