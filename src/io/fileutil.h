#ifndef PT_IO_FILEUTIL_H
#define PT_IO_FILEUTIL_H

#include <stddef.h>

#include "predtuner/status.h"

/* Read-only private mapping of a whole file; an empty file gives data == NULL, len == 0. */
pt_status pt__map_file(const char *path, void **data, size_t *len);
void pt__unmap_file(void *data, size_t len);

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "predtuner-gpu reads little-endian files in place and needs a little-endian host"
#endif

#endif
