/* The layout of the public option and result structs, for bindings that mirror them without a C
 * compiler (the Python package, python/predtuner_gpu/_lib.py, checks every field it declares
 * against these numbers when it loads the library, so a mismatch is an import error, never a
 * field read from the wrong bytes). */
#ifndef PREDTUNER_ABI_H
#define PREDTUNER_ABI_H

#include <stdint.h>

#define PT_VERSION_STRING "0.1.0"

#ifdef __cplusplus
extern "C" {
#endif

/* sizeof(type) when field is NULL, else offsetof(type, field); -1 for a type or field not in the
 * table. Types: pt_dnn_app_opts, pt_tune_opts, pt_tuned_config, pt_tune_summary, pt_thresholds, pt_knob. */
int64_t pt_abi_layout(const char *type, const char *field);

/* PT_VERSION_STRING of the library loaded (a binding checks it against its own). */
const char *pt_version(void);

#ifdef __cplusplus
}
#endif
#endif
