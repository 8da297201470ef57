/* report.html: one self-contained page of a tuning run's output folder (docs/design.md, "Files"),
 * made from the folder's files alone (configs.json, configs.svg, sensitivity.json and .svg), so
 * `predtuner-gpu report DIR` rebuilds it: the settings, baseline and thresholds, what the search
 * did, the best configs with predicted and measured speedups, the plots and the heatmap inlined as
 * SVG, and the sensitivity ranking. No script, no external asset: it opens from disk. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fileutil.h"
#include "predtuner/abi.h"
#include "predtuner/io.h"
#include "predtuner/tuner.h"

static const char CSS[] =
    "body{font-family:sans-serif;margin:2em;color:#222;max-width:1400px}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
    "th{background:#f0f0f0}td.l,th.l{text-align:left}.note{color:#666;font-size:0.9em}"
    "figure{margin:1em 0}svg{max-width:100%;height:auto;border:1px solid #eee}";

/* Text with &, <, >, " escaped. */
static pt_status esc(pt__text *t, const char *s) {
  pt_status st = PT_OK;
  for (; s && *s && st == PT_OK; s++) {
    const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '"' ? "&quot;" : NULL;
    st = e ? pt__text_put(t, "%s", e) : pt__text_put(t, "%c", *s);
  }
  return st;
}

static double num(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : "";
}

/* A number as text ("-" for none), with the format f. */
static const char *fmt(char *buf, size_t n, const char *f, double v) {
  if (isnan(v)) snprintf(buf, n, "-");
  else snprintf(buf, n, f, v);
  return buf;
}

/* A table row of label/value pairs. */
static pt_status row(pt__text *t, const char *label, const char *value) {
  pt_status s = pt__text_put(t, "<tr><th class=\"l\">");
  if (s == PT_OK) s = esc(t, label);
  if (s == PT_OK) s = pt__text_put(t, "</th><td class=\"l\">");
  if (s == PT_OK) s = esc(t, value);
  return s == PT_OK ? pt__text_put(t, "</td></tr>\n") : s;
}

/* The SVG file at path inlined (from its <svg element), its ids prefixed so that two figures'
 * clip paths do not collide; a note when there is none. */
static pt_status put_svg(pt__text *t, const char *path, const char *prefix, const char *caption) {
  void *data = NULL;
  size_t len = 0;
  if (pt__map_file(path, &data, &len) != PT_OK || !data) {
    pt_clear_error();
    return pt__text_put(t, "<p class=\"note\">(%s: not drawn)</p>\n", caption);
  }
  const char *b = data, *end = b + len, *p = NULL;
  for (const char *q = b; end - q >= 4 && !p; q++)
    if (!memcmp(q, "<svg", 4)) p = q;
  if (!p) { /* not an SVG (a truncated file): say so rather than show an empty figure */
    pt__unmap_file(data, len);
    return pt__text_put(t, "<p class=\"note\">(%s: not an SVG file)</p>\n", caption);
  }
  pt_status s = pt__text_put(t, "<figure id=\"%s\">\n", prefix);
  while (s == PT_OK && p && p < end) {
    static const char *const pats[] = {"id=\"", "url(#", "href=\"#"};
    int hit = -1;
    for (int k = 0; k < 3 && hit < 0; k++)
      if ((size_t)(end - p) >= strlen(pats[k]) && !memcmp(p, pats[k], strlen(pats[k]))) hit = k;
    if (hit >= 0) {
      s = pt__text_put(t, "%s%s-", pats[hit], prefix);
      p += strlen(pats[hit]);
    } else {
      s = pt__text_put(t, "%c", *p++);
    }
  }
  if (s == PT_OK) s = pt__text_put(t, "\n<figcaption class=\"note\">%s</figcaption></figure>\n", caption);
  pt__unmap_file(data, len);
  return s;
}

static pt_status settings(pt__text *t, const cJSON *c) {
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(c, "settings"), *th = cJSON_GetObjectItemCaseSensitive(c, "thresholds");
  const cJSON *b = cJSON_GetObjectItemCaseSensitive(c, "baseline");
  char v[1200], x[64], y[64];
  pt_status s = pt__text_put(t, "<h2>Run</h2>\n<table id=\"settings\">\n");
  if (s == PT_OK) s = row(t, "QoS model / cost model", (snprintf(v, sizeof v, "%s / %s", str(c, "qos_model"), str(c, "cost_model")), v));
  if (s == PT_OK) s = row(t, "knobs / target device", (snprintf(v, sizeof v, "%s / %s", str(c, "knobs_file"), str(c, "target_device")), v));
  if (s == PT_OK && st) {
    snprintf(v, sizeof v, "max_iter %s, take_best_n %s, seed %s, early stop %s",
             fmt(x, sizeof x, "%.0f", num(st, "max_iter")), fmt(y, sizeof y, "%.0f", num(st, "take_best_n")),
             fmt((char[32]){0}, 32, "%.0f", num(st, "seed")), str(st, "early_stop"));
    s = row(t, "search", v);
    if (s == PT_OK) {
      snprintf(v, sizeof v, "tuner %s, keep %s (%s)", fmt(x, sizeof x, "%g", num(st, "qos_tuner_threshold")),
               isnan(num(st, "qos_keep_threshold")) ? "= tuner" : fmt(y, sizeof y, "%g", num(st, "qos_keep_threshold")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "relative")) ? "losses from the baseline" : "absolute QoS");
      s = row(t, "thresholds given", v);
    }
  }
  if (s == PT_OK) {
    snprintf(v, sizeof v, "tune %s, test %s (exact network); baseline config %s", fmt(x, sizeof x, "%.3f", num(b, "tune_qos")),
             fmt(y, sizeof y, "%.3f", num(b, "test_qos")), fmt((char[32]){0}, 32, "%.3f", num(b, "config_tune_qos")));
    s = row(t, "baseline QoS", v);
  }
  if (s == PT_OK) {
    snprintf(v, sizeof v, "tuner %s, keep %s (tune) / %s (test)", fmt(x, sizeof x, "%.3f", num(th, "tuner")),
             fmt(y, sizeof y, "%.3f", num(th, "tune_keep")), fmt((char[32]){0}, 32, "%.3f", num(th, "test_keep")));
    s = row(t, "thresholds (QoS)", v);
  }
  return s == PT_OK ? pt__text_put(t, "</table>\n") : s;
}

static pt_status search(pt__text *t, const cJSON *c) {
  const cJSON *se = cJSON_GetObjectItemCaseSensitive(c, "search"), *fb = cJSON_GetObjectItemCaseSensitive(se, "failed_by");
  char v[400], x[64], y[64];
  if (!se) return PT_OK;
  pt_status s = pt__text_put(t, "<h2>Search</h2>\n<table id=\"search\">\n");
  snprintf(v, sizeof v, "%s of %s (%s resumed) in %s s", fmt(x, sizeof x, "%.0f", num(se, "evaluated")),
           fmt(y, sizeof y, "%.4g", num(se, "space_size")), fmt((char[32]){0}, 32, "%.0f", num(se, "resumed")),
           fmt((char[32]){0}, 32, "%.1f", num(se, "seconds")));
  if (s == PT_OK) s = row(t, "configs evaluated", v);
  int k = snprintf(v, sizeof v, "%s", fmt(x, sizeof x, "%.0f", num(se, "failed")));
  const cJSON *e;
  cJSON_ArrayForEach(e, fb) if (e->string && k < (int)sizeof v - 80) k += snprintf(v + k, sizeof v - (size_t)k, "%s %.40s %.0f",
                                                                                   e == fb->child ? ":" : ",", e->string,
                                                                                   e->valuedouble);
  if (s == PT_OK) s = row(t, "failed configs", v);
  if (s == PT_OK) s = row(t, "stopped early (could not be kept)", fmt(x, sizeof x, "%.0f", num(se, "early_stopped")));
  if (s == PT_OK && str(se, "stopped")[0]) s = row(t, "search stopped", str(se, "stopped"));
  if (s == PT_OK && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "stopped_on_time"))) s = row(t, "search stopped", "on time (time budget)");
  const int validated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(se, "validated"));
  snprintf(v, sizeof v, "%s kept; %s Pareto-best (and nearest), %s after %s%s%s (%s dropped)",
           fmt(x, sizeof x, "%.0f", num(se, "kept")), fmt(y, sizeof y, "%.0f", num(se, "best_prefilter")),
           fmt((char[32]){0}, 32, "%.0f", num(se, "best")), validated ? "validation" : "",
           validated && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(se, "tested")) ? " and " : "",
           cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(se, "tested")) ? "the test set" : validated ? "" : "no filter",
           fmt((char[32]){0}, 32, "%.0f", num(se, "dropped")));
  if (s == PT_OK) s = row(t, "configs kept and best", v);
  if (s == PT_OK && validated) s = row(t, "validation", (snprintf(v, sizeof v, "predicted QoS off by %s on average",
                                                                   fmt(x, sizeof x, "%.3f", num(se, "mean_abs_validation_error"))), v));
  return s == PT_OK ? pt__text_put(t, "</table>\n") : s;
}

/* The knobs a config changes from the baseline ones, "op=knob ...". */
static pt_status changed(pt__text *t, const cJSON *knobs, const cJSON *base) {
  const cJSON *k;
  int n = 0;
  pt_status s = PT_OK;
  cJSON_ArrayForEach(k, knobs) {
    if (!cJSON_IsString(k) || !strcmp(k->valuestring, str(base, k->string))) continue;
    if (s == PT_OK) s = pt__text_put(t, "%s", n++ ? " " : "");
    if (s == PT_OK) s = esc(t, k->string);
    if (s == PT_OK) s = pt__text_put(t, "=");
    if (s == PT_OK) s = esc(t, k->valuestring);
  }
  return s == PT_OK && !n ? pt__text_put(t, "(baseline)") : s;
}

static pt_status best_table(pt__text *t, const cJSON *c) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(c, "configs"), *base = cJSON_GetObjectItemCaseSensitive(c, "baseline_knobs");
  const cJSON *cf;
  int marked = 0, i = 0;
  cJSON_ArrayForEach(cf, arr) marked |= cJSON_GetObjectItemCaseSensitive(cf, "final") != NULL;
  pt_status s = pt__text_put(t, "<h2>Best configs</h2>\n<table id=\"best-configs\">\n<tr><th>#</th><th>speedup (predicted)"
                                "</th><th>measured</th><th>QoS (tune)</th><th>validated</th><th>QoS (test)</th>"
                                "<th class=\"l\">knobs changed from the baseline</th></tr>\n");
  cJSON_ArrayForEach(cf, arr) {
    if (s != PT_OK) break;
    if (marked && !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cf, "final"))) continue;
    char a[32], b[32], q[32], v[32], te[32];
    s = pt__text_put(t, "<tr class=\"config\"><td>%d</td><td>%sx</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td class=\"l\">",
                     i++, fmt(a, sizeof a, "%.3f", num(cf, "speedup")), fmt(b, sizeof b, "%.3fx", num(cf, "measured_speedup")),
                     fmt(q, sizeof q, "%.2f", num(cf, "qos")), fmt(v, sizeof v, "%.2f", num(cf, "validated_qos")),
                     fmt(te, sizeof te, "%.2f", num(cf, "test_qos")));
    if (s == PT_OK) s = changed(t, cJSON_GetObjectItemCaseSensitive(cf, "knobs"), base);
    if (s == PT_OK) s = pt__text_put(t, "</td></tr>\n");
  }
  if (s == PT_OK) s = pt__text_put(t, "</table>\n<p class=\"note\">predicted: the cost model's speedup over the baseline config; "
                                      "measured: timed against the exact network after the search.</p>\n");
  return s;
}

/* The sensitivity ranking's first rows. */
static pt_status sens_table(pt__text *t, const cJSON *sj) {
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(sj, "entries"), *e;
  char a[32], b[32], c[32], d[32];
  int i = 0;
  pt_status s = pt__text_put(t, "<table id=\"sensitivity\">\n<tr><th>rank</th><th class=\"l\">op</th><th class=\"l\">knob</th>"
                                "<th class=\"l\">group</th><th>QoS loss</th><th>predicted</th><th>measured</th><th>per point</th></tr>\n");
  cJSON_ArrayForEach(e, arr) {
    if (s != PT_OK || i++ >= 25) break;
    s = pt__text_put(t, "<tr><td>%d</td><td class=\"l\">", i);
    if (s == PT_OK) s = esc(t, str(e, "op"));
    if (s == PT_OK) s = pt__text_put(t, "</td><td class=\"l\">");
    if (s == PT_OK) s = esc(t, str(e, "knob"));
    if (s == PT_OK) s = pt__text_put(t, "</td><td class=\"l\">");
    if (s == PT_OK) s = esc(t, str(e, "group"));
    if (s == PT_OK)
      s = pt__text_put(t, "</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n", fmt(a, sizeof a, "%.4g", num(e, "qos_loss")),
                       fmt(b, sizeof b, "%.3fx", num(e, "speedup_predicted")), fmt(c, sizeof c, "%.3fx", num(e, "speedup_measured")),
                       fmt(d, sizeof d, "%.4g", num(e, "speedup_per_qos_point")));
  }
  if (s == PT_OK && cJSON_GetArraySize(arr) > 25)
    s = pt__text_put(t, "<tr><td colspan=\"8\" class=\"l\">... %d rows in all: sensitivity.txt</td></tr>\n", cJSON_GetArraySize(arr));
  return s == PT_OK ? pt__text_put(t, "</table>\n") : s;
}

static pt_status parse_json(const char *text, size_t len, const char *source, void *out) {
  cJSON *j = cJSON_ParseWithLength(text, len);
  if (!j || !cJSON_IsObject(j)) {
    cJSON_Delete(j);
    return pt__error(PT_EFORMAT, "%s: not a JSON object", source);
  }
  *(cJSON **)out = j;
  return PT_OK;
}

static pt_status body(pt__text *t, const char *dir, const cJSON *c, const cJSON *sj) {
  char path[4200];
  pt_status s = pt__text_put(t, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>predtuner-gpu: ");
  if (s == PT_OK) s = esc(t, str(c, "app"));
  if (s == PT_OK) s = pt__text_put(t, "</title><style>%s</style></head><body>\n<h1>predtuner-gpu: ", CSS);
  if (s == PT_OK) s = esc(t, str(c, "app"));
  if (s == PT_OK) s = pt__text_put(t, "</h1>\n");
  if (s == PT_OK) s = settings(t, c);
  if (s == PT_OK) s = search(t, c);
  if (s == PT_OK) s = best_table(t, c);
  snprintf(path, sizeof path, "%s/configs.svg", dir);
  if (s == PT_OK) s = pt__text_put(t, "<h2>Plots</h2>\n");
  if (s == PT_OK) s = put_svg(t, path, "configs", "kept and best configs (configs.svg)");
  if (s == PT_OK && sj) {
    s = pt__text_put(t, "<h2>Sensitivity: each knob alone on each op (");
    if (s == PT_OK) s = esc(t, str(sj, "qos_model"));
    if (s == PT_OK) s = pt__text_put(t, ")</h2>\n");
    snprintf(path, sizeof path, "%s/sensitivity.svg", dir);
    if (s == PT_OK) s = put_svg(t, path, "heatmap", "QoS loss per op and knob group (sensitivity.svg)");
    if (s == PT_OK) s = sens_table(t, sj);
  }
  if (s == PT_OK)
    s = pt__text_put(t, "<p class=\"note\">Made by predtuner-gpu %s from this folder's configs.json%s; "
                        "'predtuner-gpu report DIR' rebuilds it.</p>\n</body></html>\n",
                     pt_version(), sj ? ", sensitivity.json and the SVG figures" : " and configs.svg");
  return s;
}

pt_status pt_report_write(const char *dir) {
  if (!dir || !*dir) return pt__error(PT_EINVAL, "report: no folder given");
  char path[4200];
  cJSON *c = NULL, *sj = NULL;
  snprintf(path, sizeof path, "%s/configs.json", dir);
  PT__TRY(pt__parse_file(path, parse_json, &c));
  snprintf(path, sizeof path, "%s/sensitivity.json", dir); /* none after a run without a QoS model */
  pt_status s = access(path, F_OK) == 0 ? pt__parse_file(path, parse_json, &sj) : PT_OK;
  pt__text t = {0};
  if (s == PT_OK) s = body(&t, dir, c, sj);
  snprintf(path, sizeof path, "%s/report.html", dir);
  if (s == PT_OK && (s = pt_output_lock(dir)) == PT_OK) { /* not while another run writes the folder */
    s = pt_write_file_atomic(path, t.buf, t.len);
    pt_output_unlock(dir);
  }
  free(t.buf);
  cJSON_Delete(c);
  cJSON_Delete(sj);
  return s;
}
