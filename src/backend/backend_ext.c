/* Optional backend features by name (backend/backend_ext.h). */
#include "backend/backend_ext.h"

#include "core/error.h"

pt_backend_proc pt__backend_get_proc(const pt_backend *be, const char *name) {
  return be && be->iface->get_proc ? be->iface->get_proc(be->ctx, name) : NULL;
}

int pt__backend_has_p1(const pt_backend *be) {
  return pt__backend_get_proc(be, PT_BACKEND_PROC_P1_UPLOAD) && pt__backend_get_proc(be, PT_BACKEND_PROC_P1_PREDICT) &&
         pt__backend_get_proc(be, PT_BACKEND_PROC_P1_FREE);
}

pt_status pt__backend_p1_upload(pt_backend *be, int rows, int cols, int n_slots, const float *base, const float *delta,
                                const int32_t *labels, void **model) {
  if (!pt__backend_has_p1(be))
    return pt__error(PT_EUNSUPPORTED, "backend %s does not score P1 on its device", be ? be->iface->name : "(none)");
  pt_backend_p1_upload_fn f = (pt_backend_p1_upload_fn)pt__backend_get_proc(be, PT_BACKEND_PROC_P1_UPLOAD);
  return f(be->ctx, rows, cols, n_slots, base, delta, labels, model);
}

pt_status pt__backend_p1_predict(pt_backend *be, void *model, int n, int max_k, const int *slots, const int *ns,
                                 int64_t *correct) {
  pt_backend_p1_predict_fn f = (pt_backend_p1_predict_fn)pt__backend_get_proc(be, PT_BACKEND_PROC_P1_PREDICT);
  if (!f) return pt__error(PT_EUNSUPPORTED, "backend %s does not score P1 on its device", be ? be->iface->name : "(none)");
  return f(be->ctx, model, n, max_k, slots, ns, correct);
}

void pt__backend_p1_free(pt_backend *be, void *model) {
  pt_backend_p1_free_fn f = (pt_backend_p1_free_fn)pt__backend_get_proc(be, PT_BACKEND_PROC_P1_FREE);
  if (f && model) f(be->ctx, model);
}
