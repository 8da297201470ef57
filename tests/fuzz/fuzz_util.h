/* Helpers for the libFuzzer targets: bytes as a file path (memfd) for loaders that take paths. */
#ifndef PT_FUZZ_UTIL_H
#define PT_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "predtuner/predtuner.h"

/* An in-memory file holding data; path gets "/proc/self/fd/N". Returns the fd (close it) or -1. */
static inline int pt_fuzz_memfile(const uint8_t *data, size_t len, char *path, size_t cap) {
  int fd = memfd_create("pt_fuzz", 0);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < len) {
    ssize_t k = write(fd, data + off, len - off);
    if (k <= 0) {
      close(fd);
      return -1;
    }
    off += (size_t)k;
  }
  snprintf(path, cap, "/proc/self/fd/%d", fd);
  return fd;
}

/* Every failure must leave a one-line message naming what was read. */
static inline void pt_fuzz_check_error(pt_status s) {
  if (s != PT_OK && (!pt_last_error()[0] || __builtin_strchr(pt_last_error(), '\n'))) __builtin_trap();
}

#endif
