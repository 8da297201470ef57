/* Plays an HPVM-compiled program for the piped-binary tests: a tiny network (linear 16->12, add,
 * relu, linear 12->4, add) over synthetic data, with HPVM-like knobs (fp16, perforation, sampling),
 * answering the tuner over FIFOs as an HPVM binary does (docs/tune-binary.md).
 *
 *   hpvm_fake_bin --init DIR [MODE]   writes DIR/metadata.json (relative paths), DIR/tune_labels.bin
 *                                     and DIR/mode; MODE: ok (default), exit_early, exit_after_3,
 *                                     bad_tensor, no_accuracy, hang, crash_151_151 (aborts on the
 *                                     8 configs that give both linears knob 151), nan_151 (outputs NaN
 *                                     when linear_0 has knob 151, its accuracy still 95), accuracy_200
 *   hpvm_fake_bin                     (run in DIR by the tuner) serves "tune"/"test" commands until
 *                                     killed; writes its pid to DIR/pid */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define F 16
#define H 12
#define C 4
#define N 200
#define N_OPS 5


static uint64_t rng = 88172645463325252ull;
static float urand(void) { /* xorshift64 */
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static float w1[H][F], b1[H], w2[C][H], b2[C], xs[2][N][F];
static int32_t labels[2][N];

static float half(float x) { return (float)(_Float16)x; }

/* knob: 11 fp32, 12 fp16, 121 perforation (every 2nd input skipped, the rest scaled), 151 the same
 * in fp16, 231 sampling (every 3rd weight skipped, the rest scaled by 3/2), 261 the same in fp16 */
static void linear(int in, int out, const float *x, const float *w, float *y, int knob) {
  int fp16 = knob == 12 || knob == 151 || knob == 261;
  for (int o = 0; o < out; o++) {
    float acc = 0;
    for (int i = 0; i < in; i++) {
      float xv = x[i], wv = w[o * in + i];
      if ((knob == 121 || knob == 151)) {
        if (i % 2) continue;
        xv *= 2;
      }
      if ((knob == 231 || knob == 261)) {
        if (i % 3 == 2) continue;
        wv *= 1.5f;
      }
      acc += fp16 ? half(xv) * half(wv) : xv * wv;
    }
    y[o] = fp16 ? half(acc) : acc;
  }
}

static void forward(const float *x, const int *knob, float *out) {
  float h[H];
  linear(F, H, x, &w1[0][0], h, knob[0]);
  for (int j = 0; j < H; j++) {
    h[j] += knob[1] == 12 ? half(b1[j]) : b1[j];
    h[j] = h[j] > 0 ? h[j] : 0;
    if (knob[2] == 12) h[j] = half(h[j]);
  }
  linear(H, C, h, &w2[0][0], out, knob[3]);
  for (int k = 0; k < C; k++) out[k] += knob[4] == 12 ? half(b2[k]) : b2[k];
}

static void make_data(void) {
  for (int j = 0; j < H; j++) {
    for (int i = 0; i < F; i++) w1[j][i] = urand() * 0.5f;
    b1[j] = urand() * 0.1f;
  }
  for (int k = 0; k < C; k++) {
    for (int j = 0; j < H; j++) w2[k][j] = urand() * 0.5f;
    b2[k] = urand() * 0.1f;
  }
  static const int exact[N_OPS] = {11, 11, 11, 11, 11};
  for (int s = 0; s < 2; s++)
    for (int n = 0; n < N; n++) {
      for (int i = 0; i < F; i++) xs[s][n][i] = urand();
      float o[C];
      forward(xs[s][n], exact, o);
      int best = 0;
      for (int k = 1; k < C; k++)
        if (o[k] > o[best]) best = k;
      labels[s][n] = n % 7 == 3 ? (best + 1) % C : best; /* the exact network gets 6 of 7 right */
    }
}

static int init(const char *dir, const char *mode) {
  char p[4096];
  snprintf(p, sizeof p, "%s/metadata.json", dir);
  FILE *f = fopen(p, "w");
  if (!f) return 1;
  fprintf(f, "{\n  \"op_cost\": {\"linear_0\": %d, \"add_1\": %d, \"relu_2\": %d, \"linear_3\": %d, \"add_4\": %d},\n",
          F * H, H, H, H * C, C);
  const char *lin = "[\"11\", \"12\", \"121\", \"151\", \"231\", \"261\"]", *ew = "[\"11\", \"12\"]";
  fprintf(f, "  \"op_knobs\": {\"linear_0\": %s, \"add_1\": %s, \"relu_2\": %s, \"linear_3\": %s, \"add_4\": %s},\n", lin,
          ew, ew, lin, ew);
  fprintf(f, "  \"knobs\": {\"11\": {\"speedup\": 1.0, \"baseline_priority\": 0}, \"12\": {\"speedup\": 1.5},\n"
             "            \"121\": {\"speedup\": 1.8}, \"151\": {\"speedup\": 2.2}, \"231\": {\"speedup\": 1.6},\n"
             "            \"261\": {\"speedup\": 2.0, \"devices\": [\"gpu\"]}},\n");
  fprintf(f, "  \"tune_labels_path\": \"tune_labels.bin\", \"conf_path\": \"tuner_confs.txt\",\n"
             "  \"fifo_path_r\": \"hpvm_fifo_r\", \"fifo_path_w\": \"hpvm_fifo_w\"\n}\n");
  fclose(f);
  make_data();
  snprintf(p, sizeof p, "%s/tune_labels.bin", dir);
  if (!(f = fopen(p, "wb")) || fwrite(labels[0], 4, N, f) != N) return 1;
  fclose(f);
  snprintf(p, sizeof p, "%s/mode", dir);
  if (!(f = fopen(p, "w"))) return 1;
  fprintf(f, "%s\n", mode);
  fclose(f);
  return 0;
}

/* The knob of every op from the config text: triples "<op type> <knob type> <knob>" after "gpu". */
static int read_conf(int *knob) {
  FILE *f = fopen("tuner_confs.txt", "r");
  if (!f) return -1;
  char line[1024];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *g = strstr(line, " gpu ");
    if (!g) continue;
    char *tok = strtok(g + 5, " \n");
    int field = 0;
    while (tok) {
      if (field % 3 == 2 && n < N_OPS) knob[n++] = atoi(tok);
      field++;
      tok = strtok(NULL, " \n");
    }
  }
  fclose(f);
  return n == N_OPS ? 0 : -1;
}

static int serve(void) {
  char mode[64] = "ok";
  FILE *f = fopen("mode", "r");
  if (f) {
    if (fscanf(f, "%63s", mode) != 1) strcpy(mode, "ok");
    fclose(f);
  }
  if ((f = fopen("pid", "w"))) fprintf(f, "%d\n", (int)getpid()), fclose(f);
  make_data();
  for (int served = 0;; served++) {
    char cmd[16] = "";
    FILE *r = fopen("hpvm_fifo_r", "r");
    if (!r) return 2;
    size_t got = fread(cmd, 1, sizeof cmd - 1, r);
    fclose(r);
    cmd[got] = 0;
    if (!strcmp(mode, "exit_early") || (!strcmp(mode, "exit_after_3") && served == 3)) return 3;
    if (!strcmp(mode, "hang")) {
      for (;;) pause();
    }
    int test = !strcmp(cmd, "test");
    if (!test && strcmp(cmd, "tune")) return 5;
    int knob[N_OPS];
    if (read_conf(knob)) return 4;
    if (!strcmp(mode, "crash_151_151") && knob[0] == 151 && knob[3] == 151) abort();
    static float out[N][C];
    int correct = 0;
    for (int n = 0; n < N; n++) {
      forward(xs[test][n], knob, out[n]);
      int best = 0;
      for (int k = 1; k < C; k++)
        if (out[n][k] > out[n][best]) best = k;
      correct += best == labels[test][n];
    }
    if (strcmp(mode, "no_accuracy")) {
      FILE *a = fopen("final_accuracy", "w");
      if (!a) return 6;
      fprintf(a, "%.4f", !strcmp(mode, "accuracy_200") ? 200.0 : !strcmp(mode, "nan_151") && knob[0] == 151 ? 95.0
                                                                                                      : 100.0 * correct / N);
      fclose(a);
    }
    if (!strcmp(mode, "nan_151") && knob[0] == 151)
      for (int n = 0; n < N; n++) out[n][0] = NAN;
    FILE *w = fopen("hpvm_fifo_w", "wb");
    if (!w) return 7;
    for (int b = 0; b < 2; b++) { /* two batches of (N/2, C, 1, 1), as HPVM writes them */
      uint64_t hdr[5] = {4, N / 2, C, 1, 1};
      if (!strcmp(mode, "bad_tensor")) hdr[0] = 99;
      fwrite(hdr, 8, 5, w);
      fwrite(out[b * N / 2], 4, (size_t)(N / 2) * C, w);
    }
    fclose(w);
  }
}

int main(int argc, char **argv) {
  if (argc >= 3 && !strcmp(argv[1], "--init")) return init(argv[2], argc > 3 ? argv[3] : "ok");
  return serve();
}
