/* One run per output folder (docs/design.md, "Files"): a lock file holding the pid, locked with
 * flock so that it is released when the run ends however it ends; a file left by a run that
 * died is stale and taken over. The lock is per process and counted, so the CLI (which holds it
 * while it writes tune.log and the results) and pt_tuner_tune inside it take it alike. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "predtuner/log.h"
#include "predtuner/tuner.h"

#define LOCK_NAME "tune.lock"
#define MAX_LOCKS 16

typedef struct held {
  char dir[PATH_MAX];
  int fd, count;
} held;

static held g_held[MAX_LOCKS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

static held *find(const char *dir) {
  for (int i = 0; i < MAX_LOCKS; i++)
    if (g_held[i].count && !strcmp(g_held[i].dir, dir)) return &g_held[i];
  return NULL;
}

/* The pid an earlier holder wrote, 0 when none. */
static long read_pid(int fd) {
  char buf[32] = "";
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  return n > 0 ? strtol(buf, NULL, 10) : 0;
}

static pt_status take(const char *dir, const char *path, int *fd_out) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644); /* never write through a link */
  if (fd < 0) return pt__error(PT_EIO, "%s: cannot create the lock file: %s", path, strerror(errno));
  long prev = read_pid(fd);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
      return pt__error(PT_EBUSY, "%s: another run (pid %ld) is writing into this folder; wait for it or choose another "
                                 "--output folder", dir, prev);
    return pt__error(PT_EIO, "%s: cannot lock: %s", path, strerror(e));
  }
  if (prev > 0 && prev != (long)getpid())
    pt_log(PT_LOG_WARN, "%s: a stale lock of run %ld (which ended without releasing it) taken over", path, prev);
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
    close(fd);
    return pt__error(PT_EIO, "%s: cannot write the lock file: %s", path, strerror(errno));
  }
  *fd_out = fd;
  return PT_OK;
}

pt_status pt_output_lock(const char *dir) {
  char path[PATH_MAX + 16];
  if (!dir || !dir[0] || strlen(dir) >= PATH_MAX) return pt__error(PT_EINVAL, "output lock: no folder or a too long one");
  snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME);
  pthread_mutex_lock(&g_mu);
  held *h = find(dir);
  pt_status s = PT_OK;
  if (h) {
    h->count++;
  } else {
    for (int i = 0; i < MAX_LOCKS && !h; i++)
      if (!g_held[i].count) h = &g_held[i];
    if (!h) s = pt__error(PT_ENOMEM, "%s: this process already holds %d output folders", dir, MAX_LOCKS);
    if (s == PT_OK) s = take(dir, path, &h->fd);
    if (s == PT_OK) {
      snprintf(h->dir, sizeof h->dir, "%s", dir);
      h->count = 1;
    }
  }
  pthread_mutex_unlock(&g_mu);
  return s;
}

void pt_output_unlock(const char *dir) {
  if (!dir) return;
  pthread_mutex_lock(&g_mu);
  held *h = find(dir);
  if (h && --h->count == 0) {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME);
    unlink(path); /* while still locked: no other run can have taken it in between */
    close(h->fd);
  }
  pthread_mutex_unlock(&g_mu);
}
