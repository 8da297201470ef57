/* libFuzzer target: the pickle VM alone. */
#include "fuzz_util.h"
#include "io/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  pt__pickle *p = NULL;
  pt__pk *root = NULL;
  pt_status s = pt__pickle_load(data, len, "fuzz.pkl", &p, &root);
  pt_fuzz_check_error(s);
  if (s == PT_OK) {
    (void)pt__pk_get(root, "state_dict");
    pt__pickle_free(p);
  }
  return 0;
}
