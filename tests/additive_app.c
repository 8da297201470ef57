/* The additive generic app of the model and tuner tests (additive_app.h). */
#include "additive_app.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "predtuner/predtuner.h"

const double LOSS[GOPS][3] = {{0, 0.3, 1.2}, {0, 0.1, 0.9}, {0, 0.5, 2.0}, {0, 0.05, 0.4}, {0, 0.7, 3.0}};
int calls;

static pt_status add_measure(void *user, int n, const uint16_t *cfgs, int test, double *qos, double *cost) {
  (void)user;
  for (int k = 0; k < n; k++) {
    double q = 100;
    for (int op = 0; op < GOPS; op++) q -= LOSS[op][cfgs[k * GOPS + op]] * (test ? 1.1 : 1.0);
    qos[k] = q;
    cost[k] = NAN;
    calls++;
  }
  return PT_OK;
}

pt_app *make_app(void) {
  static const pt_generic_knob k[3] = {{"exact", 1.0}, {"half", 2.0}, {"quarter", 4.0}};
  static const char *names[GOPS] = {"a", "b", "c", "d", "e"};
  pt_generic_op ops[GOPS];
  for (int i = 0; i < GOPS; i++) ops[i] = (pt_generic_op){names[i], 10.0 * (i + 1), 3, k};
  pt_app *app = NULL;
  cr_assert_eq(pt_app_generic_create("additive", GOPS, ops, add_measure, NULL, &app), PT_OK, "%s", pt_last_error());
  return app;
}

char *tmpdir(void) {
  char *d = strdup("/tmp/pt_tuner_XXXXXX");
  cr_assert_not_null(mkdtemp(d));
  return d;
}

void tmpdir_remove(char *d) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", d);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  free(d);
}

