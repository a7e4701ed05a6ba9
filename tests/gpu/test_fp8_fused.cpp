// The producers that quantize their own output for the FP8 linear after them (rmsnorm and
// add+rmsnorm before qkv and gate_up, silu_mul before down) against the unfused path they replace:
// the same kernel writing bf16/fp16, then quantize_fp8_rows. The fused fp8 bytes and scales must
// be bit-identical to the unfused ones, and both to the CPU twin fp8::quantize_input of the
// unfused rounded output; the residual and the compute-dtype output (when asked for too) must be
// unchanged by the fusion. Likewise add+rmsnorm and silu_mul reading an FP8 GEMM's raw product
// and its scales against scale_fp8_product followed by the plain kernel. Random data at odd sizes, rows of different spreads, an outlier, bf16
// and fp16, with and without the amax clamp.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "gemm/gemm.h"
#include "gpu_util.h"
#include "kernels/kernels.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using gpu_test::random_floats;
using gpu_test::round_to;

// [rows, cols] values whose rows have spreads from 0.25 to ~4 (so scales differ per row), one
// outlier, rounded to dt.
std::vector<float> spread_rows(int64_t rows, int64_t cols, uint32_t seed, DType dt, float mean = 0.f) {
  std::vector<float> v = random_floats(static_cast<size_t>(rows * cols), seed, 1.f, mean);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) v[r * cols + c] *= 0.25f + static_cast<float>((r * 7) % 16) * 0.25f;
  v[v.size() / 2] = 37.f;
  round_to(v, dt);
  return v;
}

// fp8 bytes in a device buffer poisoned with 0x7f (a valid code, so a byte the kernel forgot shows).
struct Fp8Out {
  DeviceBuffer q;
  DeviceArray scales;
  Fp8Out(int64_t rows, int64_t cols) : scales(rows, DType::kF32) {
    auto b = DeviceBuffer::allocate(static_cast<size_t>(rows * cols));
    TK_CHECK(b.ok());
    q = std::move(*b);
    CUDA_CHECK(cudaMemset(q.data(), 0x7f, static_cast<size_t>(rows * cols)));
    scales.poison();
  }
  std::vector<uint8_t> bytes(size_t n) const {
    std::vector<uint8_t> h(n);
    CUDA_CHECK(cudaMemcpy(h.data(), q.data(), n, cudaMemcpyDeviceToHost));
    return h;
  }
};

// The unfused path's second kernel: quantize_fp8_rows over the producer's output.
void quantize_unfused(const DeviceArray& y, int64_t rows, int64_t cols, float ub, DType dt, Fp8Out& out) {
  kernels::QuantizeFp8RowsParams p;
  p.x = y.data(), p.rows = rows, p.cols = cols, p.ld = cols, p.amax_ub = ub;
  p.q = out.q.data(), p.scales = out.scales.as<float>(), p.dtype = dt;
  const Status st = kernels::quantize_fp8_rows(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
}

// Fused against unfused (bytes and scales identical), and the unfused one against the CPU twin.
void expect_same_fp8(const Fp8Out& fused, const Fp8Out& unfused, const std::vector<float>& y_rounded, int64_t rows,
                     int64_t cols, float ub) {
  CUDA_CHECK(cudaDeviceSynchronize());
  const size_t n = static_cast<size_t>(rows * cols);
  const std::vector<uint8_t> got = fused.bytes(n), want = unfused.bytes(n);
  int64_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) mismatches += got[i] != want[i];
  EXPECT_EQ(mismatches, 0) << "fp8 bytes, fused vs unfused";
  EXPECT_EQ(fused.scales.download(), unfused.scales.download()) << "scales, fused vs unfused";
  std::vector<uint8_t> twin_q(n);
  std::vector<float> twin_s(static_cast<size_t>(rows));
  const Fp8Scheme scheme{WeightScale::kChannel, InputQuant::kDynamicToken, ub};
  fp8::quantize_input(y_rounded.data(), rows, cols, cols, scheme, 0.f, twin_q.data(), twin_s.data());
  EXPECT_EQ(want, twin_q) << "fp8 bytes, unfused vs the CPU twin";
  EXPECT_EQ(unfused.scales.download(), twin_s) << "scales, unfused vs the CPU twin";
}

struct RowCase {
  int64_t rows, cols;
  float ub;
};

void check_rmsnorm_fp8(DType dt, const RowCase& c, bool residual, bool also_out, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << c.rows << "x" << c.cols << " ub " << c.ub
                                    << (residual ? " add+rmsnorm" : " rmsnorm") << (also_out ? " +out" : ""));
  const int64_t n = c.rows * c.cols;
  const auto x = spread_rows(c.rows, c.cols, seed, dt), delta = spread_rows(c.rows, c.cols, seed + 1, dt);
  auto w = random_floats(static_cast<size_t>(c.cols), seed + 2, 0.2f, 1.f);
  round_to(w, dt);
  DeviceArray dw = DeviceArray::from(w, dt), dd = DeviceArray::from(delta, dt);
  DeviceArray x_unfused = DeviceArray::from(x, dt), x_fused = DeviceArray::from(x, dt);
  DeviceArray y_unfused(n, dt), y_fused(n, dt);
  y_unfused.poison(), y_fused.poison();
  Fp8Out q_unfused(c.rows, c.cols), q_fused(c.rows, c.cols);

  kernels::RmsNormParams p;
  p.weight = dw.data(), p.num_tokens = c.rows, p.hidden = c.cols, p.eps = 1e-5f, p.dtype = dt;
  if (residual) p.delta = dd.data();
  kernels::RmsNormParams plain = p;
  if (residual) plain.residual = x_unfused.data();
  else plain.x = x_unfused.data();
  plain.out = y_unfused.data();
  ASSERT_TRUE(kernels::rmsnorm(plain, nullptr).ok());
  quantize_unfused(y_unfused, c.rows, c.cols, c.ub, dt, q_unfused);

  kernels::RmsNormParams fused = p;
  if (residual) fused.residual = x_fused.data();
  else fused.x = x_fused.data();
  fused.out = also_out ? y_fused.data() : nullptr;
  fused.q = q_fused.q.data(), fused.q_scales = q_fused.scales.as<float>(), fused.amax_ub = c.ub;
  const Status st = kernels::rmsnorm(fused, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();

  expect_same_fp8(q_fused, q_unfused, y_unfused.download(), c.rows, c.cols, c.ub);
  EXPECT_EQ(x_fused.download(), x_unfused.download()) << "the residual stream";
  if (also_out) EXPECT_EQ(y_fused.download(), y_unfused.download()) << "the compute-dtype output";
}

TEST(Fp8Fused, RmsNormQuantizesLikeNormThenQuantizeExactly) {
  const RowCase cases[] = {{1, 8, 0.f},       {7, 528, 0.f},     {19, 4096, 0.f},  {99, 1000, 0.f},
                           {3, 16384, 0.f},   {5, 5120, 1.5f},   {1, 4096, 0.f},   {2, 3584, 0.f}};
  uint32_t seed = 12000;
  for (DType dt : {DType::kBF16, DType::kF16})
    for (const RowCase& c : cases)
      for (bool residual : {false, true}) check_rmsnorm_fp8(dt, c, residual, /*also_out=*/(seed & 8) != 0, seed += 3);
}

void check_silu_mul_fp8(DType dt, const RowCase& c, bool also_out, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << c.rows << "x" << c.cols << " ub " << c.ub
                                    << (also_out ? " +out" : ""));
  const int64_t n = c.rows * c.cols;
  const auto gu = spread_rows(c.rows, 2 * c.cols, seed, dt, 0.3f);
  DeviceArray dgu = DeviceArray::from(gu, dt), y_unfused(n, dt), y_fused(n, dt);
  y_unfused.poison(), y_fused.poison();
  Fp8Out q_unfused(c.rows, c.cols), q_fused(c.rows, c.cols);

  kernels::SiluMulParams plain{dgu.data(), y_unfused.data(), c.rows, c.cols, dt};
  ASSERT_TRUE(kernels::silu_mul(plain, nullptr).ok());
  quantize_unfused(y_unfused, c.rows, c.cols, c.ub, dt, q_unfused);

  kernels::SiluMulParams fused{dgu.data(), also_out ? y_fused.data() : nullptr, c.rows, c.cols, dt};
  fused.q = q_fused.q.data(), fused.q_scales = q_fused.scales.as<float>(), fused.amax_ub = c.ub;
  const Status st = kernels::silu_mul(fused, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();

  expect_same_fp8(q_fused, q_unfused, y_unfused.download(), c.rows, c.cols, c.ub);
  if (also_out) EXPECT_EQ(y_fused.download(), y_unfused.download()) << "the compute-dtype output";
}

TEST(Fp8Fused, SiluMulQuantizesLikeSiluMulThenQuantizeExactly) {
  // 14336: Llama-3-8B (4 vectors x 448 threads); 18944: Qwen2.5-7B; 32768: the widest served.
  const RowCase cases[] = {{1, 8, 0.f},     {7, 1424, 0.f},  {19, 14336, 0.f}, {1, 14336, 0.f},
                           {99, 200, 0.f},  {3, 18944, 0.f}, {2, 32768, 0.f},  {9, 4096, 0.75f}};
  uint32_t seed = 13000;
  for (DType dt : {DType::kBF16, DType::kF16})
    for (const RowCase& c : cases) check_silu_mul_fp8(dt, c, /*also_out=*/(seed & 4) != 0, seed += 5);
}

// ---- consumers reading a raw FP8 product (its scales applied by them, not by scale_fp8_product)

// A raw product as the scalar GEMM at kFp8ProductPrescale writes it (values of ~0.01-150 in T),
// positive x_scale [rows] and w_scale [cols] of amax / 448 size: scaled values of ~1, at most
// ~100 (fp16 holds the SiLU products).
struct RawProduct {
  std::vector<float> raw, x_scale, w_scale;
  RawProduct(int64_t rows, int64_t cols, uint32_t seed, DType dt)
      : raw(spread_rows(rows, cols, seed, dt)),
        x_scale(random_floats(static_cast<size_t>(rows), seed + 1, 0.002f, 0.008f)),
        w_scale(random_floats(static_cast<size_t>(cols), seed + 2, 0.00003f, 0.0001f)) {
    for (float& v : raw) v *= 4.f;
    round_to(raw, dt);
    for (float& v : x_scale) v = std::fabs(v) + 1e-4f;
    for (float& v : w_scale) v = std::fabs(v) + 1e-5f;
  }
};

// The unfused path's pass: scale_fp8_product in place over `y`.
void scale_unfused(DeviceArray& y, int64_t rows, int64_t cols, const DeviceArray& xs, const DeviceArray& ws, DType dt) {
  kernels::ScaleFp8ProductParams s;
  s.out = y.data(), s.m = rows, s.n = cols, s.ldo = cols, s.x_scale = xs.as<float>(), s.w_scale = ws.as<float>();
  s.gain = kFp8ProductGain, s.dtype = dt;
  const Status st = kernels::scale_fp8_product(s, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
}

void check_add_rmsnorm_raw_delta(DType dt, const RowCase& c, bool quantize, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << c.rows << "x" << c.cols << (quantize ? " -> fp8" : ""));
  const int64_t n = c.rows * c.cols;
  const auto x = spread_rows(c.rows, c.cols, seed, dt);
  const RawProduct d(c.rows, c.cols, seed + 3, dt);
  auto w = random_floats(static_cast<size_t>(c.cols), seed + 9, 0.2f, 1.f);
  round_to(w, dt);
  DeviceArray dw = DeviceArray::from(w, dt), xs = DeviceArray::from(d.x_scale, DType::kF32);
  DeviceArray ws = DeviceArray::from(d.w_scale, DType::kF32);
  DeviceArray delta_unfused = DeviceArray::from(d.raw, dt), delta_fused = DeviceArray::from(d.raw, dt);
  DeviceArray res_unfused = DeviceArray::from(x, dt), res_fused = DeviceArray::from(x, dt);
  DeviceArray y_unfused(n, dt), y_fused(n, dt);
  y_unfused.poison(), y_fused.poison();
  Fp8Out q_unfused(c.rows, c.cols), q_fused(c.rows, c.cols);

  scale_unfused(delta_unfused, c.rows, c.cols, xs, ws, dt);
  kernels::RmsNormParams p;
  p.weight = dw.data(), p.num_tokens = c.rows, p.hidden = c.cols, p.eps = 1e-5f, p.dtype = dt;
  if (quantize) p.q = q_unfused.q.data(), p.q_scales = q_unfused.scales.as<float>(), p.amax_ub = c.ub;
  p.residual = res_unfused.data(), p.delta = delta_unfused.data(), p.out = y_unfused.data();
  ASSERT_TRUE(kernels::rmsnorm(p, nullptr).ok());
  if (quantize) p.q = q_fused.q.data(), p.q_scales = q_fused.scales.as<float>();
  p.residual = res_fused.data(), p.delta = delta_fused.data(), p.out = y_fused.data();
  p.delta_scales.x_scale = xs.as<float>(), p.delta_scales.w_scale = ws.as<float>(), p.delta_scales.gain = kFp8ProductGain;
  const Status st = kernels::rmsnorm(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  CUDA_CHECK(cudaDeviceSynchronize());

  EXPECT_EQ(res_fused.download(), res_unfused.download()) << "the residual stream";
  EXPECT_EQ(y_fused.download(), y_unfused.download()) << "the normed output";
  EXPECT_EQ(delta_fused.download(), d.raw) << "the raw product is read, not written";
  if (quantize) expect_same_fp8(q_fused, q_unfused, y_unfused.download(), c.rows, c.cols, c.ub);
}

TEST(Fp8Fused, AddRmsNormScalesARawDeltaLikeScaleThenNormExactly) {
  const RowCase cases[] = {{1, 8, 0.f}, {7, 528, 0.f}, {19, 4096, 0.f}, {99, 1000, 0.f}, {3, 16384, 0.f}, {5, 5120, 1.5f}};
  uint32_t seed = 14000;
  for (DType dt : {DType::kBF16, DType::kF16})
    for (const RowCase& c : cases)
      for (bool quantize : {false, true}) check_add_rmsnorm_raw_delta(dt, c, quantize, seed += 11);
}

void check_silu_mul_raw_gate_up(DType dt, const RowCase& c, bool quantize, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " " << c.rows << "x" << c.cols << (quantize ? " -> fp8" : ""));
  const int64_t n = c.rows * c.cols;
  const RawProduct gu(c.rows, 2 * c.cols, seed, dt);
  DeviceArray xs = DeviceArray::from(gu.x_scale, DType::kF32), ws = DeviceArray::from(gu.w_scale, DType::kF32);
  DeviceArray gu_unfused = DeviceArray::from(gu.raw, dt), gu_fused = DeviceArray::from(gu.raw, dt);
  DeviceArray y_unfused(n, dt), y_fused(n, dt);
  y_unfused.poison(), y_fused.poison();
  Fp8Out q_unfused(c.rows, c.cols), q_fused(c.rows, c.cols);

  scale_unfused(gu_unfused, c.rows, 2 * c.cols, xs, ws, dt);
  kernels::SiluMulParams p{gu_unfused.data(), y_unfused.data(), c.rows, c.cols, dt};
  if (quantize) p.q = q_unfused.q.data(), p.q_scales = q_unfused.scales.as<float>(), p.amax_ub = c.ub;
  ASSERT_TRUE(kernels::silu_mul(p, nullptr).ok());
  p.gate_up = gu_fused.data(), p.out = y_fused.data();
  if (quantize) p.q = q_fused.q.data(), p.q_scales = q_fused.scales.as<float>();
  p.gate_up_scales.x_scale = xs.as<float>(), p.gate_up_scales.w_scale = ws.as<float>();
  p.gate_up_scales.gain = kFp8ProductGain;
  const Status st = kernels::silu_mul(p, nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  CUDA_CHECK(cudaDeviceSynchronize());

  EXPECT_EQ(y_fused.download(), y_unfused.download()) << "the activation";
  EXPECT_EQ(gu_fused.download(), gu.raw) << "the raw product is read, not written";
  if (quantize) expect_same_fp8(q_fused, q_unfused, y_unfused.download(), c.rows, c.cols, c.ub);
}

TEST(Fp8Fused, SiluMulScalesARawGateUpLikeScaleThenSiluMulExactly) {
  const RowCase cases[] = {{1, 8, 0.f}, {7, 1424, 0.f}, {19, 14336, 0.f}, {1, 14336, 0.f}, {99, 200, 0.f}, {9, 4096, 0.75f}};
  uint32_t seed = 15000;
  for (DType dt : {DType::kBF16, DType::kF16})
    for (const RowCase& c : cases)
      for (bool quantize : {false, true}) check_silu_mul_raw_gate_up(dt, c, quantize, seed += 13);
}

TEST(Fp8Fused, LaunchersRejectBadFp8Outputs) {
  auto buf = DeviceBuffer::allocate(1 << 20);
  ASSERT_TRUE(buf.ok());
  char* base = static_cast<char*>(buf->data());
  float* scales = reinterpret_cast<float*>(base + (1 << 19));
  kernels::SiluMulParams s{base, nullptr, 1, kernels::kSiluMulFp8MaxInter + 8, DType::kBF16};
  s.q = base + 4096, s.q_scales = scales;
  EXPECT_EQ(kernels::silu_mul(s, nullptr).code(), StatusCode::kUnsupported) << "inter past the register row";
  s.inter = 64, s.q_scales = nullptr;
  EXPECT_EQ(kernels::silu_mul(s, nullptr).code(), StatusCode::kInvalidArgument) << "q without scales";
  s.q_scales = scales, s.q = base + 4100;
  EXPECT_EQ(kernels::silu_mul(s, nullptr).code(), StatusCode::kInvalidArgument) << "misaligned q";
  kernels::RmsNormParams r;
  r.x = base, r.weight = base + 8192, r.num_tokens = 1, r.hidden = 64, r.q = base + 16384;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "q without scales";
  r.q_scales = scales, r.q = base + 16388;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "misaligned q";
  r.q = nullptr, r.q_scales = nullptr;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "neither out nor q";
  r.out = base + 32768, r.delta_scales.x_scale = scales, r.delta_scales.w_scale = scales;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "delta scales without a residual";
  s.q = nullptr, s.out = base + 32768, s.gate_up_scales.x_scale = scales;
  EXPECT_EQ(kernels::silu_mul(s, nullptr).code(), StatusCode::kInvalidArgument) << "x_scale without w_scale";
}

}  // namespace
}  // namespace tk
