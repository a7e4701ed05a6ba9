// Split-KV flash decoding over the paged KV cache. Decode is bound by reading K and V once, so a
// block owns (sequence, kv head, split) and streams that split's pages through a cp.async
// pipeline ONCE for every query row of the KV group (group q heads x up to kMaxDecodeQueryLen new
// tokens). Scores and P V run on tensor cores (mma m16n8k16; the rows padded to 16 cost nothing
// next to the memory time), the softmax online in fp32. The splits are combined by log-sum-exp:
// up to kMaxClusterSplits splits run as one thread-block cluster, each split leaving its rows
// (out, lse) in its own shared memory and the cluster merging them through distributed shared
// memory (no workspace round trip, no second kernel: decode at batch 1 splits 2-3 ways and paid
// a merge launch per layer); more splits leave (out, lse) in the fp32 workspace for a merge
// kernel, launched as a programmatic dependent of the first. A sequence that fits one split is
// written directly. Paged staging and the tensor-core step are in attention_common.cuh; the host
// planner, plan_decode, in decode_plan.cpp. An FP8 KV cache (kFp8) streams the raw e4m3 tiles (half the
// bytes, twice the stages), converts them in registers and runs the MMAs in fp16; k_scale is
// folded into the softmax scale and v_scale into the written output (the merge is linear).
#include <cooperative_groups.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>

#include "attention_checks.h"
#include "attention_common.cuh"
#include "common.cuh"
#include "cuda/cuda.h"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

using namespace attn;
namespace cg = cooperative_groups;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRowsPerBlock = 64;  // query rows (group x query tokens) one block serves
constexpr float kLog2e = 1.4426950408889634f;
constexpr int kMaxClusterSplits = 8;  // the portable cluster size; more splits go through the workspace
static_assert(kThreads == kStageThreads);

template <int D, bool kFp8 = false>
struct Cfg {
  static constexpr int kBytes = kFp8 ? 1 : 2;  // per cached value
  // fp8 rows of head_dim 80-128 are half as long: twice the tokens per tile give a warp 32 tokens
  // per step (kSub 2: twice the independent MMA chains, half the barriers per byte) in the bytes
  // of a 16-bit tile. Below 80 the fp8 rows are padded to 128 bytes anyway; at 256 the registers
  // are full (kSub 2 spills), so half-size tiles, more of them in flight.
  static constexpr int kTokens = kFp8 && D >= 80 && D <= 128 ? 2 * kTileTokens : kTileTokens;
  static constexpr int kSub = kTokens / kTileTokens;  // 16-token MMA steps per warp step
  using Shape = TileShape<D, kBytes, kTokens>;
  static constexpr int kTileBytes = Shape::kTileBytes;
  // 2-4 tiles in flight per block. Measured on the H200 for fp8 d128 (1x131072, 64x2048): 64-token
  // tiles x 6 stages 82.9 / 85.0 us; these 128-token tiles x 3 stages 73.1 / 74.3 us; x 2 stages
  // with 3 blocks an SM 73.4 / 92.6 us.
  static constexpr int kStages = D <= 64 ? 4 : (kFp8 && D == 256 ? 5 : 3);
  static constexpr int kRedStride = D + 8;         // fp32 row of the warp reduction (+8: no bank clash)
  static constexpr int kPipeBytes = kStages * 2 * kTileBytes;
  static constexpr int kRedBytes = (kWarps * 16 * kRedStride + 2 * kWarps * 16) * 4;
  static constexpr int kSmemBytes = kPipeBytes > kRedBytes ? kPipeBytes : kRedBytes;
  // A clustered split's finished rows, behind the reduction area: [kRowsPerBlock][D] normalised
  // out, then [kRowsPerBlock] log2-sum-exp2.
  static constexpr int kClusterOffset = kRedBytes;
  static_assert(kClusterOffset + (kRowsPerBlock * D + kRowsPerBlock) * 4 <= kSmemBytes, "cluster rows fit");
  static constexpr int kMinBlocks = D <= 64 ? 3 : (D <= 128 ? 2 : 1);  // resident blocks per SM (smem)
};

struct Args {
  const void* q;                // [num_tokens, q_stride]
  const void* k_cache;          // [num_pages, num_kv_heads, page_size, D]
  const void* v_cache;          // [num_pages, num_kv_heads, page_size, D]
  void* out;                    // [num_tokens, num_q_heads * D]
  float* part_o;                // [num_splits, num_tokens, num_q_heads, D] normalised per split
  float* part_lse;              // [num_splits, num_tokens, num_q_heads] log2-sum-exp2 of scaled scores
  const int32_t* query_start;   // [num_seqs + 1]
  const int32_t* context_lens;  // [num_seqs]
  const int32_t* page_table;    // [num_seqs, max_pages_per_seq]
  int64_t q_stride;
  int max_pages_per_seq, num_tokens, page_shift, num_q_heads, num_kv_heads, group;
  int rows;        // group * max_query_len: row r is query token r / group of q head kvh * group + r % group
  int row_chunks;  // ceil(rows / kRowsPerBlock) blocks per (sequence, kv head, split)
  int mtiles;      // 16-row MMA tiles per block (1, 2 or 4); warp w serves tile w % mtiles
  int num_splits, split_tokens;
  bool cluster_merge;  // the num_splits blocks of a (sequence, kv head, row chunk) are one cluster
  float scale_log2;  // scale * log2(e) (* k_scale for fp8): scores live in the exp2 domain
  float v_scale;     // fp8: the factor of every output (1 otherwise, unused)
};

// Where one block works. NOTE: the last split also takes any positions past num_splits *
// split_tokens, so an underestimated max_context_len cannot drop context.
struct Block {
  int seq, kvh, chunk, split;
  int q_begin, q_len, ctx;
  int split_begin, split_end;
  int active_splits;  // splits holding positions of this sequence's context
  bool direct;        // the sequence has one active split: write out, skip the merge
  SeqKv kv;
};

struct Warp {
  int lane, mtile, part;  // part: which token slice of a tile this warp takes
};

// A fragments of this warp's 16 query rows (zeros for padding rows), straight from global. fp8:
// as fp16, in the k order of attend_16_fp8 (dims 16ks + 4q, +1 and 16ks + 4q + 2, +3).
template <typename T, int D, bool kFp8>
__device__ __forceinline__ void load_q(const Args& a, const Block& b, const Warp& w, uint32_t (&qf)[D / 16][4]) {
  const int q4 = w.lane & 3;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int row = b.chunk * kRowsPerBlock + w.mtile * 16 + (w.lane >> 2) + 8 * half;
    const int qi = row / a.group, head = b.kvh * a.group + row % a.group;
    const bool valid = row < a.rows && qi < b.q_len;
    const auto* src = reinterpret_cast<const uint32_t*>(static_cast<const T*>(a.q) + (b.q_begin + qi) * a.q_stride +
                                                        static_cast<int64_t>(head) * D);
#pragma unroll
    for (int ks = 0; ks < D / 16; ++ks) {
      if constexpr (kFp8) {
        qf[ks][half] = valid ? to_half2<T>(src[ks * 8 + 2 * q4]) : 0u;          // dims 16 ks + 4q, +1
        qf[ks][2 + half] = valid ? to_half2<T>(src[ks * 8 + 2 * q4 + 1]) : 0u;  // dims 16 ks + 4q + 2, +3
      } else {
        qf[ks][half] = valid ? src[ks * 8 + q4] : 0u;          // k = 16 ks + 2q, +1
        qf[ks][2 + half] = valid ? src[ks * 8 + 4 + q4] : 0u;  // k = 16 ks + 8 + 2q, +1
      }
    }
  }
}

// The stage loop: a cp.async ring of kStages tiles; each warp consumes its token slice of every
// tile. pg holds the page ids of the next tile to stage.
template <typename T, int D, bool kFp8>
__device__ __forceinline__ void stream_split(const Args& a, const Block& b, const Warp& w, uint32_t smem,
                                             int (&pg)[Cfg<D, kFp8>::Shape::kLoads], Acc<D>& acc) {
  using C = Cfg<D, kFp8>;
  using E = std::conditional_t<kFp8, uint8_t, uint16_t>;
  const int n_tiles = ceil_div_dev(b.split_end - b.split_begin, C::kTokens);
  auto stage = [&](int t) {  // tile t into ring slot t % kStages, then the page ids of tile t + 1
    const uint32_t sk = smem + (t % C::kStages) * 2 * C::kTileBytes;
    if (t < n_tiles)
      stage_tile<D, typename C::Shape, E>(b.kv, b.split_begin + t * C::kTokens, b.split_end, pg, sk,
                                          sk + C::kTileBytes);
    cp_async_commit();  // an empty group past the end keeps the wait counts uniform
    if (t + 1 < n_tiles) load_page_ids<typename C::Shape>(b.kv, b.split_begin + (t + 1) * C::kTokens, pg);
  };
#pragma unroll
  for (int t = 0; t < C::kStages - 1; ++t) stage(t);
  uint32_t qf[D / 16][4];
  load_q<T, D, kFp8>(a, b, w, qf);  // overlaps the first tiles' flight
  int lim[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {  // causal: query qi sees positions [0, ctx - q_len + qi]
    const int row = b.chunk * kRowsPerBlock + w.mtile * 16 + (w.lane >> 2) + 8 * h, qi = row / a.group;
    lim[h] = (row < a.rows && qi < b.q_len) ? min(b.split_end, b.ctx - b.q_len + qi + 1) : b.split_end;
  }
  const bool active = w.mtile * 16 < min(kRowsPerBlock, a.rows - b.chunk * kRowsPerBlock);
  const int slice = 16 * C::kSub * a.mtiles;  // tokens of a tile per warp
  for (int t = 0; t < n_tiles; ++t) {
    cp_async_wait<C::kStages - 2>();
    __syncthreads();  // tile t landed for all threads; all left tile t - 1, whose slot is refilled now
    stage(t + C::kStages - 1);
    if (!active) continue;
    const uint32_t sk = smem + (t % C::kStages) * 2 * C::kTileBytes;
    const int tile_begin = b.split_begin + t * C::kTokens;
    for (int kk = 0; kk < a.mtiles; ++kk) {
      const int tok = w.part * slice + kk * 16 * C::kSub;
      if (tile_begin + tok >= b.split_end) continue;  // (tokens past it in a step: zeros, masked)
      if constexpr (kFp8)
        attend_fp8<D, C::Shape::kChunks, C::kSub>(sk, sk + C::kTileBytes, tok, tile_begin + tok, qf, lim,
                                                   a.scale_log2, w.lane, acc);
      else
        attend_16<T, D>(sk, sk + C::kTileBytes, tok, tile_begin + tok, qf, lim, a.scale_log2, w.lane, acc);
    }
  }
  cp_async_wait<0>();
}

// Warps sharing a 16-row tile combine (m, l, O) through shared memory; the block then writes its
// rows: normalised into out (direct) or into the workspace with their log2-sum-exp2. fp8: O's
// dims come back in order here (fp8_o_dims) and every output is multiplied by v_scale.
template <typename T, int D, bool kFp8>
__device__ __forceinline__ void finish_block(const Args& a, const Block& b, const Warp& w, float* red, Acc<D>& acc) {
  using C = Cfg<D, kFp8>;
  float* red_m = red + kWarps * 16 * C::kRedStride;  // [kWarps][16]
  float* red_l = red_m + kWarps * 16;                // [kWarps][16]
  const int warp = threadIdx.x / 32, g = w.lane >> 2, q4 = w.lane & 3;
  __syncthreads();  // every warp is done reading the pipeline buffers this reuses
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    acc.l[h] += __shfl_xor_sync(0xffffffffu, acc.l[h], 1);
    acc.l[h] += __shfl_xor_sync(0xffffffffu, acc.l[h], 2);
    float* row = red + (warp * 16 + g + 8 * h) * C::kRedStride;
    if constexpr (kFp8) {
#pragma unroll
      for (int c = 0; c < D / 16; ++c) *reinterpret_cast<float4*>(row + 16 * c + 4 * q4) = fp8_o_dims(acc.o, c, h);
    } else {
#pragma unroll
      for (int n = 0; n < D / 8; ++n)
        *reinterpret_cast<float2*>(row + 8 * n + 2 * q4) = make_float2(acc.o[n][2 * h], acc.o[n][2 * h + 1]);
    }
    if (q4 == 0) red_m[warp * 16 + g + 8 * h] = acc.m[h], red_l[warp * 16 + g + 8 * h] = acc.l[h];
  }
  __syncthreads();
  const int rows_here = min(kRowsPerBlock, a.rows - b.chunk * kRowsPerBlock), parts = kWarps / a.mtiles;
  for (int i = threadIdx.x; i < rows_here * (D / 4); i += kThreads) {
    const int rr = i / (D / 4), d = (i % (D / 4)) * 4, row = b.chunk * kRowsPerBlock + rr;
    const int qi = row / a.group, head = b.kvh * a.group + row % a.group;
    if (qi >= b.q_len) continue;
    const int mt = rr / 16, r = rr % 16;
    float m = -INFINITY;
    for (int p = 0; p < parts; ++p) m = fmaxf(m, red_m[(mt + p * a.mtiles) * 16 + r]);
    const float base = m == -INFINITY ? 0.f : m;
    float l = 0.f;
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int p = 0; p < parts; ++p) {
      const int wr = (mt + p * a.mtiles) * 16 + r;
      const float f = fast_exp2(red_m[wr] - base);
      const float4 x = *reinterpret_cast<const float4*>(red + wr * C::kRedStride + d);
      l += red_l[wr] * f, o.x += x.x * f, o.y += x.y * f, o.z += x.z * f, o.w += x.w * f;
    }
    float inv = l > 0.f ? 1.f / l : 0.f;  // l == 0: the row sees nothing of this split
    if constexpr (kFp8) inv *= a.v_scale;
    const int64_t token = b.q_begin + qi;
    const float lse = l > 0.f ? m + __log2f(l) : -INFINITY;
    if (b.direct) {
      store4<T>(static_cast<T*>(a.out) + (token * a.num_q_heads + head) * D + d, o.x * inv, o.y * inv, o.z * inv,
                o.w * inv);
    } else if (a.cluster_merge) {
      float* rows_o = red + C::kClusterOffset / 4;  // this block's [kRowsPerBlock][D], then [kRowsPerBlock]
      *reinterpret_cast<float4*>(rows_o + rr * D + d) = make_float4(o.x * inv, o.y * inv, o.z * inv, o.w * inv);
      if (d == 0) rows_o[kRowsPerBlock * D + rr] = lse;
    } else {
      const int64_t prow = (static_cast<int64_t>(b.split) * a.num_tokens + token) * a.num_q_heads + head;
      *reinterpret_cast<float4*>(a.part_o + prow * D + d) = make_float4(o.x * inv, o.y * inv, o.z * inv, o.w * inv);
      if (d == 0) a.part_lse[prow] = lse;
    }
  }
}

// The cluster's merge: its blocks (one per split) left their rows in shared memory
// (finish_block); each block now combines a share of the rows' 4-dim pieces over the active
// splits by log2-sum-exp2, reading the others' shared memory, in split order (deterministic).
// Every block of the cluster calls this, the empty splits too (they hold no rows but take a share).
template <typename T, int D, bool kFp8>
__device__ __forceinline__ void cluster_merge(const Args& a, const Block& b, float* red) {
  using C = Cfg<D, kFp8>;
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();  // every split's rows are in its shared memory
  float* rows_o = red + C::kClusterOffset / 4;
  const int rows_here = min(kRowsPerBlock, a.rows - b.chunk * kRowsPerBlock), n = b.active_splits;
  const int rank = static_cast<int>(cluster.block_rank());
  for (int i = rank * kThreads + threadIdx.x; i < rows_here * (D / 4); i += a.num_splits * kThreads) {
    const int rr = i / (D / 4), d = (i % (D / 4)) * 4, row = b.chunk * kRowsPerBlock + rr;
    const int qi = row / a.group, head = b.kvh * a.group + row % a.group;
    if (qi >= b.q_len) continue;
    float lse[kMaxClusterSplits], m = -INFINITY;
#pragma unroll
    for (int s = 0; s < kMaxClusterSplits; ++s) {
      lse[s] = s < n ? cluster.map_shared_rank(rows_o, s)[kRowsPerBlock * D + rr] : -INFINITY;
      m = fmaxf(m, lse[s]);  // finite: split 0 sees position 0
    }
    float l = 0.f;
    float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll
    for (int s = 0; s < kMaxClusterSplits; ++s) {
      if (s >= n) break;
      const float f = fast_exp2(lse[s] - m);  // 0 for a split past this query's causal limit (-inf)
      const float4 x = *reinterpret_cast<const float4*>(cluster.map_shared_rank(rows_o, s) + rr * D + d);
      l += f, o.x += x.x * f, o.y += x.y * f, o.z += x.z * f, o.w += x.w * f;
    }
    const float inv = 1.f / l;
    store4<T>(static_cast<T*>(a.out) + ((b.q_begin + qi) * static_cast<int64_t>(a.num_q_heads) + head) * D + d,
              o.x * inv, o.y * inv, o.z * inv, o.w * inv);
  }
  cluster.sync();  // no block exits while another still reads its shared memory
}

// grid: x = split + num_splits * (row chunk + row_chunks * kv head), y = sequence; with
// cluster_merge a cluster is the num_splits consecutive blocks of one (kv head, row chunk).
template <typename T, int D, bool kFp8>
__global__ void __launch_bounds__(kThreads, Cfg<D, kFp8>::kMinBlocks) decode_split_kernel(const Args a) {
  extern __shared__ __align__(128) uint8_t smem[];
  Block b;
  b.seq = blockIdx.y;
  b.split = blockIdx.x % a.num_splits;
  b.chunk = (blockIdx.x / a.num_splits) % a.row_chunks;
  b.kvh = blockIdx.x / (a.num_splits * a.row_chunks);
  b.split_begin = b.split * a.split_tokens;
  b.kv = {a.k_cache,
          a.v_cache,
          a.page_table + static_cast<int64_t>(b.seq) * a.max_pages_per_seq,
          a.max_pages_per_seq,
          a.page_shift,
          a.num_kv_heads,
          b.kvh};
  int pg[Cfg<D, kFp8>::Shape::kLoads];
  load_page_ids<typename Cfg<D, kFp8>::Shape>(b.kv, b.split_begin, pg);  // in flight while the lengths arrive
  b.q_begin = a.query_start[b.seq];
  b.q_len = a.query_start[b.seq + 1] - b.q_begin;
  b.ctx = a.context_lens[b.seq];
  // The page ids and lengths are the step's metadata (copied before its first kernel); q and the
  // cache rows come from the kernel before (RoPE + KV store), so the rest waits for it. The merge
  // grid (or the next layer's kernel) may be scheduled now; it waits for this grid itself.
  detail::pdl_wait();
  detail::pdl_trigger();
  // A row chunk past this sequence's queries writes nothing (a whole cluster: its blocks share
  // the sequence and chunk). An empty split writes nothing either (the merges skip it), but in a
  // merging cluster it stays for the cluster's barriers.
  if (b.q_len <= 0 || b.chunk * kRowsPerBlock / a.group >= b.q_len) return;
  b.active_splits = min(a.num_splits, ceil_div_dev(b.ctx, a.split_tokens));
  b.direct = b.active_splits == 1;
  const bool merging_cluster = a.cluster_merge && !b.direct;
  if (b.split >= b.active_splits) {
    if (merging_cluster) cluster_merge<T, D, kFp8>(a, b, reinterpret_cast<float*>(smem));
    return;
  }
  const bool last = b.split == a.num_splits - 1;
  b.split_end = last ? b.ctx : min(b.ctx, b.split_begin + a.split_tokens);
  Warp w;
  w.lane = threadIdx.x % 32;
  w.mtile = (threadIdx.x / 32) % a.mtiles;
  w.part = (threadIdx.x / 32) / a.mtiles;
  Acc<D> acc;
#pragma unroll
  for (int n = 0; n < D / 8; ++n) acc.o[n][0] = acc.o[n][1] = acc.o[n][2] = acc.o[n][3] = 0.f;
  acc.m[0] = acc.m[1] = -INFINITY;
  acc.l[0] = acc.l[1] = 0.f;
  stream_split<T, D, kFp8>(a, b, w, smem_u32(smem), pg, acc);
  finish_block<T, D, kFp8>(a, b, w, reinterpret_cast<float*>(smem), acc);
  if (merging_cluster) cluster_merge<T, D, kFp8>(a, b, reinterpret_cast<float*>(smem));
}

// One block per (query token, q head) row: each warp folds every 4th split's partial output by its
// log2-sum-exp2 online, loading 8 splits at once (32 splits cost one L2 round trip); then the
// warps combine through shared memory. Each lane holds kPairs pairs of dims (merge_pair_dim);
// pairs past D (head_dim 32, 80, 96) are skipped.
template <int D>
__device__ __forceinline__ int merge_pair_dim(int lane, int i) {
  if constexpr (D % 64 == 0)
    return lane * (D / 32) + 2 * i;  // D / 32 consecutive dims a lane
  else
    return 2 * lane + 64 * i;  // pairs strided by a warp's 64 dims: coalesced for any even D
}

// grid: x = max_query_len * num_q_heads, y = sequence.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads) decode_merge_kernel(const Args a) {
  constexpr int kPairs = (D + 63) / 64;  // dim pairs per lane
  constexpr int V = 2 * kPairs;          // dims per lane: acc[2i], acc[2i + 1] are merge_pair_dim(lane, i), +1
  __shared__ float s_o[kWarps][D], s_m[kWarps], s_l[kWarps];
  const int seq = blockIdx.y, qi = blockIdx.x / a.num_q_heads, head = blockIdx.x % a.num_q_heads;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  // The lengths are inputs of both grids (ready before the split grid started), so they are read
  // while the split grid still runs.
  const int q_begin = a.query_start[seq], q_len = a.query_start[seq + 1] - q_begin, ctx = a.context_lens[seq];
  const int n = min(a.num_splits, ceil_div_dev(ctx, a.split_tokens));
  // The split grid finished and its workspace writes are visible. Waited for before any return too:
  // the kernel after this one waits only for this grid, so this grid must not end before the split.
  detail::pdl_wait();
  detail::pdl_trigger();
  if (qi >= q_len || n <= 1) return;  // n == 1: the split kernel wrote this row directly
  const int64_t row0 = static_cast<int64_t>(q_begin + qi) * a.num_q_heads + head;
  const int64_t split_rows = static_cast<int64_t>(a.num_tokens) * a.num_q_heads;
  constexpr int kBatch = 8;  // splits per warp whose loads are issued together
  float acc[V] = {}, m = -INFINITY, l = 0.f;
  for (int s0 = warp; s0 < n; s0 += kWarps * kBatch) {
    float lse[kBatch], x[kBatch][V];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int s = s0 + j * kWarps;
      const int64_t row = row0 + s * split_rows;
      lse[j] = s < n ? a.part_lse[row] : -INFINITY;  // -inf also: the split is past this query's causal limit
#pragma unroll
      for (int i = 0; i < kPairs; ++i) {
        const int d = merge_pair_dim<D>(lane, i);
        *reinterpret_cast<float2*>(&x[j][2 * i]) = s < n && d < D
                                                      ? *reinterpret_cast<const float2*>(a.part_o + row * D + d)
                                                      : make_float2(0.f, 0.f);
      }
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const float m_new = fmaxf(m, lse[j]), base = m_new == -INFINITY ? 0.f : m_new;
      const float alpha = fast_exp2(m - base), wgt = fast_exp2(lse[j] - base);
      l = l * alpha + wgt;
#pragma unroll
      for (int i = 0; i < V; ++i) acc[i] = acc[i] * alpha + x[j][i] * wgt;
      m = m_new;
    }
  }
#pragma unroll
  for (int i = 0; i < kPairs; ++i) {
    const int d = merge_pair_dim<D>(lane, i);
    if (d < D) s_o[warp][d] = acc[2 * i], s_o[warp][d + 1] = acc[2 * i + 1];
  }
  if (lane == 0) s_m[warp] = m, s_l[warp] = l;
  __syncthreads();
  float m_all = -INFINITY, l_all = 0.f, f[kWarps];
#pragma unroll
  for (int w = 0; w < kWarps; ++w) m_all = fmaxf(m_all, s_m[w]);  // finite: split 0 sees position 0
#pragma unroll
  for (int w = 0; w < kWarps; ++w) f[w] = fast_exp2(s_m[w] - m_all), l_all += s_l[w] * f[w];
  const float inv = l_all > 0.f ? 1.f / l_all : 0.f;
  T* dst = static_cast<T*>(a.out) + row0 * D;
  for (int d = threadIdx.x; d < D; d += kThreads) {
    float o = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) o += s_o[w][d] * f[w];
    dst[d] = from_float<T>(o * inv);
  }
}

template <typename T, int D, bool kFp8>
void launch(const Args& a, int num_seqs, int max_query_len, cudaStream_t stream) {
  using C = Cfg<D, kFp8>;
  auto* split_kernel = decode_split_kernel<T, D, kFp8>;
  // Lift the 48 KB dynamic-smem default once per instantiation and device (not per launch: the
  // host time between a timing event and the launch counts against the latency).
  static std::atomic<uint64_t> configured{0};
  int device = 0;
  CUDA_CHECK(cudaGetDevice(&device));
  const uint64_t bit = uint64_t{1} << (device & 63);
  if (!(configured.load(std::memory_order_relaxed) & bit)) {
    CUDA_CHECK(cudaFuncSetAttribute(split_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes));
    configured.fetch_or(bit, std::memory_order_relaxed);
  }
  const dim3 grid(a.row_chunks * a.num_kv_heads * a.num_splits, num_seqs);
  detail::launch_kernel_clustered(split_kernel, grid, dim3(kThreads), C::kSmemBytes, stream,
                                  a.cluster_merge ? static_cast<unsigned>(a.num_splits) : 1u, a);
  CUDA_CHECK_LAUNCH();
  if (a.num_splits == 1 || a.cluster_merge) return;
  detail::launch_kernel(decode_merge_kernel<T, D>, dim3(max_query_len * a.num_q_heads, num_seqs), dim3(kThreads), 0,
                        stream, a);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_head_dim(const Args& a, int head_dim, bool fp8, int num_seqs, int max_query_len, cudaStream_t stream) {
  dispatch_head_dim(head_dim, [&](auto d) {
    if (fp8)
      launch<T, decltype(d)::value, true>(a, num_seqs, max_query_len, stream);
    else
      launch<T, decltype(d)::value, false>(a, num_seqs, max_query_len, stream);
  });
}

// TOKAMAK_DECODE_CLUSTER_MERGE=0 sends every split through the workspace and the merge kernel (for comparison).
bool cluster_merge_enabled() {
  static const bool enabled = env_flags().decode_cluster_merge.value_or(true);
  return enabled;
}

bool aligned(const void* ptr, size_t n) { return reinterpret_cast<uintptr_t>(ptr) % n == 0; }

size_t workspace_needed(const PagedAttentionParams& p, int num_splits) {
  if (num_splits <= 1) return 0;
  return static_cast<size_t>(num_splits) * p.num_tokens * p.num_q_heads * (p.head_dim + 1) * sizeof(float);
}

Status validate_shapes(const PagedAttentionParams& p) {
  const std::string what = "decode_attention: ";
  TK_RETURN_IF_ERROR(check_paged_attention(p, what));
  if (p.max_query_len < 1 || p.max_query_len > kMaxDecodeQueryLen)
    return unsupported(what + "max_query_len " + std::to_string(p.max_query_len) + " (1.." +
                       std::to_string(kMaxDecodeQueryLen) + "; longer queries go to prefill_attention)");
  if (p.num_seqs < 0 || p.num_seqs > 65535) return unsupported(what + "num_seqs must lie in [0, 65535]");
  if (p.num_tokens < 0 || p.num_tokens > static_cast<int64_t>(p.num_seqs) * p.max_query_len)
    return invalid_argument(what + "num_tokens must lie in [0, num_seqs * max_query_len]");
  if (p.q_stride < static_cast<int64_t>(p.num_q_heads) * p.head_dim || p.q_stride % 2 != 0)
    return invalid_argument(what + "q_stride " + std::to_string(p.q_stride) +
                            " must be even and >= num_q_heads * head_dim");
  if (!aligned(p.q, 4) || !aligned(p.k_cache, 16) || !aligned(p.v_cache, 16) || !aligned(p.out, 16))
    return invalid_argument(what + "q must be 4-byte aligned; k_cache, v_cache and out 16-byte aligned");
  return Status::ok_status();
}

Status validate_plan(const PagedAttentionParams& p, const DecodePlan& plan, const void* workspace) {
  const std::string what = "decode_attention: ";
  if (plan.num_splits < 1 || plan.split_tokens <= 0 || plan.split_tokens % p.page_size != 0)
    return invalid_argument(what + "plan needs >= 1 splits of a positive multiple of page_size tokens (got " +
                            std::to_string(plan.num_splits) + " x " + std::to_string(plan.split_tokens) + ")");
  const int64_t covered = static_cast<int64_t>(plan.num_splits) * plan.split_tokens;
  if (covered < p.max_context_len)
    return invalid_argument(what + "plan covers " + std::to_string(covered) + " tokens < max_context_len " +
                            std::to_string(p.max_context_len));
  const int64_t blocks = static_cast<int64_t>(plan.num_splits) * p.num_kv_heads *
                         ((p.num_q_heads / p.num_kv_heads * p.max_query_len + kRowsPerBlock - 1) / kRowsPerBlock);
  if (blocks > 0x7fffffff) return unsupported(what + "grid of " + std::to_string(blocks) + " blocks per sequence");
  const size_t need = workspace_needed(p, plan.num_splits);
  if (need > 0 && (plan.workspace_bytes < need || !workspace || !aligned(workspace, 16)))
    return invalid_argument(what + "workspace too small or unaligned: " + std::to_string(plan.num_splits) +
                            " splits need " + std::to_string(need) +
                            " bytes (16-byte aligned), plan.workspace_bytes is " +
                            std::to_string(plan.workspace_bytes));
  return Status::ok_status();
}

}  // namespace

// NOTE: the grids are sized from max_query_len; every sequence must have query_len <=
// max_query_len, context_lens[s] >= its query_len, and page_table entries for [0, context_lens[s]).
Status decode_attention(const PagedAttentionParams& p, const DecodePlan& plan, void* workspace, cudaStream_t stream) {
  if (p.num_seqs == 0 || p.num_tokens == 0) return Status::ok_status();
  TK_RETURN_IF_ERROR(validate_shapes(p));
  TK_RETURN_IF_ERROR(validate_plan(p, plan, workspace));
  Args a;
  a.q = p.q, a.q_stride = p.q_stride, a.k_cache = p.k_cache, a.v_cache = p.v_cache, a.out = p.out;
  a.part_o = plan.num_splits > 1 ? static_cast<float*>(workspace) : nullptr;
  a.part_lse =
      a.part_o ? a.part_o + static_cast<size_t>(plan.num_splits) * p.num_tokens * p.num_q_heads * p.head_dim : nullptr;
  a.query_start = p.query_start, a.context_lens = p.context_lens, a.page_table = p.page_table;
  a.max_pages_per_seq = p.max_pages_per_seq, a.num_tokens = p.num_tokens;
  a.page_shift = __builtin_ctz(static_cast<unsigned>(p.page_size));
  a.num_q_heads = p.num_q_heads, a.num_kv_heads = p.num_kv_heads, a.group = p.num_q_heads / p.num_kv_heads;
  a.rows = a.group * p.max_query_len;
  a.row_chunks = (a.rows + kRowsPerBlock - 1) / kRowsPerBlock;
  const int tiles = (std::min(a.rows, kRowsPerBlock) + 15) / 16;
  a.mtiles = tiles <= 1 ? 1 : (tiles <= 2 ? 2 : 4);
  a.num_splits = plan.num_splits, a.split_tokens = plan.split_tokens;
  a.cluster_merge = plan.num_splits >= 2 && plan.num_splits <= kMaxClusterSplits && cluster_merge_enabled();
  a.scale_log2 = p.scale * kLog2e;
  a.v_scale = 1.f;
  if (p.kv_quant.fp8) a.scale_log2 *= p.kv_quant.k_scale, a.v_scale = p.kv_quant.v_scale;
  if (p.dtype == DType::kBF16)
    launch_head_dim<__nv_bfloat16>(a, p.head_dim, p.kv_quant.fp8, p.num_seqs, p.max_query_len, stream);
  else
    launch_head_dim<__half>(a, p.head_dim, p.kv_quant.fp8, p.num_seqs, p.max_query_len, stream);
  return Status::ok_status();
}

}  // namespace tk::kernels
