#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/io.h"

pt_status pt__map_file(const char *path, void **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK); /* a FIFO must not block the open: it is refused below */
  if (fd < 0) return pt__error(errno == ENOENT ? PT_ENOTFOUND : PT_EIO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return pt__error(PT_EIO, "%s: not a regular file", path);
  }
  *len = (size_t)st.st_size;
  if (*len == 0) { /* mmap refuses empty files; an empty mapping is a valid answer */
    close(fd);
    return PT_OK;
  }
  void *p = mmap(NULL, *len, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return pt__error(PT_EIO, "%s: cannot map: %s", path, strerror(errno));
  *data = p;
  return PT_OK;
}

void pt__unmap_file(void *data, size_t len) {
  if (data && len) munmap(data, len);
}

pt_status pt__parse_file(const char *path, pt__text_parser parse, void *out) {
  void *data;
  size_t len;
  PT__TRY(pt__map_file(path, &data, &len));
  pt_status s = parse(data ? data : "", len, path, out);
  pt__unmap_file(data, len);
  return s;
}

pt_status pt_write_file_atomic(const char *path, const void *data, size_t len) {
  size_t n = strlen(path) + 32;
  char *tmp = pt__malloc(n);
  if (!tmp) return pt__error(PT_ENOMEM, "%s: out of memory", path);
  snprintf(tmp, n, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    pt_status s = pt__error(PT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    free(tmp);
    return s;
  }
  int ok = fwrite(data, 1, len, f) == len;
  ok = (fflush(f) == 0) && ok;
  ok = (fsync(fileno(f)) == 0) && ok;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0) {
    pt_status s = pt__error(PT_EIO, "%s: cannot write: %s", path, strerror(errno));
    remove(tmp);
    free(tmp);
    return s;
  }
  free(tmp);
  return PT_OK;
}

pt_status pt_make_dirs(const char *dir) {
  char tmp[4096];
  if (!dir || !dir[0]) return pt__error(PT_EINVAL, "an empty folder name");
  if ((size_t)snprintf(tmp, sizeof tmp, "%s", dir) >= sizeof tmp) return pt__error(PT_EINVAL, "folder name too long: %s", dir);
  for (char *p = tmp + 1;; p++) { /* mkdir -p */
    char c = *p;
    if (c && c != '/') continue;
    *p = '\0';
    if (mkdir(tmp, 0777) && errno != EEXIST) return pt__error(PT_EIO, "%s: cannot create folder: %s", tmp, strerror(errno));
    if (!c) break;
    *p = c;
  }
  return PT_OK;
}

pt_status pt__write_json_atomic(const char *path, cJSON *root, int pretty) {
  char *txt = root ? (pretty ? cJSON_Print(root) : cJSON_PrintUnformatted(root)) : NULL;
  cJSON_Delete(root);
  if (!txt) return pt__error(PT_ENOMEM, "%s: out of memory for the JSON text", path);
  pt_status s = pt_write_file_atomic(path, txt, strlen(txt));
  free(txt);
  return s;
}

pt_status pt__text_put(pt__text *t, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return pt__error(PT_EINVAL, "text: formatting failed");
    if (t->buf && t->len + (size_t)k < t->cap) {
      t->len += (size_t)k;
      return PT_OK;
    }
    size_t nc = (t->cap ? t->cap * 2 : 4096) + (size_t)k;
    char *nb = pt__realloc(t->buf, nc);
    if (!nb) return pt__error(PT_ENOMEM, "out of memory for %zu bytes of text", nc);
    t->buf = nb;
    t->cap = nc;
  }
}
