/* Binding a safetensors file or a PyTorch checkpoint to a graph's state_dict keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/graph_internal.h"
#include "io/fileutil.h"
#include "predtuner/io.h"

static int is_bookkeeping(const char *name) {
  const char *suffix = "num_batches_tracked";
  size_t n = strlen(name), k = strlen(suffix);
  return n >= k && !strcmp(name + n - k, suffix);
}

/* The two weight formats behind one set of calls. */
typedef struct wsrc {
  pt_safetensors *st;
  pt_pth *pth;
} wsrc;

static int w_count(const wsrc *w) { return w->st ? pt_st_count(w->st) : pt_pth_count(w->pth); }
static const char *w_name(const wsrc *w, int i) { return w->st ? pt_st_name(w->st, i) : pt_pth_name(w->pth, i); }
static const char *w_dtype(const wsrc *w, int i) { return w->st ? pt_st_dtype(w->st, i) : pt_pth_dtype(w->pth, i); }
static int w_is_float(const wsrc *w, int i) { return w->st ? pt_st_is_float(w->st, i) : pt_pth_is_float(w->pth, i); }
static int w_find(const wsrc *w, const char *n) { return w->st ? pt_st_find(w->st, n) : pt_pth_find(w->pth, n); }
static int w_shape(const wsrc *w, int i, int64_t *sh) { return w->st ? pt_st_shape(w->st, i, sh) : pt_pth_shape(w->pth, i, sh); }
static pt_status w_read(const wsrc *w, int i, float *d) { return w->st ? pt_st_read_f32(w->st, i, d) : pt_pth_read_f32(w->pth, i, d); }

/* A torch.save file starts with a zip signature or the legacy format's pickled magic number;
 * safetensors with its header length. */
static pt_status w_open(const char *path, wsrc *w) {
  memset(w, 0, sizeof *w);
  unsigned char head[4] = {0};
  void *data = NULL;
  size_t len = 0; /* mapped, as the readers do: a FIFO or a device is refused, never read */
  PT__TRY(pt__map_file(path, &data, &len));
  size_t got = len < sizeof head ? len : sizeof head;
  if (got) memcpy(head, data, got);
  pt__unmap_file(data, len);
  /* legacy torch.save: PROTO 2, then LONG1 of 10 bytes (the magic number); as a safetensors header
   * length these bytes would mean a 176 MB header */
  if ((got >= 4 && !memcmp(head, "PK\x03\x04", 4)) || (got >= 4 && !memcmp(head, "\x80\x02\x8a\x0a", 4)))
    return pt_pth_open(path, &w->pth);
  return pt_st_open(path, &w->st);
}

static void w_close(wsrc *w) {
  pt_st_close(w->st);
  pt_pth_close(w->pth);
}

pt_status pt_weights_load(pt_graph *g, const char *path) {
  wsrc src, *st = &src;
  PT__TRY(w_open(path, st));
  pt_status s = PT_OK;
  char a[96], b[96];
  for (int i = 0; i < g->n_params && s == PT_OK; i++) {
    pt_param *p = &g->params[i];
    int k = w_find(st, p->name);
    if (k < 0) {
      s = pt__error(PT_ENOTFOUND, "%s: missing tensor '%s' (model %s expects shape %s)", path, p->name, g->name,
                    pt_shape_str(a, sizeof a, p->ndim, p->shape));
      break;
    }
    int64_t shape[PT_MAX_DIMS];
    int nd = w_shape(st, k, shape);
    if (nd != p->ndim || memcmp(shape, p->shape, (size_t)nd * sizeof *shape)) {
      s = pt__error(PT_ESHAPE, "%s: tensor '%s': expected shape %s, found %s", path, p->name,
                    pt_shape_str(a, sizeof a, p->ndim, p->shape), pt_shape_str(b, sizeof b, nd, shape));
      break;
    }
    if (!w_is_float(st, k)) {
      s = pt__error(PT_EFORMAT, "%s: tensor '%s' has dtype %s, expected a float type (F32, F16, BF16%s)", path, p->name,
                    w_dtype(st, k), st->pth ? ", F64" : "");
      break;
    }
  }
  for (int k = 0; k < w_count(st) && s == PT_OK; k++) {
    const char *name = w_name(st, k);
    if (is_bookkeeping(name)) continue;
    int known = 0;
    for (int i = 0; i < g->n_params && !known; i++) known = !strcmp(g->params[i].name, name);
    if (!known) s = pt__error(PT_EFORMAT, "%s: unexpected tensor '%s' (not a weight of model %s)", path, name, g->name);
  }
  for (int i = 0; i < g->n_params && s == PT_OK; i++) {
    pt_param *p = &g->params[i];
    int64_t n = pt_shape_numel(p->ndim, p->shape);
    float *d = pt__malloc((size_t)(n ? n : 1) * sizeof *d);
    if (!d) {
      s = pt__error(PT_ENOMEM, "%s: out of memory for '%s'", path, p->name);
      break;
    }
    s = w_read(st, w_find(st, p->name), d);
    if (s != PT_OK) {
      free(d);
      break;
    }
    free(p->data);
    p->data = d;
  }
  w_close(st);
  return s;
}

pt_status pt_weights_save(const pt_graph *g, const char *path, int f16) {
  pt_st_writer *w;
  PT__TRY(pt_st_writer_new(&w));
  pt_status s = PT_OK;
  for (int i = 0; i < g->n_params && s == PT_OK; i++) {
    const pt_param *p = &g->params[i];
    if (!p->data) {
      s = pt__error(PT_EINVAL, "%s: weights of '%s' are not loaded", path, p->name);
      break;
    }
    pt_tensor t = {PT_F32, p->ndim, {0}, p->data, 0};
    memcpy(t.shape, p->shape, sizeof p->shape);
    if (f16) {
      pt_tensor h;
      s = pt_tensor_convert(&t, PT_F16, &h);
      if (s == PT_OK) s = pt_st_writer_add(w, p->name, &h);
      pt_tensor_free(&h);
    } else {
      s = pt_st_writer_add(w, p->name, &t);
    }
  }
  if (s == PT_OK) s = pt_st_writer_metadata(w, "model", g->name);
  if (s == PT_OK) s = pt_st_writer_save(w, path);
  pt_st_writer_free(w);
  return s;
}
