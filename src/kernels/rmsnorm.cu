// RMSNorm, optionally fused with the residual add that precedes it in every decoder layer
// (residual += delta; out = rmsnorm(residual) * weight). Memory-bound: one block per row, the
// row held in registers as 16-byte vectors (kVecs per thread), all loads issued before the one
// block reduction, so each byte crosses DRAM exactly once. With an FP8 output the kernel also
// quantizes its rounded output per token for the FP8 linear that reads it (a second block
// reduction for the amax), with quantize_fp8_rows' arithmetic (fp8_common.cuh): the same bytes
// and scales as the unfused norm + quantize, without the second kernel and its read of the row.
// A delta that is an FP8 GEMM's raw product is scaled as scale_fp8_product would have (and
// rounded), so that pass over the product goes too.
#include "fp8_common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

using detail::pack8;
using detail::unpack8;

struct RmsArgs {
  const void* x;       // [num_tokens, hidden] (no residual)
  void* residual;      // [num_tokens, hidden] in/out, or nullptr
  const void* delta;   // [num_tokens, hidden] (with residual)
  const void* weight;  // [hidden]
  void* out;           // [num_tokens, hidden], or nullptr (FP8 output only)
  __nv_fp8_storage_t* q;  // [num_tokens, hidden] fp8 e4m3 (kQuant)
  float* q_scales;        // [num_tokens] (kQuant)
  float amax_ub;          // > 0: the amax clamped to it (kQuant)
  kernels::Fp8ProductScales delta_scales;  // x_scale set: delta is a raw FP8 product (kResidual)
  int hidden;
  float inv_hidden;  // 1 / hidden: a multiply, not a slow-path IEEE division
  float eps;
};

// NOTE: the residual sum is rounded to T before it is normalised, as the unfused bf16 model
// (residual = residual + delta in bf16, then RMSNorm) computes it.
template <typename T, int kVecs, bool kResidual, bool kQuant>
__global__ void __launch_bounds__(256) rmsnorm_kernel(RmsArgs a) {
  const int64_t row_off = static_cast<int64_t>(blockIdx.x) * a.hidden;
  const int nvec = a.hidden / 8;
  uint4 v[kVecs], w[kVecs];
  // The weight (constant, L2-resident after the first rows) loads while the kernel before drains.
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c < nvec) w[j] = detail::ldg_vec(static_cast<const T*>(a.weight) + c * 8);
  }
  detail::pdl_wait();
  detail::pdl_trigger();
  if constexpr (kResidual) {
    uint4 d[kVecs];
    T* res = static_cast<T*>(a.residual) + row_off;
    const T* del = static_cast<const T*>(a.delta) + row_off;
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
      const int c = threadIdx.x + j * blockDim.x;
      if (c < nvec) v[j] = detail::ld_vec(res + c * 8), d[j] = detail::ld_vec(del + c * 8);
    }
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
      const int c = threadIdx.x + j * blockDim.x;
      if (c >= nvec) continue;
      float fr[8], fd[8];
      unpack8<T>(v[j], fr);
      unpack8<T>(d[j], fd);
      if (a.delta_scales.x_scale != nullptr) {  // scale_fp8_product's output, rounded to T
        const float row_scale = detail::fp8_product_row_scale(a.delta_scales.x_scale, blockIdx.x, a.delta_scales.gain);
        detail::scale_raw8<T>(fd, row_scale, a.delta_scales.w_scale + c * 8);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) fr[e] += fd[e];
      v[j] = pack8<T>(fr);
      detail::st_vec(res + c * 8, v[j]);
    }
  } else {
    const T* x = static_cast<const T*>(a.x) + row_off;
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
      const int c = threadIdx.x + j * blockDim.x;
      if (c < nvec) v[j] = detail::ld_vec(x + c * 8);
    }
  }
  float sum = 0.f;
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c >= nvec) continue;
    float f[8];
    unpack8<T>(v[j], f);
#pragma unroll
    for (int e = 0; e < 8; ++e) sum += f[e] * f[e];
  }
  __shared__ float scratch[32];
  sum = detail::block_reduce(sum, detail::SumOp{}, scratch);
  const float inv = rsqrtf(sum * a.inv_hidden + a.eps);
  T* out = a.out != nullptr ? static_cast<T*>(a.out) + row_off : nullptr;
  float amax = 0.f;
#pragma unroll
  for (int j = 0; j < kVecs; ++j) {
    const int c = threadIdx.x + j * blockDim.x;
    if (c >= nvec) continue;
    float f[8], fw[8];
    unpack8<T>(v[j], f);
    unpack8<T>(w[j], fw);
#pragma unroll
    for (int e = 0; e < 8; ++e) f[e] = f[e] * inv * fw[e];
    v[j] = pack8<T>(f);
    if (out != nullptr) detail::st_vec(out + c * 8, v[j]);
    if constexpr (kQuant) {
      unpack8<T>(v[j], f);  // the rounded output, as the unfused quantizer reads it
      amax = detail::amax8(f, amax);
    }
  }
  if constexpr (kQuant) {
    amax = detail::block_reduce(amax, detail::MaxOp{}, scratch);
    const float scale = detail::fp8_row_scale(amax, a.amax_ub);
    if (threadIdx.x == 0) a.q_scales[blockIdx.x] = scale;
#pragma unroll
    for (int j = 0; j < kVecs; ++j) {
      const int c = threadIdx.x + j * blockDim.x;
      if (c >= nvec) continue;
      float f[8];
      unpack8<T>(v[j], f);
      detail::store_fp8x8(f, scale, a.q + row_off + c * 8);
    }
  }
}

// Vectors per thread and threads per block: <= 256 threads per row (several rows resident per SM
// keep enough loads in flight), at most 8 vectors (64 elements) per thread so the row stays in
// registers without spilling: hidden <= 16384.
constexpr int kMaxVecs = 8, kMaxThreads = 256;

template <typename T, bool kResidual, bool kQuant>
void launch(const RmsArgs& a, int64_t num_tokens, cudaStream_t stream) {
  const int nvec = a.hidden / 8;
  int vecs = 1;
  while (vecs < kMaxVecs && (nvec + vecs - 1) / vecs > kMaxThreads) vecs *= 2;
  const int threads = ((nvec + vecs - 1) / vecs + 31) / 32 * 32;
  const dim3 grid(static_cast<unsigned>(num_tokens));
  auto* kernel = vecs == 1 ? rmsnorm_kernel<T, 1, kResidual, kQuant>
                 : vecs == 2 ? rmsnorm_kernel<T, 2, kResidual, kQuant>
                 : vecs == 4 ? rmsnorm_kernel<T, 4, kResidual, kQuant>
                             : rmsnorm_kernel<T, 8, kResidual, kQuant>;
  detail::launch_kernel(kernel, grid, dim3(threads), 0, stream, a);
}

Status validate(const RmsNormParams& p) {
  if (!p.weight || (!p.out && !p.q)) return invalid_argument("rmsnorm: null weight, or neither out nor q");
  if ((p.q == nullptr) != (p.q_scales == nullptr)) return invalid_argument("rmsnorm: q and q_scales go together");
  if (p.delta_scales.x_scale && (!p.residual || !p.delta_scales.w_scale))
    return invalid_argument("rmsnorm: delta scales need a residual and w_scale");
  if (p.residual ? !p.delta : !p.x)
    return invalid_argument(p.residual ? "rmsnorm: residual set but delta is null" : "rmsnorm: null x");
  if (p.num_tokens <= 0 || p.hidden <= 0)
    return invalid_argument("rmsnorm: num_tokens and hidden must be > 0 (got " + std::to_string(p.num_tokens) +
                            ", " + std::to_string(p.hidden) + ")");
  if (p.num_tokens > 0x7fffffff) return invalid_argument("rmsnorm: num_tokens exceeds 2^31 - 1");
  if (p.hidden % 8 != 0)
    return invalid_argument("rmsnorm: hidden " + std::to_string(p.hidden) + " is not a multiple of 8");
  if (p.hidden > int64_t{kMaxVecs} * kMaxThreads * 8)
    return unsupported("rmsnorm: hidden " + std::to_string(p.hidden) + " exceeds 16384");
  const void* ptrs[] = {p.x, p.residual, p.delta, p.weight, p.out, p.q};
  for (const void* q : ptrs)
    if (q && !detail::aligned16(q)) return invalid_argument("rmsnorm: pointers must be 16-byte aligned");
  if (!(p.eps >= 0.f)) return invalid_argument("rmsnorm: eps must be >= 0");
  return Status();
}

}  // namespace

Status rmsnorm(const RmsNormParams& p, cudaStream_t stream) {
  TK_RETURN_IF_ERROR(validate(p));
  const RmsArgs a{p.x, p.residual, p.delta, p.weight, p.out, static_cast<__nv_fp8_storage_t*>(p.q), p.q_scales,
                   p.amax_ub, p.delta_scales, static_cast<int>(p.hidden),
                   static_cast<float>(1.0 / static_cast<double>(p.hidden)), p.eps};
  return detail::dispatch_half(p.dtype, "rmsnorm", [&](auto tag) {
    using T = decltype(tag);
    if (p.q) {
      if (p.residual) launch<T, true, true>(a, p.num_tokens, stream);
      else launch<T, false, true>(a, p.num_tokens, stream);
    } else {
      if (p.residual) launch<T, true, false>(a, p.num_tokens, stream);
      else launch<T, false, false>(a, p.num_tokens, stream);
    }
    return detail::launch_status("rmsnorm");
  });
}

}  // namespace tk::kernels
