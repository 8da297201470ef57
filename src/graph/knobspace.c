/* Which knobs apply to which op of a network, the baseline, and configs resolved to executor
 * settings. PredTuner's rules: perforation and sampling apply to convolutions, PromiseSim to
 * convolutions and linear layers, FP32Baseline and FP16Approx to everything; a target device
 * filters knobs before the baseline is chosen; every op's list holds the baseline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "graph/graph_internal.h"
#include "predtuner/knobs.h"

int pt_knob_applies(const pt_knob *k, pt_op_type t) {
  switch (k->cls) {
    case PT_KNOB_FP32:
    case PT_KNOB_FP16: return t != PT_OP_ADD && t != PT_OP_FLATTEN;
    case PT_KNOB_PERFORATE:
    case PT_KNOB_SAMPLING: return t == PT_OP_CONV2D;
    case PT_KNOB_PROMISE: return t == PT_OP_CONV2D || t == PT_OP_LINEAR;
  }
  return 0;
}

pt_op_exec pt_knob_exec(const pt_knob *k) {
  pt_op_exec e;
  memset(&e, 0, sizeof e);
  switch (k->cls) {
    case PT_KNOB_FP32: break;
    case PT_KNOB_FP16: e.fp16 = 1; break;
    case PT_KNOB_PERFORATE:
      e.kind = PT_APPROX_PERFORATE;
      e.fp16 = (uint8_t)k->use_fp16;
      e.perf_dir = (uint8_t)k->perf_dir;
      e.perf_stride = (uint8_t)k->stride;
      e.perf_offset = (uint8_t)k->offset;
      break;
    case PT_KNOB_SAMPLING:
      e.kind = PT_APPROX_SAMPLING;
      e.fp16 = (uint8_t)k->use_fp16;
      e.samp_every = (uint8_t)k->skip_every;
      e.samp_offset = (uint8_t)k->skip_offset;
      e.samp_interp = (float)k->interp_rate;
      break;
    case PT_KNOB_PROMISE:
      e.kind = PT_APPROX_PROMISE;
      e.promise_level = (uint8_t)k->noise_level;
      break;
  }
  return e;
}

struct pt_space {
  const pt_graph *g;
  unsigned target;
  pt_knob baseline;
  const pt_knob **list; /* per op: count[op] knobs starting at list + start[op] */
  int *start, *count;
  int n_ops, n_distinct;
};

void pt_space_free(pt_space *s) {
  if (!s) return;
  free(s->list);
  free(s->start);
  free(s->count);
  free(s);
}

static int on_device(const pt_knob *k, unsigned target) { return target == 0 || k->devices == 0 || (k->devices & target); }

pt_status pt_space_build(const pt_graph *g, const pt_knob_set *ks, unsigned target, pt_space **out) {
  *out = NULL;
  pt_space *s = pt__calloc(1, sizeof *s);
  int nk = pt_knobs_count(ks), no = pt_graph_num_ops(g);
  if (!s) return pt__error(PT_ENOMEM, "knob space: out of memory");
  s->g = g;
  s->target = target;
  s->n_ops = no;
  s->start = pt__calloc((size_t)no + 1, sizeof *s->start);
  s->count = pt__calloc((size_t)no + 1, sizeof *s->count);
  s->list = pt__calloc((size_t)no * (size_t)(nk + 1) + 1, sizeof *s->list);
  if (!s->start || !s->count || !s->list) {
    pt_space_free(s);
    return pt__error(PT_ENOMEM, "knob space: out of memory");
  }
  /* baseline: the highest priority among knobs that apply somewhere and exist on the target */
  const pt_knob *best = NULL;
  char *used = pt__calloc((size_t)nk + 1, 1);
  if (!used) {
    pt_space_free(s);
    return pt__error(PT_ENOMEM, "knob space: out of memory");
  }
  for (int i = 0; i < nk; i++) {
    const pt_knob *k = pt_knobs_at(ks, i);
    if (!on_device(k, target)) continue;
    for (int op = 0; op < no && !used[i]; op++) used[i] = (char)pt_knob_applies(k, pt_graph_op_type(g, op));
    if (used[i] && k->has_priority && (!best || k->baseline_priority > best->baseline_priority)) best = k;
  }
  if (best) {
    s->baseline = *best;
  } else {
    memset(&s->baseline, 0, sizeof s->baseline);
    snprintf(s->baseline.name, sizeof s->baseline.name, "__baseline__");
    s->baseline.cls = PT_KNOB_FP32;
    s->baseline.exp_speedup = 1.0;
  }
  int at = 0;
  for (int op = 0; op < no; op++) {
    s->start[op] = at;
    s->list[at++] = &s->baseline;
    for (int i = 0; i < nk; i++) {
      const pt_knob *k = pt_knobs_at(ks, i);
      if (used[i] && strcmp(k->name, s->baseline.name) && pt_knob_applies(k, pt_graph_op_type(g, op)))
        s->list[at++] = k;
    }
    s->count[op] = at - s->start[op];
  }
  s->n_distinct = 1;
  for (int i = 0; i < nk; i++) s->n_distinct += used[i] && strcmp(pt_knobs_at(ks, i)->name, s->baseline.name);
  free(used);
  *out = s;
  return PT_OK;
}

const pt_knob *pt_space_baseline(const pt_space *s) { return &s->baseline; }
unsigned pt_space_target(const pt_space *s) { return s->target; }
int pt_space_num_ops(const pt_space *s) { return s->n_ops; }
int pt_space_op_count(const pt_space *s, int op) { return s->count[op]; }
const pt_knob *pt_space_op_knob(const pt_space *s, int op, int j) { return s->list[s->start[op] + j]; }
int pt_space_num_knobs(const pt_space *s) { return s->n_distinct; }

pt_status pt_config_resolve(const pt_space *s, const pt_knob_set *ks, int n, const char *const *ops,
                            const char *const *knobs, pt_op_exec *ops_out, const pt_knob **knob_out) {
  const pt_graph *g = s->g;
  int no = pt_graph_num_ops(g);
  char *seen = pt__calloc((size_t)no + 1, 1);
  if (!seen) return pt__error(PT_ENOMEM, "config: out of memory");
  pt_status st = PT_OK;
  for (int op = 0; op < no; op++) {
    ops_out[op] = pt_knob_exec(&s->baseline);
    if (knob_out) knob_out[op] = &s->baseline;
  }
  for (int i = 0; i < n && st == PT_OK; i++) {
    int op = pt_graph_find_op(g, ops[i]);
    if (op < 0) {
      st = pt__error(PT_ENOTFOUND, "unknown op '%s' (model %s has no such op; see 'predtuner-gpu zoo --ops %s')", ops[i],
                     pt_graph_name(g), pt_graph_name(g));
      break;
    }
    if (seen[op]) {
      st = pt__error(PT_EINVAL, "op '%s' is given two knobs", ops[i]);
      break;
    }
    seen[op] = 1;
    const pt_knob *k = NULL;
    int ki = pt_knobs_find(ks, knobs[i]);
    if (ki >= 0) k = pt_knobs_at(ks, ki);
    else if (!strcmp(knobs[i], s->baseline.name)) k = &s->baseline;
    if (!k) {
      st = pt__error(PT_ENOTFOUND, "op '%s': unknown knob '%s' (see 'predtuner-gpu knobs')", ops[i], knobs[i]);
      break;
    }
    if (!pt_knob_applies(k, pt_graph_op_type(g, op))) {
      st = pt__error(PT_EINVAL, "knob '%s' (%s) does not apply to op '%s' (%s)", k->name, pt_knob_class_name(k->cls),
                     ops[i], pt_op_type_name(pt_graph_op_type(g, op)));
      break;
    }
    ops_out[op] = pt_knob_exec(k);
    if (knob_out) knob_out[op] = k;
  }
  free(seen);
  return st;
}
