// Per-head RMSNorm of the q and k heads of the fused qkv rows, in place (Qwen3). A head of
// head_dim elements is held by head_dim / 8 lanes (one 16-byte vector each) of a lane group of
// the next power of two (head_dim 80, 96: 10 or 12 of 16 lanes; the rest hold zeros) and reduced
// with shuffles inside that group: no shared memory, no barriers.
#include "attention_checks.h"
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

struct QkArgs {
  void* qkv;             // [num_tokens, qkv_stride]
  const void* q_weight;  // [head_dim]
  const void* k_weight;  // [head_dim]
  int64_t num_tokens, qkv_stride;
  int num_q_heads, num_kv_heads;
  float eps;
};

constexpr int kThreads = 256;

// Lanes per head: head_dim / 8 rounded up to a power of two (4..32), so groups never straddle a warp.
constexpr int group_lanes(int head_dim) {
  int n = 1;
  while (n < head_dim / 8) n *= 2;
  return n;
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kThreads) qk_norm_kernel(QkArgs a) {
  constexpr int kLanes = group_lanes(kHeadDim);
  static_assert(kHeadDim % 8 == 0 && kLanes <= 32, "head_dim a multiple of 8, at most 256");
  const int heads = a.num_q_heads + a.num_kv_heads;
  detail::pdl_wait();
  detail::pdl_trigger();
  const int64_t gh = static_cast<int64_t>(blockIdx.x) * (kThreads / kLanes) + threadIdx.x / kLanes;
  const int lane = threadIdx.x % kLanes;
  // NOTE: no early return: the whole warp takes part in the shuffles below.
  const bool valid = gh < a.num_tokens * heads && lane < kHeadDim / 8;
  const int64_t t = valid ? gh / heads : 0;
  const int h = valid ? static_cast<int>(gh - t * heads) : 0;
  T* x = static_cast<T*>(a.qkv) + t * a.qkv_stride + static_cast<int64_t>(h) * kHeadDim + lane * 8;
  const T* w = static_cast<const T*>(h < a.num_q_heads ? a.q_weight : a.k_weight) + lane * 8;
  uint4 xv = make_uint4(0, 0, 0, 0), wv = make_uint4(0, 0, 0, 0);
  if (valid) xv = detail::ld_vec(x), wv = detail::ldg_vec(w);
  float f[8], fw[8];
  detail::unpack8<T>(xv, f);
  detail::unpack8<T>(wv, fw);
  float sum = 0.f;
#pragma unroll
  for (int e = 0; e < 8; ++e) sum += f[e] * f[e];
#pragma unroll
  for (int o = kLanes / 2; o > 0; o >>= 1) sum += __shfl_xor_sync(detail::kFullMask, sum, o);
  const float inv = rsqrtf(sum / static_cast<float>(kHeadDim) + a.eps);
#pragma unroll
  for (int e = 0; e < 8; ++e) f[e] = f[e] * inv * fw[e];
  if (valid) detail::st_vec(x, detail::pack8<T>(f));
}

template <typename T, int kHeadDim>
void launch(const QkArgs& a, cudaStream_t stream) {
  constexpr int kHeadsPerBlock = kThreads / group_lanes(kHeadDim);
  const int64_t heads = a.num_tokens * (a.num_q_heads + a.num_kv_heads);
  const auto blocks = static_cast<unsigned>((heads + kHeadsPerBlock - 1) / kHeadsPerBlock);
  detail::launch_kernel(qk_norm_kernel<T, kHeadDim>, dim3(blocks), dim3(kThreads), 0, stream, a);
}

Status validate(const QkNormParams& p) {
  const HeadLayout& h = p.heads;
  if (!p.qkv || !p.q_weight || !p.k_weight) return invalid_argument("qk_norm: null qkv, q_weight or k_weight");
  if (h.num_tokens <= 0 || h.num_q_heads <= 0 || h.num_kv_heads <= 0)
    return invalid_argument("qk_norm: num_tokens, num_q_heads and num_kv_heads must be > 0");
  if (!is_supported_head_dim(h.head_dim))
    return unsupported("qk_norm: head_dim " + std::to_string(h.head_dim) + " (" + supported_head_dims_text() + ")");
  if (h.qkv_stride < static_cast<int64_t>(h.num_q_heads + 2 * h.num_kv_heads) * h.head_dim)
    return invalid_argument("qk_norm: qkv_stride " + std::to_string(h.qkv_stride) + " is shorter than a qkv row");
  if (h.qkv_stride % 8 != 0) return invalid_argument("qk_norm: qkv_stride must be a multiple of 8");
  if (!detail::aligned16(p.qkv) || !detail::aligned16(p.q_weight) || !detail::aligned16(p.k_weight))
    return invalid_argument("qk_norm: qkv, q_weight and k_weight must be 16-byte aligned");
  const int64_t blocks = h.num_tokens * (h.num_q_heads + h.num_kv_heads) / (kThreads / group_lanes(h.head_dim)) + 1;
  if (blocks > 0x7fffffff) return invalid_argument("qk_norm: too many tokens for one launch");
  return Status();
}

}  // namespace

Status qk_norm(const QkNormParams& p, cudaStream_t stream) {
  TK_RETURN_IF_ERROR(validate(p));
  const HeadLayout& h = p.heads;
  const QkArgs a{p.qkv, p.q_weight, p.k_weight, h.num_tokens, h.qkv_stride, h.num_q_heads, h.num_kv_heads, p.eps};
  return detail::dispatch_half(p.dtype, "qk_norm", [&](auto tag) {
    using T = decltype(tag);
    dispatch_head_dim(h.head_dim, [&](auto d) { launch<T, decltype(d)::value>(a, stream); });
    return detail::launch_status("qk_norm");
  });
}

}  // namespace tk::kernels
