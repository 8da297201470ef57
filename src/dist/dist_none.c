/* The dist layer without MPI (predtuner/dist.h): every job is one process. */
#include <stdlib.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/dist.h"

struct pt_dist {
  int agreed;
};

pt_status pt_dist_init(pt_dist **out) {
  *out = pt__calloc(1, sizeof **out);
  return *out ? PT_OK : pt__error(PT_ENOMEM, "dist: out of memory");
}

int pt_dist_rank(const pt_dist *d) { return (void)d, 0; }
int pt_dist_size(const pt_dist *d) { return (void)d, 1; }
const char *pt_dist_describe(void) { return "not built with MPI"; }

pt_status pt_dist_claim(pt_dist *d, pt_status s, const char *files) { return (void)d, (void)files, s; }

pt_status pt_dist_agree(pt_dist *d, pt_status s, pt_app *app) {
  (void)app;
  d->agreed = 1;
  return s;
}

const pt_measurer *pt_dist_measurer(pt_dist *d, int flags) { return (void)d, (void)flags, NULL; }

pt_status pt_dist_serve(pt_dist *d) {
  (void)d;
  return pt__error(PT_EUNSUPPORTED, "dist: a job of one process has no workers");
}

const char *pt_dist_placement(const pt_dist *d, int rank) { return (void)d, (void)rank, NULL; }
void pt_dist_write_fault(const pt_dist *d, int fd, int sig, const char *tail) { (void)d, (void)fd, (void)sig, (void)tail; }

void pt_dist_stats(const pt_dist *d, int64_t *units, double *comm_seconds) {
  (void)d;
  *units = 0;
  *comm_seconds = 0;
}

void pt_dist_abort(pt_dist *d, int code) { (void)d, (void)code; }

void pt_dist_finish(pt_dist *d) { free(d); }
