// FP8 on the GPU against its CPU twins (src/backend/fp8.cpp) on random data at odd sizes: the row
// quantization kernels (per token, static, clamped, 1x128 groups, dequantized output; rows held in
// registers of up to 8192 and 24576 columns, and the looping kernel for groups, widths not a
// multiple of 8 and wider rows) must give the twin's bytes and scales exactly; the cuBLASLt FP8 GEMM (per-tensor scalars, per-token x
// per-channel outer vectors where served, and the scalar GEMM followed by scale_fp8_product that
// the backend runs where they are not; bias, bf16/fp16/fp32 out) must match the fp32 product of
// the dequantized operands.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "gemm/gemm.h"
#include "gpu_util.h"
#include "kernels/kernels.h"
#include "ref/ref.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using gpu_test::random_floats;
using gpu_test::rel_l2;
using gpu_test::round_to;

std::vector<uint8_t> download_bytes(const DeviceBuffer& b, size_t n) {
  std::vector<uint8_t> h(n);
  CUDA_CHECK(cudaMemcpy(h.data(), b.data(), n, cudaMemcpyDeviceToHost));
  return h;
}

struct QuantCase {
  int64_t rows, cols;
  InputQuant mode;
  float ub;
};

TEST(Fp8Quantize, KernelMatchesTheCpuTwinExactly) {
  const QuantCase cases[] = {{1, 8, InputQuant::kDynamicToken, 0.f},      {3, 4104, InputQuant::kDynamicToken, 0.f},
                             {17, 200, InputQuant::kDynamicToken, 1.5f},  {5, 72, InputQuant::kStaticTensor, 0.f},
                             {9, 300, InputQuant::kDynamicGroup, 0.f},    {1, 14336, InputQuant::kDynamicGroup, 0.f},
                             {33, 1000, InputQuant::kStaticTensor, 0.f},  {2, 14336, InputQuant::kDynamicToken, 0.f},
                             {3, 100, InputQuant::kDynamicToken, 0.f},    {1, 28672, InputQuant::kDynamicToken, 0.f}};
  uint32_t seed = 4100;
  for (const QuantCase& c : cases)
    for (DType dt : {DType::kBF16, DType::kF16}) {
      SCOPED_TRACE(std::to_string(c.rows) + "x" + std::to_string(c.cols) + " " + input_quant_name(c.mode) + " " +
                   dtype_name(dt));
      const int64_t ld = c.cols + 24;  // rows inside a wider buffer, as slices of qkv are
      auto x = random_floats(c.rows * ld, seed++, 2.f);
      x[3] = 300.f;  // an outlier: saturates with the static scale and the clamp
      round_to(x, dt);
      const float static_scale = 0.01f;
      const Fp8Scheme scheme{WeightScale::kChannel, c.mode, c.ub};
      const int64_t per_row = fp8::input_scales_per_row(c.mode, c.cols);
      std::vector<uint8_t> want_q(c.rows * c.cols);
      std::vector<float> want_s(c.rows * per_row);
      fp8::quantize_input(x.data(), c.rows, c.cols, ld, scheme, static_scale, want_q.data(), want_s.data());

      DeviceArray dx = DeviceArray::from(x, dt), ds(c.rows * per_row, DType::kF32), dst(1, DType::kF32);
      dst.upload({static_scale});
      DeviceArray dq_back(c.rows * c.cols, dt);
      auto q = DeviceBuffer::allocate(c.rows * c.cols);
      ASSERT_TRUE(q.ok());
      CUDA_CHECK(cudaMemset(q->data(), 0x7f, c.rows * c.cols));
      ds.poison(), dq_back.poison();
      kernels::QuantizeFp8RowsParams p;
      p.x = dx.data(), p.rows = c.rows, p.cols = c.cols, p.ld = ld;
      p.static_scale = c.mode == InputQuant::kStaticTensor ? dst.as<float>() : nullptr;
      p.amax_ub = c.ub, p.group_size = c.mode == InputQuant::kDynamicGroup ? kFp8BlockSize : 0;
      p.q = q->data(), p.scales = ds.as<float>(), p.dequantized = dq_back.data(), p.dtype = dt;
      Status st = kernels::quantize_fp8_rows(p, nullptr);
      ASSERT_TRUE(st.ok()) << st.to_string();
      CUDA_CHECK(cudaDeviceSynchronize());
      EXPECT_EQ(ds.download(), want_s);
      const std::vector<uint8_t> got_q = download_bytes(*q, c.rows * c.cols);
      int64_t mismatches = 0;
      for (size_t i = 0; i < got_q.size(); ++i) mismatches += got_q[i] != want_q[i];
      EXPECT_EQ(mismatches, 0);
      std::vector<float> back(c.rows * c.cols);
      for (int64_t r = 0; r < c.rows; ++r)
        for (int64_t k = 0; k < c.cols; ++k)
          back[r * c.cols + k] = fp8_e4m3_to_f32(want_q[r * c.cols + k]) * want_s[r * per_row + (per_row > 1 ? k / 128 : 0)];
      round_to(back, dt);
      EXPECT_EQ(dq_back.download(), back);
    }
}

struct GemmCase {
  int64_t m, n, k;
};

// How the scales reach the product: cuBLASLt's scalar mode (one scale each), its outer vectors
// (per token x per channel; refused where not served), or the scalar GEMM at the constant
// kFp8ProductPrescale followed by kernels::scale_fp8_product (the CUDA backend's per-token x
// per-channel path where outer vectors are not served).
enum class ScaleMode { kScalar, kOuterVectors, kScaledAfter };
const char* mode_name(ScaleMode m) {
  return m == ScaleMode::kScalar ? "scalar" : m == ScaleMode::kOuterVectors ? "outer-vector" : "scaled-after";
}

// One shape's FP8 operands, shared by every mode and output: fp8 values as per-token / per-channel
// quantization leaves them (a Gaussian whose amax of ~3.5 sigma lands near 448), scales as the
// quantizer writes them (amax / 448), and one scale each for scalar mode (the largest).
struct Fp8Operands {
  std::vector<uint8_t> xq, wq;  // [m, k], [n, k] fp8 e4m3
  std::vector<float> xs, ws;    // [m], [n]
  float xs1 = 0.f, ws1 = 0.f;
  std::vector<float> bias;      // [n]
};

// Positive scales around `typical` (+-20%), as amax / 448 of rows of similar spread.
std::vector<float> random_scales(int64_t n, uint32_t seed, float typical) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(0.8f * typical, 1.2f * typical);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

Fp8Operands random_operands(const GemmCase& s, uint32_t seed) {
  const std::vector<uint8_t> table = gpu_test::gaussian_fp8_table(seed);
  Fp8Operands o;
  o.xq = gpu_test::random_fp8(s.m, s.k, seed + 1, table), o.wq = gpu_test::random_fp8(s.n, s.k, seed + 2, table);
  // x ~ N(0, 1) and w ~ N(0, 0.05) quantized: amax ~3.5 sigma over 448.
  o.xs = random_scales(s.m, seed + 3, 3.5f / 448.f), o.ws = random_scales(s.n, seed + 4, 0.05f * 3.5f / 448.f);
  o.xs1 = *std::max_element(o.xs.begin(), o.xs.end()), o.ws1 = *std::max_element(o.ws.begin(), o.ws.end());
  o.bias = random_floats(s.n, seed + 5, 0.5f);
  return o;
}

// raw[m, n] = sum_k fp8(xq[m, k]) fp8(wq[n, k]) in fp32 (ref::matmul, OpenMP): every mode's
// product is raw times its scales.
std::vector<float> raw_product(const GemmCase& s, const Fp8Operands& o) {
  float decode[256];
  for (int i = 0; i < 256; ++i) decode[i] = fp8_e4m3_to_f32(static_cast<uint8_t>(i));
  std::vector<float> xd(o.xq.size()), wd(o.wq.size()), raw(static_cast<size_t>(s.m * s.n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(xd.size()); ++i) xd[i] = decode[o.xq[i]];
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(wd.size()); ++i) wd[i] = decode[o.wq[i]];
  ref::matmul(xd.data(), wd.data(), nullptr, s.m, s.n, s.k, raw.data());
  return raw;
}

// The operands on the device, and the product of one mode into `out` (poisoned first).
struct DeviceOperands {
  DeviceBuffer xq, wq;
  DeviceArray xs, ws, xs1, ws1, prescale;
  explicit DeviceOperands(const Fp8Operands& o)
      : xq(gpu_test::upload_bytes(o.xq)), wq(gpu_test::upload_bytes(o.wq)),
        xs(DeviceArray::from(o.xs, DType::kF32)), ws(DeviceArray::from(o.ws, DType::kF32)),
        xs1(DeviceArray::from({o.xs1}, DType::kF32)), ws1(DeviceArray::from({o.ws1}, DType::kF32)),
        prescale(DeviceArray::from({kFp8ProductPrescale}, DType::kF32)) {}
};

Status fp8_product(GemmRunner& gemm, const DeviceOperands& d, const GemmCase& s, ScaleMode mode, const void* bias,
                   DeviceArray& out, DType out_dtype) {
  out.poison();
  Fp8GemmArgs g;
  g.m = s.m, g.n = s.n, g.k = s.k, g.out = out.data(), g.out_dtype = out_dtype;
  g.x = d.xq.data(), g.w = d.wq.data();
  switch (mode) {
    case ScaleMode::kScalar:
      g.x_scale = d.xs1.as<float>(), g.w_scale = d.ws1.as<float>(), g.bias = bias;
      return gemm.matmul_fp8(g, nullptr);
    case ScaleMode::kOuterVectors:
      g.per_row_scales = true, g.x_scale = d.xs.as<float>(), g.w_scale = d.ws.as<float>(), g.bias = bias;
      return gemm.matmul_fp8(g, nullptr);
    case ScaleMode::kScaledAfter: {
      g.x_scale = g.w_scale = d.prescale.as<float>();
      TK_RETURN_IF_ERROR(gemm.matmul_fp8(g, nullptr));
      kernels::ScaleFp8ProductParams p;
      p.out = out.data(), p.m = s.m, p.n = s.n, p.ldo = s.n, p.x_scale = d.xs.as<float>(), p.w_scale = d.ws.as<float>();
      p.gain = kFp8ProductGain, p.bias = bias, p.dtype = out_dtype;
      return kernels::scale_fp8_product(p, nullptr);
    }
  }
  return internal_error("fp8_product: mode");
}

// Every mode and output of every shape against the fp32 product of the same dequantized operands.
// The operands and their product are made once per shape, on all host cores.
TEST(Fp8Gemm, ScalarOuterVectorAndScaledAfterAgainstReference) {
  auto gemm = GemmRunner::create(32 << 20);
  ASSERT_TRUE(gemm.ok());
  const GemmCase shapes[] = {{1, 8, 16},       {1, 6144, 4096}, {3, 200, 64},      {7, 1000, 4112},
                             {16, 4096, 4096}, {33, 72, 208},   {64, 14336, 4096}, {129, 4096, 14336}};
  uint32_t seed = 5100;
  int unserved = 0;  // outer-vector cases cuBLASLt refused (the H200, CUDA 13: all of them)
  for (const GemmCase& s : shapes) {
    const std::string shape = "m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k);
    const Fp8Operands o = random_operands(s, seed += 7);
    const DeviceOperands d(o);
    const std::vector<float> raw = raw_product(s, o);
    std::string worst = "[fp8 gemm] " + shape + ":";
    for (ScaleMode mode : {ScaleMode::kScalar, ScaleMode::kOuterVectors, ScaleMode::kScaledAfter}) {
      double mode_worst = 0;
      bool ran = false;
      for (DType out : {DType::kBF16, DType::kF16, DType::kF32})
        for (bool bias : {false, true}) {
          if (out == DType::kF32 && bias) continue;  // not a combination the model runs (logits have no bias)
          SCOPED_TRACE(shape + " " + mode_name(mode) + " out " + dtype_name(out) + (bias ? " bias" : ""));
          std::vector<float> b = o.bias;
          if (out != DType::kF32) round_to(b, out);
          DeviceArray db = DeviceArray::from(b, out), dout(s.m * s.n, out);
          const Status st = fp8_product(**gemm, d, s, mode, bias ? db.data() : nullptr, dout, out);
          if (mode == ScaleMode::kOuterVectors && st.code() == StatusCode::kUnsupported) {
            ++unserved;
            continue;
          }
          ASSERT_TRUE(st.ok()) << st.to_string();
          CUDA_CHECK(cudaDeviceSynchronize());
          std::vector<float> want(raw.size());
          for (int64_t r = 0; r < s.m; ++r)
            for (int64_t c = 0; c < s.n; ++c) {
              const float scale = mode == ScaleMode::kScalar ? o.xs1 * o.ws1 : o.xs[r] * o.ws[c];
              want[r * s.n + c] = raw[r * s.n + c] * scale + (bias ? b[c] : 0.f);
            }
          const double err = rel_l2(dout.download(), want);
          // fp32 out: summation order (and the FP8 MMA's accumulation) only, 1.3e-4 seen at a
          // scalar shape on the H200; half out: one rounding more (two when scaled after: the
          // prescaled product, then the scaled one).
          EXPECT_LT(err, out == DType::kF32 ? 3e-4 : 5e-3);
          mode_worst = std::max(mode_worst, err), ran = true;
        }
      char part[64];
      if (ran) std::snprintf(part, sizeof part, " %s %.2e", mode_name(mode), mode_worst);
      else std::snprintf(part, sizeof part, " %s refused", mode_name(mode));
      worst += part;
    }
    std::printf("%s (worst relative L2)\n", worst.c_str());
  }
  if (unserved > 0)
    std::printf("[fp8 gemm] cuBLASLt served no FP8 outer-vector algorithm for %d cases: the backend runs those "
                "linears scaled after the GEMM\n", unserved);
}

TEST(Fp8Gemm, RefusesWhatItCannotRun) {
  auto gemm = GemmRunner::create(1 << 20);
  ASSERT_TRUE(gemm.ok());
  DeviceArray a(64, DType::kF32);
  Fp8GemmArgs g;
  g.x = g.w = g.out = a.data(), g.x_scale = g.w_scale = a.as<float>(), g.m = 1, g.n = 8, g.k = 24;
  EXPECT_EQ(gemm.value()->matmul_fp8(g, nullptr).code(), StatusCode::kUnsupported);  // k % 16
  g.k = 16, g.x_scale = nullptr;
  EXPECT_EQ(gemm.value()->matmul_fp8(g, nullptr).code(), StatusCode::kInvalidArgument);
  // Output rows that are not 16-byte aligned (989 bf16, 1978 bytes), or an output that does not start
  // aligned: cuBLASLt's FP8 kernels need both, so they are refused by name before it is asked.
  g.x_scale = a.as<float>(), g.n = 989;
  const Status rows = gemm.value()->matmul_fp8(g, nullptr);
  EXPECT_EQ(rows.code(), StatusCode::kUnsupported);
  EXPECT_NE(rows.message().find("16-byte"), std::string::npos) << rows.to_string();
  g.n = 8, g.out = a.as<float>() + 2;  // 8 bytes in
  EXPECT_EQ(gemm.value()->matmul_fp8(g, nullptr).code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace tk
