#include "tuner/journal.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

struct pt__journal {
  sqlite3 *db;
  char path[4096];
  sqlite3_stmt *ins;
};

static pt_status db_error(pt__journal *j, const char *what) {
  return pt__error(PT_EIO, "%s: %s: %s", j->path, what, j->db ? sqlite3_errmsg(j->db) : "cannot open");
}

static pt_status exec_sql(pt__journal *j, const char *sql) {
  char *err = NULL;
  if (sqlite3_exec(j->db, sql, NULL, NULL, &err) != SQLITE_OK) {
    pt_status s = pt__error(PT_EIO, "%s: %s", j->path, err ? err : "SQL error");
    sqlite3_free(err);
    return s;
  }
  return PT_OK;
}

/* A fingerprint of the ops and their knob lists: positions in a journal mean the same knobs. */
static void space_signature(const pt_app *app, char *buf, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (int op = 0; op < app->n_ops; op++) {
    for (const char *p = app->op_names[op]; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;
    for (int k = 0; k < app->n_knobs[op]; k++) {
      for (const char *p = app->entry_knob[app->entry_off[op] + k]; *p; p++) h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
      h = (h ^ 0xfe) * 0x100000001b3ull;
    }
  }
  snprintf(buf, n, "%d ops, %d knob choices, %016llx", app->n_ops, app->n_entries, (unsigned long long)h);
}

static pt_status get_meta(pt__journal *j, const char *key, char *val, size_t n) {
  sqlite3_stmt *st = NULL;
  val[0] = '\0';
  if (sqlite3_prepare_v2(j->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL) != SQLITE_OK)
    return db_error(j, "reading meta");
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
    snprintf(val, n, "%s", (const char *)sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  return PT_OK;
}

pt_status pt__journal_meta(pt__journal *j, const char *key, const char *value) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(j->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1, &st, NULL) != SQLITE_OK)
    return db_error(j, "writing meta");
  sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
  int rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? PT_OK : db_error(j, "writing meta");
}

static void remove_db(const char *path) {
  char p[4200];
  unlink(path);
  snprintf(p, sizeof p, "%s-wal", path);
  unlink(p);
  snprintf(p, sizeof p, "%s-shm", path);
  unlink(p);
}

pt_status pt__journal_open(const char *path, int resume, const pt_app *app, const char *qos_model,
                           const char *cost_model, pt__journal **out) {
  *out = NULL;
  pt__journal *j = pt__calloc(1, sizeof *j);
  if (!j) return pt__error(PT_ENOMEM, "%s: out of memory", path);
  snprintf(j->path, sizeof j->path, "%s", path);
  if (resume && access(path, F_OK) != 0) {
    free(j);
    return pt__error(PT_ENOTFOUND, "%s: --resume but there is no journal to resume", path);
  }
  if (!resume) remove_db(path);
  pt_status s = PT_OK;
  if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    s = db_error(j, "cannot open");
  if (s == PT_OK) s = exec_sql(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  if (s == PT_OK)
    s = exec_sql(j, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
                    "CREATE TABLE IF NOT EXISTS evals(id INTEGER PRIMARY KEY, config TEXT NOT NULL UNIQUE,"
                    " knobs TEXT, qos REAL, cost REAL, predicted INTEGER, seconds REAL, technique TEXT,"
                    " time TEXT DEFAULT CURRENT_TIMESTAMP);");
  char sig[128], want[3][256], have[256];
  space_signature(app, sig, sizeof sig);
  snprintf(want[0], sizeof want[0], "%s", app->name);
  snprintf(want[1], sizeof want[1], "%s", qos_model ? qos_model : "empirical");
  snprintf(want[2], sizeof want[2], "%s", cost_model ? cost_model : "empirical");
  const char *keys[4] = {"app", "qos_model", "cost_model", "space"};
  const char *vals[4] = {want[0], want[1], want[2], sig};
  for (int k = 0; s == PT_OK && k < 4; k++) {
    s = get_meta(j, keys[k], have, sizeof have);
    if (s != PT_OK) break;
    if (!have[0]) s = pt__journal_meta(j, keys[k], vals[k]);
    else if (strcmp(have, vals[k]))
      s = pt__error(PT_EINVAL, "%s: cannot resume: the journal's %s is '%s' but this run's is '%s'", path, keys[k],
                    have, vals[k]);
  }
  if (s == PT_OK &&
      sqlite3_prepare_v2(j->db,
                         "INSERT INTO evals(config, knobs, qos, cost, predicted, seconds, technique)"
                         " VALUES(?, ?, ?, ?, ?, ?, ?)",
                         -1, &j->ins, NULL) != SQLITE_OK)
    s = db_error(j, "preparing insert");
  if (s != PT_OK) {
    pt__journal_close(j);
    return s;
  }
  *out = j;
  return PT_OK;
}

void pt__journal_close(pt__journal *j) {
  if (!j) return;
  sqlite3_finalize(j->ins);
  sqlite3_close(j->db);
  free(j);
}

pt_status pt__journal_read(pt__journal *j, const pt_app *app, int64_t *n, uint16_t **cfgs, double **qos,
                           double **cost, uint8_t **predicted) {
  *n = 0;
  *cfgs = NULL;
  *qos = *cost = NULL;
  *predicted = NULL;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(j->db, "SELECT config, qos, cost, predicted FROM evals ORDER BY id", -1, &st, NULL) != SQLITE_OK)
    return db_error(j, "reading evals");
  int64_t cap = 0;
  pt_status s = PT_OK;
  int rc;
  while (s == PT_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    if (*n == cap) {
      cap = cap ? 2 * cap : 1024;
      void *a = pt__realloc(*cfgs, (size_t)cap * (size_t)app->n_ops * sizeof **cfgs), *b = pt__realloc(*qos, (size_t)cap * sizeof **qos);
      if (a) *cfgs = a;
      if (b) *qos = b;
      void *c = pt__realloc(*cost, (size_t)cap * sizeof **cost), *d = pt__realloc(*predicted, (size_t)cap);
      if (c) *cost = c;
      if (d) *predicted = d;
      if (!a || !b || !c || !d) {
        s = pt__error(PT_ENOMEM, "%s: out of memory for %lld journaled configs", j->path, (long long)cap);
        break;
      }
    }
    const char *txt = (const char *)sqlite3_column_text(st, 0);
    uint16_t *c = *cfgs + *n * app->n_ops;
    for (int op = 0; op < app->n_ops && s == PT_OK; op++) {
      char *end = NULL;
      long v = txt ? strtol(txt, &end, 10) : -1;
      if (!txt || end == txt || v < 0 || v >= app->n_knobs[op])
        s = pt__error(PT_EFORMAT, "%s: evals row %lld: config '%s' does not fit the app's ops", j->path,
                      (long long)*n + 1, txt ? (const char *)sqlite3_column_text(st, 0) : "(null)");
      else {
        c[op] = (uint16_t)v;
        txt = end;
      }
    }
    (*qos)[*n] = sqlite3_column_type(st, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 1);
    (*cost)[*n] = sqlite3_column_type(st, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 2);
    (*predicted)[*n] = (uint8_t)sqlite3_column_int(st, 3);
    if (s == PT_OK) (*n)++;
  }
  sqlite3_finalize(st);
  return s;
}

pt_status pt__journal_add(pt__journal *j, const pt_app *app, int n, const uint16_t *cfgs, const double *qos,
                          const double *cost, int predicted, double seconds_each, const char *const *tech) {
  size_t cap = (size_t)app->n_ops * 8 + 16, kcap = 4096;
  char *txt = pt__malloc(cap), *kn = pt__malloc(kcap);
  if (!txt || !kn) {
    free(txt);
    free(kn);
    return pt__error(PT_ENOMEM, "%s: out of memory", j->path);
  }
  pt_status s = exec_sql(j, "BEGIN");
  for (int k = 0; s == PT_OK && k < n; k++) {
    const uint16_t *c = cfgs + (int64_t)k * app->n_ops;
    size_t at = 0, kat = 0;
    kat += (size_t)snprintf(kn + kat, kcap - kat, "{");
    for (int op = 0; op < app->n_ops; op++) {
      at += (size_t)snprintf(txt + at, cap - at, op ? " %u" : "%u", c[op]);
      if (c[op] && kat < kcap) /* readable: the ops off the baseline */
        kat += (size_t)snprintf(kn + kat, kcap - kat, "%s\"%s\": \"%s\"", kat > 1 ? ", " : "", app->op_names[op],
                                app->entry_knob[app->entry_off[op] + c[op]]);
    }
    if (kat < kcap) snprintf(kn + kat, kcap - kat, "}");
    sqlite3_reset(j->ins);
    sqlite3_bind_text(j->ins, 1, txt, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(j->ins, 2, kat < kcap ? kn : NULL, -1, SQLITE_TRANSIENT);
    if (isnan(qos[k])) sqlite3_bind_null(j->ins, 3);
    else sqlite3_bind_double(j->ins, 3, qos[k]);
    if (isnan(cost[k])) sqlite3_bind_null(j->ins, 4);
    else sqlite3_bind_double(j->ins, 4, cost[k]);
    sqlite3_bind_int(j->ins, 5, predicted);
    sqlite3_bind_double(j->ins, 6, seconds_each);
    sqlite3_bind_text(j->ins, 7, tech ? tech[k] : NULL, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(j->ins) != SQLITE_DONE) s = db_error(j, "journaling a config");
  }
  if (s == PT_OK) s = exec_sql(j, "COMMIT");
  else exec_sql(j, "ROLLBACK");
  free(txt);
  free(kn);
  return s;
}
