// Tensor-core and async-copy building blocks shared by the attention kernels
// (attention_decode.cu, attention_prefill.cu): cp.async with zero fill, ldmatrix, the m16n8k16
// MMA in bf16/fp16 with fp32 accumulators, operand packing and exp2 on the SFU. Fragment layouts
// follow the PTX ISA ("Matrix Fragments for mma.m16n8k16 with floating point type"); comments
// write g = lane / 4 (groupID) and q = lane % 4 (threadID_in_group).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace tk::kernels::tile {

// 16-byte chunks per shared-memory row of a K/V/Q tile for head size D: D / 8 rounded up to a
// power of two, at least 8 (128 bytes). The XOR swizzle of the attention kernels permutes a
// chunk within its aligned group of 8, so it stays inside a row only when the row is a multiple
// of 8 chunks; head sizes 80 and 96 (10 and 12 chunks) therefore get 16-chunk rows whose last
// chunks are never loaded and never read, and head size 32 gets 8-chunk rows. The MMA loops run
// over D itself, so the padding costs shared memory, not tensor-core work.
constexpr int smem_row_chunks(int head_dim) {
  int c = 8;
  while (c < head_dim / 8) c *= 2;
  return c;
}

__device__ __forceinline__ uint32_t smem_u32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global -> shared copy that bypasses L1 (.cg). With valid == false the source is not
// read and the 16 shared bytes are zero-filled: rows past a sequence's end become zeros, never
// stale data (a NaN there would survive P = 0 in P V).
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8x8 b16 matrices; lanes 8i..8i+7 give the row addresses of matrix i, and r[i] receives
// matrix i with lane holding row g, columns 2q and 2q+1 (the A/B fragment order of mma).
__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
// The same, transposed: lane holds stored rows 2q and 2q+1 of column g. Used for V, whose
// B fragment needs two consecutive tokens of one head dimension.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t addr, uint32_t (&r)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += a (16x16, row) * b (16x8, col), fp32 accumulators.
// a: a0 (row g, k 2q..2q+1), a1 (row g+8, same k), a2 (row g, k 2q+8..), a3 (row g+8, k 2q+8..)
// b: b0 (k 2q..2q+1, col g), b1 (k 2q+8.., col g); d: d0,d1 (row g, cols 2q, 2q+1), d2,d3 (row g+8)
template <typename T>
__device__ __forceinline__ void mma_16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// Two floats as one b32 of T: `lo` in the low half (the lower column of an mma fragment).
template <typename T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  } else {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
}

// 2^x on the SFU; ex2.approx(-inf) = +0, which the online softmax relies on for masked scores.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// 16 bytes through the non-coherent path without allocating in L1: a stream read once (weights).
// L2::128B asks the L2 to fetch the whole 128-byte line on a miss: a GEMV warp's load covers 64
// bytes of each of 8 rows and its next load the other 64, which can then hit (not profiled). On
// the H200 this took Llama-3-8B's batch-1 decode from 225.5 to 227.4 tokens/s (qkv and o_proj
// by the GEMV; 256B: 226.1), the same binary otherwise, two rounds on one machine.
__device__ __forceinline__ uint4 ld_stream(const void* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.L2::128B.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// 16 bytes cached in L2 only (ld.global.cg): data an earlier kernel of the step wrote, read by a
// kernel that may have started before that one finished (programmatic launch, common.cuh).
__device__ __forceinline__ uint4 ld_l2(const void* p) {
  uint4 v;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

// d += a (16x32 e4m3, row) * b (32x8 e4m3, col), fp32 accumulators: mma_16816's fragment layout
// with four fp8 values where it has two 16-bit ones.
__device__ __forceinline__ void mma_e4m3(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

}  // namespace tk::kernels::tile
