// Device helpers of the FlashAttention-2 prefill kernel (attention_prefill.cu): the XOR swizzle of
// shared tiles, on top of the building blocks in mma.cuh (cp.async, ldmatrix, mma, exp2). The
// kernel's comments write g = lane / 4 (groupID) and q = lane % 4 (threadID_in_group).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "mma.cuh"

namespace tk::kernels::prefill {

using namespace tile;  // mma.cuh: cp.async, ldmatrix, mma_16816, pack2, fast_exp2

// Offset in 16-byte chunks of logical (row, chunk) in a tile of `kChunks` chunks per row. The XOR
// of the chunk's low three bits with row % 8 puts the 8 rows that one ldmatrix phase reads (or one
// 16-byte column of cp.async writes) in 8 different bank groups: no bank conflicts, no padding.
template <int kChunks>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  static_assert(kChunks >= 8, "the swizzle needs rows of at least 128 bytes");
  return row * kChunks + (chunk ^ (row & 7));
}

}  // namespace tk::kernels::prefill
