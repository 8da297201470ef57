/* Knob declarations in PredTuner's JSON format, validated field by field, into a knob set. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/knobset.h"
#include "io/fileutil.h"
#include "predtuner/io.h"

/* ---- the JSON format ---- */

typedef enum { F_BOOL, F_INT, F_NUM } field_type;
typedef struct field {
  const char *key;
  field_type type;
} field;

/* Parameters each class takes besides name, class, devices and baseline_priority. */
static const field pt__fields[5][6] = {
    {{0}},
    {{"exp_speedup", F_NUM}, {0}},
    {{"direction_is_row", F_BOOL}, {"stride", F_INT}, {"offset", F_INT}, {"use_fp16", F_BOOL}, {"exp_speedup", F_NUM}, {0}},
    {{"skip_every", F_INT}, {"skip_offset", F_INT}, {"interp_rate", F_NUM}, {"use_fp16", F_BOOL}, {"exp_speedup", F_NUM}, {0}},
    {{"noise_level", F_INT}, {"exp_speedup", F_NUM}, {0}},
};

static const char *type_name(field_type t) { return t == F_BOOL ? "a boolean" : t == F_INT ? "an integer" : "a number"; }

static pt_status parse_knob(const cJSON *o, int idx, const char *src, pt_knob *k) {
  memset(k, 0, sizeof *k);
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
  if (!cJSON_IsString(nm) || !nm->valuestring[0])
    return pt__error(PT_EFORMAT, "%s: knob #%d: \"name\" is missing or not a non-empty string", src, idx);
  if (strlen(nm->valuestring) >= sizeof k->name)
    return pt__error(PT_EFORMAT, "%s: knob #%d: name longer than %zu characters", src, idx, sizeof k->name - 1);
  snprintf(k->name, sizeof k->name, "%s", nm->valuestring);
  const char *kn = k->name;
  const cJSON *cl = cJSON_GetObjectItemCaseSensitive(o, "class");
  if (!cJSON_IsString(cl)) return pt__error(PT_EFORMAT, "%s: knob '%s': \"class\" is missing or not a string", src, kn);
  int cls = -1;
  for (int c = PT_KNOB_FP32; c <= PT_KNOB_PROMISE; c++)
    if (!strcmp(cl->valuestring, pt_knob_class_name((pt_knob_class)c))) cls = c;
  if (cls < 0)
    return pt__error(PT_EFORMAT,
                     "%s: knob '%s': unknown class '%s' (known: FP32Baseline, FP16Approx, PerforateConv2dStride, "
                     "Conv2dSampling, PromiseSim)",
                     src, kn, cl->valuestring);
  k->cls = (pt_knob_class)cls;
  k->exp_speedup = 1.0;
  const field *fs = pt__fields[cls];
  for (const cJSON *it = o->child; it; it = it->next) {
    const char *key = it->string;
    if (!strcmp(key, "name") || !strcmp(key, "class")) continue;
    if (!strcmp(key, "devices")) {
      if (cJSON_IsNull(it)) continue;
      if (!cJSON_IsArray(it)) return pt__error(PT_EFORMAT, "%s: knob '%s': \"devices\" must be a list", src, kn);
      for (const cJSON *d = it->child; d; d = d->next) {
        int dev = cJSON_IsString(d) ? pt_device_parse(d->valuestring) : -1;
        if (dev <= 0)
          return pt__error(PT_EFORMAT, "%s: knob '%s': unknown device %s%s%s (expected \"cpu\" or \"gpu\")", src, kn,
                           cJSON_IsString(d) ? "'" : "", cJSON_IsString(d) ? d->valuestring : "(not a string)",
                           cJSON_IsString(d) ? "'" : "");
        k->devices |= (unsigned)dev;
      }
      continue;
    }
    if (!strcmp(key, "baseline_priority")) {
      if (cJSON_IsNull(it)) continue;
      if (!cJSON_IsNumber(it) || floor(it->valuedouble) != it->valuedouble || fabs(it->valuedouble) > 1e9)
        return pt__error(PT_EFORMAT, "%s: knob '%s': \"baseline_priority\" must be an integer", src, kn);
      k->has_priority = 1;
      k->baseline_priority = (int)it->valuedouble;
      continue;
    }
    const field *f = NULL;
    for (int j = 0; fs[j].key; j++)
      if (!strcmp(fs[j].key, key)) f = &fs[j];
    if (!f) return pt__error(PT_EFORMAT, "%s: knob '%s': %s takes no parameter '%s'", src, kn, pt_knob_class_name((pt_knob_class)cls), key);
    int ok = f->type == F_BOOL ? cJSON_IsBool(it)
             : f->type == F_INT ? cJSON_IsNumber(it) && floor(it->valuedouble) == it->valuedouble && fabs(it->valuedouble) < 1e6
                                : cJSON_IsNumber(it) && isfinite(it->valuedouble);
    if (!ok) return pt__error(PT_EFORMAT, "%s: knob '%s': parameter '%s' must be %s", src, kn, key, type_name(f->type));
    double v = f->type == F_BOOL ? (cJSON_IsTrue(it) ? 1 : 0) : it->valuedouble;
    if (!strcmp(key, "exp_speedup")) k->exp_speedup = v;
    else if (!strcmp(key, "direction_is_row")) k->perf_dir = v ? PT_PERF_ROWS : PT_PERF_COLS;
    else if (!strcmp(key, "stride")) k->stride = (int)v;
    else if (!strcmp(key, "offset")) k->offset = (int)v;
    else if (!strcmp(key, "use_fp16")) k->use_fp16 = (int)v;
    else if (!strcmp(key, "skip_every")) k->skip_every = (int)v;
    else if (!strcmp(key, "skip_offset")) k->skip_offset = (int)v;
    else if (!strcmp(key, "interp_rate")) k->interp_rate = v;
    else if (!strcmp(key, "noise_level")) k->noise_level = (int)v;
  }
  for (int j = 0; fs[j].key; j++)
    if (!cJSON_GetObjectItemCaseSensitive(o, fs[j].key))
      return pt__error(PT_EFORMAT, "%s: knob '%s': %s needs parameter '%s'", src, kn, pt_knob_class_name((pt_knob_class)cls), fs[j].key);
  if (k->exp_speedup <= 0) return pt__error(PT_EFORMAT, "%s: knob '%s': exp_speedup must be positive", src, kn);
  if (cls == PT_KNOB_PERFORATE) {
    if (k->stride < 2 || k->stride > 255) return pt__error(PT_EFORMAT, "%s: knob '%s': stride %d must be in [2, 255]", src, kn, k->stride);
    if (k->offset < 0 || k->offset >= k->stride)
      return pt__error(PT_EFORMAT, "%s: knob '%s': offset %d must be in [0, stride %d)", src, kn, k->offset, k->stride);
  }
  if (cls == PT_KNOB_SAMPLING) {
    if (k->skip_every < 2 || k->skip_every > 255)
      return pt__error(PT_EFORMAT, "%s: knob '%s': skip_every %d must be in [2, 255]", src, kn, k->skip_every);
    if (k->skip_offset < 0 || k->skip_offset > 255)
      return pt__error(PT_EFORMAT, "%s: knob '%s': skip_offset %d must be in [0, 255]", src, kn, k->skip_offset);
  }
  if (cls == PT_KNOB_PROMISE && (k->noise_level < 0 || k->noise_level > 8))
    return pt__error(PT_EFORMAT, "%s: knob '%s': noise_level %d must be in [0, 8]", src, kn, k->noise_level);
  return PT_OK;
}

pt_status pt_knobs_parse(const char *json, size_t len, const char *src, pt_knob_set **out) {
  *out = NULL;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", src);
  pt_status s = PT_OK;
  pt_knob_set *ks = NULL;
  if (!cJSON_IsArray(root)) {
    s = pt__error(PT_EFORMAT, "%s: a knob file is a JSON list of knob objects", src);
    goto done;
  }
  if (!(ks = pt__calloc(1, sizeof *ks))) {
    s = pt__error(PT_ENOMEM, "%s: out of memory", src);
    goto done;
  }
  int idx = 0;
  for (const cJSON *o = root->child; o && s == PT_OK; o = o->next, idx++) {
    if (!cJSON_IsObject(o)) {
      s = pt__error(PT_EFORMAT, "%s: knob #%d is not a JSON object", src, idx);
      break;
    }
    pt_knob k;
    s = parse_knob(o, idx, src, &k);
    if (s == PT_OK && pt_knobs_find(ks, k.name) >= 0) s = pt__error(PT_EFORMAT, "%s: duplicate knob name '%s'", src, k.name);
    if (s == PT_OK) s = pt__knobs_append(ks, &k);
  }
  if (s == PT_OK && ks->n == 0) s = pt__error(PT_EFORMAT, "%s: no knobs declared", src);
done:
  cJSON_Delete(root);
  if (s != PT_OK) {
    pt_knobs_free(ks);
    return s;
  }
  *out = ks;
  return PT_OK;
}

static pt_status parse_knobs(const char *text, size_t len, const char *src, void *out) {
  return pt_knobs_parse(text, len, src, out);
}

pt_status pt_knobs_load(const char *path, pt_knob_set **out) {
  *out = NULL;
  return pt__parse_file(path, parse_knobs, out);
}
