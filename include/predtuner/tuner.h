/* The tuner (docs/design.md, "The tuning pipeline"): search, keep, pick the best configs, validate,
 * test, write results.
 * It mirrors PredTuner's Python API:
 *
 *   app = TorchApp(...)                      pt_app_dnn_create(&dnn_opts, &app);
 *   tuner = app.get_tuner()                  pt_tuner_create(app, &tuner);
 *   tuner.tune(max_iter=1000,                pt_tune_opts o; pt_tune_opts_init(&o);
 *              qos_tuner_threshold=2.0,      o.max_iter = 1000; o.qos_tuner_threshold = 2.0;
 *              qos_keep_threshold=3.0,       o.qos_keep_threshold = 3.0;
 *              is_threshold_relative=True,   (relative is the default; o.absolute = 1 otherwise)
 *              take_best_n=20,               o.take_best_n = 20;
 *              cost_model="cost_linear",     o.cost_model = PT_COST_LINEAR;
 *              qos_model="qos_p1")           o.qos_model = PT_QOS_P1; o.output_dir = "out";
 *                                            pt_tuner_tune(tuner, &o);
 *   tuner.dump_configs("configs.json")       pt_tuner_dump_configs(tuner, "out/configs.json", 0);
 *   tuner.plot_configs()                     pt_tuner_plot(tuner, "out/configs.png", 0);
 *   for c in tuner.best_configs: ...         for (int i = 0; i < pt_tuner_count(tuner, PT_BEST); i++)
 *                                              pt_tuner_get(tuner, PT_BEST, i, &cfg);
 *                                            pt_tuner_free(tuner); pt_app_free(app);
 */
#ifndef PREDTUNER_TUNER_H
#define PREDTUNER_TUNER_H

#include <stdint.h>
#include <stdio.h>

#include "predtuner/app.h"
#include "predtuner/measure.h"
#include "predtuner/pareto.h"

#ifdef __cplusplus
extern "C" {
#endif

/* QoS and cost models, by PredTuner's names ("qos_p1", "cost_linear", ...; "empirical": measured). */
typedef enum pt_qos_model {
  PT_QOS_EMPIRICAL = 0, /* every config's QoS is measured */
  PT_QOS_P1,            /* qos_p1: the accuracy of the exact output plus each op's output change */
  PT_QOS_P2,            /* qos_p2: the exact QoS plus each op's QoS change */
} pt_qos_model;
typedef enum pt_cost_model {
  PT_COST_EMPIRICAL = 0, /* every config's cost is its measured time */
  PT_COST_LINEAR,        /* cost_linear: per op, its cost (FLOPs) over the knob's expected speedup */
  PT_COST_PROFILED,      /* cost_profiled: per op and knob, its measured time */
} pt_cost_model;

/* The model's name ("empirical", "qos_p1", "qos_p2"), NULL for a value outside the enum. */
const char *pt_qos_model_name(pt_qos_model m);
const char *pt_cost_model_name(pt_cost_model m);
/* The model called name, or -1 for an unknown name. */
int pt_qos_model_parse(const char *name);
int pt_cost_model_parse(const char *name);

/* pt_config_failure and pt_measurer: predtuner/measure.h. */


/* The empirical QoS (and cost, unless NULL) of n configs in this process, where a config that fails
 * is a result, not the end: a batch that fails is measured again config by config; a config whose
 * measurement fails, whose QoS is not finite or whose cost is not a positive number gets fail[k]
 * (its qos and cost NaN). stop (NULL: none; tune set only): configs stopped early get
 * PT_CONFIG_STOPPED and their bound as QoS. Returns how many failed. */
int pt_measure_configs(pt_app *app, int n, const uint16_t *cfgs, int test, const pt_stop_rule *stop, double *qos,
                       double *cost, pt_config_failure *fail);

/* Times n configs and the exact network in one sitting in this process (the measured speedups,
 * docs/design.md): a warm-up round, then passes rounds, each the exact network and every config
 * once; seconds[k] is config k's median (NaN when one of its runs failed), *exact the exact
 * network's, *images the images per run. PT_EUNSUPPORTED when the app's costs are not times. */
pt_status pt_time_configs(pt_app *app, int n, const uint16_t *cfgs, int passes, FILE *progress, double *seconds,
                          double *exact, int64_t *images);

typedef struct pt_tune_opts {
  int max_iter;               /* distinct configs to evaluate (default 1000) */
  double qos_tuner_threshold; /* default 2.0 */
  double qos_keep_threshold;  /* NaN (default): same as the tuner threshold */
  int absolute;               /* thresholds are absolute QoS values (default: relative to the baseline) */
  int take_best_n;            /* default 20; 0 = the Pareto front only */
  int test_configs;           /* measure the best configs on the test set (default 1) */
  int validate;               /* -1 (default): when a QoS model is used; 0 never; 1 always */
  pt_qos_model qos_model;     /* default PT_QOS_EMPIRICAL */
  pt_cost_model cost_model;   /* default PT_COST_EMPIRICAL */
  uint64_t seed;              /* search (and PromiseSim) seed, default 0 */
  int search_batch;           /* configs per ask/evaluate round, default 256 */
  const char *output_dir;     /* journal tuning.sqlite goes here; NULL = no journal */
  const char *model_storage;  /* model files; NULL = <output_dir>/models (or none without output_dir) */
  int resume;                 /* continue the journal in output_dir instead of starting afresh */
  int overwrite;              /* start afresh over an existing journal (else that is PT_EEXIST) */
  int force_reinit;           /* rebuild the models even where stored ones match this run's inputs */
  int max_failures;           /* failed configs that stop the search; -1 (default): max(8, max_iter / 4) */
  pt_early_stop early_stop;   /* empirical QoS in the search: stop configs that cannot be kept (default exact) */
  int time_passes;            /* timed passes per best config and the exact network (default 5, 0 = no timing) */
  double time_budget;         /* seconds the search may take, checked after each batch (0, default: no limit);
                               * selection, validation, test and the outputs then run as usual */
  FILE *progress;             /* progress bars (terminal) or periodic lines; NULL = silent */
  const pt_measurer *measurer;/* where configs are measured; NULL (default) = this process */
} pt_tune_opts;

void pt_tune_opts_init(pt_tune_opts *o);

typedef struct pt_tuner pt_tuner;

/* The app must outlive the tuner. */
pt_status pt_tuner_create(pt_app *app, pt_tuner **out);
void pt_tuner_free(pt_tuner *t);
/* Runs the whole pipeline; may be called again (results are replaced). */
pt_status pt_tuner_tune(pt_tuner *t, const pt_tune_opts *o);

typedef enum pt_config_kind {
  PT_KEPT = 0,      /* QoS above the tune keep threshold */
  PT_BEST_PREFILTER,/* Pareto front + nearest, before validation and test */
  PT_BEST,          /* after validation and test filtering: the result */
} pt_config_kind;

typedef struct pt_tuned_config {
  double qos;           /* tune-set QoS (predicted when a QoS model was used) */
  double cost;          /* relative to the baseline config's cost */
  double speedup;       /* 1 / cost */
  double validated_qos; /* NaN when not validated */
  double test_qos;      /* NaN when not tested */
  int predicted;        /* qos came from a model */
  double measured_seconds; /* median wall time of a timed pass (summary: timed_images images); NaN if not timed */
  double measured_speedup; /* the exact network's time over measured_seconds; NaN if not timed */
  const uint16_t *knobs;/* pt_app_num_ops positions; valid until the next tune or free */
} pt_tuned_config;

int pt_tuner_count(const pt_tuner *t, pt_config_kind kind);
pt_status pt_tuner_get(const pt_tuner *t, pt_config_kind kind, int i, pt_tuned_config *out);

typedef struct pt_tune_summary {
  double baseline_tune_qos, baseline_test_qos; /* the exact network */
  double baseline_config_tune_qos;             /* every op on the baseline knob */
  double baseline_cost;                        /* cost of the baseline config (model units or seconds) */
  double exact_speedup;                        /* baseline config's speedup over the exact network (NaN if unknown) */
  pt_thresholds thresholds;
  int64_t evaluated;  /* distinct configs in the journal after this run (resumed ones included) */
  int64_t resumed;    /* of which read back from the journal */
  double space_size;
  double search_seconds, configs_per_s, total_seconds;
  int validated, tested;
  double mean_abs_validation_error; /* |predicted - validated| averaged, NaN if not validated */
  int64_t failed;                   /* configs of the search that failed (resumed ones included) */
  int64_t failed_by[PT_STATUS_COUNT]; /* of which with status -k at [k] (PT_ENONFINITE, PT_ENOMEM, ...) */
  int dropped;                      /* best configs whose validation or test failed */
  int64_t early_stopped;            /* configs of the search stopped early (resumed ones included) */
  char stopped[320];                /* why the search stopped early (too many failures), "" if it did not */
  int stopped_on_time;              /* the search ended at time_budget, before max_iter (not a failure) */
  int timed_passes;                 /* timed passes per best config (0: not timed) */
  int64_t timed_images;             /* images per timed pass */
  double exact_seconds;             /* the exact network's median time per pass, NaN if not timed */
  double mean_speedup_error;        /* mean |predicted - measured| / measured speedup of the timed best configs */
} pt_tune_summary;

const pt_tune_summary *pt_tuner_summary(const pt_tuner *t);

/* report.html in dir (docs/design.md, "Files"): one self-contained page (inline SVG and CSS, no
 * script) made from the folder's configs.json, configs.svg, and sensitivity.json / .svg when
 * there. Atomic. */
pt_status pt_report_write(const char *dir);

/* The outputs of a finished tune in dir: configs.json (every kept config with all != 0), the
 * plots configs.png and configs.svg, and report.html. A plot or report that cannot be made (or
 * the tune's sensitivity heatmap, which could not) is logged and its status left in
 * *figure_status (configs.json is still written); any other failure is returned. */
pt_status pt_tuner_write_outputs(const pt_tuner *t, const char *dir, int all, int show_qos_loss,
                                 pt_status *figure_status);

/* The per-layer sensitivity report alone (docs/design.md, "Files"; every tune with a QoS model
 * also writes it): builds, or loads from o->model_storage (NULL: <output_dir>/models), the QoS
 * model o->qos_model (qos_p1 when empirical) and, when the app can time its ops (DNN apps),
 * cost_profiled for measured speedups (else cost_linear's expected ones only); then writes
 * sensitivity.json, .txt, .png and .svg into o->output_dir (required; locked as by a tune). Uses
 * o->force_reinit and o->progress; the other fields are the tuner's. */
pt_status pt_sensitivity_run(pt_app *app, const pt_tune_opts *o);

/* One run per output folder: locks dir (creating dir/tune.lock with this pid) for this process,
 * or PT_EBUSY naming the pid of the run that holds it; a lock left by a run that died is taken
 * over. Counted within a process (pt_tuner_tune takes o->output_dir's itself); the last unlock
 * removes the file, and the system releases it when the process ends however it ends. */
pt_status pt_output_lock(const char *dir);
void pt_output_unlock(const char *dir);

/* configs.json (docs/design.md, "Files"): the best configs, or every kept one with all != 0. Atomic. */
pt_status pt_tuner_dump_configs(const pt_tuner *t, const char *path, int all);
/* PredTuner's plot: kept and best configs with the threshold lines, predicted vs validated QoS,
 * tune vs test QoS loss (1-3 panels). path ends in .png or .svg. Needs a finished tune. */
pt_status pt_tuner_plot(const pt_tuner *t, const char *path, int show_qos_loss);
/* The same plot from a configs.json (ours): every config as kept, those marked "best" (all when
 * none is marked) as best. */
pt_status pt_plot_configs_file(const char *configs_json, const char *path, int show_qos_loss);

#ifdef __cplusplus
}
#endif
#endif
