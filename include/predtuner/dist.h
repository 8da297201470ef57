/* Tuning over the ranks of an MPI job (docs/distributed.md): rank 0 runs the search, the models,
 * the journal and every output; what it measures (search batches, validation, test, the QoS
 * models' entries, cost_profiled's knobs) is spread over every rank (rank 0 too, unless
 * master_only), each rank measuring on its own app, built from the same options. Without MPI in the build, or outside a launcher, a job is one
 * process and everything runs as before. */
#ifndef PREDTUNER_DIST_H
#define PREDTUNER_DIST_H

#include "predtuner/tuner.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_dist pt_dist;

/* Joins the job when the process was started by an MPI launcher (mpirun, mpiexec, srun) and the
 * build has MPI; otherwise a job of one. */
pt_status pt_dist_init(pt_dist **out);
int pt_dist_rank(const pt_dist *d);
int pt_dist_size(const pt_dist *d);
/* "Open MPI v4.1.4, ..." or "not built with MPI". */
const char *pt_dist_describe(void);

/* Every rank, before making an app that holds files of its own (a piped binary's FIFOs: files, one
 * per line, from pt_app_piped_files; s: how getting them went): the ranks agree that no two on one
 * node hold the same file, or all get the same error naming the two ranks and the file. */
pt_status pt_dist_claim(pt_dist *d, pt_status s, const char *files);
/* Every rank, once, after making its app (s: how that went; app NULL when it failed): the ranks
 * agree that every app was made and that all are the same (network, weights, data, knobs, how QoS
 * is measured), or all get the same error naming the first rank that differs or failed. */
pt_status pt_dist_agree(pt_dist *d, pt_status s, pt_app *app);
/* Rank 0, after agreeing: the measurer to put in pt_tune_opts (NULL for a job of one). flags:
 * PT_DIST_MASTER_ONLY: rank 0 measures nothing itself; PT_DIST_TIME_SHARED: timings (cost_profiled's
 * knobs, the best configs' measured speedups) go to every rank even when ranks share a device — by
 * default they do only when every rank has its own node or GPU, and rank 0 times alone otherwise. */
enum { PT_DIST_MASTER_ONLY = 1, PT_DIST_TIME_SHARED = 2 };
const pt_measurer *pt_dist_measurer(pt_dist *d, int flags);
/* The other ranks, after agreeing: measure what rank 0 sends until it ends the job. A failure
 * here (a malformed unit, no memory) leaves rank 0 waiting: end the job with pt_dist_abort. */
pt_status pt_dist_serve(pt_dist *d);
/* Rank 0, after agreeing: where rank k runs ("rank 1: node n1, local rank 1 of 4, GPU 1 of the
 * node's 4 (CUDA_VISIBLE_DEVICES=1)"); NULL before, elsewhere and for a job of one. Several ranks
 * on a node each take their own GPU (the node-local rank's, modulo the GPUs the driver lists) when
 * the user set no CUDA_VISIBLE_DEVICES. */
const char *pt_dist_placement(const pt_dist *d, int rank);
/* Rank 0, from a signal handler (async-signal-safe: no allocation, no stdio): one line on fd for
 * a job that is being ended by its launcher (sig: the signal rank 0 got) — which workers of rank
 * 0's node have died and the unit each held, or, when none has, the units in flight — ending with
 * tail (what to do next; NULL: nothing). Nothing on other ranks or for a job of one. */
void pt_dist_write_fault(const pt_dist *d, int fd, int sig, const char *tail);
/* Rank 0: the units sent to workers so far, and the seconds rank 0 spent sending them and taking
 * their results in (its overhead per unit; waiting and measuring excluded). */
void pt_dist_stats(const pt_dist *d, int64_t *units, double *comm_seconds);
/* Ends every rank of the job at once (MPI_Abort; nothing for a job of one). */
void pt_dist_abort(pt_dist *d, int code);
/* Every rank, last: rank 0 ends the workers' service (or, when it never agreed, releases them with
 * a failure); then the job is left and d freed. */
void pt_dist_finish(pt_dist *d);

#ifdef __cplusplus
}
#endif
#endif
