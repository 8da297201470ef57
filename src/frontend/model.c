/* One entry point for "--model X [--weights W]": a zoo network or an ONNX file. */
#include <string.h>

#include "core/error.h"
#include "predtuner/frontend.h"
#include "predtuner/io.h"
#include "predtuner/zoo.h"

int pt_model_is_onnx(const char *model) {
  size_t n = model ? strlen(model) : 0;
  return n > 5 && !strcmp(model + n - 5, ".onnx");
}

pt_status pt_model_load(const char *model, const char *weights, pt_graph **out) {
  *out = NULL;
  if (!model || !*model) return pt__error(PT_EINVAL, "no model given (a zoo name or an .onnx file)");
  if (pt_model_is_onnx(model)) {
    if (weights)
      return pt__error(PT_EINVAL, "%s: an ONNX model carries its weights (initializers); drop --weights %s", model, weights);
    return pt_onnx_load(model, out);
  }
  if (!weights) return pt__error(PT_EINVAL, "model %s: --weights is required for a zoo network", model);
  pt_graph *g;
  PT__TRY(pt_zoo_build(model, &g));
  pt_status s = pt_weights_load(g, weights);
  if (s != PT_OK) {
    pt_graph_free(g);
    return s;
  }
  *out = g;
  return PT_OK;
}
