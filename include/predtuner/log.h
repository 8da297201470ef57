/* Logging to a file with timestamps, and progress reporting for long work. */
#ifndef PREDTUNER_LOG_H
#define PREDTUNER_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum pt_log_level { PT_LOG_DEBUG = 0, PT_LOG_INFO, PT_LOG_WARN, PT_LOG_ERROR } pt_log_level;

/* Appends to path ("2026-11-23 22:10:05.123 INFO  message" lines). One log per process. */
pt_status pt_log_open(const char *path);
void pt_log_close(void);
/* Also echo messages at or above lvl to stream (the CLI passes stderr); NULL turns echo off. */
void pt_log_echo(FILE *stream, pt_log_level lvl);
void pt_log(pt_log_level lvl, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Seconds on a monotonic clock. */
double pt_now(void);

/* A progress reporter: a redrawn bar when `out` is a terminal, otherwise a plain line at most
 * every `period` seconds (and one at the end). out == NULL makes it silent. */
typedef struct pt_progress {
  FILE *out;
  char label[48];
  int64_t total, done;
  double t0, last;
  double period; /* seconds between plain lines (default 5) */
  int tty;
} pt_progress;

void pt_progress_begin(pt_progress *p, FILE *out, const char *label, int64_t total);
void pt_progress_update(pt_progress *p, int64_t done);
void pt_progress_end(pt_progress *p);

#ifdef __cplusplus
}
#endif
#endif
