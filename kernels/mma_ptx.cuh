/* The tensor-core and async-copy instructions the implicit-GEMM kernels use, as inline PTX (sm_80+):
 * cp.async of 16 bytes with its commit and wait, ldmatrix.x4, and mma.sync m16n8k16 with fp16
 * operands and fp32 accumulation. Fragment layouts: kernels/igemm_layout.h. */
#ifndef PT_MMA_PTX_CUH
#define PT_MMA_PTX_CUH

__device__ __forceinline__ unsigned pt__smem_addr(const void *p) { return (unsigned)__cvta_generic_to_shared(p); }

__device__ __forceinline__ void pt__cp_async16(void *smem, const void *gmem) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(pt__smem_addr(smem)),
               "l"((unsigned long long)__cvta_generic_to_global(gmem)));
}
__device__ __forceinline__ void pt__cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/* Waits until at most n groups are in flight (n: a constant). */
template <int n> __device__ __forceinline__ void pt__cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n) : "memory");
}

__device__ __forceinline__ void pt__ldmatrix_x4(unsigned r[4], const void *smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(pt__smem_addr(smem))
               : "memory");
}

__device__ __forceinline__ void pt__mma16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
               "{%0, %1, %2, %3};\n"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

#endif
