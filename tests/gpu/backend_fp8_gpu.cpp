// FP8 linears through the Backend interface: the same checkpoint weight (Fp8HostLinear) uploaded
// to the CPU and the CUDA backend (bf16 and fp16), the same input, the outputs compared — every
// scheme the formats produce (per-tensor / per-channel / block weights; static, per-token,
// clamped, 1x128-group and no input quantization), with bias, at odd sizes, through each CUDA path:
// the FP8 GEMM (per-tensor scalars; per-token x per-channel as outer vectors where cuBLASLt serves
// them, else scaled after the GEMM by scale_fp8_product) and the dequantized fallback
// (in_features not a multiple of 16, out_features not a multiple of 8, block weights, weight-only),
// and --quantization fp8 of a bf16 weight. The inputs are bf16 values (exact in fp16 too), so both
// backends quantize them identically; what is left is the half output (and, in the fallback, half
// weights): 1e-2 catches an input left unquantized (~3% on this data) or any scale misrouted.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "backend_cpu/cpu_backend.h"
#include "backend_cuda/cuda_backend.h"
#include "gpu_util.h"

namespace tk::gpu_test {
namespace {

struct Case {
  WeightScale weight;
  InputQuant input;
  float ub;
  int64_t m, out, in;
};

Tensor host_f32(const std::vector<float>& v, Shape s) {
  Tensor t = Tensor::empty_cpu(DType::kF32, s);
  std::copy(v.begin(), v.end(), t.data_as<float>());
  return t;
}

std::vector<float> run(Backend& b, const Fp8HostLinear& h, const Tensor& bias_host, const Tensor& x_host, bool online,
                       const Tensor& w_float) {
  Linear l;
  if (online) {
    auto w = b.upload(w_float);
    EXPECT_TRUE(w.ok());
    l.weight = *w;
    EXPECT_TRUE(b.quantize_linear_fp8(l).ok());
  } else {
    auto up = b.upload_fp8_linear(h);
    EXPECT_TRUE(up.ok()) << up.status().to_string();
    if (!up.ok()) return {};
    l = *up;
  }
  auto bias = b.upload(bias_host);
  EXPECT_TRUE(bias.ok());
  l.bias = *bias;
  EXPECT_TRUE(b.reserve_fp8_inputs(x_host.dim(0), x_host.dim(1)).ok());
  auto x = b.upload(x_host);
  auto out = b.alloc(b.compute_dtype(), {x_host.dim(0), l.out_features()});
  EXPECT_TRUE(x.ok() && out.ok());
  b.matmul(*x, l, *out);
  Status st = b.take_error();
  EXPECT_TRUE(st.ok()) << st.to_string();
  Tensor host = Tensor::empty_cpu(out->dtype(), out->shape());
  EXPECT_TRUE(b.download(*out, host.data()).ok());
  std::vector<float> f(static_cast<size_t>(host.numel()));
  convert_to_f32(host.data(), host.dtype(), f.data(), f.size());
  return f;
}

class Fp8Backend : public ::testing::TestWithParam<DType> {};

TEST_P(Fp8Backend, CudaLinearsMatchTheCpu) {
  auto cpu = make_cpu_backend(4);
  CudaBackendOptions options;
  options.dtype = GetParam();
  auto cuda = make_cuda_backend(options);
  ASSERT_TRUE(cuda.ok()) << cuda.status().to_string();
  const Case cases[] = {
      {WeightScale::kTensor, InputQuant::kStaticTensor, 0.f, 5, 72, 256},
      {WeightScale::kTensor, InputQuant::kDynamicToken, 0.f, 1, 136, 64},
      {WeightScale::kTensor, InputQuant::kDynamicToken, 0.f, 1, 130, 64},    // out % 8 != 0: fallback
      {WeightScale::kChannel, InputQuant::kDynamicToken, 0.f, 33, 200, 4096},
      {WeightScale::kChannel, InputQuant::kDynamicToken, 0.f, 1, 2048, 4096},  // a decode step
      {WeightScale::kChannel, InputQuant::kDynamicToken, 1.5f, 7, 96, 512},
      {WeightScale::kChannel, InputQuant::kStaticTensor, 0.f, 3, 48, 128},
      {WeightScale::kChannel, InputQuant::kDynamicToken, 0.f, 9, 40, 200},   // in % 16 != 0: fallback
      {WeightScale::kTensor, InputQuant::kStaticTensor, 0.f, 4, 40, 168},    // fallback, static
      {WeightScale::kBlock, InputQuant::kDynamicGroup, 0.f, 6, 300, 520},    // block: fallback, groups
      {WeightScale::kChannel, InputQuant::kNone, 0.f, 2, 64, 256},           // weight-only
  };
  uint32_t seed = 7100;
  for (const Case& c : cases)
    for (bool online : {false, true}) {
      if (online && c.weight != WeightScale::kChannel) continue;
      SCOPED_TRACE(std::string(weight_scale_name(c.weight)) + " / " + input_quant_name(c.input) + " m=" +
                   std::to_string(c.m) + " out=" + std::to_string(c.out) + " in=" + std::to_string(c.in) +
                   (online ? " --quantization fp8" : ""));
      auto w = random_floats(c.out * c.in, seed++, 0.05f);
      round_to(w, DType::kBF16);
      Fp8HostLinear h;
      h.scheme = {c.weight, c.input, c.ub};
      h.weight = Tensor::empty_cpu(DType::kF8E4M3, {c.out, c.in});
      std::vector<float> scale;
      if (c.weight == WeightScale::kTensor) scale = {0.0003f};
      if (c.weight == WeightScale::kChannel) scale = random_floats(c.out, seed++, 0.0001f, 0.0003f);
      const int64_t rb = (c.out + 127) / 128, cb = (c.in + 127) / 128;
      if (c.weight == WeightScale::kBlock) scale = random_floats(rb * cb, seed++, 0.0001f, 0.0003f);
      for (int64_t i = 0; i < c.out * c.in; ++i) h.weight.data_as<uint8_t>()[i] = f32_to_fp8_e4m3(w[i] * 3000.f);
      h.weight_scale = host_f32(scale, c.weight == WeightScale::kBlock ? Shape{rb, cb} : Shape{static_cast<int64_t>(scale.size())});
      h.input_scale = 0.004f;
      auto x = random_floats(c.m * c.in, seed++, 1.f);
      x[0] = 9.f;  // above the clamp and the static range
      round_to(x, DType::kBF16);
      auto bias = random_floats(c.out, seed++, 0.1f);
      round_to(bias, DType::kBF16);
      const Tensor xt = host_f32(x, {c.m, c.in}), bt = host_f32(bias, {c.out}), wt = host_f32(w, {c.out, c.in});
      const std::vector<float> want = run(*cpu, h, bt, xt, online, wt);
      const std::vector<float> got = run(**cuda, h, bt, xt, online, wt);
      ASSERT_EQ(got.size(), want.size());
      EXPECT_LT(rel_l2(got, want), 1e-2);
    }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Fp8Backend, ::testing::Values(DType::kBF16, DType::kF16),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

}  // namespace
}  // namespace tk::gpu_test
