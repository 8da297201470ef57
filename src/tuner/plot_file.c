/* A PLplot figure into a file, atomically, without PLplot printing or exiting (plot_file.h). */
#include <errno.h>
#include <plplot/plplot.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "tuner/plot_file.h"

static int has_device(const char *want) {
  const char *menu[128], *names[128], **m = menu, **d = names;
  int n = 128;
  plgDevs(&m, &d, &n);
  for (int i = 0; i < n; i++)
    if (!strcmp(names[i], want)) return 1;
  return 0;
}

/* A new PLplot stream on device dev drawing into file tmp. */
static void open_stream(const char *dev, const char *tmp, const pt__figure *fig) {
  char geom[32];
  snprintf(geom, sizeof geom, "%dx%d", fig->width, fig->height);
  plsdev(dev);
  plsfnam(tmp);
  plsetopt("geometry", geom);
  plscol0(PT__C_BG, 255, 255, 255);
  plscol0(PT__C_FG, 0, 0, 0);
  plscol0(PT__C_KEPT, 31, 119, 180);
  plscol0(PT__C_BEST, 214, 39, 40);
  plscol0(PT__C_LINE, 120, 120, 120);
  plscol0(PT__C_ALT, 44, 160, 44);
  plscol0(PT__C_GREY, 225, 225, 225);
  plssub(fig->nx, fig->ny);
  plinit();
  plschr(0, 0.9);
  plssym(0, 0.9);
}

/* PLplot reports errors by printing and calling exit(); library code must do neither. Its abort
 * handler only records the message; its exit handler records it and jumps back into draw(),
 * which turns it into a pt_status. */
static jmp_buf *g_plot_jump;
static char g_plot_msg[256];

static void plot_abort(PLCHAR_VECTOR msg) { snprintf(g_plot_msg, sizeof g_plot_msg, "%s", msg ? msg : ""); }

static int plot_exit(PLCHAR_VECTOR msg) {
  plot_abort(msg);
  if (g_plot_jump) longjmp(*g_plot_jump, 1);
  return 1;
}

/* The drawing itself, into tmp; PT_EIO with PLplot's message when PLplot gives up. */
static pt_status draw(const pt__figure *fig, const char *dev, const char *tmp, const char *path) {
  jmp_buf jump;
  g_plot_msg[0] = '\0';
  g_plot_jump = &jump;
  plsexit(plot_exit);
  plsabort(plot_abort);
  if (setjmp(jump)) { /* PLplot's state is lost with this stream; the process goes on */
    g_plot_jump = NULL;
    return pt__error(PT_EIO, "%s: PLplot failed: %s", path, g_plot_msg);
  }
  open_stream(dev, tmp, fig);
  fig->draw(fig->ctx);
  plend1();
  g_plot_jump = NULL;
  if (g_plot_msg[0]) return pt__error(PT_EIO, "%s: PLplot failed: %s", path, g_plot_msg);
  return PT_OK;
}

pt_status pt__plot_file(const char *path, const pt__figure *fig) {
  const char *ext = strrchr(path, '.');
  const char *dev = ext && !strcmp(ext, ".svg") ? "svg" : ext && !strcmp(ext, ".png") ? "pngcairo" : NULL;
  if (!dev) return pt__error(PT_EINVAL, "%s: a plot file must end in .png or .svg", path);
  PLINT old, strm = -1;
  plgstrm(&old);
  plmkstrm(&strm);
  if (strm < 0) return pt__error(PT_EIO, "%s: PLplot has no free stream left", path);
  if (!has_device(dev)) {
    plend1();
    plsstrm(old);
    return pt__error(PT_EUNSUPPORTED, "%s: PLplot has no '%s' driver here (Debian: apt-get install plplot-driver-cairo)",
                     path, dev);
  }
  char tmp[4200]; /* atomic: draw to a temporary file, rename when complete */
  snprintf(tmp, sizeof tmp, "%s.tmp%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb"); /* PLplot would report a file it cannot create only on stderr */
  pt_status s = f ? PT_OK : pt__error(PT_EIO, "%s: cannot write: %s", path, strerror(errno));
  if (f) fclose(f);
  if (s == PT_OK) s = draw(fig, dev, tmp, path);
  else plend1();
  plsstrm(old);
  struct stat st;
  if (s == PT_OK && (stat(tmp, &st) != 0 || st.st_size == 0)) s = pt__error(PT_EIO, "%s: PLplot wrote nothing", path);
  if (s != PT_OK) {
    unlink(tmp);
    return s;
  }
  if (rename(tmp, path)) {
    unlink(tmp);
    return pt__error(PT_EIO, "%s: cannot write: %s", path, strerror(errno));
  }
  return PT_OK;
}
