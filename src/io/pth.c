/* PyTorch checkpoints (torch.save): the zip format (torch >= 1.6) and the older legacy format
 * (pickles back to back, then the raw storages), read without Python. See docs/pth.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/fileutil.h"
#include "io/pickle.h"
#include "io/zip.h"
#include "predtuner/io.h"

typedef struct storage {
  const char *key;
  const uint8_t *data;
  uint64_t bytes;
} storage;

struct pt_pth {
  char what[512];
  void *map; /* the file, when opened from a path */
  size_t map_len;
  const uint8_t *data;
  size_t len;
  pt__zip *zip;
  char prefix[256];       /* zip: "<archive>/" */
  pt__pickle *pk;
  pt__pickle *keys_pk;    /* legacy: the storage key list */
  storage *st;            /* legacy: storages in file order */
  int n_st;
  int n;                  /* tensors of the state dict */
  const char **names;
  pt__pk **t;
};

static size_t dtype_size(const char *dt) {
  if (!strcmp(dt, "F64") || !strcmp(dt, "I64")) return 8;
  if (!strcmp(dt, "F32") || !strcmp(dt, "I32")) return 4;
  if (!strcmp(dt, "F16") || !strcmp(dt, "BF16") || !strcmp(dt, "I16")) return 2;
  return 1;
}

/* The state dict inside what torch.load would return: the top-level dict when its values are
 * tensors, else the first of the usual checkpoint keys that holds such a dict. */
static int tensor_dict(const pt__pk *d) {
  if (!d || d->kind != PK_DICT) return 0;
  for (int i = 1; i < d->n; i += 2)
    if (d->items[i]->kind == PK_TENSOR) return 1;
  return 0;
}

static pt_status find_state_dict(pt_pth *p, const pt__pk *root, const pt__pk **out) {
  static const char *const keys[] = {"state_dict", "model_state_dict", "model_state", "model", "net", "state"};
  if (tensor_dict(root)) return *out = root, PT_OK;
  if (root->kind == PK_OBJECT && root->n && root->items[0]->kind == PK_GLOBAL)
    return pt__error(PT_EUNSUPPORTED, "%s: holds a pickled object of class %s, not a state_dict (save model.state_dict())",
                     p->what, root->items[0]->s);
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    const pt__pk *v = pt__pk_get(root, keys[k]);
    if (tensor_dict(v)) return *out = v, PT_OK;
  }
  char list[256] = "";
  size_t n = 0;
  for (int i = 0; root->kind == PK_DICT && i < root->n && n < sizeof list - 40; i += 2)
    if (root->items[i]->kind == PK_STR)
      n += (size_t)snprintf(list + n, sizeof list - n, "%s'%s'", n ? ", " : "", root->items[i]->s);
  return pt__error(PT_EFORMAT, "%s: no state_dict of tensors found (top level: %s%s)", p->what,
                   root->kind == PK_DICT ? "a dict with keys " : "not a dict", list);
}

static pt_status collect(pt_pth *p, const pt__pk *sd) {
  int count = 0;
  for (int i = 1; i < sd->n; i += 2) count += sd->items[i]->kind == PK_TENSOR;
  p->names = pt__calloc((size_t)count + 1, sizeof *p->names);
  p->t = pt__calloc((size_t)count + 1, sizeof *p->t);
  if (!p->names || !p->t) return pt__error(PT_ENOMEM, "%s: out of memory", p->what);
  /* DataParallel's "module." prefix goes when every key has it */
  int strip = count > 0;
  for (int i = 0; i + 1 < sd->n; i += 2)
    if (sd->items[i + 1]->kind == PK_TENSOR)
      strip &= sd->items[i]->kind == PK_STR && !strncmp(sd->items[i]->s, "module.", 7);
  for (int i = 0; i + 1 < sd->n; i += 2) {
    if (sd->items[i + 1]->kind != PK_TENSOR) continue; /* e.g. an extra_state object */
    if (sd->items[i]->kind != PK_STR) return pt__error(PT_EFORMAT, "%s: a state_dict key is not a string", p->what);
    p->names[p->n] = sd->items[i]->s + (strip ? 7 : 0);
    p->t[p->n++] = sd->items[i + 1];
  }
  return PT_OK;
}

/* Bytes of the storage a tensor views. */
static pt_status storage_bytes(const pt_pth *p, const pt__pk *st, const uint8_t **data, uint64_t *bytes) {
  if (p->zip) {
    char name[600];
    snprintf(name, sizeof name, "%sdata/%s", p->prefix, st->s);
    int e = pt__zip_find(p->zip, name);
    if (e < 0) return pt__error(PT_EFORMAT, "%s: storage '%s' is missing from the archive (no entry %s)", p->what, st->s, name);
    return pt__zip_get(p->zip, e, data, bytes);
  }
  for (int i = 0; i < p->n_st; i++)
    if (!strcmp(p->st[i].key, st->s)) return *data = p->st[i].data, *bytes = p->st[i].bytes, PT_OK;
  return pt__error(PT_EFORMAT, "%s: storage '%s' is not in the file", p->what, st->s);
}

/* Checks every tensor: known dtype, contiguous, inside its storage. */
static pt_status check_tensors(pt_pth *p) {
  for (int i = 0; i < p->n; i++) {
    const pt__pk *t = p->t[i];
    const char *nm = p->names[i];
    int64_t numel = 1, expect = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
      if (t->size[d] < 0 || (t->size[d] && numel > INT64_MAX / 16 / t->size[d]))
        return pt__error(PT_EFORMAT, "%s: tensor '%s' has a bad size", p->what, nm);
      if (t->size[d] != 1 && t->stride[d] != expect) {
        char sz[96], sd[96];
        return pt__error(PT_EUNSUPPORTED, "%s: tensor '%s' is not contiguous (size %s, stride %s); save it with .contiguous()",
                         p->what, nm, pt_shape_str(sz, sizeof sz, t->ndim, t->size), pt_shape_str(sd, sizeof sd, t->ndim, t->stride));
      }
      expect *= t->size[d];
      numel *= t->size[d];
    }
    const pt__pk *st = t->storage;
    if (t->offset < 0 || t->offset > st->numel || numel > st->numel - t->offset)
      return pt__error(PT_EFORMAT, "%s: tensor '%s' (%lld elements at offset %lld) runs past its storage of %lld", p->what,
                       nm, (long long)numel, (long long)t->offset, (long long)st->numel);
    const uint8_t *data;
    uint64_t bytes;
    PT__TRY(storage_bytes(p, st, &data, &bytes));
    if (bytes != (uint64_t)st->numel * dtype_size(st->dtype))
      return pt__error(PT_EFORMAT, "%s: storage '%s' has %llu bytes, expected %lld %s elements", p->what, st->s,
                       (unsigned long long)bytes, (long long)st->numel, st->dtype);
  }
  return PT_OK;
}

static pt_status open_zip(pt_pth *p) {
  PT__TRY(pt__zip_open(p->data, p->len, p->what, &p->zip));
  int pkl = -1;
  for (int i = 0; i < p->zip->n; i++) {
    const char *nm = p->zip->e[i].name, *slash = strchr(nm, '/');
    if (slash && !strcmp(slash, "/data.pkl") && (size_t)(slash - nm) < sizeof p->prefix - 1) {
      pkl = i;
      memcpy(p->prefix, nm, (size_t)(slash - nm) + 1);
      p->prefix[slash - nm + 1] = 0;
      break;
    }
  }
  if (pkl < 0) return pt__error(PT_EFORMAT, "%s: zip archive without <name>/data.pkl (not a torch.save file)", p->what);
  char bo[300];
  snprintf(bo, sizeof bo, "%sbyteorder", p->prefix);
  int e = pt__zip_find(p->zip, bo);
  if (e >= 0) {
    const uint8_t *d;
    uint64_t n;
    PT__TRY(pt__zip_get(p->zip, e, &d, &n));
    if (n != 6 || memcmp(d, "little", 6))
      return pt__error(PT_EUNSUPPORTED, "%s: tensors are stored big-endian", p->what);
  }
  const uint8_t *d;
  uint64_t n;
  PT__TRY(pt__zip_get(p->zip, pkl, &d, &n));
  pt__pk *root;
  PT__TRY(pt__pickle_load(d, (size_t)n, p->what, &p->pk, &root));
  const pt__pk *sd;
  PT__TRY(find_state_dict(p, root, &sd));
  return collect(p, sd);
}

/* Legacy format: magic, protocol version, sys_info, the object, the storage keys (each a pickle),
 * then per key in that order: int64 element count and the raw elements. */
static pt_status open_legacy(pt_pth *p) {
  static const uint8_t magic[10] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};
  size_t pos = 0;
  pt__pickle *tmp;
  pt__pk *v;
  PT__TRY(pt__pickle_load(p->data, p->len, p->what, &tmp, &v));
  int ok = v->kind == PK_INT && v->slen == 10 && !memcmp(v->s, magic, 10);
  pos += pt__pickle_consumed(tmp);
  pt__pickle_free(tmp);
  if (!ok) return pt__error(PT_EFORMAT, "%s: not a PyTorch checkpoint (no torch.save magic number)", p->what);
  for (int k = 0; k < 2; k++) { /* protocol version, sys_info */
    PT__TRY(pt__pickle_load(p->data + pos, p->len - pos, p->what, &tmp, &v));
    if (k == 0 && (v->kind != PK_INT || v->i != 1001)) ok = 0;
    if (k == 1) {
      const pt__pk *le = pt__pk_get(v, "little_endian");
      if (le && le->kind == PK_BOOL && !le->i) ok = 0;
    }
    pos += pt__pickle_consumed(tmp);
    pt__pickle_free(tmp);
    if (!ok) return pt__error(PT_EUNSUPPORTED, "%s: legacy checkpoint with an unknown protocol or big-endian data", p->what);
  }
  pt__pk *root;
  PT__TRY(pt__pickle_load(p->data + pos, p->len - pos, p->what, &p->pk, &root));
  pos += pt__pickle_consumed(p->pk);
  pt__pk *keys;
  PT__TRY(pt__pickle_load(p->data + pos, p->len - pos, p->what, &tmp, &keys));
  pos += pt__pickle_consumed(tmp);
  const pt__pk *sd = NULL;
  pt_status s = PT_OK;
  if (keys->kind != PK_LIST) s = pt__error(PT_EFORMAT, "%s: legacy checkpoint: the storage key list is missing", p->what);
  if (s == PT_OK) s = find_state_dict(p, root, &sd);
  if (s == PT_OK) s = collect(p, sd);
  if (s == PT_OK && !(p->st = pt__calloc((size_t)keys->n + 1, sizeof *p->st))) s = pt__error(PT_ENOMEM, "%s: out of memory", p->what);
  /* storages follow one another; each one's element size comes from a tensor of the state dict using it */
  for (int i = 0; s == PT_OK && i < keys->n; i++) {
    const pt__pk *k = keys->items[i], *owner = NULL;
    if (k->kind != PK_STR) {
      s = pt__error(PT_EFORMAT, "%s: legacy checkpoint: a storage key is not a string", p->what);
      break;
    }
    for (int j = 0; j < p->n && !owner; j++)
      if (!strcmp(p->t[j]->storage->s, k->s)) owner = p->t[j]->storage;
    if (!owner) {
      s = pt__error(PT_EUNSUPPORTED, "%s: legacy checkpoint with storage '%s' outside the state_dict (re-save the state_dict alone)",
                    p->what, k->s);
      break;
    }
    uint64_t numel;
    if (p->len - pos < 8) {
      s = pt__error(PT_EFORMAT, "%s: legacy checkpoint truncated before storage '%s'", p->what, k->s);
      break;
    }
    memcpy(&numel, p->data + pos, 8);
    pos += 8;
    const uint64_t es = dtype_size(owner->dtype);
    if (numel > (p->len - pos) / es) {
      s = pt__error(PT_EFORMAT, "%s: legacy checkpoint truncated in storage '%s'", p->what, k->s);
      break;
    }
    storage *st = &p->st[p->n_st++];
    st->key = k->s;
    st->data = p->data + pos;
    st->bytes = numel * es;
    pos += (size_t)st->bytes;
  }
  /* the key strings live in tmp's objects: keep them until close */
  if (s == PT_OK) p->keys_pk = tmp;
  else pt__pickle_free(tmp);
  return s;
}

void pt_pth_close(pt_pth *p) {
  if (!p) return;
  pt__zip_close(p->zip);
  pt__pickle_free(p->pk);
  pt__pickle_free(p->keys_pk);
  free(p->st);
  free(p->names);
  free(p->t);
  pt__unmap_file(p->map, p->map_len);
  free(p);
}

pt_status pt_pth_open_buffer(const void *data, size_t len, const char *what, pt_pth **out) {
  *out = NULL;
  pt_pth *p = pt__calloc(1, sizeof *p);
  if (!p) return pt__error(PT_ENOMEM, "%s: out of memory", what);
  snprintf(p->what, sizeof p->what, "%s", what);
  p->data = data;
  p->len = len;
  pt_status s;
  if (len >= 4 && !memcmp(data, "PK\x03\x04", 4)) s = open_zip(p);
  else if (len >= 2 && p->data[0] == 0x80) s = open_legacy(p);
  else s = pt__error(PT_EFORMAT, "%s: not a PyTorch checkpoint (neither a zip archive nor a pickle)", p->what);
  if (s == PT_OK) s = check_tensors(p);
  if (s != PT_OK) {
    pt_pth_close(p);
    return s;
  }
  *out = p;
  return PT_OK;
}

pt_status pt_pth_open(const char *path, pt_pth **out) {
  void *map;
  size_t len;
  *out = NULL;
  PT__TRY(pt__map_file(path, &map, &len));
  pt_status s = pt_pth_open_buffer(map, len, path, out);
  if (s != PT_OK) {
    pt__unmap_file(map, len);
    return s;
  }
  (*out)->map = map;
  (*out)->map_len = len;
  return PT_OK;
}

int pt_pth_count(const pt_pth *p) { return p->n; }
const char *pt_pth_name(const pt_pth *p, int i) { return p->names[i]; }
const char *pt_pth_dtype(const pt_pth *p, int i) { return p->t[i]->storage->dtype; }
int pt_pth_is_float(const pt_pth *p, int i) {
  const char *d = pt_pth_dtype(p, i);
  return !strcmp(d, "F32") || !strcmp(d, "F16") || !strcmp(d, "BF16") || !strcmp(d, "F64");
}
int pt_pth_shape(const pt_pth *p, int i, int64_t shape[PT_MAX_DIMS]) {
  memcpy(shape, p->t[i]->size, (size_t)p->t[i]->ndim * sizeof *shape);
  return p->t[i]->ndim;
}
int pt_pth_find(const pt_pth *p, const char *name) {
  for (int i = 0; i < p->n; i++)
    if (!strcmp(p->names[i], name)) return i;
  return -1;
}

pt_status pt_pth_read_f32(const pt_pth *p, int i, float *dst) {
  const pt__pk *t = p->t[i];
  const char *dt = t->storage->dtype;
  if (!pt_pth_is_float(p, i))
    return pt__error(PT_EFORMAT, "%s: tensor '%s' has dtype %s, not a float type", p->what, p->names[i], dt);
  const uint8_t *data;
  uint64_t bytes;
  PT__TRY(storage_bytes(p, t->storage, &data, &bytes));
  int64_t n = pt_shape_numel(t->ndim, t->size);
  const size_t es = dtype_size(dt);
  const uint8_t *src = data + (size_t)t->offset * es;
  for (int64_t k = 0; k < n; k++) {
    const uint8_t *e = src + (size_t)k * es;
    if (es == 4) {
      memcpy(&dst[k], e, 4);
    } else if (es == 8) {
      double v;
      memcpy(&v, e, 8);
      dst[k] = (float)v;
    } else {
      uint16_t h;
      memcpy(&h, e, 2);
      dst[k] = !strcmp(dt, "F16") ? pt_f16_to_f32(h) : pt_bf16_to_f32(h);
    }
  }
  return PT_OK;
}
