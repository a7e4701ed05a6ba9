// SwiGLU activation: out = silu(gate) * up over the fused gate_up projection. Elementwise and
// memory-bound: one 16-byte vector of gate and of up per thread, flat over the whole batch so any
// token count fills the GPU. With an FP8 output (the per-token input quantization of the down
// projection, fused) a row needs its amax first: one block per row then (a cluster of 8 for a
// step of at most 64 tokens), the row's products held in registers between the reduction and the
// fp8 stores (quantize_fp8_rows' arithmetic, fp8_common.cuh: the same bytes and scales as
// silu_mul + quantize_fp8_rows). A gate_up that is an
// FP8 GEMM's raw product is scaled first as scale_fp8_product would have (and rounded).
#include <cooperative_groups.h>

#include <algorithm>

#include "fp8_common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

namespace cg = cooperative_groups;

// One definition for both kernels: the fused one quantizes exactly what the plain one writes.
__device__ __forceinline__ float silu_times(float gate, float up) {
  return __fdividef(gate, 1.f + __expf(-gate)) * up;  // -> 0 as the exp overflows
}

// gate and up of columns [c, c + 8) of row t, scaled first where gate_up is a raw FP8 product.
template <typename T>
__device__ __forceinline__ void load_gate_up8(const T* g, int64_t t, int64_t c, int64_t inter,
                                              const Fp8ProductScales& s, float fg[8], float fu[8]) {
  detail::unpack8<T>(detail::ld_vec(g), fg);
  detail::unpack8<T>(detail::ld_vec(g + inter), fu);
  if (s.x_scale != nullptr) {
    const float row_scale = detail::fp8_product_row_scale(s.x_scale, t, s.gain);
    detail::scale_raw8<T>(fg, row_scale, s.w_scale + c);
    detail::scale_raw8<T>(fu, row_scale, s.w_scale + inter + c);
  }
}

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate_up,  // [num_tokens, 2 * inter]
                                T* __restrict__ out,             // [num_tokens, inter]
                                int64_t num_tokens, int64_t inter, Fp8ProductScales scales) {
  const int64_t vecs_per_row = inter / 8, total = num_tokens * vecs_per_row;
  detail::pdl_wait();
  detail::pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t t = i / vecs_per_row, c = (i - t * vecs_per_row) * 8;
    float fg[8], fu[8];
    load_gate_up8(gate_up + t * 2 * inter + c, t, c, inter, scales, fg, fu);
#pragma unroll
    for (int e = 0; e < 8; ++e) fg[e] = silu_times(fg[e], fu[e]);
    detail::st_vec(out + t * inter + c, detail::pack8<T>(fg));
  }
}

// One block per token row; kVecs 16-byte vectors of gate and of up per thread, all loaded before
// any arithmetic (one memory round trip per row).
template <typename T, int kVecs>
__global__ void __launch_bounds__(512) silu_mul_fp8_kernel(const T* __restrict__ gate_up,  // [num_tokens, 2 * inter]
                                                           T* __restrict__ out,  // [num_tokens, inter] or nullptr
                                                           __nv_fp8_storage_t* __restrict__ q,  // [num_tokens, inter]
                                                           float* __restrict__ q_scales,        // [num_tokens]
                                                           int64_t inter, float amax_ub, Fp8ProductScales scales) {
  const int64_t row = blockIdx.x;
  const int nvec = static_cast<int>(inter / 8);
  const T* g = gate_up + row * 2 * inter;
  detail::pdl_wait();
  detail::pdl_trigger();
  uint4 gv[kVecs], uv[kVecs];
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c < nvec) gv[j] = detail::ld_vec(g + c * 8), uv[j] = detail::ld_vec(g + inter + c * 8);
  }
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c >= nvec) continue;
    float fg[8], fu[8];
    detail::unpack8<T>(gv[j], fg);
    detail::unpack8<T>(uv[j], fu);
    if (scales.x_scale != nullptr) {  // a raw FP8 product: scale_fp8_product's output, rounded to T
      const float row_scale = detail::fp8_product_row_scale(scales.x_scale, row, scales.gain);
      detail::scale_raw8<T>(fg, row_scale, scales.w_scale + c * 8);
      detail::scale_raw8<T>(fu, row_scale, scales.w_scale + inter + c * 8);
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) fg[e] = silu_times(fg[e], fu[e]);
    gv[j] = detail::pack8<T>(fg);
    if (out != nullptr) detail::st_vec(out + row * inter + c * 8, gv[j]);
    detail::unpack8<T>(gv[j], fg);  // the rounded product, as the unfused quantizer reads it
    amax = detail::amax8(fg, amax);
  }
  __shared__ float scratch[32];
  amax = detail::block_reduce(amax, detail::MaxOp{}, scratch);
  const float scale = detail::fp8_row_scale(amax, amax_ub);
  if (threadIdx.x == 0) q_scales[row] = scale;
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c >= nvec) continue;
    float f[8];
    detail::unpack8<T>(gv[j], f);
    detail::store_fp8x8(f, scale, q + row * inter + c * 8);
  }
}

// The same for rows of few tokens (decode), where one block per row leaves the row's loads to one
// SM: Llama-3-8B's row (57 KB of gate_up, 115 KB of scales when it is a raw FP8 product) took
// 9.4 us at batch 1 on the H200 that way, 4.8 us so (docs/BENCHMARKS.md). Here a cluster of
// kRowBlocks blocks shares each row, each block 1/kRowBlocks of its vectors, and the blocks
// exchange their amax through distributed shared memory; max is exact in any order, so the bytes
// are the one-block kernel's.
constexpr int kRowBlocks = 8, kClusterMaxThreads = 256, kClusterMaxTokens = 64;
template <typename T, int kVecs>
__global__ void __launch_bounds__(kClusterMaxThreads)
    silu_mul_fp8_cluster_kernel(const T* __restrict__ gate_up,            // [num_tokens, 2 * inter]
                                T* __restrict__ out,                      // [num_tokens, inter] or nullptr
                                __nv_fp8_storage_t* __restrict__ q,       // [num_tokens, inter]
                                float* __restrict__ q_scales,             // [num_tokens]
                                int64_t inter, float amax_ub, Fp8ProductScales scales) {
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int64_t row = blockIdx.x / kRowBlocks;
  const int nvec = static_cast<int>(inter / 8), per = (nvec + kRowBlocks - 1) / kRowBlocks;
  const int begin = rank * per, end = min(nvec, begin + per);
  const T* g = gate_up + row * 2 * inter;
  detail::pdl_wait();
  detail::pdl_trigger();
  float f[kVecs][8];
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = begin + static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
    if (c >= end) continue;
    float fu[8];
    load_gate_up8(g + c * 8, row, c * 8, inter, scales, f[j], fu);
#pragma unroll
    for (int e = 0; e < 8; ++e) f[j][e] = silu_times(f[j][e], fu[e]);
    const uint4 rounded = detail::pack8<T>(f[j]);
    if (out != nullptr) detail::st_vec(out + row * inter + c * 8, rounded);
    detail::unpack8<T>(rounded, f[j]);  // the rounded product, as the unfused quantizer reads it
    amax = detail::amax8(f[j], amax);
  }
  __shared__ float scratch[32];
  __shared__ float block_amax;
  amax = detail::block_reduce(amax, detail::MaxOp{}, scratch);
  if (threadIdx.x == 0) block_amax = amax;
  cluster.sync();
  float row_amax = 0.f;
#pragma unroll
  for (int r = 0; r < kRowBlocks; ++r) row_amax = fmaxf(row_amax, *cluster.map_shared_rank(&block_amax, r));
  cluster.sync();  // no block exits while another still reads its shared memory
  const float scale = detail::fp8_row_scale(row_amax, amax_ub);
  if (rank == 0 && threadIdx.x == 0) q_scales[row] = scale;
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = begin + static_cast<int>(threadIdx.x) + j * static_cast<int>(blockDim.x);
    if (c < end) detail::store_fp8x8(f[j], scale, q + row * inter + c * 8);
  }
}

// Threads per row up to 512, vectors per thread doubling up to 8: inter <= 32768.
constexpr int kFp8MaxThreads = 512, kFp8MaxVecs = 8;
static_assert(int64_t{kFp8MaxThreads} * kFp8MaxVecs * 8 == kSiluMulFp8MaxInter);

template <typename T>
void launch_fp8(const SiluMulParams& p, cudaStream_t stream) {
  const int nvec = static_cast<int>(p.inter / 8);
  if (p.num_tokens <= kClusterMaxTokens) {  // a block's share: at most 4096 / 8 = 512 vectors, 2 per thread
    const int per = (nvec + kRowBlocks - 1) / kRowBlocks;
    const int threads = std::min(kClusterMaxThreads, (per + 31) / 32 * 32);
    auto kernel = per <= threads ? silu_mul_fp8_cluster_kernel<T, 1> : silu_mul_fp8_cluster_kernel<T, 2>;
    detail::launch_kernel_clustered(kernel, dim3(static_cast<unsigned>(p.num_tokens * kRowBlocks)), dim3(threads), 0,
                                    stream, kRowBlocks, static_cast<const T*>(p.gate_up), static_cast<T*>(p.out),
                                    static_cast<__nv_fp8_storage_t*>(p.q), p.q_scales, p.inter, p.amax_ub,
                                    p.gate_up_scales);
    return;
  }
  int vecs = 1;
  while (vecs < kFp8MaxVecs && (nvec + vecs - 1) / vecs > kFp8MaxThreads) vecs *= 2;
  const int threads = ((nvec + vecs - 1) / vecs + 31) / 32 * 32;
  const dim3 grid(static_cast<unsigned>(p.num_tokens));
  const auto* gate_up = static_cast<const T*>(p.gate_up);
  auto* out = static_cast<T*>(p.out);
  auto* q = static_cast<__nv_fp8_storage_t*>(p.q);
  auto kernel = vecs == 1 ? silu_mul_fp8_kernel<T, 1> : vecs == 2 ? silu_mul_fp8_kernel<T, 2>
              : vecs == 4 ? silu_mul_fp8_kernel<T, 4> : silu_mul_fp8_kernel<T, 8>;
  detail::launch_kernel(kernel, grid, dim3(threads), 0, stream, gate_up, out, q, p.q_scales, p.inter, p.amax_ub,
                        p.gate_up_scales);
}

Status validate_fp8(const SiluMulParams& p) {
  if (!p.q_scales) return invalid_argument("silu_mul: q set but q_scales is null");
  if (p.inter > kSiluMulFp8MaxInter)
    return unsupported("silu_mul: an fp8 output needs inter <= " + std::to_string(kSiluMulFp8MaxInter) + " (got " +
                       std::to_string(p.inter) + ")");
  if (p.num_tokens > 0x7fffffff) return invalid_argument("silu_mul: num_tokens exceeds 2^31 - 1");
  if (!detail::aligned16(p.q)) return invalid_argument("silu_mul: q must be 16-byte aligned");
  return Status();
}

}  // namespace

Status silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  if (!p.gate_up || (!p.out && !p.q)) return invalid_argument("silu_mul: null gate_up, or neither out nor q");
  if (p.num_tokens <= 0 || p.inter <= 0)
    return invalid_argument("silu_mul: num_tokens and inter must be > 0 (got " + std::to_string(p.num_tokens) +
                            ", " + std::to_string(p.inter) + ")");
  if (p.inter % 8 != 0)
    return invalid_argument("silu_mul: inter " + std::to_string(p.inter) + " is not a multiple of 8");
  if (!detail::aligned16(p.gate_up) || (p.out && !detail::aligned16(p.out)))
    return invalid_argument("silu_mul: gate_up and out must be 16-byte aligned");
  if (p.gate_up_scales.x_scale && !p.gate_up_scales.w_scale)
    return invalid_argument("silu_mul: x_scale without w_scale");
  if (p.q) {
    TK_RETURN_IF_ERROR(validate_fp8(p));
    return detail::dispatch_half(p.dtype, "silu_mul", [&](auto tag) {
      launch_fp8<decltype(tag)>(p, stream);
      return detail::launch_status("silu_mul");
    });
  }
  constexpr int kThreads = 256;
  const int64_t total = p.num_tokens * (p.inter / 8);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t{1} << 24));
  return detail::dispatch_half(p.dtype, "silu_mul", [&](auto tag) {
    using T = decltype(tag);
    detail::launch_kernel(silu_mul_kernel<T>, dim3(blocks), dim3(kThreads), 0, stream, static_cast<const T*>(p.gate_up),
                          static_cast<T*>(p.out), p.num_tokens, p.inter, p.gate_up_scales);
    return detail::launch_status("silu_mul");
  });
}

}  // namespace tk::kernels
