/* An emulated mma.m16n8k16 and ldmatrix.x4 for the CPU runs of the implicit-GEMM kernels' loop
 * nests (tests/test_igemm.c, test_igemm_halo.c), on the PTX ISA's fragment layouts as
 * kernels/igemm_layout.h writes them. Values are floats (the kernels' binary16 operands, rounded by
 * the caller). */
#ifndef PT_TEST_MMA_EMU_H
#define PT_TEST_MMA_EMU_H

/* D = A B + C from the 32 lanes' fragments (a: 8 per lane, b: 4, c: 4); that each operand element
 * is held by exactly one (lane, index) is asserted on the first call (the layouts do not change). */
void mma_emulated(const float a[32][8], const float b[32][4], float c[32][4]);

/* ldmatrix.x4: lane l gives row_addr[l], the address of row l % 8 of matrix l / 8 (8 values);
 * out[l][2j], out[l][2j + 1] are what register j of lane l receives. */
void ldmatrix_x4_emulated(const float *const row_addr[32], float out[32][8]);

#endif
