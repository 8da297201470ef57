/* Fingerprints (docs/design.md, "Fingerprints"): what stored models and journals were made from, so
 * that none is used with inputs it was not made from. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"
#include "core/error.h"
#include "core/hash.h"
#include "io/fileutil.h"
#include "predtuner/log.h"

static const char *const PART_NAMES[PT__FP_N] = {"graph", "weights", "tune_data", "test_data",
                                                 "knobs", "target_device", "backend", "measure"};
/* How a message names a part: "it does not match this run's weights" */
static const char *const PART_WORDS[PT__FP_N] = {"network",        "weights", "tune data", "test data",
                                                 "knob set",       "target device", "backend",
                                                 "batch size or PromiseSim settings"};

void pt__fp_format_parts(const uint64_t *fp, unsigned mask, char *buf, size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  for (int p = 0; p < PT__FP_N && at < n; p++) {
    if (!(mask & PT__FP(p)) || !fp[p]) continue;
    at += (size_t)snprintf(buf + at, n - at, "%s%s=%016" PRIx64, at ? "," : "", PART_NAMES[p], fp[p]);
  }
}

void pt__fp_format(const pt_app *app, unsigned mask, char *buf, size_t n) { pt__fp_format_parts(app->fp, mask, buf, n); }

/* The value stored for part p in s ("name=hex,..."), 0 when s has none. */
static uint64_t stored_part(const char *s, int p) {
  size_t k = strlen(PART_NAMES[p]);
  for (const char *q = s; q && *q; q = strchr(q, ',') ? strchr(q, ',') + 1 : NULL)
    if (!strncmp(q, PART_NAMES[p], k) && q[k] == '=') return strtoull(q + k + 1, NULL, 16);
  return 0;
}

pt_status pt__fp_check(const pt_app *app, unsigned mask, const char *stored, const char *file, const char *way_out) {
  return pt__fp_check_parts(app->fp, mask, stored, file, way_out);
}

pt_status pt__fp_check_parts(const uint64_t *fp, unsigned mask, const char *stored, const char *file,
                             const char *way_out) {
  if (!stored || !stored[0]) {
    pt_log(PT_LOG_WARN, "%s: no fingerprint (written by PredTuner or predtuner-gpu 0.1): cannot check that it was made "
                        "from this run's inputs", file);
    return PT_OK;
  }
  char what[256] = "";
  size_t at = 0;
  for (int p = 0; p < PT__FP_N; p++) {
    if (!(mask & PT__FP(p)) || !fp[p] || stored_part(stored, p) == fp[p]) continue;
    at += (size_t)snprintf(what + at, at < sizeof what ? sizeof what - at : 0, "%s%s", at ? ", " : "", PART_WORDS[p]);
  }
  if (!what[0]) return PT_OK;
  return pt__error(PT_ESTALE, "%s: made from other inputs: it does not match this run's %s; %s", file, what, way_out);
}

uint64_t pt__fp_space(const pt_app *app) {
  uint64_t h = PT__HASH_INIT;
  for (int op = 0; op < app->n_ops; op++) {
    h = pt__hash_str(h, app->op_names[op]);
    for (int k = 0; k < app->n_knobs[op]; k++) {
      int e = app->entry_off[op] + k;
      h = pt__hash_f64(pt__hash_str(h, app->entry_knob[e]), app->entry_speedup[e]);
    }
  }
  return pt__hash_final(h);
}

uint64_t pt__fp_file(const char *path) {
  void *data = NULL;
  size_t len = 0;
  if (pt__map_file(path, &data, &len) != PT_OK) return 0;
  uint64_t h = pt__hash_final(pt__hash_bytes(PT__HASH_INIT, data, len));
  pt__unmap_file(data, len);
  return h;
}

uint64_t pt__fp_ops(const pt_app *app) {
  uint64_t h = PT__HASH_INIT;
  for (int op = 0; op < app->n_ops; op++) h = pt__hash_f64(pt__hash_str(h, app->op_names[op]), app->op_cost[op]);
  return pt__hash_final(h);
}

uint64_t pt__fp_text(const char *s) { return s && s[0] ? pt__hash_final(pt__hash_str(PT__HASH_INIT, s)) : 0; }
