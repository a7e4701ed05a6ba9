// generation_config.json, and RoPE inverse frequencies against an independent double-precision
// evaluation of the published formula.
#include <cmath>
#include <numbers>

#include "test_files.h"

namespace tk {
namespace {

using nlohmann::json;

// Published RoPE settings: Llama 3.1 8B (llama3 scaling) and Qwen3 0.6B (explicit head_dim).
Result<ModelConfig> llama31_rope() {
  return parse_model_config(R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
    "intermediate_size": 14336, "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "rope_theta": 500000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}})",
                            "config.json");
}
Result<ModelConfig> qwen3_rope() {
  return parse_model_config(R"({"architectures": ["Qwen3ForCausalLM"], "head_dim": 128, "hidden_size": 1024,
    "intermediate_size": 3072, "num_attention_heads": 16, "num_hidden_layers": 28,
    "num_key_value_heads": 8, "vocab_size": 151936, "rope_theta": 1000000})",
                            "config.json");
}

// ---- generation_config.json

TEST(GenerationConfigTest, ListOfEosAndSamplingDefaults) {
  auto r = parse_generation_config(R"({"bos_token_id": 128000, "do_sample": true,
      "eos_token_id": [128001, 128008, 128009], "temperature": 0.6, "top_p": 0.9, "top_k": 20,
      "min_p": 0.05, "repetition_penalty": 1.1, "transformers_version": "4.43.0"})",
                                   "generation_config.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(r->bos_token_id, 128000);
  EXPECT_FLOAT_EQ(r->temperature.value(), 0.6f);
  EXPECT_FLOAT_EQ(r->top_p.value(), 0.9f);
  EXPECT_EQ(r->top_k, 20);
  EXPECT_FLOAT_EQ(r->min_p.value(), 0.05f);
  EXPECT_FLOAT_EQ(r->repetition_penalty.value(), 1.1f);
  EXPECT_EQ(r->do_sample, true);
}

TEST(GenerationConfigTest, SingleEosAndAbsentFields) {
  auto r = parse_generation_config(R"({"eos_token_id": 2, "temperature": null})", "generation_config.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->eos_token_ids, (std::vector<int32_t>{2}));
  EXPECT_FALSE(r->bos_token_id.has_value());
  EXPECT_FALSE(r->temperature.has_value());
  EXPECT_FALSE(r->top_k.has_value());
  EXPECT_FALSE(r->do_sample.has_value());
}

TEST(GenerationConfigTest, Errors) {
  auto bad = [](const std::string& text, StatusCode code, const std::string& needle) {
    auto r = parse_generation_config(text, "generation_config.json");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    EXPECT_NE(r.status().message().find("generation_config.json: " + needle), std::string::npos) << r.status().message();
  };
  bad("{", StatusCode::kCorrupt, "malformed JSON");
  bad("3", StatusCode::kCorrupt, "expected a JSON object");
  bad(R"({"eos_token_id": "2"})", StatusCode::kInvalidArgument, "eos_token_id");
  bad(R"({"eos_token_id": [2, 3.5]})", StatusCode::kInvalidArgument, "eos_token_id");
  bad(R"({"temperature": "hot"})", StatusCode::kInvalidArgument, "temperature must be a number");
  bad(R"({"top_k": -1})", StatusCode::kInvalidArgument, "top_k must be in");
  bad(R"({"do_sample": 1})", StatusCode::kInvalidArgument, "do_sample must be true or false");
  // Values the engine would refuse on every request are refused here, naming the file and field.
  bad(R"({"temperature": -1})", StatusCode::kInvalidArgument, "temperature must be in [0, 100], got -1");
  bad(R"({"temperature": 1e300})", StatusCode::kInvalidArgument, "temperature must be in [0, 100]");
  bad(R"({"top_p": 0})", StatusCode::kInvalidArgument, "top_p must be in (0, 1], got 0");
  bad(R"({"top_p": 1.5})", StatusCode::kInvalidArgument, "top_p must be in (0, 1]");
  bad(R"({"min_p": 2})", StatusCode::kInvalidArgument, "min_p must be in [0, 1]");
  bad(R"({"repetition_penalty": 0})", StatusCode::kInvalidArgument, "repetition_penalty must be in (0, 10]");
  bad(R"({"max_new_tokens": 0})", StatusCode::kInvalidArgument, "max_new_tokens must be in [1, ");
  bad(R"({"max_new_tokens": 1.5})", StatusCode::kInvalidArgument, "max_new_tokens must be an integer");
}

TEST(GenerationConfigTest, MaxNewTokensIsRead) {
  auto r = parse_generation_config(R"({"max_new_tokens": 300, "temperature": 0, "top_p": 1})", "generation_config.json");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->max_new_tokens, 300);
  EXPECT_FLOAT_EQ(r->temperature.value(), 0.f);
  EXPECT_FALSE(parse_generation_config("{}", "g.json")->max_new_tokens.has_value());
}

// The memory check sizes weights from this count before anything loads: Hugging Face's figures.
TEST(ParameterCountTest, MatchesPublishedModels) {
  auto llama = builtin_model_config("llama-3-8b");
  ASSERT_TRUE(llama.ok());
  EXPECT_EQ(num_parameters(*llama), 8030261248 + 64);  // + the 64 RoPE frequencies
  auto qwen = builtin_model_config("qwen2.5-7b");
  ASSERT_TRUE(qwen.ok());
  EXPECT_EQ(num_parameters(*qwen), 7615616512 + 64);  // q/k/v biases included
}

TEST(GenerationConfigTest, MissingFileIsEmpty) {
  testing::ScratchDir dir;
  auto r = load_generation_config(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->eos_token_ids.empty());
  testing::write_file(dir.file("generation_config.json"), R"({"eos_token_id": [1, 2]})");
  r = load_generation_config(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->eos_token_ids, (std::vector<int32_t>{1, 2}));
}

// ---- RoPE inverse frequencies

// The formula from the Llama 3.1 release (and transformers' _compute_llama3_parameters), in
// double precision: f_i = theta^(-2i/d); wavelength w = 2*pi/f; keep f when w < L/high, use f/s
// when w > L/low, otherwise blend with a = (L/w - low) / (high - low): (1-a) f/s + a f.
std::vector<double> reference_inv_freq(double theta, int dim, const RopeScaling* s) {
  std::vector<double> out;
  for (int i = 0; i < dim / 2; ++i) {
    double f = 1.0 / std::pow(theta, 2.0 * i / dim);
    if (s != nullptr) {
      double old_len = static_cast<double>(s->original_max_position_embeddings);
      double w = 2 * std::numbers::pi / f;
      if (w > old_len / s->low_freq_factor) {
        f = f / s->factor;
      } else if (w >= old_len / s->high_freq_factor) {
        double a = (old_len / w - s->low_freq_factor) / (s->high_freq_factor - s->low_freq_factor);
        f = (1 - a) * f / s->factor + a * f;
      }
    }
    out.push_back(f);
  }
  return out;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-6 * std::fabs(want[i])) << "i=" << i;
}

TEST(RopeTest, Llama3ScaledMatchesReference) {
  auto c = llama31_rope();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  std::vector<float> got = rope_inv_freq(*c);
  std::vector<double> want = reference_inv_freq(500000.0, 128, &c->rope_scaling);
  expect_close(got, want);
  // All three regimes occur for these parameters: untouched, blended, and divided by 8.
  std::vector<double> plain = reference_inv_freq(500000.0, 128, nullptr);
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    double ratio = want[i] / plain[i];
    if (std::fabs(ratio - 1) < 1e-12) ++kept;
    else if (std::fabs(ratio - 0.125) < 1e-12) ++divided;
    else ++blended;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);
}

TEST(RopeTest, DefaultMatchesReference) {
  auto c = qwen3_rope();
  ASSERT_TRUE(c.ok()) << c.status().to_string();
  std::vector<float> got = rope_inv_freq(*c);
  ASSERT_EQ(got.size(), 64u);  // head_dim / 2 with the explicit head_dim
  expect_close(got, reference_inv_freq(1e6, 128, nullptr));
  EXPECT_EQ(got[0], 1.0f);
}

}  // namespace
}  // namespace tk
