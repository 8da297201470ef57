#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "core/error.h"
#include "predtuner/log.h"

static FILE *pt__log_file;
static FILE *pt__log_echo_stream;
static pt_log_level pt__log_echo_level = PT_LOG_ERROR;
static pthread_mutex_t pt__log_mu = PTHREAD_MUTEX_INITIALIZER;
static const char *const pt__level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

double pt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

pt_status pt_log_open(const char *path) {
  FILE *f = fopen(path, "a");
  if (!f) return pt__error(PT_EIO, "%s: cannot open log file: %s", path, strerror(errno));
  pthread_mutex_lock(&pt__log_mu);
  if (pt__log_file) fclose(pt__log_file);
  pt__log_file = f;
  pthread_mutex_unlock(&pt__log_mu);
  return PT_OK;
}

void pt_log_close(void) {
  pthread_mutex_lock(&pt__log_mu);
  if (pt__log_file) fclose(pt__log_file);
  pt__log_file = NULL;
  pthread_mutex_unlock(&pt__log_mu);
}

void pt_log_echo(FILE *stream, pt_log_level lvl) {
  pthread_mutex_lock(&pt__log_mu);
  pt__log_echo_stream = stream;
  pt__log_echo_level = lvl;
  pthread_mutex_unlock(&pt__log_mu);
}

void pt_log(pt_log_level lvl, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (lvl < PT_LOG_DEBUG || lvl > PT_LOG_ERROR) lvl = PT_LOG_ERROR;
  pthread_mutex_lock(&pt__log_mu);
  if (pt__log_file) {
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(pt__log_file, "%s.%03ld %-5s %s\n", when, ts.tv_nsec / 1000000L, pt__level_names[lvl], msg);
    fflush(pt__log_file);
  }
  if (pt__log_echo_stream && lvl >= pt__log_echo_level) fprintf(pt__log_echo_stream, "%s\n", msg);
  pthread_mutex_unlock(&pt__log_mu);
}
