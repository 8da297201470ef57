/* The sensitivity heatmap (heatmap.c): ops x knob groups, each cell the lowest QoS loss of the
 * group's knobs on that op and that knob's speedup. */
#ifndef PT_TUNER_HEATMAP_H
#define PT_TUNER_HEATMAP_H

#include "predtuner/status.h"

typedef struct pt__heat {
  int n_ops, n_groups;
  const char *const *op_names;  /* (n_ops), top to bottom */
  const char *const *groups;    /* (n_groups), left to right */
  const double *loss, *speedup; /* (n_ops x n_groups) row-major; loss NaN: no knob of the group on the op */
  const char *title, *note;     /* above the map; a line under it (the speedups' source) */
} pt__heat;

/* path ends in .png or .svg; atomic (plot_file.h). */
pt_status pt__heatmap_draw(const pt__heat *h, const char *path);

#endif
