/* HPVM interoperation (docs/design.md, "HPVM interoperation"): HPVM's config text from a tuning run's configs. */
#ifndef PREDTUNER_HPVM_H
#define PREDTUNER_HPVM_H

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes HPVM's config text for the configs of configs_json (our configs.json, or PredTuner's
 * jsonpickle list) to out_path (atomically): "0.0", then a baseline config and every config sorted
 * by speedup, one line per fused group of ops. The op types come from `model` (a zoo network or an .onnx file;
 * NULL: the configs' "app" when it names one) or, when the op names are HPVM's (<type>_<index>),
 * from the names. base_test_qos: the baseline's test QoS, NAN to take configs.json's
 * baseline.test_qos. */
pt_status pt_hpvm_export(const char *configs_json, const char *model, double base_test_qos, const char *out_path);

#ifdef __cplusplus
}
#endif
#endif
