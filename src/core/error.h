/* Internal error helpers: set the thread-local detail and return a status in one expression. */
#ifndef PT_CORE_ERROR_H
#define PT_CORE_ERROR_H

#include "predtuner/status.h"

#if defined(__GNUC__)
#define PT__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define PT__PRINTF(a, b)
#endif

/* Sets the detail message and returns s: `return pt__error(PT_EFORMAT, "%s: bad header", path);` */
pt_status pt__error(pt_status s, const char *fmt, ...) PT__PRINTF(2, 3);
/* Prepends "<prefix>: " to the current detail message (adds context on the way up). */
pt_status pt__error_prefix(const char *fmt, ...) PT__PRINTF(1, 2);

#define PT__TRY(expr)                \
  do {                               \
    pt_status pt__s_ = (expr);       \
    if (pt__s_ != PT_OK) return pt__s_; \
  } while (0)

#endif
