/* The tuning journal (docs/design.md, "Files"): every evaluated config in an SQLite database (WAL mode, one
 * transaction per batch), so a killed run resumes without losing or repeating work. */
#ifndef PT_TUNER_JOURNAL_H
#define PT_TUNER_JOURNAL_H

#include <stdint.h>

#include "app/app_internal.h"

typedef struct pt__journal pt__journal;

/* Opens path. Without resume an existing journal is replaced. With resume, the journal must come
 * from the same app, knob lists and models (signature), else the error says what differs. */
pt_status pt__journal_open(const char *path, int resume, const pt_app *app, const char *qos_model,
                           const char *cost_model, pt__journal **out);
void pt__journal_close(pt__journal *j);
/* Every journaled config, oldest first (arrays malloc'd; cfgs is (n, n_ops)). */
pt_status pt__journal_read(pt__journal *j, const pt_app *app, int64_t *n, uint16_t **cfgs, double **qos,
                           double **cost, uint8_t **predicted);
/* Appends n configs in one transaction. tech[k] names the search technique (may be NULL). */
pt_status pt__journal_add(pt__journal *j, const pt_app *app, int n, const uint16_t *cfgs, const double *qos,
                          const double *cost, int predicted, double seconds_each, const char *const *tech);
/* Stores a key/value (e.g. the baseline QoS) in the meta table. */
pt_status pt__journal_meta(pt__journal *j, const char *key, const char *value);

#endif
