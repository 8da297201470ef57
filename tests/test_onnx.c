/* ONNX import: the ONNX backend node tests from Debian's libonnx-testdata (every case of a supported
 * op type, on every backend that can run here), a PyTorch-exported network against PyTorch's own
 * output, the demo LeNet through ONNX against the zoo, and bad input. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "naive.h"
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
static double max_norm_err(const float *a, const float *b, int64_t n) {
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

/* Compares the network's output on input_0.pb of one data set folder with output_0.pb. */
static int check_outputs(const char *dsdir, pt_graph *g, pt_backend *be, char *why, size_t whylen) {
  char p[1200];
  size_t l1, l2;
  pt_tensor x = {0}, want = {0};
  snprintf(p, sizeof p, "%s/input_0.pb", dsdir);
  void *b1 = slurp(p, &l1);
  snprintf(p, sizeof p, "%s/output_0.pb", dsdir);
  void *b2 = slurp(p, &l2);
  pt_status s = b1 && b2 ? pt_onnx_read_tensor(b1, l1, "input_0.pb", &x) : PT_EIO;
  if (s == PT_OK) s = pt_onnx_read_tensor(b2, l2, "output_0.pb", &want);
  free(b1), free(b2);
  int result = R_PASS;
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
      float *y = malloc((size_t)(out_n ? out_n : 1) * sizeof *y);
      pt_exec *ex = NULL;
      s = pt_exec_create(g, be, &ex);
      if (s == PT_OK) s = pt_exec_run(ex, x.data, n, NULL, y);
      double err = s == PT_OK ? max_norm_err(y, want.data, out_n) : INFINITY;
      if (s != PT_OK) snprintf(why, whylen, "run: %s", pt_last_error()), result = R_FAIL;
      else if (!(err <= 1e-4)) snprintf(why, whylen, "error %.3g > 1e-4", err), result = R_FAIL;
      pt_exec_free(ex);
      free(y);
    }
  }
  pt_tensor_free(&x);
  pt_tensor_free(&want);
  return result;
}

/* One test_data_set folder: the model imported with inputs 1.. bound as constants, then its output. */
static int run_data_set(const char *dsdir, const char *path, const void *model, size_t len, const char *const *names,
                        int n_in, pt_backend *be, char *why, size_t whylen) {
  pt_onnx_binding bind[16];
  void *bufs[16] = {0};
  pt_graph *g = NULL;
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
  int result = s == PT_EUNSUPPORTED ? R_SKIP : s != PT_OK ? R_FAIL : check_outputs(dsdir, g, be, why, whylen);
  pt_graph_free(g);
  for (int i = 0; i < 16; i++) free(bufs[i]);
  return result;
}

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
  int result = R_PASS, sets = 0;
  for (int ds = 0; result == R_PASS; ds++) {
    char dsdir[1100];
    snprintf(dsdir, sizeof dsdir, "%s/test_data_set_%d", dir, ds);
    DIR *dd = opendir(dsdir);
    if (!dd) break;
    closedir(dd);
    sets++;
    result = run_data_set(dsdir, path, model, len, names, n_in, be, why, whylen);
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

/* ---- PyTorch's exporter (tests/fixtures/onnx/make_onnx_fixtures.py) ---- */

static float *read_floats(const char *path, int64_t n) {
  size_t len;
  float *d = slurp(path, &len);
  cr_assert_not_null(d, "%s", path);
  cr_assert_eq(len, (size_t)n * 4, "%s: %zu bytes", path, len);
  return d;
}

/* The tiny CNN's fixture input and PyTorch's output, and a CPU executor for g. */
typedef struct tiny_run {
  float *x, *want;
  pt_backend *be;
  pt_exec *ex;
} tiny_run;

static tiny_run tiny_start(const pt_graph *g) {
  tiny_run t;
  t.x = read_floats(FIX "/tiny_cnn_input.bin", 4 * 3 * 16 * 16);
  t.want = read_floats(FIX "/tiny_cnn_output.bin", 40);
  cr_assert_eq(pt_backend_create("cpu", 2, &t.be), PT_OK);
  cr_assert_eq(pt_exec_create(g, t.be, &t.ex), PT_OK, "%s", pt_last_error());
  return t;
}

static void tiny_end(tiny_run *t) {
  pt_exec_free(t->ex);
  pt_backend_free(t->be);
  free(t->x), free(t->want);
}

/* x.view(x.size(0), -1) with a dynamic batch: Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
 * folded at import; any batch size runs */
Test(onnx, pytorch_view_with_dynamic_batch_matches_pytorch) {
  pt_graph *g;
  cr_assert_eq(pt_onnx_load(FIX "/tiny_cnn_view.onnx", &g), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_graph_num_ops(g), 15);
  tiny_run t = tiny_start(g);
  float y[40];
  cr_assert_eq(pt_exec_run(t.ex, t.x, 4, NULL, y), PT_OK, "%s", pt_last_error());
  cr_assert(max_norm_err(y, t.want, 40) <= 1e-5, "error vs PyTorch %g", max_norm_err(y, t.want, 40));
  cr_assert_eq(pt_exec_run(t.ex, t.x + 3 * 16 * 16, 3, NULL, y), PT_OK); /* images 1..3 alone */
  cr_assert(max_norm_err(y, t.want + 10, 30) <= 1e-5);
  tiny_end(&t);
  pt_graph_free(g);
}

Test(onnx, pytorch_export_matches_pytorch) {
  pt_graph *g;
  cr_assert_eq(pt_onnx_load(FIX "/tiny_cnn.onnx", &g), PT_OK, "%s", pt_last_error());
  int c, h, w;
  pt_graph_input_shape(g, &c, &h, &w);
  cr_assert(c == 3 && h == 16 && w == 16);
  cr_assert_eq(pt_graph_num_classes(g), 10);
  /* ops are the exporter's node names, in node order; the bias Add after MatMul is folded in,
   * the residual Add, Flatten and Pad are not ops */
  static const char *const ops[] = {"/stem/Conv", "/relu/Relu", "/block/conv1/Conv", "/block/relu1/Relu",
                                    "/block/bn1/BatchNormalization", "/block/conv2/Conv", "/block/relu2/Relu",
                                    "/pool/MaxPool", "/dw/Conv", "/avg/AveragePool", "/gap/GlobalAveragePool",
                                    "/fc1/Gemm", "/tanh/Tanh", "/MatMul", "/softmax/Softmax"};
  cr_assert_eq(pt_graph_num_ops(g), 15);
  for (int i = 0; i < 15; i++) cr_assert_str_eq(pt_graph_op_name(g, i), ops[i]);
  cr_assert_eq(pt_graph_op_type(g, 0), PT_OP_CONV2D);
  cr_assert_eq(pt_graph_op_type(g, 13), PT_OP_LINEAR);
  cr_assert_eq(pt_graph_op_type(g, 10), PT_OP_AVGPOOL2D);
  int64_t sh[3];
  cr_assert_eq(pt_graph_op_out_shape(g, 0, sh), 3); /* (3,16,16) -> kernel (3,5), stride (1,2), pad (1,2) */
  cr_assert(sh[0] == 8 && sh[1] == 16 && sh[2] == 8);
  cr_assert_eq(pt_graph_op_out_shape(g, 9, sh), 3); /* AvgPool2d(2) after a zero Pad */
  cr_assert(sh[1] == 4 && sh[2] == 2, "%lld x %lld", (long long)sh[1], (long long)sh[2]);
  tiny_run t = tiny_start(g);
  float y[40];
  cr_assert_eq(pt_exec_run(t.ex, t.x, 4, NULL, y), PT_OK, "%s", pt_last_error());
  double err = max_norm_err(y, t.want, 40);
  cr_assert(err <= 1e-5, "error vs PyTorch %g", err);
  /* knobs apply to ONNX convolutions as to the zoo's: perforating the stem changes the output */
  pt_op_exec cfg[15] = {{0}};
  cfg[0] = (pt_op_exec){.kind = PT_APPROX_PERFORATE, .perf_dir = PT_PERF_ROWS, .perf_stride = 2, .perf_offset = 0};
  cfg[2].fp16 = 1;
  cr_assert_eq(pt_exec_run(t.ex, t.x, 4, cfg, y), PT_OK, "%s", pt_last_error());
  double d = max_norm_err(y, t.want, 40);
  cr_assert(d > 1e-4 && d < 0.5, "approximate run differs by %g", d);
  tiny_end(&t);
  pt_graph_free(g);
}

/* ---- the demo LeNet through ONNX tunes exactly as through the zoo ---- */

#include <cjson/cJSON.h>

static cJSON *tune_demo(const char *model_args, const char *out) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd,
           "'%s' tune %s --data '%s' --qos-model qos_p1 --cost-model cost_linear --max-iter 80 --tune-count 300 "
           "--test-count 300 --take-best-n 6 --seed 5 --backend cpu --threads 2 --quiet --output '%s' >'%s.log' 2>&1",
           PT_CLI_PATH, model_args, DEMO, out, out);
  int st = system(cmd);
  cr_assert_eq(st, 0, "%s failed (log in %s.log)", cmd, out);
  char path[1100];
  snprintf(path, sizeof path, "%s/configs.json", out);
  size_t len;
  char *text = slurp(path, &len);
  cr_assert_not_null(text, "%s", path);
  cJSON *j = cJSON_ParseWithLength(text, len);
  free(text);
  cr_assert_not_null(j, "%s", path);
  return j;
}

Test(onnx, demo_lenet_onnx_tunes_like_the_zoo, .timeout = 300) {
  char dir[] = "/tmp/pt_onnx_tuneXXXXXX", a[600], b[600];
  cr_assert_not_null(mkdtemp(dir));
  snprintf(a, sizeof a, "%s/zoo", dir);
  snprintf(b, sizeof b, "%s/onnx", dir);
  cJSON *zoo = tune_demo("--model lenet_mnist --weights '" DEMO "/lenet_mnist.safetensors'", a);
  cJSON *onnx = tune_demo("--model '" DEMO "/lenet_mnist.onnx'", b);
  const cJSON *cz = cJSON_GetObjectItem(zoo, "configs"), *co = cJSON_GetObjectItem(onnx, "configs");
  cr_assert_gt(cJSON_GetArraySize(cz), 1);
  cr_assert_eq(cJSON_GetArraySize(cz), cJSON_GetArraySize(co));
  cr_assert_str_eq(cJSON_GetObjectItem(onnx, "app")->valuestring, "lenet_mnist");
  for (int i = 0; i < cJSON_GetArraySize(cz); i++) {
    const cJSON *x = cJSON_GetArrayItem(cz, i), *y = cJSON_GetArrayItem(co, i);
    static const char *const keys[] = {"qos", "speedup", "test_qos"};
    for (int k = 0; k < 3; k++)
      cr_assert_eq(cJSON_GetObjectItem(x, keys[k])->valuedouble, cJSON_GetObjectItem(y, keys[k])->valuedouble,
                   "config %d %s", i, keys[k]);
    /* same knobs op by op; ONNX ops carry the exporter's names ("/convs/convs.0/Conv" for "convs.0") */
    const cJSON *kx = cJSON_GetObjectItem(x, "knobs"), *ky = cJSON_GetObjectItem(y, "knobs");
    cr_assert_eq(cJSON_GetArraySize(kx), 10);
    cr_assert_eq(cJSON_GetArraySize(ky), 10);
    for (int o = 0; o < 10; o++) {
      const cJSON *ox = cJSON_GetArrayItem(kx, o), *oy = cJSON_GetArrayItem(ky, o);
      cr_assert_str_eq(ox->valuestring, oy->valuestring, "config %d op %d", i, o);
      cr_assert_not_null(strstr(oy->string, ox->string), "'%s' vs '%s'", oy->string, ox->string);
    }
  }
  cJSON_Delete(zoo);
  cJSON_Delete(onnx);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  cr_assert_eq(system(cmd), 0);
}

/* ---- bad input: one-line errors naming the file and the problem ---- */

static void expect_error(const void *data, size_t len, pt_status want, const char *needle) {
  const char *path = write_tmp_file("onnx", "bad.onnx", data, len);
  cr_assert_not_null(path);
  pt_graph *g = (pt_graph *)1;
  pt_status s = pt_onnx_load(path, &g);
  cr_expect_eq(s, want, "status %s, want %s: %s", pt_status_name(s), pt_status_name(want), pt_last_error());
  cr_expect_null(g);
  cr_expect_not_null(strstr(pt_last_error(), path), "error does not name the file: %s", pt_last_error());
  cr_expect_not_null(strstr(pt_last_error(), needle), "error lacks '%s': %s", needle, pt_last_error());
  cr_expect_null(strchr(pt_last_error(), '\n'), "not one line: %s", pt_last_error());
  unlink(path);
}

/* The fixture model re-serialised after edit() changes it. */
static void *edited(void (*edit)(Onnx__ModelProto *), size_t *len) {
  size_t n;
  void *d = slurp(FIX "/tiny_cnn.onnx", &n);
  Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, n, d);
  cr_assert_not_null(mp);
  edit(mp);
  *len = onnx__model_proto__get_packed_size(mp);
  void *out = malloc(*len);
  onnx__model_proto__pack(mp, out);
  onnx__model_proto__free_unpacked(mp, NULL);
  free(d);
  return out;
}

static void edit_optype(Onnx__ModelProto *mp) {
  Onnx__NodeProto *n = mp->graph->node[1];
  free(n->op_type);
  n->op_type = strdup("LeakyRelu");
}
static void edit_dilation(Onnx__ModelProto *mp) {
  Onnx__NodeProto *n = mp->graph->node[0];
  for (size_t i = 0; i < n->n_attribute; i++)
    if (!strcmp(n->attribute[i]->name, "dilations")) n->attribute[i]->ints[0] = 2;
}
static void edit_weight_shape(Onnx__ModelProto *mp) {
  for (size_t i = 0; i < mp->graph->n_initializer; i++)
    if (!strcmp(mp->graph->initializer[i]->name, "stem.weight")) mp->graph->initializer[i]->dims[1] = 4;
}
static void edit_truncate_raw(Onnx__ModelProto *mp) {
  for (size_t i = 0; i < mp->graph->n_initializer; i++)
    if (!strcmp(mp->graph->initializer[i]->name, "stem.weight")) mp->graph->initializer[i]->raw_data.len -= 4;
}
static void edit_second_input(Onnx__ModelProto *mp) {
  Onnx__GraphProto *g = mp->graph;
  g->input = realloc(g->input, (g->n_input + 1) * sizeof *g->input);
  Onnx__ValueInfoProto *v = malloc(sizeof *v);
  onnx__value_info_proto__init(v);
  v->name = strdup("extra");
  g->input[g->n_input++] = v;
}

/* auto_pad as a string attribute without its string, which protobuf-c unpacks as length 0, data
 * NULL (the smoke fuzzer's find: copying it was a memcpy from NULL). */
static void edit_empty_auto_pad(Onnx__ModelProto *mp) {
  Onnx__NodeProto *n = mp->graph->node[0];
  n->attribute = realloc(n->attribute, (n->n_attribute + 1) * sizeof *n->attribute);
  Onnx__AttributeProto *a = malloc(sizeof *a);
  onnx__attribute_proto__init(a);
  a->name = strdup("auto_pad");
  a->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, a->has_type = 1;
  a->s.len = 0, a->s.data = NULL; /* no s field at all: unpacked as length 0, data NULL */
  n->attribute[n->n_attribute++] = a;
}

/* An empty auto_pad is NOTSET (the ONNX default): the model loads, with the pads it gives. */
Test(onnx, empty_string_attribute_loads) {
  size_t len;
  void *d = edited(edit_empty_auto_pad, &len);
  const char *path = write_tmp_file("onnx", "empty_auto_pad.onnx", d, len);
  cr_assert_not_null(path);
  pt_graph *g = NULL;
  cr_assert_eq(pt_onnx_load(path, &g), PT_OK, "%s", pt_last_error());
  cr_assert_not_null(g);
  pt_graph_free(g);
  unlink(path);
  free(d);
}

/* The fixture after edit() must be refused with want and a message containing needle. */
static void expect_edit_error(void (*edit)(Onnx__ModelProto *), pt_status want, const char *needle) {
  size_t len;
  void *d = edited(edit, &len);
  expect_error(d, len, want, needle);
  free(d);
}

Test(onnx, bad_input_is_a_clear_error) {
  size_t n;
  char *good = slurp(FIX "/tiny_cnn.onnx", &n);
  cr_assert_not_null(good);
  expect_error("", 0, PT_EFORMAT, "empty file");
  expect_error(good, n / 2, PT_EFORMAT, "not an ONNX model");
  char garbage[4096];
  for (size_t i = 0; i < sizeof garbage; i++) garbage[i] = (char)(i * 131 + 7);
  expect_error(garbage, sizeof garbage, PT_EFORMAT, "not an ONNX model");
  expect_edit_error(edit_optype, PT_EUNSUPPORTED, "node '/relu/Relu' (LeakyRelu): op type 'LeakyRelu' is not supported");
  expect_edit_error(edit_dilation, PT_EUNSUPPORTED, "node '/stem/Conv' (Conv): dilations [2,1]");
  expect_edit_error(edit_weight_shape, PT_EFORMAT, "tensor 'stem.weight' has");
  expect_edit_error(edit_truncate_raw, PT_EFORMAT, "tensor 'stem.weight' has 359 FLOAT values for 360 elements");
  expect_edit_error(edit_second_input, PT_EUNSUPPORTED, "2 data inputs");
  free(good);
  /* the CLI: exit status 1 and the message on stderr */
  const char *path = write_tmp_file("onnx", "trunc.onnx", garbage, 100);
  cr_assert_not_null(path);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' measure --model '%s' --data '%s' >/dev/null 2>'%s.err'", PT_CLI_PATH, path, DEMO, path);
  int st = system(cmd);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1, "exit %d", WEXITSTATUS(st));
  snprintf(cmd, sizeof cmd, "grep -q 'trunc.onnx: not an ONNX model' '%s.err'", path);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "'%s' measure --model '%s' --weights x.safetensors --data '%s' >/dev/null 2>'%s.err'",
           PT_CLI_PATH, DEMO "/lenet_mnist.onnx", DEMO, path);
  st = system(cmd);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
  snprintf(cmd, sizeof cmd, "grep -q 'carries its weights' '%s.err'", path);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "rm -f '%s' '%s.err'", path, path);
  cr_assert_eq(system(cmd), 0);
}
