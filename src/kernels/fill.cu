// Deterministic random fill for tests, benchmarks and random-weight models: x[i] = mean + std *
// N(0,1), the normal drawn by Box-Muller from Philox(seed, i / 4), so a (seed, i) pair gives the
// same value whatever the launch shape.
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

template <typename T>
__device__ __forceinline__ T from_float(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else if constexpr (std::is_same_v<T, __half>) return __float2half_rn(v);
  else return __float2bfloat16_rn(v);
}

constexpr uint64_t kFillStream = 0x66696c6c72616e64ull;  // "fillrand": keeps fills apart from the sampler

template <typename T>
__global__ void fill_random_kernel(T* __restrict__ x,  // [count]
                                   int64_t count, uint64_t seed, float mean, float std) {
  const int64_t quads = (count + 3) / 4;
  for (int64_t q = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; q < quads;
       q += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t r[4];
    philox4x32(seed, kFillStream, static_cast<uint64_t>(q), r);
    float z[4];
#pragma unroll
    for (int k = 0; k < 2; ++k) {
      const float u1 = static_cast<float>((r[2 * k] >> 8) + 1u) * (1.0f / 16777216.0f);  // (0, 1]
      const float u2 = static_cast<float>(r[2 * k + 1] >> 8) * (1.0f / 16777216.0f);    // [0, 1)
      const float rad = sqrtf(-2.f * logf(u1));
      float s, c;
      sincospif(2.f * u2, &s, &c);
      z[2 * k] = rad * c, z[2 * k + 1] = rad * s;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (q * 4 + e < count) x[q * 4 + e] = from_float<T>(mean + std * z[e]);
  }
}

}  // namespace

Status fill_random(void* x, DType dtype, int64_t count, uint64_t seed, float mean, float std, cudaStream_t stream) {
  if (!x) return invalid_argument("fill_random: null x");
  if (count <= 0) return invalid_argument("fill_random: count must be > 0, got " + std::to_string(count));
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(((count + 3) / 4 + kThreads - 1) / kThreads, 8192));
  switch (dtype) {
    case DType::kF32:
      fill_random_kernel<float><<<blocks, kThreads, 0, stream>>>(static_cast<float*>(x), count, seed, mean, std);
      break;
    case DType::kF16:
      fill_random_kernel<__half><<<blocks, kThreads, 0, stream>>>(static_cast<__half*>(x), count, seed, mean, std);
      break;
    case DType::kBF16:
      fill_random_kernel<__nv_bfloat16>
          <<<blocks, kThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(x), count, seed, mean, std);
      break;
    default: return unsupported(std::string("fill_random: dtype ") + dtype_name(dtype) + " (bf16, fp16, fp32)");
  }
  return detail::launch_status("fill_random");
}

}  // namespace tk::kernels
