// tokamak gemm: matrix products through cuBLASLt. Every product in the model is
// out[M, N] = x[M, K] @ w[N, K]^T (+ bias[N]) with bf16/fp16 (or scaled FP8) inputs and fp32 accumulation
// (products of few rows: kernels::gemv and kernels::fp8_gemv, see GemvUse); the
// algorithm is chosen once per shape and M bucket (exact up to 16 rows, then four per octave) by
// cuBLASLt's heuristic — or, with set_autotune, as the fastest of its candidates, timed on first
// use — and serves every M of the bucket that cuBLASLt accepts it for.
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/core.h"

namespace tk {

struct GemmArgs {
  const void* x = nullptr;     // [m, k] row-major, row stride ldx
  const void* w = nullptr;     // [n, k] row-major (a PyTorch Linear weight)
  const void* bias = nullptr;  // [n] in out_dtype, or nullptr
  void* out = nullptr;         // [m, n] row-major, row stride ldo
  int64_t m = 0, n = 0, k = 0;
  int64_t ldx = 0;             // 0: k
  int64_t ldo = 0;             // 0: n
  DType in_dtype = DType::kBF16;   // x and w: bf16 or fp16
  DType out_dtype = DType::kBF16;  // in_dtype or fp32 (logits)
};

// out[m, n] = sum_k (x[m, k] * x_scale) (w[n, k] * w_scale) (+ bias[n]): FP8 e4m3 x and w, fp32
// accumulation, bf16/fp16/fp32 out. Scales per tensor (device scalars) or, with per_row_scales,
// outer vectors: x_scale [m] (per token), w_scale [n] (per output channel), both applied in
// cuBLASLt's epilogue (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F; refused as kUnsupported where
// cuBLASLt has no such algorithm: the H200 with CUDA 13). k a multiple of 16; x, w, out and out's
// rows (ldo * element size) 16-byte aligned.
//
// Where outer vectors are not served, per-token / per-channel products run as a scalar-mode GEMM
// with x_scale = w_scale = a device kFp8ProductPrescale, followed by kernels::scale_fp8_product
// with gain kFp8ProductGain: the GEMM writes raw * 2^-18, raw = sum_k xq * wq, |raw| <= 448^2 K.
// Powers of two, so both steps are exact; the prescale keeps fp16 outputs in range up to
// K = 85,000 (bf16 would hold raw itself).
constexpr float kFp8ProductPrescale = 1.f / 512.f;
constexpr float kFp8ProductGain = 512.f * 512.f;
struct Fp8GemmArgs {
  const void* x = nullptr;        // [m, k] fp8 e4m3, contiguous
  const void* w = nullptr;        // [n, k] fp8 e4m3
  const float* x_scale = nullptr;  // device: [1], or [m] with per_row_scales
  const float* w_scale = nullptr;  // device: [1], or [n] with per_row_scales
  const void* bias = nullptr;     // [n] in out_dtype, or nullptr
  void* out = nullptr;            // [m, n] row-major, row stride ldo
  int64_t m = 0, n = 0, k = 0;
  int64_t ldo = 0;                // 0: n
  bool per_row_scales = false;
  DType out_dtype = DType::kBF16;
};

// Which kernel runs a product of few rows: cuBLASLt or our GEMV (kernels::gemv for bf16/fp16,
// kernels::fp8_gemv for scalar-scale FP8). kAuto: the GEMV for m <= kGemvAutoMaxM (16-bit) or
// kFp8GemvAutoMaxM (FP8); kAlways: for every m it serves (<= 16; tests and benchmarks); kNever:
// cuBLASLt only. Outer-vector FP8 scales always go to cuBLASLt. Both paths accept the same
// arguments (the checks come first) and neither syncs or allocates: graphs capture either.
// 16-bit products start at kAuto (TOKAMAK_GEMV=0: kNever): the GEMV is a programmatic dependent
// of the kernel before it, which cuBLASLt's kernels are not. FP8 products start at kNever — on
// the H200 the FP8 GEMV measured 0.4-2.3 us slower than cuBLASLt per shape at M = 1 and batch-1
// decode 289.1 against 292.8 tokens/s (docs/BENCHMARKS.md) — or kAuto with TOKAMAK_FP8_GEMV=1.
// kAuto also leaves to cuBLASLt the 16-bit weights above kGemvAutoMaxWeightBytes (TOKAMAK_GEMV_MAX_MB
// overrides it): there cuBLASLt streams at ~4.0 TB/s and the GEMV at 3.3-3.9 (H200, BENCHMARKS.md),
// more than the programmatic launch wins back; below it both are bound by the ramp of a short read,
// which the GEMV's launch overlaps with the kernel before.
enum class GemvUse { kAuto, kAlways, kNever };
constexpr int64_t kGemvAutoMaxM = 1;  // at 2-8 rows it lost 1-4 us per product to cuBLASLt (H200), PDL or not
constexpr int64_t kGemvAutoMaxWeightBytes = int64_t{64} << 20;
constexpr int64_t kFp8GemvAutoMaxM = 8;

class GemmRunner {
 public:
  static Result<std::unique_ptr<GemmRunner>> create(size_t workspace_bytes = 64ull << 20);
  ~GemmRunner();
  GemmRunner(const GemmRunner&) = delete;
  GemmRunner& operator=(const GemmRunner&) = delete;

  Status matmul(const GemmArgs& args, cudaStream_t stream);
  Status matmul_fp8(const Fp8GemmArgs& args, cudaStream_t stream);
  size_t cached_plans() const;

  // 0 (the default): cuBLASLt's first heuristic. n > 1: the first call of a shape in an M bucket
  // (exact up to 16 rows, then four buckets per octave) times up to n of the heuristic's
  // candidates on the call's own operands and keeps the fastest for every M of the bucket. A call
  // made while the stream is being captured takes the first candidate and tunes nothing.
  void set_autotune(int max_algorithms);
  // One line per tuned bucket: shape, candidates timed, heuristic and chosen times.
  const std::vector<std::string>& tuning_log() const;
  // GemvUse above: for bf16/fp16 products and for FP8 ones.
  void set_gemv(GemvUse use);
  void set_fp8_gemv(GemvUse use);

 private:
  struct Impl;
  explicit GemmRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tk
