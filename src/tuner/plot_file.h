/* One PLplot figure into a .png or .svg file (plot_file.c): the device check, PLplot's exit and
 * abort handlers turned into a pt_status, the drawing into a temporary file renamed when complete.
 * Shared by the configs plot (plot.c) and the sensitivity heatmap (heatmap.c). */
#ifndef PT_TUNER_PLOT_FILE_H
#define PT_TUNER_PLOT_FILE_H

#include "predtuner/status.h"

/* Colour map 0 as every figure sets it. */
enum { PT__C_BG = 0, PT__C_FG = 1, PT__C_KEPT = 2, PT__C_BEST = 3, PT__C_LINE = 4, PT__C_ALT = 5, PT__C_GREY = 6 };

typedef struct pt__figure {
  int width, height; /* pixels */
  int nx, ny;        /* subpages */
  void (*draw)(void *ctx); /* between plinit and plend1 */
  void *ctx;
} pt__figure;

/* Draws fig into path (.png or .svg, else PT_EINVAL) atomically: PT_EIO with PLplot's message when
 * PLplot gives up, PT_EUNSUPPORTED without a cairo driver. One figure at a time (PLplot is not
 * thread-safe). */
pt_status pt__plot_file(const char *path, const pt__figure *fig);

#endif
