// Device helpers of the split-KV decode kernel (attention_decode.cu): the XOR swizzle of shared
// K/V tiles, paged tile staging, the 16-row tensor-core step and the programmatic-dependent-launch
// controls, on top of the building blocks in mma.cuh (g = lane / 4, q = lane % 4 as there).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "mma.cuh"

namespace tk::kernels::attn {

using namespace tile;  // mma.cuh: cp.async, ldmatrix, mma_16816, pack2, fast_exp2

template <typename T>
__device__ __forceinline__ T from_float(float x) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>)
    return __float2bfloat16_rn(x);
  else
    return __float2half_rn(x);
}

// Stores 4 floats as 4 T (8 bytes; dst 8-byte aligned).
template <typename T>
__device__ __forceinline__ void store4(T* dst, float a, float b, float c, float d) {
  uint2 v = make_uint2(pack2<T>(a, b), pack2<T>(c, d));
  *reinterpret_cast<uint2*>(dst) = v;
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a tile of rows of `kChunks` chunks. The XOR
// of the chunk's low 3 bits with the row spreads the 8 rows one ldmatrix reads over all 32 banks.
template <int kChunks>
__device__ __forceinline__ uint32_t swizzle(int row, int chunk) {
  static_assert(kChunks >= 8, "rows of at least 128 bytes");
  return static_cast<uint32_t>((row * kChunks + (chunk ^ (row & 7))) * 16);
}

// Programmatic dependent launch (sm_90): the producer lets the dependent grid be scheduled early;
// the dependent waits until the producer grid has finished and its writes are visible.
__device__ __forceinline__ void pdl_launch_dependents() {
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}
__device__ __forceinline__ void pdl_wait_primary() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }

__device__ __forceinline__ int ceil_div_dev(int a, int b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Paged K/V staging: a tile of kTileTokens cache positions of one kv head, copied by 128 threads
// in 16-byte chunks (a warp's 32 chunks are 512 bytes of consecutive token rows, contiguous within
// a page) into swizzled rows.

constexpr int kStageThreads = 128;
constexpr int kTileTokens = 64;  // per stage; 16 per warp and MMA k-step

// A shared row holds kChunks chunks (smem_row_chunks: D / 8 padded to a power of two), of which
// the head's kHeadChunks are loaded; threads whose chunk is padding copy nothing.
template <int D>
struct TileShape {
  static_assert(D % 16 == 0 && D >= 32 && D <= 256, "head_dim a multiple of 16 in [32, 256]");
  static constexpr int kHeadChunks = D / 8;                             // 16-byte chunks of one token's head
  static constexpr int kChunks = smem_row_chunks(D);                    // 16-byte chunks per shared row
  static constexpr int kLoads = kTileTokens * kChunks / kStageThreads;  // chunks per thread, of K and of V
  static constexpr int kTokenStep = kStageThreads / kChunks;            // tokens between one thread's chunks
  static constexpr int kTileBytes = kTileTokens * kChunks * 16;         // K (or V) of one tile in shared memory
};

// One sequence's view of the paged cache for one kv head.
struct SeqKv {
  const uint16_t* k;     // [num_pages, num_kv_heads, page_size, D]
  const uint16_t* v;     // [num_pages, num_kv_heads, page_size, D]
  const int32_t* pages;  // [max_pages] this sequence's row of the page table
  int max_pages, page_shift, num_kv_heads, kvh;
};

// Page ids of this thread's tokens of the tile at tile_begin, loaded a tile ahead of the copies
// so the dependent load never stalls the pipeline. The index is clamped into the row; entries past
// the context may be garbage and are never dereferenced.
template <int D>
__device__ __forceinline__ void load_page_ids(const SeqKv& c, int tile_begin, int (&pg)[TileShape<D>::kLoads]) {
  const int tok0 = threadIdx.x / TileShape<D>::kChunks;
#pragma unroll
  for (int i = 0; i < TileShape<D>::kLoads; ++i) {
    const int pos = tile_begin + tok0 + i * TileShape<D>::kTokenStep;
    pg[i] = __ldg(c.pages + min(pos >> c.page_shift, c.max_pages - 1));
  }
}

// K and V of positions [tile_begin, tile_begin + kTileTokens); positions >= end are zero-filled.
template <int D>
__device__ __forceinline__ void stage_tile(const SeqKv& c, int tile_begin, int end,
                                           const int (&pg)[TileShape<D>::kLoads], uint32_t sk, uint32_t sv) {
  using S = TileShape<D>;
  const int chunk = threadIdx.x % S::kChunks, tok0 = threadIdx.x / S::kChunks;
  if (chunk >= S::kHeadChunks) return;  // padding of the shared row (head_dim 80, 96): never read
  const int page_mask = (1 << c.page_shift) - 1;
#pragma unroll
  for (int i = 0; i < S::kLoads; ++i) {
    const int tok = tok0 + i * S::kTokenStep, pos = tile_begin + tok;
    const bool ok = pos < end;
    const int64_t slot = ((static_cast<int64_t>(pg[i]) * c.num_kv_heads + c.kvh) << c.page_shift) + (pos & page_mask);
    const int64_t off = ok ? slot * D + chunk * 8 : 0;
    const uint32_t dst = swizzle<S::kChunks>(tok, chunk);
    cp_async_16(sk + dst, c.k + off, ok);
    cp_async_16(sv + dst, c.v + off, ok);
  }
}

// ---------------------------------------------------------------------------------------------
// One decode step on tensor cores: 16 query rows (a KV group's heads x query tokens, padded)
// against 16 staged tokens, online softmax in fp32.

template <int D>
struct Acc {
  float o[D / 8][4];  // C fragments: o[n] holds dims 8n + 2q, +1 of rows g (0, 1) and g + 8 (2, 3)
  float m[2];         // running max of rows g, g + 8 (exp2 domain)
  float l[2];         // this thread's share of the running sum
};

// Scores of 16 rows x 16 tokens (tile rows tok..tok+15 at cache position pos0), causal/length
// mask, online-softmax update, then O += P V. lim[h]: first position row g + 8h may not see.
template <typename T, int D>
__device__ __forceinline__ void attend_16(uint32_t sk, uint32_t sv, int tok, int pos0, const uint32_t (&qf)[D / 16][4],
                                          const int (&lim)[2], float scale_log2, int lane, Acc<D>& acc) {
  constexpr int C = TileShape<D>::kChunks;
  float s[2][4] = {};
  const int krow = tok + (lane & 7) + ((lane >> 4) << 3), kcol = (lane >> 3) & 1;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {  // matrices: (tok 0-7, k lo), (0-7, hi), (8-15, lo), (8-15, hi)
    uint32_t kb[4];
    ldmatrix_x4(sk + swizzle<C>(krow, 2 * ks + kcol), kb);
    mma_16816<T>(s[0], qf[ks], kb[0], kb[1]);
    mma_16816<T>(s[1], qf[ks], kb[2], kb[3]);
  }
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int j = e >> 2, h = (e >> 1) & 1, pos = pos0 + 8 * j + 2 * (lane & 3) + (e & 1);
    const float x = pos < lim[h] ? s[j][e & 3] * scale_log2 : -INFINITY;
    s[j][e & 3] = x;
    mx[h] = fmaxf(mx[h], x);
  }
  float alpha[2], base[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    const float m_new = fmaxf(acc.m[h], mx[h]);
    base[h] = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet keeps P = 0, never NaN
    alpha[h] = fast_exp2(acc.m[h] - base[h]);
    acc.m[h] = m_new;
    acc.l[h] *= alpha[h];
  }
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int j = e >> 2, h = (e >> 1) & 1;
    s[j][e & 3] = fast_exp2(s[j][e & 3] - base[h]);
    acc.l[h] += s[j][e & 3];
  }
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
    acc.o[n][0] *= alpha[0], acc.o[n][1] *= alpha[0], acc.o[n][2] *= alpha[1], acc.o[n][3] *= alpha[1];
  // The score C fragments of tokens 0-7 and 8-15 are exactly the A fragment of P (k = token).
  const uint32_t pa[4] = {pack2<T>(s[0][0], s[0][1]), pack2<T>(s[0][2], s[0][3]), pack2<T>(s[1][0], s[1][1]),
                          pack2<T>(s[1][2], s[1][3])};
  const int vrow = tok + (lane & 7) + (((lane >> 3) & 1) << 3), vcol = lane >> 4;
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {  // transposed: (tok 0-7, dims lo), (8-15, lo), (0-7, hi), (8-15, hi)
    uint32_t vb[4];
    ldmatrix_x4_trans(sv + swizzle<C>(vrow, 2 * dp + vcol), vb);
    mma_16816<T>(acc.o[2 * dp], pa, vb[0], vb[1]);
    mma_16816<T>(acc.o[2 * dp + 1], pa, vb[2], vb[3]);
  }
}

}  // namespace tk::kernels::attn
