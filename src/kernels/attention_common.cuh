// Device helpers of the split-KV decode kernel (attention_decode.cu): the XOR swizzle of shared
// K/V tiles, paged tile staging (16-bit or raw fp8), the 16-row tensor-core step (both) and the programmatic-dependent-launch
// controls, on top of the building blocks in mma.cuh (g = lane / 4, q = lane % 4 as there).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "kv_fp8.cuh"
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

__device__ __forceinline__ int ceil_div_dev(int a, int b) { return (a + b - 1) / b; }

// ---------------------------------------------------------------------------------------------
// Paged K/V staging: a tile of kTileTokens cache positions of one kv head, copied by 128 threads
// in 16-byte chunks (a warp's 32 chunks are 512 bytes of consecutive token rows, contiguous within
// a page) into swizzled rows.

constexpr int kStageThreads = 128;
constexpr int kTileTokens = 64;  // per stage (16-bit caches; FP8 of head_dim >= 80: 128, the same bytes)

// A shared row holds kChunks chunks (smem_row_chunks of the row's bytes / 2: padded to a power of
// two, at least 8), of which the head's kHeadChunks are loaded; threads whose chunk is padding copy
// nothing. kBytes: bytes per cached value, 2 (bf16/fp16) or 1 (the FP8 KV cache's raw e4m3 tile);
// kTokens: cache positions per tile.
template <int D, int kBytes = 2, int kTokens = kTileTokens>
struct TileShape {
  static_assert(D % 16 == 0 && D >= 32 && D <= 256, "head_dim a multiple of 16 in [32, 256]");
  static_assert(kBytes == 1 || kBytes == 2, "fp8 or 16-bit cache values");
  static constexpr int kHeadChunks = D * kBytes / 16;                   // 16-byte chunks of one token's head
  static constexpr int kChunks = smem_row_chunks(D * kBytes / 2);       // 16-byte chunks per shared row
  static constexpr int kLoads = kTokens * kChunks / kStageThreads;  // chunks per thread, of K and of V
  static constexpr int kTokenStep = kStageThreads / kChunks;        // tokens between one thread's chunks
  static constexpr int kTileBytes = kTokens * kChunks * 16;         // K (or V) of one tile in shared memory
};

// One sequence's view of the paged cache for one kv head.
struct SeqKv {
  const void* k;         // [num_pages, num_kv_heads, page_size, D] of E (stage_tile)
  const void* v;         // [num_pages, num_kv_heads, page_size, D]
  const int32_t* pages;  // [max_pages] this sequence's row of the page table
  int max_pages, page_shift, num_kv_heads, kvh;
};

// Page ids of this thread's tokens of the tile at tile_begin, loaded a tile ahead of the copies
// so the dependent load never stalls the pipeline. The index is clamped into the row; entries past
// the context may be garbage and are never dereferenced.
template <typename S>
__device__ __forceinline__ void load_page_ids(const SeqKv& c, int tile_begin, int (&pg)[S::kLoads]) {
  const int tok0 = threadIdx.x / S::kChunks;
#pragma unroll
  for (int i = 0; i < S::kLoads; ++i) {
    const int pos = tile_begin + tok0 + i * S::kTokenStep;
    pg[i] = __ldg(c.pages + min(pos >> c.page_shift, c.max_pages - 1));
  }
}

// K and V of the tile's positions from tile_begin (S: its TileShape); positions >= end are
// zero-filled. E: the cached value, uint16_t (bf16/fp16 bits) or uint8_t (fp8 e4m3, copied raw).
template <int D, typename S, typename E>
__device__ __forceinline__ void stage_tile(const SeqKv& c, int tile_begin, int end, const int (&pg)[S::kLoads],
                                           uint32_t sk, uint32_t sv) {
  constexpr int kPerChunk = 16 / sizeof(E);
  const int chunk = threadIdx.x % S::kChunks, tok0 = threadIdx.x / S::kChunks;
  if (chunk >= S::kHeadChunks) return;  // padding of the shared row (head_dim 80, 96; fp8 < 128): never read
  const int page_mask = (1 << c.page_shift) - 1;
  const E* k = static_cast<const E*>(c.k);
  const E* v = static_cast<const E*>(c.v);
#pragma unroll
  for (int i = 0; i < S::kLoads; ++i) {
    const int tok = tok0 + i * S::kTokenStep, pos = tile_begin + tok;
    const bool ok = pos < end;
    const int64_t slot = ((static_cast<int64_t>(pg[i]) * c.num_kv_heads + c.kvh) << c.page_shift) + (pos & page_mask);
    const int64_t off = ok ? slot * D + chunk * kPerChunk : 0;
    const uint32_t dst = swizzle<S::kChunks>(tok, chunk);
    cp_async_16(sk + dst, k + off, ok);
    cp_async_16(sv + dst, v + off, ok);
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

// Causal/length mask of 16 rows x 8 kN8 tokens of scores s (n8 tile j at cache position pos0 +
// 8j), then the online-softmax update: s becomes P (exp2 domain, unnormalised), acc's max, sum and
// O are rescaled. lim[h]: first position row g + 8h may not see.
template <int D, int kN8 = 2>
__device__ __forceinline__ void softmax_16(float (&s)[kN8][4], int pos0, const int (&lim)[2], float scale_log2,
                                           int lane, Acc<D>& acc) {
  float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
  for (int e = 0; e < 4 * kN8; ++e) {
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
  for (int e = 0; e < 4 * kN8; ++e) {
    const int j = e >> 2, h = (e >> 1) & 1;
    s[j][e & 3] = fast_exp2(s[j][e & 3] - base[h]);
    acc.l[h] += s[j][e & 3];
  }
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
    acc.o[n][0] *= alpha[0], acc.o[n][1] *= alpha[0], acc.o[n][2] *= alpha[1], acc.o[n][3] *= alpha[1];
}

// The score C fragments of tokens 0-7 and 8-15 (n8 tiles 2i, 2i + 1) are exactly the A fragment
// of P (k = token) for those 16 tokens.
template <typename T, int kN8>
__device__ __forceinline__ void pack_p(const float (&s)[kN8][4], int i, uint32_t (&pa)[4]) {
  pa[0] = pack2<T>(s[2 * i][0], s[2 * i][1]), pa[1] = pack2<T>(s[2 * i][2], s[2 * i][3]);
  pa[2] = pack2<T>(s[2 * i + 1][0], s[2 * i + 1][1]), pa[3] = pack2<T>(s[2 * i + 1][2], s[2 * i + 1][3]);
}

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
  softmax_16<D>(s, pos0, lim, scale_log2, lane, acc);
  uint32_t pa[4];
  pack_p<T>(s, 0, pa);
  const int vrow = tok + (lane & 7) + (((lane >> 3) & 1) << 3), vcol = lane >> 4;
#pragma unroll
  for (int dp = 0; dp < D / 16; ++dp) {  // transposed: (tok 0-7, dims lo), (8-15, lo), (0-7, hi), (8-15, hi)
    uint32_t vb[4];
    ldmatrix_x4_trans(sv + swizzle<C>(vrow, 2 * dp + vcol), vb);
    mma_16816<T>(acc.o[2 * dp], pa, vb[0], vb[1]);
    mma_16816<T>(acc.o[2 * dp + 1], pa, vb[2], vb[3]);
  }
}

// ---------------------------------------------------------------------------------------------
// The FP8 KV cache's step: raw e4m3 tiles, fragments converted in registers, fp16 MMAs, in the
// dim orders kv_fp8.cuh describes.

// softmax_16 for the fp8 step, fewer instructions a score: the mask only on steps that reach a
// row's limit, the max taken on raw scores (scale_log2 > 0) and the scale folded into the exp's
// FFMA, and O's rescale skipped when no row's max moved (warp-uniform vote; alpha is exactly 1
// then). kN8: n8 tiles of 8 tokens. (Neutral at the memory-bound L = 1 shapes on the H200; it
// trims the rows-heavy steps of GQA groups and speculative queries.)
template <int D, int kN8>
__device__ __forceinline__ void softmax_fp8(float (&s)[kN8][4], int pos0, const int (&lim)[2], float scale_log2,
                                            int lane, Acc<D>& acc) {
  float mx[2] = {-INFINITY, -INFINITY};
  if (pos0 + 8 * kN8 <= min(lim[0], lim[1])) {
#pragma unroll
    for (int e = 0; e < 4 * kN8; ++e) mx[(e >> 1) & 1] = fmaxf(mx[(e >> 1) & 1], s[e >> 2][e & 3]);
  } else {
#pragma unroll
    for (int e = 0; e < 4 * kN8; ++e) {
      const int j = e >> 2, h = (e >> 1) & 1, pos = pos0 + 8 * j + 2 * (lane & 3) + (e & 1);
      if (pos >= lim[h]) s[j][e & 3] = -INFINITY;
      mx[h] = fmaxf(mx[h], s[j][e & 3]);
    }
  }
  float alpha[2], base[2];
  bool moved = false;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
    mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    const float m_new = fmaxf(acc.m[h], mx[h] * scale_log2);
    base[h] = m_new == -INFINITY ? 0.f : m_new;  // a row with nothing visible yet keeps P = 0, never NaN
    alpha[h] = fast_exp2(acc.m[h] - base[h]);
    moved |= m_new != acc.m[h];
    acc.m[h] = m_new;
    acc.l[h] *= alpha[h];
  }
#pragma unroll
  for (int e = 0; e < 4 * kN8; ++e) {
    const int j = e >> 2, h = (e >> 1) & 1;
    s[j][e & 3] = fast_exp2(fmaf(s[j][e & 3], scale_log2, -base[h]));
    acc.l[h] += s[j][e & 3];
  }
  if (!__any_sync(0xffffffffu, moved)) return;
#pragma unroll
  for (int n = 0; n < D / 8; ++n)
    acc.o[n][0] *= alpha[0], acc.o[n][1] *= alpha[0], acc.o[n][2] *= alpha[1], acc.o[n][3] *= alpha[1];
}

// attend_16 over raw fp8 tiles (rows of kChunks chunks) for 16 kSub tokens at once (kSub
// independent score chains, one softmax update, P V accumulated kSub deep): tokens tok ..
// tok + 16 kSub - 1 at cache position pos0. qf in the permuted order, scale_log2 with k_scale
// folded in, O without v_scale (the writer applies it).
template <int D, int kChunks, int kSub>
__device__ __forceinline__ void attend_fp8(uint32_t sk, uint32_t sv, int tok, int pos0, const uint32_t (&qf)[D / 16][4],
                                           const int (&lim)[2], float scale_log2, int lane, Acc<D>& acc) {
  constexpr int kSteps = D / 16;
  // Matrices (tok 0-7, chunk c), (8-15, c), (0-7, c + 1), (8-15, c + 1), for K and V alike.
  const int row = tok + (lane & 7) + (((lane >> 3) & 1) << 3), col = lane >> 4;
  float s[2 * kSub][4] = {};
#pragma unroll
  for (int c = 0; c < kSteps; c += 2) {
#pragma unroll
    for (int u = 0; u < kSub; ++u) {
      uint32_t kb[4];
      ldmatrix_x4(sk + swizzle<kChunks>(row + 16 * u, c + col), kb);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (c + j >= kSteps) break;  // head_dim 80: the pair's second chunk is row padding
        mma_16816<__half>(s[2 * u], qf[c + j], fp8x2_to_half2(kb[2 * j]), fp8x2_to_half2(kb[2 * j] >> 16));
        mma_16816<__half>(s[2 * u + 1], qf[c + j], fp8x2_to_half2(kb[2 * j + 1]), fp8x2_to_half2(kb[2 * j + 1] >> 16));
      }
    }
  }
  softmax_fp8<D, 2 * kSub>(s, pos0, lim, scale_log2, lane, acc);
#pragma unroll
  for (int u = 0; u < kSub; ++u) {
    uint32_t pa[4];
    pack_p<__half>(s, u, pa);
#pragma unroll
    for (int c = 0; c < kSteps; c += 2) {
      uint32_t vb[4];
      ldmatrix_x4_trans(sv + swizzle<kChunks>(row + 16 * u, c + col), vb);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (c + j >= kSteps) break;
        uint32_t even0, odd0, even1, odd1;  // b0 (tokens 0-7) and b1 (8-15) of dims 2g and 2g + 1
        fp8_v_fragments(vb[2 * j], even0, odd0);
        fp8_v_fragments(vb[2 * j + 1], even1, odd1);
        mma_16816<__half>(acc.o[2 * (c + j)], pa, even0, even1);
        mma_16816<__half>(acc.o[2 * (c + j) + 1], pa, odd0, odd1);
      }
    }
  }
}

}  // namespace tk::kernels::attn
