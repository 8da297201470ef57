/* The tuning journal (docs/design.md, "Files"): every evaluated config in an SQLite database (WAL mode, one
 * transaction per batch), so a killed run resumes without losing or repeating work. */
#ifndef PT_TUNER_JOURNAL_H
#define PT_TUNER_JOURNAL_H

#include <stdint.h>

#include "app/app_internal.h"
#include "tuner/evaluator.h"

typedef struct pt__journal pt__journal;

/* Opens path. Without resume an existing journal is PT_EEXIST unless overwrite (then it is
 * replaced). With resume, the journal must come from the same app, knob lists, models and
 * fingerprint (app_internal.h), else the error says what differs. */
pt_status pt__journal_open(const char *path, int resume, int overwrite, const pt_app *app, const char *qos_model,
                           const char *cost_model, pt__journal **out);
void pt__journal_close(pt__journal *j);
/* pt__journal_open's check of whether a run may start (before any work is done). */
pt_status pt__journal_check_start(const char *path, int resume, int overwrite);

/* Journaled configs, oldest first: cfgs (n, n_ops); the rest (n); status 0, PT__STOPPED (stopped
 * early: qos is its bound), or the failed config's status (its qos and cost NaN). */
typedef struct pt__journal_rows {
  int64_t n;
  uint16_t *cfgs;
  double *qos, *cost;
  uint8_t *predicted;
  int8_t *status;
} pt__journal_rows;
/* Every journaled config (the rows are the caller's, to free with pt__journal_rows_free, even on failure). */
pt_status pt__journal_read(pt__journal *j, const pt_app *app, pt__journal_rows *rows);
void pt__journal_rows_free(pt__journal_rows *rows);
/* Appends n configs in one transaction. tech[k] names the search technique (may be NULL); fail
 * (NULL: none failed) gives the failed ones' status and error. */
pt_status pt__journal_add(pt__journal *j, const pt_app *app, int n, const uint16_t *cfgs, const double *qos,
                          const double *cost, int predicted, double seconds_each, const char *const *tech,
                          const pt__fail *fail);
/* Stores a key/value (e.g. the baseline QoS) in the meta table. */
pt_status pt__journal_meta(pt__journal *j, const char *key, const char *value);

#endif
