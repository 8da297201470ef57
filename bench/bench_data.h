/* Random data sets for the benchmarks: timing depends on the shapes, not on the values. */
#ifndef PT_BENCH_DATA_H
#define PT_BENCH_DATA_H

#include <stdint.h>
#include <stdio.h>

#include "core/rng.h"

/* <dir>/<split>_input.bin (n, c, h, w floats in [-1, 1]) and <split>_labels.bin (n int32 < classes). */
static inline void pt_bench_random_set(const char *dir, const char *split, int n, int c, int h, int w, int classes) {
  char p[512];
  pt_rng r;
  pt_rng_seed(&r, 11);
  snprintf(p, sizeof p, "%s/%s_input.bin", dir, split);
  FILE *f = fopen(p, "wb");
  for (long i = 0; f && i < (long)n * c * h * w; i++) {
    float v = pt_rng_range(&r, -1, 1);
    fwrite(&v, 4, 1, f);
  }
  if (f) fclose(f);
  snprintf(p, sizeof p, "%s/%s_labels.bin", dir, split);
  f = fopen(p, "wb");
  for (int i = 0; f && i < n; i++) {
    int32_t l = (int32_t)pt_rng_below(&r, (uint64_t)classes);
    fwrite(&l, 4, 1, f);
  }
  if (f) fclose(f);
}

#endif
