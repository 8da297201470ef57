#include "core/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long pt__n_allocs;
static atomic_long pt__fail_at;  /* allocation count at which to fail; 0: never */
static atomic_int pt__fail_sticky, pt__fired;

static int pt__should_fail(void) {
  long n = atomic_fetch_add(&pt__n_allocs, 1) + 1, at = atomic_load(&pt__fail_at);
  if (!at || n < at || (n > at && !atomic_load(&pt__fail_sticky))) return 0;
  atomic_store(&pt__fired, 1);
  return 1;
}

void *pt__malloc(size_t n) { return pt__should_fail() ? NULL : malloc(n); }
void *pt__calloc(size_t count, size_t size) { return pt__should_fail() ? NULL : calloc(count, size); }
void *pt__realloc(void *p, size_t n) { return pt__should_fail() ? NULL : realloc(p, n); }

char *pt__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = pt__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

void *pt__aligned_alloc(size_t align, size_t n) {
  size_t rounded = (n + align - 1) / align * align;
  return pt__should_fail() ? NULL : aligned_alloc(align, rounded ? rounded : align);
}

void pt__alloc_fail_at(long nth, int sticky) {
  atomic_store(&pt__fired, 0);
  atomic_store(&pt__fail_sticky, sticky);
  atomic_store(&pt__fail_at, nth > 0 ? atomic_load(&pt__n_allocs) + nth : 0);
}

long pt__alloc_count(void) { return atomic_load(&pt__n_allocs); }
int pt__alloc_failed(void) { return atomic_load(&pt__fired); }
