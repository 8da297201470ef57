/* PyTorch checkpoints: torch.save's zip and legacy formats read in C against what torch wrote
 * (tests/fixtures/pth/make_pth_fixtures.py), the demo LeNet loaded from a checkpoint, and bad input. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/zip.h"
#include "naive.h"
#include "predtuner/predtuner.h"

#define FIX PT_SOURCE_DIR "/tests/fixtures/pth"
#define DEMO PT_SOURCE_DIR "/zoo/demo"

static void *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  cr_assert_not_null(f, "%s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *d = malloc((size_t)n + 1);
  cr_assert_eq(fread(d, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  *len = (size_t)n;
  return d;
}

/* Every float tensor of file equals expected.safetensors' "<stem>/<key>" exactly; returns how many. */
static int check_against_expected(const char *file, const char *stem) {
  pt_pth *p;
  cr_assert_eq(pt_pth_open(file, &p), PT_OK, "%s", pt_last_error());
  pt_safetensors *ex;
  cr_assert_eq(pt_st_open(FIX "/expected.safetensors", &ex), PT_OK, "%s", pt_last_error());
  int checked = 0;
  for (int i = 0; i < pt_pth_count(p); i++) {
    if (!pt_pth_is_float(p, i)) continue;
    char key[256];
    snprintf(key, sizeof key, "%s/%s", stem, pt_pth_name(p, i));
    int k = pt_st_find(ex, key);
    cr_assert_geq(k, 0, "%s: tensor '%s' not expected", file, pt_pth_name(p, i));
    int64_t a[PT_MAX_DIMS], b[PT_MAX_DIMS];
    int na = pt_pth_shape(p, i, a), nb = pt_st_shape(ex, k, b);
    cr_assert_eq(na, nb, "%s: rank", key);
    cr_assert_arr_eq(a, b, (size_t)na * sizeof *a, "%s: shape", key);
    int64_t n = pt_shape_numel(na, a);
    float *x = malloc((size_t)(n + 1) * 4), *y = malloc((size_t)(n + 1) * 4);
    cr_assert_eq(pt_pth_read_f32(p, i, x), PT_OK, "%s", pt_last_error());
    cr_assert_eq(pt_st_read_f32(ex, k, y), PT_OK);
    cr_assert_arr_eq(x, y, (size_t)n * 4, "%s: values differ", key);
    free(x), free(y);
    checked++;
  }
  pt_st_close(ex);
  pt_pth_close(p);
  return checked;
}

Test(pth, zip_state_dict_matches_torch) {
  cr_assert_eq(check_against_expected(FIX "/state_f32.pth", "state_f32"), 8);
  pt_pth *p;
  cr_assert_eq(pt_pth_open(FIX "/state_f32.pth", &p), PT_OK);
  cr_assert_eq(pt_pth_count(p), 9); /* 8 float tensors + num_batches_tracked */
  int k = pt_pth_find(p, "1.num_batches_tracked");
  cr_assert_geq(k, 0);
  cr_assert_str_eq(pt_pth_dtype(p, k), "I64");
  cr_assert_not(pt_pth_is_float(p, k));
  float f;
  cr_assert_eq(pt_pth_read_f32(p, k, &f), PT_EFORMAT);
  cr_assert_str_eq(pt_pth_name(p, 0), "0.weight"); /* state_dict order */
  pt_pth_close(p);
}

Test(pth, legacy_format_matches_torch) { cr_assert_eq(check_against_expected(FIX "/legacy.pth", "state_f32"), 8); }

Test(pth, checkpoint_dict_with_module_prefix_and_half_types) {
  /* the state_dict under "state_dict" of a checkpoint with an argparse.Namespace and an optimizer;
   * F16, BF16 and F64 converted; DataParallel's "module." dropped */
  cr_assert_eq(check_against_expected(FIX "/checkpoint.pth.tar", "checkpoint"), 4);
  pt_pth *p;
  cr_assert_eq(pt_pth_open(FIX "/checkpoint.pth.tar", &p), PT_OK);
  cr_assert_str_eq(pt_pth_dtype(p, pt_pth_find(p, "features.0.weight")), "F16");
  cr_assert_str_eq(pt_pth_dtype(p, pt_pth_find(p, "features.0.bias")), "BF16");
  cr_assert_str_eq(pt_pth_dtype(p, pt_pth_find(p, "classifier.weight")), "F64");
  pt_pth_close(p);
}

Test(pth, views_offsets_and_tied_weights) { cr_assert_eq(check_against_expected(FIX "/views.pth", "views"), 5); }

Test(pth, non_contiguous_is_rejected) {
  pt_pth *p = (pt_pth *)1;
  cr_assert_eq(pt_pth_open(FIX "/noncontig.pth", &p), PT_EUNSUPPORTED);
  cr_assert_null(p);
  cr_assert_not_null(strstr(pt_last_error(), "tensor 'w' is not contiguous (size [4,3], stride [1,4])"), "%s",
                     pt_last_error());
  cr_assert_not_null(strstr(pt_last_error(), "noncontig.pth"));
}

/* ---- the demo LeNet from a checkpoint: a torch-style zip written here from the demo weights ---- */

typedef struct buf {
  unsigned char *d;
  size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
  if (b->n + n > b->cap) {
    b->cap = 2 * (b->n + n);
    b->d = realloc(b->d, b->cap);
  }
  memcpy(b->d + b->n, p, n);
  b->n += n;
}
static void put1(buf *b, int v) {
  unsigned char c = (unsigned char)v;
  put(b, &c, 1);
}
static void put2(buf *b, int v) { put1(b, v & 255), put1(b, v >> 8); }
static void put4(buf *b, uint32_t v) { put2(b, (int)(v & 0xFFFF)), put2(b, (int)(v >> 16)); }
static void pstr(buf *b, const char *s) { /* BINUNICODE */
  put1(b, 'X'), put4(b, (uint32_t)strlen(s)), put(b, s, strlen(s));
}
static void pint(buf *b, int64_t v) { put1(b, 'J'), put4(b, (uint32_t)v); }

/* data.pkl as torch writes a state_dict: OrderedDict of _rebuild_tensor_v2(HalfStorage ...). */
static void pickle_state_dict(buf *b, const pt_graph *g) {
  put1(b, 0x80), put1(b, 2);
  put(b, "ccollections\nOrderedDict\n", 25);
  put1(b, ')'), put1(b, 'R'), put1(b, '(');
  for (int i = 0; i < pt_graph_num_tensors(g); i++) {
    int64_t sh[4];
    int nd = pt_graph_tensor_shape(g, i, sh);
    pstr(b, pt_graph_tensor_name(g, i));
    put(b, "ctorch._utils\n_rebuild_tensor_v2\n", 33);
    put1(b, '(');
    put1(b, '(');
    pstr(b, "storage");
    put(b, "ctorch\nHalfStorage\n", 19);
    char key[16];
    snprintf(key, sizeof key, "%d", i);
    pstr(b, key);
    pstr(b, "cpu");
    pint(b, pt_shape_numel(nd, sh));
    put1(b, 't'), put1(b, 'Q');
    pint(b, 0);
    put1(b, '(');
    for (int d = 0; d < nd; d++) pint(b, sh[d]);
    put1(b, 't'), put1(b, '(');
    int64_t st = 1;
    int64_t strides[4];
    for (int d = nd - 1; d >= 0; d--) strides[d] = st, st *= sh[d];
    for (int d = 0; d < nd; d++) pint(b, strides[d]);
    put1(b, 't'), put1(b, 0x89), put(b, "ccollections\nOrderedDict\n", 25), put1(b, ')'), put1(b, 'R');
    put1(b, 't'), put1(b, 'R');
  }
  put1(b, 'u'), put1(b, '.');
}

static void zip_entry(buf *z, buf *cd, const char *name, const void *data, uint32_t n, int *count) {
  uint32_t crc = pt__crc32(data, n), off = (uint32_t)z->n;
  put4(z, 0x04034b50), put2(z, 20), put2(z, 0), put2(z, 0), put2(z, 0), put2(z, 0), put4(z, crc), put4(z, n),
      put4(z, n), put2(z, (int)strlen(name)), put2(z, 0), put(z, name, strlen(name)), put(z, data, n);
  put4(cd, 0x02014b50), put2(cd, 20), put2(cd, 20), put2(cd, 0), put2(cd, 0), put2(cd, 0), put2(cd, 0), put4(cd, crc),
      put4(cd, n), put4(cd, n), put2(cd, (int)strlen(name)), put2(cd, 0), put2(cd, 0), put2(cd, 0), put2(cd, 0),
      put4(cd, 0), put4(cd, off), put(cd, name, strlen(name));
  (*count)++;
}

/* The demo weights (F16 values) as archive/data.pkl + archive/data/<i>; skip names an entry to leave out. */
static buf lenet_zip(const char *skip) {
  pt_graph *g;
  cr_assert_eq(pt_zoo_build("lenet_mnist", &g), PT_OK);
  pt_safetensors *st;
  cr_assert_eq(pt_st_open(DEMO "/lenet_mnist.safetensors", &st), PT_OK);
  buf z = {0}, cd = {0}, pk = {0};
  int count = 0;
  pickle_state_dict(&pk, g);
  if (!skip || strcmp(skip, "lenet/data.pkl")) zip_entry(&z, &cd, "lenet/data.pkl", pk.d, (uint32_t)pk.n, &count);
  for (int i = 0; i < pt_graph_num_tensors(g); i++) {
    int k = pt_st_find(st, pt_graph_tensor_name(g, i));
    int64_t sh[PT_MAX_DIMS];
    int64_t n = pt_shape_numel(pt_st_shape(st, k, sh), sh);
    float *f = malloc((size_t)n * 4);
    uint16_t *h = malloc((size_t)n * 2);
    cr_assert_eq(pt_st_read_f32(st, k, f), PT_OK);
    for (int64_t j = 0; j < n; j++) h[j] = pt_f32_to_f16(f[j]);
    char name[64];
    snprintf(name, sizeof name, "lenet/data/%d", i);
    if (!skip || strcmp(skip, name)) zip_entry(&z, &cd, name, h, (uint32_t)(n * 2), &count);
    free(f), free(h);
  }
  zip_entry(&z, &cd, "lenet/version", "3\n", 2, &count);
  uint32_t cd_off = (uint32_t)z.n;
  put(&z, cd.d, cd.n);
  put4(&z, 0x06054b50), put2(&z, 0), put2(&z, 0), put2(&z, count), put2(&z, count), put4(&z, (uint32_t)cd.n),
      put4(&z, cd_off), put2(&z, 0);
  free(cd.d), free(pk.d);
  pt_st_close(st);
  pt_graph_free(g);
  return z;
}

Test(pth, demo_lenet_from_a_checkpoint_measures_like_safetensors) {
  buf z = lenet_zip(NULL);
  const char *path = write_tmp_file("pth", "lenet.pth", z.d, z.n);
  cr_assert_not_null(path);
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' measure --model lenet_mnist --weights '%s' --data '%s' --backend cpu > '%s.out' 2>&1",
           PT_CLI_PATH, path, DEMO, path);
  cr_assert_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "grep -q 'accuracy   96.70 %%' '%s.out'", path);
  cr_assert_eq(system(cmd), 0, "accuracy differs from the safetensors run (96.70 %%)");
  snprintf(cmd, sizeof cmd, "rm -f '%s' '%s.out'", path, path);
  cr_assert_eq(system(cmd), 0);
  free(z.d);
}

/* ---- bad input ---- */

static void expect_error(const void *d, size_t n, pt_status want, const char *needle) {
  pt_pth *p = (pt_pth *)1;
  pt_status s = pt_pth_open_buffer(d, n, "bad.pth", &p);
  cr_expect_eq(s, want, "status %s, want %s: %s", pt_status_name(s), pt_status_name(want), pt_last_error());
  cr_expect_null(p);
  cr_expect_not_null(strstr(pt_last_error(), "bad.pth: "), "%s", pt_last_error());
  cr_expect_not_null(strstr(pt_last_error(), needle), "'%s' not in: %s", needle, pt_last_error());
  cr_expect_null(strchr(pt_last_error(), '\n'));
}

Test(pth, bad_input_is_a_clear_error) {
  size_t n;
  unsigned char *good = slurp(FIX "/state_f32.pth", &n);
  expect_error(good, 0, PT_EFORMAT, "not a PyTorch checkpoint");
  expect_error("{\"a\":1}", 7, PT_EFORMAT, "not a PyTorch checkpoint");
  /* truncated: the central directory is gone */
  expect_error(good, n - 30, PT_EFORMAT, "zip");
  expect_error(good, n / 2, PT_EFORMAT, "zip");
  /* a file shorter than a zip64 record whose locator points at its last bytes (found by fuzzing:
   * the bound check wrapped and the signature read ran past the buffer) */
  unsigned char z64[50] = {'P', 'K', 3, 4};
  memcpy(z64 + 8, "PK\x06\x07", 4), z64[16] = 48; /* locator at eocd - 20, record offset 48 */
  memcpy(z64 + 28, "PK\x05\x06", 4), memset(z64 + 40, 0xFF, 4); /* eocd: cd_size saturated */
  expect_error(z64, sizeof z64, PT_EFORMAT, "bad zip64 end of central directory");
  /* a flipped byte inside a stored entry: CRC */
  unsigned char *bad = malloc(n);
  memcpy(bad, good, n);
  pt__zip *zz;
  cr_assert_eq(pt__zip_open(good, n, "x", &zz), PT_OK);
  int e = pt__zip_find(zz, "state_f32/data/0");
  cr_assert_geq(e, 0);
  bad[zz->e[e].offset + 5] ^= 0x40;
  pt__zip_close(zz);
  expect_error(bad, n, PT_EFORMAT, "CRC-32");
  free(bad);
  /* a zip with a missing storage entry, and one without data.pkl */
  buf z = lenet_zip("lenet/data/3");
  expect_error(z.d, z.n, PT_EFORMAT, "storage '3' is missing from the archive (no entry lenet/data/3)");
  free(z.d);
  z = lenet_zip("lenet/data.pkl");
  expect_error(z.d, z.n, PT_EFORMAT, "without <name>/data.pkl");
  free(z.d);
  /* pickles: an unknown opcode, a truncated program, a bad memo reference */
  expect_error("\x80\x02}q\x00\xff.", 7, PT_EFORMAT, "unknown or unsupported opcode 0xff");
  expect_error("\x80\x02}q\x00(X\x05\x00\x00\x00ab", 14, PT_EFORMAT, "runs past the end");
  expect_error("\x80\x02h\x07.", 5, PT_EFORMAT, "memo index 7 was never set");
  /* legacy files that are not torch's */
  expect_error("\x80\x02K\x05.", 5, PT_EFORMAT, "no torch.save magic number");
  /* a pickled dict without tensors */
  size_t ln;
  unsigned char *leg = slurp(FIX "/legacy.pth", &ln);
  expect_error(leg, 60, PT_EFORMAT, "pickle");
  free(leg);
  free(good);
  /* the weights loader names the key and both shapes, through the CLI */
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "'%s' measure --model lenet_mnist --weights '%s' --data '%s' >/dev/null 2>/tmp/pt_pth_%d.err",
           PT_CLI_PATH, FIX "/state_f32.pth", DEMO, (int)getpid());
  int st = system(cmd);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
  snprintf(cmd, sizeof cmd, "grep -q \"state_f32.pth: missing tensor 'convs.0.weight'\" /tmp/pt_pth_%d.err && rm -f /tmp/pt_pth_%d.err",
           (int)getpid(), (int)getpid());
  cr_assert_eq(system(cmd), 0);
}
