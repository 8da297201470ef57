/* What torch.save's pickles call, modelled without executing anything: persistent ids that name
 * storages, and the rebuild functions that make tensors and parameters of them (OrderedDict becomes a
 * dict; any other call a record of what would be called). */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "io/pickle_vm.h"

static const char *dtype_of_storage(const char *type) {
  static const char *const map[][2] = {
      {"torch.FloatStorage", "F32"}, {"torch.HalfStorage", "F16"},  {"torch.BFloat16Storage", "BF16"},
      {"torch.DoubleStorage", "F64"}, {"torch.LongStorage", "I64"}, {"torch.IntStorage", "I32"},
      {"torch.ShortStorage", "I16"}, {"torch.CharStorage", "I8"},  {"torch.ByteStorage", "U8"},
      {"torch.BoolStorage", "BOOL"}};
  for (size_t i = 0; i < sizeof map / sizeof *map; i++)
    if (!strcmp(type, map[i][0])) return map[i][1];
  return NULL;
}

static int int_tuple(const pt__pk *t, int64_t *v, int max) {
  if (!t || (t->kind != PK_TUPLE && t->kind != PK_LIST) || t->n > max) return -1;
  for (int i = 0; i < t->n; i++) {
    if (t->items[i]->kind != PK_INT) return -1;
    v[i] = t->items[i]->i;
  }
  return t->n;
}

pt_status pt__pkvm_persid(pt__pkvm *m) {
  pt__pk *pid;
  PT__TRY(pt__pkvm_pop(m, &pid));
  if (pid->kind != PK_TUPLE || pid->n < 5 || pid->items[0]->kind != PK_STR || strcmp(pid->items[0]->s, "storage"))
    return pt__pkvm_bad(m, "persistent id is not a ('storage', ...) tuple");
  const pt__pk *type = pid->items[1], *key = pid->items[2], *numel = pid->items[4];
  if (type->kind != PK_GLOBAL || key->kind != PK_STR || numel->kind != PK_INT || numel->i < 0)
    return pt__pkvm_bad(m, "malformed storage id");
  const char *dt = dtype_of_storage(type->s);
  if (!dt) return pt__error(PT_EUNSUPPORTED, "%s: storage type %s is not supported", m->what, type->s);
  pt__pk *o = pt__pkvm_mk(m, PK_STORAGE);
  if (o && !(o->s = pt__strdup(key->s))) o = NULL;
  if (o) {
    snprintf(o->dtype, sizeof o->dtype, "%s", dt);
    o->numel = numel->i;
  }
  return pt__pkvm_push(m, o);
}

pt_status pt__pkvm_reduce(pt__pkvm *m) {
  pt__pk *args, *fn;
  PT__TRY(pt__pkvm_pop(m, &args));
  PT__TRY(pt__pkvm_pop(m, &fn));
  if (args->kind != PK_TUPLE) return pt__pkvm_bad(m, "REDUCE arguments are not a tuple");
  const char *name = fn->kind == PK_GLOBAL ? fn->s : "";
  if (!strcmp(name, "torch._utils._rebuild_tensor_v2") || !strcmp(name, "torch._utils._rebuild_tensor")) {
    pt__pk *t = pt__pkvm_mk(m, PK_TENSOR);
    if (!t) return pt__pkvm_push(m, NULL);
    if (args->n < 4 || args->items[0]->kind != PK_STORAGE || args->items[1]->kind != PK_INT)
      return pt__pkvm_bad(m, "%s with unexpected arguments", name);
    int nd = int_tuple(args->items[2], t->size, PT_MAX_DIMS), ns = int_tuple(args->items[3], t->stride, PT_MAX_DIMS);
    if (nd < 0 || ns != nd) return pt__pkvm_bad(m, "%s: size and stride are not matching tuples of at most %d ints", name, PT_MAX_DIMS);
    t->storage = args->items[0];
    t->offset = args->items[1]->i;
    t->ndim = nd;
    return pt__pkvm_push(m, t);
  }
  if (!strcmp(name, "torch._utils._rebuild_parameter") || !strcmp(name, "torch._utils._rebuild_parameter_with_state")) {
    if (args->n < 1 || args->items[0]->kind != PK_TENSOR) return pt__pkvm_bad(m, "%s without a tensor", name);
    return pt__pkvm_push(m, args->items[0]);
  }
  if (!strcmp(name, "collections.OrderedDict")) return pt__pkvm_push(m, pt__pkvm_mk(m, PK_DICT));
  pt__pk *o = pt__pkvm_mk(m, PK_OBJECT);
  if (o && (pt__pkvm_add(o, fn) || pt__pkvm_add(o, args))) o = NULL;
  return pt__pkvm_push(m, o);
}
