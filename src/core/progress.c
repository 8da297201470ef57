#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "predtuner/log.h"

void pt_progress_begin(pt_progress *p, FILE *out, const char *label, int64_t total) {
  memset(p, 0, sizeof *p);
  p->out = out;
  snprintf(p->label, sizeof p->label, "%s", label ? label : "");
  p->total = total > 0 ? total : 0;
  p->t0 = p->last = pt_now();
  p->period = 5.0;
  p->tty = out && isatty(fileno(out));
}

static void pt__progress_draw(pt_progress *p, double now, int final) {
  double el = now - p->t0;
  double rate = el > 0 ? (double)p->done / el : 0.0;
  double frac = p->total ? (double)p->done / (double)p->total : 1.0;
  if (frac > 1) frac = 1;
  double eta = (rate > 0 && p->total > p->done) ? (double)(p->total - p->done) / rate : 0.0;
  if (p->tty) {
    char bar[31];
    int fill = (int)(frac * 30.0);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(p->out, "\r%s [%s] %3d%% %lld/%lld %.1f/s %s %.0fs%s", p->label, bar, (int)(frac * 100.0),
            (long long)p->done, (long long)p->total, rate, final ? "took" : "eta", final ? el : eta,
            final ? "\n" : "  ");
  } else {
    fprintf(p->out, "%s: %lld/%lld (%d%%), %.1f/s, %.1fs elapsed%s\n", p->label, (long long)p->done,
            (long long)p->total, (int)(frac * 100.0), rate, el, final ? ", done" : "");
  }
  fflush(p->out);
}

void pt_progress_update(pt_progress *p, int64_t done) {
  p->done = done;
  if (!p->out) return;
  double now = pt_now();
  double gap = p->tty ? 0.1 : p->period;
  if (now - p->last >= gap) {
    p->last = now;
    pt__progress_draw(p, now, 0);
  }
}

void pt_progress_end(pt_progress *p) {
  if (!p->out) return;
  pt__progress_draw(p, pt_now(), 1);
}
