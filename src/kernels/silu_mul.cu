// SwiGLU activation: out = silu(gate) * up over the fused gate_up projection. Elementwise and
// memory-bound: one 16-byte vector of gate and of up per thread, flat over the whole batch so any
// token count fills the GPU.
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate_up,  // [num_tokens, 2 * inter]
                                T* __restrict__ out,             // [num_tokens, inter]
                                int64_t num_tokens, int64_t inter) {
  const int64_t vecs_per_row = inter / 8, total = num_tokens * vecs_per_row;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / vecs_per_row, c = (i - t * vecs_per_row) * 8;
    const T* g = gate_up + t * 2 * inter + c;
    const uint4 gv = detail::ld_vec(g), uv = detail::ld_vec(g + inter);
    float fg[8], fu[8];
    detail::unpack8<T>(gv, fg);
    detail::unpack8<T>(uv, fu);
#pragma unroll
    for (int e = 0; e < 8; ++e) fg[e] = __fdividef(fg[e], 1.f + __expf(-fg[e])) * fu[e];  // -> 0 as the exp overflows
    detail::st_vec(out + t * inter + c, detail::pack8<T>(fg));
  }
}

}  // namespace

Status silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  if (!p.gate_up || !p.out) return invalid_argument("silu_mul: null gate_up or out");
  if (p.num_tokens <= 0 || p.inter <= 0)
    return invalid_argument("silu_mul: num_tokens and inter must be > 0 (got " + std::to_string(p.num_tokens) +
                            ", " + std::to_string(p.inter) + ")");
  if (p.inter % 8 != 0)
    return invalid_argument("silu_mul: inter " + std::to_string(p.inter) + " is not a multiple of 8");
  if (!detail::aligned16(p.gate_up) || !detail::aligned16(p.out))
    return invalid_argument("silu_mul: gate_up and out must be 16-byte aligned");
  constexpr int kThreads = 256;
  const int64_t total = p.num_tokens * (p.inter / 8);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t{1} << 24));
  return detail::dispatch_half(p.dtype, "silu_mul", [&](auto tag) {
    using T = decltype(tag);
    silu_mul_kernel<T><<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(p.gate_up), static_cast<T*>(p.out),
                                                        p.num_tokens, p.inter);
    return detail::launch_status("silu_mul");
  });
}

}  // namespace tk::kernels
