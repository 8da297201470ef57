/* Tuning a program that is not a neural network, through the generic app (PredTuner's ApproxApp).
 *
 * The program integrates f(x) = sin(40x) + x^2 over [0, 1] with the trapezoid rule in 6 chunks of
 * 256 intervals. Each chunk is an "op" whose knobs skip samples: "s1" (every sample, the baseline),
 * "s2", "s4", "s8" (every 2nd, 4th, 8th sample: 2x, 4x, 8x less work). QoS is 100 minus the relative
 * error in percent; the test inputs integrate a phase-shifted f. Cost comes from cost_linear (the
 * callback reports NaN), so the tuner needs no timing.
 *
 *   usage: generic_app [OUTPUT_DIR]      (default ./predtuner-out/integral)
 * Exit status 0 when every best config meets the keep thresholds on both input sets. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "predtuner/predtuner.h"

#define CHUNKS 6
#define STEPS 256

static double f(double x, double phase) { return sin(40.0 * x + phase) + x * x; }

static double integrate(const uint16_t *cfg, double phase) {
  static const int stride[4] = {1, 2, 4, 8};
  double total = 0;
  for (int c = 0; c < CHUNKS; c++) {
    double a = (double)c / CHUNKS, h = 1.0 / CHUNKS / STEPS * stride[cfg[c]];
    int n = STEPS / stride[cfg[c]];
    double s = 0.5 * (f(a, phase) + f(a + n * h, phase));
    for (int i = 1; i < n; i++) s += f(a + i * h, phase);
    total += s * h;
  }
  return total;
}

static pt_status measure(void *user, int n, const uint16_t *configs, int test, double *qos, double *cost) {
  (void)user;
  double phase = test ? 0.3 : 0.0;
  static const uint16_t exact_cfg[CHUNKS] = {0};
  double exact = integrate(exact_cfg, phase);
  for (int k = 0; k < n; k++) {
    double v = integrate(configs + k * CHUNKS, phase);
    qos[k] = 100.0 - 100.0 * fabs(v - exact) / fabs(exact);
    cost[k] = NAN; /* no timing: cost_linear predicts it */
  }
  return PT_OK;
}

int main(int argc, char **argv) {
  const char *out = argc > 1 ? argv[1] : "predtuner-out/integral";
  static const pt_generic_knob knobs[4] = {{"s1", 1.0}, {"s2", 2.0}, {"s4", 4.0}, {"s8", 8.0}};
  pt_generic_op ops[CHUNKS];
  char names[CHUNKS][16];
  for (int c = 0; c < CHUNKS; c++) {
    snprintf(names[c], sizeof names[c], "chunk%d", c);
    ops[c] = (pt_generic_op){names[c], STEPS, 4, knobs};
  }
  pt_app *app = NULL;
  pt_tuner *tuner = NULL;
  pt_status s = pt_app_generic_create("integral", CHUNKS, ops, measure, NULL, &app);
  if (s == PT_OK) s = pt_tuner_create(app, &tuner);
  if (s == PT_OK) {
    pt_tune_opts o;
    pt_tune_opts_init(&o);
    o.max_iter = 500;
    o.qos_tuner_threshold = 0.02; /* a tight budget: at most 0.02 % relative error */
    o.qos_keep_threshold = 0.03;
    o.take_best_n = 10;
    o.cost_model = PT_COST_LINEAR;
    o.output_dir = out;
    s = pt_tuner_tune(tuner, &o);
  }
  char path[4096];
  if (s == PT_OK) {
    snprintf(path, sizeof path, "%s/configs.json", out);
    s = pt_tuner_dump_configs(tuner, path, 0);
  }
  if (s == PT_OK) {
    snprintf(path, sizeof path, "%s/configs.svg", out);
    s = pt_tuner_plot(tuner, path, 0);
  }
  if (s != PT_OK) {
    fprintf(stderr, "generic_app: %s\n", pt_last_error());
    pt_tuner_free(tuner);
    pt_app_free(app);
    return 1;
  }
  const pt_tune_summary *sum = pt_tuner_summary(tuner);
  int bad = 0, n = pt_tuner_count(tuner, PT_BEST);
  printf("evaluated %lld of %.0f configs; %d kept, %d best configs:\n", (long long)sum->evaluated, sum->space_size,
         pt_tuner_count(tuner, PT_KEPT), n);
  for (int i = 0; i < n; i++) {
    pt_tuned_config c;
    pt_tuner_get(tuner, PT_BEST, i, &c);
    printf("  speedup %.2fx  QoS %.3f (test %.3f) ", c.speedup, c.qos, c.test_qos);
    for (int op = 0; op < CHUNKS; op++) printf(" %s", pt_app_op_knob(app, op, c.knobs[op]));
    printf("\n");
    bad += !(c.qos > sum->thresholds.tune_keep && c.test_qos >= sum->thresholds.test_keep);
  }
  pt_tuner_free(tuner);
  pt_app_free(app);
  return bad || n == 0;
}
