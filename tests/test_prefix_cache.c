/* The exact-prefix cache of pt_exec_run_many: outputs bit for bit those of an executor without it,
 * the exact network's work saved exactly as counted, batches told apart by content, the memory
 * bound kept, timed calls untouched, and the same on several interleaved lanes. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph/graph_internal.h"
#include "lanes_backend.h"
#include "naive.h"
#include "predtuner/predtuner.h"

enum { BATCHES = 3 };

static pt_backend *be;
static void setup(void) { cr_assert_eq(pt_backend_create("cpu", 1, &be), PT_OK); }
static void teardown(void) { pt_backend_free(be); }

typedef struct net {
  pt_graph *g;
  int no, n;
  int64_t nin, nout;
  float *x; /* (BATCHES, n, C, H, W) */
} net;

static net net_make(const char *name, int n) {
  net t = {.n = n};
  cr_assert_eq(pt_zoo_build(name, &t.g), PT_OK);
  pt_graph_init_random(t.g, 5);
  int c, h, w;
  pt_graph_input_shape(t.g, &c, &h, &w);
  t.no = pt_graph_num_ops(t.g);
  t.nin = (int64_t)n * c * h * w;
  t.nout = (int64_t)n * pt_graph_num_classes(t.g);
  t.x = malloc((size_t)(BATCHES * t.nin) * sizeof *t.x);
  pt_rng r;
  pt_rng_seed(&r, 21);
  fill_uniform(&r, t.x, BATCHES * t.nin, -1, 1);
  return t;
}

static void net_free(net *t) {
  free(t->x);
  pt_graph_free(t->g);
}

static pt_exec *exec_make(const net *t, pt_backend *b, size_t cache) {
  pt_exec *ex;
  cr_assert_eq(pt_exec_create(t->g, b, &ex), PT_OK);
  pt_promise_ranges *rg = calloc((size_t)t->no, sizeof *rg);
  for (int op = 0; op < t->no; op++) rg[op] = (pt_promise_ranges){{-3, 3}, {-1, 1}, {-1, 1}, {-6, 6}, 1};
  cr_assert_eq(pt_exec_set_promise(ex, rg, 77), PT_OK);
  free(rg);
  pt_exec_set_prefix_cache(ex, cache);
  return ex;
}

/* n_cfg configs whose first q ops are exact, q spread over every depth (all exact included), the
 * rest random settings; one in five a copy of the previous one. */
static pt_op_exec *prefix_configs(const net *t, int n_cfg, uint64_t seed) {
  pt_op_exec *ops = calloc((size_t)n_cfg * t->no, sizeof *ops);
  static const pt_op_exec zero;
  pt_rng r;
  pt_rng_seed(&r, seed);
  for (int k = 0; k < n_cfg; k++) {
    pt_op_exec *c = ops + (int64_t)k * t->no;
    if (k % 5 == 4) {
      memcpy(c, c - t->no, (size_t)t->no * sizeof *c);
      continue;
    }
    int q = (int)pt_rng_below(&r, (uint64_t)t->no + 1);
    for (int op = q; op < t->no; op++) {
      c[op] = knob_setting_of(t->g, op, (int)pt_rng_below(&r, 6));
      if (op == q && !memcmp(&c[op], &zero, sizeof zero)) c[op] = knob_setting_of(t->g, op, 1);
    }
  }
  return ops;
}

/* One call on batch b under both executors: the outputs must agree bit for bit. */
static void call_both(const net *t, pt_exec *plain, pt_exec *cached, int b, int64_t first, int n_cfg,
                      const pt_op_exec *ops, float *y0, float *y1) {
  const float *x = t->x + (int64_t)b * t->nin;
  cr_assert_eq(pt_exec_run_many(plain, x, t->n, first, n_cfg, ops, y0, NULL), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_exec_run_many(cached, x, t->n, first, n_cfg, ops, y1, NULL), PT_OK, "%s", pt_last_error());
  for (int k = 0; k < n_cfg; k++)
    cr_assert(!memcmp(y0 + k * t->nout, y1 + k * t->nout, (size_t)t->nout * sizeof *y0),
              "batch %d, config %d: the cached executor's output differs", b, k);
}

/* Rounds of fresh configs over every batch: the cached executor runs exactly nodes_saved fewer
 * nodes, saves work from the second round on, and a call repeated as it was saves the exact
 * network up to the deepest state it kept. */
static void check_saving(const char *name, int n, int n_cfg) {
  net t = net_make(name, n);
  pt_exec *plain = exec_make(&t, be, 0), *cached = exec_make(&t, be, (size_t)1 << 30);
  float *y0 = malloc((size_t)n_cfg * t.nout * sizeof *y0), *y1 = malloc((size_t)n_cfg * t.nout * sizeof *y1);
  for (int round = 0; round < 3; round++) {
    pt_op_exec *ops = prefix_configs(&t, n_cfg, 100 + (uint64_t)round);
    for (int b = 0; b < BATCHES; b++) {
      pt_exec_prefix_stats s0, s1;
      pt_exec_prefix_cache_stats(cached, &s0);
      int64_t p0 = pt_exec_nodes_run(plain), c0 = pt_exec_nodes_run(cached);
      call_both(&t, plain, cached, b, 10 * b, n_cfg, ops, y0, y1);
      pt_exec_prefix_cache_stats(cached, &s1);
      int64_t saved = (pt_exec_nodes_run(plain) - p0) - (pt_exec_nodes_run(cached) - c0);
      cr_assert_eq(saved, s1.nodes_saved - s0.nodes_saved, "%s round %d batch %d: %lld nodes saved, %lld counted",
                   name, round, b, (long long)saved, (long long)(s1.nodes_saved - s0.nodes_saved));
      if (round == 0) cr_assert_eq(saved, 0, "nothing is kept before the first call on a batch");
      else cr_assert(saved > 0 && s1.restores > s0.restores, "%s round %d batch %d: nothing reused", name, round, b);
      cr_assert(s1.bytes <= (size_t)1 << 30 && s1.entries > 0);
    }
    free(ops);
  }
  /* the last call once more: every config resumes where it leaves the exact network */
  pt_op_exec *ops = prefix_configs(&t, n_cfg, 102);
  int deepest = 0, first_op = t.g->ops[0];
  for (int k = 0; k < n_cfg; k++) {
    int q = 0;
    while (q < t.no && !memcmp(&ops[(int64_t)k * t.no + q], &(pt_op_exec){0}, sizeof *ops)) q++;
    int d = q < t.no ? t.g->ops[q] : t.g->n_nodes;
    if (d < t.g->n_nodes && d > first_op && d > deepest) deepest = d;
  }
  int64_t p0 = pt_exec_nodes_run(plain), c0 = pt_exec_nodes_run(cached);
  call_both(&t, plain, cached, BATCHES - 1, 10 * (BATCHES - 1), n_cfg, ops, y0, y1);
  int64_t saved = (pt_exec_nodes_run(plain) - p0) - (pt_exec_nodes_run(cached) - c0);
  cr_assert(deepest > 0, "the configs leave the exact network only at its first op");
  cr_assert_eq(saved, deepest, "%s: a repeated call saved %lld nodes, expected %d", name, (long long)saved, deepest);
  free(ops), free(y0), free(y1);
  pt_exec_free(plain), pt_exec_free(cached);
  net_free(&t);
}

TestSuite(prefix_cache, .init = setup, .fini = teardown);

Test(prefix_cache, saves_exactly_what_it_counts_lenet) { check_saving("lenet_mnist", 3, 30); }
Test(prefix_cache, saves_exactly_what_it_counts_resnet18_with_skip_connections) {
  check_saving("resnet18_cifar10", 1, 12);
}

/* A batch with other images under the same first image and count is not taken for a known one. */
Test(prefix_cache, batches_are_told_apart_by_their_content) {
  net t = net_make("lenet_mnist", 3);
  pt_exec *plain = exec_make(&t, be, 0), *cached = exec_make(&t, be, (size_t)1 << 30);
  const int n_cfg = 20;
  float *y0 = malloc((size_t)n_cfg * t.nout * sizeof *y0), *y1 = malloc((size_t)n_cfg * t.nout * sizeof *y1);
  pt_op_exec *ops = prefix_configs(&t, n_cfg, 7);
  for (int b = 0; b < BATCHES; b++) call_both(&t, plain, cached, b, 0, n_cfg, ops, y0, y1);
  pt_exec_prefix_stats st;
  pt_exec_prefix_cache_stats(cached, &st);
  cr_assert_eq(st.restores, 0, "%lld resumptions across different images", (long long)st.restores);
  call_both(&t, plain, cached, 1, 0, n_cfg, ops, y0, y1);
  pt_exec_prefix_cache_stats(cached, &st);
  cr_assert(st.restores > 0, "the same images again were not recognised");
  /* turning the cache off frees everything and changes no output */
  pt_exec_set_prefix_cache(cached, 0);
  pt_exec_prefix_cache_stats(cached, &st);
  cr_assert(st.entries == 0 && st.bytes == 0, "%d entries, %zu bytes left", st.entries, st.bytes);
  call_both(&t, plain, cached, 2, 0, n_cfg, ops, y0, y1);
  free(ops), free(y0), free(y1);
  pt_exec_free(plain), pt_exec_free(cached);
  net_free(&t);
}

/* A bound that holds a few states: it is never exceeded, entries are evicted, outputs agree; one
 * too small for any state keeps nothing. */
Test(prefix_cache, keeps_its_memory_bound) {
  net t = net_make("resnet18_cifar10", 1);
  const int n_cfg = 12;
  const size_t bound = 300u << 10; /* resnet18's live set on one image is 16-64 KiB */
  pt_exec *plain = exec_make(&t, be, 0), *cached = exec_make(&t, be, bound), *tiny = exec_make(&t, be, 64);
  float *y0 = malloc((size_t)n_cfg * t.nout * sizeof *y0), *y1 = malloc((size_t)n_cfg * t.nout * sizeof *y1);
  for (int round = 0; round < 3; round++) {
    pt_op_exec *ops = prefix_configs(&t, n_cfg, 40 + (uint64_t)round);
    for (int b = 0; b < BATCHES; b++) {
      call_both(&t, plain, cached, b, b, n_cfg, ops, y0, y1);
      call_both(&t, plain, tiny, b, b, n_cfg, ops, y0, y1);
      pt_exec_prefix_stats st;
      pt_exec_prefix_cache_stats(cached, &st);
      cr_assert(st.bytes <= bound, "%zu bytes held, bound %zu", st.bytes, bound);
    }
    free(ops);
  }
  pt_exec_prefix_stats st, st_tiny;
  pt_exec_prefix_cache_stats(cached, &st);
  pt_exec_prefix_cache_stats(tiny, &st_tiny);
  cr_assert(st.stored > 0 && st.evicted > 0 && st.restores > 0, "stored %lld, evicted %lld, restores %lld",
            (long long)st.stored, (long long)st.evicted, (long long)st.restores);
  cr_assert(st_tiny.stored == 0 && st_tiny.bytes == 0 && st_tiny.restores == 0);
  free(y0), free(y1);
  pt_exec_free(plain), pt_exec_free(cached), pt_exec_free(tiny);
  net_free(&t);
}

/* Timed calls report each config's own path: they neither fill the cache nor resume from it. */
Test(prefix_cache, timed_calls_do_not_use_it) {
  net t = net_make("lenet_mnist", 3);
  const int n_cfg = 10;
  pt_exec *cached = exec_make(&t, be, (size_t)1 << 30);
  float *y = malloc((size_t)n_cfg * t.nout * sizeof *y);
  double sec[10];
  pt_op_exec *ops = prefix_configs(&t, n_cfg, 5);
  cr_assert_eq(pt_exec_run_many(cached, t.x, t.n, 0, n_cfg, ops, y, sec), PT_OK);
  pt_exec_prefix_stats st;
  pt_exec_prefix_cache_stats(cached, &st);
  cr_assert_eq(st.stored, 0);
  cr_assert_eq(pt_exec_run_many(cached, t.x, t.n, 0, n_cfg, ops, y, NULL), PT_OK);
  pt_exec_prefix_cache_stats(cached, &st);
  cr_assert(st.stored > 0);
  int64_t restores = st.restores;
  cr_assert_eq(pt_exec_run_many(cached, t.x, t.n, 0, n_cfg, ops, y, sec), PT_OK);
  pt_exec_prefix_cache_stats(cached, &st);
  cr_assert_eq(st.restores, restores, "a timed call resumed from a kept state");
  free(ops), free(y);
  pt_exec_free(cached);
  net_free(&t);
}

/* On the interleaving backend (lanes run out of order unless ordered by marks): resuming and
 * keeping states order their copies correctly. */
Test(prefix_cache, outputs_agree_on_interleaved_lanes) {
  net t = net_make("resnet18_cifar10", 1);
  const int n_cfg = 12;
  for (uint64_t seed = 1; seed <= 2; seed++) {
    pt_backend *lb;
    cr_assert_eq(lanes_backend_create(3, seed, 0, &lb), PT_OK);
    pt_exec *plain = exec_make(&t, lb, 0), *cached = exec_make(&t, lb, (size_t)1 << 30);
    float *y0 = malloc((size_t)n_cfg * t.nout * sizeof *y0), *y1 = malloc((size_t)n_cfg * t.nout * sizeof *y1);
    for (int round = 0; round < 2; round++) {
      pt_op_exec *ops = prefix_configs(&t, n_cfg, 60 + (uint64_t)round);
      for (int b = 0; b < BATCHES; b++) call_both(&t, plain, cached, b, b, n_cfg, ops, y0, y1);
      free(ops);
    }
    pt_exec_prefix_stats st;
    pt_exec_prefix_cache_stats(cached, &st);
    cr_assert(st.restores > 0);
    free(y0), free(y1);
    pt_exec_free(plain), pt_exec_free(cached);
    pt_backend_free(lb);
  }
  net_free(&t);
}

/* Bounds from a couple of states to many, batches taken in turn, fresh configs every round: states
 * of one batch are evicted while another call's groups resume from theirs (whose places in the
 * cache move), and every output still equals the executor's without the cache. */
Test(prefix_cache, evictions_during_a_call_keep_every_output) {
  net t = net_make("resnet18_cifar10", 1);
  const int n_cfg = 12;
  pt_exec *plain = exec_make(&t, be, 0);
  float *y0 = malloc((size_t)n_cfg * t.nout * sizeof *y0), *y1 = malloc((size_t)n_cfg * t.nout * sizeof *y1);
  int64_t evicted = 0;
  for (size_t bound = 40u << 10; bound <= 400u << 10; bound += 24u << 10) {
    pt_exec *cached = exec_make(&t, be, bound);
    for (int round = 0; round < 4; round++) {
      pt_op_exec *ops = prefix_configs(&t, n_cfg, 900 + bound / 1024 + (uint64_t)round);
      for (int b = 0; b < BATCHES; b++) call_both(&t, plain, cached, (b + round) % BATCHES, 0, n_cfg, ops, y0, y1);
      free(ops);
    }
    pt_exec_prefix_stats st;
    pt_exec_prefix_cache_stats(cached, &st);
    cr_assert(st.bytes <= bound, "%zu bytes held, bound %zu", st.bytes, bound);
    evicted += st.evicted;
    pt_exec_free(cached);
  }
  cr_assert(evicted > 0, "no state was evicted: the test shows nothing");
  free(y0), free(y1);
  pt_exec_free(plain);
  net_free(&t);
}
