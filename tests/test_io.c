/* Loaders: round trips, and every kind of bad input giving an error that names the file and the
 * problem (never a crash). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph/graph_internal.h"
#include "naive.h"
#include "predtuner/predtuner.h"

static char dir[64];
static void mkdir_tmp(void) {
  strcpy(dir, "/tmp/pt_io_XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
}
static void rm_tmp(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert_eq(system(cmd), 0);
}
TestSuite(io, .init = mkdir_tmp, .fini = rm_tmp);

static const char *tmp(const char *name) {
  static char p[8][256];
  static int k;
  k = (k + 1) % 8;
  snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
  return p[k];
}

/* A safetensors file from a header string and raw data bytes. */
static const char *make_st(const char *name, const char *json, const void *data, size_t len) {
  size_t jl = strlen(json);
  unsigned char *buf = malloc(8 + jl + len);
  for (int k = 0; k < 8; k++) buf[k] = (unsigned char)((uint64_t)jl >> (8 * k));
  memcpy(buf + 8, json, jl);
  if (len) memcpy(buf + 8 + jl, data, len);
  const char *p = tmp(name);
  cr_assert_eq(write_all(p, buf, 8 + jl + len), 0);
  free(buf);
  return p;
}

static void expect_st_error(const char *path, pt_status want, const char *needle) {
  pt_safetensors *st = (pt_safetensors *)1;
  pt_status s = pt_st_open(path, &st);
  cr_assert_eq(s, want, "%s: got %s (%s)", path, pt_status_name(s), pt_last_error());
  cr_assert_null(st);
  cr_assert_not_null(strstr(pt_last_error(), path), "error does not name the file: %s", pt_last_error());
  cr_assert_not_null(strstr(pt_last_error(), needle), "error '%s' lacks '%s'", pt_last_error(), needle);
  cr_assert_null(strchr(pt_last_error(), '\n'), "error is not one line");
}

Test(io, safetensors_round_trip_f32_f16_and_metadata) {
  pt_st_writer *w;
  cr_assert_eq(pt_st_writer_new(&w), PT_OK);
  pt_tensor a, h;
  int64_t sa[2] = {3, 5}, sh[1] = {7};
  pt_tensor_alloc(&a, PT_F32, 2, sa);
  pt_tensor_alloc(&h, PT_F16, 1, sh);
  for (int i = 0; i < 15; i++) ((float *)a.data)[i] = (float)i / 3.0f - 2.0f;
  for (int i = 0; i < 7; i++) ((uint16_t *)h.data)[i] = pt_f32_to_f16((float)i * 0.25f);
  cr_assert_eq(pt_st_writer_add(w, "layer.weight", &a), PT_OK);
  cr_assert_eq(pt_st_writer_add(w, "layer.bias", &h), PT_OK);
  cr_assert_eq(pt_st_writer_add(w, "layer.bias", &h), PT_EEXIST);
  cr_assert_eq(pt_st_writer_metadata(w, "model", "demo"), PT_OK);
  cr_assert_eq(pt_st_writer_save(w, tmp("rt.safetensors")), PT_OK);
  pt_st_writer_free(w);

  pt_safetensors *st;
  cr_assert_eq(pt_st_open(tmp("rt.safetensors"), &st), PT_OK, "%s", pt_last_error());
  cr_assert_eq(pt_st_count(st), 2);
  cr_assert_str_eq(pt_st_metadata(st, "model"), "demo");
  cr_assert_null(pt_st_metadata(st, "other"));
  int i = pt_st_find(st, "layer.weight"), j = pt_st_find(st, "layer.bias");
  cr_assert(i >= 0 && j >= 0 && pt_st_find(st, "nope") < 0);
  cr_assert_str_eq(pt_st_dtype(st, i), "F32");
  cr_assert_str_eq(pt_st_dtype(st, j), "F16");
  int64_t shape[PT_MAX_DIMS];
  cr_assert_eq(pt_st_shape(st, i, shape), 2);
  cr_assert(shape[0] == 3 && shape[1] == 5);
  float out[15];
  cr_assert_eq(pt_st_read_f32(st, i, out), PT_OK);
  cr_assert_eq(memcmp(out, a.data, sizeof out), 0);
  cr_assert_eq(pt_st_read_f32(st, j, out), PT_OK);
  for (int k = 0; k < 7; k++) cr_assert_float_eq(out[k], k * 0.25f, 0.0f);
  pt_st_close(st);
  pt_tensor_free(&a);
  pt_tensor_free(&h);
  /* the temp file is gone after the rename */
  cr_assert_neq(access(tmp("rt.safetensors.tmp"), F_OK), 0);
}

Test(io, safetensors_bf16_and_header_padding) {
  uint16_t bf[3] = {0x3f80, 0xc000, 0x4049}; /* 1, -2, 3.140625 */
  const char *p = make_st("bf.safetensors",
                          "{\"x\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]},"
                          "\"__metadata__\":{\"format\":\"pt\"}}   ",
                          bf, sizeof bf);
  pt_safetensors *st;
  cr_assert_eq(pt_st_open(p, &st), PT_OK, "%s", pt_last_error());
  float out[3];
  cr_assert_eq(pt_st_read_f32(st, 0, out), PT_OK);
  cr_assert(out[0] == 1.0f && out[1] == -2.0f && out[2] == 3.140625f);
  pt_st_close(st);
}

Test(io, safetensors_bad_input_is_a_named_error) {
  float d[4] = {1, 2, 3, 4};
  cr_assert_eq(write_all(tmp("short.safetensors"), "abcde", 5), 0);
  expect_st_error(tmp("short.safetensors"), PT_EFORMAT, "truncated");
  unsigned char past[20] = {0xe8, 0x03}; /* header length 1000 in a 20-byte file */
  cr_assert_eq(write_all(tmp("past.safetensors"), past, sizeof past), 0);
  expect_st_error(tmp("past.safetensors"), PT_EFORMAT, "past the end");
  expect_st_error(make_st("json.safetensors", "{\"x\": [1, 2", NULL, 0), PT_EFORMAT, "not valid JSON");
  expect_st_error(make_st("arr.safetensors", "[1, 2]", NULL, 0), PT_EFORMAT, "not a JSON object");
  expect_st_error(make_st("dtype.safetensors", "{\"x\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4),
                  PT_EFORMAT, "unknown dtype \"F17\"");
  expect_st_error(make_st("range.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 8),
                  PT_EFORMAT, "out of range");
  expect_st_error(make_st("overlap.safetensors",
                          "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                          "\"y\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                          d, 16),
                  PT_EFORMAT, "overlap");
  expect_st_error(make_st("size.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", d, 16),
                  PT_EFORMAT, "need 12");
  expect_st_error(make_st("rev.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", d, 16),
                  PT_EFORMAT, "reversed");
  expect_st_error(make_st("neg.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", d, 16),
                  PT_EFORMAT, "shape entry 0");
  expect_st_error(make_st("dup.safetensors",
                          "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                          d, 8),
                  PT_EFORMAT, "appears twice");
  expect_st_error(make_st("nooff.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", d, 4), PT_EFORMAT,
                  "data_offsets");
  expect_st_error(make_st("meta.safetensors", "{\"__metadata__\":{\"a\":1}}", NULL, 0), PT_EFORMAT, "__metadata__");
  expect_st_error(tmp("missing.safetensors"), PT_ENOTFOUND, "cannot open");
  /* garbage bytes never crash */
  pt_rng r;
  pt_rng_seed(&r, 11);
  for (int trial = 0; trial < 200; trial++) {
    unsigned char g[64];
    for (size_t k = 0; k < sizeof g; k++) g[k] = (unsigned char)pt_rng_below(&r, 256);
    size_t hl = pt_rng_below(&r, 56);
    for (int k = 0; k < 8; k++) g[k] = (unsigned char)(k == 0 ? hl : 0);
    cr_assert_eq(write_all(tmp("garbage.safetensors"), g, sizeof g), 0);
    pt_safetensors *st = NULL;
    if (pt_st_open(tmp("garbage.safetensors"), &st) == PT_OK) pt_st_close(st);
  }
}

/* conv(1->2, 3x3) + BatchNorm + flatten + linear: a graph with every kind of weight. */
static pt_graph *small_graph(void) {
  pt_graph *g = pt__graph_new("small", 1, 4, 4, 3);
  int x = pt__g_conv(g, "convs.0", -1, 1, 2, 3, 1, 1, 1, 1);
  x = pt__g_bn(g, "convs.1", x, 2, 1e-5f);
  x = pt__g_flatten(g, x);
  pt__g_linear(g, "linears.0", x, 32, 3);
  cr_assert_eq(pt__graph_finish(g), PT_OK);
  return g;
}

static void expect_weights_error(pt_graph *g, const char *path, const char *needle) {
  pt_status s = pt_weights_load(g, path);
  cr_assert_neq(s, PT_OK, "%s loaded", path);
  cr_assert_not_null(strstr(pt_last_error(), path), "%s", pt_last_error());
  cr_assert_not_null(strstr(pt_last_error(), needle), "error '%s' lacks '%s'", pt_last_error(), needle);
}

/* Writes g's tensors as a file, with `skip` left out, `extra` added, `bad_shape` given shape [2]. */
static const char *write_variant(pt_graph *g, const char *name, const char *skip, const char *extra,
                                 const char *bad_shape) {
  pt_st_writer *w;
  pt_st_writer_new(&w);
  for (int i = 0; i < g->n_params; i++) {
    pt_param *p = &g->params[i];
    if (skip && !strcmp(p->name, skip)) continue;
    pt_tensor t = {PT_F32, p->ndim, {0}, p->data, 0};
    memcpy(t.shape, p->shape, sizeof p->shape);
    if (bad_shape && !strcmp(p->name, bad_shape)) {
      t.ndim = 1;
      t.shape[0] = 2;
    }
    cr_assert_eq(pt_st_writer_add(w, p->name, &t), PT_OK);
  }
  float v[2] = {0};
  pt_tensor e = {PT_F32, 1, {2}, v, 0};
  if (extra) pt_st_writer_add(w, extra, &e);
  cr_assert_eq(pt_st_writer_save(w, tmp(name)), PT_OK);
  pt_st_writer_free(w);
  return tmp(name);
}

Test(io, weights_bind_to_state_dict_keys) {
  pt_graph *g = small_graph();
  pt_graph_init_random(g, 5);
  cr_assert_eq(pt_weights_save(g, tmp("w32.safetensors"), 0), PT_OK);
  cr_assert_eq(pt_weights_save(g, tmp("w16.safetensors"), 1), PT_OK);
  pt_graph *g2 = small_graph();
  cr_assert_eq(pt_weights_load(g2, tmp("w32.safetensors")), PT_OK, "%s", pt_last_error());
  for (int i = 0; i < g->n_params; i++)
    cr_assert_eq(memcmp(g->params[i].data, g2->params[i].data, pt_shape_numel(g->params[i].ndim, g->params[i].shape) * 4),
                 0);
  cr_assert_eq(pt_weights_load(g2, tmp("w16.safetensors")), PT_OK);
  for (int i = 0; i < g->n_params; i++)
    for (int64_t k = 0; k < pt_shape_numel(g->params[i].ndim, g->params[i].shape); k++)
      cr_assert_eq(g2->params[i].data[k], pt_round_f16(g->params[i].data[k]));
  pt_graph_free(g2);

  pt_graph *g3 = small_graph();
  expect_weights_error(g3, write_variant(g, "miss.safetensors", "convs.1.running_var", NULL, NULL),
                       "missing tensor 'convs.1.running_var' (model small expects shape [2])");
  expect_weights_error(g3, write_variant(g, "extra.safetensors", NULL, "convs.9.weight", NULL),
                       "unexpected tensor 'convs.9.weight'");
  expect_weights_error(g3, write_variant(g, "shape.safetensors", NULL, NULL, "convs.0.weight"),
                       "tensor 'convs.0.weight': expected shape [2,1,3,3], found [2]");
  pt_graph_free(g3);
  pt_graph_free(g);
}

Test(io, weights_int_dtype_and_bookkeeping) {
  /* lenet-free tiny graph: linear 2 -> 3 only */
  pt_graph *g = pt__graph_new("tiny", 2, 1, 1, 3);
  int x = pt__g_flatten(g, -1);
  pt__g_linear(g, "linears.0", x, 2, 3);
  cr_assert_eq(pt__graph_finish(g), PT_OK);
  float data[9 + 4] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0};
  const char *good = make_st("tiny.safetensors",
                             "{\"linears.0.weight\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
                             "\"linears.0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]},"
                             "\"linears.0.num_batches_tracked\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[36,44]}}",
                             data, sizeof data - 8);
  cr_assert_eq(pt_weights_load(g, good), PT_OK, "%s", pt_last_error());
  cr_assert_eq(g->params[1].data[2], 9.0f);
  const char *bad = make_st("tinyint.safetensors",
                            "{\"linears.0.weight\":{\"dtype\":\"I32\",\"shape\":[3,2],\"data_offsets\":[0,24]},"
                            "\"linears.0.bias\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}",
                            data, 36);
  expect_weights_error(g, bad, "dtype I32");
  pt_graph_free(g);
}

static void write_dataset(const char *split, int n_img, int n_lab, int extra_bytes, int bad_label) {
  char p[256];
  int per = 1 * 2 * 3;
  float *img = malloc((size_t)(n_img * per) * 4 + (size_t)extra_bytes);
  for (int i = 0; i < n_img * per; i++) img[i] = (float)i;
  snprintf(p, sizeof p, "%s/%s_input.bin", dir, split);
  cr_assert_eq(write_all(p, img, (size_t)(n_img * per) * 4 + (size_t)extra_bytes), 0);
  int32_t *lab = malloc((size_t)n_lab * 4 + 4);
  for (int i = 0; i < n_lab; i++) lab[i] = i % 4;
  if (bad_label) lab[n_lab - 1] = bad_label;
  snprintf(p, sizeof p, "%s/%s_labels.bin", dir, split);
  cr_assert_eq(write_all(p, lab, (size_t)n_lab * 4), 0);
  free(img);
  free(lab);
}

static void expect_ds_error(const char *split, int64_t off, int64_t cnt, pt_status want, const char *needle) {
  pt_dataset *ds = (pt_dataset *)1;
  pt_status s = pt_dataset_open(dir, split, 1, 2, 3, 4, off, cnt, &ds);
  cr_assert_eq(s, want, "%s: %s", split, pt_last_error());
  cr_assert_null(ds);
  cr_assert_not_null(strstr(pt_last_error(), dir), "%s", pt_last_error());
  cr_assert_not_null(strstr(pt_last_error(), needle), "error '%s' lacks '%s'", pt_last_error(), needle);
}

Test(io, dataset_round_trip_offset_count) {
  write_dataset("tune", 10, 10, 0, 0);
  pt_dataset *ds;
  cr_assert_eq(pt_dataset_open(dir, "tune", 1, 2, 3, 4, 0, -1, &ds), PT_OK, "%s", pt_last_error());
  cr_assert_eq(ds->n, 10);
  cr_assert_eq(ds->images[59], 59.0f);
  cr_assert_eq(ds->labels[7], 3);
  pt_dataset_close(ds);
  cr_assert_eq(pt_dataset_open(dir, "tune", 1, 2, 3, 4, 3, 4, &ds), PT_OK);
  cr_assert_eq(ds->n, 4);
  cr_assert_eq(ds->images[0], 18.0f);
  cr_assert_eq(ds->labels[0], 3);
  pt_dataset_close(ds);
}

Test(io, dataset_bad_input_is_a_named_error) {
  write_dataset("a", 10, 10, 5, 0);
  expect_ds_error("a", 0, -1, PT_EFORMAT, "not a whole number of 1x2x3 float32 images");
  write_dataset("b", 10, 9, 0, 0);
  expect_ds_error("b", 0, -1, PT_EFORMAT, "9 labels for 10 images");
  write_dataset("c", 10, 10, 0, 7);
  expect_ds_error("c", 0, -1, PT_ERANGE, "label 7 of image 9 is outside [0, 4)");
  write_dataset("d", 10, 10, 0, -2);
  expect_ds_error("d", 0, -1, PT_ERANGE, "label -2");
  write_dataset("e", 10, 10, 0, 0);
  expect_ds_error("e", 8, 5, PT_ERANGE, "do not fit in 10 images");
  expect_ds_error("e", 10, -1, PT_ERANGE, "offset 10 does not fit in 10 images");
  expect_ds_error("nothere", 0, -1, PT_ENOTFOUND, "nothere_input.bin");
  write_dataset("f", 0, 0, 0, 0);
  expect_ds_error("f", 0, -1, PT_EFORMAT, "empty");
  char lp[256];
  write_dataset("g", 4, 4, 0, 0);
  snprintf(lp, sizeof lp, "%s/g_labels.bin", dir);
  cr_assert_eq(write_all(lp, "abcdefg", 7), 0);
  expect_ds_error("g", 0, -1, PT_EFORMAT, "not a whole number of int32 labels");
}

Test(io, atomic_write_replaces_and_reports_errors) {
  const char *p = tmp("out.bin");
  cr_assert_eq(pt_write_file_atomic(p, "first", 5), PT_OK);
  cr_assert_eq(pt_write_file_atomic(p, "second", 6), PT_OK);
  size_t n;
  char *d = read_all(p, &n);
  cr_assert(n == 6 && !memcmp(d, "second", 6));
  free(d);
  cr_assert_eq(pt_write_file_atomic("/nonexistent-dir/out.bin", "x", 1), PT_EIO);
  cr_assert_not_null(strstr(pt_last_error(), "/nonexistent-dir/out.bin"));
}
