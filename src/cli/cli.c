#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"

int pt_cli_usage_error(const char *cmd, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "predtuner-gpu %s: %s (see 'predtuner-gpu %s --help')\n", cmd, msg, cmd);
  return PT_EXIT_USAGE;
}

int pt_cli_fail(pt_status s) {
  const char *detail = pt_last_error();
  fprintf(stderr, "predtuner-gpu: %s\n", detail[0] ? detail : pt_status_str(s));
  return PT_EXIT_FAIL;
}

static int is_dir(const char *p) {
  struct stat st;
  return p && stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *pt_cli_demo_dir(void) {
  const char *env = getenv("PREDTUNER_DEMO_DIR");
  if (env && env[0]) return env;
  if (is_dir(PT_SOURCE_DEMO_DIR)) return PT_SOURCE_DEMO_DIR;
  if (is_dir(PT_INSTALL_DEMO_DIR)) return PT_INSTALL_DEMO_DIR;
  return NULL;
}

const char *pt_cli_default_device(const char *backend) {
  if (backend && !strcmp(backend, "cpu")) return "cpu";
  if (backend && !strcmp(backend, "cuda")) return "gpu";
  for (int i = 0; i < pt_backend_count(); i++)
    if (pt_backend_available_at(i, NULL)) return strcmp(pt_backend_name_at(i), "cpu") ? "gpu" : "cpu";
  return "cpu";
}

int pt_cli_demo_inputs(char *weights_buf, size_t n, const char **model, const char **weights, const char **data) {
  const char *dir = pt_cli_demo_dir();
  if (!dir) {
    fprintf(stderr, "predtuner-gpu: the bundled demo was not found (set PREDTUNER_DEMO_DIR to zoo/demo)\n");
    return 0;
  }
  snprintf(weights_buf, n, "%s/lenet_mnist.safetensors", dir);
  *model = "lenet_mnist";
  *weights = weights_buf;
  *data = dir;
  return 1;
}
