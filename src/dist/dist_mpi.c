/* The dist layer on MPI (predtuner/dist.h, docs/distributed.md): joining the job, the node-local
 * rank and its GPU, the ranks' agreement on one app, the end of the job, and the line that names
 * a rank that died and the unit it held. The units themselves are dist_work.c's. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/app_internal.h"
#include "dist/dist_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/hash.h"
#include "predtuner/backend.h"
#include "predtuner/log.h"

void pt__dist_nap(void) { nanosleep(&(struct timespec){0, 200 * 1000}, NULL); }

static int launched_by_mpi(void) {
  return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK");
}

/* The NVIDIA GPUs the driver lists on this node (PT_NVIDIA_GPUS_DIR: where they are listed, for
 * containers whose /proc is not the host's), counted without starting CUDA. */
static int node_gpus(void) {
  const char *dir = getenv("PT_NVIDIA_GPUS_DIR");
  DIR *dd = opendir(dir && *dir ? dir : "/proc/driver/nvidia/gpus");
  int n = 0;
  for (struct dirent *e; dd && (e = readdir(dd));) n += e->d_name[0] != '.';
  if (dd) closedir(dd);
  return n;
}

/* The node-local rank and rank count the launcher announces, as a pair from one launcher (Open
 * MPI, Hydra/Intel MPI, PMI), so that the GPU is chosen before MPI_Init (a CUDA-aware MPI may start
 * CUDA there); 0 when none sets both. SLURM gives no local count: its ranks are placed after the split. */
static int env_pair(const char *rank_var, const char *size_var, int *rank, int *size) {
  const char *r = getenv(rank_var), *z = getenv(size_var);
  char *e1, *e2;
  long a = r && *r ? strtol(r, &e1, 10) : -1, b = z && *z ? strtol(z, &e2, 10) : -1;
  if (a < 0 || b < 1 || *e1 || *e2 || a >= b || b > (1 << 20)) return 0;
  *rank = (int)a, *size = (int)b;
  return 1;
}

static int launcher_local(int *rank, int *size) {
  return env_pair("OMPI_COMM_WORLD_LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE", rank, size) ||
         env_pair("MPI_LOCALRANKID", "MPI_LOCALNRANKS", rank, size) || env_pair("PMI_LOCAL_RANK", "PMI_LOCAL_SIZE", rank, size);
}

/* Entry k of a comma-separated list into out (n bytes); the number of entries. An entry that does
 * not fit makes out empty. */
static int list_entry(const char *list, int k, char *out, size_t n) {
  int count = 0;
  out[0] = '\0';
  for (const char *p = list; *p;) {
    const size_t len = strcspn(p, ",");
    if (len && count++ == k && len < n) snprintf(out, n, "%.*s", (int)len, p);
    p += len + (p[len] == ',');
  }
  return count;
}

/* Several ranks on a node each take their own GPU: the node-local rank's, modulo the GPUs the
 * node offers — the entries of a CUDA_VISIBLE_DEVICES list (SLURM's allocation, or the user's), else
 * the driver's count — by setting CUDA_VISIBLE_DEVICES to that one device before anything starts
 * CUDA (it then holds for every thread of the process). One rank on a node, or a one-entry list,
 * is left as it is. */
static void choose_gpu(pt_dist *d, int local_rank, int local_size) {
  d->gpu = -1;
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  char v[128];
  d->gpus = cvd ? list_entry(cvd, -1, v, sizeof v) : node_gpus();
  if (local_rank < 0 || local_size < 2 || (cvd ? d->gpus < 2 : d->gpus < 1)) return; /* one entry: the user's choice */
  const int g = local_rank % d->gpus;
  if (cvd) list_entry(cvd, g, v, sizeof v);
  else snprintf(v, sizeof v, "%d", g);
  if (!v[0]) return; /* an entry too long to be a device name: left alone */
  d->gpu = g;
  snprintf(d->gpu_name, sizeof d->gpu_name, "%s", v);
  setenv("CUDA_VISIBLE_DEVICES", v, 1);
}

pt_status pt_dist_init(pt_dist **out) {
  pt_dist *d = pt__calloc(1, sizeof *d);
  if (!(*out = d)) return pt__error(PT_ENOMEM, "dist: out of memory");
  d->size = 1;
  if (!launched_by_mpi()) return PT_OK;
  int inited = 0, level = 0;
  MPI_Initialized(&inited);
  int env_lrank = -1, env_lsize = 0;
  char *cvd0 = getenv("CUDA_VISIBLE_DEVICES") ? pt__strdup(getenv("CUDA_VISIBLE_DEVICES")) : NULL;
  if (!inited && launcher_local(&env_lrank, &env_lsize)) choose_gpu(d, env_lrank, env_lsize), d->gpu_early = 1;
  /* MPI calls come from the main thread only (OpenMP and CUDA threads never call it) */
  if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &level) != MPI_SUCCESS) {
    free(cvd0);
    return pt__error(PT_EBACKEND, "dist: MPI_Init failed");
  }
  d->mpi = !inited + 1; /* 2: we initialised MPI and finalise it */
  MPI_Comm_rank(MPI_COMM_WORLD, &d->rank);
  MPI_Comm_size(MPI_COMM_WORLD, &d->size);
  const char *want = getenv("OMPI_COMM_WORLD_SIZE") ? getenv("OMPI_COMM_WORLD_SIZE") : getenv("PMI_SIZE");
  if (want && atoi(want) > 1 && d->size == 1) /* every process would tune alone, each the whole job */
    return free(cvd0), pt__error(PT_EBACKEND, "dist: the launcher started %s processes but MPI sees a job of one (a launcher of "
                                  "another MPI library, or srun without --mpi=pmix?)", want);
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &d->local_rank);
  MPI_Comm_size(node, &d->local_size);
  MPI_Allreduce(&d->rank, &d->node_id, 1, MPI_INT, MPI_MIN, node); /* a node is named by its lowest rank */
  MPI_Comm_free(&node);
  if (d->gpu_early && (env_lrank != d->local_rank || env_lsize != d->local_size)) { /* another job's variables */
    if (cvd0) setenv("CUDA_VISIBLE_DEVICES", cvd0, 1);
    else unsetenv("CUDA_VISIBLE_DEVICES");
    d->gpu_early = 0;
  }
  free(cvd0);
  if (!d->gpu_early) choose_gpu(d, d->local_rank, d->local_size);
  return PT_OK;
}

int pt_dist_rank(const pt_dist *d) { return d->rank; }
int pt_dist_size(const pt_dist *d) { return d->size; }

/* Where this rank runs and which GPU it took, in words. */
static void placement(const pt_dist *d, char *buf, size_t n) {
  char host[64] = "";
  gethostname(host, sizeof host - 1);
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  if (d->gpu >= 0)
    snprintf(buf, n, "rank %d: node %s, local rank %d of %d, GPU %d of the node's %d (CUDA_VISIBLE_DEVICES=%s)", d->rank,
             host, d->local_rank, d->local_size, d->gpu, d->gpus, d->gpu_name);
  else
    snprintf(buf, n, "rank %d: node %s, local rank %d of %d, %s", d->rank, host, d->local_rank, d->local_size,
             cvd ? "CUDA_VISIBLE_DEVICES as it was set"
             : d->gpus ? "every GPU of the node (one rank on it)"
                       : "no NVIDIA GPU listed on the node");
}

const char *pt_dist_placement(const pt_dist *d, int rank) {
  return d->place && rank >= 0 && rank < d->size ? d->place + (size_t)rank * PT__PLACE : NULL;
}

const char *pt_dist_describe(void) {
  static char buf[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(buf, &len);
  buf[strcspn(buf, "\n,")] = '\0';
  return buf;
}

/* What must be equal on every rank: the app's fingerprint parts and its shape. */
static uint64_t app_identity(const pt_app *app) {
  uint64_t h = pt__hash_u64(pt__hash_u64(PT__HASH_INIT, (uint64_t)app->n_ops), (uint64_t)app->n_entries);
  for (int i = 0; i < PT__FP_N; i++) h = pt__hash_u64(h, app->fp[i]);
  return h;
}

/* What every rank's message to the others starts with: how its part went. */
typedef struct said {
  int32_t status, pad;
  char msg[240];
} said;

static said said_of(pt_status s) {
  said h = {s, 0, ""};
  if (s != PT_OK) snprintf(h.msg, sizeof h.msg, "%s", pt_last_error());
  return h;
}

/* Every rank's message of `bytes` (each starting with a said), gathered on every rank. */
static void *gather(const pt_dist *d, const void *mine, size_t bytes) {
  void *all = pt__calloc((size_t)d->size, bytes);
  if (!all) MPI_Abort(MPI_COMM_WORLD, 1); /* the job cannot agree */
  MPI_Allgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD);
  return all;
}

/* The first rank whose part failed, as the error every rank returns (PT_OK when none did). */
static pt_status first_failed(const pt_dist *d, const void *all, size_t bytes) {
  for (int k = 0; k < d->size; k++) {
    const said *h = (const said *)(const void *)((const unsigned char *)all + (size_t)k * bytes);
    if (h->status != PT_OK)
      return pt__error((pt_status)h->status, "rank %d of %d: %.*s", k, d->size, (int)sizeof h->msg,
                       h->msg[0] ? h->msg : "failed");
  }
  return PT_OK;
}

typedef struct agree_msg {
  said head;
  int32_t pid, node, one_gpu, pad; /* one_gpu: a CUDA app seeing one GPU (device: which) */
  uint64_t identity, device;
  char place[PT__PLACE];
} agree_msg;

/* Whether every rank times on a device of its own: it is its node's only rank, or a CUDA rank seeing
 * one GPU that no other rank of its node sees. */
static int devices_of_their_own(const agree_msg *all, int n) {
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++)
      if (a != b && all[a].node == all[b].node &&
          !(all[a].one_gpu && all[b].one_gpu && all[a].device != all[b].device))
        return 0;
  return 1;
}

pt_status pt_dist_agree(pt_dist *d, pt_status s, pt_app *app) {
  d->agreed = 1;
  d->app = s == PT_OK ? app : NULL;
  if (d->size == 1) return d->agreed_ok = s == PT_OK, s;
  const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
  char one[8];
  const int one_gpu = app && app->be && !strcmp(pt_backend_name(app->be), "cuda") && cvd && list_entry(cvd, -1, one, sizeof one) == 1;
  agree_msg mine = {.head = said_of(s), .pid = (int32_t)getpid(), .node = d->node_id, .one_gpu = one_gpu,
                    .identity = s == PT_OK && app ? app_identity(app) : 0,
                    .device = one_gpu ? pt__hash_str(PT__HASH_INIT, cvd) : 0};
  placement(d, mine.place, sizeof mine.place);
  agree_msg *all = gather(d, &mine, sizeof mine);
  pt_status r = first_failed(d, all, sizeof mine);
  for (int k = 1; k < d->size && r == PT_OK; k++)
    if (all[k].identity != all[0].identity)
      r = pt__error(PT_EINVAL, "rank %d of %d made another app than rank 0 (network, weights, data, knobs or how QoS is "
                               "measured differ): start every rank with the same options and files", k, d->size);
  if (r == PT_OK && d->rank == 0) {
    d->pid = pt__calloc((size_t)d->size, sizeof *d->pid);
    d->same_node = pt__calloc((size_t)d->size, 1);
    d->held = pt__calloc((size_t)d->size, sizeof *d->held);
    d->place = pt__calloc((size_t)d->size, PT__PLACE);
    if (!d->pid || !d->same_node || !d->held || !d->place) MPI_Abort(MPI_COMM_WORLD, 1); /* a few bytes a rank */
    d->all_exclusive = devices_of_their_own(all, d->size);
    for (int k = 0; k < d->size; k++) {
      d->pid[k] = all[k].pid, d->same_node[k] = all[k].node == all[0].node;
      memcpy(d->place + (size_t)k * PT__PLACE, all[k].place, PT__PLACE);
      d->place[(size_t)k * PT__PLACE + PT__PLACE - 1] = '\0';
    }
  }
  free(all);
  d->agreed_ok = r == PT_OK;
  return r;
}

/* What a rank claims (pt_dist_claim): each file's hash, and its name for the message. */
enum { CLAIM_FILES = 6, CLAIM_NAME = 200 };
typedef struct claim_msg {
  said head;
  int32_t n, node;
  char host[64];
  uint64_t hash[CLAIM_FILES];
  char name[CLAIM_FILES][CLAIM_NAME];
} claim_msg;

static void claim_of(const pt_dist *d, pt_status s, const char *files, claim_msg *c) {
  memset(c, 0, sizeof *c);
  c->head = said_of(s);
  c->node = d->node_id;
  gethostname(c->host, sizeof c->host - 1);
  for (const char *p = files; s == PT_OK && p && *p && c->n < CLAIM_FILES;) {
    const size_t len = strcspn(p, "\n");
    c->hash[c->n] = pt__hash_bytes(PT__HASH_INIT, p, len);
    snprintf(c->name[c->n++], CLAIM_NAME, "%.*s", (int)len, p); /* the tail would say more; the head is enough */
    p += len + (p[len] == '\n');
  }
}

pt_status pt_dist_claim(pt_dist *d, pt_status s, const char *files) {
  if (d->size == 1) return s;
  claim_msg mine;
  claim_of(d, s, files, &mine);
  claim_msg *all = gather(d, &mine, sizeof mine);
  pt_status r = first_failed(d, all, sizeof mine);
  for (int a = 0; a < d->size && r == PT_OK; a++)
    for (int b = a + 1; b < d->size && r == PT_OK; b++)
      for (int i = 0; i < all[a].n && r == PT_OK && all[a].node == all[b].node; i++)
        for (int j = 0; j < all[b].n && r == PT_OK; j++)
          if (all[a].hash[i] == all[b].hash[j])
            r = pt__error(PT_EEXIST, "ranks %d and %d of %d on node %s would share %s: give each rank of a node its "
                                     "own copy of the binary's folder (an MPMD command line) or run one rank per node",
                          a, b, d->size, all[a].host, all[a].name[i]);
  free(all);
  return r;
}

/* ---- the fault line: async-signal-safe, no allocation, no stdio ---- */

typedef struct line {
  char b[1024];
  size_t n;
} line;

static void put(line *l, const char *s) {
  while (*s && l->n < sizeof l->b - 2) l->b[l->n++] = *s++;
}

static void put_int(line *l, long v) {
  char t[24];
  int k = 0;
  unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
  do t[k++] = (char)('0' + u % 10); while ((u /= 10) && k < 23);
  if (v < 0) put(l, "-");
  while (k) {
    char c[2] = {t[--k], 0};
    put(l, c);
  }
}

/* The unit a worker holds, read consistently while the main thread may be changing it (a signal
 * can arrive on any thread): a seqlock, retried a few times. */
static pt__held read_held(const pt__held *h) {
  pt__held c = {0};
  for (int tries = 0; tries < 1000; tries++) {
    const sig_atomic_t v = h->ver;
    atomic_thread_fence(memory_order_acquire);
    c.kind = h->kind, c.seq = h->seq, c.first = h->first, c.n = h->n, c.total = h->total;
    atomic_thread_fence(memory_order_acquire);
    if (!(v & 1) && v == h->ver) return c;
  }
  c.kind = PT__UNIT_STOP; /* never settled: say nothing rather than something torn */
  return c;
}

static void put_unit(line *l, const pt__held *held) {
  static const char *const what[] = {"", "configs", "qos_p1 knob choices", "cost_profiled knobs", "configs timed"};
  const pt__held h = read_held(held);
  if (h.kind < 1 || h.kind > 4) {
    put(l, "no unit");
    return;
  }
  put(l, "unit "), put_int(l, h.seq), put(l, " ("), put(l, what[h.kind]), put(l, " "), put_int(l, h.first + 1);
  put(l, "-"), put_int(l, h.first + h.n), put(l, " of "), put_int(l, h.total), put(l, ")");
}

static int rank_ended(const pt_dist *d, int k) {
  return d->same_node[k] && d->pid[k] > 0 && kill(d->pid[k], 0) != 0 && errno == ESRCH;
}

void pt_dist_write_fault(const pt_dist *d, int fd, int sig, const char *tail) {
  if (!d || d->rank != 0 || d->size < 2 || !d->held) return;
  const int saved = errno;
  line l = {.n = 0};
  int dead = 0;
  put(&l, "predtuner-gpu: ");
  for (int k = 1; k < d->size; k++) {
    if (!rank_ended(d, k)) continue;
    put(&l, dead++ ? "; rank " : "rank "), put_int(&l, k), put(&l, " of "), put_int(&l, d->size);
    put(&l, " (pid "), put_int(&l, d->pid[k]), put(&l, ") died holding "), put_unit(&l, &d->held[k]);
  }
  if (!dead) { /* stopped from outside, or a rank of another node died: what was in flight */
    put(&l, "the job was stopped (signal "), put_int(&l, sig), put(&l, ") while");
    int any = 0;
    for (int k = 1; k < d->size; k++)
      if (read_held(&d->held[k]).kind != PT__UNIT_STOP)
        put(&l, any++ ? "," : ""), put(&l, " rank "), put_int(&l, k), put(&l, d->same_node[k] ? "" : " (another node)"),
            put(&l, " held "), put_unit(&l, &d->held[k]);
    if (!any) put(&l, " no worker held a unit");
  }
  if (tail) put(&l, tail);
  put(&l, "\n");
  for (size_t at = 0; at < l.n;) {
    ssize_t w = write(fd, l.b + at, l.n - at);
    if (w <= 0) break;
    at += (size_t)w;
  }
  errno = saved;
}

void pt_dist_stats(const pt_dist *d, int64_t *units, double *comm_seconds) {
  *units = d->units;
  *comm_seconds = d->comm_s;
}

void pt_dist_abort(pt_dist *d, int code) {
  if (d && d->mpi) MPI_Abort(MPI_COMM_WORLD, code);
}

void pt_dist_finish(pt_dist *d) {
  if (!d) return;
  if (d->size > 1) {
    if (!d->agreed) { /* rank 0 (or a worker) failed before it made its app: release the others */
      pt__error(PT_EINVAL, "stopped before making its app");
      pt_dist_agree(d, PT_EINVAL, NULL);
    }
    if (d->rank == 0 && d->agreed_ok) pt__dist_stop_workers(d);
  }
  if (d->mpi == 2) MPI_Finalize();
  free(d->pid);
  free(d->same_node);
  free(d->place);
  free((void *)d->held);
  free(d);
}
