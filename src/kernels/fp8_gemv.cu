// FP8 e4m3 products with few rows (decode): out[m, n] = T(alpha * sum_k x[m, k] w[n, k] (+ bias[n]))
// for m <= kFp8GemvMaxM, alpha = x_scale[0] * w_scale[0]. At such m the product is a read of the
// weight, and cuBLASLt's FP8 kernels read it at 1.7-3.7 TB/s of the H200's ~4.3 (docs/BENCHMARKS.md).
//
// "Swap AB": the weight is the 16-row A operand of mma.m16n8k32 (e4m3 x e4m3 -> f32) and the
// tokens are its 8 columns (B), one or two token tiles. A dot product is a sum over k, so any
// permutation of k applied to both operands leaves it unchanged: lane (g = lane / 4, q = lane % 4)
// loads 16 contiguous bytes [16q, 16q + 16) of a 64-byte k chunk from weight rows g and g + 8 and
// from x row g, and uses bytes 0-7 as the (a0/a2 | a1/a3 | b0/b1) registers of one k32 MMA and
// bytes 8-15 as those of a second — the fragment layout wants 4 bytes at k 4q and 4 at 16 + 4q of
// each row and column, and both operands are permuted alike. No shuffles, no shared memory for
// the operands, 16-byte loads.
//
// A block owns 16 weight rows; its kWarps warps split k (each warp kUnroll consecutive chunks per
// step, 128 contiguous bytes of each row, the next step's loads issued before this step's MMAs)
// and sum their fp32 accumulators in shared memory in a fixed order. Weights are streamed past L1
// (ld.global.nc.L1::no_allocate); x (at most 16 x k bytes, read by every block) through it.
// CPU twin: the fp32 product of the decoded operands (tests/gpu/test_fp8_gemv.cpp).
#include "common.cuh"
#include "kernels/kernels.h"
#include "mma.cuh"

namespace tk::kernels {
namespace {

using tile::ld_stream;
using tile::mma_e4m3;

constexpr int kWarps = 8;
constexpr int kUnroll = 2;                  // 64-byte k chunks per warp per step
constexpr int kChunk = 64;                  // k bytes of one pair of k32 MMAs
constexpr int kRows = 16;                   // weight rows per block (the MMA's M)
constexpr int kStepK = kWarps * kUnroll * kChunk;  // k covered by one step of the whole block

// One warp's operands for one step: rows g and g + 8 of the block's weight rows, x rows g (+ 8 per
// token tile), each 16 bytes of each of kUnroll chunks. Zeros where the row, token or k is out of
// range (zero products: the sum is unchanged).
template <int kTokenTiles>
struct Operands {
  uint4 w_lo[kUnroll], w_hi[kUnroll];
  uint4 x[kTokenTiles][kUnroll];
};

template <typename T>
__device__ __forceinline__ float to_f32(T v) {
  return static_cast<float>(v);
}
template <typename T>
__device__ __forceinline__ T from_f32(float v) {
  if constexpr (std::is_same_v<T, float>) return v;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return __float2bfloat16_rn(v);
  else return __float2half_rn(v);
}

// Registers capped for 4 resident blocks (2 with two token tiles, which would spill at 3): qkv's
// 384 blocks then fit the H200's 132 SMs in one wave (bench/dev/fp8_gemv_variants.cu).
template <typename T, int kTokenTiles>
__global__ void __launch_bounds__(kWarps * 32, kTokenTiles == 1 ? 4 : 2)
    fp8_gemv_kernel(const uint8_t* __restrict__ x,      // [m, k] e4m3
                    const uint8_t* __restrict__ w,      // [n, k] e4m3
                    const float* __restrict__ x_scale,  // [1]
                    const float* __restrict__ w_scale,  // [1]
                    const T* __restrict__ bias,         // [n] or nullptr
                    T* __restrict__ out,                // [m, ldo]
                    int m, int64_t n, int64_t k, int64_t ldo) {
  __shared__ float partial[kWarps][kTokenTiles][4][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const bool lo_ok = row0 + g < n, hi_ok = row0 + g + 8 < n;
  const uint8_t* w_lo = w + (row0 + g) * k + q * 16;
  const uint8_t* w_hi = w + (row0 + g + 8) * k + q * 16;
  bool x_ok[kTokenTiles];
  const uint8_t* x_row[kTokenTiles];
#pragma unroll
  for (int t = 0; t < kTokenTiles; ++t) x_ok[t] = t * 8 + g < m, x_row[t] = x + (t * 8 + g) * k + q * 16;

  const uint4 zero = make_uint4(0, 0, 0, 0);
  // The byte offset (before q * 16) of chunk u of this warp's share of step s.
  auto chunk_k = [&](int64_t s, int u) { return s * kStepK + (warp * kUnroll + u) * kChunk; };
  auto load_w = [&](int64_t s, Operands<kTokenTiles>& o) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t kk = chunk_k(s, u);
      const bool k_ok = kk + q * 16 < k;  // k % 16 == 0: a 16-byte piece is all in or all out
      o.w_lo[u] = k_ok && lo_ok ? ld_stream(w_lo + kk) : zero;
      o.w_hi[u] = k_ok && hi_ok ? ld_stream(w_hi + kk) : zero;
    }
  };
  auto load_x = [&](int64_t s, Operands<kTokenTiles>& o) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t kk = chunk_k(s, u);
      const bool k_ok = kk + q * 16 < k;
#pragma unroll
      for (int t = 0; t < kTokenTiles; ++t) o.x[t][u] = k_ok && x_ok[t] ? detail::ldg_vec(x_row[t] + kk) : zero;
    }
  };

  float acc[kTokenTiles][4] = {};
  const int64_t steps = (k + kStepK - 1) / kStepK;
  Operands<kTokenTiles> cur, next;
  // Launched as a programmatic dependent of the kernel before it (launch() below): the first
  // weights, constant for the whole step, load while that kernel drains; x, the scales and the
  // output belong to it, so they wait until it has finished and flushed.
  load_w(0, cur);
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  load_x(0, cur);
  for (int64_t s = 0; s < steps; ++s) {
    if (s + 1 < steps) load_w(s + 1, next), load_x(s + 1, next);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int t = 0; t < kTokenTiles; ++t) {
        const uint4 a = cur.w_lo[u], b = cur.w_hi[u], xv = cur.x[t][u];
        mma_e4m3(acc[t], a.x, b.x, a.y, b.y, xv.x, xv.y);
        mma_e4m3(acc[t], a.z, b.z, a.w, b.w, xv.z, xv.w);
      }
    cur = next;
  }

#pragma unroll
  for (int t = 0; t < kTokenTiles; ++t)
#pragma unroll
    for (int j = 0; j < 4; ++j) partial[warp][t][j][lane] = acc[t][j];
  __syncthreads();
  // One output per thread: (tile t, register j, lane l) holds row g(l) (+ 8 for j >= 2), token
  // t * 8 + 2 q(l) + j % 2. The warps' partial sums are added in warp order.
  for (int v = threadIdx.x; v < kTokenTiles * 128; v += kWarps * 32) {
    const int t = v / 128, j = (v / 32) % 4, l = v % 32;
    const int64_t row = row0 + l / 4 + (j >= 2 ? 8 : 0);
    const int token = t * 8 + 2 * (l % 4) + (j & 1);
    if (row >= n || token >= m) continue;
    float sum = 0.f;
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi) sum += partial[wi][t][j][l];
    const float alpha = __fmul_rn(__ldg(x_scale), __ldg(w_scale));
    float value = __fmul_rn(alpha, sum);
    if (bias != nullptr) value = __fadd_rn(value, to_f32(bias[row]));
    out[token * ldo + row] = from_f32<T>(value);
  }
}

// Programmatic stream serialization: the GEMV's blocks may start once the previous kernel's blocks
// have all exited (not after its completion and flush) and prefetch weights before
// griddepcontrol.wait; in a captured graph the edge becomes a programmatic one.
template <typename T, int kTokenTiles>
Status launch_tiles(const Fp8GemvParams& p, cudaStream_t stream) {
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>((p.n + kRows - 1) / kRows));
  config.blockDim = dim3(kWarps * 32);
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = 1;
  config.attrs = attribute, config.numAttrs = 1;
  const cudaError_t err = cudaLaunchKernelEx(
      &config, fp8_gemv_kernel<T, kTokenTiles>, static_cast<const uint8_t*>(p.x), static_cast<const uint8_t*>(p.w),
      p.x_scale, p.w_scale, static_cast<const T*>(p.bias), static_cast<T*>(p.out), static_cast<int>(p.m), p.n, p.k,
      p.ldo);
  if (err != cudaSuccess) return internal_error(std::string("fp8_gemv: kernel launch failed: ") + cudaGetErrorString(err));
  return detail::launch_status("fp8_gemv");
}

template <typename T>
Status launch(const Fp8GemvParams& p, cudaStream_t stream) {
  return p.m <= 8 ? launch_tiles<T, 1>(p, stream) : launch_tiles<T, 2>(p, stream);
}

}  // namespace

Status fp8_gemv(const Fp8GemvParams& p, cudaStream_t stream) {
  if (!p.x || !p.w || !p.x_scale || !p.w_scale || !p.out) return invalid_argument("fp8_gemv: null x, w, scale or out");
  if (p.m < 1 || p.m > kFp8GemvMaxM || p.n <= 0 || p.k <= 0 || p.ldo < p.n)
    return invalid_argument("fp8_gemv: m " + std::to_string(p.m) + " (1.." + std::to_string(kFp8GemvMaxM) + "), n " +
                            std::to_string(p.n) + ", k " + std::to_string(p.k) + ", ldo " + std::to_string(p.ldo));
  if (p.k % 16 != 0) return unsupported("fp8_gemv: k must be a multiple of 16, got " + std::to_string(p.k));
  if (!detail::aligned16(p.x) || !detail::aligned16(p.w))
    return unsupported("fp8_gemv: x and w must be 16-byte aligned (16-byte loads of their rows)");
  if ((p.n + kRows - 1) / kRows > int64_t{1} << 31)
    return unsupported("fp8_gemv: n " + std::to_string(p.n) + " exceeds the grid");
  switch (p.out_dtype) {
    case DType::kBF16: return launch<__nv_bfloat16>(p, stream);
    case DType::kF16: return launch<__half>(p, stream);
    case DType::kF32: return launch<float>(p, stream);
    default:
      return unsupported(std::string("fp8_gemv: output dtype ") + dtype_name(p.out_dtype) + " (bf16, fp16 and fp32 only)");
  }
}

}  // namespace tk::kernels
