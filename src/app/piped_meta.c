/* Metadata of a piped binary and the tensors it answers with (see piped_internal.h). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/piped_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/app.h"
#include "predtuner/knobs.h"
#include "predtuner/tensor.h"

void pt__pmeta_free(pt__pmeta *m) {
  for (int i = 0; m->ops && i < m->n_ops; i++) {
    free(m->ops[i].name);
    free(m->ops[i].knobs);
  }
  for (int i = 0; m->knobs && i < m->n_knobs; i++) free(m->knobs[i].name);
  free(m->ops);
  free(m->knobs);
  free(m->tune_labels_path);
  free(m->conf_path);
  free(m->fifo_path_r);
  free(m->fifo_path_w);
  memset(m, 0, sizeof *m);
}

static char *resolve(const char *dir, const char *p) {
  size_t n = strlen(p) + (dir ? strlen(dir) : 0) + 2;
  char *r = pt__malloc(n);
  if (!r) return NULL;
  if (p[0] == '/' || !dir || !dir[0]) snprintf(r, n, "%s", p);
  else snprintf(r, n, "%s/%s", dir, p);
  return r;
}

static pt_status get_path(const cJSON *root, const char *key, const char *src, const char *dir, char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
  if (!cJSON_IsString(v) || !v->valuestring[0])
    return pt__error(PT_EFORMAT, "%s: \"%s\" must be a non-empty string (a path)", src, key);
  if (!(*out = resolve(dir, v->valuestring))) return pt__error(PT_ENOMEM, "%s: out of memory", src);
  return PT_OK;
}

static int find_knob(const pt__pmeta *m, const char *name) {
  for (int i = 0; i < m->n_knobs; i++)
    if (!strcmp(m->knobs[i].name, name)) return i;
  return -1;
}

static pt_status parse(const cJSON *root, const char *src, const char *dir, pt__pmeta *m) {
  if (!cJSON_IsObject(root)) return pt__error(PT_EFORMAT, "%s: not a JSON object", src);
  const cJSON *cost = cJSON_GetObjectItemCaseSensitive(root, "op_cost"),
              *opk = cJSON_GetObjectItemCaseSensitive(root, "op_knobs"),
              *knobs = cJSON_GetObjectItemCaseSensitive(root, "knobs");
  if (!cJSON_IsObject(cost)) return pt__error(PT_EFORMAT, "%s: \"op_cost\" must be an object {op: cost}", src);
  if (!cJSON_IsObject(opk)) return pt__error(PT_EFORMAT, "%s: \"op_knobs\" must be an object {op: [knob names]}", src);
  if (!cJSON_IsObject(knobs)) return pt__error(PT_EFORMAT, "%s: \"knobs\" must be an object {name: {\"speedup\": x}}", src);
  /* knobs */
  int nk = cJSON_GetArraySize(knobs);
  if (!(m->knobs = pt__calloc((size_t)nk + 1, sizeof *m->knobs))) return pt__error(PT_ENOMEM, "%s: out of memory", src);
  for (const cJSON *k = knobs->child; k; k = k->next) {
    pt__pmeta_knob *kn = &m->knobs[m->n_knobs];
    if (!k->string || !k->string[0]) return pt__error(PT_EFORMAT, "%s: a knob without a name", src);
    if (find_knob(m, k->string) >= 0) return pt__error(PT_EFORMAT, "%s: knob '%s' defined twice", src, k->string);
    if (!(kn->name = pt__strdup(k->string))) return pt__error(PT_ENOMEM, "%s: out of memory", src);
    m->n_knobs++;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(k, "speedup"),
                *pr = cJSON_GetObjectItemCaseSensitive(k, "baseline_priority"),
                *dv = cJSON_GetObjectItemCaseSensitive(k, "devices");
    if (!cJSON_IsObject(k) || !cJSON_IsNumber(sp) || !(sp->valuedouble > 0) || sp->valuedouble > 1e12)
      return pt__error(PT_EFORMAT, "%s: knob '%s' needs a \"speedup\" > 0", src, k->string);
    kn->speedup = sp->valuedouble;
    if (pr && !cJSON_IsNull(pr)) {
      if (!cJSON_IsNumber(pr) || !(fabs(pr->valuedouble) <= 1e9) || pr->valuedouble != (double)(long)pr->valuedouble)
        return pt__error(PT_EFORMAT, "%s: knob '%s': \"baseline_priority\" must be an integer", src, k->string);
      kn->has_priority = 1;
      kn->priority = (long)pr->valuedouble;
    }
    if (dv && !cJSON_IsNull(dv)) {
      if (!cJSON_IsArray(dv)) return pt__error(PT_EFORMAT, "%s: knob '%s': \"devices\" must be a list", src, k->string);
      for (const cJSON *d = dv->child; d; d = d->next) {
        int bit = cJSON_IsString(d) ? pt_device_parse(d->valuestring) : -1;
        if (bit < 0) return pt__error(PT_EFORMAT, "%s: knob '%s': unknown device in \"devices\"", src, k->string);
        kn->devices |= (unsigned)bit;
      }
    }
  }
  /* ops: op_knobs order; op_cost must name the same ops */
  int no = cJSON_GetArraySize(opk);
  if (no < 1) return pt__error(PT_EFORMAT, "%s: \"op_knobs\" has no ops", src);
  if (!(m->ops = pt__calloc((size_t)no, sizeof *m->ops))) return pt__error(PT_ENOMEM, "%s: out of memory", src);
  for (const cJSON *o = opk->child; o; o = o->next) {
    pt__pmeta_op *op = &m->ops[m->n_ops];
    if (!o->string || !o->string[0]) return pt__error(PT_EFORMAT, "%s: an op without a name in \"op_knobs\"", src);
    for (int i = 0; i < m->n_ops; i++)
      if (!strcmp(m->ops[i].name, o->string)) return pt__error(PT_EFORMAT, "%s: op '%s' listed twice", src, o->string);
    if (!(op->name = pt__strdup(o->string))) return pt__error(PT_ENOMEM, "%s: out of memory", src);
    m->n_ops++;
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(cost, o->string);
    if (!c)
      return pt__error(PT_EFORMAT, "%s: op sets differ: '%s' is in \"op_knobs\" but not in \"op_cost\"", src, o->string);
    if (!cJSON_IsNumber(c) || !(c->valuedouble >= 0))
      return pt__error(PT_EFORMAT, "%s: op '%s': cost must be a number >= 0", src, o->string);
    op->cost = c->valuedouble;
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) < 1)
      return pt__error(PT_EFORMAT, "%s: op '%s': knobs must be a non-empty list of names", src, o->string);
    if (!(op->knobs = pt__calloc((size_t)cJSON_GetArraySize(o), sizeof *op->knobs)))
      return pt__error(PT_ENOMEM, "%s: out of memory", src);
    for (const cJSON *k = o->child; k; k = k->next) {
      int idx = cJSON_IsString(k) ? find_knob(m, k->valuestring) : -2;
      if (idx == -2) return pt__error(PT_EFORMAT, "%s: op '%s': knob names must be strings", src, o->string);
      if (idx < 0)
        return pt__error(PT_EFORMAT, "%s: op '%s' uses knob '%s', which \"knobs\" does not define", src, o->string,
                         k->valuestring);
      for (int j = 0; j < op->n_knobs; j++)
        if (op->knobs[j] == idx) return pt__error(PT_EFORMAT, "%s: op '%s' lists knob '%s' twice", src, o->string, k->valuestring);
      op->knobs[op->n_knobs++] = idx;
    }
  }
  for (const cJSON *c = cost->child; c; c = c->next) {
    int known = 0;
    for (int i = 0; i < m->n_ops && !known; i++) known = c->string && !strcmp(m->ops[i].name, c->string);
    if (!known)
      return pt__error(PT_EFORMAT, "%s: op sets differ: '%s' is in \"op_cost\" but not in \"op_knobs\"", src,
                       c->string ? c->string : "");
  }
  PT__TRY(get_path(root, "tune_labels_path", src, dir, &m->tune_labels_path));
  PT__TRY(get_path(root, "conf_path", src, dir, &m->conf_path));
  PT__TRY(get_path(root, "fifo_path_r", src, dir, &m->fifo_path_r));
  PT__TRY(get_path(root, "fifo_path_w", src, dir, &m->fifo_path_w));
  return PT_OK;
}

pt_status pt__pmeta_parse(const char *text, size_t len, const char *src, const char *dir, pt__pmeta *out) {
  memset(out, 0, sizeof *out);
  cJSON *root = cJSON_ParseWithLength(text, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON (truncated or garbage)", src);
  pt_status s = parse(root, src, dir, out);
  cJSON_Delete(root);
  if (s != PT_OK) pt__pmeta_free(out);
  return s;
}

static uint64_t rd64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

pt_status pt__parse_hpvm_tensors(const uint8_t *buf, size_t len, const char *src, float **data, int64_t *rows,
                                 int64_t *cols) {
  *data = NULL;
  *rows = *cols = 0;
  size_t pos = 0, total = 0;
  int64_t r = 0, c = -1;
  int n = 0;
  /* pass 1: validate and size; pass 2: copy */
  for (int pass = 0; pass < 2; pass++) {
    pos = 0;
    float *dst = pass ? *data : NULL;
    while (pos < len) {
      if (len - pos < 8) return pt__error(PT_EFORMAT, "%s: malformed tensor bytes: %zu stray bytes at the end", src, len - pos);
      uint64_t nd = rd64(buf + pos);
      if (nd < 1 || nd > 8)
        return pt__error(PT_EFORMAT, "%s: malformed tensor bytes: tensor %d has %llu dimensions (at byte %zu)", src, n,
                         (unsigned long long)nd, pos);
      if ((len - pos - 8) / 8 < nd) return pt__error(PT_EFORMAT, "%s: malformed tensor bytes: tensor %d's shape is cut off", src, n);
      uint64_t numel = 1, tail = 1;
      for (uint64_t d = 0; d < nd; d++) {
        uint64_t v = rd64(buf + pos + 8 + 8 * d);
        if (v > ((uint64_t)1 << 40) || (v && numel > ((uint64_t)1 << 40) / v))
          return pt__error(PT_EFORMAT, "%s: malformed tensor bytes: tensor %d has dimension %llu", src, n, (unsigned long long)v);
        numel *= v;
        if (d) tail *= v;
      }
      size_t data_at = pos + 8 + 8 * (size_t)nd;
      if ((len - data_at) / 4 < numel)
        return pt__error(PT_EFORMAT, "%s: malformed tensor bytes: tensor %d needs %llu floats, %zu bytes remain", src, n,
                         (unsigned long long)numel, len - data_at);
      if (!pass) {
        if (c >= 0 && (int64_t)tail != c)
          return pt__error(PT_EFORMAT, "%s: tensor %d has %llu values per row, the ones before %lld", src, n,
                           (unsigned long long)tail, (long long)c);
        c = (int64_t)tail;
        r += (int64_t)rd64(buf + pos + 8);
        total += (size_t)numel;
        n++;
      } else {
        memcpy(dst, buf + data_at, (size_t)numel * 4);
        dst += numel;
      }
      pos = data_at + (size_t)numel * 4;
    }
    if (!pass) {
      if (!n) return pt__error(PT_EFORMAT, "%s: the binary returned no tensor", src);
      if (!(*data = pt__malloc(total ? total * 4 : 4))) return pt__error(PT_ENOMEM, "%s: out of memory", src);
    }
  }
  *rows = r;
  *cols = c;
  return PT_OK;
}

/* path made absolute with its folder resolved (the file itself may not exist yet: FIFOs are made
 * at start), into out[PATH_MAX]. */
static pt_status abs_path(const char *path, char *out) {
  char dir_buf[PATH_MAX], base_buf[PATH_MAX], real[PATH_MAX];
  snprintf(dir_buf, sizeof dir_buf, "%s", path);
  snprintf(base_buf, sizeof base_buf, "%s", path);
  const char *dir = dirname(dir_buf), *base = basename(base_buf);
  if (!realpath(dir, real)) return pt__error(PT_EIO, "%s: its folder %s: %s", path, dir, strerror(errno));
  if ((size_t)snprintf(out, PATH_MAX, "%s/%s", real, base) >= PATH_MAX) return pt__error(PT_ERANGE, "%s: path too long", path);
  return PT_OK;
}

pt_status pt_app_piped_files(const pt_piped_app_opts *o, char *out, size_t n) {
  if (!o || !o->binary || !o->metadata || !out || n == 0)
    return pt__error(PT_EINVAL, "piped-binary app: a binary and a metadata file are needed");
  out[0] = '\0';
  char mdir_buf[PATH_MAX], acc[PATH_MAX + 16], p[4][PATH_MAX];
  snprintf(mdir_buf, sizeof mdir_buf, "%s", o->metadata);
  void *text = NULL;
  size_t len = 0;
  pt__pmeta m = {0};
  pt_status s = pt__map_file(o->metadata, &text, &len);
  if (s == PT_OK) s = pt__pmeta_parse(text ? text : "", len, o->metadata, dirname(mdir_buf), &m);
  pt__unmap_file(text, len);
  char real[PATH_MAX]; /* final_accuracy lives in the folder of the binary itself, links resolved (as it is started) */
  if (s == PT_OK && !realpath(o->binary, real)) s = pt__error(PT_EIO, "%s: %s", o->binary, strerror(errno));
  if (s == PT_OK) {
    char *slash = strrchr(real, '/');
    if (slash) *slash = '\0';
    snprintf(acc, sizeof acc, "%s/final_accuracy", slash ? real : ".");
  }
  const char *files[4] = {m.conf_path, m.fifo_path_r, m.fifo_path_w, NULL};
  for (int i = 0; s == PT_OK && files[i]; i++) s = abs_path(files[i], p[i]);
  if (s == PT_OK && (size_t)snprintf(out, n, "%s\n%s\n%s\n%s\n", acc, p[0], p[1], p[2]) >= n)
    s = pt__error(PT_ERANGE, "%s: the binary's file names are too long", o->metadata);
  pt__pmeta_free(&m);
  return s;
}
