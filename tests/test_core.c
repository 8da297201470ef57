#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "dist/dist_internal.h"
#include "naive.h"
#include "predtuner/predtuner.h"

Test(status, names_and_messages_come_from_one_table) {
  cr_assert_str_eq(pt_status_name(PT_OK), "PT_OK");
  cr_assert_str_eq(pt_status_name(PT_EFORMAT), "PT_EFORMAT");
  cr_assert_str_eq(pt_status_str(PT_ENOMEM), "out of memory");
  cr_assert_str_eq(pt_status_name((pt_status)-999), "PT_UNKNOWN");
  cr_assert_str_eq(pt_status_str((pt_status)42), "unknown status");
#define CHECK(name, value, msg)                       \
  cr_assert_eq((int)PT_##name, value);                \
  cr_assert_str_eq(pt_status_name(PT_##name), "PT_" #name); \
  cr_assert_str_eq(pt_status_str(PT_##name), msg);
  PT_STATUS_MAP(CHECK)
#undef CHECK
}

Test(status, detail_message_is_per_call_and_prefixable) {
  pt_clear_error();
  cr_assert_str_eq(pt_last_error(), "");
  pt_status s = pt__error(PT_ESHAPE, "w.safetensors: tensor '%s': bad", "a.b");
  cr_assert_eq(s, PT_ESHAPE);
  cr_assert_str_eq(pt_last_error(), "w.safetensors: tensor 'a.b': bad");
  pt__error_prefix("op '%s'", "convs.0");
  cr_assert_str_eq(pt_last_error(), "op 'convs.0': w.safetensors: tensor 'a.b': bad");
}

static float bits_f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

Test(fp16, known_values_and_rounding_ties) {
  cr_assert_eq(pt_f32_to_f16(0.0f), 0x0000);
  cr_assert_eq(pt_f32_to_f16(-0.0f), 0x8000);
  cr_assert_eq(pt_f32_to_f16(1.0f), 0x3c00);
  cr_assert_eq(pt_f32_to_f16(-2.0f), 0xc000);
  cr_assert_eq(pt_f32_to_f16(65504.0f), 0x7bff);        /* largest finite */
  cr_assert_eq(pt_f32_to_f16(65519.0f), 0x7bff);        /* rounds down */
  cr_assert_eq(pt_f32_to_f16(65520.0f), 0x7c00);        /* rounds to inf */
  cr_assert_eq(pt_f32_to_f16(INFINITY), 0x7c00);
  cr_assert_eq(pt_f32_to_f16(0x1p-24f), 0x0001);        /* smallest subnormal */
  cr_assert_eq(pt_f32_to_f16(0x1p-25f), 0x0000);        /* tie -> even (zero) */
  cr_assert_eq(pt_f32_to_f16(0x1.8p-24f), 0x0002);      /* 1.5 ulp tie -> even (2) */
  cr_assert_eq(pt_f32_to_f16(0x1.002p0f), 0x3c00);      /* 1 + 2^-11: tie -> even (1.0) */
  cr_assert_eq(pt_f32_to_f16(0x1.006p0f), 0x3c02);      /* 1 + 3*2^-11: tie -> even (1 + 2^-9) */
  cr_assert_eq(pt_f32_to_f16(0x1p-14f), 0x0400);        /* smallest normal */
  uint16_t nan = pt_f32_to_f16(NAN);
  cr_assert((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff));
  cr_assert_float_eq(pt_f16_to_f32(0x3555), 0.333251953125f, 0.0f);
  cr_assert_float_eq(pt_f16_to_f32(0x0001), 0x1p-24f, 0.0f);
  cr_assert(isinf(pt_f16_to_f32(0xfc00)) && pt_f16_to_f32(0xfc00) < 0);
  cr_assert_float_eq(pt_bf16_to_f32(0x3f80), 1.0f, 0.0f);
  cr_assert_float_eq(pt_round_f16(0.1f), 0.0999755859375f, 0.0f);
}

Test(fp16, every_half_value_round_trips) {
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = pt_f16_to_f32((uint16_t)h);
    if (isnan(f)) continue;
    cr_assert_eq(pt_f32_to_f16(f), h, "half 0x%04x -> %g -> 0x%04x", h, f, pt_f32_to_f16(f));
  }
}

#ifdef __FLT16_MANT_DIG__
Test(fp16, bit_twiddling_matches_compiler_Float16) {
  /* A sweep over float bit patterns (every 97th, plus neighbours of every half-way point). */
  for (uint64_t u = 0; u <= 0xffffffffull; u += 97) {
    float f = bits_f((uint32_t)u);
    if (isnan(f)) continue;
    _Float16 h = (_Float16)f;
    uint16_t hb;
    memcpy(&hb, &h, 2);
    cr_assert_eq(pt_f32_to_f16(f), hb, "float 0x%08x", (unsigned)u);
  }
  for (uint32_t h = 0; h < 0x7c00; h++) { /* midpoints between consecutive positive halves */
    float lo = pt_f16_to_f32((uint16_t)h), hi = pt_f16_to_f32((uint16_t)(h + 1));
    float mid = (float)(((double)lo + hi) / 2);
    for (int d = -1; d <= 1; d++) {
      uint32_t mb;
      memcpy(&mb, &mid, 4);
      float f = bits_f(mb + (uint32_t)d);
      _Float16 c = (_Float16)f;
      uint16_t cb;
      memcpy(&cb, &c, 2);
      cr_assert_eq(pt_f32_to_f16(f), cb, "near midpoint of 0x%04x", h);
    }
  }
}
#endif

Test(fp16, array_rounding_equals_scalar_rounding) {
  /* the array path may use F16C; it must give the same bits as the scalar definition */
  enum { N = 1 << 16 };
  static float a[N + 5];
  for (uint32_t i = 0; i < N + 5; i++) a[i] = bits_f(0x33000000u + i * 0x9e37u); /* 2^-25 .. beyond 65504 */
  static float b[N + 5];
  memcpy(b, a, sizeof a);
  pt_round_f16_array(a, N + 5);
  for (uint32_t i = 0; i < N + 5; i++) {
    float want = pt_f16_to_f32(pt_f32_to_f16(b[i]));
    cr_assert(a[i] == want || (isnan(a[i]) && isnan(want)), "%a -> %a, want %a", b[i], a[i], want);
  }
}

Test(tensor, alloc_convert_and_shape_string) {
  pt_tensor t, h, back;
  int64_t shape[4] = {2, 3, 4, 5};
  cr_assert_eq(pt_tensor_alloc(&t, PT_F32, 4, shape), PT_OK);
  cr_assert_eq(pt_tensor_numel(&t), 120);
  float *d = t.data;
  for (int i = 0; i < 120; i++) d[i] = (float)i * 0.1f - 3.0f;
  cr_assert_eq(pt_tensor_convert(&t, PT_F16, &h), PT_OK);
  cr_assert_eq(h.dtype, PT_F16);
  cr_assert_eq(pt_tensor_convert(&h, PT_F32, &back), PT_OK);
  for (int i = 0; i < 120; i++) cr_assert_float_eq(((float *)back.data)[i], pt_round_f16(d[i]), 0.0f);
  char buf[32];
  cr_assert_str_eq(pt_shape_str(buf, sizeof buf, 4, shape), "[2,3,4,5]");
  cr_assert_str_eq(pt_shape_str(buf, sizeof buf, 0, shape), "[]");
  int64_t bad[1] = {-1};
  pt_tensor u;
  cr_assert_eq(pt_tensor_alloc(&u, PT_F32, 1, bad), PT_EINVAL);
  pt_tensor_free(&t);
  pt_tensor_free(&h);
  pt_tensor_free(&back);
}

Test(rng, same_seed_same_sequence) {
  pt_rng a, b, c;
  pt_rng_seed(&a, 7);
  pt_rng_seed(&b, 7);
  pt_rng_seed(&c, 8);
  int differs = 0;
  for (int i = 0; i < 1000; i++) {
    uint64_t x = pt_rng_next(&a);
    cr_assert_eq(x, pt_rng_next(&b));
    differs |= x != pt_rng_next(&c);
    double u = pt_rng_uniform(&a);
    pt_rng_uniform(&b);
    cr_assert(u >= 0.0 && u < 1.0);
  }
  cr_assert(differs);
}

Test(log, file_lines_have_timestamps_and_levels) {
  char path[] = "/tmp/pt_log_XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  cr_assert_eq(pt_log_open(path), PT_OK);
  pt_log(PT_LOG_INFO, "hello %d", 42);
  pt_log(PT_LOG_ERROR, "bad thing");
  pt_log_close();
  size_t n;
  char *txt = read_all(path, &n);
  cr_assert_not_null(txt);
  txt[n] = '\0';
  int y, mo, d, h, mi, s, ms;
  char lvl[8], msg[32];
  cr_assert_eq(sscanf(txt, "%d-%d-%d %d:%d:%d.%d %7s %31[^\n]", &y, &mo, &d, &h, &mi, &s, &ms, lvl, msg), 9);
  cr_assert(y >= 2024);
  cr_assert_str_eq(lvl, "INFO");
  cr_assert_str_eq(msg, "hello 42");
  cr_assert_not_null(strstr(txt, "ERROR bad thing"));
  free(txt);
  unlink(path);
  cr_assert_eq(pt_log_open("/nonexistent-dir/x.log"), PT_EIO);
  cr_assert_not_null(strstr(pt_last_error(), "/nonexistent-dir/x.log"));
}

Test(progress, plain_lines_when_not_a_terminal) {
  FILE *f = tmpfile();
  pt_progress p;
  pt_progress_begin(&p, f, "work", 10);
  cr_assert_eq(p.tty, 0);
  p.period = 0.0; /* every update prints */
  pt_progress_update(&p, 3);
  pt_progress_update(&p, 10);
  pt_progress_end(&p);
  rewind(f);
  char line[256];
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_assert(strstr(line, "work: 3/10 (30%)") == line, "got %s", line);
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_assert_not_null(strstr(line, "10/10 (100%)"));
  cr_assert_not_null(fgets(line, sizeof line, f));
  cr_assert_not_null(strstr(line, "done"));
  fclose(f);
}

/* Best configs timed on several ranks: each unit's times are scaled by the reference unit's exact
 * time over its own, so a config on a device twice as slow counts half its time; a unit without a
 * usable exact time gives NaN, and the reference is the first unit that has one. */
Test(dist, times_from_several_devices_are_scaled_to_one) {
  double sec[4] = {2.0, 4.0, 6.0, 8.0}, exact;
  const double ex[4] = {10.0, 10.0, 20.0, 40.0};
  pt__dist_scale_times(4, sec, ex, &exact);
  cr_assert_float_eq(exact, 10.0, 1e-12);
  cr_assert_float_eq(sec[0], 2.0, 1e-12);
  cr_assert_float_eq(sec[1], 4.0, 1e-12);
  cr_assert_float_eq(sec[2], 3.0, 1e-12, "a device twice as slow: %g", sec[2]);
  cr_assert_float_eq(sec[3], 2.0, 1e-12);
  double s2[3] = {1.0, 2.0, 3.0};
  const double e2[3] = {NAN, 5.0, 0.0};
  pt__dist_scale_times(3, s2, e2, &exact);
  cr_assert_float_eq(exact, 5.0, 1e-12, "the first usable exact time is the reference");
  cr_assert(isnan(s2[0]) && isnan(s2[2]), "times without a usable exact time are not kept");
  cr_assert_float_eq(s2[1], 2.0, 1e-12);
  double s3[1] = {1.0};
  const double e3[1] = {INFINITY};
  pt__dist_scale_times(1, s3, e3, &exact);
  cr_assert(isnan(exact) && isnan(s3[0]));
}
