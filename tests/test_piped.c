/* The piped-binary app: tests/hpvm_fake_bin plays an HPVM program; the app drives it, the CLI tunes
 * it end to end, and every way the binary or its metadata can go wrong is a clear error with no
 * child left behind. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/piped_internal.h"
#include "predtuner/predtuner.h"

static char dir[256];

/* A fresh folder holding the fake binary and its metadata; mode as hpvm_fake_bin --init takes. */
static const char *setup_dir(const char *mode) {
  snprintf(dir, sizeof dir, "/tmp/pt_piped_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s/hpvm_fake_bin' && '%s/hpvm_fake_bin' --init '%s' %s", PT_FAKE_BIN, dir, dir, dir,
           mode);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  return dir;
}

static void cleanup_dir(void) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

static char *path_in(const char *name) {
  static char p[16][512];
  static int k;
  k = (k + 1) % 16;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

/* The fake binary's pid (it writes one when it starts), or -1. */
static int fake_pid(void) {
  FILE *f = fopen(path_in("pid"), "r");
  int pid = -1;
  if (f) {
    if (fscanf(f, "%d", &pid) != 1) pid = -1;
    fclose(f);
  }
  return pid;
}

/* The process is gone (or a zombie awaiting its new parent), within a few seconds. */
static int gone(int pid) {
  for (int i = 0; i < 300; i++) {
    char p[64], state = 0;
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "r");
    if (!f) return 1;
    int r = fscanf(f, "%*d %*s %c", &state);
    fclose(f);
    if (r == 1 && state == 'Z') return 1;
    usleep(10000);
  }
  return 0;
}

Test(piped, drives_the_binary) {
  setup_dir("ok");
  pt_piped_app_opts o = {path_in("hpvm_fake_bin"), path_in("metadata.json"), NULL, NULL, 30};
  pt_app *app;
  cr_assert_eq(pt_app_piped_create(&o, &app), PT_OK, "%s", pt_last_error());
  cr_assert_str_eq(pt_app_name(app), "hpvm_fake_bin");
  cr_assert_eq(pt_app_num_ops(app), 5);
  cr_assert_str_eq(pt_app_op_name(app, 0), "linear_0");
  cr_assert_str_eq(pt_app_op_name(app, 4), "add_4");
  cr_assert_eq(pt_app_op_num_knobs(app, 0), 6);
  cr_assert_str_eq(pt_app_op_knob(app, 0, 0), "11"); /* the baseline (highest baseline_priority) first */
  cr_assert_eq(pt_app_op_knob_speedup(app, 0, 3), 2.2);
  cr_assert_eq(pt_app_op_cost(app, 0), 192.0);
  int pid = fake_pid();
  cr_assert_gt(pid, 0);
  /* the exact program gets 6 of 7 labels right: 171 of 200 */
  double q[3], c[3];
  uint16_t cfg[3][5] = {{0}, {2, 0, 0, 0, 0}, {0, 1, 1, 4, 1}};
  cr_assert_eq(pt_app_measure(app, 3, &cfg[0][0], 0, q, c), PT_OK, "%s", pt_last_error());
  cr_assert_float_eq(q[0], 85.5, 1e-9);
  cr_assert(q[1] != q[0], "perforating linear_0 changes the accuracy (%g)", q[1]);
  cr_assert(c[0] > 0 && c[0] < 30);
  cr_assert_eq(access(path_in("final_accuracy"), F_OK), -1); /* read, then deleted */
  FILE *f = fopen(path_in("tuner_confs.txt"), "r");
  cr_assert_not_null(f);
  char text[512] = "";
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  cr_assert_str_eq(text, "0.0\n+++++\nconf1 1 1.0 1 0\n1 gpu mul fp32 11 add fp16 12 relu fp16 12\n"
                         "2 gpu mul samp 231 add fp16 12\n-----\n");
  double tq;
  cr_assert_eq(pt_app_measure(app, 1, NULL, 1, &tq, NULL), PT_OK);
  cr_assert_float_eq(tq, 85.5, 1e-9);
  pt_app_free(app);
  cr_assert(gone(pid), "the binary outlived the app");
  cr_assert_eq(access(path_in("hpvm_fifo_r"), F_OK), -1, "FIFOs are removed");
  cleanup_dir();
}

Test(piped, target_device_drops_knobs) {
  setup_dir("ok");
  pt_piped_app_opts o = {path_in("hpvm_fake_bin"), path_in("metadata.json"), "fake", "cpu", 30};
  pt_app *app;
  cr_assert_eq(pt_app_piped_create(&o, &app), PT_OK, "%s", pt_last_error());
  cr_assert_str_eq(pt_app_name(app), "fake");
  cr_assert_eq(pt_app_op_num_knobs(app, 0), 5); /* "261" is for GPUs only */
  cr_assert_eq(pt_app_op_find_knob(app, 0, "261"), -1);
  pt_app_free(app);
  cleanup_dir();
}

Test(piped, cli_tunes_the_binary_and_exports_hpvm_configs, .timeout = 120) {
  setup_dir("ok");
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' tune-binary --binary '%s' --metadata '%s' --max-iter 60 --qos-tuner-threshold 3 --seed 2 --quiet "
           "--output '%s' > '%s' 2>&1 && '%s' export-hpvm '%s' -o '%s' >> '%s' 2>&1",
           PT_CLI_PATH, path_in("hpvm_fake_bin"), path_in("metadata.json"), path_in("out"), path_in("log"), PT_CLI_PATH,
           path_in("out/configs.json"), path_in("confs.txt"), path_in("log"));
  int st = system(cmd);
  if (st) {
    snprintf(cmd, sizeof cmd, "cat '%s'", path_in("log"));
    cr_assert_eq(system(cmd), 0);
  }
  cr_assert_eq(st, 0, "status %d: %s", st, cmd);
  pt_config_list *cl;
  cr_assert_eq(pt_configs_load(path_in("out/configs.json"), &cl), PT_OK, "%s", pt_last_error());
  cr_assert_gt(cl->n, 1);
  int faster = 0;
  for (int i = 0; i < cl->n; i++) {
    cr_assert_eq(cl->configs[i].n, 5);
    cr_assert_str_eq(cl->configs[i].ops[0], "linear_0");
    cr_assert(cl->configs[i].test_qos >= 85.5 - 3 - 1e-9);
    faster += 1.0 / cl->configs[i].cost > 1.2;
  }
  cr_assert_gt(faster, 0, "no config is 1.2x faster by op_cost x speedups");
  pt_configs_free(cl);
  FILE *f = fopen(path_in("confs.txt"), "r");
  cr_assert_not_null(f);
  char line[256];
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_assert_str_eq(line, "0.0\n");
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_assert_str_eq(line, "+++++\n");
  fclose(f);
  cr_assert(gone(fake_pid()));
  cleanup_dir();
}

/* create fails with a message containing needle, and the binary (if it started) is gone */
static void expect_create_error(const char *mode, double timeout, const char *needle) {
  setup_dir(mode);
  pt_piped_app_opts o = {path_in("hpvm_fake_bin"), path_in("metadata.json"), NULL, NULL, timeout};
  pt_app *app = (pt_app *)1;
  pt_status s = pt_app_piped_create(&o, &app);
  cr_expect_neq(s, PT_OK, "mode %s: created", mode);
  cr_expect_null(app);
  cr_expect_not_null(strstr(pt_last_error(), needle), "mode %s: '%s' not in: %s", mode, needle, pt_last_error());
  cr_expect_null(strchr(pt_last_error(), '\n'), "%s", pt_last_error());
  int pid = fake_pid();
  if (pid > 0) cr_expect(gone(pid), "mode %s: the binary outlived the failed app", mode);
  cleanup_dir();
}

Test(piped, a_misbehaving_binary_is_a_clear_error, .timeout = 120) {
  expect_create_error("exit_early", 30, "exited with status 3");
  expect_create_error("bad_tensor", 30, "malformed tensor bytes: tensor 0 has 99 dimensions");
  expect_create_error("no_accuracy", 30, "wrote no final_accuracy file");
  expect_create_error("hang", 1, "no complete answer from the binary within 1 s");
}

Test(piped, a_binary_dying_on_a_config_fails_it_and_is_started_again) {
  setup_dir("exit_after_3");
  pt_piped_app_opts o = {path_in("hpvm_fake_bin"), path_in("metadata.json"), NULL, NULL, 30};
  pt_app *app;
  cr_assert_eq(pt_app_piped_create(&o, &app), PT_OK, "%s", pt_last_error());
  double q[4];
  uint16_t cfg[4][5] = {{0}};
  cr_assert_eq(pt_app_measure(app, 4, &cfg[0][0], 0, q, NULL), PT_EIO);
  cr_assert_not_null(strstr(pt_last_error(), "exited with status 3"), "%s", pt_last_error());
  /* the next measurement starts it again (it serves three more) */
  cr_assert_eq(pt_app_measure(app, 1, &cfg[0][0], 0, q, NULL), PT_OK, "%s", pt_last_error());
  cr_assert_float_eq(q[0], 85.5, 1e-9, "the exact program's QoS, %g", q[0]);
  pt_app_free(app);
  cleanup_dir();
}

Test(piped, the_binary_dies_with_the_tuner, .timeout = 60) {
  setup_dir("hang");
  /* orphans come to this process, so it can reap the binary and see what killed it */
  cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  char cmd[2048];
  /* the CLI waits on the hanging binary; killing the CLI (SIGKILL: no cleanup) must take the binary with it */
  snprintf(cmd, sizeof cmd, "'%s' tune-binary --binary '%s' --metadata '%s' --output '%s' >/dev/null 2>&1 & echo $! > '%s'",
           PT_CLI_PATH, path_in("hpvm_fake_bin"), path_in("metadata.json"), path_in("out"), path_in("cli_pid"));
  cr_assert_eq(system(cmd), 0);
  int pid = -1;
  for (int i = 0; i < 500 && (pid = fake_pid()) <= 0; i++) usleep(10000);
  cr_assert_gt(pid, 0, "the binary never started");
  FILE *f = fopen(path_in("cli_pid"), "r");
  int cli = -1;
  cr_assert_eq(fscanf(f, "%d", &cli), 1);
  fclose(f);
  cr_assert_eq(kill(cli, SIGKILL), 0);
  int st;
  cr_assert_eq(waitpid(cli, &st, 0), cli);
  pid_t r = 0;
  for (int i = 0; i < 500 && (r = waitpid(pid, &st, WNOHANG)) == 0; i++) usleep(10000);
  cr_assert_eq(r, pid, "the binary outlived a killed tuner");
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the binary ended with status %d", st);
  cleanup_dir();
}

Test(piped, missing_fifo_folder_and_missing_binary) {
  setup_dir("ok");
  /* FIFOs in a folder that does not exist */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "sed -i 's|\"hpvm_fifo_r\"|\"nowhere/hpvm_fifo_r\"|' '%s'", path_in("metadata.json"));
  cr_assert_eq(system(cmd), 0);
  pt_piped_app_opts o = {path_in("hpvm_fake_bin"), path_in("metadata.json"), NULL, NULL, 30};
  pt_app *app;
  cr_assert_eq(pt_app_piped_create(&o, &app), PT_EIO);
  cr_assert_not_null(strstr(pt_last_error(), "nowhere/hpvm_fifo_r: cannot create the binary's read (fifo_path_r) FIFO"), "%s",
                     pt_last_error());
  o.binary = path_in("no_such_binary");
  cr_assert_eq(pt_app_piped_create(&o, &app), PT_ENOTFOUND);
  cr_assert_not_null(strstr(pt_last_error(), "no_such_binary: not an executable file"));
  cleanup_dir();
}

/* ---- metadata ---- */

static void expect_meta_error(const char *json, const char *needle) {
  pt__pmeta m;
  pt_status s = pt__pmeta_parse(json, strlen(json), "M.json", "/d", &m);
  cr_expect_eq(s, PT_EFORMAT, "%s", json);
  cr_expect_not_null(strstr(pt_last_error(), needle), "'%s' not in: %s", needle, pt_last_error());
  cr_expect_not_null(strstr(pt_last_error(), "M.json: "));
}

#define PATHS "\"tune_labels_path\": \"l.bin\", \"conf_path\": \"/abs/c.txt\", \"fifo_path_r\": \"r\", \"fifo_path_w\": \"w\""

Test(piped, metadata_is_checked) {
  const char *good = "{\"op_cost\": {\"conv_0\": 10, \"relu_1\": 1}, \"op_knobs\": {\"conv_0\": [\"11\", \"12\"], "
                     "\"relu_1\": [\"11\"]}, \"knobs\": {\"11\": {\"speedup\": 1, \"baseline_priority\": 0}, \"12\": "
                     "{\"speedup\": 1.5, \"devices\": [\"gpu\"]}}, " PATHS "}";
  pt__pmeta m;
  cr_assert_eq(pt__pmeta_parse(good, strlen(good), "M.json", "/d", &m), PT_OK, "%s", pt_last_error());
  cr_assert_eq(m.n_ops, 2);
  cr_assert_str_eq(m.ops[1].name, "relu_1");
  cr_assert_eq(m.ops[0].n_knobs, 2);
  cr_assert_str_eq(m.tune_labels_path, "/d/l.bin"); /* relative to the metadata's folder */
  cr_assert_str_eq(m.conf_path, "/abs/c.txt");
  cr_assert_eq(m.knobs[1].devices, PT_DEVICE_GPU);
  pt__pmeta_free(&m);
  expect_meta_error("{\"op_cost\": {\"conv_0\": 10}, \"op_knobs\": {\"conv_0\": [\"11\"], \"relu_1\": [\"11\"]}, \"knobs\": "
                    "{\"11\": {\"speedup\": 1}}, " PATHS "}",
                    "op sets differ: 'relu_1' is in \"op_knobs\" but not in \"op_cost\"");
  expect_meta_error("{\"op_cost\": {\"conv_0\": 10, \"x_1\": 2}, \"op_knobs\": {\"conv_0\": [\"11\"]}, \"knobs\": "
                    "{\"11\": {\"speedup\": 1}}, " PATHS "}",
                    "op sets differ: 'x_1' is in \"op_cost\" but not in \"op_knobs\"");
  expect_meta_error("{\"op_cost\": {\"conv_0\": 10}, \"op_knobs\": {\"conv_0\": [\"11\", \"151\"]}, \"knobs\": "
                    "{\"11\": {\"speedup\": 1}}, " PATHS "}",
                    "op 'conv_0' uses knob '151', which \"knobs\" does not define");
  expect_meta_error("{\"op_cost\": {\"conv_0\": 10}, \"op_knobs\": {\"conv_0\": [\"11\"]}, \"knobs\": "
                    "{\"11\": {\"speedup\": 0}}, " PATHS "}",
                    "knob '11' needs a \"speedup\" > 0");
  expect_meta_error("{\"op_cost\": {\"conv_0\": 10}, \"op_knobs\": {\"conv_0\": [\"11\"]}, \"knobs\": "
                    "{\"11\": {\"speedup\": 1}}}",
                    "\"tune_labels_path\" must be a non-empty string");
  expect_meta_error("{\"op_cost\": {\"conv_0\": 10}, \"op_knobs\": {\"conv_0\": [\"11\"]}, \"knobs\": ",
                    "not valid JSON");
  expect_meta_error("[1, 2]", "not a JSON object");
}

/* ---- the tensor stream ---- */

Test(piped, tensor_stream_is_checked) {
  uint8_t b[256];
  uint64_t h[5] = {4, 2, 3, 1, 1};
  memcpy(b, h, 40);
  float v[6] = {1, 2, 3, 4, 5, 6};
  memcpy(b + 40, v, 24);
  uint64_t h2[3] = {2, 1, 3};
  memcpy(b + 64, h2, 24);
  float v2[3] = {7, 8, 9};
  memcpy(b + 88, v2, 12);
  float *d;
  int64_t r, c;
  cr_assert_eq(pt__parse_hpvm_tensors(b, 100, "w", &d, &r, &c), PT_OK, "%s", pt_last_error());
  cr_assert(r == 3 && c == 3);
  cr_assert_eq(d[8], 9.0f);
  free(d);
  cr_assert_eq(pt__parse_hpvm_tensors(b, 99, "w", &d, &r, &c), PT_EFORMAT); /* data cut short */
  cr_assert_not_null(strstr(pt_last_error(), "w: malformed tensor bytes: tensor 1 needs 3 floats"), "%s", pt_last_error());
  cr_assert_eq(pt__parse_hpvm_tensors(b, 0, "w", &d, &r, &c), PT_EFORMAT);
  cr_assert_not_null(strstr(pt_last_error(), "returned no tensor"));
  cr_assert_eq(pt__parse_hpvm_tensors(b, 20, "w", &d, &r, &c), PT_EFORMAT);
  uint64_t h3[3] = {2, 1, 4}; /* rows of 4 after rows of 3 */
  memcpy(b + 64, h3, 24);
  cr_assert_eq(pt__parse_hpvm_tensors(b, 104, "w", &d, &r, &c), PT_EFORMAT);
  cr_assert_not_null(strstr(pt_last_error(), "tensor 1 has 4 values per row, the ones before 3"), "%s", pt_last_error());
}
