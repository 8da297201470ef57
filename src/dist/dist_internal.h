/* The MPI dist layer's shared state (predtuner/dist.h): dist_mpi.c joins, agrees and reports a
 * rank that died; dist_work.c cuts measurements into units, sends them and serves them. */
#ifndef PT_DIST_INTERNAL_H
#define PT_DIST_INTERNAL_H

#include <signal.h>
#include <stdint.h>

#include "predtuner/dist.h"

enum { PT__TAG_UNIT = 11, PT__TAG_RESULT = 12 };
#define PT__PLACE 160
/* What a unit asks for: configs' QoS and cost, qos_p1 entries' outputs, cost_profiled's timings. */
enum { PT__UNIT_STOP = 0, PT__UNIT_MEASURE = 1, PT__UNIT_OUTPUTS = 2, PT__UNIT_PROFILE = 3 };

/* The unit a worker holds (rank 0's books; read by the fault line from a signal handler, so plain
 * sig_atomic_t fields written in an order that never shows a half-made unit as held). */
typedef struct pt__held {
  volatile sig_atomic_t kind; /* PT__UNIT_STOP: none */
  volatile sig_atomic_t seq;  /* the unit's number in this job, from 1 */
  volatile sig_atomic_t first, n, total;
} pt__held;

struct pt_dist {
  int rank, size, mpi, agreed, agreed_ok, master_only;
  int local_rank, local_size; /* on this node (MPI-3 shared-memory split) */
  int gpu, gpus;              /* the GPU chosen for this rank (-1: none) of the node's count */
  pt_app *app;
  pt_measurer meas;
  int64_t units; /* rank 0: units sent to workers */
  double comm_s; /* rank 0: seconds in sending units and taking results (not waiting, not measuring) */
  /* rank 0: every rank's pid and whether it runs on rank 0's node; what each worker holds */
  int *pid;
  unsigned char *same_node;
  pt__held *held;
  char *place; /* rank 0: every rank's placement, PT__PLACE bytes each */
  volatile sig_atomic_t seq;
};

/* Short sleeps while waiting: MPI's own waits spin and would slow a rank measuring on the same core. */
void pt__dist_nap(void);
/* Rank 0: ends every worker's service. */
void pt__dist_stop_workers(pt_dist *d);

#endif
