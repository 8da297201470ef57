#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *pt_status_name(pt_status s) {
  switch (s) {
#define PT__STATUS_NAME(name, value, msg) \
  case PT_##name:                         \
    return "PT_" #name;
    PT_STATUS_MAP(PT__STATUS_NAME)
#undef PT__STATUS_NAME
  }
  return "PT_UNKNOWN";
}

const char *pt_status_str(pt_status s) {
  switch (s) {
#define PT__STATUS_STR(name, value, msg) \
  case PT_##name:                        \
    return msg;
    PT_STATUS_MAP(PT__STATUS_STR)
#undef PT__STATUS_STR
  }
  return "unknown status";
}

static _Thread_local char pt__errbuf[1024];

const char *pt_last_error(void) { return pt__errbuf; }

void pt_clear_error(void) { pt__errbuf[0] = '\0'; }

/* Messages stay one line whatever the input: a name read from a file may hold a newline or other
 * control characters, shown as '?'. */
static void pt__one_line(char *m) {
  for (; *m; m++)
    if ((unsigned char)*m < 0x20 || *m == 0x7f) *m = '?';
}

pt_status pt__error(pt_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pt__errbuf, sizeof pt__errbuf, fmt, ap);
  va_end(ap);
  pt__one_line(pt__errbuf);
  return s;
}

pt_status pt__error_prefix(const char *fmt, ...) {
  char prefix[512], old[sizeof pt__errbuf];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, pt__errbuf, sizeof old);
  snprintf(pt__errbuf, sizeof pt__errbuf, "%s: %s", prefix, old);
  pt__one_line(pt__errbuf);
  return PT_OK;
}
