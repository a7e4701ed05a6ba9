// Products with few rows (decode's linears): out[m, n] = T(alpha * sum_k x[m, k] w[n, k] (+ bias[n]))
// for m <= 16. At such m a product is a read of the weight; cuBLASLt reads the decode shapes at
// 2.2-4.0 TB/s of the H200's ~4.3 (docs/BENCHMARKS.md), and what it loses is mostly the ramp of
// each short read. Two operand formats share one kernel: FP8 e4m3 (fp8_gemv: alpha = x_scale[0] *
// w_scale[0], cuBLASLt's scalar-scale FP8 contract) and bf16/fp16 (gemv: alpha = 1, GemmRunner::
// matmul's contract).
//
// "Swap AB": the weight is the 16-row A operand of the MMA (mma.m16n8k32 e4m3, or m16n8k16
// bf16/fp16, f32 accumulators) and the tokens are its 8 columns (B), one or two token tiles. A dot
// product is a sum over k, so any permutation of k applied to both operands leaves it unchanged:
// lane (g = lane / 4, q = lane % 4) loads 16 contiguous bytes [16q, 16q + 16) of a 64-byte k chunk
// from weight rows g and g + 8 and from x row g, and uses bytes 0-7 as the (a0/a2 | a1/a3 | b0/b1)
// registers of one MMA and bytes 8-15 as those of a second — each format's fragment wants 4 bytes
// at k offsets 4q and 16 + 4q bytes of each row and column (two e4m3 pairs or one 16-bit pair
// each), and both operands are permuted alike. No shuffles, no shared memory for the operands,
// 16-byte loads.
//
// A block owns 16 weight rows; its kWarps warps split k (each warp kUnroll consecutive chunks per
// step, 128 contiguous bytes of each row, the next step's loads issued before this step's MMAs)
// and sum their fp32 accumulators in shared memory in a fixed order. Weights are streamed past L1
// (ld.global.nc.L1::no_allocate); x (at most 16 rows, read by every block) from L2.
//
// Launched as a programmatic dependent (common.cuh): the first step's weights load while the
// kernel before drains; x, the scales and the output wait for it.
// CPU twins: the fp32 product of the decoded operands (tests/gpu/test_fp8_gemv.cpp, test_gemv.cpp).
#include "common.cuh"
#include "kernels/kernels.h"
#include "mma.cuh"

namespace tk::kernels {
namespace {

using tile::ld_l2;
using tile::ld_stream;

constexpr int kWarps = 8;
constexpr int kUnroll = 2;                         // 64-byte k chunks per warp per step
constexpr int kChunk = 64;                         // k bytes of one pair of MMAs
constexpr int kRows = 16;                          // weight rows per block (the MMA's M)
constexpr int kStepBytes = kWarps * kUnroll * kChunk;  // k bytes covered by one step of the whole block

// The two MMAs of one 16-byte piece of weight rows g (a) and g + 8 (b) and of x row g (x).
struct E4m3 {
  static constexpr bool kScaled = true;
  static __device__ __forceinline__ void mma2(float (&acc)[4], const uint4& a, const uint4& b, const uint4& x) {
    tile::mma_e4m3(acc, a.x, b.x, a.y, b.y, x.x, x.y);
    tile::mma_e4m3(acc, a.z, b.z, a.w, b.w, x.z, x.w);
  }
};
template <typename H>  // __nv_bfloat16 or __half
struct Half {
  static constexpr bool kScaled = false;
  static __device__ __forceinline__ void mma2(float (&acc)[4], const uint4& a, const uint4& b, const uint4& x) {
    const uint32_t lo[4] = {a.x, b.x, a.y, b.y}, hi[4] = {a.z, b.z, a.w, b.w};
    tile::mma_16816<H>(acc, lo, x.x, x.y);
    tile::mma_16816<H>(acc, hi, x.z, x.w);
  }
};

struct GemvArgs {
  const uint8_t* x;       // [m, ldx elements]
  const uint8_t* w;       // [n, k]
  const float* x_scale;   // [1] (scaled formats)
  const float* w_scale;   // [1] (scaled formats)
  const void* bias;       // [n] out type, or nullptr
  void* out;              // [m, ldo]
  int m;
  int64_t n, k_bytes, ldx_bytes, ldo;
};

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
template <typename Format, typename T, int kTokenTiles>
__global__ void __launch_bounds__(kWarps * 32, kTokenTiles == 1 ? 4 : 2) gemv_kernel(const GemvArgs a) {
  __shared__ float partial[kWarps][kTokenTiles][4][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kRows, k = a.k_bytes;
  const bool lo_ok = row0 + g < a.n, hi_ok = row0 + g + 8 < a.n;
  const uint8_t* w_lo = a.w + (row0 + g) * k + q * 16;
  const uint8_t* w_hi = a.w + (row0 + g + 8) * k + q * 16;
  bool x_ok[kTokenTiles];
  const uint8_t* x_row[kTokenTiles];
#pragma unroll
  for (int t = 0; t < kTokenTiles; ++t) x_ok[t] = t * 8 + g < a.m, x_row[t] = a.x + (t * 8 + g) * a.ldx_bytes + q * 16;

  const uint4 zero = make_uint4(0, 0, 0, 0);
  // The byte offset (before q * 16) of chunk u of this warp's share of step s.
  auto chunk_k = [&](int64_t s, int u) { return s * kStepBytes + (warp * kUnroll + u) * kChunk; };
  auto load_w = [&](int64_t s, Operands<kTokenTiles>& o) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t kk = chunk_k(s, u);
      const bool k_ok = kk + q * 16 < k;  // k_bytes % 16 == 0: a 16-byte piece is all in or all out
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
      for (int t = 0; t < kTokenTiles; ++t) o.x[t][u] = k_ok && x_ok[t] ? ld_l2(x_row[t] + kk) : zero;
    }
  };

  float acc[kTokenTiles][4] = {};
  const int64_t steps = (k + kStepBytes - 1) / kStepBytes;
  Operands<kTokenTiles> cur, next;
  load_w(0, cur);  // constant for the whole step: in flight while the kernel before drains
  detail::pdl_wait();
  detail::pdl_trigger();
  load_x(0, cur);
  for (int64_t s = 0; s < steps; ++s) {
    if (s + 1 < steps) load_w(s + 1, next), load_x(s + 1, next);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int t = 0; t < kTokenTiles; ++t) Format::mma2(acc[t], cur.w_lo[u], cur.w_hi[u], cur.x[t][u]);
    cur = next;
  }

#pragma unroll
  for (int t = 0; t < kTokenTiles; ++t)
#pragma unroll
    for (int j = 0; j < 4; ++j) partial[warp][t][j][lane] = acc[t][j];
  __syncthreads();
  // One output per thread: (tile t, register j, lane l) holds row g(l) (+ 8 for j >= 2), token
  // t * 8 + 2 q(l) + j % 2. The warps' partial sums are added in warp order.
  T* out = static_cast<T*>(a.out);
  const T* bias = static_cast<const T*>(a.bias);
  for (int v = threadIdx.x; v < kTokenTiles * 128; v += kWarps * 32) {
    const int t = v / 128, j = (v / 32) % 4, l = v % 32;
    const int64_t row = row0 + l / 4 + (j >= 2 ? 8 : 0);
    const int token = t * 8 + 2 * (l % 4) + (j & 1);
    if (row >= a.n || token >= a.m) continue;
    float sum = 0.f;
#pragma unroll
    for (int wi = 0; wi < kWarps; ++wi) sum += partial[wi][t][j][l];
    float value = sum;
    if constexpr (Format::kScaled) value = __fmul_rn(__fmul_rn(__ldg(a.x_scale), __ldg(a.w_scale)), sum);
    if (bias != nullptr) value = __fadd_rn(value, to_f32(bias[row]));
    out[token * a.ldo + row] = from_f32<T>(value);
  }
}

template <typename Format, typename T>
Status launch(const GemvArgs& a, const char* op, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>((a.n + kRows - 1) / kRows)), block(kWarps * 32);
  if (a.m <= 8) detail::launch_kernel(gemv_kernel<Format, T, 1>, grid, block, 0, stream, a);
  else detail::launch_kernel(gemv_kernel<Format, T, 2>, grid, block, 0, stream, a);
  return detail::launch_status(op);
}

template <typename Format>
Status launch_out(const GemvArgs& a, DType out_dtype, const char* op, cudaStream_t stream) {
  switch (out_dtype) {
    case DType::kBF16: return launch<Format, __nv_bfloat16>(a, op, stream);
    case DType::kF16: return launch<Format, __half>(a, op, stream);
    case DType::kF32: return launch<Format, float>(a, op, stream);
    default:
      return unsupported(std::string(op) + ": output dtype " + dtype_name(out_dtype) + " (bf16, fp16 and fp32 only)");
  }
}

// The checks both entry points share: shape, k granularity (16-byte pieces), alignment, grid.
Status validate(const char* op, const void* x, const void* w, const void* out, int64_t m, int64_t max_m, int64_t n,
                int64_t k, int64_t k_multiple, int64_t ldx, int64_t ldo) {
  const std::string name(op);
  if (!x || !w || !out) return invalid_argument(name + ": null x, w or out");
  if (m < 1 || m > max_m || n <= 0 || k <= 0 || ldx < k || ldo < n)
    return invalid_argument(name + ": m " + std::to_string(m) + " (1.." + std::to_string(max_m) + "), n " +
                            std::to_string(n) + ", k " + std::to_string(k) + ", ldx " + std::to_string(ldx) + ", ldo " +
                            std::to_string(ldo));
  if (k % k_multiple != 0 || ldx % k_multiple != 0)
    return unsupported(name + ": k and ldx must be multiples of " + std::to_string(k_multiple) + ", got " +
                       std::to_string(k) + " and " + std::to_string(ldx));
  if (!detail::aligned16(x) || !detail::aligned16(w))
    return unsupported(name + ": x and w must be 16-byte aligned (16-byte loads of their rows)");
  if ((n + kRows - 1) / kRows > int64_t{1} << 31) return unsupported(name + ": n " + std::to_string(n) + " exceeds the grid");
  return Status();
}

}  // namespace

Status fp8_gemv(const Fp8GemvParams& p, cudaStream_t stream) {
  TK_RETURN_IF_ERROR(validate("fp8_gemv", p.x, p.w, p.out, p.m, kFp8GemvMaxM, p.n, p.k, 16, p.k, p.ldo));
  if (!p.x_scale || !p.w_scale) return invalid_argument("fp8_gemv: null x_scale or w_scale");
  const GemvArgs a{static_cast<const uint8_t*>(p.x), static_cast<const uint8_t*>(p.w), p.x_scale, p.w_scale, p.bias,
                   p.out, static_cast<int>(p.m), p.n, p.k, p.k, p.ldo};
  return launch_out<E4m3>(a, p.out_dtype, "fp8_gemv", stream);
}

Status gemv(const GemvParams& p, cudaStream_t stream) {
  const int64_t ldx = p.ldx ? p.ldx : p.k, ldo = p.ldo ? p.ldo : p.n;
  TK_RETURN_IF_ERROR(validate("gemv", p.x, p.w, p.out, p.m, kGemvMaxM, p.n, p.k, 8, ldx, ldo));
  if (p.bias && p.out_dtype != p.in_dtype)
    return unsupported("gemv: a bias needs the output in the input dtype (" + std::string(dtype_name(p.in_dtype)) + ")");
  if (p.out_dtype != p.in_dtype && p.out_dtype != DType::kF32)
    return unsupported(std::string("gemv: output dtype ") + dtype_name(p.out_dtype) + " for " + dtype_name(p.in_dtype) +
                       " inputs (the input dtype or fp32)");
  const GemvArgs a{static_cast<const uint8_t*>(p.x), static_cast<const uint8_t*>(p.w), nullptr, nullptr, p.bias, p.out,
                   static_cast<int>(p.m), p.n, p.k * 2, ldx * 2, ldo};
  switch (p.in_dtype) {
    case DType::kBF16: return launch_out<Half<__nv_bfloat16>>(a, p.out_dtype, "gemv", stream);
    case DType::kF16: return launch_out<Half<__half>>(a, p.out_dtype, "gemv", stream);
    default: return unsupported(std::string("gemv: input dtype ") + dtype_name(p.in_dtype) + " (bf16 and fp16 only)");
  }
}

}  // namespace tk::kernels
