// config.json of each supported architecture in both RoPE spellings (rope_theta + rope_scaling,
// and transformers 5's rope_parameters), and every kind of broken config.
#include "test_files.h"

namespace tk {
namespace {

using nlohmann::json;

// Llama 3.1 8B as published (rope_theta + rope_scaling, torch_dtype).
json llama31() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": false,
    "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false,
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
    "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": false,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "torch_dtype": "bfloat16", "vocab_size": 128256})");
}

// The same model as transformers 5 writes it: rope_parameters and dtype.
json llama31_v5() {
  json j = llama31();
  j.erase("rope_theta");
  j.erase("rope_scaling");
  j.erase("torch_dtype");
  j["dtype"] = "bfloat16";
  j["rope_parameters"] = {{"rope_type", "llama3"}, {"rope_theta", 500000.0}, {"factor", 8.0},
                          {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8192}};
  return j;
}

json mistral7b() {
  return json::parse(R"({
    "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2, "hidden_size": 4096,
    "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
    "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0, "sliding_window": 4096, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "vocab_size": 32000})");
}

json qwen25() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151645,
    "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
    "max_window_layers": 21, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
    "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16", "use_sliding_window": false,
    "vocab_size": 151936})");
}

json qwen3() {
  return json::parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "attention_bias": false, "bos_token_id": 151643,
    "eos_token_id": 151645, "head_dim": 128, "hidden_size": 1024, "intermediate_size": 3072,
    "max_position_embeddings": 40960, "model_type": "qwen3", "num_attention_heads": 16,
    "num_hidden_layers": 28, "num_key_value_heads": 8, "rms_norm_eps": 1e-06, "rope_scaling": null,
    "rope_theta": 1000000, "sliding_window": null, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
    "use_sliding_window": false, "vocab_size": 151936})");
}

Result<ModelConfig> parse(const json& j) { return parse_model_config(j.dump(), "config.json"); }

void expect_error(const Result<ModelConfig>& r, StatusCode code, const std::string& needle) {
  ASSERT_FALSE(r.ok()) << "expected an error containing: " << needle;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find("config.json"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
}

void expect_llama31(const Result<ModelConfig>& r) {
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const ModelConfig& c = *r;
  EXPECT_EQ(c.architecture, Architecture::kLlama);
  EXPECT_EQ(c.architecture_string, "LlamaForCausalLM");
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.hidden_size, 4096);
  EXPECT_EQ(c.intermediate_size, 14336);
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_DOUBLE_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.rope_scaling.type, RopeScaling::Type::kLlama3);
  EXPECT_DOUBLE_EQ(c.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_scaling.original_max_position_embeddings, 8192);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.max_position_embeddings, 131072);
  EXPECT_EQ(c.torch_dtype, DType::kBF16);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int32_t>{128001, 128008, 128009}));
  EXPECT_EQ(c.bos_token_id, 128000);
}

TEST(ModelConfigTest, Llama31PublishedForm) { expect_llama31(parse(llama31())); }
TEST(ModelConfigTest, Llama31Transformers5Form) { expect_llama31(parse(llama31_v5())); }

TEST(ModelConfigTest, LlamaDefaultsAndAttentionBias) {
  json j = llama31();
  for (const char* k : {"num_key_value_heads", "rope_theta", "rope_scaling", "max_position_embeddings",
                        "torch_dtype", "tie_word_embeddings", "bos_token_id", "eos_token_id", "rms_norm_eps"})
    j.erase(k);
  j["attention_bias"] = true;
  j["rope_scaling"] = nullptr;
  auto r = parse(j);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->num_kv_heads, 32);  // defaults to num_attention_heads
  EXPECT_DOUBLE_EQ(r->rope_theta, 10000.0);
  EXPECT_EQ(r->rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_EQ(r->max_position_embeddings, 2048);
  EXPECT_FALSE(r->tie_word_embeddings);
  EXPECT_TRUE(r->attention_bias);
  EXPECT_TRUE(r->eos_token_ids.empty());
  EXPECT_FALSE(r->bos_token_id.has_value());
}

TEST(ModelConfigTest, MistralSlidingWindowWarnsButLoads) {
  ::testing::internal::CaptureStderr();
  auto r = parse(mistral7b());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->architecture, Architecture::kMistral);
  EXPECT_EQ(r->head_dim, 128);
  EXPECT_EQ(r->eos_token_ids, (std::vector<int32_t>{2}));
  EXPECT_EQ(r->bos_token_id, 1);
  EXPECT_NE(log.find("sliding_window=4096 is ignored"), std::string::npos) << log;

  json v03 = mistral7b();
  v03["sliding_window"] = nullptr;
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(parse(v03).ok());
  EXPECT_EQ(::testing::internal::GetCapturedStderr().find("sliding_window"), std::string::npos);
}

TEST(ModelConfigTest, Qwen2AlwaysHasQkvBias) {
  ::testing::internal::CaptureStderr();
  auto r = parse(qwen25());
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->architecture, Architecture::kQwen2);
  EXPECT_TRUE(r->attention_bias);
  EXPECT_FALSE(r->qk_norm);
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_EQ(r->head_dim, 64);
  EXPECT_EQ(r->num_kv_heads, 2);
  EXPECT_DOUBLE_EQ(r->rope_theta, 1e6);
  EXPECT_EQ(log.find("sliding_window"), std::string::npos) << "use_sliding_window is false: " << log;

  json windowed = qwen25();
  windowed["use_sliding_window"] = true;
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(parse(windowed).ok());
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("sliding_window=32768 is ignored"), std::string::npos);
}

TEST(ModelConfigTest, Qwen2Transformers5Form) {
  json j = qwen25();
  j.erase("rope_theta");
  j.erase("torch_dtype");
  j["dtype"] = "float16";
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000.0}};
  auto r = parse(j);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_DOUBLE_EQ(r->rope_theta, 1e6);
  EXPECT_EQ(r->rope_scaling.type, RopeScaling::Type::kNone);
  EXPECT_EQ(r->torch_dtype, DType::kF16);
  EXPECT_TRUE(r->attention_bias);
}

TEST(ModelConfigTest, Qwen3HeadDimAndQkNorm) {
  auto r = parse(qwen3());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->architecture, Architecture::kQwen3);
  EXPECT_EQ(r->head_dim, 128);  // given, not hidden_size / num_attention_heads = 64
  EXPECT_TRUE(r->qk_norm);
  EXPECT_FALSE(r->attention_bias);
  EXPECT_TRUE(r->tie_word_embeddings);
  EXPECT_EQ(r->max_position_embeddings, 40960);
  EXPECT_EQ(r->eos_token_ids, (std::vector<int32_t>{151645}));

  json v5 = qwen3();
  v5.erase("rope_theta");
  v5.erase("rope_scaling");
  v5["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1000000}};
  auto r5 = parse(v5);
  ASSERT_TRUE(r5.ok()) << r5.status().to_string();
  EXPECT_DOUBLE_EQ(r5->rope_theta, 1e6);
  EXPECT_TRUE(r5->qk_norm);
}

TEST(ModelConfigTest, RopeTypeSpellings) {
  json j = llama31();
  j["rope_scaling"].erase("rope_type");
  j["rope_scaling"]["type"] = "llama3";  // the pre-4.45 key
  auto r = parse(j);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->rope_scaling.type, RopeScaling::Type::kLlama3);

  j["rope_scaling"] = {{"type", "default"}};
  r = parse(j);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->rope_scaling.type, RopeScaling::Type::kNone);

  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(parse(j), StatusCode::kUnsupported, "type 'yarn' is not supported");
  json v5 = llama31_v5();
  v5["rope_parameters"]["rope_type"] = "dynamic";
  expect_error(parse(v5), StatusCode::kUnsupported, "rope_parameters type 'dynamic' is not supported");
}

TEST(ModelConfigTest, Llama3RopeNeedsItsParameters) {
  json j = llama31();
  j["rope_scaling"].erase("factor");
  expect_error(parse(j), StatusCode::kInvalidArgument, "rope_scaling of type llama3 lacks factor");
  j = llama31();
  j["rope_scaling"]["high_freq_factor"] = 1.0;
  expect_error(parse(j), StatusCode::kInvalidArgument, "high_freq_factor > low_freq_factor");
  j = llama31();
  j["rope_scaling"]["factor"] = "8";
  expect_error(parse(j), StatusCode::kInvalidArgument, "rope_scaling: factor must be a number");
  j = llama31();
  j["rope_scaling"] = 8;
  expect_error(parse(j), StatusCode::kInvalidArgument, "rope_scaling must be an object");
}

TEST(ModelConfigTest, UnknownArchitecture) {
  json j = llama31();
  j["architectures"] = {"GPT2LMHeadModel"};
  expect_error(parse(j), StatusCode::kUnsupported, "architecture 'GPT2LMHeadModel' is not supported");
  j.erase("architectures");
  j["model_type"] = "gpt2";
  expect_error(parse(j), StatusCode::kUnsupported, "'gpt2'");
  j["model_type"] = "qwen3";  // model_type alone is enough
  auto r = parse(j);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->architecture, Architecture::kQwen3);
  j.erase("model_type");
  expect_error(parse(j), StatusCode::kInvalidArgument, "no architectures or model_type");
  j["architectures"] = "LlamaForCausalLM";
  expect_error(parse(j), StatusCode::kInvalidArgument, "architectures must be a non-empty list");
}

TEST(ModelConfigTest, MalformedJson) {
  expect_error(parse_model_config("{\"hidden_size\": ", "config.json"), StatusCode::kCorrupt, "malformed JSON");
  expect_error(parse_model_config("", "config.json"), StatusCode::kCorrupt, "malformed JSON");
  expect_error(parse_model_config("[1, 2]", "config.json"), StatusCode::kCorrupt, "expected a JSON object, got array");
}

TEST(ModelConfigTest, WrongTypesAndBadSizes) {
  auto with = [](const char* key, json value) {
    json j = llama31();
    j[key] = std::move(value);
    return parse(j);
  };
  expect_error(with("hidden_size", "4096"), StatusCode::kInvalidArgument, "hidden_size must be an integer, got \"4096\"");
  expect_error(with("hidden_size", 4096.5), StatusCode::kInvalidArgument, "hidden_size must be an integer");
  expect_error(with("hidden_size", 0), StatusCode::kInvalidArgument, "hidden_size must be in [1, 2147483647], got 0");
  expect_error(with("vocab_size", -5), StatusCode::kInvalidArgument, "vocab_size must be in");
  expect_error(with("num_hidden_layers", json::array()), StatusCode::kInvalidArgument, "num_hidden_layers must be an integer");
  expect_error(with("intermediate_size", uint64_t{1} << 63), StatusCode::kInvalidArgument, "intermediate_size must be");
  expect_error(with("num_key_value_heads", 5), StatusCode::kInvalidArgument,
               "num_attention_heads=32 is not a multiple of num_key_value_heads=5");
  expect_error(with("hidden_size", 4001), StatusCode::kInvalidArgument,
               "hidden_size=4001 is not a multiple of num_attention_heads=32 and no head_dim is given");
  expect_error(with("head_dim", 63), StatusCode::kInvalidArgument, "head_dim=63 is odd");
  expect_error(with("rms_norm_eps", "1e-5"), StatusCode::kInvalidArgument, "rms_norm_eps must be a number");
  expect_error(with("rms_norm_eps", 0), StatusCode::kInvalidArgument, "rms_norm_eps must be positive");
  expect_error(with("rope_theta", -1.0), StatusCode::kInvalidArgument, "rope_theta must be positive");
  expect_error(with("tie_word_embeddings", "false"), StatusCode::kInvalidArgument, "tie_word_embeddings must be true or false");
  expect_error(with("eos_token_id", "2"), StatusCode::kInvalidArgument, "eos_token_id must be a token id");
  expect_error(with("eos_token_id", json::array({1, -2})), StatusCode::kInvalidArgument, "eos_token_id must hold token ids");
  expect_error(with("bos_token_id", 1.5), StatusCode::kInvalidArgument, "bos_token_id must be a token id");
  expect_error(with("torch_dtype", "int8"), StatusCode::kUnsupported, "torch_dtype 'int8' is not supported");
  expect_error(with("mlp_bias", true), StatusCode::kUnsupported, "mlp_bias=true is not supported");
  expect_error(with("partial_rotary_factor", 0.5), StatusCode::kUnsupported, "partial_rotary_factor");
  json j = llama31();
  j.erase("num_attention_heads");
  expect_error(parse(j), StatusCode::kInvalidArgument, "missing num_attention_heads");
}

TEST(ModelConfigTest, LoadFromDirectory) {
  testing::ScratchDir dir;
  auto missing = load_model_config(dir.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("config.json"), std::string::npos);
  testing::write_file(dir.file("config.json"), qwen3().dump(2));
  auto r = load_model_config(dir.path());
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->architecture, Architecture::kQwen3);
  EXPECT_STREQ(architecture_name(r->architecture), "Qwen3ForCausalLM");
}

}  // namespace
}  // namespace tk
