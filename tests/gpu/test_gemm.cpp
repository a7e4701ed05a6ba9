// GemmRunner (cuBLASLt) against ref::matmul: fresh random inputs, outputs poisoned, odd sizes,
// strided x, bias, bf16/fp16 in, half or fp32 out; and the shapes it refuses.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gemm/gemm.h"
#include "gpu_util.h"
#include "ref/ref.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using gpu_test::random_floats;
using gpu_test::rel_l2;
using gpu_test::round_to;

struct Shape {
  int64_t m, n, k;
};

// One product; its error against the fp32 twin on the same rounded inputs.
double product_error(GemmRunner& gemm, const Shape& s, DType in, DType out, bool bias, uint32_t seed) {
  const int64_t ldx = s.k + 16;  // x rows inside a wider buffer, as q/k/v slices are
  auto x = random_floats(s.m * ldx, seed), w = random_floats(s.n * s.k, seed + 1, 0.05f);
  auto b = random_floats(s.n, seed + 2, 0.5f);
  round_to(x, in), round_to(w, in);
  if (out != DType::kF32) round_to(b, out);
  std::vector<float> xc(s.m * s.k), want(s.m * s.n);
  for (int64_t i = 0; i < s.m; ++i) std::copy_n(&x[i * ldx], s.k, &xc[i * s.k]);
  ref::matmul(xc.data(), w.data(), bias ? b.data() : nullptr, s.m, s.n, s.k, want.data());
  DeviceArray dx = DeviceArray::from(x, in), dw = DeviceArray::from(w, in), db = DeviceArray::from(b, out);
  DeviceArray dout(s.m * s.n, out);
  dout.poison();
  GemmArgs g;
  g.x = dx.data(), g.w = dw.data(), g.bias = bias ? db.data() : nullptr, g.out = dout.data();
  g.m = s.m, g.n = s.n, g.k = s.k, g.ldx = ldx, g.in_dtype = in, g.out_dtype = out;
  Status st = gemm.matmul(g, nullptr);
  EXPECT_TRUE(st.ok()) << st.to_string();
  CUDA_CHECK(cudaDeviceSynchronize());
  return rel_l2(dout.download(), want);
}

TEST(Gemm, OddShapesAgainstReference) {
  auto gemm = GemmRunner::create(16 << 20);
  ASSERT_TRUE(gemm.ok());
  const Shape shapes[] = {{1, 1, 8}, {1, 7, 24}, {2, 99, 1000}, {3, 989, 4104}, {4, 4096, 4096}, {1, 333, 14336},
                          {5, 99, 1000}, {7, 989, 4104}, {19, 300, 520},
                          // pairs of one M bucket: the second M runs the first's algorithm
                          {97, 989, 4104}, {100, 989, 4104}, {600, 1024, 520}, {630, 1024, 520}};
  uint32_t seed = 900;
  for (const Shape& s : shapes)
    for (DType in : {DType::kBF16, DType::kF16})
      for (DType out : {in, DType::kF32})
        for (bool bias : {false, true}) {
          if (bias && out == DType::kF32) continue;  // not a combination the model uses (logits have no bias)
          SCOPED_TRACE("m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k) +
                       " in " + dtype_name(in) + " out " + dtype_name(out) + (bias ? " bias" : ""));
          const double err = product_error(**gemm, s, in, out, bias, seed += 3);
          // fp32 outputs differ from the twin only by summation order; half outputs also by one rounding.
          EXPECT_LT(err, out == DType::kF32 ? 1e-5 : gpu_test::kHalfTolerance);
        }
}

// Autotuned: every candidate the runner keeps computes the same product; M = 97 and 100 share a
// bucket (97..112), so the second is served by the first's choice and tunes nothing.
TEST(Gemm, AutotunedMatchesReferenceAndTunesOncePerBucket) {
  auto gemm = GemmRunner::create(16 << 20);
  ASSERT_TRUE(gemm.ok());
  (*gemm)->set_autotune(8);
  uint32_t seed = 1900;
  for (const Shape& s : {Shape{97, 989, 4104}, Shape{100, 989, 4104}, Shape{3, 333, 1000}, Shape{600, 4096, 520}})
    for (bool bias : {false, true}) {
      SCOPED_TRACE("m=" + std::to_string(s.m) + " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k));
      EXPECT_LT(product_error(**gemm, s, DType::kBF16, DType::kBF16, bias, seed += 3), gpu_test::kHalfTolerance);
    }
  for (const std::string& line : (*gemm)->tuning_log()) std::printf("tuned %s\n", line.c_str());
  size_t m97 = 0;
  for (const std::string& line : (*gemm)->tuning_log()) m97 += line.rfind("M<=112 N=989 K=4104", 0) == 0;
  EXPECT_LE(m97, 2u);  // one bucket each without and with bias, tuned once each (if cuBLASLt had candidates)
}

// Each refused shape comes back as an error naming it, before any launch; a plan is cached per shape.
TEST(Gemm, RejectsUnsupportedAndCachesPlans) {
  auto gemm = GemmRunner::create(16 << 20);
  ASSERT_TRUE(gemm.ok());
  DeviceArray x(64, DType::kBF16), w(64, DType::kBF16), out(64, DType::kF32);
  GemmArgs g;
  g.x = x.data(), g.w = w.data(), g.out = out.data(), g.m = 1, g.n = 4, g.k = 16, g.out_dtype = DType::kF32;
  auto rejected = [&](GemmArgs a, const std::string& needle) {
    Status st = (*gemm)->matmul(a, nullptr);
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  GemmArgs a = g;
  a.k = 12;
  rejected(a, "multiples of 8");
  a = g, a.out_dtype = DType::kF16;
  rejected(a, "output dtype");
  a = g, a.bias = w.data();
  rejected(a, "bias");
  a = g, a.w = nullptr;
  rejected(a, "null");
  EXPECT_EQ((*gemm)->cached_plans(), 0u);
  ASSERT_TRUE((*gemm)->matmul(g, nullptr).ok());  // one row: kernels::gemv, no cuBLASLt plan
  EXPECT_EQ((*gemm)->cached_plans(), 0u);
  (*gemm)->set_gemv(GemvUse::kNever);
  ASSERT_TRUE((*gemm)->matmul(g, nullptr).ok());
  ASSERT_TRUE((*gemm)->matmul(g, nullptr).ok());
  EXPECT_EQ((*gemm)->cached_plans(), 1u);
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace tk
