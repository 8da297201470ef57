/* A 64-bit content hash for fingerprints (docs/design.md, "Fingerprints"): FNV-1a's offset and prime
 * over 8-byte words with a final avalanche, so hashing the weights of a large network stays cheap.
 * Not cryptographic: it tells apart inputs that differ, it does not resist forgery. */
#ifndef PT_CORE_HASH_H
#define PT_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PT__HASH_INIT 0xcbf29ce484222325ull

static inline uint64_t pt__hash_bytes(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  uint64_t w = 0;
  if (i < len) memcpy(&w, p + i, len - i);
  h = (h ^ w ^ ((uint64_t)len << 56)) * 0x100000001b3ull;
  return h;
}

static inline uint64_t pt__hash_str(uint64_t h, const char *s) { return pt__hash_bytes(h, s, strlen(s) + 1); }
static inline uint64_t pt__hash_u64(uint64_t h, uint64_t v) { return pt__hash_bytes(h, &v, sizeof v); }
static inline uint64_t pt__hash_f64(uint64_t h, double v) { return pt__hash_bytes(h, &v, sizeof v); }

/* The final mix (splitmix64's): every input bit reaches every output bit. */
static inline uint64_t pt__hash_final(uint64_t h) {
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  return h ^ (h >> 31);
}

#endif
