/* Linear layers through cuBLAS: fp32 SGEMM semantics (no TF32), or binary16 operands with fp32
 * accumulation on tensor cores; the bias and FP16Approx rounding follow in one kernel. */
#include "backend/cuda/cuda_internal.h"
#include "core/error.h"

pt_status pt__cuda_linear(void *ctx, int n, int in, int out, int fp16, const float *x, const float *w, const float *b,
                          float *y) {
  pt_cuda_ctx *c = ctx;
  const float one = 1.0f, zero = 0.0f;
  const void *A = w, *B = x;
  cudaDataType_t t = CUDA_R_32F;
  if (fp16) {
    void *xh, *wh;
    PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_X, (size_t)n * in * 2, &xh));
    PT__TRY(pt__cuda_scratch(c, PT_CU_SCR_W, (size_t)out * in * 2, &wh));
    PT__TRY(pt__cu_f32_to_f16(c->ln->stream, (int64_t)n * in, x, xh));
    PT__TRY(pt__cu_f32_to_f16(c->ln->stream, (int64_t)out * in, w, wh));
    A = wh, B = xh, t = CUDA_R_16F;
  }
  /* row-major y (n, out) = x (n, in) . w (out, in)^T, i.e. column-major y^T = w^T' x^T */
  if (n > 0 && out > 0)
    PT_CUBLAS_CHECK(cublasGemmEx(c->ln->blas, CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, A, t, in, B, t, in, &zero, y,
                                 CUDA_R_32F, out, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  if (!b && !fp16) return PT_OK;
  return pt__cu_linear_bias(c->ln->stream, n, out, fp16, b, y);
}
