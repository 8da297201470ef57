/* pt_abi_layout: one table of the public structs' fields (include/predtuner/abi.h). */
#include <stddef.h>
#include <string.h>

#include "predtuner/abi.h"
#include "predtuner/app.h"
#include "predtuner/knobs.h"
#include "predtuner/tuner.h"

typedef struct abi_field {
  const char *type, *field; /* field NULL: the struct's size */
  int64_t value;
} abi_field;

#define F(T, f) {#T, #f, (int64_t)offsetof(T, f)}
#define S(T) {#T, NULL, (int64_t)sizeof(T)}
static const abi_field fields[] = {
    S(pt_dnn_app_opts), F(pt_dnn_app_opts, model), F(pt_dnn_app_opts, weights), F(pt_dnn_app_opts, data),
    F(pt_dnn_app_opts, backend), F(pt_dnn_app_opts, threads), F(pt_dnn_app_opts, batch_size),
    F(pt_dnn_app_opts, tune_offset), F(pt_dnn_app_opts, tune_count), F(pt_dnn_app_opts, test_offset),
    F(pt_dnn_app_opts, test_count), F(pt_dnn_app_opts, knobs_file), F(pt_dnn_app_opts, target_device),
    F(pt_dnn_app_opts, promise_ranges), F(pt_dnn_app_opts, seed), F(pt_dnn_app_opts, name),
    F(pt_dnn_app_opts, strict), F(pt_dnn_app_opts, prefix_cache_mib),

    S(pt_tune_opts), F(pt_tune_opts, max_iter), F(pt_tune_opts, qos_tuner_threshold),
    F(pt_tune_opts, qos_keep_threshold), F(pt_tune_opts, absolute), F(pt_tune_opts, take_best_n),
    F(pt_tune_opts, test_configs), F(pt_tune_opts, validate), F(pt_tune_opts, qos_model),
    F(pt_tune_opts, cost_model), F(pt_tune_opts, seed), F(pt_tune_opts, search_batch),
    F(pt_tune_opts, output_dir), F(pt_tune_opts, model_storage), F(pt_tune_opts, resume),
    F(pt_tune_opts, overwrite), F(pt_tune_opts, force_reinit), F(pt_tune_opts, max_failures),
    F(pt_tune_opts, early_stop), F(pt_tune_opts, time_passes), F(pt_tune_opts, time_budget),
    F(pt_tune_opts, progress), F(pt_tune_opts, measurer),

    S(pt_tuned_config), F(pt_tuned_config, qos), F(pt_tuned_config, cost), F(pt_tuned_config, speedup),
    F(pt_tuned_config, validated_qos), F(pt_tuned_config, test_qos), F(pt_tuned_config, predicted),
    F(pt_tuned_config, measured_seconds), F(pt_tuned_config, measured_speedup), F(pt_tuned_config, knobs),

    S(pt_knob), F(pt_knob, name), F(pt_knob, cls), F(pt_knob, exp_speedup), F(pt_knob, devices),
    F(pt_knob, has_priority), F(pt_knob, baseline_priority), F(pt_knob, perf_dir), F(pt_knob, stride),
    F(pt_knob, offset), F(pt_knob, skip_every), F(pt_knob, skip_offset), F(pt_knob, interp_rate),
    F(pt_knob, use_fp16), F(pt_knob, noise_level),

    S(pt_thresholds), F(pt_thresholds, tuner), F(pt_thresholds, tune_keep), F(pt_thresholds, test_keep),

    S(pt_tune_summary), F(pt_tune_summary, baseline_tune_qos), F(pt_tune_summary, baseline_test_qos),
    F(pt_tune_summary, baseline_config_tune_qos), F(pt_tune_summary, baseline_cost),
    F(pt_tune_summary, exact_speedup), F(pt_tune_summary, thresholds), F(pt_tune_summary, evaluated),
    F(pt_tune_summary, resumed), F(pt_tune_summary, space_size), F(pt_tune_summary, search_seconds),
    F(pt_tune_summary, configs_per_s), F(pt_tune_summary, total_seconds), F(pt_tune_summary, validated),
    F(pt_tune_summary, tested), F(pt_tune_summary, mean_abs_validation_error), F(pt_tune_summary, failed),
    F(pt_tune_summary, failed_by), F(pt_tune_summary, dropped), F(pt_tune_summary, early_stopped),
    F(pt_tune_summary, stopped), F(pt_tune_summary, stopped_on_time), F(pt_tune_summary, timed_passes),
    F(pt_tune_summary, timed_images), F(pt_tune_summary, exact_seconds), F(pt_tune_summary, mean_speedup_error),
};
#undef F
#undef S

int64_t pt_abi_layout(const char *type, const char *field) {
  if (!type) return -1;
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
    const abi_field *a = &fields[i];
    if (strcmp(a->type, type)) continue;
    if (!field ? !a->field : a->field && !strcmp(a->field, field)) return a->value;
  }
  return -1;
}

const char *pt_version(void) { return PT_VERSION_STRING; }
