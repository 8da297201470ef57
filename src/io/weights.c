/* Binding a safetensors file to a graph's state_dict keys. */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "graph/graph_internal.h"
#include "predtuner/io.h"

static int is_bookkeeping(const char *name) {
  const char *suffix = "num_batches_tracked";
  size_t n = strlen(name), k = strlen(suffix);
  return n >= k && !strcmp(name + n - k, suffix);
}

pt_status pt_weights_load(pt_graph *g, const char *path) {
  pt_safetensors *st;
  PT__TRY(pt_st_open(path, &st));
  pt_status s = PT_OK;
  char a[96], b[96];
  for (int i = 0; i < g->n_params && s == PT_OK; i++) {
    pt_param *p = &g->params[i];
    int k = pt_st_find(st, p->name);
    if (k < 0) {
      s = pt__error(PT_ENOTFOUND, "%s: missing tensor '%s' (model %s expects shape %s)", path, p->name, g->name,
                    pt_shape_str(a, sizeof a, p->ndim, p->shape));
      break;
    }
    int64_t shape[PT_MAX_DIMS];
    int nd = pt_st_shape(st, k, shape);
    if (nd != p->ndim || memcmp(shape, p->shape, (size_t)nd * sizeof *shape)) {
      s = pt__error(PT_ESHAPE, "%s: tensor '%s': expected shape %s, found %s", path, p->name,
                    pt_shape_str(a, sizeof a, p->ndim, p->shape), pt_shape_str(b, sizeof b, nd, shape));
      break;
    }
    if (!pt_st_is_float(st, k)) {
      s = pt__error(PT_EFORMAT, "%s: tensor '%s' has dtype %s, expected F32, F16 or BF16", path, p->name,
                    pt_st_dtype(st, k));
      break;
    }
  }
  for (int k = 0; k < pt_st_count(st) && s == PT_OK; k++) {
    const char *name = pt_st_name(st, k);
    if (is_bookkeeping(name)) continue;
    int known = 0;
    for (int i = 0; i < g->n_params && !known; i++) known = !strcmp(g->params[i].name, name);
    if (!known) s = pt__error(PT_EFORMAT, "%s: unexpected tensor '%s' (not a weight of model %s)", path, name, g->name);
  }
  for (int i = 0; i < g->n_params && s == PT_OK; i++) {
    pt_param *p = &g->params[i];
    int64_t n = pt_shape_numel(p->ndim, p->shape);
    float *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    if (!d) {
      s = pt__error(PT_ENOMEM, "%s: out of memory for '%s'", path, p->name);
      break;
    }
    s = pt_st_read_f32(st, pt_st_find(st, p->name), d);
    if (s != PT_OK) {
      free(d);
      break;
    }
    free(p->data);
    p->data = d;
  }
  pt_st_close(st);
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
