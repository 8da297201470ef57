#ifndef PT_IO_FILEUTIL_H
#define PT_IO_FILEUTIL_H

#include <stddef.h>

#include "predtuner/status.h"

/* Read-only private mapping of a whole file; an empty file gives data == NULL, len == 0. */
pt_status pt__map_file(const char *path, void **data, size_t *len);
void pt__unmap_file(void *data, size_t len);

/* Writes root as JSON text (indented when pretty) atomically to path, and frees root either way. */
struct cJSON;
pt_status pt__write_json_atomic(const char *path, struct cJSON *root, int pretty);

/* The JSON (or other text) loaders: maps path and hands its bytes to parse(text, len, path, out). */
typedef pt_status (*pt__text_parser)(const char *text, size_t len, const char *source, void *out);
pt_status pt__parse_file(const char *path, pt__text_parser parse, void *out);

/* A growing text buffer (report, sensitivity table, HPVM config text) (buf malloc'ed, NUL-terminated after each put). */
typedef struct pt__text {
  char *buf;
  size_t len, cap;
} pt__text;
pt_status pt__text_put(pt__text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "predtuner-gpu reads little-endian files in place and needs a little-endian host"
#endif

#endif
