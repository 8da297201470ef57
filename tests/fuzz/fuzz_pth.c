/* libFuzzer target: PyTorch checkpoints (zip reader, pickle VM, storages), every tensor read. */
#include <stdlib.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  pt_pth *p = NULL;
  pt_status s = pt_pth_open_buffer(data, len, "fuzz.pth", &p);
  pt_fuzz_check_error(s);
  if (s != PT_OK) return 0;
  for (int i = 0; i < pt_pth_count(p); i++) {
    int64_t sh[PT_MAX_DIMS];
    int64_t n = pt_shape_numel(pt_pth_shape(p, i, sh), sh);
    if (!pt_pth_is_float(p, i) || n > (1 << 24)) continue;
    float *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    if (d) pt_fuzz_check_error(pt_pth_read_f32(p, i, d));
    free(d);
  }
  pt_pth_close(p);
  return 0;
}
