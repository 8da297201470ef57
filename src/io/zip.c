/* A read-only zip reader for in-memory archives, enough for torch.save's format: stored (not
 * compressed) entries, ZIP64 sizes and offsets, CRC-32 checked on access. */
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/zip.h"

static uint16_t u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64(const uint8_t *p) { return (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32; }

uint32_t pt__crc32(const void *data, size_t len) {
  static uint32_t table[256];
  static int ready;
  if (!ready) { /* benign race: every thread computes the same table */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = 1;
  }
  uint32_t c = 0xFFFFFFFFu;
  const uint8_t *p = data;
  for (size_t i = 0; i < len; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void pt__zip_close(pt__zip *z) {
  if (!z) return;
  for (int i = 0; i < z->n; i++) free(z->e[i].name);
  free(z->e);
  free(z);
}

/* ZIP64 extended information: the fields whose 32-bit value is saturated, in this order. */
static int zip64_extra(const uint8_t *x, size_t n, uint64_t *usize, uint64_t *csize, uint64_t *off) {
  size_t i = 0;
  while (i + 4 <= n) {
    uint16_t id = u16(x + i), sz = u16(x + i + 2);
    if (i + 4 + sz > n) return -1;
    if (id == 1) {
      const uint8_t *f = x + i + 4;
      size_t k = 0;
      if (*usize == 0xFFFFFFFFu) { if (k + 8 > sz) return -1; *usize = u64(f + k), k += 8; }
      if (*csize == 0xFFFFFFFFu) { if (k + 8 > sz) return -1; *csize = u64(f + k), k += 8; }
      if (*off == 0xFFFFFFFFu) { if (k + 8 > sz) return -1; *off = u64(f + k), k += 8; }
      return 0;
    }
    i += 4 + (size_t)sz;
  }
  return 0;
}

pt_status pt__zip_open(const void *data, size_t len, const char *what, pt__zip **out) {
  *out = NULL;
  const uint8_t *b = data;
  if (len < 22) return pt__error(PT_EFORMAT, "%s: not a zip archive (too short)", what);
  /* end of central directory: the last signature within the comment's reach */
  size_t eocd = (size_t)-1, lo = len > 22 + 65535 ? len - 22 - 65535 : 0;
  for (size_t i = len - 22 + 1; i-- > lo;)
    if (u32(b + i) == 0x06054b50u) {
      eocd = i;
      break;
    }
  if (eocd == (size_t)-1) return pt__error(PT_EFORMAT, "%s: not a zip archive (no end of central directory)", what);
  uint64_t count = u16(b + eocd + 10), cd_size = u32(b + eocd + 12), cd_off = u32(b + eocd + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu) {
    if (eocd < 20 || u32(b + eocd - 20) != 0x07064b50u)
      return pt__error(PT_EFORMAT, "%s: zip64 archive without its locator", what);
    uint64_t z64 = u64(b + eocd - 20 + 8);
    /* the zip64 record is 56 bytes; len - 56 would wrap on a short file */
    if (len < 56 || z64 > len - 56 || u32(b + z64) != 0x06064b50u) return pt__error(PT_EFORMAT, "%s: bad zip64 end of central directory", what);
    count = u64(b + z64 + 32), cd_size = u64(b + z64 + 40), cd_off = u64(b + z64 + 48);
  }
  if (cd_off > len || cd_size > len - cd_off || count > cd_size / 46)
    return pt__error(PT_EFORMAT, "%s: zip central directory out of range (truncated file?)", what);
  pt__zip *z = pt__calloc(1, sizeof *z);
  if (!z || !(z->e = pt__calloc(count ? (size_t)count : 1, sizeof *z->e))) {
    free(z);
    return pt__error(PT_ENOMEM, "%s: out of memory", what);
  }
  z->data = b;
  z->len = len;
  z->what = what;
  const uint8_t *p = b + cd_off, *end = b + cd_off + cd_size;
  for (uint64_t i = 0; i < count; i++) {
    if (end - p < 46 || u32(p) != 0x02014b50u) {
      pt__zip_close(z);
      return pt__error(PT_EFORMAT, "%s: zip central directory entry %llu is malformed", what, (unsigned long long)i);
    }
    uint16_t method = u16(p + 10), nlen = u16(p + 28), xlen = u16(p + 30), clen = u16(p + 32);
    uint32_t crc = u32(p + 16);
    uint64_t csize = u32(p + 20), usize = u32(p + 24), loff = u32(p + 42);
    if ((size_t)(end - p) < 46u + nlen + xlen + clen || zip64_extra(p + 46 + nlen, xlen, &usize, &csize, &loff)) {
      pt__zip_close(z);
      return pt__error(PT_EFORMAT, "%s: zip central directory entry %llu is truncated", what, (unsigned long long)i);
    }
    pt__zip_entry *e = &z->e[z->n];
    e->name = pt__malloc((size_t)nlen + 1);
    if (!e->name) {
      pt__zip_close(z);
      return pt__error(PT_ENOMEM, "%s: out of memory", what);
    }
    memcpy(e->name, p + 46, nlen);
    e->name[nlen] = 0;
    z->n++;
    e->method = method;
    e->crc = crc;
    e->size = usize;
    /* the data follows the local header, whose name and extra lengths may differ from the central copy */
    if (len < 30 || loff > len - 30 || u32(b + loff) != 0x04034b50u) {
      pt__error(PT_EFORMAT, "%s: zip entry '%s' has no local header (truncated file?)", what, e->name);
      pt__zip_close(z);
      return PT_EFORMAT;
    }
    uint64_t start = loff + 30 + u16(b + loff + 26) + u16(b + loff + 28);
    if (start > len || csize > len - start) {
      pt__error(PT_EFORMAT, "%s: zip entry '%s' runs past the end of the file (truncated?)", what, e->name);
      pt__zip_close(z);
      return PT_EFORMAT;
    }
    e->offset = start;
    e->csize = csize;
    p += 46 + nlen + xlen + clen;
  }
  *out = z;
  return PT_OK;
}

int pt__zip_find(const pt__zip *z, const char *name) {
  for (int i = 0; i < z->n; i++)
    if (!strcmp(z->e[i].name, name)) return i;
  return -1;
}

pt_status pt__zip_get(const pt__zip *z, int i, const uint8_t **data, uint64_t *size) {
  const pt__zip_entry *e = &z->e[i];
  if (e->method != 0)
    return pt__error(PT_EUNSUPPORTED, "%s: zip entry '%s' is compressed (method %u); torch.save stores entries uncompressed",
                     z->what, e->name, e->method);
  if (e->csize != e->size) return pt__error(PT_EFORMAT, "%s: zip entry '%s': stored size %llu differs from its size %llu",
                                           z->what, e->name, (unsigned long long)e->csize, (unsigned long long)e->size);
  if (pt__crc32(z->data + e->offset, (size_t)e->size) != e->crc)
    return pt__error(PT_EFORMAT, "%s: zip entry '%s' fails its CRC-32 check (corrupt file)", z->what, e->name);
  *data = z->data + e->offset;
  *size = e->size;
  return PT_OK;
}
