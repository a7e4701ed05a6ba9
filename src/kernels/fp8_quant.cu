// FP8 e4m3 quantization of rows: the inputs of FP8 GEMMs (one scale per token) and the weights
// of --quantization fp8 (one scale per output channel); with groups of 128 and a dequantized
// output, the inputs of block-scaled linears whose product runs in bf16/fp16. One block per row: the row's amax by a
// block reduction, then every element divided by the scale and rounded to nearest even with
// saturation (cuda_fp8.h's __NV_SATFINITE). The scale expression is the CPU twin's
// (fp8::quantize_input): max(min(amax, ub) / 448, 1 / (448 * 512)), a true division (fp8_common.cuh,
// shared with the norms and SiLU·up that quantize their own output). Rows of
// one scale, aligned and at most 24576 wide, are held in registers and read once (the vector
// kernel); the rest (1x128 groups, odd widths) loop over the row twice.
#include "fp8_common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

constexpr int kThreads = 256;

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
  detail::pdl_wait();
  detail::pdl_trigger();
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
      scale = detail::fp8_row_scale(amax, amax_ub);
    }
    if (threadIdx.x == 0) scales[blockIdx.x * groups + g] = scale;
    for (int64_t c = begin + threadIdx.x; c < end; c += blockDim.x) {
      const __nv_fp8_storage_t v = detail::fp8_e4m3(to_f(xr[c]), scale);
      if (q != nullptr) q[blockIdx.x * cols + c] = v;
      if (dequantized != nullptr) {
        const float back = __half2float(__half(__nv_cvt_fp8_to_halfraw(v, __NV_E4M3))) * scale;
        dequantized[blockIdx.x * cols + c] = T(back);
      }
    }
  }
}

// One block per row, one scale per row, the row held in registers: every 16-byte vector of x is
// loaded once, all of a thread's loads in flight together (one memory round trip at a decode
// step's M = 1, where the loop above pays one per iteration, twice). The same arithmetic as the
// kernel above, element for element: bytes and scales identical. cols and ld multiples of 8, x
// 16-byte aligned, cols <= kThreads * 8 * kVecs.
template <typename T, int kVecs>
__global__ void quantize_fp8_rows_vec_kernel(const T* __restrict__ x,  // [rows, ld]
                                             int64_t cols, int64_t ld,
                                             const float* __restrict__ static_scale,  // [1] or nullptr
                                             float amax_ub,
                                             __nv_fp8_storage_t* __restrict__ q,  // [rows, cols] or nullptr
                                             float* __restrict__ scales,          // [rows]
                                             T* __restrict__ dequantized) {       // [rows, cols] or nullptr
  __shared__ float scratch[32];
  detail::pdl_wait();
  detail::pdl_trigger();
  const T* xr = x + blockIdx.x * ld;
  const int64_t vecs = cols / 8;
  uint4 v[kVecs];
  float amax = 0.f;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t vi = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (vi < vecs) {
      v[i] = detail::ldg_vec(xr + vi * 8);
      float f[8];
      detail::unpack8<T>(v[i], f);
#pragma unroll
      for (int e = 0; e < 8; ++e) amax = fmaxf(amax, fabsf(f[e]));
    }
  }
  float scale;
  if (static_scale != nullptr) {
    scale = *static_scale;
  } else {
    amax = detail::block_reduce(amax, detail::MaxOp{}, scratch);
    scale = detail::fp8_row_scale(amax, amax_ub);
  }
  if (threadIdx.x == 0) scales[blockIdx.x] = scale;
#pragma unroll
  for (int i = 0; i < kVecs; ++i) {
    const int64_t vi = threadIdx.x + static_cast<int64_t>(i) * blockDim.x;
    if (vi >= vecs) continue;
    float f[8], back[8];
    detail::unpack8<T>(v[i], f);
    uint8_t b[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const __nv_fp8_storage_t c = detail::fp8_e4m3(f[e], scale);
      b[e] = c;
      back[e] = __half2float(__half(__nv_cvt_fp8_to_halfraw(c, __NV_E4M3))) * scale;
    }
    if (q != nullptr) {
      uint2 packed;
      packed.x = b[0] | (b[1] << 8) | (b[2] << 16) | (static_cast<uint32_t>(b[3]) << 24);
      packed.y = b[4] | (b[5] << 8) | (b[6] << 16) | (static_cast<uint32_t>(b[7]) << 24);
      *reinterpret_cast<uint2*>(q + blockIdx.x * cols + vi * 8) = packed;
    }
    if (dequantized != nullptr) detail::st_vec(dequantized + blockIdx.x * cols + vi * 8, detail::pack8<T>(back));
  }
}

// Registers per thread for the row: 4 vectors (up to 8192 columns) or 12 (24576: Llama-3-8B's
// 14336 and Qwen2.5-7B's 18944).
constexpr int kSmallRowVecs = 4, kLargeRowVecs = 12;

}  // namespace

Status quantize_fp8_rows(const QuantizeFp8RowsParams& p, cudaStream_t stream) {
  if (!p.x || !p.scales || (!p.q && !p.dequantized)) return invalid_argument("quantize_fp8_rows: null x, scales or outputs");
  if (p.rows <= 0 || p.cols <= 0 || p.ld < p.cols || p.group_size < 0)
    return invalid_argument("quantize_fp8_rows: rows " + std::to_string(p.rows) + ", cols " + std::to_string(p.cols) +
                            ", ld " + std::to_string(p.ld) + ", group_size " + std::to_string(p.group_size));
  if (p.rows > (int64_t{1} << 31) - 1) return invalid_argument("quantize_fp8_rows: too many rows");
  const int64_t group = p.group_size > 0 ? p.group_size : p.cols;
  const bool vec = group >= p.cols && p.cols % 8 == 0 && p.ld % 8 == 0 && detail::aligned16(p.x) &&
                   (p.q == nullptr || reinterpret_cast<uintptr_t>(p.q) % 8 == 0) &&
                   (p.dequantized == nullptr || detail::aligned16(p.dequantized)) &&
                   p.cols <= int64_t{kThreads} * 8 * kLargeRowVecs;
  return detail::dispatch_half(p.dtype, "quantize_fp8_rows", [&](auto tag) {
    using T = decltype(tag);
    if (vec) {
      auto kernel = p.cols <= int64_t{kThreads} * 8 * kSmallRowVecs ? quantize_fp8_rows_vec_kernel<T, kSmallRowVecs>
                                                                      : quantize_fp8_rows_vec_kernel<T, kLargeRowVecs>;
      detail::launch_kernel(kernel, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream,
                            static_cast<const T*>(p.x), p.cols, p.ld, p.static_scale, p.amax_ub,
                            static_cast<__nv_fp8_storage_t*>(p.q), p.scales, static_cast<T*>(p.dequantized));
      return detail::launch_status("quantize_fp8_rows");
    }
    detail::launch_kernel(quantize_fp8_rows_kernel<T>, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream,
                          static_cast<const T*>(p.x), p.cols, p.ld, group, p.static_scale, p.amax_ub,
                          static_cast<__nv_fp8_storage_t*>(p.q), p.scales, static_cast<T*>(p.dequantized));
    return detail::launch_status("quantize_fp8_rows");
  });
}

}  // namespace tk::kernels
