#include "tuner/journal.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"

/* "2": fingerprints and failed configs (status, error); "3": status 1, a config stopped early (its
 * QoS the bound). A "2" journal resumes (it has no stopped rows); 0.1's have no format key. */
#define JOURNAL_FORMAT "3"

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

pt_status pt__journal_check_start(const char *path, int resume, int overwrite) {
  int exists = access(path, F_OK) == 0;
  if (resume && !exists) return pt__error(PT_ENOTFOUND, "%s: --resume but there is no journal to resume", path);
  if (!resume && exists && !overwrite)
    return pt__error(PT_EEXIST, "%s: an earlier run's journal is here; --resume continues it, --overwrite replaces it, "
                                "or choose another --output folder", path);
  return PT_OK;
}

static pt_status prepare(const char *path, int resume, int overwrite) {
  PT__TRY(pt__journal_check_start(path, resume, overwrite));
  if (!resume) remove_db(path);
  return PT_OK;
}

/* A journal to resume has both tables (else creating them would make an empty one look resumable). */
static pt_status check_tables(pt__journal *j) {
  sqlite3_stmt *st = NULL;
  int n = 0;
  if (sqlite3_prepare_v2(j->db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('meta', 'evals')",
                         -1, &st, NULL) != SQLITE_OK)
    return db_error(j, "reading the schema");
  if (sqlite3_step(st) == SQLITE_ROW) n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  if (n != 2)
    return pt__error(PT_EFORMAT, "%s: not a complete tuning journal (tables meta and evals): it cannot be resumed; "
                                 "--overwrite starts afresh", j->path);
  return PT_OK;
}

/* The meta keys a resumed journal must agree on; the first run writes them. */
static pt_status check_meta(pt__journal *j, int resume, const pt_app *app, const char *qos_model, const char *cost_model) {
  char sig[128], fp[512], have[600];
  space_signature(app, sig, sizeof sig);
  pt__fp_format(app, PT__FP_ALL, fp, sizeof fp);
  PT__TRY(get_meta(j, "format", have, sizeof have));
  if (resume && !strcmp(have, "2")) { /* no stopped rows: readable as it is, and from now on a "3" */
    PT__TRY(pt__journal_meta(j, "format", JOURNAL_FORMAT));
    snprintf(have, sizeof have, "%s", JOURNAL_FORMAT);
  }
  if (resume && !have[0])
    return pt__error(PT_ESTALE, "%s: written by predtuner-gpu 0.1 (no fingerprint, no failed configs): it cannot be "
                                "resumed; --overwrite starts afresh", j->path);
  if (resume && strcmp(have, JOURNAL_FORMAT))
    return pt__error(PT_ESTALE, "%s: journal format '%s' (this version resumes 2 and " JOURNAL_FORMAT "): it cannot be "
                                "resumed; --overwrite starts afresh", j->path, have);
  const char *keys[6] = {"format", "app", "qos_model", "cost_model", "space", "fingerprint"};
  const char *vals[6] = {JOURNAL_FORMAT, app->name, qos_model ? qos_model : "empirical",
                         cost_model ? cost_model : "empirical", sig, fp};
  for (int k = 0; k < 6; k++) {
    PT__TRY(get_meta(j, keys[k], have, sizeof have));
    if (!have[0] && resume)
      return pt__error(PT_EFORMAT, "%s: the journal has no %s (an interrupted first batch, or edited): it cannot be "
                                   "resumed; --overwrite starts afresh", j->path, keys[k]);
    if (!have[0]) PT__TRY(pt__journal_meta(j, keys[k], vals[k]));
    else if (k == 5)
      PT__TRY(pt__fp_check(app, PT__FP_ALL, have, j->path, "--overwrite starts afresh, or choose another --output folder"));
    else if (strcmp(have, vals[k]))
      return pt__error(PT_EINVAL, "%s: cannot resume: the journal's %s is '%s' but this run's is '%s'", j->path, keys[k],
                       have, vals[k]);
  }
  return PT_OK;
}

pt_status pt__journal_open(const char *path, int resume, int overwrite, const pt_app *app, const char *qos_model,
                           const char *cost_model, pt__journal **out) {
  *out = NULL;
  PT__TRY(prepare(path, resume, overwrite));
  pt__journal *j = pt__calloc(1, sizeof *j);
  if (!j) return pt__error(PT_ENOMEM, "%s: out of memory", path);
  snprintf(j->path, sizeof j->path, "%s", path);
  pt_status s = PT_OK;
  if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
    s = db_error(j, "cannot open");
  if (s == PT_OK) s = exec_sql(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;");
  if (s == PT_OK && resume) s = check_tables(j);
  if (s == PT_OK)
    s = exec_sql(j, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
                    "CREATE TABLE IF NOT EXISTS evals(id INTEGER PRIMARY KEY, config TEXT NOT NULL UNIQUE,"
                    " knobs TEXT, qos REAL, cost REAL, predicted INTEGER, seconds REAL, technique TEXT,"
                    " status INTEGER DEFAULT 0, error TEXT, time TEXT DEFAULT CURRENT_TIMESTAMP);");
  if (s == PT_OK) s = check_meta(j, resume, app, qos_model, cost_model);
  if (s == PT_OK &&
      sqlite3_prepare_v2(j->db,
                         "INSERT INTO evals(config, knobs, qos, cost, predicted, seconds, technique, status, error)"
                         " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

pt_status pt__journal_read(pt__journal *j, const pt_app *app, pt__journal_rows *r) {
  memset(r, 0, sizeof *r);
  int64_t *n = &r->n;
  uint16_t **cfgs = &r->cfgs;
  double **qos = &r->qos, **cost = &r->cost;
  uint8_t **predicted = &r->predicted;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(j->db, "SELECT config, qos, cost, predicted, status FROM evals ORDER BY id", -1, &st, NULL) != SQLITE_OK)
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
      void *e = pt__realloc(r->status, (size_t)cap * sizeof *r->status);
      if (e) r->status = e;
      if (!a || !b || !c || !d || !e) {
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
    int code = sqlite3_column_int(st, 4);
    r->status[*n] = (int8_t)(code == PT__STOPPED || (code <= 0 && code > -PT_STATUS_COUNT) ? code : PT_EBACKEND);
    if (r->status[*n] < 0) (*qos)[*n] = (*cost)[*n] = NAN; /* a failed config stays failed */
    double q = (*qos)[*n], co = (*cost)[*n];
    if (s == PT_OK && r->status[*n] >= 0 && /* a result, or a stopped config's bound */
        (!isfinite(q) || (app->qos_percent && !(*predicted)[*n] && (q < 0 || q > 100)) || !isfinite(co) || !(co > 0)))
      s = pt__error(PT_EFORMAT, "%s: evals row %lld: QoS %g and relative cost %g cannot be a result", j->path,
                    (long long)*n + 1, q, co);
    if (s == PT_OK) (*n)++;
  }
  sqlite3_finalize(st);
  return s;
}

void pt__journal_rows_free(pt__journal_rows *r) {
  free(r->cfgs), free(r->qos), free(r->cost), free(r->predicted), free(r->status);
  memset(r, 0, sizeof *r);
}

pt_status pt__journal_add(pt__journal *j, const pt_app *app, int n, const uint16_t *cfgs, const double *qos,
                          const double *cost, int predicted, double seconds_each, const char *const *tech,
                          const pt__fail *fail) {
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
    sqlite3_bind_int(j->ins, 8, fail ? (int)fail[k].status : 0);
    sqlite3_bind_text(j->ins, 9, fail && fail[k].status != PT_OK ? fail[k].why : NULL, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(j->ins) != SQLITE_DONE) s = db_error(j, "journaling a config");
  }
  if (s == PT_OK) s = exec_sql(j, "COMMIT");
  else exec_sql(j, "ROLLBACK");
  free(txt);
  free(kn);
  return s;
}
