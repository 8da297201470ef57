/* A set of configs (fixed-length uint16_t vectors) with their results: an append-only arena plus an
 * open-addressing hash index, so "seen before?" is O(1) however many configs a search evaluates. */
#ifndef PT_SEARCH_CONFIGSET_H
#define PT_SEARCH_CONFIGSET_H

#include <stdint.h>

#include "predtuner/status.h"

typedef struct pt__configset {
  int n_ops;
  int64_t n, cap;       /* configs stored */
  uint16_t *cfg;        /* (cap, n_ops) */
  double *qos, *cost;   /* (cap); NaN until told */
  uint8_t *told;        /* (cap) */
  uint8_t *tech;        /* (cap) technique that proposed it */
  int64_t *slots;       /* hash index: config index + 1, 0 = empty; nslots is a power of two */
  int64_t nslots;
} pt__configset;

pt_status pt__cs_init(pt__configset *cs, int n_ops);
void pt__cs_free(pt__configset *cs);
/* Index of c, or -1. */
int64_t pt__cs_find(const pt__configset *cs, const uint16_t *c);
/* Adds c (which must not be present) and returns its index, or -1 when out of memory. */
int64_t pt__cs_add(pt__configset *cs, const uint16_t *c, int tech);
static inline const uint16_t *pt__cs_at(const pt__configset *cs, int64_t i) { return cs->cfg + i * cs->n_ops; }

#endif
