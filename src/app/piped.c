/* The piped-binary app (docs/tune-binary.md): an HPVM-compiled program started once and driven through two
 * FIFOs. Per measurement: the config as HPVM config text into conf_path, "tune" or "test" into the
 * binary's read FIFO, its output tensors read from its write FIFO to EOF, the QoS from the file
 * final_accuracy in its folder (then deleted). The child dies with the tuner (PR_SET_PDEATHSIG) and
 * is stopped when the app is freed. */

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/app_internal.h"
#include "app/piped_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "io/hpvm_text.h"
#include "predtuner/io.h"
#include "predtuner/knobs.h"
#include "predtuner/measure.h"

typedef struct piped_ctx {
  pt__pmeta meta;
  char *binary, *workdir, *qos_file;
  pid_t pid;
  int exited;      /* the child is gone (reaped) */
  int status;      /* its wait status when exited */
  double timeout;  /* seconds per measurement */
  int32_t *labels; /* tune labels */
  int64_t n_labels;
  int *knob_of;    /* (n_entries) metadata knob index of each app entry */
  uint16_t *zeros;
} piped_ctx;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Reaps the child if it exited; returns 1 when it is gone. */
static int child_gone(piped_ctx *c) {
  if (c->exited) return 1;
  if (c->pid <= 0) return 1;
  int st;
  pid_t r = waitpid(c->pid, &st, WNOHANG);
  if (r == c->pid || (r < 0 && errno == ECHILD)) {
    c->exited = 1;
    c->status = r == c->pid ? st : 0;
    return 1;
  }
  return 0;
}

static pt_status died(const pt_app *app, const piped_ctx *c, const char *when) {
  if (WIFEXITED(c->status))
    return pt__error(PT_EIO, "app %s: binary %s exited with status %d %s", app->name, c->binary, WEXITSTATUS(c->status), when);
  if (WIFSIGNALED(c->status))
    return pt__error(PT_EIO, "app %s: binary %s was killed by signal %d %s", app->name, c->binary, WTERMSIG(c->status), when);
  return pt__error(PT_EIO, "app %s: binary %s is not running %s", app->name, c->binary, when);
}

static void stop_child(piped_ctx *c) {
  if (c->pid <= 0 || child_gone(c)) return;
  kill(c->pid, SIGTERM);
  for (int i = 0; i < 200 && !child_gone(c); i++) usleep(10000); /* up to 2 s to exit cleanly */
  if (!child_gone(c)) {
    kill(c->pid, SIGKILL);
    int st;
    if (waitpid(c->pid, &st, 0) == c->pid) c->exited = 1, c->status = st;
  }
}

static pt_status make_fifo(const char *path, const char *name) {
  struct stat st;
  if (lstat(path, &st) == 0 && unlink(path) != 0)
    return pt__error(PT_EIO, "%s: cannot replace the existing %s: %s", path, name, strerror(errno));
  if (mkfifo(path, 0600) != 0) return pt__error(PT_EIO, "%s: cannot create the %s FIFO: %s", path, name, strerror(errno));
  return PT_OK;
}

static pt_status start_child(pt_app *app, piped_ctx *c) {
  PT__TRY(make_fifo(c->meta.fifo_path_r, "binary's read (fifo_path_r)"));
  PT__TRY(make_fifo(c->meta.fifo_path_w, "binary's write (fifo_path_w)"));
  /* a write to a FIFO whose reader died must be an error here, not a fatal signal */
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) return pt__error(PT_EIO, "app %s: cannot start %s: %s", app->name, c->binary, strerror(errno));
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the tuner, even when it crashes */
    if (getppid() != parent) _exit(127);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDOUT_FILENO);
    signal(SIGPIPE, SIG_DFL);
    if (chdir(c->workdir) != 0) _exit(126);
    execl(c->binary, c->binary, (char *)NULL);
    _exit(127);
  }
  c->pid = pid;
  return PT_OK;
}

/* Opens path for writing once the binary has opened it for reading. */
static pt_status open_writer(pt_app *app, piped_ctx *c, const char *path, double deadline, int *fd) {
  for (;;) {
    *fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (*fd >= 0) break;
    if (errno == ENOENT) return pt__error(PT_EIO, "%s: the FIFO is gone (fifo_path_r)", path);
    if (errno != ENXIO) return pt__error(PT_EIO, "%s: cannot open the FIFO: %s", path, strerror(errno));
    if (child_gone(c)) return died(app, c, "before reading its command");
    if (now() > deadline) return pt__error(PT_EIO, "app %s: the binary did not open %s within %g s", app->name, path, c->timeout);
    usleep(1000);
  }
  int fl = fcntl(*fd, F_GETFL);
  if (fl >= 0) fcntl(*fd, F_SETFL, fl & ~O_NONBLOCK);
  return PT_OK;
}

/* Reads path (the binary's write FIFO) until the binary closes it. */
static pt_status read_all(pt_app *app, piped_ctx *c, const char *path, double deadline, uint8_t **out, size_t *len) {
  *out = NULL;
  *len = 0;
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return pt__error(PT_EIO, "%s: cannot open the FIFO: %s (fifo_path_w)", path, strerror(errno));
  size_t cap = 1 << 16;
  uint8_t *buf = pt__malloc(cap);
  int seen_writer = 0;
  pt_status s = buf ? PT_OK : pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  while (s == PT_OK) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, 50);
    if (r < 0 && errno != EINTR) {
      s = pt__error(PT_EIO, "%s: poll: %s", path, strerror(errno));
      break;
    }
    if (r > 0 && (p.revents & (POLLIN | POLLHUP))) {
      if (*len == cap) {
        uint8_t *nb = pt__realloc(buf, cap * 2);
        if (!nb) {
          s = pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
          break;
        }
        buf = nb;
        cap *= 2;
      }
      ssize_t k = read(fd, buf + *len, cap - *len);
      if (k > 0) {
        *len += (size_t)k;
        seen_writer = 1;
        continue;
      }
      if (k == 0 && (seen_writer || (p.revents & POLLHUP))) break; /* the writer closed: EOF */
      if (k < 0 && errno != EAGAIN && errno != EINTR) {
        s = pt__error(PT_EIO, "%s: read: %s", path, strerror(errno));
        break;
      }
    }
    if (child_gone(c)) {
      s = died(app, c, *len ? "while writing its output" : "before writing its output");
      break;
    }
    if (now() > deadline) {
      s = pt__error(PT_EIO, "app %s: no complete answer from the binary within %g s (--timeout)", app->name, c->timeout);
      break;
    }
    if (r == 0 || !(p.revents & POLLIN)) usleep(r == 0 ? 0 : 1000);
  }
  close(fd);
  if (s != PT_OK) free(buf);
  else *out = buf;
  return s;
}

/* Waits briefly for final_accuracy (the binary may write it just after closing its FIFO), reads and
 * deletes it. */
static pt_status read_qos(pt_app *app, piped_ctx *c, double *qos) {
  double until = now() + 2.0;
  FILE *f = NULL;
  while (!(f = fopen(c->qos_file, "r")) && now() < until && !child_gone(c)) usleep(2000);
  if (!f) {
    if (child_gone(c)) return died(app, c, "before writing final_accuracy");
    return pt__error(PT_EIO, "%s: the binary wrote no final_accuracy file", c->qos_file);
  }
  char text[128] = "";
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  unlink(c->qos_file); /* a stale file must never be read for the next config */
  char *end;
  double v = strtod(text, &end);
  while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
  if (end == text || *end || !isfinite(v))
    return pt__error(PT_EFORMAT, "%s: final_accuracy holds '%.40s', not a number", c->qos_file, text);
  if (v < 0 || v > 100)
    return pt__error(PT_ERANGE, "%s: final_accuracy %g is not an accuracy in [0, 100]", c->qos_file, v);
  *qos = v;
  return PT_OK;
}

/* One run of the binary on config cfg (one knob position per op). */
static pt_status run_once(pt_app *app, const uint16_t *cfg, int test, double *qos, float **out, int64_t *rows,
                          int64_t *cols, double *seconds) {
  piped_ctx *c = app->ctx;
  if (child_gone(c)) { /* it died on an earlier config (a failed config): a fresh one for this */
    died(app, c, "after the previous config");
    pt_log(PT_LOG_WARN, "%s; starting it again", pt_last_error());
    c->exited = 0;
    c->pid = 0;
    PT__TRY(start_child(app, c));
  }
  const char **knobs = pt__malloc((size_t)app->n_ops * sizeof *knobs);
  if (!knobs) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  for (int op = 0; op < app->n_ops; op++) knobs[op] = app->entry_knob[app->entry_off[op] + cfg[op]];
  char *text;
  size_t len;
  pt_status s = pt__hpvm_config_text(app->n_ops, app->op_names, knobs, &text, &len);
  free(knobs);
  if (s != PT_OK) return s;
  double t0 = now(), deadline = t0 + c->timeout;
  unlink(c->qos_file);
  s = pt_write_file_atomic(c->meta.conf_path, text, len);
  free(text);
  int fd = -1;
  if (s == PT_OK) s = open_writer(app, c, c->meta.fifo_path_r, deadline, &fd);
  if (s == PT_OK) {
    const char *cmd = test ? "test" : "tune";
    ssize_t w = write(fd, cmd, 4);
    close(fd);
    if (w != 4) s = child_gone(c) ? died(app, c, "while reading its command")
                                  : pt__error(PT_EIO, "%s: cannot write the command: %s", c->meta.fifo_path_r, strerror(errno));
  }
  uint8_t *bytes = NULL;
  size_t nbytes = 0;
  if (s == PT_OK) s = read_all(app, c, c->meta.fifo_path_w, deadline, &bytes, &nbytes);
  float *data = NULL;
  int64_t r = 0, k = 0;
  if (s == PT_OK) s = pt__parse_hpvm_tensors(bytes, nbytes, c->meta.fifo_path_w, &data, &r, &k);
  free(bytes);
  int64_t bad = s == PT_OK ? pt_count_nonfinite(data, r * k) : 0; /* its accuracy cannot be right then */
  if (bad)
    s = pt__error(PT_ENONFINITE, "app %s: the binary's output holds %lld NaN or infinite values", app->name,
                  (long long)bad);
  if (s == PT_OK) s = read_qos(app, c, qos);
  if (seconds) *seconds = now() - t0;
  if (s != PT_OK) stop_child(c); /* it may be hung or out of step with the protocol: the next config restarts it */
  if (s == PT_OK && out) {
    *out = data;
    *rows = r;
    *cols = k;
  } else {
    free(data);
  }
  return s;
}

static pt_status piped_measure(pt_app *app, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  piped_ctx *c = app->ctx;
  for (int i = 0; i < n; i++) {
    double sec;
    PT__TRY(run_once(app, cfgs ? cfgs + (size_t)i * app->n_ops : c->zeros, test, &qos[i], NULL, NULL, NULL, &sec));
    if (cost) cost[i] = sec;
  }
  return PT_OK;
}

/* One run of the binary per change (it shares nothing between configs). */
static pt_status piped_outputs(pt_app *app, int n, const int *op, const int *pos, float *const *out, pt_progress *prog,
                               int64_t done) {
  piped_ctx *c = app->ctx;
  uint16_t *cfg = pt__malloc((size_t)app->n_ops * sizeof *cfg);
  if (!cfg) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  pt_status s = PT_OK;
  for (int k = 0; s == PT_OK && k < n; k++) {
    memcpy(cfg, c->zeros, (size_t)app->n_ops * sizeof *cfg);
    if (op[k] >= 0) cfg[op[k]] = (uint16_t)pos[k];
    double q;
    float *data = NULL;
    int64_t r, cols;
    s = run_once(app, cfg, 0, &q, &data, &r, &cols, NULL);
    if (s == PT_OK && (r != app->out_rows || cols != app->out_cols))
      s = pt__error(PT_EFORMAT, "app %s: the binary answered %lld x %lld values, %d x %d before", app->name,
                    (long long)r, (long long)cols, app->out_rows, app->out_cols);
    if (s == PT_OK) memcpy(out[k], data, (size_t)r * (size_t)cols * sizeof *data);
    free(data);
    done += app->out_rows;
    if (prog && s == PT_OK) pt_progress_update(prog, done);
  }
  free(cfg);
  return s;
}

/* One timed run of the binary over the tune set. */
static pt_status piped_time(pt_app *app, const uint16_t *cfg, double *seconds, int64_t *images) {
  piped_ctx *c = app->ctx;
  double q;
  *images = app->out_rows;
  return run_once(app, cfg ? cfg : c->zeros, 0, &q, NULL, NULL, NULL, seconds);
}

static double piped_output_qos(const pt_app *app, const float *out) {
  const piped_ctx *c = app->ctx;
  return pt_topk_accuracy(out, c->labels, app->out_rows, app->out_cols, 1);
}

static void piped_destroy(pt_app *app) {
  piped_ctx *c = app->ctx;
  if (!c) return;
  stop_child(c);
  if (c->meta.fifo_path_r) unlink(c->meta.fifo_path_r);
  if (c->meta.fifo_path_w) unlink(c->meta.fifo_path_w);
  pt__pmeta_free(&c->meta);
  free(c->binary);
  free(c->workdir);
  free(c->qos_file);
  free(c->labels);
  free(c->knob_of);
  free(c->zeros);
  free(c);
}

static const pt__app_vt PIPED_VT = {
    .measure = piped_measure,
    .outputs = piped_outputs,
    .time = piped_time,
    .output_qos = piped_output_qos,
    .destroy = piped_destroy,
};

static pt_status load_labels(piped_ctx *c) {
  void *d;
  size_t len;
  PT__TRY(pt__map_file(c->meta.tune_labels_path, &d, &len));
  pt_status s = PT_OK;
  if (len == 0 || len % 4) s = pt__error(PT_EFORMAT, "%s: %zu bytes is not a whole number of int32 labels", c->meta.tune_labels_path, len);
  else if (!(c->labels = pt__malloc(len))) s = pt__error(PT_ENOMEM, "%s: out of memory", c->meta.tune_labels_path);
  else memcpy(c->labels, d, len), c->n_labels = (int64_t)(len / 4);
  pt__unmap_file(d, len);
  return s;
}

/* Per op: the baseline knob first (the highest baseline_priority of all knobs in use, as PredTuner;
 * HPVM's fp32 "11" when none has one), added to ops that lack it; knobs not for target dropped. */
static pt_status build_tables(pt_app *app, piped_ctx *c, unsigned target) {
  const pt__pmeta *m = &c->meta;
  int base = -1;
  for (int o = 0; o < m->n_ops; o++)
    for (int j = 0; j < m->ops[o].n_knobs; j++) {
      int k = m->ops[o].knobs[j];
      if (m->knobs[k].has_priority && (base < 0 || m->knobs[k].priority > m->knobs[base].priority)) base = k;
    }
  if (base < 0)
    for (int k = 0; k < m->n_knobs; k++)
      if (!strcmp(m->knobs[k].name, "11")) base = k;
  if (base < 0)
    return pt__error(PT_EFORMAT, "app %s: no knob has a \"baseline_priority\" and there is no knob \"11\": which knob is exact?",
                     app->name);
  int n_entries = 0;
  for (int o = 0; o < m->n_ops; o++) n_entries += m->ops[o].n_knobs + 1;
  PT__TRY(pt__app_alloc(app, m->n_ops, n_entries));
  if (!(c->knob_of = pt__calloc((size_t)n_entries, sizeof *c->knob_of))) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
  int e = 0;
  for (int o = 0; o < m->n_ops; o++) {
    app->entry_off[o] = e;
    if (!(app->op_names[o] = pt__strdup(m->ops[o].name))) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
    app->op_cost[o] = m->ops[o].cost;
    c->knob_of[e++] = base;
    for (int j = 0; j < m->ops[o].n_knobs; j++) {
      int k = m->ops[o].knobs[j];
      if (k == base || (target && m->knobs[k].devices && !(m->knobs[k].devices & target))) continue;
      c->knob_of[e++] = k;
    }
    app->n_knobs[o] = e - app->entry_off[o];
    for (int i = app->entry_off[o]; i < e; i++) {
      if (!(app->entry_knob[i] = pt__strdup(m->knobs[c->knob_of[i]].name))) return pt__error(PT_ENOMEM, "app %s: out of memory", app->name);
      app->entry_speedup[i] = m->knobs[c->knob_of[i]].speedup;
    }
  }
  app->entry_off[m->n_ops] = e;
  app->n_entries = e;
  return PT_OK;
}

pt_status pt_app_piped_create(const pt_piped_app_opts *o, pt_app **out) {
  *out = NULL;
  if (!o || !o->binary || !o->metadata) return pt__error(PT_EINVAL, "piped-binary app: needs a binary and a metadata file");
  char *rb = realpath(o->binary, NULL);
  struct stat st;
  if (!rb || stat(rb, &st) != 0 || !S_ISREG(st.st_mode) || access(rb, X_OK) != 0) {
    free(rb);
    return pt__error(PT_ENOTFOUND, "%s: not an executable file", o->binary);
  }
  pt_app *app = pt__calloc(1, sizeof *app);
  piped_ctx *c = pt__calloc(1, sizeof *c);
  if (!app || !c) {
    free(app), free(c), free(rb);
    return pt__error(PT_ENOMEM, "piped-binary app: out of memory");
  }
  app->vt = &PIPED_VT;
  app->ctx = c;
  c->binary = rb;
  c->timeout = o->timeout_s > 0 ? o->timeout_s : 600;
  char *tmp = pt__strdup(rb);
  c->workdir = tmp ? pt__strdup(dirname(tmp)) : NULL;
  free(tmp);
  const char *bn = strrchr(rb, '/') ? strrchr(rb, '/') + 1 : rb;
  snprintf(app->name, sizeof app->name, "%s", o->name && o->name[0] ? o->name : bn);
  pt_status s = c->workdir ? PT_OK : pt__error(PT_ENOMEM, "piped-binary app: out of memory");
  if (s == PT_OK) {
    size_t n = strlen(c->workdir) + 32;
    if ((c->qos_file = pt__malloc(n))) snprintf(c->qos_file, n, "%s/final_accuracy", c->workdir);
    else s = pt__error(PT_ENOMEM, "piped-binary app: out of memory");
  }
  /* the metadata's relative paths are relative to its own folder */
  char *mdir = NULL, *mtmp = pt__strdup(o->metadata);
  if (mtmp) mdir = pt__strdup(dirname(mtmp));
  free(mtmp);
  void *text = NULL;
  size_t len = 0;
  if (s == PT_OK) s = pt__map_file(o->metadata, &text, &len);
  if (s == PT_OK) s = pt__pmeta_parse(text ? text : "", len, o->metadata, mdir, &c->meta);
  pt__unmap_file(text, len);
  free(mdir);
  int target = 0;
  if (s == PT_OK && o->target_device && (target = pt_device_parse(o->target_device)) < 0)
    s = pt__error(PT_EINVAL, "target device '%s': expected cpu, gpu or any", o->target_device);
  if (s == PT_OK) s = build_tables(app, c, (unsigned)target);
  if (s == PT_OK) {
    char **names = app->op_names; /* op names must be HPVM's: check before starting anything */
    char *t;
    size_t tl;
    const char **bk = pt__calloc((size_t)app->n_ops, sizeof *bk);
    if (!bk) s = pt__error(PT_ENOMEM, "piped-binary app: out of memory");
    for (int i = 0; s == PT_OK && i < app->n_ops; i++) bk[i] = app->entry_knob[app->entry_off[i]];
    if (s == PT_OK) s = pt__hpvm_config_text(app->n_ops, names, bk, &t, &tl);
    if (s == PT_OK) free(t);
    else pt__error_prefix("%s", o->metadata);
    free(bk);
  }
  if (s == PT_OK) s = load_labels(c);
  if (s == PT_OK && !(c->zeros = pt__calloc((size_t)app->n_ops, sizeof *c->zeros))) s = pt__error(PT_ENOMEM, "out of memory");
  if (s == PT_OK) s = start_child(app, c);
  /* a first run: checks the protocol end to end and gives P1 the output shape */
  float *data = NULL;
  int64_t rows = 0, cols = 0;
  double q;
  if (s == PT_OK) s = run_once(app, c->zeros, 0, &q, &data, &rows, &cols, NULL);
  free(data);
  if (s == PT_OK && rows != c->n_labels)
    s = pt__error(PT_ESHAPE, "app %s: the binary answered %lld rows, %s holds %lld labels", app->name, (long long)rows,
                  c->meta.tune_labels_path, (long long)c->n_labels);
  if (s == PT_OK && (rows > INT32_MAX || cols > INT32_MAX || cols < 1))
    s = pt__error(PT_ESHAPE, "app %s: output of %lld x %lld values", app->name, (long long)rows, (long long)cols);
  if (s != PT_OK) {
    pt_app_free(app);
    return s;
  }
  app->out_rows = (int)rows;
  app->out_cols = (int)cols;
  app->out_labels = c->labels;
  snprintf(app->knobs_source, sizeof app->knobs_source, "%s", o->metadata);
  snprintf(app->target, sizeof app->target, "%s", target ? pt_device_name((unsigned)target) : "any");
  app->qos_percent = 1;
  app->fp[PT__FP_GRAPH] = pt__fp_ops(app);
  app->fp[PT__FP_WEIGHTS] = pt__fp_file(c->binary);
  app->fp[PT__FP_TUNE] = pt__fp_file(c->meta.tune_labels_path);
  app->fp[PT__FP_KNOBS] = pt__fp_space(app);
  app->fp[PT__FP_DEVICE] = pt__fp_text(app->target);
  snprintf(app->desc, sizeof app->desc, "piped binary %s: %d ops, %d knob choices, %lld tune labels, output %lld x %lld",
           c->binary, app->n_ops, app->n_entries, (long long)c->n_labels, (long long)rows, (long long)cols);
  *out = app;
  return PT_OK;
}
