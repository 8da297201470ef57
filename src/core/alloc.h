/* Heap allocation in library code goes through these wrappers over the C allocator (memory is
 * released with free()). They exist for one reason: a test can make the n-th allocation fail
 * (SQLite-style fault injection) and so check that every out-of-memory path returns PT_ENOMEM with
 * its own message, frees what it took and leaves the objects it touched usable. */
#ifndef PT_CORE_ALLOC_H
#define PT_CORE_ALLOC_H

#include <stddef.h>

void *pt__malloc(size_t n);
void *pt__calloc(size_t count, size_t size);
void *pt__realloc(void *p, size_t n);
char *pt__strdup(const char *s);
/* aligned_alloc with the size rounded up to a multiple of align (as C11 requires). */
void *pt__aligned_alloc(size_t align, size_t n);

/* Fault injection (tests only): the nth allocation from now fails (nth >= 1), and so does every
 * later one when sticky; nth = 0 disarms. Counting is across threads. */
void pt__alloc_fail_at(long nth, int sticky);
/* Allocations made through the wrappers since the process started (to size fault-injection loops). */
long pt__alloc_count(void);
/* Whether an armed failure has fired since pt__alloc_fail_at armed it. */
int pt__alloc_failed(void);

#endif
