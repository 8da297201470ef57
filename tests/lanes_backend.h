/* A backend for tests that plays a GPU with several streams on the CPU: every op, upload and copy is
 * queued on the current lane, and at each synchronisation point (synchronize, download, minmax,
 * release) the queues run in a random interleaving that honours only each lane's order and the
 * marks waited for (lane_wait). Work that the executor forgot to order then runs in the wrong
 * order for some seed and changes the results, which a GPU would show only now and then. The ops
 * themselves are the CPU backend's. */
#ifndef PT_TEST_LANES_BACKEND_H
#define PT_TEST_LANES_BACKEND_H

#include <stdint.h>

#include "predtuner/backend.h"

/* lanes: 1..8. ignore_waits != 0 drops every lane_wait (for the test that shows the harness catches
 * missing ordering). */
pt_status lanes_backend_create(int lanes, uint64_t seed, int ignore_waits, pt_backend **out);

typedef struct lanes_stats {
  int64_t ops[8];  /* items run per lane (ops, uploads, copies) */
  int64_t waits;   /* lane_wait calls that ordered something */
  int64_t reorders; /* times an item ran before an item queued earlier on another lane */
} lanes_stats;
void lanes_backend_stats(pt_backend *be, lanes_stats *st);

#endif
