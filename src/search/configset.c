/* The search's set of configs seen: an open-addressing hash table over the knob positions. */
#include "search/configset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"

static uint64_t hash_cfg(const uint16_t *c, int n) {
  uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the positions, then a final mix */
  for (int i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  return h ^ (h >> 33);
}

pt_status pt__cs_init(pt__configset *cs, int n_ops) {
  memset(cs, 0, sizeof *cs);
  cs->n_ops = n_ops;
  cs->nslots = 1024;
  cs->slots = pt__calloc((size_t)cs->nslots, sizeof *cs->slots);
  return cs->slots ? PT_OK : pt__error(PT_ENOMEM, "search: out of memory for the config table");
}

void pt__cs_free(pt__configset *cs) {
  free(cs->cfg);
  free(cs->qos);
  free(cs->cost);
  free(cs->told);
  free(cs->tech);
  free(cs->slots);
  memset(cs, 0, sizeof *cs);
}

int64_t pt__cs_find(const pt__configset *cs, const uint16_t *c) {
  size_t bytes = (size_t)cs->n_ops * sizeof *c;
  for (uint64_t h = hash_cfg(c, cs->n_ops);; h++) {
    int64_t v = cs->slots[h & (uint64_t)(cs->nslots - 1)];
    if (!v) return -1;
    if (!memcmp(pt__cs_at(cs, v - 1), c, bytes)) return v - 1;
  }
}

static void insert_slot(int64_t *slots, int64_t nslots, uint64_t h, int64_t v) {
  while (slots[h & (uint64_t)(nslots - 1)]) h++;
  slots[h & (uint64_t)(nslots - 1)] = v;
}

#define GROW(ptr, cap)                                                \
  do {                                                                \
    void *p_ = pt__realloc((ptr), (size_t)(cap) * sizeof *(ptr));         \
    if (!p_) return -1;                                               \
    (ptr) = p_;                                                       \
  } while (0)

int64_t pt__cs_add(pt__configset *cs, const uint16_t *c, int tech) {
  if (cs->n == cs->cap) {
    int64_t cap = cs->cap ? cs->cap * 2 : 256;
    void *p = pt__realloc(cs->cfg, (size_t)cap * (size_t)cs->n_ops * sizeof *cs->cfg);
    if (!p && cs->n_ops) return -1;
    cs->cfg = p;
    GROW(cs->qos, cap);
    GROW(cs->cost, cap);
    GROW(cs->told, cap);
    GROW(cs->tech, cap);
    cs->cap = cap;
  }
  if (2 * (cs->n + 1) > cs->nslots) { /* keep the load under 1/2 */
    int64_t ns = cs->nslots * 2;
    int64_t *slots = pt__calloc((size_t)ns, sizeof *slots);
    if (!slots) return -1;
    for (int64_t i = 0; i < cs->n; i++) insert_slot(slots, ns, hash_cfg(pt__cs_at(cs, i), cs->n_ops), i + 1);
    free(cs->slots);
    cs->slots = slots;
    cs->nslots = ns;
  }
  int64_t i = cs->n++;
  if (cs->n_ops) memcpy(cs->cfg + i * cs->n_ops, c, (size_t)cs->n_ops * sizeof *c);
  cs->qos[i] = cs->cost[i] = NAN;
  cs->told[i] = 0;
  cs->tech[i] = (uint8_t)tech;
  insert_slot(cs->slots, cs->nslots, hash_cfg(c, cs->n_ops), i + 1);
  return i;
}
