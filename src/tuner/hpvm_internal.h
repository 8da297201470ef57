/* HPVM config text for the piped-binary app. */
#ifndef PT_TUNER_HPVM_INTERNAL_H
#define PT_TUNER_HPVM_INTERNAL_H

#include <stddef.h>

#include "predtuner/status.h"

/* HPVM's config text ("0.0" and one block, speedup 1.0, QoS 1.0, loss 0.0: what PredTuner writes for
 * a piped binary) for one config: ops named <type>_<index> (indices 0..n_ops-1 in any order), with
 * their knob names. *text is malloc'ed. */
pt_status pt__hpvm_config_text(int n_ops, char *const *names, const char *const *knobs, char **text, size_t *len);

#endif
