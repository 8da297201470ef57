/* The CPU backend built without oneDNN (PT_DNNL off or not found): every convolution runs on the
 * backend's own kernels (cpu_conv.c). */
#include "backend/cpu/cpu_internal.h"
#include "core/error.h"

int pt__cpu_dnnl_takes(const pt_conv_desc *d, int mode) {
  (void)d, (void)mode;
  return 0;
}

pt_status pt__cpu_dnnl_conv2d(pt_cpu_ctx *ctx, const pt_conv_desc *d, const float *x, const float *w, const float *b,
                              float *y) {
  (void)ctx, (void)d, (void)x, (void)w, (void)b, (void)y;
  return pt__error(PT_EUNSUPPORTED, "cpu conv2d: built without oneDNN");
}

void pt__cpu_dnnl_free(pt__cpu_dnnl *dn) { (void)dn; }

const char *pt__cpu_dnnl_describe(void) { return NULL; }
