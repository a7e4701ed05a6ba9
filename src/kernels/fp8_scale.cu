// The scales of an FP8 product applied after the GEMM, in place: out[m, n] = out[m, n] * x_scale[m]
// * w_scale[n] * gain (+ bias[n]). cuBLASLt (CUDA 13) serves no outer-vector (per-token x
// per-channel) scales on the H200, only per-tensor scalars, so the CUDA backend runs the FP8
// GEMM with constant scalar scales and this pass applies the real ones: one read and one write
// of the output, small beside the GEMM at every M (see bench fp8_gemm). Elementwise and
// memory-bound: 8 bf16/fp16 outputs (one 16-byte vector) per thread when rows allow it, else (and
// for fp32: an FP8 lm_head's logits) one, flat over the batch.
// The arithmetic is fp32 with explicit round-to-nearest multiplies and add (no FMA contraction), in
// the order of the CPU twin fp8::scale_product.
#include "fp8_common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

constexpr int kThreads = 256;

// fp8_common.cuh's, shared with the consumers that read a raw product and scale it themselves.
__device__ __forceinline__ float scaled(float raw, float row_scale, float col_scale, float bias) {
  return detail::fp8_product_scaled(raw, row_scale, col_scale, bias);
}

template <typename T>
__device__ __forceinline__ float load_f(const T* p) {
  return static_cast<float>(*p);
}

// 8 consecutive outputs of one row per thread: n, ldo multiples of 8, out and bias 16-byte aligned.
template <typename T>
__global__ void scale_fp8_product_vec_kernel(T* __restrict__ out,  // [m, ldo], the first n of each row
                                             int64_t m, int64_t n, int64_t ldo,
                                             const float* __restrict__ x_scale, int64_t x_step,  // [m] or [1]
                                             const float* __restrict__ w_scale, int64_t w_step,  // [n] or [1]
                                             float gain, const T* __restrict__ bias) {       // [n] or nullptr
  const int64_t vecs_per_row = n / 8, total = m * vecs_per_row;
  detail::pdl_wait();
  detail::pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / vecs_per_row, c = (i - r * vecs_per_row) * 8;
    T* o = out + r * ldo + c;
    const float row_scale = detail::fp8_product_row_scale(x_scale, r * x_step, gain);
    float v[8], b[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    detail::unpack8<T>(detail::ld_vec(o), v);
    if (bias != nullptr) detail::unpack8<T>(detail::ldg_vec(bias + c), b);
#pragma unroll
    for (int e = 0; e < 8; ++e) v[e] = scaled(v[e], row_scale, __ldg(w_scale + (c + e) * w_step), b[e]);
    detail::st_vec(o, detail::pack8<T>(v));
  }
}

// One output per thread: any n, ldo and alignment.
template <typename T>
__global__ void scale_fp8_product_kernel(T* __restrict__ out, int64_t m, int64_t n, int64_t ldo,
                                         const float* __restrict__ x_scale, int64_t x_step,
                                         const float* __restrict__ w_scale, int64_t w_step, float gain,
                                         const T* __restrict__ bias) {
  const int64_t total = m * n;
  detail::pdl_wait();
  detail::pdl_trigger();
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / n, c = i - r * n;
    T* o = out + r * ldo + c;
    const float row_scale = detail::fp8_product_row_scale(x_scale, r * x_step, gain);
    const float b = bias != nullptr ? load_f(bias + c) : 0.f;
    *o = T(scaled(load_f(o), row_scale, __ldg(w_scale + c * w_step), b));
  }
}

}  // namespace

Status scale_fp8_product(const ScaleFp8ProductParams& p, cudaStream_t stream) {
  if (!p.out || !p.x_scale || !p.w_scale) return invalid_argument("scale_fp8_product: null out, x_scale or w_scale");
  if (p.m <= 0 || p.n <= 0 || p.ldo < p.n)
    return invalid_argument("scale_fp8_product: m " + std::to_string(p.m) + ", n " + std::to_string(p.n) + ", ldo " +
                            std::to_string(p.ldo));
  if (p.dtype != DType::kBF16 && p.dtype != DType::kF16 && p.dtype != DType::kF32)
    return unsupported(std::string("scale_fp8_product: dtype ") + dtype_name(p.dtype) + " (bf16, fp16 and fp32 only)");
  const bool vec = p.dtype != DType::kF32 && p.n % 8 == 0 && p.ldo % 8 == 0 && detail::aligned16(p.out) &&
                   (!p.bias || detail::aligned16(p.bias));
  const int64_t items = p.m * (vec ? p.n / 8 : p.n);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((items + kThreads - 1) / kThreads, int64_t{1} << 20));
  const int64_t x_step = p.x_scale_per_row ? 1 : 0, w_step = p.w_scale_per_col ? 1 : 0;
  if (p.dtype == DType::kF32) {  // an FP8 lm_head's logits: one element per thread
    detail::launch_kernel(scale_fp8_product_kernel<float>, dim3(blocks), dim3(kThreads), 0, stream,
                          static_cast<float*>(p.out), p.m, p.n, p.ldo, p.x_scale, x_step, p.w_scale, w_step, p.gain,
                          static_cast<const float*>(p.bias));
    return detail::launch_status("scale_fp8_product");
  }
  return detail::dispatch_half(p.dtype, "scale_fp8_product", [&](auto tag) {
    using T = decltype(tag);
    T* out = static_cast<T*>(p.out);
    const T* bias = static_cast<const T*>(p.bias);
    auto* kernel = vec ? scale_fp8_product_vec_kernel<T> : scale_fp8_product_kernel<T>;
    detail::launch_kernel(kernel, dim3(blocks), dim3(kThreads), 0, stream, out, p.m, p.n, p.ldo, p.x_scale, x_step,
                          p.w_scale, w_step, p.gain, bias);
    return detail::launch_status("scale_fp8_product");
  });
}

}  // namespace tk::kernels
