/* Options from one table (docs/design.md, "Command line"): each command lists its options with
 * their types and domains once, and that table drives both parsing and --help, so no option can
 * take a value outside its domain or be documented differently from what it does. */
#ifndef PT_CLI_OPTS_H
#define PT_CLI_OPTS_H

#include <stddef.h>
#include <stdio.h>

typedef enum pt_cli_kind {
  PT_CLI_HEADING, /* not an option: a heading line of --help (help holds it) */
  PT_CLI_FLAG,    /* int: set to flag */
  PT_CLI_STR,     /* const char *: the value as given */
  PT_CLI_INT,     /* int in [lo, hi] */
  PT_CLI_LONG,    /* long in [lo, hi] */
  PT_CLI_I64,     /* int64_t in [lo, hi] */
  PT_CLI_U64,     /* uint64_t in [lo, hi] */
  PT_CLI_DBL,     /* finite double in [lo, hi] */
  PT_CLI_LIST,    /* pt_cli_list: the option may be repeated */
  PT_CLI_ARG,     /* const char *: a positional argument (name: how help calls it, "CONFIGS.json") */
} pt_cli_kind;

#define PT_CLI_LIST_MAX 4096
typedef struct pt_cli_list {
  const char *v[PT_CLI_LIST_MAX];
  int n;
} pt_cli_list;

typedef struct pt_cli_opt_def {
  const char *name; /* "--max-iter" */
  pt_cli_kind kind;
  size_t off;       /* where the value goes in the command's argument struct */
  double lo, hi;    /* the domain of a number */
  int flag;         /* PT_CLI_FLAG: the value stored */
  const char *meta; /* --help: the value's name ("N", "FILE"), NULL for a flag */
  const char *help; /* --help: what it does; "{}" is replaced by the default (from the defaults struct) */
  unsigned in;      /* which commands of a shared table take it (bit mask), 0: all */
} pt_cli_opt_def;

/* Parses argv[1..argc) into args by the table (only options whose .in matches mask). "--name VALUE"
 * and "--name=VALUE" both work; a value that is missing (or looks like another option, "--...")
 * is a usage error, as is a number outside its domain or an unknown argument. Returns PT_EXIT_OK,
 * PT_EXIT_USAGE (the message printed), or -1 when --help or -h was given. */
int pt_cli_parse(const char *cmd, const pt_cli_opt_def *defs, int n_defs, unsigned mask, void *args, int argc,
                 char **argv);
/* The table's --help lines (options whose .in matches mask), defaults taken from defaults. */
void pt_cli_print_opts(FILE *out, const pt_cli_opt_def *defs, int n_defs, unsigned mask, const void *defaults);

#endif
