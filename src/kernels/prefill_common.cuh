// Device helpers of the FlashAttention-2 prefill kernel (attention_prefill.cu): the XOR swizzle of
// shared tiles, on top of the building blocks in mma.cuh (cp.async, ldmatrix, mma, exp2). The
// kernel's comments write g = lane / 4 (groupID) and q = lane % 4 (threadID_in_group).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "kernels/kernels.h"
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

// Launch arguments of both prefill kernels (attention_prefill.cu, attention_prefill_sm90.cu).
struct Args {
  const void* q;                // [num_tokens, q_stride]
  int64_t q_stride;
  const void* k_cache;          // [num_pages, num_kv_heads, page_size, head_dim]
  const void* v_cache;          // [num_pages, num_kv_heads, page_size, head_dim]
  void* out;                    // [num_tokens, num_q_heads * head_dim]
  const int32_t* query_start;   // [num_seqs + 1]
  const int32_t* context_lens;  // [num_seqs]
  const int32_t* page_table;    // [num_seqs, max_pages_per_seq]
  int max_pages_per_seq;
  int page_shift;  // log2(page_size)
  int num_q_heads;
  int num_kv_heads;
  float scale_log2;  // scale * log2(e) (* k_scale for an FP8 KV cache): softmax in base 2, one FFMA a score
  float v_scale;     // FP8 KV cache: the factor of every output (1 otherwise)
};

inline Args make_args(const PagedAttentionParams& p) {
  Args a;
  a.q = p.q, a.q_stride = p.q_stride, a.k_cache = p.k_cache, a.v_cache = p.v_cache, a.out = p.out;
  a.query_start = p.query_start, a.context_lens = p.context_lens, a.page_table = p.page_table;
  a.max_pages_per_seq = p.max_pages_per_seq;
  a.page_shift = __builtin_ctz(static_cast<unsigned>(p.page_size));
  a.num_q_heads = p.num_q_heads, a.num_kv_heads = p.num_kv_heads;
  a.scale_log2 = p.scale * 1.4426950408889634f;
  a.v_scale = 1.f;
  if (p.kv_quant.fp8) a.scale_log2 *= p.kv_quant.k_scale, a.v_scale = p.kv_quant.v_scale;
  return a;
}

// What one block works on: query rows [m0, m0 + rows) of one (sequence, q head). Rows are
// counted within the sequence's new tokens.
struct Tile {
  int seq, head, kv_head;
  int q0;      // first token of the sequence in q/out
  int m0;      // first query row of this tile
  int rows;    // valid query rows in the tile (the last tile of a sequence is partial)
  int kv_len;  // context length C: cache positions [0, C)
  int off;     // C - L: query row i sees positions [0, off + i]
};

// The tile of up to block_rows rows at m0; false when m0 lies past the sequence's new tokens.
__device__ __forceinline__ bool make_tile(const Args& a, int seq, int head, int m0, int block_rows, Tile& t) {
  t.seq = seq;
  t.head = head;
  t.kv_head = head / (a.num_q_heads / a.num_kv_heads);
  t.m0 = m0;
  t.q0 = a.query_start[seq];
  const int len = a.query_start[seq + 1] - t.q0;
  if (m0 >= len) return false;
  t.rows = min(block_rows, len - m0);
  t.kv_len = a.context_lens[seq];
  t.off = t.kv_len - len;
  return true;
}

}  // namespace tk::kernels::prefill
