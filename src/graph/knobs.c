/* Knob sets: the container, the built-in default set (the same 56 knobs as PredTuner's
 * default_approx_params.json), class and device names. Knob files are parsed in io/knobfile.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/knobset.h"

static const char *const CLASS_NAMES[] = {"FP32Baseline", "FP16Approx", "PerforateConv2dStride", "Conv2dSampling",
                                              "PromiseSim"};

const char *pt_knob_class_name(pt_knob_class c) {
  return (c >= PT_KNOB_FP32 && c <= PT_KNOB_PROMISE) ? CLASS_NAMES[c] : "unknown";
}

void pt_knobs_free(pt_knob_set *ks) {
  if (!ks) return;
  free(ks->k);
  free(ks);
}
int pt_knobs_count(const pt_knob_set *ks) { return ks->n; }
const pt_knob *pt_knobs_at(const pt_knob_set *ks, int i) { return &ks->k[i]; }
int pt_knobs_find(const pt_knob_set *ks, const char *name) {
  for (int i = 0; i < ks->n; i++)
    if (!strcmp(ks->k[i].name, name)) return i;
  return -1;
}

pt_status pt__knobs_append(pt_knob_set *ks, const pt_knob *k) {
  if (ks->n == ks->cap) {
    int cap = ks->cap ? 2 * ks->cap : 64;
    pt_knob *nk = pt__realloc(ks->k, (size_t)cap * sizeof *nk);
    if (!nk) return pt__error(PT_ENOMEM, "knobs: out of memory");
    ks->k = nk;
    ks->cap = cap;
  }
  ks->k[ks->n++] = *k;
  return PT_OK;
}

/* ---- the default set ---- */

pt_status pt_knobs_default(pt_knob_set **out) {
  pt_knob_set *ks = pt__calloc(1, sizeof *ks);
  if (!ks) return pt__error(PT_ENOMEM, "knobs: out of memory");
  pt_status s = PT_OK;
  pt_knob k;
  memset(&k, 0, sizeof k);
  snprintf(k.name, sizeof k.name, "11");
  k.cls = PT_KNOB_FP32;
  k.exp_speedup = 1.0;
  k.devices = PT_DEVICE_CPU;
  k.has_priority = 1;
  k.baseline_priority = 1;
  s = pt__knobs_append(ks, &k);
  memset(&k, 0, sizeof k);
  snprintf(k.name, sizeof k.name, "12");
  k.cls = PT_KNOB_FP16;
  k.exp_speedup = 1.5;
  k.devices = PT_DEVICE_GPU;
  k.has_priority = 1;
  k.baseline_priority = 0;
  if (s == PT_OK) s = pt__knobs_append(ks, &k);
  static const double speedup[5] = {0, 0, 3.0, 2.25, 2.0};
  /* gpu (fp16) perforation 151..168 and sampling 261..269, then cpu (fp32) 121..138 and 231..239 */
  for (int fp16 = 1; fp16 >= 0 && s == PT_OK; fp16--) {
    int name = fp16 ? 151 : 121;
    for (int stride = 2; stride <= 4; stride++)
      for (int row = 0; row <= 1; row++)
        for (int off = 0; off < stride && s == PT_OK; off++) {
          memset(&k, 0, sizeof k);
          snprintf(k.name, sizeof k.name, "%d", name++);
          k.cls = PT_KNOB_PERFORATE;
          k.perf_dir = row ? PT_PERF_ROWS : PT_PERF_COLS;
          k.stride = stride;
          k.offset = off;
          k.use_fp16 = fp16;
          k.exp_speedup = speedup[stride];
          k.devices = fp16 ? PT_DEVICE_GPU : PT_DEVICE_CPU;
          s = pt__knobs_append(ks, &k);
        }
    name = fp16 ? 261 : 231;
    for (int every = 2; every <= 4; every++)
      for (int off = 0; off < every && s == PT_OK; off++) {
        memset(&k, 0, sizeof k);
        snprintf(k.name, sizeof k.name, "%d", name++);
        k.cls = PT_KNOB_SAMPLING;
        k.skip_every = every;
        k.skip_offset = off;
        k.interp_rate = 1.0;
        k.use_fp16 = fp16;
        k.exp_speedup = speedup[every];
        k.devices = fp16 ? PT_DEVICE_GPU : PT_DEVICE_CPU;
        s = pt__knobs_append(ks, &k);
      }
  }
  if (s != PT_OK) {
    pt_knobs_free(ks);
    return s;
  }
  *out = ks;
  return PT_OK;
}

int pt_device_parse(const char *s) {
  if (!strcmp(s, "cpu")) return (int)PT_DEVICE_CPU;
  if (!strcmp(s, "gpu")) return (int)PT_DEVICE_GPU;
  if (!strcmp(s, "any")) return 0;
  return -1;
}

const char *pt_device_name(unsigned d) { return d == PT_DEVICE_CPU ? "cpu" : d == PT_DEVICE_GPU ? "gpu" : "any"; }
