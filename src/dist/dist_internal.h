/* The MPI dist layer's shared state (predtuner/dist.h): dist_mpi.c joins, agrees and reports a
 * rank that died; dist_work.c cuts measurements into units, sends them and serves them. */
#ifndef PT_DIST_INTERNAL_H
#define PT_DIST_INTERNAL_H

#include <math.h>
#include <signal.h>
#include <stdint.h>

#include "predtuner/dist.h"

enum { PT__TAG_UNIT = 11, PT__TAG_RESULT = 12 };
#define PT__PLACE 160
/* What a unit asks for: configs' QoS and cost, qos_p1 entries' outputs, cost_profiled's timings,
 * best configs' timings (with the exact network's, in one sitting). */
enum { PT__UNIT_STOP = 0, PT__UNIT_MEASURE = 1, PT__UNIT_OUTPUTS = 2, PT__UNIT_PROFILE = 3, PT__UNIT_TIME = 4 };

/* The unit a worker holds (rank 0's books; read by the fault line from a signal handler, on any
 * thread: sig_atomic_t fields behind a seqlock, ver odd while they change). */
typedef struct pt__held {
  volatile sig_atomic_t ver;
  volatile sig_atomic_t kind; /* PT__UNIT_STOP: none */
  volatile sig_atomic_t seq;  /* the unit's number in this job, from 1 */
  volatile sig_atomic_t first, n, total;
} pt__held;

struct pt_dist {
  int rank, size, mpi, agreed, agreed_ok, master_only, time_shared;
  int local_rank, local_size; /* on this node (MPI-3 shared-memory split) */
  int node_id;                /* the lowest rank of this rank's node */
  int gpu, gpus, gpu_early;   /* the GPU chosen for this rank (-1: none) of the node's count; chosen before MPI_Init */
  char gpu_name[128];         /* what CUDA_VISIBLE_DEVICES was set to */
  int all_exclusive;          /* rank 0: every rank has its device to itself (own node, or own GPU) */
  pt_app *app;
  pt_measurer meas;
  int64_t units; /* rank 0: units sent to workers */
  double comm_s; /* rank 0: seconds in sending units and taking results (not waiting, not measuring) */
  /* rank 0: every rank's pid and whether it runs on rank 0's node; what each worker holds */
  int *pid;
  unsigned char *same_node; /* rank 0: rank k is on rank 0's node */
  pt__held *held;
  char *place; /* rank 0: every rank's placement, PT__PLACE bytes each */
  volatile sig_atomic_t seq;
};

/* Times taken on several devices, made comparable: seconds[k] was timed beside the exact network's
 * exact_of[k] (its unit's sitting); every time is scaled to the first unit whose exact time is a
 * positive number (*exact: that time), and a time whose unit has none becomes NaN. */
static inline void pt__dist_scale_times(int n, double *seconds, const double *exact_of, double *exact) {
  int ref = 0;
  while (ref < n && !(exact_of[ref] > 0 && isfinite(exact_of[ref]))) ref++;
  *exact = ref < n ? exact_of[ref] : NAN;
  for (int k = 0; k < n; k++)
    seconds[k] = ref < n && exact_of[k] > 0 && isfinite(exact_of[k]) ? seconds[k] * (exact_of[ref] / exact_of[k]) : NAN;
}

/* Short sleeps while waiting: MPI's own waits spin and would slow a rank measuring on the same core. */
void pt__dist_nap(void);
/* Rank 0: ends every worker's service. */
void pt__dist_stop_workers(pt_dist *d);

#endif
