/* Config files: our configs.json ({"configs": [...]}) and PredTuner's jsonpickle dump (a list of
 * {"py/object": "...Config", "qos", "cost", "knobs", "test_qos", "validated_qos"}). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/io.h"

void pt_configs_free(pt_config_list *l) {
  if (!l) return;
  for (int i = 0; i < l->n; i++) {
    for (int j = 0; j < l->configs[i].n; j++) {
      free(l->configs[i].ops[j]);
      free(l->configs[i].knobs[j]);
    }
    free(l->configs[i].ops);
    free(l->configs[i].knobs);
  }
  free(l->configs);
  free(l);
}

static double num_or_nan(const cJSON *o, const char *key, int *bad) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!v || cJSON_IsNull(v)) return NAN;
  if (!cJSON_IsNumber(v)) {
    *bad = 1;
    return NAN;
  }
  return v->valuedouble;
}

static pt_status parse_config(const cJSON *o, int idx, const char *src, pt_config *c) {
  memset(c, 0, sizeof *c);
  c->qos = c->cost = c->test_qos = c->validated_qos = NAN;
  if (!cJSON_IsObject(o)) return pt__error(PT_EFORMAT, "%s: config #%d is not a JSON object", src, idx);
  const cJSON *knobs = cJSON_GetObjectItemCaseSensitive(o, "knobs");
  if (!cJSON_IsObject(knobs)) return pt__error(PT_EFORMAT, "%s: config #%d: \"knobs\" is missing or not an object", src, idx);
  int bad = 0;
  c->qos = num_or_nan(o, "qos", &bad);
  c->cost = num_or_nan(o, "cost", &bad);
  c->test_qos = num_or_nan(o, "test_qos", &bad);
  c->validated_qos = num_or_nan(o, "validated_qos", &bad);
  if (bad) return pt__error(PT_EFORMAT, "%s: config #%d: qos, cost, test_qos and validated_qos must be numbers", src, idx);
  int n = cJSON_GetArraySize(knobs);
  c->ops = pt__calloc((size_t)n + 1, sizeof *c->ops);
  c->knobs = pt__calloc((size_t)n + 1, sizeof *c->knobs);
  if (!c->ops || !c->knobs) return pt__error(PT_ENOMEM, "%s: out of memory", src);
  for (const cJSON *kv = knobs->child; kv; kv = kv->next) {
    char num[32];
    const char *name;
    if (cJSON_IsString(kv)) {
      name = kv->valuestring;
    } else if (cJSON_IsNumber(kv) && floor(kv->valuedouble) == kv->valuedouble && fabs(kv->valuedouble) < 1e15) {
      snprintf(num, sizeof num, "%.0f", kv->valuedouble); /* knob names like 151 written as numbers */
      name = num;
    } else {
      return pt__error(PT_EFORMAT, "%s: config #%d: knob of op '%s' is not a string", src, idx, kv->string);
    }
    c->ops[c->n] = pt__strdup(kv->string);
    c->knobs[c->n] = pt__strdup(name);
    if (!c->ops[c->n] || !c->knobs[c->n]) {
      c->n++;
      return pt__error(PT_ENOMEM, "%s: out of memory", src);
    }
    c->n++;
  }
  return PT_OK;
}

pt_status pt_configs_parse(const char *json, size_t len, const char *src, pt_config_list **out) {
  *out = NULL;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: not valid JSON", src);
  pt_status s = PT_OK;
  const cJSON *list = root;
  if (cJSON_IsObject(root)) list = cJSON_GetObjectItemCaseSensitive(root, "configs");
  pt_config_list *l = pt__calloc(1, sizeof *l);
  if (!l) {
    cJSON_Delete(root);
    return pt__error(PT_ENOMEM, "%s: out of memory", src);
  }
  if (!cJSON_IsArray(list)) {
    s = pt__error(PT_EFORMAT, "%s: expected a list of configs or an object with a \"configs\" list", src);
    goto done;
  }
  int n = cJSON_GetArraySize(list);
  l->configs = pt__calloc((size_t)n + 1, sizeof *l->configs);
  if (!l->configs) {
    s = pt__error(PT_ENOMEM, "%s: out of memory", src);
    goto done;
  }
  int idx = 0;
  for (const cJSON *o = list->child; o && s == PT_OK; o = o->next, idx++) {
    s = parse_config(o, idx, src, &l->configs[l->n]);
    l->n++;
  }
done:
  cJSON_Delete(root);
  if (s != PT_OK) {
    pt_configs_free(l);
    return s;
  }
  *out = l;
  return PT_OK;
}

static pt_status parse_configs(const char *text, size_t len, const char *src, void *out) {
  return pt_configs_parse(text, len, src, out);
}

pt_status pt_configs_load(const char *path, pt_config_list **out) {
  *out = NULL;
  return pt__parse_file(path, parse_configs, out);
}
