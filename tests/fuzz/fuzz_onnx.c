/* libFuzzer target: ONNX import (protobuf-c parse, then conversion to the graph IR). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  pt_graph *g = NULL;
  pt_status s = pt_onnx_import(data, len, "fuzz.onnx", NULL, 0, &g);
  pt_fuzz_check_error(s);
  if (s == PT_OK) {
    (void)pt_graph_total_flops(g);
    pt_graph_free(g);
  }
  return 0;
}
