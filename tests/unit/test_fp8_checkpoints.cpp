// FP8 checkpoints of every format (tests/data/fp8, written by tools/make_fp8_checkpoints.py) on the
// CPU backend against the tool's own numpy implementation of the same quantized arithmetic: a
// prefill of the first half of the sequence, then one decode step per token, every logit row
// within 1e-3 relative L2. (FP8 moves these logits 5-11% from the float model's, so a scale read
// wrongly or an input left unquantized fails by far.) online_bf16 is --quantization fp8 of bf16
// weights, which must give the per-channel, per-token case's logits.
#include "golden_util.h"

#include "backend_cpu/cpu_backend.h"

namespace tk::test {
namespace {

constexpr double kTolerance = 1e-3;

std::string fp8_dir(const std::string& name) { return std::string(TOKAMAK_TEST_DATA) + "/fp8/" + name; }

class Fp8CheckpointTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Fp8CheckpointTest, CpuMatchesTheNumpyReference) {
  auto backend = make_cpu_backend();
  // online_bf16: ct_channel_token's weights in bf16, quantized at load (--quantization fp8).
  TeacherForcing tf(*backend, fp8_dir(GetParam()), /*page_size=*/8, 16, /*quantize_fp8=*/GetParam() == "online_bf16");
  ASSERT_TRUE(tf.model);
  const int64_t vocab = tf.model->config().vocab_size;
  const auto ids = read_json(fp8_dir(GetParam()) + "/reference.json")["token_ids"].get<std::vector<int32_t>>();
  auto ref = SafetensorsFile::open(fp8_dir(GetParam()) + "/reference.safetensors");
  ASSERT_TRUE(ref.ok()) << ref.status().to_string();
  const TensorInfo& logits = (*ref)->tensors().at("logits");
  ASSERT_EQ(logits.shape, (Shape{static_cast<int64_t>(ids.size()), vocab}));
  const float* want = static_cast<const float*>(logits.data);

  const std::vector<float> got = tf.prefill_then_decode(ids);
  const int n = static_cast<int>(ids.size());
  ASSERT_EQ(got.size(), static_cast<size_t>(n * vocab));
  for (int t = 0; t < n; ++t)
    EXPECT_LT(rel_l2(&got[t * vocab], want + t * vocab, vocab), kTolerance)
        << GetParam() << (t < n / 2 ? " prefill row " : " decode row ") << t;
}

INSTANTIATE_TEST_SUITE_P(Formats, Fp8CheckpointTest,
                         ::testing::Values("ct_tensor_static", "ct_channel_token", "ct_weight_only", "ct_block_group",
                                           "fp8_block", "fp8_tensor_static", "fbgemm_channel", "online_bf16"));

// Per-token inputs quantized by the norm or SiLU·up before their linear (Backend::fuses_fp8_input)
// must give the logits of the linear quantizing its own input, bit for bit: the CPU backend fuses
// by running the same two steps back to back, so this holds the model's wiring of the fused path
// (which buffer, which consumer's scheme, which linears) to the unfused one.
std::vector<float> teacher_forced_logits(Backend& backend, const std::string& name, int* fused_inputs) {
  TeacherForcing tf(backend, fp8_dir(name), /*page_size=*/8, 16, /*quantize_fp8=*/name == "online_bf16");
  EXPECT_TRUE(tf.model);
  if (!tf.model) return {};
  *fused_inputs = tf.model->fp8_fused_inputs();
  const auto ids = read_json(fp8_dir(name) + "/reference.json")["token_ids"].get<std::vector<int32_t>>();
  return tf.prefill_then_decode(ids);
}

class Fp8FusedInputTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Fp8FusedInputTest, CpuFusedLogitsEqualUnfused) {
  auto backend = make_cpu_backend();
  int fused = 0, unfused = 0;
  const std::vector<float> with = teacher_forced_logits(*backend, GetParam(), &fused);
  backend->set_fp8_input_fusion(false);
  const std::vector<float> without = teacher_forced_logits(*backend, GetParam(), &unfused);
  const auto config = load_model_config(fp8_dir(GetParam()));
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(fused, 3 * config->num_layers) << "qkv, gate_up and down of every layer";
  EXPECT_EQ(unfused, 0);
  ASSERT_FALSE(with.empty());
  EXPECT_EQ(with, without);
}

// The formats whose inputs are quantized per token (fbgemm_channel with its amax clamp).
INSTANTIATE_TEST_SUITE_P(PerToken, Fp8FusedInputTest, ::testing::Values("ct_channel_token", "fbgemm_channel", "online_bf16"));

}  // namespace
}  // namespace tk::test
