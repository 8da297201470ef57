/* The option table's parser and --help printer (cli_opts.h). */
#include "cli/cli_opts.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int in_mask(const pt_cli_opt_def *d, unsigned mask) { return !d->in || (d->in & mask); }

/* The whole of s as an integer in [lo, hi]. */
static int parse_int(const char *s, double lo, double hi, long long *out) {
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || end == s || *end || (double)v < lo || (double)v > hi) return 0;
  *out = v;
  return 1;
}

static int set_value(const char *cmd, const pt_cli_opt_def *d, void *args, const char *v) {
  char *dst = (char *)args + d->off;
  long long i = 0;
  switch (d->kind) {
  case PT_CLI_STR: *(const char **)dst = v; return PT_EXIT_OK;
  case PT_CLI_LIST: {
    pt_cli_list *l = (pt_cli_list *)dst;
    if (l->n == PT_CLI_LIST_MAX) return pt_cli_usage_error(cmd, "%s given more than %d times", d->name, PT_CLI_LIST_MAX);
    l->v[l->n++] = v;
    return PT_EXIT_OK;
  }
  case PT_CLI_DBL: {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || !isfinite(x) || x < d->lo || x > d->hi)
      return pt_cli_usage_error(cmd, "%s expects a number in [%g, %g], got '%s'", d->name, d->lo, d->hi, v);
    *(double *)dst = x;
    return PT_EXIT_OK;
  }
  default:
    if (!parse_int(v, d->lo, d->hi, &i))
      return pt_cli_usage_error(cmd, "%s expects an integer in [%.0f, %.0f], got '%s'", d->name, d->lo, d->hi, v);
    if (d->kind == PT_CLI_INT) *(int *)dst = (int)i;
    else if (d->kind == PT_CLI_LONG) *(long *)dst = (long)i;
    else if (d->kind == PT_CLI_I64) *(int64_t *)dst = (int64_t)i;
    else *(uint64_t *)dst = (uint64_t)i;
    return PT_EXIT_OK;
  }
}

/* The definition argv[*i] names (advancing past its value), or an exit status. */
static int one(const char *cmd, const pt_cli_opt_def *defs, int n_defs, unsigned mask, void *args, int argc,
               char **argv, int *i) {
  const char *a = argv[*i];
  for (int k = 0; a[0] != '-' && k < n_defs; k++) { /* the first positional not given yet */
    const char **slot = (const char **)((char *)args + defs[k].off);
    if (defs[k].kind != PT_CLI_ARG || !in_mask(&defs[k], mask) || *slot) continue;
    *slot = a;
    return PT_EXIT_OK;
  }
  for (int k = 0; k < n_defs; k++) {
    const pt_cli_opt_def *d = &defs[k];
    if (d->kind == PT_CLI_HEADING || d->kind == PT_CLI_ARG || !in_mask(d, mask)) continue;
    size_t len = strlen(d->name);
    if (strncmp(a, d->name, len) || (a[len] != '\0' && a[len] != '=')) continue;
    if (d->kind == PT_CLI_FLAG) {
      if (a[len] == '=') return pt_cli_usage_error(cmd, "%s takes no value", d->name);
      *(int *)((char *)args + d->off) = d->flag;
      return PT_EXIT_OK;
    }
    const char *v = a[len] == '=' ? a + len + 1 : *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!v || (a[len] != '=' && !strncmp(v, "--", 2)))
      return pt_cli_usage_error(cmd, "%s needs a value (%s)", d->name, d->meta ? d->meta : "a value");
    if (a[len] != '=') ++*i;
    return set_value(cmd, d, args, v);
  }
  return pt_cli_usage_error(cmd, a[0] == '-' ? "unknown argument '%s'" : "unexpected argument '%s'", a);
}

int pt_cli_parse(const char *cmd, const pt_cli_opt_def *defs, int n_defs, unsigned mask, void *args, int argc,
                 char **argv) {
  for (int i = 1; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return -1;
  for (int i = 1; i < argc; i++) {
    int r = one(cmd, defs, n_defs, mask, args, argc, argv, &i);
    if (r != PT_EXIT_OK) return r;
  }
  return PT_EXIT_OK;
}

/* The default of d as text. */
static void default_text(const pt_cli_opt_def *d, const void *defaults, char *buf, size_t n) {
  const char *src = (const char *)defaults + d->off;
  switch (d->kind) {
  case PT_CLI_INT: snprintf(buf, n, "%d", *(const int *)src); break;
  case PT_CLI_LONG: snprintf(buf, n, "%ld", *(const long *)src); break;
  case PT_CLI_I64: snprintf(buf, n, "%" PRId64, *(const int64_t *)src); break;
  case PT_CLI_U64: snprintf(buf, n, "%" PRIu64, *(const uint64_t *)src); break;
  case PT_CLI_DBL: snprintf(buf, n, "%g", *(const double *)src); break;
  case PT_CLI_STR: snprintf(buf, n, "%s", *(const char *const *)src ? *(const char *const *)src : "none"); break;
  default: snprintf(buf, n, "?"); break;
  }
}

void pt_cli_print_opts(FILE *out, const pt_cli_opt_def *defs, int n_defs, unsigned mask, const void *defaults) {
  for (int k = 0; k < n_defs; k++) {
    const pt_cli_opt_def *d = &defs[k];
    if (!in_mask(d, mask)) continue;
    if (d->kind == PT_CLI_HEADING) {
      fprintf(out, "%s\n", d->help);
      continue;
    }
    char left[64], text[512], def[64];
    snprintf(left, sizeof left, "%s%s%s", d->name, d->meta ? " " : "", d->meta ? d->meta : "");
    const char *brace = strstr(d->help, "{}");
    if (brace && defaults) {
      default_text(d, defaults, def, sizeof def);
      snprintf(text, sizeof text, "%.*s%s%s", (int)(brace - d->help), d->help, def, brace + 2);
    } else {
      snprintf(text, sizeof text, "%s", d->help);
    }
    if (strlen(left) < 25) fprintf(out, "  %-25s", left);
    else fprintf(out, "  %s\n  %-25s", left, "");
    for (const char *c = text; *c; c++) /* a help text's later lines line up under its first */
      c[0] == '\n' ? fprintf(out, "\n  %-25s", "") : fputc(*c, out);
    fputc('\n', out);
  }
}
