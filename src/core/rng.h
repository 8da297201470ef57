/* Small deterministic PRNG (splitmix64 seeding + xoshiro256**) shared by tests, random weights
 * and, later, the search. Same seed, same sequence, on every platform. */
#ifndef PT_CORE_RNG_H
#define PT_CORE_RNG_H

#include <math.h>
#include <stdint.h>

typedef struct pt_rng {
  uint64_t s[4];
} pt_rng;

static inline uint64_t pt__splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline void pt_rng_seed(pt_rng *r, uint64_t seed) {
  for (int i = 0; i < 4; i++) r->s[i] = pt__splitmix64(&seed);
}

static inline uint64_t pt_rng_next(pt_rng *r) {
  uint64_t *s = r->s;
  uint64_t x = s[1] * 5;
  uint64_t result = ((x << 7) | (x >> 57)) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = (s[3] << 45) | (s[3] >> 19);
  return result;
}

/* Uniform in [0, 1). */
static inline double pt_rng_uniform(pt_rng *r) { return (double)(pt_rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform in [lo, hi). */
static inline float pt_rng_range(pt_rng *r, float lo, float hi) {
  return lo + (hi - lo) * (float)pt_rng_uniform(r);
}

/* Uniform integer in [0, n). */
static inline uint64_t pt_rng_below(pt_rng *r, uint64_t n) { return n ? pt_rng_next(r) % n : 0; }

#endif
