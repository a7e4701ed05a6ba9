// FP8 e4m3 on the host: the conversions (every code, rounding to nearest even, saturation), the
// quantization of inputs and weights and the scaling of products that the FP8 kernels are checked
// against.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend/backend.h"

namespace tk {
namespace {

TEST(Fp8E4M3, EveryCodeRoundTrips) {
  for (int b = 0; b < 256; ++b) {
    const float v = fp8_e4m3_to_f32(static_cast<uint8_t>(b));
    if ((b & 0x7f) == 0x7f) {
      EXPECT_TRUE(std::isnan(v)) << b;
      continue;
    }
    EXPECT_EQ(f32_to_fp8_e4m3(v), b) << "code " << b << " value " << v;
  }
}

TEST(Fp8E4M3, KnownValues) {
  EXPECT_EQ(fp8_e4m3_to_f32(0x7e), 448.f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), std::ldexp(1.f, -9));  // smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), std::ldexp(1.f, -6));  // smallest normal
  EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.f);
  EXPECT_EQ(fp8_e4m3_to_f32(0xb8), -1.f);
  EXPECT_EQ(f32_to_fp8_e4m3(1e9f), 0x7e);   // saturates, e4m3fn has no infinity
  EXPECT_EQ(f32_to_fp8_e4m3(-1e9f), 0xfe);
  EXPECT_EQ(f32_to_fp8_e4m3(460.f), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(INFINITY), 0x7e);
  EXPECT_EQ(f32_to_fp8_e4m3(std::nanf("")) & 0x7f, 0x7f);
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(1.f, -10)), 0x00);      // half the smallest subnormal: ties to 0
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(3.f, -10)), 0x02);      // 1.5 quanta: ties to even (2)
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(1.1f, -10)), 0x01);
}

// Between two neighbouring codes: below the midpoint the lower, above it the upper, at it the even.
TEST(Fp8E4M3, RoundsToNearestEven) {
  for (int b = 0; b < 0x7e; ++b) {
    const float lo = fp8_e4m3_to_f32(static_cast<uint8_t>(b)), hi = fp8_e4m3_to_f32(static_cast<uint8_t>(b + 1));
    const float mid = 0.5f * (lo + hi);
    EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(mid, 0.f)), b) << b;
    EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(mid, 1e9f)), b + 1) << b;
    EXPECT_EQ(f32_to_fp8_e4m3(mid), (b % 2 == 0) ? b : b + 1) << b;
    EXPECT_EQ(f32_to_fp8_e4m3(-mid), 0x80 | ((b % 2 == 0) ? b : b + 1)) << b;
  }
}

std::vector<float> ramp(int64_t n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = scale * std::sin(0.37f * static_cast<float>(i) + 0.1f) * (1 + i % 7);
  return v;
}

TEST(Fp8Quantize, DynamicTokenScalesByRowAmax) {
  const int64_t rows = 3, cols = 37, ld = 40;
  std::vector<float> x = ramp(rows * ld, 0.5f);
  for (int64_t c = 0; c < ld; ++c) x[2 * ld + c] = 0.f;  // an all-zero row: the floor scale, zeros
  std::vector<uint8_t> q(rows * cols);
  std::vector<float> s(rows);
  Fp8Scheme scheme{WeightScale::kChannel, InputQuant::kDynamicToken, 0.f};
  fp8::quantize_input(x.data(), rows, cols, ld, scheme, 0.f, q.data(), s.data());
  for (int64_t r = 0; r < 2; ++r) {
    float amax = 0;
    for (int64_t c = 0; c < cols; ++c) amax = std::max(amax, std::fabs(x[r * ld + c]));
    EXPECT_EQ(s[r], amax / 448.f);
    for (int64_t c = 0; c < cols; ++c) {
      EXPECT_EQ(q[r * cols + c], f32_to_fp8_e4m3(x[r * ld + c] / s[r]));
      EXPECT_NEAR(fp8_e4m3_to_f32(q[r * cols + c]) * s[r], x[r * ld + c], amax / 16);
    }
  }
  EXPECT_EQ(s[2], kFp8MinScale);
  for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(q[2 * cols + c], 0);
}

TEST(Fp8Quantize, UpperBoundClampsTheScaleAndSaturates) {
  std::vector<float> x = {1.f, -8.f, 2.f};
  std::vector<uint8_t> q(3);
  float s = 0;
  fp8::quantize_input(x.data(), 1, 3, 3, {WeightScale::kChannel, InputQuant::kDynamicToken, 4.f}, 0.f, q.data(), &s);
  EXPECT_EQ(s, 4.f / 448.f);
  EXPECT_EQ(fp8_e4m3_to_f32(q[1]), -448.f);
  EXPECT_EQ(fp8_e4m3_to_f32(q[2]), 224.f);
}

TEST(Fp8Quantize, GroupsOf128WithARaggedLastGroup) {
  const int64_t rows = 2, cols = 300;  // groups of 128, 128, 44
  std::vector<float> x = ramp(rows * cols, 1.f);
  for (int64_t c = 256; c < 300; ++c) x[cols + c] *= 1000.f;  // one group far larger than the rest
  ASSERT_EQ(fp8::input_scales_per_row(InputQuant::kDynamicGroup, cols), 3);
  std::vector<uint8_t> q(rows * cols);
  std::vector<float> s(rows * 3);
  fp8::quantize_input(x.data(), rows, cols, cols, {WeightScale::kBlock, InputQuant::kDynamicGroup, 0.f}, 0.f, q.data(),
                      s.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int g = 0; g < 3; ++g) {
      float amax = 0;
      for (int64_t c = g * 128; c < std::min<int64_t>(cols, (g + 1) * 128); ++c) amax = std::max(amax, std::fabs(x[r * cols + c]));
      EXPECT_EQ(s[r * 3 + g], amax / 448.f) << r << " " << g;
    }
  EXPECT_GT(s[5], 100 * s[4]);
}

TEST(Fp8Quantize, StaticScaleSaturates) {
  std::vector<float> x = {0.5f, 100.f, -0.25f};
  std::vector<uint8_t> q(3);
  float s = 0;
  fp8::quantize_input(x.data(), 1, 3, 3, {WeightScale::kTensor, InputQuant::kStaticTensor, 0.f}, 0.125f, q.data(), &s);
  EXPECT_EQ(s, 0.125f);
  EXPECT_EQ(fp8_e4m3_to_f32(q[0]), 4.f);
  EXPECT_EQ(fp8_e4m3_to_f32(q[1]), 448.f);
  EXPECT_EQ(fp8_e4m3_to_f32(q[2]), -2.f);
}

TEST(Fp8Weights, PerChannelRoundTripAndBlockDequantization) {
  const int64_t out = 130, in = 200;  // two row blocks, two column blocks, both ragged
  std::vector<float> w = ramp(out * in, 0.02f);
  std::vector<uint8_t> q(out * in);
  std::vector<float> scale(out), back(out * in);
  fp8::quantize_weight_per_channel(w.data(), out, in, q.data(), scale.data());
  fp8::dequantize_weight(q.data(), scale.data(), WeightScale::kChannel, out, in, back.data());
  for (int64_t n = 0; n < out; ++n)
    for (int64_t k = 0; k < in; ++k) EXPECT_LE(std::fabs(back[n * in + k] - w[n * in + k]), scale[n] * 16.f);
  const std::vector<float> blocks = {1.f, 2.f, 3.f, 4.f};  // [2, 2]
  fp8::dequantize_weight(q.data(), blocks.data(), WeightScale::kBlock, out, in, back.data());
  EXPECT_EQ(back[0], fp8_e4m3_to_f32(q[0]) * 1.f);
  EXPECT_EQ(back[127 * in + 128], fp8_e4m3_to_f32(q[127 * in + 128]) * 2.f);
  EXPECT_EQ(back[128 * in + 127], fp8_e4m3_to_f32(q[128 * in + 127]) * 3.f);
  EXPECT_EQ(back[129 * in + 199], fp8_e4m3_to_f32(q[129 * in + 199]) * 4.f);
}

// The twin of the scale pass after a constant-scale FP8 GEMM: powers of two, so every value is
// exact; the bias comes after the scales; the column past n is left alone.
TEST(Fp8ScaleProduct, RowAndColumnScalesThenBias) {
  std::vector<float> out = {1.f, 2.f, 3.f, 99.f,  // [2, ldo 4], n = 3
                            -4.f, 5.f, 6.f, 99.f};
  const std::vector<float> xs = {0.5f, 0.25f}, ws = {1.f, 2.f, 4.f}, bias = {10.f, 20.f, 30.f};
  fp8::scale_product(out.data(), 2, 3, 4, xs.data(), true, ws.data(), true, 4.f, bias.data());
  EXPECT_EQ(out, (std::vector<float>{12.f, 28.f, 54.f, 99.f, 6.f, 30.f, 54.f, 99.f}));
  std::vector<float> scalar = {1.f, -2.f, 3.f, 99.f};  // one scale each, no bias
  const float x1 = 0.5f, w1 = 8.f;
  fp8::scale_product(scalar.data(), 1, 3, 4, &x1, false, &w1, false, 2.f, nullptr);
  EXPECT_EQ(scalar, (std::vector<float>{8.f, -16.f, 24.f, 99.f}));
}

}  // namespace
}  // namespace tk
