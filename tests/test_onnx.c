/* ONNX import: the ONNX backend node tests from Debian's libonnx-testdata (every case of a supported
 * op type, on every backend that can run here), a PyTorch-exported network against PyTorch's own
 * output, the demo LeNet through ONNX against the zoo, and bad input. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.pb-c.h"
#include "predtuner/predtuner.h"

#define TESTDATA_DEFAULT "/usr/share/libonnx-testdata/data"
#define FIX PT_SOURCE_DIR "/tests/fixtures/onnx"
#define DEMO PT_SOURCE_DIR "/zoo/demo"

static void *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *d = malloc(n > 0 ? (size_t)n : 1);
  if (d && n > 0 && fread(d, 1, (size_t)n, f) != (size_t)n) {
    free(d);
    d = NULL;
  }
  fclose(f);
  *len = n > 0 ? (size_t)n : 0;
  return d;
}

/* max |a - b| / max |b| (ggml's normalised error); NaN anywhere gives INFINITY */
static double norm_err(const float *a, const float *b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; i++) {
    if (isnan(a[i]) != isnan(b[i])) return INFINITY;
    if (isnan(b[i])) continue;
    num = fmax(num, fabs((double)a[i] - b[i]));
    den = fmax(den, fabs((double)b[i]));
  }
  return den > 0 ? num / den : num;
}

/* ---- the node tests ---- */

static const char *const SUPPORTED[] = {"Conv",    "Gemm",    "MatMul",      "Relu",    "Tanh",    "MaxPool",
                                        "AveragePool", "GlobalAveragePool", "BatchNormalization", "Add", "Flatten",
                                        "Reshape", "Softmax", "Identity",   "Dropout", "Constant"};
#define N_SUP ((int)(sizeof SUPPORTED / sizeof *SUPPORTED))

typedef struct counts {
  int passed, failed, skipped;
} counts;

static int sup_index(const char *t) {
  for (int i = 0; i < N_SUP; i++)
    if (!strcmp(SUPPORTED[i], t)) return i;
  return -1;
}

enum { R_PASS, R_FAIL, R_SKIP, R_OTHER };

/* Runs one test folder on backend be. why gets the reason of a skip or failure. */
static int run_case(const char *dir, pt_backend *be, int *op, char *why, size_t whylen) {
  char path[1024];
  size_t len;
  snprintf(path, sizeof path, "%s/model.onnx", dir);
  void *model = slurp(path, &len);
  if (!model) return snprintf(why, whylen, "cannot read %s", path), R_FAIL;
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, model);
  if (!mp || !mp->graph) {
    free(model);
    return snprintf(why, whylen, "protobuf-c cannot parse %s", path), R_FAIL;
  }
  /* the case's op type: its nodes' (Constant aside); cases using op types we do not import are not ours */
  const Onnx__GraphProto *gp = mp->graph;
  *op = -1;
  for (size_t i = 0; i < gp->n_node; i++) {
    int s = sup_index(gp->node[i]->op_type);
    if (s < 0) {
      *op = -1;
      onnx__model_proto__free_unpacked(mp, NULL);
      free(model);
      return R_OTHER;
    }
    if (*op < 0 || !strcmp(SUPPORTED[*op], "Constant")) *op = s;
  }
  /* graph inputs that are not initializers: input_0 is the data, the others are bound as constants */
  const char *names[16];
  int n_in = 0;
  for (size_t i = 0; i < gp->n_input && n_in < 16; i++) {
    int init = 0;
    for (size_t j = 0; j < gp->n_initializer; j++) init |= !strcmp(gp->initializer[j]->name, gp->input[i]->name);
    if (!init) names[n_in++] = gp->input[i]->name;
  }
  int result = R_PASS;
  int sets = 0;
  for (int ds = 0; result == R_PASS; ds++) {
    char dsdir[1100];
    snprintf(dsdir, sizeof dsdir, "%s/test_data_set_%d", dir, ds);
    DIR *dd = opendir(dsdir);
    if (!dd) break;
    closedir(dd);
    sets++;
    pt_onnx_binding bind[16];
    void *bufs[16] = {0};
    pt_tensor x = {0}, want = {0};
    pt_graph *g = NULL;
    pt_exec *ex = NULL;
    float *y = NULL;
    int nb = 0;
    for (int i = 1; i < n_in; i++) {
      char p[1200];
      snprintf(p, sizeof p, "%s/input_%d.pb", dsdir, i);
      bufs[i] = slurp(p, &bind[nb].len);
      bind[nb].input = names[i];
      bind[nb].tensor_pb = bufs[i];
      nb++;
    }
    pt_status s = n_in < 1 ? PT_EUNSUPPORTED : pt_onnx_import(model, len, path, bind, nb, &g);
    if (n_in < 1) snprintf(why, whylen, "no data input");
    else if (s != PT_OK) snprintf(why, whylen, "%s", pt_last_error());
    if (s == PT_EUNSUPPORTED) {
      result = R_SKIP;
    } else if (s != PT_OK) {
      result = R_FAIL;
    } else {
      char p[1200];
      size_t l1, l2;
      snprintf(p, sizeof p, "%s/input_0.pb", dsdir);
      void *b1 = slurp(p, &l1);
      snprintf(p, sizeof p, "%s/output_0.pb", dsdir);
      void *b2 = slurp(p, &l2);
      s = b1 && b2 ? pt_onnx_read_tensor(b1, l1, "input_0.pb", &x) : PT_EIO;
      if (s == PT_OK) s = pt_onnx_read_tensor(b2, l2, "output_0.pb", &want);
      free(b1), free(b2);
      if (s != PT_OK) {
        /* integer data (e.g. a uint8 Add) is not a float network: not a case we claim */
        snprintf(why, whylen, "test data: %s", pt_last_error());
        result = s == PT_EUNSUPPORTED ? R_SKIP : R_FAIL;
      } else {
        int n = (int)x.shape[0];
        int64_t out_n = (int64_t)n * pt_graph_output_numel(g);
        if (out_n != pt_tensor_numel(&want)) {
          snprintf(why, whylen, "output has %lld elements, expected %lld", (long long)out_n, (long long)pt_tensor_numel(&want));
          result = R_FAIL;
        } else {
          y = malloc((size_t)(out_n ? out_n : 1) * sizeof *y);
          s = pt_exec_create(g, be, &ex);
          if (s == PT_OK) s = pt_exec_run(ex, x.data, n, NULL, y);
          double err = s == PT_OK ? norm_err(y, want.data, out_n) : INFINITY;
          if (s != PT_OK) snprintf(why, whylen, "run: %s", pt_last_error()), result = R_FAIL;
          else if (!(err <= 1e-4)) snprintf(why, whylen, "error %.3g > 1e-4", err), result = R_FAIL;
        }
      }
    }
    free(y);
    pt_exec_free(ex);
    pt_graph_free(g);
    pt_tensor_free(&x);
    pt_tensor_free(&want);
    for (int i = 0; i < 16; i++) free(bufs[i]);
  }
  if (result == R_PASS && !sets) snprintf(why, whylen, "no test_data_set_*"), result = R_FAIL;
  onnx__model_proto__free_unpacked(mp, NULL);
  free(model);
  return result;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Runs every case under <testdata>/<suite> on backend; node tests must pass at least once per op type. */
static void conformance_on(const char *backend, const char *suite) {
  const char *base = getenv("PT_ONNX_TESTDATA") ? getenv("PT_ONNX_TESTDATA") : TESTDATA_DEFAULT;
  char root[512];
  snprintf(root, sizeof root, "%s/%s", base, suite);
  DIR *d = opendir(root);
  cr_assert_not_null(d, "%s: no ONNX node tests (scripts/dev.sh test installs Debian's libonnx-testdata)", root);
  char *dirs[4096];
  int nd = 0;
  struct dirent *e;
  while ((e = readdir(d)) && nd < 4096)
    if (!strncmp(e->d_name, "test_", 5)) dirs[nd++] = strdup(e->d_name);
  closedir(d);
  qsort(dirs, (size_t)nd, sizeof *dirs, cmp_str);
  pt_backend *be;
  cr_assert_eq(pt_backend_create(backend, 2, &be), PT_OK, "%s", pt_last_error());
  counts c[N_SUP] = {{0}};
  int other = 0, total_failed = 0;
  for (int i = 0; i < nd; i++) {
    char dir[1024], why[600] = "";
    snprintf(dir, sizeof dir, "%s/%s", root, dirs[i]);
    int op = -1;
    int r = run_case(dir, be, &op, why, sizeof why);
    if (r == R_OTHER) {
      other++;
    } else if (op < 0) {
      printf("onnx[%s] %-48s FAIL  %s\n", backend, dirs[i], why);
      total_failed++;
    } else {
      if (r == R_PASS) c[op].passed++;
      else if (r == R_FAIL) c[op].failed++, total_failed++;
      else c[op].skipped++;
      if (r != R_PASS) printf("onnx[%s] %-48s %s  %s\n", backend, dirs[i], r == R_FAIL ? "FAIL" : "skip", why);
    }
    free(dirs[i]);
  }
  printf("\nONNX %s tests on %s (%s): %d folders, %d use op types not imported\n", suite, backend, root, nd, other);
  printf("%-20s %7s %7s %8s\n", "op type", "passed", "failed", "skipped");
  int tp = 0, ts = 0;
  for (int i = 0; i < N_SUP; i++) {
    printf("%-20s %7d %7d %8d\n", SUPPORTED[i], c[i].passed, c[i].failed, c[i].skipped);
    tp += c[i].passed, ts += c[i].skipped;
  }
  printf("%-20s %7d %7d %8d\n", "total", tp, total_failed, ts);
  fflush(stdout);
  pt_backend_free(be);
  cr_expect_eq(total_failed, 0, "%d ONNX %s test cases failed on %s (listed above)", total_failed, suite, backend);
  if (strcmp(suite, "node")) {
    cr_expect_gt(tp, 0, "no passing %s case on %s", suite, backend);
    return;
  }
  /* every op type we claim is exercised by at least one passing case where the test data has one */
  static const char *const must_pass[] = {"Conv", "Gemm", "MatMul", "Relu", "Tanh", "MaxPool", "AveragePool",
                                          "GlobalAveragePool", "BatchNormalization", "Flatten", "Reshape", "Softmax"};
  for (size_t i = 0; i < sizeof must_pass / sizeof *must_pass; i++)
    cr_expect_gt(c[sup_index(must_pass[i])].passed, 0, "no passing %s case on %s", must_pass[i], backend);
}

static void on_cuda(const char *suite) {
  for (int i = 0; i < pt_backend_count(); i++) {
    const char *why = NULL;
    if (!strcmp(pt_backend_name_at(i), "cuda")) {
      if (!pt_backend_available_at(i, &why)) cr_skip_test("CUDA backend built but not usable here: %s", why ? why : "no GPU");
      conformance_on("cuda", suite);
      return;
    }
  }
  cr_skip_test("CUDA backend not built");
}

/* data/node: one op per model, weights fed as inputs (bound as constants here) */
Test(onnx, node_tests_cpu, .timeout = 300) { conformance_on("cpu", "node"); }
Test(onnx, node_tests_cuda, .timeout = 300) { on_cuda("node"); }
/* data/pytorch-converted: PyTorch modules exported with their weights as initializers */
Test(onnx, pytorch_converted_tests_cpu, .timeout = 300) { conformance_on("cpu", "pytorch-converted"); }
Test(onnx, pytorch_converted_tests_cuda, .timeout = 300) { on_cuda("pytorch-converted"); }
