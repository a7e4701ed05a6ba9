// Prefill attention for head_dim 128 on Hopper (sm_90a): the FlashAttention algorithm of
// attention_prefill.cu on warpgroup MMAs. Persistent blocks (one per SM) walk work items of 128
// query rows of one (sequence, q head), 64 rows a warpgroup; K/V tiles of 128 cache positions come from the paged
// cache by cp.async into 128-byte-swizzled shared memory, three stages deep. Per tile a warpgroup
// issues S = Q K^T (wgmma, Q and K from shared memory) and, in the same breath, O += P V of the
// PREVIOUS tile (P from registers, V from shared memory); the softmax of this tile runs on the
// CUDA cores while that P V runs on the tensor cores (FlashAttention-3's intra-warpgroup overlap).
// So V of tile j - 1 is read while tile j + 1 loads: three stages. fp32 accumulators and softmax.
#include <algorithm>
#include <cmath>

#include "attention_prefill_sm90.h"
#include "cuda/cuda.h"
#include "prefill_common.cuh"
#include "wgmma.cuh"

namespace tk::kernels {
namespace {

using tile::cp_async_16;
using tile::cp_async_commit;
using tile::cp_async_wait;
using tile::fast_exp2;
using tile::pack2;
using tile::smem_u32;
using prefill::Args;
using prefill::Tile;

constexpr int kD = 128;
constexpr int kBM = 128;  // query rows per block
constexpr int kBN = 128;  // cache positions per tile
constexpr int kWarpgroups = kBM / 64;
constexpr int kThreads = kWarpgroups * 128;
constexpr int kStages = 3;
constexpr int kAtomBytes = 128;                 // one swizzle-atom row: 64 values
constexpr int kTileBytes = kBN * kD * 2;        // one K or V tile: 32 KB
constexpr int kQBytes = kBM * kD * 2;           // 32 KB
constexpr int kSmemBytes = kQBytes + kStages * 2 * kTileBytes + 1024;  // + alignment slack
constexpr int kChunksPerRow = kD / 8;           // 16-byte chunks
constexpr int kRowsPerPass = kThreads / kChunksPerRow;
static_assert(kBN == kBM, "Q and K/V tiles share one loader");

// Byte offset of 16-byte chunk c of row r in a swizzled [rows][128] tile (see wgmma.cuh).
__device__ __forceinline__ uint32_t swizzled(int r, int c, int rows) {
  return (c >> 3) * rows * kAtomBytes + r * kAtomBytes + (((c & 7) ^ (r & 7)) << 4);
}

// Q rows [m0, m0 + 128) -> sq; rows past the sequence are zeros.
template <typename T>
__device__ void load_q(const Args& a, const Tile& t, uint32_t sq) {
  const int c = threadIdx.x % kChunksPerRow, r0 = threadIdx.x / kChunksPerRow;
  const T* base = static_cast<const T*>(a.q) + static_cast<int64_t>(t.head) * kD + c * 8;
#pragma unroll
  for (int i = 0; i < kBM / kRowsPerPass; ++i) {
    const int r = r0 + i * kRowsPerPass;
    const bool valid = r < t.rows;
    cp_async_16(sq + swizzled(r, c, kBM), valid ? base + static_cast<int64_t>(t.q0 + t.m0 + r) * a.q_stride : base,
                valid);
  }
}

// Cache positions [128 j, 128 j + 128) of the block's kv head -> sk, sv; past kv_len: zeros.
template <typename T>
__device__ void load_kv(const Args& a, const Tile& t, int j, uint32_t sk, uint32_t sv) {
  const int c = threadIdx.x % kChunksPerRow, r0 = threadIdx.x / kChunksPerRow;
  const int32_t* pages = a.page_table + static_cast<int64_t>(t.seq) * a.max_pages_per_seq;
  const int in_page = (1 << a.page_shift) - 1;
  const T* k = static_cast<const T*>(a.k_cache) + c * 8;
  const T* v = static_cast<const T*>(a.v_cache) + c * 8;
#pragma unroll
  for (int i = 0; i < kBN / kRowsPerPass; ++i) {
    const int r = r0 + i * kRowsPerPass, pos = j * kBN + r;
    const bool valid = pos < t.kv_len;
    const int src = valid ? pos : t.kv_len - 1;  // never dereferenced when !valid
    const int64_t page = pages[src >> a.page_shift];
    const int64_t off = (((page * a.num_kv_heads + t.kv_head) << a.page_shift) + (src & in_page)) * kD;
    const uint32_t dst = swizzled(r, c, kBN);
    cp_async_16(sk + dst, k + off, valid);
    cp_async_16(sv + dst, v + off, valid);
  }
}

// Per-thread state of one warpgroup's 64 rows: the thread holds rows g and g + 8 of its warp's 16.
struct Softmax {
  float m[2], l[2];  // running max (already scaled to log2 units) and this lane's partial row sum
};

// S = Q K^T for the warpgroup's 64 rows against 128 cached positions: 8 k16 steps, each
// advancing both descriptors 32 bytes within the swizzle atom (then to the next atom column).
template <typename T>
__device__ __forceinline__ void issue_scores(float (&s)[64], uint32_t sq_wg, uint32_t sk) {
#pragma unroll
  for (int ks = 0; ks < kD / 16; ++ks) {
    const uint32_t koff = (ks >> 2) * kBN * kAtomBytes + (ks & 3) * 32;
    const uint32_t qoff = (ks >> 2) * kBM * kAtomBytes + (ks & 3) * 32;
    wgmma::mma_ss<T>(s, wgmma::smem_desc(sq_wg + qoff, 16, 8 * kAtomBytes), wgmma::smem_desc(sk + koff, 16, 8 * kAtomBytes),
                     ks > 0);
  }
}

// O += P V: 8 k16 steps of 16 cached positions; V is MN-major (positions x 128 contiguous dims):
// 64-dim column blocks kBN * 128 bytes apart, 8-position groups 1024 bytes apart.
template <typename T>
__device__ __forceinline__ void issue_pv(float (&o)[64], const uint32_t (&p)[8][4], uint32_t sv) {
#pragma unroll
  for (int kk = 0; kk < kBN / 16; ++kk)
    wgmma::mma_rs<T>(o, p[kk], wgmma::smem_desc(sv + kk * 16 * kAtomBytes, kBN * kAtomBytes, 8 * kAtomBytes), 1);
}

// Causal mask: score (row, col) survives when col <= limit(row). limit0: the limit of the thread's
// row g; col0: the tile's first position + 2q.
__device__ __forceinline__ void mask_scores(float (&s)[64], int limit0, int col0) {
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int n = 0; n < 16; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (col0 + n * 8 + e > limit0 + 8 * h) s[4 * n + 2 * h + e] = -INFINITY;
}

// Online softmax of one tile: s becomes P (unnormalised, in place); returns the O rescale of
// each of the thread's two rows.
__device__ __forceinline__ void online_softmax(float (&s)[64], Softmax& st, float scale_log2, float (&alpha)[2]) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = -INFINITY;
#pragma unroll
    for (int n = 0; n < 16; ++n) mx = fmaxf(mx, fmaxf(s[4 * n + 2 * h], s[4 * n + 2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(st.m[h], mx * scale_log2);
    const float m_use = m_new == -INFINITY ? 0.f : m_new;  // nothing visible yet: avoid inf - inf
    alpha[h] = fast_exp2(st.m[h] - m_use);
    st.m[h] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int n = 0; n < 16; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float p = fast_exp2(fmaf(s[4 * n + 2 * h + e], scale_log2, -m_use));
        s[4 * n + 2 * h + e] = p;
        sum += p;
      }
    st.l[h] = st.l[h] * alpha[h] + sum;
  }
}

// The S accumulators of n8 tiles 2kk and 2kk + 1 are the A fragment of k16 step kk of P V.
template <typename T>
__device__ __forceinline__ void scores_to_p(const float (&s)[64], uint32_t (&p)[8][4]) {
#pragma unroll
  for (int kk = 0; kk < 8; ++kk) {
    p[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
    p[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
    p[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
    p[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
  }
}

template <typename T>
__device__ void store_output(const Args& a, const Tile& t, const float (&o)[64], Softmax& st, int wg_row0) {
  const int lane = threadIdx.x % 32, warp_in_wg = (threadIdx.x / 32) % 4;
  const int64_t out_stride = static_cast<int64_t>(a.num_q_heads) * kD;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = st.l[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const float inv = l > 0.f ? 1.f / l : 0.f;
    const int r = wg_row0 + warp_in_wg * 16 + (lane >> 2) + 8 * h;
    if (r >= t.rows) continue;
    T* dst = static_cast<T*>(a.out) + static_cast<int64_t>(t.q0 + t.m0 + r) * out_stride +
             static_cast<int64_t>(t.head) * kD + (lane & 3) * 2;
#pragma unroll
    for (int n = 0; n < 16; ++n)
      *reinterpret_cast<uint32_t*>(dst + n * 8) = pack2<T>(o[4 * n + 2 * h] * inv, o[4 * n + 2 * h + 1] * inv);
  }
}

// Work items: (q head, sequence, row block), row blocks counted from the end of the longest
// sequence so that the items with the most K/V come first; q head varies fastest.
struct Items {
  int num_heads, num_seqs, row_blocks;
  __device__ int total() const { return num_heads * num_seqs * row_blocks; }
};

// Item w as a tile; false when that row block lies past its sequence's end.
__device__ __forceinline__ bool make_tile(const Args& a, const Items& it, int w, Tile& t) {
  const int m0 = (it.row_blocks - 1 - w / (it.num_heads * it.num_seqs)) * kBM;
  return prefill::make_tile(a, (w / it.num_heads) % it.num_seqs, w % it.num_heads, m0, kBM, t);
}

// The block's k-th item in a snake order over the grid: rounds of gridDim.x items, walked forwards
// in even rounds and backwards in odd ones. Items come sorted by cost (most K/V first), so each
// block's sum evens out: plain striding hands the first blocks the dearer item of every round.
__device__ __forceinline__ int item_of(int k) {
  return k * gridDim.x + ((k & 1) ? gridDim.x - 1 - blockIdx.x : blockIdx.x);
}

// The block's first item from its k-th on that has rows; false when none is left.
__device__ __forceinline__ bool next_tile(const Args& a, const Items& it, int& k, Tile& t) {
  for (; static_cast<int64_t>(k) * gridDim.x < it.total(); ++k) {
    const int w = item_of(k);
    if (w < it.total() && make_tile(a, it, w, t)) return true;
  }
  return false;
}

__device__ __forceinline__ int tiles_of(const Tile& t) { return (t.off + t.m0 + t.rows + kBN - 1) / kBN; }

// Persistent: one block per SM walks its items (item_of). The K/V tiles of
// all its items form one stream through the three stages, so the next item's first tile loads
// while the current item finishes, and its Q while the current item's last P V runs: no block
// pays a cold start per item (a 1024-token prompt has items of 1 to 8 tiles).
template <typename T>
__global__ void __launch_bounds__(kThreads, 1) prefill_sm90_kernel(const Args a, const Items items) {
  extern __shared__ uint8_t smem_raw[];
  int k = 0;
  Tile t;
  if (!next_tile(a, items, k, t)) return;

  const uint32_t sq = (smem_u32(smem_raw) + 1023) & ~1023u;  // swizzle atoms are 1024-byte aligned
  const uint32_t skv = sq + kQBytes;                          // stage s: K at skv + s * 2 * kTileBytes, V after
  const int wg = threadIdx.x / 128, lane = threadIdx.x % 32, warp_in_wg = (threadIdx.x / 32) % 4;
  const int wg_row0 = wg * 64;
  const uint32_t sq_wg = sq + wg_row0 * kAtomBytes;
  auto stage_of = [&](int g) { return skv + (g % kStages) * 2 * kTileBytes; };

  load_q<T>(a, t, sq);
  load_kv<T>(a, t, 0, stage_of(0), stage_of(0) + kTileBytes);
  cp_async_commit();

  int g = 0;  // the block's running tile count: tile g lives in stage g % kStages
  float o[64], s[64];
  uint32_t p[8][4];
  while (true) {
    int k_next;
    Tile nt;  // the item after this one, when has_next
    bool has_next = false;
    // Tiles of this item. Both warpgroups visit all of them (the wgmma instructions must not sit
    // behind a branch ptxas cannot prove uniform, or it serialises them); a tile past a
    // warpgroup's diagonal is fully masked there and adds P = 0.
    const int n_tiles = tiles_of(t);
    const int first_limit = t.off + t.m0 + wg_row0;  // the warpgroup's first row sees [0, first_limit]
    const int thread_limit = first_limit + warp_in_wg * 16 + (lane >> 2);
#pragma unroll
    for (int i = 0; i < 64; ++i) o[i] = 0.f;
    Softmax st;
    st.m[0] = st.m[1] = -INFINITY;
    st.l[0] = st.l[1] = 0.f;
    // Tile j of this item (block tile g) landed for every thread, and everyone left the tile before.
    auto arrive_tile = [&] {
      cp_async_wait<0>();
      wgmma::fence_proxy_async();
      __syncthreads();
    };
    // The next tile of the stream into the stage of tile g - 2, whose K and V nobody reads any
    // more. Called after the tile's MMAs are issued: its page-table reads stall the issuing
    // thread, and the tensor cores should not wait for them.
    auto stage_next = [&](int j) {
      if (j + 1 < n_tiles)
        load_kv<T>(a, t, j + 1, stage_of(g + 1), stage_of(g + 1) + kTileBytes);
      else if (has_next)
        load_kv<T>(a, nt, 0, stage_of(g + 1), stage_of(g + 1) + kTileBytes);
      cp_async_commit();
    };
    auto softmax_tile = [&](int j, float (&alpha)[2]) {
      wgmma::fence_operands(s);
      if ((j + 1) * kBN - 1 > first_limit) mask_scores(s, thread_limit, j * kBN + (lane & 3) * 2);
      online_softmax(s, st, a.scale_log2, alpha);
    };

    arrive_tile();
    wgmma::fence();
    issue_scores<T>(s, sq_wg, stage_of(g));
    wgmma::commit();
    // The item after this one; its metadata reads stall only this thread while S runs, long
    // before its first tile is staged.
    k_next = k + 1;
    has_next = next_tile(a, items, k_next, nt);
    stage_next(0);
    {
      wgmma::wait<0>();
      float alpha[2];
      softmax_tile(0, alpha);  // O is still zero: no rescale
      scores_to_p<T>(s, p);
    }
    for (int j = 1; j < n_tiles; ++j) {
      ++g;
      arrive_tile();
      wgmma::fence_operands(o);
      wgmma::fence();
      issue_scores<T>(s, sq_wg, stage_of(g));
      wgmma::commit();
      issue_pv<T>(o, p, stage_of(g - 1) + kTileBytes);  // the previous tile's P V overlaps this softmax
      wgmma::commit();
      stage_next(j);
      wgmma::wait<1>();  // S landed; P V may still run
      float alpha[2];
      softmax_tile(j, alpha);
      wgmma::wait<0>();  // the previous P V is done with o and p
      wgmma::fence_operands(o);
#pragma unroll
      for (int n = 0; n < 16; ++n) {
        o[4 * n] *= alpha[0], o[4 * n + 1] *= alpha[0];
        o[4 * n + 2] *= alpha[1], o[4 * n + 3] *= alpha[1];
      }
      scores_to_p<T>(s, p);
    }
    wgmma::fence_operands(o);
    wgmma::fence();
    issue_pv<T>(o, p, stage_of(g) + kTileBytes);
    wgmma::commit();
    if (has_next) {  // every S of this item is done: Q is free for the next item's rows
      __syncthreads();
      load_q<T>(a, nt, sq);
      cp_async_commit();
    }
    wgmma::wait<0>();
    wgmma::fence_operands(o);
    if (t.rows > wg_row0) store_output<T>(a, t, o, st, wg_row0);
    if (!has_next) break;
    t = nt;
    k = k_next;
    ++g;
  }
}

// The current device's properties, looked up once (the launcher runs per layer and step).
const DeviceInfo& launch_device() {
  static const DeviceInfo info = [] {
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    return device_info(device);
  }();
  return info;
}

template <typename T>
void launch(const Args& a, const PagedAttentionParams& p, cudaStream_t stream) {
  auto* kernel = prefill_sm90_kernel<T>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  Items items;
  items.num_heads = p.num_q_heads, items.num_seqs = p.num_seqs;
  items.row_blocks = (p.max_query_len + kBM - 1) / kBM;
  const int64_t total = static_cast<int64_t>(items.num_heads) * items.num_seqs * items.row_blocks;
  // Persistent beat one block per item on the H200 at all three bar shapes (2026-11-21: 268-280
  // vs 240 TFLOP/s at 16x1024, 377 vs 368 at 4x4096, 408 vs 407 at 1x16384).
  const int grid = static_cast<int>(std::min<int64_t>(total, launch_device().sm_count));
  kernel<<<grid, kThreads, kSmemBytes, stream>>>(a, items);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool prefill_sm90_supports(const PagedAttentionParams& p) {
  if (p.head_dim != kD || p.kv_quant.fp8) return false;  // an FP8 KV cache goes to the mma.sync kernel
  const int64_t items = static_cast<int64_t>(p.num_q_heads) * p.num_seqs * ((p.max_query_len + kBM - 1) / kBM);
  if (items > (int64_t{1} << 30)) return false;  // item indices stay in int range
  return launch_device().cc_major == 9;
}

void prefill_sm90(const PagedAttentionParams& p, cudaStream_t stream) {
  const Args a = prefill::make_args(p);
  if (p.dtype == DType::kBF16)
    launch<__nv_bfloat16>(a, p, stream);
  else
    launch<__half>(a, p, stream);
}

}  // namespace tk::kernels
