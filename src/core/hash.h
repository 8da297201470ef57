/* A 64-bit content hash for fingerprints (docs/design.md, "Fingerprints"): FNV-1a's offset and prime
 * over 8-byte words in four lanes, with a final avalanche, so hashing the weights and data of a
 * large network stays cheap.
 * Not cryptographic: it tells apart inputs that differ, it does not resist forgery. */
#ifndef PT_CORE_HASH_H
#define PT_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define PT__HASH_INIT 0xcbf29ce484222325ull

static inline uint64_t pt__hash_bytes(uint64_t h, const void *data, size_t len) {
  const unsigned char *p = data;
  const uint64_t prime = 0x100000001b3ull;
  uint64_t l[4] = {h, h ^ 0x9e3779b97f4a7c15ull, h ^ 0xbf58476d1ce4e5b9ull, h ^ 0x94d049bb133111ebull};
  size_t i = 0;
  for (; i + 32 <= len; i += 32) /* four independent lanes: the multiplies overlap */
    for (int k = 0; k < 4; k++) {
      uint64_t w;
      memcpy(&w, p + i + 8 * k, 8);
      l[k] = (l[k] ^ w) * prime;
      l[k] ^= l[k] >> 29;
    }
  h = l[0];
  for (int k = 1; k < 4; k++) h = (h ^ l[k]) * prime;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * prime;
    h ^= h >> 29;
  }
  uint64_t w = 0;
  if (i < len) memcpy(&w, p + i, len - i);
  return (h ^ w ^ ((uint64_t)len << 56)) * prime;
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
