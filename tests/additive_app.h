/* A generic app whose QoS losses are known and additive (QoS = 100 - sum of loss[op][pos], 10 %
 * more on the test set; no measured cost), shared by the model and tuner tests. */
#ifndef PT_TEST_ADDITIVE_APP_H
#define PT_TEST_ADDITIVE_APP_H

#include "predtuner/app.h"

#define GOPS 5
extern const double LOSS[GOPS][3];
/* Configs measured so far (any test may reset it). */
extern int calls;

pt_app *make_app(void);
/* A new empty folder under /tmp (malloc'd path). */
char *tmpdir(void);
/* Removes that folder and frees its path. */
void tmpdir_remove(char *d);

#endif
