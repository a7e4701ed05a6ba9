// FP8 checkpoints of every format on the CUDA backend against the numpy reference logits of
// tools/make_fp8_checkpoints.py (which the CPU matches within 1e-3): every row within 0.15 (why
// not less: kTolerance). The
// per-tensor and per-channel formats run cuBLASLt FP8 GEMMs where in_features is a multiple of 16;
// the rest run their dequantized weights in bf16 with the inputs quantized as on the CPU. Then
// --quantization fp8 (online_bf16) and the engine's greedy tokens with graphs.
#include "../unit/golden_util.h"

#include "backend_cpu/cpu_backend.h"
#include "backend_cuda/cuda_backend.h"

namespace tk::test {
namespace {

// NOTE: not issue 12's 2e-2. These tiny models are sharp (FP8 moves their logits 5-11%), and
// on the GPU every input reaches the FP8 rounding already rounded to bf16: a numpy simulation of
// exactly that (bf16 activations, the same FP8 arithmetic) lands 5.1-8.4% from the fp32-activation
// reference (0.5% for weight-only). 0.15 still fails a missing, misplaced or inverted scale
// (~100%); the arithmetic itself is held bit-exact by the kernel tests and to 1e-4 by the GEMM
// tests, and the demo model's perplexity below is the accuracy check.
constexpr double kTolerance = 0.15;

std::string fp8_dir(const std::string& name) { return std::string(TOKAMAK_TEST_DATA) + "/fp8/" + name; }

class GpuFp8Test : public ::testing::TestWithParam<std::string> {};

TEST_P(GpuFp8Test, TeacherForcedLogitsWithinTolerance) {
  auto backend = make_cuda_backend(CudaBackendOptions{});
  ASSERT_TRUE(backend.ok()) << backend.status().to_string();
  TeacherForcing tf(**backend, fp8_dir(GetParam()), 16, 16, /*quantize_fp8=*/GetParam() == "online_bf16");
  ASSERT_TRUE(tf.model);
  const int64_t vocab = tf.model->config().vocab_size;
  const auto ids = read_json(fp8_dir(GetParam()) + "/reference.json")["token_ids"].get<std::vector<int32_t>>();
  auto ref = SafetensorsFile::open(fp8_dir(GetParam()) + "/reference.safetensors");
  ASSERT_TRUE(ref.ok());
  const float* want = static_cast<const float*>((*ref)->tensors().at("logits").data);
  const std::vector<float> got = tf.prefill_then_decode(ids);
  const int n = static_cast<int>(ids.size());
  ASSERT_EQ(got.size(), static_cast<size_t>(n * vocab));
  double worst = 0;
  for (int t = 0; t < n; ++t) worst = std::max(worst, rel_l2(&got[t * vocab], want + t * vocab, vocab));
  EXPECT_LT(worst, kTolerance) << GetParam();
  std::printf("[fp8 gpu] %-18s worst row rel L2 %.4f\n", GetParam().c_str(), worst);
}

INSTANTIATE_TEST_SUITE_P(Formats, GpuFp8Test,
                         ::testing::Values("ct_tensor_static", "ct_channel_token", "ct_weight_only", "ct_block_group",
                                           "fp8_block", "fp8_tensor_static", "fbgemm_channel", "online_bf16"));

const std::string kDemoDir = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

// The demo model's held-out perplexity on the GPU (bf16 weights and cache), computed once for the
// two tests that compare with it.
const Perplexity& gpu_bf16_perplexity() {
  static const Perplexity p = [] {
    auto backend = make_cuda_backend(CudaBackendOptions{});
    EXPECT_TRUE(backend.ok()) << backend.status().to_string();
    return backend.ok() ? teacher_forced_perplexity(**backend, kDemoDir, kDemoDir + "/heldout.txt", 512) : Perplexity{};
  }();
  return p;
}

// Issue 12's accuracy bar on the demo model: --quantization fp8 held-out perplexity within 2% of
// bf16 on the GPU (the CPU measured +0.24%: docs/BENCHMARKS.md), and within 1% of the CPU's FP8
// figure (the same arithmetic, bf16 activations).
TEST(GpuFp8, DemoPerplexityNearBf16) {
  const std::string& dir = kDemoDir;
  auto backend = make_cuda_backend(CudaBackendOptions{});
  ASSERT_TRUE(backend.ok()) << backend.status().to_string();
  const Perplexity& bf16 = gpu_bf16_perplexity();
  const Perplexity fp8 = teacher_forced_perplexity(**backend, dir, dir + "/heldout.txt", 512, /*quantize_fp8=*/true);
  ASSERT_GT(bf16.count, 0);
  ASSERT_EQ(fp8.count, bf16.count);
  std::printf("[fp8 gpu] demo perplexity bf16 %.4f fp8 %.4f (%+.2f%%)\n", bf16.ppl, fp8.ppl, 100 * (fp8.ppl / bf16.ppl - 1));
  EXPECT_LT(std::fabs(fp8.ppl / bf16.ppl - 1), 0.02);
  EXPECT_LT(std::fabs(fp8.ppl / 9.4947 - 1), 0.01);  // the CPU's --quantization fp8 figure
}

// Issue 12's FP8 KV cache bar on the demo model, on the GPU: held-out perplexity within 1% of the
// compute-dtype cache (prefill attention over FP8 K/V), and decode over an FP8 cache near the CPU's
// FP8-cache logits (the same bytes up to bf16 activations).
TEST(GpuFp8, KvCacheDemoPerplexityWithinOnePercent) {
  const std::string& dir = kDemoDir;
  auto backend = make_cuda_backend(CudaBackendOptions{});
  ASSERT_TRUE(backend.ok()) << backend.status().to_string();
  const Perplexity& bf16 = gpu_bf16_perplexity();
  const Perplexity fp8 = teacher_forced_perplexity(**backend, dir, dir + "/heldout.txt", 512, false, /*kv_fp8=*/true);
  ASSERT_GT(bf16.count, 0);
  ASSERT_EQ(fp8.count, bf16.count);
  std::printf("[fp8 kv gpu] demo perplexity bf16 cache %.4f fp8 cache %.4f (%+.2f%%)\n", bf16.ppl, fp8.ppl,
              100 * (fp8.ppl / bf16.ppl - 1));
  EXPECT_LT(std::fabs(fp8.ppl / bf16.ppl - 1), 0.01);
  EXPECT_NE(fp8.ppl, bf16.ppl);
}

TEST(GpuFp8, KvCacheDecodeNearTheCpu) {
  const std::string& dir = kDemoDir;
  auto gpu = make_cuda_backend(CudaBackendOptions{});
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  auto cpu = make_cpu_backend();
  auto tok = Tokenizer::load(dir);
  ASSERT_TRUE(tok.ok());
  auto ids = (*tok)->encode("The little dog ran to the park, and then he saw a big red ball under the tree.", true);
  ASSERT_TRUE(ids.ok());
  TeacherForcing g(**gpu, dir, 16, 8, false, /*kv_fp8=*/true), c(*cpu, dir, 16, 8, false, /*kv_fp8=*/true);
  const std::vector<float> got = g.prefill_then_decode(*ids), want = c.prefill_then_decode(*ids);
  ASSERT_EQ(got.size(), want.size());
  const int64_t vocab = g.model->config().vocab_size;
  double worst = 0;
  for (size_t r = 0; r * vocab < got.size(); ++r) worst = std::max(worst, rel_l2(&got[r * vocab], &want[r * vocab], vocab));
  std::printf("[fp8 kv gpu] demo prefill+decode worst row rel L2 vs CPU %.4f\n", worst);
  EXPECT_LT(worst, 0.05);
}

// --quantization fp8 on a real-size configuration with random weights: the engine loads, captures
// graphs and generates (FP8 GEMMs at Llama-3-8B's shapes inside captured graphs).
TEST(GpuFp8, RandomLlama3WeightsQuantizedOnlineGenerate) {
  EngineConfig config;
  config.model_config = "llama-3-8b";
  config.quantize_fp8 = true;
  config.max_model_len = 512;
  config.max_num_seqs = 8;
  config.max_num_batched_tokens = 1024;
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 16, p.ignore_eos = true;
  const auto out = generate_all(**engine, {{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11}}, p);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].size(), 16u);
  EXPECT_EQ(out[1].size(), 16u);
}

// Per-token inputs quantized by the norm or SiLU·up before their linear (the fused kernels), and
// the scales of o_proj, gate_up and down applied by the fused op after them, must give the logits
// of the linears quantizing their own inputs (quantize_fp8_rows) and scaling their own outputs
// (scale_fp8_product), bit for bit: the same bytes and scales reach the same FP8 GEMMs. A prefill
// of half the sequence, then decode steps (graphs), in bf16 and fp16; fused inputs with and
// without deferred scales. The demo model (--quantization fp8) fuses every qkv, gate_up and down
// and defers the scales of every o_proj, gate_up and down but the last layer's down; the tiny
// checkpoints fuse what runs an FP8 GEMM.
struct Fp8Fusions {
  int inputs = 0, deferred = 0;
};
std::vector<float> teacher_forced_logits(Backend& backend, const std::string& dir, bool quantize_fp8,
                                         Fp8Fusions* fusions) {
  TeacherForcing tf(backend, dir, 16, 16, quantize_fp8);
  EXPECT_TRUE(tf.model);
  if (!tf.model) return {};
  fusions->inputs = tf.model->fp8_fused_inputs(), fusions->deferred = tf.model->fp8_deferred_scales();
  std::vector<int32_t> ids;
  for (int i = 0; i < 40; ++i) ids.push_back(static_cast<int32_t>((i * 37 + 11) % 200 + 2));
  return tf.prefill_then_decode(ids);
}

TEST(GpuFp8, FusedInputQuantizationGivesTheUnfusedLogitsExactly) {
  const std::string demo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";
  const std::pair<std::string, bool> models[] = {
      {demo, true}, {fp8_dir("ct_channel_token"), false}, {fp8_dir("fbgemm_channel"), false}, {fp8_dir("online_bf16"), true}};
  for (DType dt : {DType::kBF16, DType::kF16})
    for (const auto& [dir, quantize] : models) {
      SCOPED_TRACE(dir + " " + dtype_name(dt));
      CudaBackendOptions options;
      options.dtype = dt;
      auto backend = make_cuda_backend(options);
      ASSERT_TRUE(backend.ok()) << backend.status().to_string();
      Fp8Fusions fused, inputs_only, unfused, unfused_again;
      const std::vector<float> with = teacher_forced_logits(**backend, dir, quantize, &fused);
      (*backend)->set_fp8_scale_deferral(false);
      const std::vector<float> with_inputs = teacher_forced_logits(**backend, dir, quantize, &inputs_only);
      (*backend)->set_fp8_input_fusion(false);
      const std::vector<float> without = teacher_forced_logits(**backend, dir, quantize, &unfused);
      const std::vector<float> again = teacher_forced_logits(**backend, dir, quantize, &unfused_again);
      std::printf("[fp8 gpu] %s %s: %d linears take inputs quantized by their producer, %d leave their scales to "
                  "the op after them\n", dir.c_str(), dtype_name(dt), fused.inputs, fused.deferred);
      if (dir == demo) {
        EXPECT_EQ(fused.inputs, 18) << "qkv, gate_up and down of its 6 layers";
        EXPECT_EQ(fused.deferred, 17) << "o_proj, gate_up and down of its 6 layers, but the last down";
      }
      EXPECT_EQ(inputs_only.inputs, fused.inputs);
      EXPECT_EQ(inputs_only.deferred, 0);
      EXPECT_EQ(unfused.inputs + unfused.deferred, 0);
      ASSERT_FALSE(with.empty());
      ASSERT_EQ(without, again) << "the unfused forward itself is not deterministic";
      EXPECT_EQ(with_inputs, without) << "fused inputs";
      EXPECT_EQ(with, without) << "fused inputs and deferred scales";
    }
}

}  // namespace
}  // namespace tk::test
