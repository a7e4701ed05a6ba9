// The golden checkpoints under tests/data/golden were written by transformers 5 (both config
// forms, bf16/fp16/fp32 weights, tied and untied heads): every one must read back whole.
#include <cmath>

#include "test_files.h"

#ifndef TOKAMAK_TEST_DATA_DIR
#error "TOKAMAK_TEST_DATA_DIR must name tests/data"
#endif

namespace tk {
namespace {

std::string golden_dir(const std::string& name) { return std::string(TOKAMAK_TEST_DATA_DIR) + "/golden/" + name; }

struct GoldenCase {
  const char* name;
  Architecture arch;
  int64_t num_heads, num_kv_heads, head_dim, hidden, intermediate, vocab;
  bool tied;
  DType dtype;
};

constexpr GoldenCase kCases[] = {
    {"llama_gqa", Architecture::kLlama, 4, 2, 64, 64, 168, 3000, false, DType::kBF16},
    {"llama3_scaled", Architecture::kLlama, 4, 1, 64, 32, 88, 6000, true, DType::kF32},
    {"mistral_odd", Architecture::kMistral, 3, 1, 64, 64, 120, 3000, false, DType::kF16},
    {"qwen2_bias", Architecture::kQwen2, 4, 2, 64, 64, 152, 6000, true, DType::kBF16},
    {"qwen3_qknorm", Architecture::kQwen3, 4, 2, 64, 64, 136, 6000, true, DType::kBF16},
};

TEST(GoldenCheckpointTest, EveryCaseLoads) {
  for (const GoldenCase& g : kCases) {
    SCOPED_TRACE(g.name);
    const std::string dir = golden_dir(g.name);
    auto config = load_model_config(dir);
    ASSERT_TRUE(config.ok()) << config.status().to_string();
    const ModelConfig& c = *config;
    EXPECT_EQ(c.architecture, g.arch);
    EXPECT_EQ(c.num_layers, 2);
    EXPECT_EQ(c.num_heads, g.num_heads);
    EXPECT_EQ(c.num_kv_heads, g.num_kv_heads);
    EXPECT_EQ(c.head_dim, g.head_dim);
    EXPECT_EQ(c.hidden_size, g.hidden);
    EXPECT_EQ(c.intermediate_size, g.intermediate);
    EXPECT_EQ(c.vocab_size, g.vocab);
    EXPECT_EQ(c.tie_word_embeddings, g.tied);
    EXPECT_EQ(c.torch_dtype, g.dtype);
    EXPECT_EQ(c.attention_bias, g.arch == Architecture::kQwen2);
    EXPECT_EQ(c.qk_norm, g.arch == Architecture::kQwen3);

    auto gen = load_generation_config(dir);
    ASSERT_TRUE(gen.ok()) << gen.status().to_string();
    EXPECT_FALSE(gen->eos_token_ids.empty());

    auto ckpt = Checkpoint::open(dir);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status().to_string();
    const int64_t q = c.num_heads * c.head_dim, kv = c.num_kv_heads * c.head_dim;
    auto embed = (*ckpt)->get("model.embed_tokens.weight", Shape{c.vocab_size, c.hidden_size});
    ASSERT_TRUE(embed.ok()) << embed.status().to_string();
    EXPECT_EQ(embed->dtype, g.dtype);
    EXPECT_EQ((*ckpt)->contains("lm_head.weight"), !g.tied);
    EXPECT_TRUE((*ckpt)->get("model.layers.1.self_attn.q_proj.weight", Shape{q, c.hidden_size}).ok());
    EXPECT_TRUE((*ckpt)->get("model.layers.1.self_attn.k_proj.weight", Shape{kv, c.hidden_size}).ok());
    EXPECT_TRUE((*ckpt)->get("model.layers.1.mlp.down_proj.weight", Shape{c.hidden_size, c.intermediate_size}).ok());
    EXPECT_EQ((*ckpt)->contains("model.layers.0.self_attn.q_proj.bias"), c.attention_bias);
    EXPECT_EQ((*ckpt)->contains("model.layers.0.self_attn.q_norm.weight"), c.qk_norm);

    auto logits = SafetensorsFile::open(dir + "/logits.safetensors");
    ASSERT_TRUE(logits.ok()) << logits.status().to_string();
    for (const auto& [name, info] : (*logits)->tensors()) EXPECT_EQ(info.dtype, DType::kF32) << name;
  }
}

TEST(GoldenCheckpointTest, Llama3ScaledFrequencyRegimes) {
  auto config = load_model_config(golden_dir("llama3_scaled"));
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  ModelConfig plain = *config;
  plain.rope_scaling = RopeScaling();
  std::vector<float> scaled = rope_inv_freq(*config), base = rope_inv_freq(plain);
  ASSERT_EQ(scaled.size(), 32u);  // head_dim 64, not hidden_size / num_heads = 8
  int unchanged = 0, divided = 0, smoothed = 0;
  for (size_t i = 0; i < scaled.size(); ++i) {
    if (scaled[i] == base[i]) ++unchanged;
    else if (scaled[i] == base[i] / 8.0f) ++divided;
    else ++smoothed;
  }
  // As the golden's notes record from transformers: 3 unchanged, 3 smoothed, 26 divided.
  EXPECT_EQ(unchanged, 3);
  EXPECT_EQ(smoothed, 3);
  EXPECT_EQ(divided, 26);
}

}  // namespace
}  // namespace tk
