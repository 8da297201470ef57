/* Read-only zip archives in memory (torch.save's container). */
#ifndef PT_IO_ZIP_H
#define PT_IO_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "predtuner/status.h"

typedef struct pt__zip_entry {
  char *name;
  uint16_t method; /* 0 stored */
  uint32_t crc;
  uint64_t offset; /* of the data in the archive */
  uint64_t csize, size;
} pt__zip_entry;

typedef struct pt__zip {
  const uint8_t *data; /* the archive; borrowed, must outlive the reader */
  size_t len;
  const char *what; /* names the archive in errors */
  pt__zip_entry *e;
  int n;
} pt__zip;

/* Reads the central directory; every entry's data range is checked to lie inside the archive. */
pt_status pt__zip_open(const void *data, size_t len, const char *what, pt__zip **out);
void pt__zip_close(pt__zip *z);
/* Index of the entry named name, or -1. */
int pt__zip_find(const pt__zip *z, const char *name);
/* The bytes of a stored entry, CRC-32 checked. */
pt_status pt__zip_get(const pt__zip *z, int i, const uint8_t **data, uint64_t *size);
uint32_t pt__crc32(const void *data, size_t len);

#endif
