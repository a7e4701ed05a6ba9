// FP8 e4m3 quantization of rows: the inputs of FP8 GEMMs (one scale per token) and the weights
// of --quantization fp8 (one scale per output channel); with groups of 128 and a dequantized
// output, the inputs of block-scaled linears whose product runs in bf16/fp16. One block per row: the row's amax by a
// block reduction, then every element divided by the scale and rounded to nearest even with
// saturation (cuda_fp8.h's __NV_SATFINITE). The scale expression is the CPU twin's
// (fp8::quantize_input): max(min(amax, ub) / 448, 1 / (448 * 512)), a true division.
#include <cuda_fp8.h>

#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

constexpr int kThreads = 256;
constexpr float kMax = 448.f, kMinScale = 1.f / (448.f * 512.f);

__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

// One block per row; groups of `group` columns (the whole row when group >= cols) one after the
// other, each with its own scale.
template <typename T>
__global__ void quantize_fp8_rows_kernel(const T* __restrict__ x,  // [rows, ld]
                                         int64_t cols, int64_t ld, int64_t group,
                                         const float* __restrict__ static_scale,  // [1] or nullptr
                                         float amax_ub,
                                         __nv_fp8_storage_t* __restrict__ q,  // [rows, cols] or nullptr
                                         float* __restrict__ scales,          // [rows, ceil(cols / group)]
                                         T* __restrict__ dequantized) {       // [rows, cols] or nullptr
  __shared__ float scratch[32];
  const T* xr = x + blockIdx.x * ld;
  const int64_t groups = (cols + group - 1) / group;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = g * group, end = min(cols, begin + group);
    float scale;
    if (static_scale != nullptr) {
      scale = *static_scale;
    } else {
      float amax = 0.f;
      for (int64_t c = begin + threadIdx.x; c < end; c += blockDim.x) amax = fmaxf(amax, fabsf(to_f(xr[c])));
      amax = detail::block_reduce(amax, detail::MaxOp{}, scratch);
      if (amax_ub > 0.f) amax = fminf(amax, amax_ub);
      scale = fmaxf(amax / kMax, kMinScale);
    }
    if (threadIdx.x == 0) scales[blockIdx.x * groups + g] = scale;
    for (int64_t c = begin + threadIdx.x; c < end; c += blockDim.x) {
      const __nv_fp8_storage_t v = __nv_cvt_float_to_fp8(to_f(xr[c]) / scale, __NV_SATFINITE, __NV_E4M3);
      if (q != nullptr) q[blockIdx.x * cols + c] = v;
      if (dequantized != nullptr) {
        const float back = __half2float(__half(__nv_cvt_fp8_to_halfraw(v, __NV_E4M3))) * scale;
        dequantized[blockIdx.x * cols + c] = T(back);
      }
    }
  }
}

}  // namespace

Status quantize_fp8_rows(const QuantizeFp8RowsParams& p, cudaStream_t stream) {
  if (!p.x || !p.scales || (!p.q && !p.dequantized)) return invalid_argument("quantize_fp8_rows: null x, scales or outputs");
  if (p.rows <= 0 || p.cols <= 0 || p.ld < p.cols || p.group_size < 0)
    return invalid_argument("quantize_fp8_rows: rows " + std::to_string(p.rows) + ", cols " + std::to_string(p.cols) +
                            ", ld " + std::to_string(p.ld) + ", group_size " + std::to_string(p.group_size));
  if (p.rows > (int64_t{1} << 31) - 1) return invalid_argument("quantize_fp8_rows: too many rows");
  const int64_t group = p.group_size > 0 ? p.group_size : p.cols;
  return detail::dispatch_half(p.dtype, "quantize_fp8_rows", [&](auto tag) {
    using T = decltype(tag);
    quantize_fp8_rows_kernel<T><<<static_cast<unsigned>(p.rows), kThreads, 0, stream>>>(
        static_cast<const T*>(p.x), p.cols, p.ld, group, p.static_scale, p.amax_ub,
        static_cast<__nv_fp8_storage_t*>(p.q), p.scales, static_cast<T*>(p.dequantized));
    return detail::launch_status("quantize_fp8_rows");
  });
}

}  // namespace tk::kernels
