/* The knob set behind the opaque pt_knob_set, for the built-in set (graph/knobs.c) and the knob
 * file parser (io/knobfile.c). */
#ifndef PT_GRAPH_KNOBSET_H
#define PT_GRAPH_KNOBSET_H

#include "predtuner/knobs.h"

struct pt_knob_set {
  pt_knob *k; /* (n) in declaration order */
  int n, cap;
};

/* Appends a copy of k (names are not checked for duplicates here). */
pt_status pt__knobs_append(pt_knob_set *ks, const pt_knob *k);

#endif
