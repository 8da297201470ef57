/* safetensors: 8-byte little-endian header length N, N bytes of JSON
 * {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}, then the data
 * (offsets relative to the end of the header). The reader validates everything before use. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/io.h"

#define PT__ST_MAX_HEADER (100u << 20) /* same limit as the reference implementation */

typedef struct st_dtype {
  const char *name;
  int size;
  int is_float;
} st_dtype;

static const st_dtype pt__st_dtypes[] = {
    {"F64", 8, 0}, {"F32", 4, 1}, {"F16", 2, 1}, {"BF16", 2, 1}, {"I64", 8, 0}, {"I32", 4, 0}, {"I16", 2, 0},
    {"I8", 1, 0},  {"U64", 8, 0}, {"U32", 4, 0}, {"U16", 2, 0},  {"U8", 1, 0},   {"BOOL", 1, 0}, {"F8_E4M3", 1, 0},
    {"F8_E5M2", 1, 0}};
#define PT__ST_NDT ((int)(sizeof pt__st_dtypes / sizeof pt__st_dtypes[0]))

typedef struct st_entry {
  char *name;
  const st_dtype *dt;
  int ndim;
  int64_t shape[PT_MAX_DIMS];
  uint64_t begin, end;
} st_entry;

struct pt_safetensors {
  char *path;
  void *map;
  size_t map_len;
  const uint8_t *data; /* start of the data section */
  uint64_t data_len;
  st_entry *e;
  int n;
  char **meta; /* key, value, key, value, ... */
  int n_meta;
};

void pt_st_close(pt_safetensors *st) {
  if (!st) return;
  for (int i = 0; i < st->n; i++) free(st->e[i].name);
  for (int i = 0; i < 2 * st->n_meta; i++) free(st->meta[i]);
  free(st->meta);
  free(st->e);
  pt__unmap_file(st->map, st->map_len);
  free(st->path);
  free(st);
}

/* A JSON number that is a non-negative integer below 2^53. */
static int as_u64(const cJSON *j, uint64_t *v) {
  if (!cJSON_IsNumber(j)) return 0;
  double d = j->valuedouble;
  if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return 0;
  *v = (uint64_t)d;
  return 1;
}

static int cmp_begin(const void *a, const void *b) {
  const st_entry *x = *(st_entry *const *)a, *y = *(st_entry *const *)b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

static pt_status parse_entry(pt_safetensors *st, const cJSON *item, st_entry *e) {
  const char *path = st->path, *name = item->string;
  if (!cJSON_IsObject(item)) return pt__error(PT_EFORMAT, "%s: tensor '%s': header entry is not an object", path, name);
  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
  const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
  if (!cJSON_IsString(dt)) return pt__error(PT_EFORMAT, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
  e->dt = NULL;
  for (int k = 0; k < PT__ST_NDT; k++)
    if (!strcmp(pt__st_dtypes[k].name, dt->valuestring)) e->dt = &pt__st_dtypes[k];
  if (!e->dt) return pt__error(PT_EFORMAT, "%s: tensor '%s': unknown dtype \"%s\"", path, name, dt->valuestring);
  if (!cJSON_IsArray(sh)) return pt__error(PT_EFORMAT, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
  int nd = cJSON_GetArraySize(sh);
  if (nd > PT_MAX_DIMS) return pt__error(PT_EFORMAT, "%s: tensor '%s': %d dimensions (max %d)", path, name, nd, PT_MAX_DIMS);
  e->ndim = nd;
  uint64_t numel = 1;
  for (int k = 0; k < nd; k++) {
    uint64_t v;
    if (!as_u64(cJSON_GetArrayItem(sh, k), &v) || v > (1ull << 40))
      return pt__error(PT_EFORMAT, "%s: tensor '%s': shape entry %d is not a valid size", path, name, k);
    e->shape[k] = (int64_t)v;
    if (v && numel > (1ull << 50) / v) return pt__error(PT_EFORMAT, "%s: tensor '%s': shape too large", path, name);
    numel *= v;
  }
  if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !as_u64(cJSON_GetArrayItem(off, 0), &e->begin) ||
      !as_u64(cJSON_GetArrayItem(off, 1), &e->end))
    return pt__error(PT_EFORMAT, "%s: tensor '%s': \"data_offsets\" must be two non-negative integers", path, name);
  if (e->begin > e->end)
    return pt__error(PT_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] are reversed", path, name,
                     (unsigned long long)e->begin, (unsigned long long)e->end);
  if (e->end > st->data_len)
    return pt__error(PT_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %llu bytes)",
                     path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                     (unsigned long long)st->data_len);
  if (e->end - e->begin != numel * (uint64_t)e->dt->size)
    return pt__error(PT_EFORMAT, "%s: tensor '%s': %llu data bytes, but shape and %s need %llu", path, name,
                     (unsigned long long)(e->end - e->begin), e->dt->name,
                     (unsigned long long)(numel * (uint64_t)e->dt->size));
  e->name = pt__strdup(name);
  return e->name ? PT_OK : pt__error(PT_ENOMEM, "%s: out of memory", path);
}

static pt_status parse_header(pt_safetensors *st, const char *json, size_t len) {
  const char *path = st->path;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return pt__error(PT_EFORMAT, "%s: header is not valid JSON", path);
  pt_status s = PT_OK;
  if (!cJSON_IsObject(root)) {
    s = pt__error(PT_EFORMAT, "%s: header is not a JSON object", path);
    goto done;
  }
  int total = cJSON_GetArraySize(root);
  st->e = pt__calloc((size_t)(total ? total : 1), sizeof *st->e);
  if (!st->e) {
    s = pt__error(PT_ENOMEM, "%s: out of memory", path);
    goto done;
  }
  for (const cJSON *it = root->child; it && s == PT_OK; it = it->next) {
    if (!strcmp(it->string, "__metadata__")) {
      if (!cJSON_IsObject(it)) {
        s = pt__error(PT_EFORMAT, "%s: __metadata__ is not an object", path);
        break;
      }
      int m = cJSON_GetArraySize(it);
      st->meta = pt__calloc((size_t)(2 * m + 1), sizeof *st->meta);
      if (!st->meta) {
        s = pt__error(PT_ENOMEM, "%s: out of memory", path);
        break;
      }
      for (const cJSON *kv = it->child; kv; kv = kv->next) {
        if (!cJSON_IsString(kv)) {
          s = pt__error(PT_EFORMAT, "%s: __metadata__ value of '%s' is not a string", path, kv->string);
          break;
        }
        st->meta[2 * st->n_meta] = pt__strdup(kv->string);
        st->meta[2 * st->n_meta + 1] = pt__strdup(kv->valuestring);
        st->n_meta++;
      }
      continue;
    }
    for (int k = 0; k < st->n; k++)
      if (!strcmp(st->e[k].name, it->string)) s = pt__error(PT_EFORMAT, "%s: tensor '%s' appears twice", path, it->string);
    if (s == PT_OK) s = parse_entry(st, it, &st->e[st->n]);
    if (s == PT_OK) st->n++;
  }
  if (s == PT_OK && st->n > 1) {
    st_entry **order = pt__malloc((size_t)st->n * sizeof *order);
    if (!order) {
      s = pt__error(PT_ENOMEM, "%s: out of memory", path);
      goto done;
    }
    for (int k = 0; k < st->n; k++) order[k] = &st->e[k];
    qsort(order, (size_t)st->n, sizeof *order, cmp_begin);
    for (int k = 1; k < st->n && s == PT_OK; k++)
      if (order[k]->begin < order[k - 1]->end && order[k]->begin < order[k]->end)
        s = pt__error(PT_EFORMAT, "%s: tensors '%s' and '%s' overlap in the data section", path, order[k - 1]->name,
                      order[k]->name);
    free(order);
  }
done:
  cJSON_Delete(root);
  return s;
}

pt_status pt_st_open(const char *path, pt_safetensors **out) {
  *out = NULL;
  pt_safetensors *st = pt__calloc(1, sizeof *st);
  if (!st || !(st->path = pt__strdup(path))) {
    free(st);
    return pt__error(PT_ENOMEM, "%s: out of memory", path);
  }
  pt_status s = pt__map_file(path, &st->map, &st->map_len);
  if (s != PT_OK) goto fail;
  if (st->map_len < 8) {
    s = pt__error(PT_EFORMAT, "%s: truncated: %zu bytes, too short for the 8-byte header length", path, st->map_len);
    goto fail;
  }
  const uint8_t *b = st->map;
  uint64_t hlen = 0;
  for (int k = 7; k >= 0; k--) hlen = (hlen << 8) | b[k];
  if (hlen > st->map_len - 8) {
    s = pt__error(PT_EFORMAT, "%s: header length %llu runs past the end of the file (%zu bytes)", path,
                  (unsigned long long)hlen, st->map_len);
    goto fail;
  }
  if (hlen > PT__ST_MAX_HEADER) {
    s = pt__error(PT_EFORMAT, "%s: header of %llu bytes is larger than the 100 MB limit", path, (unsigned long long)hlen);
    goto fail;
  }
  st->data = b + 8 + hlen;
  st->data_len = st->map_len - 8 - hlen;
  s = parse_header(st, (const char *)b + 8, (size_t)hlen);
  if (s != PT_OK) goto fail;
  *out = st;
  return PT_OK;
fail:
  pt_st_close(st);
  return s;
}

int pt_st_count(const pt_safetensors *st) { return st->n; }
const char *pt_st_name(const pt_safetensors *st, int i) { return st->e[i].name; }
const char *pt_st_dtype(const pt_safetensors *st, int i) { return st->e[i].dt->name; }
int pt_st_is_float(const pt_safetensors *st, int i) { return st->e[i].dt->is_float; }
int pt_st_shape(const pt_safetensors *st, int i, int64_t shape[PT_MAX_DIMS]) {
  memcpy(shape, st->e[i].shape, sizeof st->e[i].shape);
  return st->e[i].ndim;
}
int pt_st_find(const pt_safetensors *st, const char *name) {
  for (int i = 0; i < st->n; i++)
    if (!strcmp(st->e[i].name, name)) return i;
  return -1;
}
const char *pt_st_metadata(const pt_safetensors *st, const char *key) {
  for (int i = 0; i < st->n_meta; i++)
    if (!strcmp(st->meta[2 * i], key)) return st->meta[2 * i + 1];
  return NULL;
}

pt_status pt_st_read_f32(const pt_safetensors *st, int i, float *dst) {
  const st_entry *e = &st->e[i];
  const uint8_t *src = st->data + e->begin;
  uint64_t n = (e->end - e->begin) / (uint64_t)e->dt->size;
  if (!strcmp(e->dt->name, "F32")) {
    memcpy(dst, src, (size_t)n * 4); /* unaligned-safe */
  } else if (!strcmp(e->dt->name, "F16") || !strcmp(e->dt->name, "BF16")) {
    int bf = e->dt->name[0] == 'B';
    for (uint64_t k = 0; k < n; k++) {
      uint16_t h = (uint16_t)(src[2 * k] | (src[2 * k + 1] << 8));
      dst[k] = bf ? pt_bf16_to_f32(h) : pt_f16_to_f32(h);
    }
  } else {
    return pt__error(PT_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", st->path, e->name,
                     e->dt->name);
  }
  return PT_OK;
}

/* ---- writer ---- */

typedef struct wt_entry {
  char *name;
  pt_dtype dtype;
  int ndim;
  int64_t shape[PT_MAX_DIMS];
  void *data;
  size_t bytes;
} wt_entry;

struct pt_st_writer {
  wt_entry *e;
  int n, cap;
  cJSON *meta;
};

pt_status pt_st_writer_new(pt_st_writer **out) {
  *out = pt__calloc(1, sizeof **out);
  return *out ? PT_OK : pt__error(PT_ENOMEM, "safetensors writer: out of memory");
}

void pt_st_writer_free(pt_st_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) {
    free(w->e[i].name);
    free(w->e[i].data);
  }
  free(w->e);
  cJSON_Delete(w->meta);
  free(w);
}

pt_status pt_st_writer_add(pt_st_writer *w, const char *name, const pt_tensor *t) {
  if (!strcmp(name, "__metadata__")) return pt__error(PT_EINVAL, "safetensors writer: '__metadata__' is reserved");
  for (int i = 0; i < w->n; i++)
    if (!strcmp(w->e[i].name, name)) return pt__error(PT_EEXIST, "safetensors writer: tensor '%s' added twice", name);
  if (w->n == w->cap) {
    int cap = w->cap ? 2 * w->cap : 32;
    wt_entry *ne = pt__realloc(w->e, (size_t)cap * sizeof *ne);
    if (!ne) return pt__error(PT_ENOMEM, "safetensors writer: out of memory");
    w->e = ne;
    w->cap = cap;
  }
  wt_entry *e = &w->e[w->n];
  memset(e, 0, sizeof *e);
  e->bytes = (size_t)pt_tensor_numel(t) * pt_dtype_size(t->dtype);
  e->name = pt__strdup(name);
  e->data = pt__malloc(e->bytes ? e->bytes : 1);
  if (!e->name || !e->data) {
    free(e->name);
    free(e->data);
    return pt__error(PT_ENOMEM, "safetensors writer: out of memory");
  }
  memcpy(e->data, t->data, e->bytes);
  e->dtype = t->dtype;
  e->ndim = t->ndim;
  memcpy(e->shape, t->shape, sizeof e->shape);
  w->n++;
  return PT_OK;
}

pt_status pt_st_writer_metadata(pt_st_writer *w, const char *key, const char *value) {
  if (!w->meta && !(w->meta = cJSON_CreateObject())) return pt__error(PT_ENOMEM, "safetensors writer: out of memory");
  cJSON_DeleteItemFromObjectCaseSensitive(w->meta, key);
  if (!cJSON_AddStringToObject(w->meta, key, value)) return pt__error(PT_ENOMEM, "safetensors writer: out of memory");
  return PT_OK;
}

pt_status pt_st_writer_save(pt_st_writer *w, const char *path) {
  cJSON *root = cJSON_CreateObject();
  if (!root) return pt__error(PT_ENOMEM, "%s: out of memory", path);
  if (w->meta) cJSON_AddItemToObject(root, "__metadata__", cJSON_Duplicate(w->meta, 1));
  uint64_t off = 0;
  for (int i = 0; i < w->n; i++) {
    wt_entry *e = &w->e[i];
    cJSON *o = cJSON_AddObjectToObject(root, e->name);
    cJSON_AddStringToObject(o, "dtype", e->dtype == PT_F16 ? "F16" : "F32");
    cJSON *sh = cJSON_AddArrayToObject(o, "shape");
    for (int k = 0; k < e->ndim; k++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)e->shape[k]));
    cJSON *of = cJSON_AddArrayToObject(o, "data_offsets");
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
    cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + e->bytes)));
    off += e->bytes;
  }
  char *json = cJSON_PrintUnformatted(root);
  cJSON_Delete(root);
  if (!json) return pt__error(PT_ENOMEM, "%s: out of memory", path);
  size_t jl = strlen(json), hl = (jl + 7) & ~(size_t)7; /* pad with spaces to 8-byte alignment */
  size_t total = 8 + hl + (size_t)off;
  uint8_t *buf = pt__malloc(total);
  if (!buf) {
    free(json);
    return pt__error(PT_ENOMEM, "%s: out of memory (%zu bytes)", path, total);
  }
  for (int k = 0; k < 8; k++) buf[k] = (uint8_t)((uint64_t)hl >> (8 * k));
  memcpy(buf + 8, json, jl);
  memset(buf + 8 + jl, ' ', hl - jl);
  free(json);
  size_t at = 8 + hl;
  for (int i = 0; i < w->n; i++) {
    memcpy(buf + at, w->e[i].data, w->e[i].bytes);
    at += w->e[i].bytes;
  }
  pt_status s = pt_write_file_atomic(path, buf, total);
  free(buf);
  return s;
}
