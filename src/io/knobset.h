#ifndef PT_IO_KNOBSET_H
#define PT_IO_KNOBSET_H

#include "predtuner/knobs.h"

struct pt_knob_set {
  pt_knob *k;
  int n, cap;
};

pt_status pt__knobs_append(pt_knob_set *ks, const pt_knob *k);

#endif
