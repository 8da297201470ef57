/* The search engine (docs/design.md, "Search"): proposes configs in batches (ask) and learns from their results
 * (tell). Techniques — uniform random, greedy mutation of the best (uniform- and normal-sized),
 * differential evolution, growth outward from passing configs, and a model-guided builder — are
 * combined by an AUC bandit that credits proposals which improve the best result. No config is ever
 * proposed twice. Same seed and same told results give the same proposals. */
#ifndef PREDTUNER_SEARCH_H
#define PREDTUNER_SEARCH_H

#include <stdint.h>

#include "predtuner/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pt_search pt_search;

/* n_knobs[op]: size of each op's knob list (position 0 is the baseline). */
pt_status pt_search_create(int n_ops, const int *n_knobs, uint64_t seed, pt_search **out);
void pt_search_free(pt_search *s);

/* The objective's threshold: configs with QoS >= threshold beat every config below it; among those
 * above, lower cost wins; among those below, higher QoS wins. Default: -infinity. */
void pt_search_set_threshold(pt_search *s, double qos_threshold);
/* Per (op, position) tables for the model-guided technique, flattened op by op (entry of (op, pos)
 * = sum of n_knobs[0..op-1] + pos): the QoS lost and the cost when only that op takes that knob.
 * Either may be NULL; unknown QoS losses are learned from configs that change one op. */
pt_status pt_search_set_tables(pt_search *s, const double *qos_loss, const double *cost);

/* Writes up to max new configs (max x n_ops positions) and returns how many: fewer only when the
 * space is (nearly) exhausted; -1 when out of memory (pt_last_error says so). The first config ever
 * asked is the baseline (all zeros). */
int pt_search_ask(pt_search *s, int max, uint16_t *configs);
/* Results of configs returned by ask (in any order, any grouping). Configs never asked (e.g. read
 * back from a journal on resume) are accepted too and are then never proposed. Returns PT_EINVAL
 * for a config told twice or a position out of range. */
pt_status pt_search_tell(pt_search *s, int n, const uint16_t *configs, const double *qos, const double *cost);

/* Distinct configs proposed or told so far, and the number of distinct configs there are. */
int64_t pt_search_num_seen(const pt_search *s);
double pt_search_space_size(const pt_search *s);
/* The best told config by the objective (NULL before any tell) and its results. */
const uint16_t *pt_search_best(const pt_search *s, double *qos, double *cost);

/* Name of the technique that proposed cfg ("told" for configs only told, NULL if never seen). */
const char *pt_search_config_technique(const pt_search *s, const uint16_t *cfg);

/* Bandit bookkeeping, for logs: technique names, proposals and improvements of the best. */
int pt_search_num_techniques(void);
const char *pt_search_technique_name(int t);
void pt_search_technique_stats(const pt_search *s, int t, int64_t *proposed, int64_t *improved);

#ifdef __cplusplus
}
#endif
#endif
