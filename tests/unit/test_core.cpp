// Core: float conversions and tensor views.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/core.h"

namespace tk {

TEST(Core, Bf16RoundTripAndRounding) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
  // 1 + 2^-8 is halfway between bf16 neighbours 1 and 1 + 2^-7: ties to even gives 1.
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
}

TEST(Core, F16MatchesIeeeOnRandomValues) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> mag(-20.f, 12.f);
  for (int i = 0; i < 100000; ++i) {
    float x = std::ldexp(1.0f + static_cast<float>(rng() % 4096) / 4096.f, static_cast<int>(mag(rng)));
    if (rng() & 1) x = -x;
    uint16_t h = f32_to_f16(x);
    float back = f16_to_f32(h);
    // Round to nearest: the error is at most half an ulp of half precision (relative 2^-11, or
    // absolute 2^-25 in the subnormal range).
    float tol = std::max(std::fabs(x) * std::ldexp(1.f, -11), std::ldexp(1.f, -25));
    ASSERT_LE(std::fabs(back - x), tol) << x;
    ASSERT_EQ(f32_to_f16(back), h);  // representable values survive a round trip
  }
  EXPECT_TRUE(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
  EXPECT_EQ(f16_to_f32(0x3c00), 1.0f);
  EXPECT_EQ(f16_to_f32(0x0001), std::ldexp(1.f, -24));
}

TEST(Core, TensorViews) {
  Tensor t = Tensor::empty_cpu(DType::kF32, {4, 3});
  for (int i = 0; i < 12; ++i) t.data_as<float>()[i] = static_cast<float>(i);
  Tensor rows = t.slice_rows(1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(rows.data_as<float>()[0], 3.f);
  Tensor r = t.select_row(2);
  EXPECT_EQ(r.rank(), 1);
  EXPECT_EQ(r.data_as<float>()[1], 7.f);
  EXPECT_EQ(t.reshape({12}).dim(0), 12);
}

TEST(Core, StatusCarriesContext) {
  Status s = corrupt("bad header").with_context("model.safetensors");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "model.safetensors: bad header");
  Result<int> r = not_found("x");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(Core, LogLevelNames) {
  EXPECT_EQ(parse_log_level("silent"), LogLevel::kSilent);
  EXPECT_EQ(parse_log_level("none"), LogLevel::kSilent);
  EXPECT_EQ(parse_log_level("warn"), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_FALSE(parse_log_level("loud").has_value());
  EXPECT_FALSE(parse_log_level("").has_value());
}

TEST(Core, ReadTextFileNamesADirectoryAndAMissingFile) {
  auto dir = read_text_file("/tmp");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().message(), "/tmp: is a directory, not a file");
  auto missing = read_text_file("/nonexistent/tokamak.txt");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "/nonexistent/tokamak.txt: cannot open: No such file or directory");
}

}  // namespace tk
