/* The emulated mma.m16n8k16 and ldmatrix.x4 (tests/mma_emu.h). */
#include "mma_emu.h"

#include <criterion/criterion.h>

#include "kernels/igemm_layout.h"

static void check_cover(void) {
  int seen_a[16][16] = {{0}}, seen_b[16][8] = {{0}}, seen_c[16][8] = {{0}};
  for (int l = 0; l < 32; l++) {
    for (int i = 0; i < 8; i++) seen_a[pt_mma_a_row(l, i)][pt_mma_a_col(l, i)]++;
    for (int i = 0; i < 4; i++) seen_b[pt_mma_b_k(l, i)][pt_mma_b_n(l, i)]++;
    for (int i = 0; i < 4; i++) seen_c[pt_mma_c_row(l, i)][pt_mma_c_col(l, i)]++;
  }
  for (int r = 0; r < 16; r++)
    for (int q = 0; q < 16; q++) cr_assert_eq(seen_a[r][q], 1, "A[%d][%d] held %d times", r, q, seen_a[r][q]);
  for (int k = 0; k < 16; k++)
    for (int n = 0; n < 8; n++) cr_assert_eq(seen_b[k][n], 1, "B[%d][%d] held %d times", k, n, seen_b[k][n]);
  for (int r = 0; r < 16; r++)
    for (int n = 0; n < 8; n++) cr_assert_eq(seen_c[r][n], 1, "C[%d][%d] held %d times", r, n, seen_c[r][n]);
}

void mma_emulated(const float a[32][8], const float b[32][4], float c[32][4]) {
  static int checked;
  if (!checked) check_cover(), checked = 1;
  float A[16][16], B[16][8];
  for (int l = 0; l < 32; l++) {
    for (int i = 0; i < 8; i++) A[pt_mma_a_row(l, i)][pt_mma_a_col(l, i)] = a[l][i];
    for (int i = 0; i < 4; i++) B[pt_mma_b_k(l, i)][pt_mma_b_n(l, i)] = b[l][i];
  }
  for (int l = 0; l < 32; l++)
    for (int i = 0; i < 4; i++) {
      const int r = pt_mma_c_row(l, i), n = pt_mma_c_col(l, i);
      float acc = c[l][i];
      for (int k = 0; k < 16; k++) acc += A[r][k] * B[k][n];
      c[l][i] = acc;
    }
}

void ldmatrix_x4_emulated(const float *const row_addr[32], float out[32][8]) {
  for (int l = 0; l < 32; l++)
    for (int j = 0; j < 4; j++) {
      const float *row = row_addr[pt_ldm_src_lane(l, j)];
      out[l][2 * j] = row[pt_ldm_col(l)], out[l][2 * j + 1] = row[pt_ldm_col(l) + 1];
    }
}
