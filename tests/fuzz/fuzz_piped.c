/* libFuzzer target: piped-binary metadata (first byte even) or the binary's tensor stream (odd). */
#include <stdlib.h>

#include "app/piped_internal.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  if (!len) return 0;
  if (data[0] % 2 == 0) {
    pt__pmeta m;
    pt_status s = pt__pmeta_parse((const char *)data + 1, len - 1, "fuzz.json", "/d", &m);
    pt_fuzz_check_error(s);
    if (s == PT_OK) pt__pmeta_free(&m);
  } else {
    float *d = NULL;
    int64_t r, c;
    pt_status s = pt__parse_hpvm_tensors(data + 1, len - 1, "fuzz.fifo", &d, &r, &c);
    pt_fuzz_check_error(s);
    free(d);
  }
  return 0;
}
