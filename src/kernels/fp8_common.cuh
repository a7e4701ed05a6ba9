// The per-token FP8 e4m3 arithmetic shared by the standalone quantizer (fp8_quant.cu) and the
// kernels that quantize their own output for the FP8 linear that reads it (rmsnorm.cu,
// silu_mul.cu). One definition, so a fused producer writes the same bytes and scales as
// quantize_fp8_rows over the producer's rounded output. CPU twin: fp8::quantize_input.
#pragma once

#include <cuda_fp8.h>

#include "common.cuh"

namespace tk::kernels::detail {

constexpr float kFp8Max = 448.f, kFp8MinScale = 1.f / (448.f * 512.f);

// The scale of a row from its amax: max(min(amax, ub) / 448, 1 / (448 * 512)), a true division.
__device__ __forceinline__ float fp8_row_scale(float amax, float amax_ub) {
  if (amax_ub > 0.f) amax = fminf(amax, amax_ub);
  return fmaxf(amax / kFp8Max, kFp8MinScale);
}

// fp8(v / scale), round to nearest even, saturated to +-448.
__device__ __forceinline__ __nv_fp8_storage_t fp8_e4m3(float v, float scale) {
  return __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
}

// 8 values quantized and stored as one 8-byte word (q 8-byte aligned).
__device__ __forceinline__ void store_fp8x8(const float f[8], float scale, __nv_fp8_storage_t* q) {
  uint32_t lo = 0, hi = 0;
#pragma unroll
  for (int e = 0; e < 4; ++e) lo |= static_cast<uint32_t>(fp8_e4m3(f[e], scale)) << (8 * e);
#pragma unroll
  for (int e = 0; e < 4; ++e) hi |= static_cast<uint32_t>(fp8_e4m3(f[e + 4], scale)) << (8 * e);
  *reinterpret_cast<uint2*>(q) = make_uint2(lo, hi);
}

// The amax of 8 values, folded into `amax`.
__device__ __forceinline__ float amax8(const float f[8], float amax) {
#pragma unroll
  for (int e = 0; e < 8; ++e) amax = fmaxf(amax, fabsf(f[e]));
  return amax;
}

// One output of an FP8 product whose scales were left for after the GEMM (scale_fp8_product):
// raw * row_scale * col_scale + bias in fp32 with explicit round-to-nearest operations (no FMA
// contraction), row_scale = x_scale[r] * gain, in the order of the CPU twin fp8::scale_product.
__device__ __forceinline__ float fp8_product_scaled(float raw, float row_scale, float col_scale, float bias) {
  return __fadd_rn(__fmul_rn(__fmul_rn(raw, row_scale), col_scale), bias);
}
__device__ __forceinline__ float fp8_product_row_scale(const float* x_scale, int64_t row, float gain) {
  return __fmul_rn(__ldg(x_scale + row), gain);
}

// 8 raw outputs of columns [c, c + 8) scaled (no bias) and rounded to T, as scale_fp8_product
// writes them and a consumer reading its output sees them.
template <typename T>
__device__ __forceinline__ void scale_raw8(float f[8], float row_scale, const float* __restrict__ w_scale) {
#pragma unroll
  for (int e = 0; e < 8; ++e) f[e] = fp8_product_scaled(f[e], row_scale, __ldg(w_scale + e), 0.f);
  unpack8<T>(pack8<T>(f), f);
}

}  // namespace tk::kernels::detail
