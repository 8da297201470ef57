/* The executor's activation buffers and the ordering of work across backend lanes. Buffers come
 * from a pool and return to it after their last reader, so peak memory is the largest live set, not
 * the sum of all activations; the pool persists across runs. With several lanes (pt_exec_run_many on
 * a backend with streams), work on a buffer waits only for the lanes whose work on it must come
 * first, found through the marks each buffer remembers. */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/executor.h"

static void buf_forget_lanes(pt__buf *b) {
  b->wlane = -1;
  for (int l = 0; l < PT__LANES_MAX; l++) b->use[l] = -1;
}

/* A new pool slot holding `bytes` of backend memory; -1 with the error set. */
static int pool_grow(pt_exec *ex, size_t bytes) {
  if (ex->n_pool == ex->cap_pool) {
    int cap = ex->cap_pool ? 2 * ex->cap_pool : 16;
    pt__buf *np = pt__realloc(ex->pool, (size_t)cap * sizeof *np);
    if (!np) {
      pt__error(PT_ENOMEM, "executor: out of memory for the buffer pool (%d buffers)", cap);
      return -1;
    }
    ex->pool = np;
    ex->cap_pool = cap;
  }
  void *ptr;
  if (pt__ex_if(ex)->alloc(ex->be->ctx, bytes, &ptr) != PT_OK) {
    pt__error_prefix("executor: an activation buffer of %zu bytes", bytes);
    return -1;
  }
  pt__buf *b = &ex->pool[ex->n_pool];
  b->ptr = ptr;
  b->bytes = bytes;
  buf_forget_lanes(b);
  return ex->n_pool++;
}

int pt__pool_get(pt_exec *ex, size_t bytes, int uses) {
  int best = -1;
  for (int i = 0; i < ex->n_pool; i++)
    if (ex->pool[i].free && ex->pool[i].bytes >= bytes && (best < 0 || ex->pool[i].bytes < ex->pool[best].bytes))
      best = i;
  if (best < 0 && (best = pool_grow(ex, bytes)) < 0) return -1;
  ex->pool[best].free = 0;
  ex->pool[best].uses = uses;
  ex->pool[best].holds = 0;
  return best;
}

void pt__pool_read_done(pt_exec *ex, int slot) {
  if (slot >= 0 && --ex->pool[slot].uses <= 0 && !ex->pool[slot].holds) ex->pool[slot].free = 1;
}

void pt__pool_reset(pt_exec *ex) {
  for (int i = 0; i < ex->n_pool; i++) {
    ex->pool[i].free = 1;
    ex->pool[i].uses = ex->pool[i].holds = 0;
  }
}

void pt__pool_free_all(pt_exec *ex) {
  for (int i = 0; i < ex->n_pool; i++) pt__ex_if(ex)->release(ex->be->ctx, ex->pool[i].ptr);
  free(ex->pool);
  ex->pool = NULL;
  ex->n_pool = ex->cap_pool = 0;
}

/* ---- lanes ---- */

pt_status pt__lane_order(pt_exec *ex, int s, int write) {
  if (ex->n_lanes < 2 || s < 0) return PT_OK;
  const pt__buf *b = &ex->pool[s];
  const int x = ex->lane;
  for (int y = 0; y < ex->n_lanes; y++) {
    int64_t need = y == x ? -1 : write ? b->use[y] : b->wlane == y ? b->wmark : -1;
    if (need < 0 || ex->seen[x][y] >= need) continue;
    PT__TRY(pt__ex_if(ex)->lane_wait(ex->be->ctx, y, need));
    ex->seen[x][y] = need;
  }
  return PT_OK;
}

void pt__lane_touch(pt_exec *ex, int s, int write, int64_t m) {
  if (ex->n_lanes < 2 || s < 0) return;
  pt__buf *b = &ex->pool[s];
  b->use[ex->lane] = m;
  if (write) b->wlane = ex->lane, b->wmark = m;
}

pt_status pt__lane_use(pt_exec *ex, int lane) {
  if (ex->n_lanes < 2 || lane == ex->lane) return PT_OK;
  PT__TRY(pt__ex_if(ex)->use_lane(ex->be->ctx, lane));
  ex->lane = lane;
  return PT_OK;
}

pt_status pt__lane_mark(pt_exec *ex, int64_t *m) {
  *m = -1;
  return ex->n_lanes < 2 ? PT_OK : pt__ex_if(ex)->lane_mark(ex->be->ctx, m);
}

void pt__lanes_forget(pt_exec *ex) {
  for (int i = 0; i < ex->n_pool; i++) buf_forget_lanes(&ex->pool[i]);
  for (int x = 0; x < PT__LANES_MAX; x++)
    for (int y = 0; y < PT__LANES_MAX; y++) ex->seen[x][y] = -1;
}
