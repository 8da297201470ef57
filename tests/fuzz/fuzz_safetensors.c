/* libFuzzer target: safetensors (header JSON, dtypes, offsets), every float tensor read. */
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  char path[64];
  int fd = pt_fuzz_memfile(data, len, path, sizeof path);
  if (fd < 0) return 0;
  pt_safetensors *st = NULL;
  pt_status s = pt_st_open(path, &st);
  pt_fuzz_check_error(s);
  for (int i = 0; s == PT_OK && i < pt_st_count(st); i++) {
    int64_t sh[PT_MAX_DIMS];
    int64_t n = pt_shape_numel(pt_st_shape(st, i, sh), sh);
    if (!pt_st_is_float(st, i) || n > (1 << 24)) continue;
    float *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    if (d) pt_fuzz_check_error(pt_st_read_f32(st, i, d));
    free(d);
  }
  if (s == PT_OK) pt_st_close(st);
  close(fd);
  return 0;
}
