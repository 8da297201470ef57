/* The exact-prefix cache: pt_exec_run_many shares the ops before a config's first approximated op
 * between the configs of one call; this keeps that state across calls, so that a tuning run
 * computes each batch's exact prefix once instead of once per batch of configs. An entry holds
 * copies of the activations live before node `depth` of the exact network on one batch of images
 * (the pool's own buffers are reused by the next run). The state of the exact network never
 * changes for an executor (weights are fixed; PromiseSim and binary16 touch approximated ops only),
 * so entries never go stale. When full, deeper entries (more work saved) push out shallower ones;
 * one that finds no room is not kept, so cycling over more batches than fit does not thrash. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/hash.h"
#include "graph/executor.h"

static size_t input_bytes(const pt_exec *ex, int n) {
  return (size_t)n * (size_t)pt__node_out_numel(ex->g, -1) * sizeof(float);
}

static uint64_t key_hash(const pt_exec *ex, const float *input, int n, int64_t first_image) {
  uint64_t h = pt__hash_u64(pt__hash_u64(PT__HASH_INIT, (uint64_t)n), (uint64_t)first_image);
  return pt__hash_bytes(h, input, input_bytes(ex, n));
}

int pt__pfx_find_key(pt_exec *ex, const float *input, int n, int64_t first_image) {
  const pt__pfx *c = &ex->pfx;
  if (!c->n_key) return -1;
  uint64_t h = key_hash(ex, input, n, first_image);
  for (int k = 0; k < c->n_key; k++)
    if (c->key[k].input && c->key[k].hash == h && c->key[k].n == n && c->key[k].first_image == first_image &&
        !memcmp(c->key[k].input, input, input_bytes(ex, n)))
      return k;
  return -1;
}

int pt__pfx_at(const pt_exec *ex, int key, int depth) {
  for (int i = 0; key >= 0 && i < ex->pfx.n_e; i++)
    if (ex->pfx.e[i].key == key && ex->pfx.e[i].depth == depth) return i;
  return -1;
}

int pt__pfx_deepest(const pt_exec *ex, int key, int max_depth) {
  int best = -1;
  for (int i = 0; key >= 0 && i < ex->pfx.n_e; i++) {
    const pt__pfx_entry *e = &ex->pfx.e[i];
    if (e->key == key && e->depth <= max_depth && (best < 0 || e->depth > ex->pfx.e[best].depth)) best = i;
  }
  return best;
}

/* ---- entries ---- */

static void entry_release(pt_exec *ex, pt__pfx_entry *e) {
  for (int j = 0; e->data && j < e->n_live; j++)
    if (e->data[j]) pt__ex_if(ex)->release(ex->be->ctx, e->data[j]);
  free(e->data), free(e->bytes), free(e->uses), free(e->live_of);
}

/* Frees batch k's input copy once no entry refers to it (the slot is reused by the next new batch). */
static void key_release_unused(pt_exec *ex, int k) {
  pt__pfx_key *key = &ex->pfx.key[k];
  if (key->refs > 0 || !key->input) return;
  ex->pfx.used -= input_bytes(ex, key->n);
  free(key->input);
  key->input = NULL;
}

static void key_drop(pt_exec *ex, int k) {
  ex->pfx.key[k].refs--;
  key_release_unused(ex, k);
}

static void entry_evict(pt_exec *ex, int i) {
  pt__pfx *c = &ex->pfx;
  pt__pfx_entry *e = &c->e[i];
  c->used -= e->total;
  key_drop(ex, e->key);
  entry_release(ex, e);
  c->e[i] = c->e[--c->n_e];
  c->st.evicted++;
}

/* Frees room for `need` more bytes by evicting unpinned entries shallower than depth, shallowest
 * first. Returns whether it fits. */
static int make_room(pt_exec *ex, size_t need, int depth) {
  pt__pfx *c = &ex->pfx;
  while (c->used + need > c->max) {
    int v = -1;
    for (int i = 0; i < c->n_e; i++)
      if (!c->e[i].pinned && c->e[i].depth < depth && (v < 0 || c->e[i].depth < c->e[v].depth)) v = i;
    if (v < 0) return 0;
    entry_evict(ex, v);
  }
  return 1;
}

/* The batch's key (made if new; -1 when there is no memory for it). */
static int key_get(pt_exec *ex, const float *input, int n, int64_t first_image) {
  pt__pfx *c = &ex->pfx;
  int k = pt__pfx_find_key(ex, input, n, first_image);
  if (k >= 0) return k;
  for (k = 0; k < c->n_key && c->key[k].input; k++) {}
  if (k == c->cap_key) {
    int cap = c->cap_key ? 2 * c->cap_key : 16;
    pt__pfx_key *nk = pt__realloc(c->key, (size_t)cap * sizeof *nk);
    if (!nk) return -1;
    c->key = nk;
    c->cap_key = cap;
  }
  float *copy = pt__malloc(input_bytes(ex, n));
  if (!copy) return -1;
  memcpy(copy, input, input_bytes(ex, n));
  c->key[k] = (pt__pfx_key){.hash = key_hash(ex, input, n, first_image), .n = n, .first_image = first_image,
                            .input = copy, .refs = 0};
  if (k == c->n_key) c->n_key++;
  c->used += input_bytes(ex, n);
  return k;
}

/* The live pool slots before node depth: which they are and the bytes of each that matter (the
 * size of the node output or input they hold; pool buffers may be larger). */
static int live_slots(const pt_exec *ex, int depth, int n, int *slot, size_t *bytes) {
  int n_live = 0;
  for (int i = 0; i < ex->n_pool; i++)
    if (!ex->pool[i].free && ex->pool[i].uses > 0) slot[n_live++] = i;
  for (int j = 0; j < n_live; j++) {
    bytes[j] = 0;
    if (slot[j] == ex->in_slot) bytes[j] = input_bytes(ex, n);
    for (int d = 0; d < depth; d++)
      if (ex->buf_of[d] == slot[j]) bytes[j] = (size_t)n * (size_t)pt__node_out_numel(ex->g, d) * sizeof(float);
  }
  return n_live;
}

/* Copies the live slots into entry e (queued on the current lane after their writers). */
static pt_status entry_fill(pt_exec *ex, pt__pfx_entry *e, const int *slot) {
  const pt_backend_iface *f = pt__ex_if(ex);
  e->in_live = -1;
  for (int d = 0; d < e->depth; d++) e->live_of[d] = -1;
  for (int j = 0; j < e->n_live; j++) {
    PT__TRY(f->alloc(ex->be->ctx, e->bytes[j], &e->data[j]));
    PT__TRY(pt__lane_order(ex, slot[j], 0));
    PT__TRY(f->copy(ex->be->ctx, e->data[j], ex->pool[slot[j]].ptr, e->bytes[j]));
    int64_t m;
    PT__TRY(pt__lane_mark(ex, &m));
    pt__lane_touch(ex, slot[j], 0, m);
    e->uses[j] = ex->pool[slot[j]].uses;
    if (slot[j] == ex->in_slot) e->in_live = j;
    for (int d = 0; d < e->depth; d++)
      if (ex->buf_of[d] == slot[j]) e->live_of[d] = j;
  }
  return PT_OK;
}

pt_status pt__pfx_store(pt_exec *ex, const float *input, int n, int64_t first_image, int depth) {
  pt__pfx *c = &ex->pfx;
  int k = pt__pfx_find_key(ex, input, n, first_image);
  for (int i = 0; k >= 0 && i < c->n_e; i++)
    if (c->e[i].key == k && c->e[i].depth == depth) return PT_OK;
  int *slot = pt__malloc((size_t)(ex->n_pool + 1) * sizeof *slot);
  size_t *bytes = pt__malloc((size_t)(ex->n_pool + 1) * sizeof *bytes);
  if (!slot || !bytes) {
    free(slot), free(bytes);
    return PT_OK;
  }
  const int n_live = live_slots(ex, depth, n, slot, bytes);
  size_t need = k < 0 ? input_bytes(ex, n) : 0;
  for (int j = 0; j < n_live; j++) need += bytes[j];
  if (c->n_e == c->cap_e) {
    int cap = c->cap_e ? 2 * c->cap_e : 16;
    pt__pfx_entry *ne = pt__realloc(c->e, (size_t)cap * sizeof *ne);
    if (ne) c->e = ne, c->cap_e = cap;
  }
  pt_status s = PT_OK;
  if (k >= 0) c->key[k].refs++; /* evicting this batch's shallower entries keeps its input */
  int room = c->n_e < c->cap_e && make_room(ex, need, depth);
  if (k >= 0) {
    c->key[k].refs--;
    if (!room) key_release_unused(ex, k); /* its entries may all be gone */
  }
  if (room && (k = key_get(ex, input, n, first_image)) >= 0) {
    pt__pfx_entry *e = &c->e[c->n_e];
    *e = (pt__pfx_entry){.key = k, .depth = depth, .n_live = n_live};
    e->data = pt__calloc((size_t)n_live + 1, sizeof *e->data);
    e->bytes = pt__malloc(((size_t)n_live + 1) * sizeof *e->bytes);
    e->uses = pt__malloc(((size_t)n_live + 1) * sizeof *e->uses);
    e->live_of = pt__malloc((size_t)depth * sizeof *e->live_of + 1);
    if (e->data && e->bytes && e->uses && e->live_of) {
      memcpy(e->bytes, bytes, (size_t)n_live * sizeof *bytes);
      for (int j = 0; j < n_live; j++) e->total += bytes[j];
      s = entry_fill(ex, e, slot);
    } else {
      s = PT_ENOMEM;
    }
    c->key[k].refs++;
    c->n_e++;
    c->used += e->total;
    c->st.stored++;
    if (s != PT_OK) { /* a copy failed: the entry goes; without memory for it the run goes on */
      entry_evict(ex, c->n_e - 1);
      c->st.stored--, c->st.evicted--;
      if (s == PT_ENOMEM) s = PT_OK;
    }
  }
  free(slot), free(bytes);
  return s;
}

/* ---- resuming ---- */

pt_status pt__pfx_restore(pt_exec *ex, int i) {
  pt__pfx_entry *e = &ex->pfx.e[i];
  const pt_backend_iface *f = pt__ex_if(ex);
  int *slot = pt__malloc(((size_t)e->n_live + 1) * sizeof *slot);
  if (!slot) return pt__error(PT_ENOMEM, "executor: out of memory resuming a kept prefix");
  pt__pool_reset(ex);
  pt_status s = PT_OK;
  for (int j = 0; s == PT_OK && j < e->n_live; j++) {
    if ((slot[j] = pt__pool_get(ex, e->bytes[j], e->uses[j])) < 0) s = PT_ENOMEM;
    if (s == PT_OK) s = pt__lane_order(ex, slot[j], 1);
    if (s == PT_OK) s = f->copy(ex->be->ctx, ex->pool[slot[j]].ptr, e->data[j], e->bytes[j]);
    int64_t m;
    if (s == PT_OK) s = pt__lane_mark(ex, &m);
    if (s == PT_OK) pt__lane_touch(ex, slot[j], 1, m);
  }
  if (s == PT_OK) {
    ex->in_slot = e->in_live >= 0 ? slot[e->in_live] : -1;
    for (int d = 0; d < e->depth; d++) ex->buf_of[d] = e->live_of[d] >= 0 ? slot[e->live_of[d]] : -1;
    ex->pfx.st.restores++;
  }
  free(slot);
  return s;
}

void pt__pfx_unpin_all(pt_exec *ex) {
  for (int i = 0; i < ex->pfx.n_e; i++) ex->pfx.e[i].pinned = 0;
}

void pt__pfx_free_all(pt_exec *ex) {
  pt__pfx *c = &ex->pfx;
  while (c->n_e > 0) entry_evict(ex, c->n_e - 1);
  for (int k = 0; k < c->n_key; k++) free(c->key[k].input); /* (none is left; for safety) */
  free(c->e), free(c->key);
  c->e = NULL, c->key = NULL;
  c->n_e = c->cap_e = c->n_key = c->cap_key = 0;
  c->used = 0;
}

/* ---- public ---- */

void pt_exec_set_prefix_cache(pt_exec *ex, size_t max_bytes) {
  if (!max_bytes) {
    pt_exec_prefix_stats keep = ex->pfx.st;
    pt__pfx_free_all(ex);
    ex->pfx.st = keep;
  }
  ex->pfx.max = max_bytes;
  while (ex->pfx.used > max_bytes && ex->pfx.n_e > 0) entry_evict(ex, ex->pfx.n_e - 1);
}

void pt_exec_prefix_cache_stats(const pt_exec *ex, pt_exec_prefix_stats *st) {
  *st = ex->pfx.st;
  st->entries = ex->pfx.n_e;
  st->bytes = ex->pfx.used;
}
