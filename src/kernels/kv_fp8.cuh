// The FP8 KV cache (--kv-cache-dtype fp8) on the attention kernels' tensor cores: raw e4m3 K/V
// tiles are read with the same ldmatrix as 16-bit data, each 16-bit "element" a pair of fp8
// values, converted in registers (e4m3 -> f16 is exact, one cvt per pair), and the MMAs run in
// fp16 (bf16 Q saturated to +-65504; P in [0, 1]). What those reads hand a lane (g = lane / 4,
// q = lane % 4) fixes two dim orders, both invisible outside the kernels:
//  - S = Q K^T: lane (g, q) gets dims 16c + 4q .. 4q + 3 of token g for each 16-dim chunk c, so
//    MMA k index 2q + e is dim 4q + e and 2q + 8 + e is dim 4q + 2 + e. Q's A fragment is built
//    in the same order (decode: load_q; prefill: its permuted shared Q tile); a dot product does
//    not care about the order of its terms.
//  - O += P V: the transposed read gives tokens 2q, 2q + 1 of dims 2g, 2g + 1; a byte permute
//    splits that into an "even dims" and an "odd dims" B fragment (fp8_v_fragments), so O's n8
//    tile 2c holds dims 16c + 2j and tile 2c + 1 dims 16c + 2j + 1 (j the tile column). A lane's
//    accumulators of chunk c are then dims 16c + 4q + {0, 1, 2, 3} = o[2c][0], o[2c+1][0],
//    o[2c][1], o[2c+1][1] for row g ([2], [3] for row g + 8), which the writers of O put back in
//    order (fp8_o_dims).
// Shared by attention_common.cuh (decode) and attention_prefill.cu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace tk::kernels::tile {

// Two fp8 e4m3 (the low 16 bits, low byte first) as a half2 (low half first), exactly.
__device__ __forceinline__ uint32_t fp8x2_to_half2(uint32_t two) {
  uint32_t h;
  asm("cvt.rn.f16x2.e4m3x2 %0, %1;\n" : "=r"(h) : "h"(static_cast<unsigned short>(two & 0xffffu)));
  return h;
}

// One ldmatrix.trans register of raw fp8 V, bytes (token 2q, dim 2g), (2q, 2g + 1), (2q + 1, 2g),
// (2q + 1, 2g + 1), as the half2 B-fragment registers of dim 2g (even) and 2g + 1 (odd): tokens
// 2q, 2q + 1 each.
__device__ __forceinline__ void fp8_v_fragments(uint32_t r, uint32_t& even, uint32_t& odd) {
  const uint32_t p = __byte_perm(r, 0, 0x3120);  // (2q, 2g), (2q + 1, 2g), (2q, 2g + 1), (2q + 1, 2g + 1)
  even = fp8x2_to_half2(p);
  odd = fp8x2_to_half2(p >> 16);
}

// Two T (a b32) as a half2 for the fp16 MMAs of the FP8 path: bf16 saturated to +-65504.
template <typename T>
__device__ __forceinline__ uint32_t to_half2(uint32_t x) {
  if constexpr (std::is_same_v<T, __half>) {
    return x;
  } else {
    const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&x));
    constexpr float kMax = 65504.f;
    __half2 h = __floats2half2_rn(fminf(fmaxf(f.x, -kMax), kMax), fminf(fmaxf(f.y, -kMax), kMax));
    return *reinterpret_cast<uint32_t*>(&h);
  }
}

// Dims 16c + 4q .. +3 of row g (h = 0) or g + 8 (h = 1) from the permuted O tiles o[n8 tile][4].
template <int kTiles>
__device__ __forceinline__ float4 fp8_o_dims(const float (&o)[kTiles][4], int c, int h) {
  return make_float4(o[2 * c][2 * h], o[2 * c + 1][2 * h], o[2 * c][2 * h + 1], o[2 * c + 1][2 * h + 1]);
}

}  // namespace tk::kernels::tile
