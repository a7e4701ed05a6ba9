// The products of few rows (src/kernels/gemv.cu): kernels::fp8_gemv and kernels::gemv against
// their CPU twins — the operands' products summed in double, times alpha (FP8), plus the bias — on
// random operands (never zeros) at odd shapes: n not a multiple of 16 (rows past n), k not a
// multiple of one step (a k tail), every m of 1..16, bias on/off, bf16/fp16/fp32 out, ldo > n,
// ldx > k (16-bit), alpha != 1 (FP8). Then GemmRunner with the GEMV against cuBLASLt on
// Llama-3-8B's decode shapes, its routing, a graph replay, and what the launchers refuse.
//
// Tolerances (the GEMV and the twin differ only in the fp32 accumulation order inside and between
// the tensor core's MMAs): fp32 outputs within 1e-4 relative L2 of the twin (cuBLASLt's scalar
// FP8 GEMM: 1.3e-4 seen in Fp8Gemm); bf16/fp16 outputs compared with the twin rounded to the same
// type, within one unit in the last place each (a rounding that an accumulation-order difference
// flips) plus 1e-5 of the outputs' RMS (fp32 accumulation over k <= 14336: ~1e-6 of it), and
// within 1e-3 relative L2 overall (a few such flips, not a systematic error); the H200 gave 1.6e-5
// / 2.1e-5 / 1.0e-7 relative L2 for FP8 (bf16 / fp16 / fp32). Against cuBLASLt, whose Hopper FP8
// kernels accumulate less precisely (Fp8Gemm's 1.3e-4 in fp32; 6.7-7.3e-4 relative L2 from the
// GEMV in bf16 on the H200, a few outputs 4e-4 of the RMS apart), the GEMV must be at least as
// close to the twin as cuBLASLt is.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "gemm/gemm.h"
#include "gpu_util.h"
#include "kernels/kernels.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using gpu_test::random_floats;
using gpu_test::rel_l2;
using gpu_test::round_to;
using gpu_test::upload_bytes;

// fp8 codes of N(0, 128) (amax ~3.5 sigma lands near 448, as per-row quantization leaves them).
std::vector<uint8_t> random_fp8(int64_t rows, int64_t cols, uint32_t seed) {
  return gpu_test::random_fp8(rows, cols, seed, gpu_test::gaussian_fp8_table(seed));
}

// The CPU twin: out[r, c] = alpha * sum_k fp8(x[r, k]) fp8(w[c, k]) + bias[c], in double.
std::vector<double> twin(const std::vector<uint8_t>& x, const std::vector<uint8_t>& w, int64_t m, int64_t n,
                         int64_t k, double alpha, const std::vector<float>* bias) {
  float decode[256];
  for (int i = 0; i < 256; ++i) decode[i] = fp8_e4m3_to_f32(static_cast<uint8_t>(i));
  std::vector<double> out(static_cast<size_t>(m * n));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n; ++c)
    for (int64_t r = 0; r < m; ++r) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += static_cast<double>(decode[x[r * k + i]]) * decode[w[c * k + i]];
      out[r * n + c] = alpha * s + (bias ? (*bias)[c] : 0.0);
    }
  return out;
}

// One unit in the last place of |v| in `dtype` (bf16: 8 significant bits, fp16: 11, normal range).
double ulp(double v, DType dtype) {
  const int bits = dtype == DType::kBF16 ? 8 : 11;
  const double a = std::max(std::fabs(v), dtype == DType::kBF16 ? 1e-30 : 6.1e-5);
  return std::ldexp(1.0, std::ilogb(a) - (bits - 1));
}

// The rows [0, m) and columns [0, n) of a [m, ldo] output.
std::vector<float> first_columns(const std::vector<float>& all, int64_t m, int64_t n, int64_t ldo) {
  std::vector<float> v(static_cast<size_t>(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < n; ++c) v[r * n + c] = all[r * ldo + c];
  return v;
}

double rms(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s / std::max<size_t>(v.size(), 1));
}

// Elements of `got` further from `want` than one ulp of their type (at the larger magnitude) plus
// `floor` times the outputs' RMS: an accumulation-order error is absolute (a fraction of the
// partial sums, ~RMS), so outputs near zero, whose ulp is tiny, get that much more.
int64_t beyond_one_ulp(const std::vector<float>& got, const std::vector<float>& want, DType dtype, double floor) {
  const double abs_floor = floor * rms(want);
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = ulp(std::max(std::fabs(got[i]), std::fabs(want[i])), dtype) * 1.0001 + abs_floor;
    bad += !(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol);
  }
  return bad;
}

// A launcher's refusal: its code, and a message naming what it refused.
void expect_refused(const Status& st, StatusCode code, const char* words) {
  EXPECT_EQ(st.code(), code) << st.to_string();
  EXPECT_NE(st.message().find(words), std::string::npos) << st.to_string();
}

struct GemvCase {
  int64_t m, n, k;
};

TEST(Fp8Gemv, KernelMatchesTheCpuTwin) {
  // n: 8 and 24 (one block, rows past n), 4104 (257 blocks, the last half empty), 6144; k: 16 and 48
  // (less than one 64-byte chunk), 208 (a tail of 16), 4096, 14336; every m of 1..16 somewhere.
  const GemvCase cases[] = {{1, 8, 16},     {2, 24, 48},     {3, 4104, 4096}, {4, 6144, 208},   {5, 24, 14336},
                            {6, 8, 4096},   {7, 4104, 48},   {8, 6144, 4096}, {1, 4104, 14336}, {9, 24, 208},
                            {12, 4104, 16}, {16, 6144, 4096}, {10, 8, 48},    {11, 4104, 208},  {13, 24, 16},
                            {14, 8, 14336}, {15, 4104, 4096}};
  uint32_t seed = 7300;
  const float x_scale = 0.0071f, w_scale = 0.00043f;  // alpha != 1: outputs of ~1-10
  DeviceArray dxs = DeviceArray::from({x_scale}, DType::kF32), dws = DeviceArray::from({w_scale}, DType::kF32);
  const double alpha = static_cast<double>(x_scale) * w_scale;
  double worst[3] = {0, 0, 0};
  for (const GemvCase& c : cases) {
    const std::string shape = "m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k);
    const std::vector<uint8_t> x = random_fp8(c.m, c.k, seed++), w = random_fp8(c.n, c.k, seed++);
    const DeviceBuffer dx = upload_bytes(x), dw = upload_bytes(w);
    const std::vector<float> bias0 = random_floats(c.n, seed++, 2.f);
    const std::vector<double> plain = twin(x, w, c.m, c.n, c.k, alpha, nullptr);
    int d = 0;
    for (DType out : {DType::kBF16, DType::kF16, DType::kF32}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(shape + " out " + dtype_name(out) + (with_bias ? " bias" : ""));
        std::vector<float> bias = bias0;
        if (out != DType::kF32) round_to(bias, out);
        const int64_t ldo = c.n + (with_bias ? 5 : 0);  // rows inside a wider buffer; the gap stays poisoned
        DeviceArray db = DeviceArray::from(bias, out), dout(c.m * ldo, out);
        dout.poison();
        kernels::Fp8GemvParams p;
        p.x = dx.data(), p.w = dw.data(), p.x_scale = dxs.as<float>(), p.w_scale = dws.as<float>();
        p.bias = with_bias ? db.data() : nullptr, p.out = dout.data();
        p.m = c.m, p.n = c.n, p.k = c.k, p.ldo = ldo, p.out_dtype = out;
        const Status st = kernels::fp8_gemv(p, nullptr);
        ASSERT_TRUE(st.ok()) << st.to_string();
        CUDA_CHECK(cudaDeviceSynchronize());
        const std::vector<float> all = dout.download();
        const std::vector<float> got = first_columns(all, c.m, c.n, ldo);
        std::vector<float> want(got.size());
        for (int64_t r = 0; r < c.m; ++r)
          for (int64_t col = 0; col < c.n; ++col)
            want[r * c.n + col] = static_cast<float>(plain[r * c.n + col] + (with_bias ? bias[col] : 0.0));
        if (out != DType::kF32) round_to(want, out);
        const double err = rel_l2(got, want);
        if (out == DType::kF32) {
          EXPECT_LT(err, 1e-4);
        } else {
          EXPECT_LT(err, 1e-3);
          EXPECT_EQ(beyond_one_ulp(got, want, out, 1e-5), 0);
        }
        worst[d] = std::max(worst[d], err);
        if (ldo > c.n) {  // the columns past n are not written
          int64_t touched = 0;
          for (int64_t r = 0; r < c.m; ++r)
            for (int64_t col = c.n; col < ldo; ++col) touched += std::isfinite(all[r * ldo + col]);
          EXPECT_EQ(touched, 0);
        }
      }
      ++d;
    }
  }
  std::printf("[fp8 gemv] worst relative L2 against the twin: bf16 %.2e, fp16 %.2e, fp32 %.2e\n", worst[0], worst[1],
              worst[2]);
}

// GemmRunner::matmul_fp8 with the GEMV (kAlways) and with cuBLASLt (kNever) on Llama-3-8B's decode
// shapes: operands made on the device (random bf16 quantized per row, as --quantization fp8 does),
// both against the double-precision twin of the same fp8 bytes. The GEMV is held to the kernel
// test's bound (one bf16 ulp + 1e-5 of the RMS); cuBLASLt's FP8 accumulation is not that exact
// (6.7-7.3e-4 relative L2 measured), so the GEMV must be at least as close to the twin as it is.
// kAuto must give the GEMV's bytes up to kFp8GemvAutoMaxM rows and cuBLASLt's above.
TEST(Fp8Gemv, MatchesCublasLtOnDecodeShapes) {
  auto gemm = GemmRunner::create(32 << 20);
  ASSERT_TRUE(gemm.ok());
  struct Shape {
    int64_t n, k;
    const char* what;
  };
  const Shape shapes[] = {{6144, 4096, "qkv"}, {4096, 4096, "o_proj"}, {28672, 4096, "gate_up"}, {4096, 14336, "down"}};
  constexpr int64_t kMaxM = 16;
  constexpr float kXScale = 0.013f, kWScale = 0.0009f;
  DeviceArray xs = DeviceArray::from({kXScale}, DType::kF32), ws = DeviceArray::from({kWScale}, DType::kF32);
  for (const Shape& s : shapes) {
    DeviceArray wf(s.n * s.k, DType::kBF16), xf(kMaxM * s.k, DType::kBF16), wsc(s.n, DType::kF32),
        xsc(kMaxM, DType::kF32);
    auto wq = DeviceBuffer::allocate(s.n * s.k), xq = DeviceBuffer::allocate(kMaxM * s.k);
    ASSERT_TRUE(wq.ok() && xq.ok());
    ASSERT_TRUE(kernels::fill_random(wf.data(), DType::kBF16, s.n * s.k, 11, 0.f, 0.02f, nullptr).ok());
    ASSERT_TRUE(kernels::fill_random(xf.data(), DType::kBF16, kMaxM * s.k, 12, 0.f, 1.f, nullptr).ok());
    for (auto [src, rows, q, sc] : {std::tuple{&wf, s.n, wq->data(), &wsc}, std::tuple{&xf, kMaxM, xq->data(), &xsc}}) {
      kernels::QuantizeFp8RowsParams p;
      p.x = src->data(), p.rows = rows, p.cols = s.k, p.ld = s.k, p.q = q, p.scales = sc->as<float>();
      ASSERT_TRUE(kernels::quantize_fp8_rows(p, nullptr).ok());
    }
    std::vector<float> bias_h = random_floats(s.n, 13, 1.f);
    round_to(bias_h, DType::kBF16);
    DeviceArray bias = DeviceArray::from(bias_h, DType::kBF16);
    const bool with_bias = s.n == 6144;  // qkv: Qwen-style biases
    // The twin of all kMaxM rows once (rows are independent: the first m serve every m).
    std::vector<uint8_t> xq_h(kMaxM * s.k), wq_h(s.n * s.k);
    CUDA_CHECK(cudaMemcpy(xq_h.data(), xq->data(), xq_h.size(), cudaMemcpyDeviceToHost));
    CUDA_CHECK(cudaMemcpy(wq_h.data(), wq->data(), wq_h.size(), cudaMemcpyDeviceToHost));
    const double alpha = static_cast<double>(kXScale) * kWScale;
    const std::vector<double> exact = twin(xq_h, wq_h, kMaxM, s.n, s.k, alpha, nullptr);
    for (int64_t m : {1, 2, 4, 8, 9, 16}) {
      SCOPED_TRACE(std::string(s.what) + " m=" + std::to_string(m));
      auto run = [&](GemvUse use) {
        (*gemm)->set_fp8_gemv(use);
        DeviceArray out(m * s.n, DType::kBF16);
        out.poison();
        Fp8GemmArgs f;
        f.x = xq->data(), f.w = wq->data(), f.x_scale = xs.as<float>(), f.w_scale = ws.as<float>();
        f.bias = with_bias ? bias.data() : nullptr, f.out = out.data(), f.m = m, f.n = s.n, f.k = s.k;
        const Status st = (*gemm)->matmul_fp8(f, nullptr);
        EXPECT_TRUE(st.ok()) << st.to_string();
        CUDA_CHECK(cudaDeviceSynchronize());
        return out.download();
      };
      const std::vector<float> gemv = run(GemvUse::kAlways), lt = run(GemvUse::kNever);
      const std::vector<float> autos = run(GemvUse::kAuto);
      std::vector<float> want(static_cast<size_t>(m * s.n));
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < s.n; ++c)
          want[r * s.n + c] = static_cast<float>(exact[r * s.n + c] + (with_bias ? bias_h[c] : 0.0));
      round_to(want, DType::kBF16);
      EXPECT_EQ(beyond_one_ulp(gemv, want, DType::kBF16, 1e-5), 0);
      EXPECT_LE(rel_l2(gemv, want), rel_l2(lt, want));
      EXPECT_EQ(autos, m <= kFp8GemvAutoMaxM ? gemv : lt);
      if (m == 1)
        std::printf("[fp8 gemv] %s m=1: relative L2 against the twin: gemv %.2e, cuBLASLt %.2e\n", s.what,
                    rel_l2(gemv, want), rel_l2(lt, want));
    }
  }
}

// Captured in a graph and replayed, the GEMV writes what the direct launch wrote (it reads its
// scales on the device and allocates nothing).
TEST(Fp8Gemv, ReplaysInAGraph) {
  const int64_t m = 3, n = 4104, k = 4096;
  const std::vector<uint8_t> x = random_fp8(m, k, 91), w = random_fp8(n, k, 92);
  const DeviceBuffer dx = upload_bytes(x), dw = upload_bytes(w);
  DeviceArray xs = DeviceArray::from({0.01f}, DType::kF32), ws = DeviceArray::from({0.002f}, DType::kF32);
  DeviceArray direct(m * n, DType::kBF16), replayed(m * n, DType::kBF16);
  kernels::Fp8GemvParams p;
  p.x = dx.data(), p.w = dw.data(), p.x_scale = xs.as<float>(), p.w_scale = ws.as<float>();
  p.out = direct.data(), p.m = m, p.n = n, p.k = k, p.ldo = n;
  ASSERT_TRUE(kernels::fp8_gemv(p, nullptr).ok());
  cudaStream_t stream;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  replayed.poison();
  p.out = replayed.data();
  cudaGraph_t graph;
  CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  const Status st = kernels::fp8_gemv(p, stream);
  CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  ASSERT_TRUE(st.ok()) << st.to_string();
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaGraphLaunch(exec, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  EXPECT_EQ(replayed.download(), direct.download());
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(Fp8Gemv, RefusesWhatItCannotRun) {
  DeviceArray a(1024, DType::kF32);
  kernels::Fp8GemvParams p;
  p.x = p.w = p.out = a.data(), p.x_scale = p.w_scale = a.as<float>(), p.m = 1, p.n = 8, p.k = 16, p.ldo = 8;
  ASSERT_TRUE(kernels::fp8_gemv(p, nullptr).ok());
  auto refused = [](const kernels::Fp8GemvParams& q, StatusCode code, const char* words) {
    expect_refused(kernels::fp8_gemv(q, nullptr), code, words);
  };
  kernels::Fp8GemvParams q = p;
  q.m = kernels::kFp8GemvMaxM + 1;
  refused(q, StatusCode::kInvalidArgument, "m 17");
  q = p, q.m = 0;
  refused(q, StatusCode::kInvalidArgument, "m 0");
  q = p, q.ldo = 7;
  refused(q, StatusCode::kInvalidArgument, "ldo 7");
  q = p, q.k = 24;
  refused(q, StatusCode::kUnsupported, "multiples of 16");
  q = p, q.w = a.as<uint8_t>() + 8;
  refused(q, StatusCode::kUnsupported, "16-byte aligned");
  q = p, q.out_dtype = DType::kF8E4M3;
  refused(q, StatusCode::kUnsupported, "output dtype");
  q = p, q.x_scale = nullptr;
  refused(q, StatusCode::kInvalidArgument, "null");
  CUDA_CHECK(cudaDeviceSynchronize());
}

// ---- 16-bit operands: kernels::gemv -----------------------------------------------------------

// out[r, c] = sum_k x[r, k] w[c, k] + bias[c] in double, x rows ldx apart.
std::vector<double> twin16(const std::vector<float>& x, const std::vector<float>& w, int64_t m, int64_t n, int64_t k,
                           int64_t ldx, const std::vector<float>* bias) {
  std::vector<double> out(static_cast<size_t>(m * n));
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < n; ++c)
    for (int64_t r = 0; r < m; ++r) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += static_cast<double>(x[r * ldx + i]) * w[c * k + i];
      out[r * n + c] = s + (bias ? (*bias)[c] : 0.0);
    }
  return out;
}

TEST(Gemv, KernelMatchesTheCpuTwin) {
  // n as for FP8; k: 8 and 40 (less than one 32-element chunk), 200 (a tail), 4096, 14336; ldx > k
  // where m is odd (rows of a wider activation).
  const GemvCase cases[] = {{1, 8, 8},      {2, 24, 40},      {3, 4104, 4096}, {4, 6144, 200},   {5, 24, 14336},
                            {6, 8, 4096},   {7, 4104, 40},    {8, 6144, 4096}, {1, 4104, 14336}, {9, 24, 200},
                            {12, 4104, 8},  {16, 6144, 4096}, {10, 8, 40},     {11, 4104, 200},  {13, 24, 8},
                            {14, 8, 14336}, {15, 4104, 4096}};
  uint32_t seed = 8100;
  double worst[2][2] = {};
  for (const GemvCase& c : cases) {
    const int64_t ldx = c.k + (c.m % 2 == 1 ? 24 : 0);
    for (DType in : {DType::kBF16, DType::kF16}) {
      std::vector<float> x = random_floats(c.m * ldx, seed++), w = random_floats(c.n * c.k, seed++, 0.05f);
      std::vector<float> bias = random_floats(c.n, seed++, 2.f);
      round_to(x, in), round_to(w, in), round_to(bias, in);
      DeviceArray dx = DeviceArray::from(x, in), dw = DeviceArray::from(w, in), db = DeviceArray::from(bias, in);
      for (DType out : {in, DType::kF32}) {
        for (bool with_bias : {false, true}) {
          if (with_bias && out == DType::kF32) continue;  // GemmRunner's contract: a bias comes in the input dtype
          SCOPED_TRACE("m=" + std::to_string(c.m) + " n=" + std::to_string(c.n) + " k=" + std::to_string(c.k) + " in " +
                       dtype_name(in) + " out " + dtype_name(out) + (with_bias ? " bias" : ""));
          const int64_t ldo = c.n + (with_bias ? 5 : 0);  // the gap stays poisoned
          DeviceArray dout(c.m * ldo, out);
          dout.poison();
          kernels::GemvParams p;
          p.x = dx.data(), p.w = dw.data(), p.bias = with_bias ? db.data() : nullptr, p.out = dout.data();
          p.m = c.m, p.n = c.n, p.k = c.k, p.ldx = ldx, p.ldo = ldo, p.in_dtype = in, p.out_dtype = out;
          const Status st = kernels::gemv(p, nullptr);
          ASSERT_TRUE(st.ok()) << st.to_string();
          CUDA_CHECK(cudaDeviceSynchronize());
          const std::vector<float> all = dout.download();
          const std::vector<float> got = first_columns(all, c.m, c.n, ldo);
          const std::vector<double> exact = twin16(x, w, c.m, c.n, c.k, ldx, with_bias ? &bias : nullptr);
          std::vector<float> want(exact.begin(), exact.end());
          if (out != DType::kF32) round_to(want, out);
          const double err = rel_l2(got, want);
          if (out == DType::kF32) {
            EXPECT_LT(err, 1e-4);
          } else {
            EXPECT_LT(err, 1e-3);
            EXPECT_EQ(beyond_one_ulp(got, want, out, 1e-5), 0);
          }
          worst[in == DType::kF16][out == DType::kF32] = std::max(worst[in == DType::kF16][out == DType::kF32], err);
          int64_t touched = 0;  // the columns past n are not written
          for (int64_t r = 0; r < c.m; ++r)
            for (int64_t col = c.n; col < ldo; ++col) touched += std::isfinite(all[r * ldo + col]);
          EXPECT_EQ(touched, 0);
        }
      }
    }
  }
  std::printf("[gemv] worst relative L2 against the twin: bf16 %.2e (fp32 out %.2e), fp16 %.2e (fp32 out %.2e)\n",
              worst[0][0], worst[0][1], worst[1][0], worst[1][1]);
}

// GemmRunner::matmul with the GEMV (kAlways) and with cuBLASLt (kNever) on Llama-3-8B's decode
// shapes against the double twin: the GEMV within one bf16 ulp + 1e-5 of the RMS, and no farther
// from the twin than cuBLASLt; kAuto gives the GEMV's bytes up to kGemvAutoMaxM rows of a weight
// of at most kGemvAutoMaxWeightBytes and cuBLASLt's otherwise. lm_head's shape writes fp32 logits.
TEST(Gemv, MatchesCublasLtOnDecodeShapes) {
  auto gemm = GemmRunner::create(32 << 20);
  ASSERT_TRUE(gemm.ok());
  struct Shape {
    int64_t n, k;
    const char* what;
    DType out;
  };
  const Shape shapes[] = {{6144, 4096, "qkv", DType::kBF16},
                          {4096, 4096, "o_proj", DType::kBF16},
                          {28672, 4096, "gate_up", DType::kBF16},
                          {4096, 14336, "down", DType::kBF16},
                          {32000, 4096, "lm_head (32k)", DType::kF32}};
  constexpr int64_t kMaxM = 16;
  uint32_t seed = 8300;
  for (const Shape& s : shapes) {
    std::vector<float> x = random_floats(kMaxM * s.k, seed++), w = random_floats(s.n * s.k, seed++, 0.02f);
    std::vector<float> bias = random_floats(s.n, seed++, 1.f);
    round_to(x, DType::kBF16), round_to(w, DType::kBF16), round_to(bias, DType::kBF16);
    DeviceArray dx = DeviceArray::from(x, DType::kBF16), dw = DeviceArray::from(w, DType::kBF16);
    DeviceArray db = DeviceArray::from(bias, DType::kBF16);
    const bool with_bias = s.n == 6144;  // qkv: Qwen-style biases
    const std::vector<double> exact = twin16(x, w, kMaxM, s.n, s.k, s.k, with_bias ? &bias : nullptr);
    for (int64_t m : {1, 2, 4, 8, 9, 16}) {
      SCOPED_TRACE(std::string(s.what) + " m=" + std::to_string(m));
      auto run = [&](GemvUse use) {
        (*gemm)->set_gemv(use);
        DeviceArray out(m * s.n, s.out);
        out.poison();
        GemmArgs g;
        g.x = dx.data(), g.w = dw.data(), g.bias = with_bias ? db.data() : nullptr, g.out = out.data();
        g.m = m, g.n = s.n, g.k = s.k, g.out_dtype = s.out;
        const Status st = (*gemm)->matmul(g, nullptr);
        EXPECT_TRUE(st.ok()) << st.to_string();
        CUDA_CHECK(cudaDeviceSynchronize());
        return out.download();
      };
      const std::vector<float> gemv = run(GemvUse::kAlways), lt = run(GemvUse::kNever), autos = run(GemvUse::kAuto);
      std::vector<float> want(exact.begin(), exact.begin() + m * s.n);
      if (s.out != DType::kF32) {
        round_to(want, s.out);
        EXPECT_EQ(beyond_one_ulp(gemv, want, s.out, 1e-5), 0);
      } else {
        EXPECT_LT(rel_l2(gemv, want), 1e-5);
      }
      EXPECT_LE(rel_l2(gemv, want), rel_l2(lt, want) * 1.05);
      const bool small_weight = s.n * s.k * 2 <= kGemvAutoMaxWeightBytes;  // qkv, o_proj; not gate_up, down, lm_head
      if (!env_flags().gemv_max_mb) EXPECT_EQ(autos, m <= kGemvAutoMaxM && small_weight ? gemv : lt);
      if (m == 1)
        std::printf("[gemv] %s m=1: relative L2 against the twin: gemv %.2e, cuBLASLt %.2e\n", s.what,
                    rel_l2(gemv, want), rel_l2(lt, want));
    }
  }
  (*gemm)->set_gemv(GemvUse::kAuto);
}

TEST(Gemv, RefusesWhatItCannotRun) {
  DeviceArray a(1024, DType::kF32);
  kernels::GemvParams p;
  p.x = p.w = p.out = a.data(), p.m = 1, p.n = 8, p.k = 16;
  ASSERT_TRUE(kernels::gemv(p, nullptr).ok());
  auto refused = [](const kernels::GemvParams& q, StatusCode code, const char* words) {
    expect_refused(kernels::gemv(q, nullptr), code, words);
  };
  kernels::GemvParams q = p;
  q.m = kernels::kGemvMaxM + 1;
  refused(q, StatusCode::kInvalidArgument, "m 17");
  q = p, q.ldx = 8;
  refused(q, StatusCode::kInvalidArgument, "ldx 8");
  q = p, q.k = 12, q.ldx = 16;
  refused(q, StatusCode::kUnsupported, "multiples of 8");
  q = p, q.x = a.as<uint8_t>() + 8;
  refused(q, StatusCode::kUnsupported, "16-byte aligned");
  q = p, q.out_dtype = DType::kF16;
  refused(q, StatusCode::kUnsupported, "output dtype");
  q = p, q.out_dtype = DType::kF32, q.bias = a.data();
  refused(q, StatusCode::kUnsupported, "bias");
  q = p, q.in_dtype = DType::kF32, q.out_dtype = DType::kF32;
  refused(q, StatusCode::kUnsupported, "input dtype");
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace tk
