#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app/app_internal.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/knobs.h"
#include "predtuner/measure.h"
#include "predtuner/promise.h"

static const char *const pt__range_keys[4] = {"input", "weight", "bias", "output"};

/* PromiseSim ranges depend on the network and its weights (the data they were calibrated on is the
 * user's choice). */
#define RANGES_FP (PT__FP(PT__FP_GRAPH) | PT__FP(PT__FP_WEIGHTS))
static void graph_parts(const pt_graph *g, uint64_t fp[PT__FP_N]) {
  memset(fp, 0, PT__FP_N * sizeof *fp);
  pt_graph_fingerprint(g, &fp[PT__FP_GRAPH], &fp[PT__FP_WEIGHTS]);
}

static float *range_slot(pt_promise_ranges *r, int k) {
  return k == 0 ? r->in : k == 1 ? r->weight : k == 2 ? r->bias : r->out;
}

pt_status pt_promise_ranges_load(const char *path, const pt_graph *g, pt_promise_ranges *ranges) {
  int no = pt_graph_num_ops(g);
  memset(ranges, 0, (size_t)no * sizeof *ranges);
  void *data;
  size_t len;
  PT__TRY(pt__map_file(path, &data, &len));
  cJSON *root = cJSON_ParseWithLength(data ? data : "", len);
  pt__unmap_file(data, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", path);
  pt_status s = PT_OK;
  if (!cJSON_IsObject(root)) s = pt__error(PT_EFORMAT, "%s: expected an object {op: {input, weight, bias, output}}", path);
  const cJSON *fj = s == PT_OK ? cJSON_GetObjectItemCaseSensitive(root, "fingerprint") : NULL;
  if (fj && !cJSON_IsString(fj)) s = pt__error(PT_EFORMAT, "%s: \"fingerprint\" is not a string", path);
  uint64_t fp[PT__FP_N];
  graph_parts(g, fp);
  if (s == PT_OK)
    s = pt__fp_check_parts(fp, RANGES_FP, fj ? fj->valuestring : NULL, path,
                           "calibrate again (measure --save-promise-ranges) or leave out --promise-ranges");
  for (const cJSON *o = s == PT_OK ? root->child : NULL; o && s == PT_OK; o = o->next) {
    if (o == fj) continue;
    int op = pt_graph_find_op(g, o->string);
    if (op < 0) {
      s = pt__error(PT_ENOTFOUND, "%s: unknown op '%s' in model %s", path, o->string, pt_graph_name(g));
      break;
    }
    pt_op_type t = pt_graph_op_type(g, op);
    if (t != PT_OP_CONV2D && t != PT_OP_LINEAR) {
      s = pt__error(PT_EINVAL, "%s: op '%s' is a %s; PromiseSim ranges are for convolutions and linear layers", path,
                    o->string, pt_op_type_name(t));
      break;
    }
    if (!cJSON_IsObject(o)) {
      s = pt__error(PT_EFORMAT, "%s: op '%s': expected an object with input, weight, bias, output", path, o->string);
      break;
    }
    for (int k = 0; k < 4 && s == PT_OK; k++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, pt__range_keys[k]);
      if (!v && k == 2) continue; /* no bias */
      if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !cJSON_IsNumber(v->child) || !cJSON_IsNumber(v->child->next) ||
          !isfinite(v->child->valuedouble) || !isfinite(v->child->next->valuedouble) ||
          v->child->valuedouble > v->child->next->valuedouble) {
        s = pt__error(PT_EFORMAT, "%s: op '%s': \"%s\" must be [lo, hi] with lo <= hi", path, o->string, pt__range_keys[k]);
        break;
      }
      float *dst = range_slot(&ranges[op], k);
      dst[0] = (float)v->child->valuedouble;
      dst[1] = (float)v->child->next->valuedouble;
    }
    for (const cJSON *kv = o->child; kv && s == PT_OK; kv = kv->next) {
      int known = 0;
      for (int k = 0; k < 4; k++) known |= !strcmp(kv->string, pt__range_keys[k]);
      if (!known) s = pt__error(PT_EFORMAT, "%s: op '%s': unknown key '%s'", path, o->string, kv->string);
    }
    ranges[op].set = s == PT_OK;
  }
  cJSON_Delete(root);
  return s;
}

pt_status pt_promise_ranges_save(const char *path, const pt_graph *g, const pt_promise_ranges *ranges) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return pt__error(PT_ENOMEM, "%s: out of memory", path);
  uint64_t fp[PT__FP_N];
  char fps[256];
  graph_parts(g, fp);
  pt__fp_format_parts(fp, RANGES_FP, fps, sizeof fps);
  cJSON_AddStringToObject(root, "fingerprint", fps);
  for (int op = 0; op < pt_graph_num_ops(g); op++) {
    if (!ranges[op].set) continue;
    cJSON *o = cJSON_AddObjectToObject(root, pt_graph_op_name(g, op));
    for (int k = 0; k < 4; k++) {
      float *v = range_slot((pt_promise_ranges *)&ranges[op], k);
      cJSON *a = cJSON_AddArrayToObject(o, pt__range_keys[k]);
      cJSON_AddItemToArray(a, cJSON_CreateNumber(v[0]));
      cJSON_AddItemToArray(a, cJSON_CreateNumber(v[1]));
    }
  }
  return pt__write_json_atomic(path, root, 1);
}

pt_status pt_promise_calibrate(pt_exec *ex, const pt_graph *g, const pt_dataset *ds, int batch_size,
                               pt_promise_ranges *ranges) {
  int c, h, w;
  pt_graph_input_shape(g, &c, &h, &w);
  if (batch_size <= 0) batch_size = PT_BATCH_SIZE_DEFAULT;
  memset(ranges, 0, (size_t)pt_graph_num_ops(g) * sizeof *ranges);
  for (int64_t i = 0; i < ds->n; i += batch_size) {
    int n = (int)(ds->n - i < batch_size ? ds->n - i : batch_size);
    PT__TRY(pt_exec_calibrate(ex, ds->images + i * (int64_t)c * h * w, n, ranges));
  }
  return PT_OK;
}
