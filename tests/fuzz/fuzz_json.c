/* libFuzzer target: the JSON inputs: knob declarations (first byte even) and configs (odd). */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  if (!len) return 0;
  if (data[0] % 2 == 0) {
    pt_knob_set *ks = NULL;
    pt_status s = pt_knobs_parse((const char *)data + 1, len - 1, "fuzz_knobs.json", &ks);
    pt_fuzz_check_error(s);
    if (s == PT_OK) pt_knobs_free(ks);
  } else {
    pt_config_list *cl = NULL;
    pt_status s = pt_configs_parse((const char *)data + 1, len - 1, "fuzz_configs.json", &cl);
    pt_fuzz_check_error(s);
    if (s == PT_OK) pt_configs_free(cl);
  }
  return 0;
}
