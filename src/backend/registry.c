/* The backend registry. CMake generates backend_list.h with one PT_BACKEND(name) line per backend
 * that was built, so core code never needs to know whether CUDA exists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_iface.h"
#include "core/error.h"
#include "predtuner/log.h"

#define PT_BACKEND(name) extern const pt_backend_reg pt__backend_reg_##name;
#include "backend_list.h"
#undef PT_BACKEND

static const pt_backend_reg *const pt__backends[] = {
#define PT_BACKEND(name) &pt__backend_reg_##name,
#include "backend_list.h"
#undef PT_BACKEND
};
#define PT__NB_BUILT ((int)(sizeof pt__backends / sizeof pt__backends[0]))
#define PT__NB_EXTRA 8

/* Backends registered at run time (tests; later, out-of-tree backends), after the built ones. */
static const pt_backend_reg *pt__extra[PT__NB_EXTRA];
static int pt__n_extra;
#define PT__NB (PT__NB_BUILT + pt__n_extra)

static const pt_backend_reg *reg_at(int i) { return i < PT__NB_BUILT ? pt__backends[i] : pt__extra[i - PT__NB_BUILT]; }

pt_status pt__backend_register(const pt_backend_reg *r) {
  for (int i = 0; i < PT__NB; i++)
    if (!strcmp(reg_at(i)->name, r->name)) return pt__error(PT_EEXIST, "backend '%s' is already registered", r->name);
  if (pt__n_extra == PT__NB_EXTRA) return pt__error(PT_ENOMEM, "no room for backend '%s'", r->name);
  pt__extra[pt__n_extra++] = r;
  return PT_OK;
}

int pt_backend_count(void) { return PT__NB; }
const char *pt_backend_name_at(int i) { return i >= 0 && i < PT__NB ? reg_at(i)->name : NULL; }

int pt_backend_available_at(int i, const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  *why = "no such backend";
  return i >= 0 && i < PT__NB && reg_at(i)->available(why);
}

pt_status pt_backend_create(const char *name, int threads, pt_backend **out) {
  *out = NULL;
  int want_auto = !strcmp(name, "auto");
  for (int i = 0; i < (want_auto ? PT__NB_BUILT : PT__NB); i++) { /* auto picks a built-in one */
    const pt_backend_reg *r = reg_at(i);
    if (!want_auto && strcmp(r->name, name)) continue;
    const char *why = "";
    if (!r->available(&why)) {
      if (want_auto) {
        pt_log(PT_LOG_INFO, "backend auto: %s cannot run here (%s); trying the next", r->name, why);
        continue;
      }
      return pt__error(PT_ENODEV, "backend '%s' cannot run here: %s", name, why);
    }
    return r->create(threads, out);
  }
  if (want_auto) return pt__error(PT_ENODEV, "no backend can run here");
  char known[128];
  size_t at = 0;
  for (int i = 0; i < PT__NB && at < sizeof known; i++)
    at += (size_t)snprintf(known + at, sizeof known - at, "%s%s", i ? ", " : "", reg_at(i)->name);
  return pt__error(PT_ENOTFOUND, "unknown backend '%s' (built: %s, or auto)", name, known);
}

void pt_backend_free(pt_backend *be) {
  if (be) be->iface->destroy(be->ctx);
  free(be);
}

const char *pt_backend_name(const pt_backend *be) { return be->iface->name; }
const char *pt_backend_describe(const pt_backend *be) { return be->iface->describe(be->ctx); }
