// RoPE (neox pairs i, i + head_dim/2) fused with the paged KV-cache store: q is rotated in place,
// k is rotated on its way to k_cache, v is copied to v_cache — one read of the qkv row and one
// write of each output. One block per token: its head_dim/2 angles are computed once (accurate
// sincosf; angles reach 1e5 radians) into shared memory and reused by every head of the token.
//
// An FP8 KV cache (kv_quant.fp8): k, rotated in fp32, and v, read as T, are stored as fp8 e4m3 of
// x / k_scale and x / v_scale straight from fp32 (never rounded to T first), 8 bytes per lane half.
//
// NOTE: k inside qkv is left unrotated (the cache holds the rotated k, and attention reads k only
// from the cache); ref::rope_kv_store also rotates it there, which costs bytes nobody reads.
#include <cmath>

#include "attention_checks.h"
#include "common.cuh"
#include "fp8_common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

struct RopeArgs {
  void* qkv;                    // [num_tokens, qkv_stride]
  const int32_t* positions;     // [num_tokens]
  const float* inv_freq;        // [head_dim / 2]
  const int32_t* slot_mapping;  // [num_tokens]; slots outside [0, num_pages * page_size) are skipped
  void* k_cache;                // [num_pages, num_kv_heads, page_size, head_dim]
  void* v_cache;                // [num_pages, num_kv_heads, page_size, head_dim]
  int64_t qkv_stride, num_slots;
  int page_size, num_q_heads, num_kv_heads;
  float k_scale, v_scale;  // fp8 caches only
};

constexpr int kThreads = 128;
constexpr int kBatch = 4;  // heads per thread whose loads are in flight together

// Thread layout: kLanes lanes per head, lane l holding elements [8l, 8l+8) of both halves, so a
// rotation pair never leaves the thread. Heads of a token: q, then k, then v. When kLanes does not
// divide the block (head_dim 80: 5 lanes, 96: 6), the last kThreads % kLanes threads sit out.
template <typename T, int kHeadDim, bool kFp8>
struct Token {
  static_assert(kHeadDim % 16 == 0, "each half a whole number of 16-byte vectors");
  static constexpr int kHalf = kHeadDim / 2, kLanes = kHalf / 8, kGroups = kThreads / kLanes;
  RopeArgs a;  // by value: everything is inlined, so it stays in registers/constant bank
  T* row;            // [qkv_stride] this token's qkv row
  int64_t slot_off;  // element offset of (page, head 0, offset, 0) in the caches, or -1
  int lane;
  float c[8], s[8];

  __device__ void load(int h, uint4& lo, uint4& hi) const {
    const T* x = row + static_cast<int64_t>(h) * kHeadDim + lane * 8;
    lo = detail::ld_vec(x), hi = detail::ld_vec(x + kHalf);
  }
  // a, b: the lane's elements of the two halves, rotated in place in fp32.
  __device__ void rotate(float (&a0)[8], float (&b0)[8]) const {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const float a1 = a0[e] * c[e] - b0[e] * s[e];
      const float b1 = b0[e] * c[e] + a0[e] * s[e];
      a0[e] = a1, b0[e] = b1;
    }
  }
  __device__ void rotate(uint4& lo, uint4& hi) const {
    float a0[8], b0[8];
    detail::unpack8<T>(lo, a0);
    detail::unpack8<T>(hi, b0);
    rotate(a0, b0);
    lo = detail::pack8<T>(a0), hi = detail::pack8<T>(b0);
  }
  // k (rotated) or v head kv as fp8 into its cache slot.
  __device__ void store_fp8(bool is_k, int kv, uint4 lo, uint4 hi) const {
    float x[8], y[8];
    detail::unpack8<T>(lo, x);
    detail::unpack8<T>(hi, y);
    if (is_k) rotate(x, y);
    auto* dst = static_cast<__nv_fp8_storage_t*>(is_k ? a.k_cache : a.v_cache) + slot_off +
                static_cast<int64_t>(kv) * a.page_size * kHeadDim;
    const float scale = is_k ? a.k_scale : a.v_scale;
    detail::store_fp8x8(x, scale, dst + lane * 8);
    detail::store_fp8x8(y, scale, dst + kHalf + lane * 8);
  }
  __device__ void store(int h, uint4 lo, uint4 hi) const {
    const int hq = a.num_q_heads, hkv = a.num_kv_heads;
    if constexpr (kFp8) {
      if (h >= hq) {
        if (slot_off >= 0) store_fp8(h < hq + hkv, h < hq + hkv ? h - hq : h - hq - hkv, lo, hi);
        return;
      }
    }
    if (h < hq + hkv) rotate(lo, hi);
    T* dst;
    if (h < hq) {
      dst = row + static_cast<int64_t>(h) * kHeadDim;
    } else {
      if (slot_off < 0) return;
      const bool is_k = h < hq + hkv;
      const int kv = is_k ? h - hq : h - hq - hkv;
      dst = static_cast<T*>(is_k ? a.k_cache : a.v_cache) + slot_off +
            static_cast<int64_t>(kv) * a.page_size * kHeadDim;
    }
    detail::st_vec(dst + lane * 8, lo);
    detail::st_vec(dst + kHalf + lane * 8, hi);
  }
};

template <typename T, int kHeadDim, bool kFp8>
__global__ void __launch_bounds__(kThreads) rope_kv_store_kernel(RopeArgs a) {
  using Tok = Token<T, kHeadDim, kFp8>;
  __shared__ float s_cos[Tok::kHalf], s_sin[Tok::kHalf];
  const int64_t t = blockIdx.x;
  const int group = threadIdx.x / Tok::kLanes;
  // A thread past the last whole lane group owns no head (it still computes angles below).
  const int heads = group < Tok::kGroups ? a.num_q_heads + 2 * a.num_kv_heads : 0;
  const int64_t slot = a.slot_mapping[t];
  int64_t slot_off = -1;
  if (slot >= 0 && slot < a.num_slots) {
    const int64_t page = slot / a.page_size, off = slot - page * a.page_size;
    slot_off = (page * a.num_kv_heads * a.page_size + off) * kHeadDim;
  }
  Tok tok{a, static_cast<T*>(a.qkv) + t * a.qkv_stride, slot_off, static_cast<int>(threadIdx.x % Tok::kLanes)};
  // The angles (positions and slots are the step's metadata, copied before the step's first
  // kernel) are computed while the kernel before, which writes qkv, drains.
  if (threadIdx.x < Tok::kHalf) {
    // fp32 angle exactly as the reference: float(position) * inv_freq[i].
    const float angle = static_cast<float>(a.positions[t]) * a.inv_freq[threadIdx.x];
    sincosf(angle, &s_sin[threadIdx.x], &s_cos[threadIdx.x]);
  }
  detail::pdl_wait();
  detail::pdl_trigger();
  uint4 lo[kBatch], hi[kBatch];
#pragma unroll
  for (int j = 0; j < kBatch; ++j)
    if (group + j * Tok::kGroups < heads) tok.load(group + j * Tok::kGroups, lo[j], hi[j]);
  __syncthreads();
#pragma unroll
  for (int e = 0; e < 8; ++e) tok.c[e] = s_cos[tok.lane * 8 + e], tok.s[e] = s_sin[tok.lane * 8 + e];
  for (int h0 = group;; h0 += kBatch * Tok::kGroups) {
#pragma unroll
    for (int j = 0; j < kBatch; ++j)
      if (h0 + j * Tok::kGroups < heads) tok.store(h0 + j * Tok::kGroups, lo[j], hi[j]);
    if (h0 + kBatch * Tok::kGroups >= heads) break;
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int h = h0 + (kBatch + j) * Tok::kGroups;
      if (h < heads) tok.load(h, lo[j], hi[j]);
    }
  }
}

Status validate(const RopeKvStoreParams& p) {
  const HeadLayout& h = p.heads;
  if (!p.qkv || !p.positions || !p.inv_freq || !p.slot_mapping || !p.k_cache || !p.v_cache)
    return invalid_argument("rope_kv_store: null qkv, positions, inv_freq, slot_mapping or cache");
  if (h.num_tokens <= 0 || h.num_q_heads <= 0 || h.num_kv_heads <= 0 || p.page_size <= 0 || p.num_pages <= 0)
    return invalid_argument("rope_kv_store: num_tokens, heads, page_size and num_pages must be > 0");
  if (h.num_tokens > 0x7fffffff) return invalid_argument("rope_kv_store: num_tokens exceeds 2^31 - 1");
  if (h.num_q_heads % h.num_kv_heads != 0)
    return invalid_argument("rope_kv_store: num_kv_heads " + std::to_string(h.num_kv_heads) +
                            " does not divide num_q_heads " + std::to_string(h.num_q_heads));
  if (!is_supported_head_dim(h.head_dim))
    return unsupported("rope_kv_store: head_dim " + std::to_string(h.head_dim) + " (" + supported_head_dims_text() +
                       ")");
  if (h.qkv_stride < static_cast<int64_t>(h.num_q_heads + 2 * h.num_kv_heads) * h.head_dim)
    return invalid_argument("rope_kv_store: qkv_stride " + std::to_string(h.qkv_stride) +
                            " is shorter than a qkv row");
  if (h.qkv_stride % 8 != 0) return invalid_argument("rope_kv_store: qkv_stride must be a multiple of 8");
  if (!detail::aligned16(p.qkv) || !detail::aligned16(p.k_cache) || !detail::aligned16(p.v_cache))
    return invalid_argument("rope_kv_store: qkv and the caches must be 16-byte aligned");
  const KvCacheQuant& kq = p.kv_quant;
  if (kq.fp8 && !(kq.k_scale > 0.f && std::isfinite(kq.k_scale) && kq.v_scale > 0.f && std::isfinite(kq.v_scale)))
    return invalid_argument("rope_kv_store: fp8 KV cache: k_scale and v_scale must be positive and finite");
  return Status();
}

}  // namespace

Status rope_kv_store(const RopeKvStoreParams& p, cudaStream_t stream) {
  TK_RETURN_IF_ERROR(validate(p));
  const HeadLayout& h = p.heads;
  const RopeArgs a{p.qkv,         p.positions,  p.inv_freq,
                   p.slot_mapping, p.k_cache,   p.v_cache,
                   h.qkv_stride,   static_cast<int64_t>(p.num_pages) * p.page_size,
                   p.page_size,    h.num_q_heads, h.num_kv_heads,
                   p.kv_quant.k_scale, p.kv_quant.v_scale};
  const dim3 grid(static_cast<unsigned>(h.num_tokens));
  return detail::dispatch_half(p.dtype, "rope_kv_store", [&](auto tag) {
    using T = decltype(tag);
    dispatch_head_dim(h.head_dim, [&](auto d) {
      auto* kernel = p.kv_quant.fp8 ? rope_kv_store_kernel<T, decltype(d)::value, true>
                                    : rope_kv_store_kernel<T, decltype(d)::value, false>;
      detail::launch_kernel(kernel, grid, dim3(kThreads), 0, stream, a);
    });
    return detail::launch_status("rope_kv_store");
  });
}

}  // namespace tk::kernels
