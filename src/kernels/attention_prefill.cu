// FlashAttention-2 prefill over the paged KV cache. One block owns kBM query rows of one
// (sequence, q head); it walks the sequence's K/V in tiles of kBN tokens, staged through shared
// memory by cp.async two tiles deep, computes S = Q K^T and O += P V on the tensor cores
// (mma.sync m16n8k16, fp32 accumulators) and keeps the softmax online in fp32 registers, so the
// L x C score matrix never exists. Causal: tiles above the diagonal are never visited and only the
// tiles that cross it are masked. Each warp owns 16 * kMTiles rows: two m16 tiles for head_dim
// <= 128, so every K/V fragment read from shared memory feeds two MMAs (shared-memory bandwidth,
// not the tensor cores, is what bounds a one-tile-per-warp layout). An FP8 KV cache (kFp8) stages
// the raw e4m3 tiles, converts the fragments in registers and runs the MMAs in fp16 with Q held as
// fp16 in shared memory, dims permuted to the order the fp8 reads give (attention_common.cuh
// explains both permutations); k_scale is in scale_log2, v_scale applied at the store.
#include <cmath>
#include <string>

#include "cuda/cuda.h"
#include "kernels/kernels.h"
#include "attention_checks.h"
#include "attention_prefill_sm90.h"
#include "kv_fp8.cuh"
#include "prefill_common.cuh"

namespace tk::kernels {
namespace {

using namespace prefill;

// Tile shapes per head_dim; four warps. Shared memory: Q [kBM, W] + K,V [2 stages][kBN, W], W the
// shared row of smem_row_chunks(D) chunks (D itself for 64, 128, 256; 128 for 80 and 96, 64 for 32).
//   D=32, 64: 128x64 tiles, 48 KB;  D=80, 96, 128: 128x64 tiles, 96 KB (two blocks per SM);
//   D=256: 64x32 tiles, 96 KB (O alone takes 128 registers a thread, so one m16 tile a warp).
template <int D, bool kFp8 = false>
struct Cfg {
  static_assert(D % 16 == 0 && D >= 32 && D <= 256, "head_dim a multiple of 16 in [32, 256]");
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kMTiles = D <= 128 ? 2 : 1;  // m16 tiles per warp
  static constexpr int kWarpRows = 16 * kMTiles;
  static constexpr int kBM = kWarps * kWarpRows;
  static constexpr int kBN = D <= 128 ? 64 : 32;
  static constexpr int kHeadChunks = D / 8;              // 16-byte chunks of one row's head
  static constexpr int kChunks = smem_row_chunks(D);     // 16-byte chunks per shared row (>= kHeadChunks)
  static constexpr int kRowBytes = kChunks * 16;
  static constexpr int kNT = kBN / 8;  // n8 tiles of S per m16 tile
  static constexpr int kDT = D / 8;    // n8 tiles of O per m16 tile
  static constexpr int kRowsPerPass = kThreads / kChunks;
  // K/V rows: D values of 2 bytes, or of 1 (fp8: smem_row_chunks(D / 2) chunks, at least 8).
  static constexpr int kKvHeadChunks = kFp8 ? D / 16 : kHeadChunks;
  static constexpr int kKvChunks = kFp8 ? smem_row_chunks(D / 2) : kChunks;
  static constexpr int kKvRowBytes = kKvChunks * 16;
  static constexpr int kKvRowsPerPass = kThreads / kKvChunks;
  static constexpr int kKvStageBytes = kBN * kKvRowBytes;
  static constexpr int kSmemBytes = kBM * kRowBytes + 4 * kKvStageBytes;
  static_assert(kBN % kKvRowsPerPass == 0 && kBM % kRowsPerPass == 0, "loads must tile evenly");
};

// Grid (q head, sequence, row tile); z runs backwards so the tiles with the most K/V (the last
// rows of each sequence) start first and the short ones fill the tail.
template <int D>
__device__ bool make_tile(const Args& a, Tile& t) {
  return make_tile(a, blockIdx.y, blockIdx.x, (gridDim.z - 1 - blockIdx.z) * Cfg<D>::kBM, Cfg<D>::kBM, t);
}

// Byte offset of (row r0 + i * kRowsPerPass, chunk) in a swizzled tile. When the pass stride is a
// multiple of 8 rows, row % 8 is the same in every pass and the offset is one register plus an
// immediate, instead of one register per pass held across the whole main loop.
template <int kChunks, int kRowsPerPass>
__device__ __forceinline__ uint32_t tile_offset(int r0, int i, int chunk) {
  if constexpr (kRowsPerPass % 8 == 0)
    return swizzle<kChunks>(r0, chunk) * 16 + i * kRowsPerPass * kChunks * 16;
  else
    return swizzle<kChunks>(r0 + i * kRowsPerPass, chunk) * 16;
}

// Q rows [m0, m0 + kBM) -> sq (swizzled); rows past the sequence are zero-filled.
template <typename T, int D>
__device__ void load_q(const Args& a, const Tile& t, uint32_t sq) {
  using C = Cfg<D>;
  const int chunk = threadIdx.x % C::kChunks;
  if (chunk >= C::kHeadChunks) return;  // padding of the shared row: never read
  const T* base = static_cast<const T*>(a.q) + static_cast<int64_t>(t.head) * D + chunk * 8;
  const int r0 = threadIdx.x / C::kChunks;
#pragma unroll
  for (int i = 0; i < C::kBM / C::kRowsPerPass; ++i) {
    const int r = r0 + i * C::kRowsPerPass;
    const bool valid = r < t.rows;
    const T* src = valid ? base + static_cast<int64_t>(t.q0 + t.m0 + r) * a.q_stride : base;
    cp_async_16(sq + tile_offset<C::kChunks, C::kRowsPerPass>(r0, i, chunk), src, valid);
  }
}

// The FP8 path's Q: rows [m0, m0 + kBM) as fp16 (bf16 saturated), each 16-dim group stored as
// dims (0,1),(4,5),(8,9),(12,13) then (2,3),(6,7),(10,11),(14,15), so that compute_scores_fp8's
// standard ldmatrix hands lane q dims 4q, 4q+1 (a0) and 4q+2, 4q+3 (a2): the order of the raw
// fp8 K fragments. Plain loads and shared stores (made visible by the main loop's first barrier).
template <typename T, int D>
__device__ void load_q_fp8(const Args& a, const Tile& t, uint32_t sq) {
  using C = Cfg<D, true>;
  constexpr int kGroups = D / 16;
  for (int u = threadIdx.x; u < C::kBM * kGroups; u += C::kThreads) {
    const int r = u / kGroups, grp = u % kGroups;
    uint4 lo = make_uint4(0, 0, 0, 0), hi = lo;
    if (r < t.rows) {
      const T* src = static_cast<const T*>(a.q) + static_cast<int64_t>(t.q0 + t.m0 + r) * a.q_stride +
                     static_cast<int64_t>(t.head) * D + grp * 16;
      const uint4 x0 = *reinterpret_cast<const uint4*>(src), x1 = *reinterpret_cast<const uint4*>(src + 8);
      // pairs p0..p7 = dims (0,1) .. (14,15): lo = p0 p2 p4 p6, hi = p1 p3 p5 p7
      lo = make_uint4(to_half2<T>(x0.x), to_half2<T>(x0.z), to_half2<T>(x1.x),
                      to_half2<T>(x1.z));
      hi = make_uint4(to_half2<T>(x0.y), to_half2<T>(x0.w), to_half2<T>(x1.y),
                      to_half2<T>(x1.w));
    }
    asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(sq + swizzle<C::kChunks>(r, 2 * grp) * 16),
                 "r"(lo.x), "r"(lo.y), "r"(lo.z), "r"(lo.w) : "memory");
    asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(sq + swizzle<C::kChunks>(r, 2 * grp + 1) * 16),
                 "r"(hi.x), "r"(hi.y), "r"(hi.z), "r"(hi.w) : "memory");
  }
}

// Cache positions [tile * kBN, tile * kBN + kBN) of the block's kv head -> sk, sv (swizzled).
// Each row's page comes from the page table, so any page size and any scatter of pages works;
// positions at or past kv_len are zero-filled and read only page-table entries of the context.
// fp8: the raw bytes, rows of kKvChunks chunks.
template <typename T, int D, bool kFp8>
__device__ void load_kv(const Args& a, const Tile& t, int tile, uint32_t sk, uint32_t sv) {
  using C = Cfg<D, kFp8>;
  using E = std::conditional_t<kFp8, uint8_t, T>;
  const int chunk = threadIdx.x % C::kKvChunks;
  if (chunk >= C::kKvHeadChunks) return;  // padding of the shared row: never read
  const int32_t* pages = a.page_table + static_cast<int64_t>(t.seq) * a.max_pages_per_seq;
  const int in_page_mask = (1 << a.page_shift) - 1;
  const E* k = static_cast<const E*>(a.k_cache) + chunk * (16 / sizeof(E));
  const E* v = static_cast<const E*>(a.v_cache) + chunk * (16 / sizeof(E));
  const int r0 = threadIdx.x / C::kKvChunks;
#pragma unroll
  for (int i = 0; i < C::kBN / C::kKvRowsPerPass; ++i) {
    const int r = r0 + i * C::kKvRowsPerPass;
    const int pos = tile * C::kBN + r;
    const bool valid = pos < t.kv_len;
    // Past the end, read the last valid position's page entry instead (kv_len >= 1 here): no
    // branch, and the zero-filling copy never dereferences the address anyway.
    const int src_pos = valid ? pos : t.kv_len - 1;
    const int64_t page = pages[src_pos >> a.page_shift];
    const int64_t off = (((page * a.num_kv_heads + t.kv_head) << a.page_shift) + (src_pos & in_page_mask)) * D;
    const uint32_t dst = tile_offset<C::kKvChunks, C::kKvRowsPerPass>(r0, i, chunk);
    cp_async_16(sk + dst, k + off, valid);
    cp_async_16(sv + dst, v + off, valid);
  }
}

// S = Q K^T for the warp's rows against the tile's kBN tokens. s[mt][n] is the m16 x n8 tile
// (mt, n) in the accumulator layout. Every ldmatrix row address XORs its chunk with lane % 8,
// because the rows an 8-lane group addresses are 8 consecutive rows (row % 8 == lane % 8).
template <typename T, int D>
__device__ void compute_scores(float (&s)[Cfg<D>::kMTiles][Cfg<D>::kNT][4], uint32_t sq, uint32_t sk, int warp,
                               int lane) {
  using C = Cfg<D>;
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt)
#pragma unroll
    for (int n = 0; n < C::kNT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
  const int x = lane & 7;
  // A (Q): matrices (rows 0-7, k lo), (rows 8-15, k lo), (rows 0-7, k hi), (rows 8-15, k hi).
  const uint32_t q_row = sq + (warp * C::kWarpRows + (lane & 15)) * C::kRowBytes;
  const int q_hi = lane >> 4;
  // B (K rows = tokens): matrices (tokens 0-7, k lo), (0-7, k hi), (8-15, k lo), (8-15, k hi):
  // b0, b1 of n8 tile 2np, then b0, b1 of tile 2np + 1.
  const uint32_t k_row = sk + ((lane >> 4) * 8 + x) * C::kRowBytes;
  const int k_hi = (lane >> 3) & 1;
#pragma unroll
  for (int ks = 0; ks < D / 16; ++ks) {
    uint32_t qa[C::kMTiles][4];
#pragma unroll
    for (int mt = 0; mt < C::kMTiles; ++mt)
      ldmatrix_x4(q_row + mt * 16 * C::kRowBytes + (((2 * ks + q_hi) ^ x) << 4), qa[mt]);
#pragma unroll
    for (int np = 0; np < C::kNT / 2; ++np) {
      uint32_t kb[4];
      ldmatrix_x4(k_row + np * 16 * C::kRowBytes + (((2 * ks + k_hi) ^ x) << 4), kb);
#pragma unroll
      for (int mt = 0; mt < C::kMTiles; ++mt) {
        mma_16816<T>(s[mt][2 * np], qa[mt], kb[0], kb[1]);
        mma_16816<T>(s[mt][2 * np + 1], qa[mt], kb[2], kb[3]);
      }
    }
  }
}

// compute_scores over a raw fp8 K tile (rows of kKvChunks chunks) and the permuted fp16 Q tile:
// one ldmatrix of K covers two 16-dim steps of 16 tokens, (tokens 0-7, chunk c), (8-15, c),
// (0-7, c + 1), (8-15, c + 1), each register two pairs of dims (kv_fp8.cuh).
template <int D>
__device__ void compute_scores_fp8(float (&s)[Cfg<D, true>::kMTiles][Cfg<D, true>::kNT][4], uint32_t sq, uint32_t sk,
                                   int warp, int lane) {
  using C = Cfg<D, true>;
  constexpr int kSteps = D / 16;
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt)
#pragma unroll
    for (int n = 0; n < C::kNT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.f;
  const int x = lane & 7;
  const uint32_t q_row = sq + (warp * C::kWarpRows + (lane & 15)) * C::kRowBytes;
  const int q_hi = lane >> 4;
  const uint32_t k_row = sk + (((lane >> 3) & 1) * 8 + x) * C::kKvRowBytes;
  const int k_chunk = lane >> 4;
#pragma unroll
  for (int c = 0; c < kSteps; c += 2) {
    uint32_t qa[2][C::kMTiles][4];
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int mt = 0; mt < C::kMTiles; ++mt)
        if (c + j < kSteps) ldmatrix_x4(q_row + mt * 16 * C::kRowBytes + (((2 * (c + j) + q_hi) ^ x) << 4), qa[j][mt]);
#pragma unroll
    for (int np = 0; np < C::kNT / 2; ++np) {
      uint32_t kb[4];
      ldmatrix_x4(k_row + np * 16 * C::kKvRowBytes + (((c + k_chunk) ^ x) << 4), kb);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (c + j >= kSteps) break;  // head_dim 80: the pair's second chunk is row padding
        const uint32_t b00 = fp8x2_to_half2(kb[2 * j]), b01 = fp8x2_to_half2(kb[2 * j] >> 16);
        const uint32_t b10 = fp8x2_to_half2(kb[2 * j + 1]), b11 = fp8x2_to_half2(kb[2 * j + 1] >> 16);
#pragma unroll
        for (int mt = 0; mt < C::kMTiles; ++mt) {
          mma_16816<__half>(s[mt][2 * np], qa[j][mt], b00, b01);
          mma_16816<__half>(s[mt][2 * np + 1], qa[j][mt], b10, b11);
        }
      }
    }
  }
}

// Causal mask of a tile that crosses the diagonal: score (row, col) is kept when col <= off +
// row. `limit0` is off + the warp's first row + g; `col0` is the tile's first column + 2q.
template <int D>
__device__ void mask_scores(float (&s)[Cfg<D>::kMTiles][Cfg<D>::kNT][4], int limit0, int col0) {
  using C = Cfg<D>;
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int limit = limit0 + mt * 16 + h * 8;
#pragma unroll
      for (int n = 0; n < C::kNT; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (col0 + n * 8 + e > limit) s[mt][n][2 * h + e] = -INFINITY;
    }
}

// Online softmax for one tile. Each thread holds two rows per m16 tile (g and g + 8, h = 0/1);
// a row's 8 columns per n8 tile live in the 4 lanes of a quad, hence the xor-1/2 shuffles.
// m_run is kept pre-multiplied by scale*log2(e); l_run is this lane's partial row sum (the quad
// shares alpha, so the partial sums are reduced once at the end). Scores become probabilities
// in place.
template <int D>
__device__ void online_softmax(float (&s)[Cfg<D>::kMTiles][Cfg<D>::kNT][4], float (&o)[Cfg<D>::kMTiles][Cfg<D>::kDT][4],
                               float (&m_run)[Cfg<D>::kMTiles][2], float (&l_run)[Cfg<D>::kMTiles][2],
                               float scale_log2) {
  using C = Cfg<D>;
  float alpha[C::kMTiles][2];
  bool rescale = false;
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = -INFINITY;
#pragma unroll
      for (int n = 0; n < C::kNT; ++n) mx = fmaxf(mx, fmaxf(s[mt][n][2 * h], s[mt][n][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float m_new = fmaxf(m_run[mt][h], mx * scale_log2);
      // A row with nothing visible yet keeps m = -inf; subtracting 0 avoids inf - inf = NaN.
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      alpha[mt][h] = fast_exp2(m_run[mt][h] - m_use);
      rescale |= m_new != m_run[mt][h];
      m_run[mt][h] = m_new;
      float sum = 0.f;
#pragma unroll
      for (int n = 0; n < C::kNT; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float p = fast_exp2(fmaf(s[mt][n][2 * h + e], scale_log2, -m_use));
          s[mt][n][2 * h + e] = p;
          sum += p;
        }
      l_run[mt][h] = l_run[mt][h] * alpha[mt][h] + sum;
    }
  // Once the running maxima settle (most tiles of a long row), alpha is exactly 1 for every row
  // of the warp and the O rescale (kMTiles * D / 2 multiplies a lane) is skipped; the vote keeps
  // the branch warp-uniform.
  if (!__any_sync(0xffffffffu, rescale)) return;
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt)
#pragma unroll
    for (int dt = 0; dt < C::kDT; ++dt) {
      o[mt][dt][0] *= alpha[mt][0];
      o[mt][dt][1] *= alpha[mt][0];
      o[mt][dt][2] *= alpha[mt][1];
      o[mt][dt][3] *= alpha[mt][1];
    }
}

// The A fragments (in M) of P for k16 step kk: the S accumulators of n8 tiles 2kk and 2kk + 1
// (a0: row g / tile 2kk, a1: row g+8 / 2kk, a2: row g / 2kk+1, a3: row g+8 / 2kk+1).
template <typename M, int kMTiles, int kNT>
__device__ __forceinline__ void pack_p_step(const float (&p)[kMTiles][kNT][4], int kk, uint32_t (&pa)[kMTiles][4]) {
#pragma unroll
  for (int mt = 0; mt < kMTiles; ++mt) {
    pa[mt][0] = pack2<M>(p[mt][2 * kk][0], p[mt][2 * kk][1]);
    pa[mt][1] = pack2<M>(p[mt][2 * kk][2], p[mt][2 * kk][3]);
    pa[mt][2] = pack2<M>(p[mt][2 * kk + 1][0], p[mt][2 * kk + 1][1]);
    pa[mt][3] = pack2<M>(p[mt][2 * kk + 1][2], p[mt][2 * kk + 1][3]);
  }
}

// O += P V. The S accumulators of n8 tiles 2kk and 2kk + 1 are exactly the A fragment of
// k16 step kk (pack_p_step), so P goes from registers to the tensor cores without shared memory.
// V is read transposed: matrices (tokens 0-7, dims lo), (tokens 8-15, dims lo), (0-7, dims hi),
// (8-15, dims hi) give b0, b1 of d tile 2dp, then b0, b1 of d tile 2dp + 1.
template <typename T, int D>
__device__ void accumulate_pv(float (&o)[Cfg<D>::kMTiles][Cfg<D>::kDT][4],
                              const float (&p)[Cfg<D>::kMTiles][Cfg<D>::kNT][4], uint32_t sv, int lane) {
  using C = Cfg<D>;
  const int x = lane & 7;
  const uint32_t v_row = sv + (((lane >> 3) & 1) * 8 + x) * C::kRowBytes;
  const int v_hi = lane >> 4;
#pragma unroll
  for (int kk = 0; kk < C::kBN / 16; ++kk) {
    uint32_t pa[C::kMTiles][4];
    pack_p_step<T>(p, kk, pa);
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      uint32_t vb[4];
      ldmatrix_x4_trans(v_row + kk * 16 * C::kRowBytes + (((2 * dp + v_hi) ^ x) << 4), vb);
#pragma unroll
      for (int mt = 0; mt < C::kMTiles; ++mt) {
        mma_16816<T>(o[mt][2 * dp], pa[mt], vb[0], vb[1]);
        mma_16816<T>(o[mt][2 * dp + 1], pa[mt], vb[2], vb[3]);
      }
    }
  }
}

// accumulate_pv over a raw fp8 V tile: one transposed ldmatrix covers 16 tokens of two 16-dim
// chunks; each register splits into the B fragments of the chunk's even and odd dims, so O's n8
// tiles 2c, 2c + 1 hold chunk c's even and odd dims (kv_fp8.cuh; store_output reorders).
template <int D>
__device__ void accumulate_pv_fp8(float (&o)[Cfg<D, true>::kMTiles][Cfg<D, true>::kDT][4],
                                  const float (&p)[Cfg<D, true>::kMTiles][Cfg<D, true>::kNT][4], uint32_t sv, int lane) {
  using C = Cfg<D, true>;
  constexpr int kSteps = D / 16;
  const int x = lane & 7;
  const uint32_t v_row = sv + (((lane >> 3) & 1) * 8 + x) * C::kKvRowBytes;
  const int v_chunk = lane >> 4;
#pragma unroll
  for (int kk = 0; kk < C::kBN / 16; ++kk) {
    uint32_t pa[C::kMTiles][4];
    pack_p_step<__half>(p, kk, pa);
#pragma unroll
    for (int c = 0; c < kSteps; c += 2) {
      uint32_t vb[4];
      ldmatrix_x4_trans(v_row + kk * 16 * C::kKvRowBytes + (((c + v_chunk) ^ x) << 4), vb);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        if (c + j >= kSteps) break;
        uint32_t even0, odd0, even1, odd1;  // b0 (tokens 0-7) and b1 (8-15) of dims 2g and 2g + 1
        fp8_v_fragments(vb[2 * j], even0, odd0);
        fp8_v_fragments(vb[2 * j + 1], even1, odd1);
#pragma unroll
        for (int mt = 0; mt < C::kMTiles; ++mt) {
          mma_16816<__half>(o[mt][2 * (c + j)], pa[mt], even0, even1);
          mma_16816<__half>(o[mt][2 * (c + j) + 1], pa[mt], odd0, odd1);
        }
      }
    }
  }
}

// out = O / l for the warp's valid rows; each lane writes 2 elements (4 bytes) per n8 tile. fp8:
// O * v_scale / l, 4 dims (8 bytes) per pair of n8 tiles, back in dim order (fp8_o_dims).
template <typename T, int D, bool kFp8>
__device__ void store_output(const Args& a, const Tile& t, float (&o)[Cfg<D>::kMTiles][Cfg<D>::kDT][4],
                             float (&l_run)[Cfg<D>::kMTiles][2], int warp, int lane) {
  using C = Cfg<D>;
  const int64_t out_stride = static_cast<int64_t>(a.num_q_heads) * D;
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt)
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = l_run[mt][h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      float inv = l > 0.f ? 1.f / l : 0.f;
      const int r = warp * C::kWarpRows + mt * 16 + (lane >> 2) + h * 8;
      if (r >= t.rows) continue;
      T* row = static_cast<T*>(a.out) + static_cast<int64_t>(t.q0 + t.m0 + r) * out_stride +
               static_cast<int64_t>(t.head) * D;
      if constexpr (kFp8) {
        inv *= a.v_scale;
#pragma unroll
        for (int c = 0; c < D / 16; ++c) {
          const float4 v = fp8_o_dims(o[mt], c, h);
          *reinterpret_cast<uint2*>(row + 16 * c + (lane & 3) * 4) =
              make_uint2(pack2<T>(v.x * inv, v.y * inv), pack2<T>(v.z * inv, v.w * inv));
        }
      } else {
        T* dst = row + (lane & 3) * 2;
#pragma unroll
        for (int dt = 0; dt < C::kDT; ++dt)
          *reinterpret_cast<uint32_t*>(dst + dt * 8) = pack2<T>(o[mt][dt][2 * h] * inv, o[mt][dt][2 * h + 1] * inv);
      }
    }
}

template <typename T, int D, bool kFp8>
__global__ void __launch_bounds__(Cfg<D>::kThreads, 2) prefill_attention_kernel(const Args a) {
  using C = Cfg<D, kFp8>;
  extern __shared__ __align__(128) uint8_t smem[];
  Tile t;
  if (!make_tile<D>(a, t)) return;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const uint32_t sq = smem_u32(smem);
  const uint32_t sk = sq + C::kBM * C::kRowBytes, sv = sk + 2 * C::kKvStageBytes;
  // Tiles that hold any position visible to the block's last valid row.
  const int n_tiles = (t.off + t.m0 + t.rows + C::kBN - 1) / C::kBN;
  // The warp's rows: the first sees [0, warp_limit]; all of them see no more than warp_last.
  const int warp_row0 = warp * C::kWarpRows;
  const int warp_limit = t.off + t.m0 + warp_row0;
  const int warp_last = warp_row0 < t.rows ? warp_limit + C::kWarpRows - 1 : -1;

  if constexpr (kFp8)
    load_q_fp8<T, D>(a, t, sq);
  else
    load_q<T, D>(a, t, sq);
  if (n_tiles > 0) load_kv<T, D, kFp8>(a, t, 0, sk, sv);
  cp_async_commit();

  float o[C::kMTiles][C::kDT][4] = {};
  float m_run[C::kMTiles][2], l_run[C::kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < C::kMTiles; ++mt) m_run[mt][0] = m_run[mt][1] = -INFINITY, l_run[mt][0] = l_run[mt][1] = 0.f;

  for (int j = 0; j < n_tiles; ++j) {
    const uint32_t stage = (j & 1) * C::kKvStageBytes;
    // Prefetch tile j + 1 into the other stage (freed by the barrier ending iteration j - 1).
    if (j + 1 < n_tiles)
      load_kv<T, D, kFp8>(a, t, j + 1, sk + (stage ^ C::kKvStageBytes), sv + (stage ^ C::kKvStageBytes));
    cp_async_commit();
    cp_async_wait<1>();  // tile j (and Q) landed for this thread; the barrier makes it everyone's
    __syncthreads();
    // A warp whose rows see nothing of this tile (past the diagonal, or past the sequence's
    // end) skips it: its P would be all zeros and alpha 1.
    if (j * C::kBN <= warp_last) {
      float s[C::kMTiles][C::kNT][4];
      if constexpr (kFp8)
        compute_scores_fp8<D>(s, sq, sk + stage, warp, lane);
      else
        compute_scores<T, D>(s, sq, sk + stage, warp, lane);
      if ((j + 1) * C::kBN - 1 > warp_limit) mask_scores<D>(s, warp_limit + (lane >> 2), j * C::kBN + (lane & 3) * 2);
      online_softmax<D>(s, o, m_run, l_run, a.scale_log2);
      if constexpr (kFp8)
        accumulate_pv_fp8<D>(o, s, sv + stage, lane);
      else
        accumulate_pv<T, D>(o, s, sv + stage, lane);
    }
    __syncthreads();  // everyone is done with this stage before iteration j + 1 refills it
  }
  cp_async_wait<0>();
  store_output<T, D, kFp8>(a, t, o, l_run, warp, lane);
}

template <typename T, int D, bool kFp8>
void launch(const Args& a, const PagedAttentionParams& p, cudaStream_t stream) {
  using C = Cfg<D, kFp8>;
  auto* kernel = prefill_attention_kernel<T, D, kFp8>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes));
  const dim3 grid(p.num_q_heads, p.num_seqs, (p.max_query_len + C::kBM - 1) / C::kBM);
  kernel<<<grid, C::kThreads, C::kSmemBytes, stream>>>(a);
  CUDA_CHECK_LAUNCH();
}

template <typename T>
void launch_head_dim(const Args& a, const PagedAttentionParams& p, cudaStream_t stream) {
  dispatch_head_dim(p.head_dim, [&](auto d) {
    if (p.kv_quant.fp8)
      launch<T, decltype(d)::value, true>(a, p, stream);
    else
      launch<T, decltype(d)::value, false>(a, p, stream);
  });
}

bool aligned16(const void* ptr) { return reinterpret_cast<uintptr_t>(ptr) % 16 == 0; }

Status validate(const PagedAttentionParams& p) {
  const std::string what = "prefill_attention: ";
  TK_RETURN_IF_ERROR(check_paged_attention(p, what));
  if (p.num_seqs < 0 || p.num_tokens < 0 || p.max_query_len < 0 || p.max_query_len > p.num_tokens)
    return invalid_argument(what + "num_seqs, num_tokens and max_query_len must satisfy 0 <= max_query_len <= num_tokens");
  if (p.num_seqs > 65535 || p.num_q_heads > 65535 || p.max_query_len > 65535 * 64)
    return unsupported(what + "more than 65535 sequences, q heads or query tiles in one launch");
  if (p.q_stride < static_cast<int64_t>(p.num_q_heads) * p.head_dim || p.q_stride % 8 != 0)
    return invalid_argument(what + "q_stride " + std::to_string(p.q_stride) +
                            " must be >= num_q_heads * head_dim and a multiple of 8");
  if (!aligned16(p.q) || !aligned16(p.k_cache) || !aligned16(p.v_cache) || !aligned16(p.out))
    return invalid_argument(what + "q, k_cache, v_cache and out must be 16-byte aligned");
  return Status::ok_status();
}

}  // namespace

// NOTE: the grid is sized from max_query_len; a sequence longer than it would leave rows unwritten.
// Every sequence must have context_lens[s] >= its new tokens and page_table entries for
// positions [0, context_lens[s]).
Status prefill_attention(const PagedAttentionParams& p, cudaStream_t stream, PrefillImpl impl) {
  if (p.num_seqs == 0 || p.num_tokens == 0 || p.max_query_len == 0) return Status::ok_status();
  TK_RETURN_IF_ERROR(validate(p));
  if (impl == PrefillImpl::kAuto && prefill_sm90_supports(p)) {
    prefill_sm90(p, stream);
    return Status::ok_status();
  }
  const Args a = make_args(p);
  if (p.dtype == DType::kBF16)
    launch_head_dim<__nv_bfloat16>(a, p, stream);
  else
    launch_head_dim<__half>(a, p, stream);
  return Status::ok_status();
}

}  // namespace tk::kernels
