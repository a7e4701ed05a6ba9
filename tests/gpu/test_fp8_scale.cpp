// kernels::scale_fp8_product against its CPU twin fp8::scale_product (src/backend/fp8.cpp): random
// products and scales (never zeros), odd m and n, rows inside wider buffers (the columns past n
// must come back untouched), per-row / per-column / scalar scales, with and without bias; bf16,
// fp16 and fp32 (an FP8 lm_head's logits); the 16-byte-vector path and the one-element path. The
// twin runs the kernel's fp32 operations in the kernel's order, then rounds once to the dtype:
// every element must be within one rounding of it (in practice identical; a compiler that fuses
// the twin's bias add into an FMA could move the last bit).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
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

struct ScaleCase {
  int64_t m, n, ldo;
  bool x_per_row, w_per_col;
};

TEST(Fp8Scale, KernelMatchesTheCpuTwin) {
  const ScaleCase cases[] = {
      {1, 1, 1, true, true},         {1, 989, 989, true, true},      {7, 1000, 1024, true, true},  // vector path, ldo > n
      {33, 72, 80, true, false},     {19, 99, 104, false, true},     {129, 6144, 6144, true, true},
      {5, 4104, 4120, false, false}, {64, 200, 203, true, true},     {3, 8, 8, true, true}};
  uint32_t seed = 8100;
  constexpr float kSentinel = 7.f;  // what the columns past n hold, before and after
  for (const ScaleCase& c : cases)
    for (DType dt : {DType::kBF16, DType::kF16, DType::kF32})
      for (bool bias : {false, true}) {
        SCOPED_TRACE("m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " ldo=" + std::to_string(c.ldo) +
                     (c.x_per_row ? " x per row" : " x scalar") + (c.w_per_col ? " w per col" : " w scalar") + " " +
                     dtype_name(dt) + (bias ? " bias" : ""));
        // The prescaled products the GEMM writes (|raw| * 2^-18 of a few units), per-token scales
        // of activations' amax / 448, per-channel scales of weights' amax / 448.
        auto raw = random_floats(c.m * c.ldo, seed++, 2.f);
        for (int64_t r = 0; r < c.m; ++r)
          for (int64_t k = c.n; k < c.ldo; ++k) raw[r * c.ldo + k] = kSentinel;
        auto xs = random_floats(c.x_per_row ? c.m : 1, seed++, 0.0005f, 0.002f);
        auto ws = random_floats(c.w_per_col ? c.n : 1, seed++, 0.00005f, 0.0002f);
        auto b = random_floats(c.n, seed++, 0.5f);
        for (float& v : xs) v = std::fabs(v) + 1e-4f;
        for (float& v : ws) v = std::fabs(v) + 1e-5f;
        if (dt != DType::kF32) round_to(raw, dt), round_to(b, dt);

        std::vector<float> want = raw;
        fp8::scale_product(want.data(), c.m, c.n, c.ldo, xs.data(), c.x_per_row, ws.data(), c.w_per_col,
                           kFp8ProductGain, bias ? b.data() : nullptr);
        if (dt != DType::kF32) round_to(want, dt);

        DeviceArray dout = DeviceArray::from(raw, dt), dxs = DeviceArray::from(xs, DType::kF32);
        DeviceArray dws = DeviceArray::from(ws, DType::kF32), db = DeviceArray::from(b, dt);
        kernels::ScaleFp8ProductParams p;
        p.out = dout.data(), p.m = c.m, p.n = c.n, p.ldo = c.ldo;
        p.x_scale = dxs.as<float>(), p.w_scale = dws.as<float>();
        p.x_scale_per_row = c.x_per_row, p.w_scale_per_col = c.w_per_col, p.gain = kFp8ProductGain;
        p.bias = bias ? db.data() : nullptr, p.dtype = dt;
        Status st = kernels::scale_fp8_product(p, nullptr);
        ASSERT_TRUE(st.ok()) << st.to_string();
        CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> got = dout.download();

        // One rounding of the dtype (relative, at the binade's bottom; fp16's subnormal step below),
        // plus fp32's last bit of the terms where the twin's compiler fused the bias add.
        const float ulp = dt == DType::kBF16 ? 1.f / 128.f : dt == DType::kF16 ? 1.f / 1024.f : 1.f / 8388608.f;
        const float floor = dt == DType::kF16 ? 6e-8f : 1e-37f;
        int64_t off = 0, different = 0, padding_touched = 0;
        for (int64_t r = 0; r < c.m; ++r)
          for (int64_t k = 0; k < c.ldo; ++k) {
            const float g = got[r * c.ldo + k], w = want[r * c.ldo + k];
            if (k >= c.n) {
              padding_touched += g != kSentinel;
              continue;
            }
            different += g != w;
            const float terms = std::fabs(w) + (bias ? std::fabs(b[k]) : 0.f);
            off += !(std::fabs(g - w) <= std::fabs(w) * ulp + terms / 4194304.f + floor);  // NaN counts as off
          }
        EXPECT_EQ(off, 0);
        EXPECT_EQ(padding_touched, 0);
        if (different > 0) std::printf("[fp8 scale] %lld of %lld outputs one rounding from the twin's\n",
                                       static_cast<long long>(different), static_cast<long long>(c.m * c.n));
      }
}

TEST(Fp8Scale, RefusesWhatItCannotRun) {
  DeviceArray out(64, DType::kBF16), s(64, DType::kF32);
  kernels::ScaleFp8ProductParams p;
  p.out = out.data(), p.m = 2, p.n = 8, p.ldo = 8, p.x_scale = s.as<float>(), p.w_scale = s.as<float>();
  p.ldo = 7;
  EXPECT_EQ(kernels::scale_fp8_product(p, nullptr).code(), StatusCode::kInvalidArgument);  // ldo < n
  p.ldo = 8, p.w_scale = nullptr;
  EXPECT_EQ(kernels::scale_fp8_product(p, nullptr).code(), StatusCode::kInvalidArgument);
  p.w_scale = s.as<float>(), p.dtype = DType::kF8E4M3;  // a product is never written in fp8
  EXPECT_EQ(kernels::scale_fp8_product(p, nullptr).code(), StatusCode::kUnsupported);
}

}  // namespace
}  // namespace tk
