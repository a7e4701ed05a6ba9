// Built-in configurations of published checkpoints (their config.json values), so that
// `tokamak bench latency --model-config NAME --random-weights` needs no download.
#include "model/model.h"

namespace tk {
namespace {

// One row per published checkpoint: its config.json values (bf16).
struct Preset {
  const char* name;
  Architecture arch;
  const char* arch_string;
  int64_t vocab, hidden, intermediate, layers, heads, kv_heads, head_dim;
  double rms_norm_eps, rope_theta;
  int64_t max_positions;
  bool attention_bias;
  std::vector<int32_t> eos;
  std::optional<int32_t> bos;
};

const std::vector<Preset>& presets() {
  static const std::vector<Preset> table = {
      {"llama-3-8b", Architecture::kLlama, "LlamaForCausalLM", 128256, 4096, 14336, 32, 32, 8, 128, 1e-5, 500000, 8192,
       false, {128001}, 128000},
      {"llama-3-70b", Architecture::kLlama, "LlamaForCausalLM", 128256, 8192, 28672, 80, 64, 8, 128, 1e-5, 500000, 8192,
       false, {128001}, 128000},  // 141 GB in bf16: more than one H200 holds (tensor parallelism)
      {"mistral-7b", Architecture::kMistral, "MistralForCausalLM", 32768, 4096, 14336, 32, 32, 8, 128, 1e-5, 1e6, 32768,
       false, {2}, 1},  // v0.3
      {"qwen2.5-7b", Architecture::kQwen2, "Qwen2ForCausalLM", 152064, 3584, 18944, 28, 28, 4, 128, 1e-6, 1e6, 32768, true,
       {151645, 151643}, std::nullopt},
  };
  return table;
}

ModelConfig to_config(const Preset& p) {
  ModelConfig c;
  c.architecture = p.arch, c.architecture_string = p.arch_string, c.torch_dtype = DType::kBF16;
  c.vocab_size = p.vocab, c.hidden_size = p.hidden, c.intermediate_size = p.intermediate, c.num_layers = p.layers;
  c.num_heads = p.heads, c.num_kv_heads = p.kv_heads, c.head_dim = p.head_dim;
  c.rms_norm_eps = p.rms_norm_eps, c.rope_theta = p.rope_theta, c.max_position_embeddings = p.max_positions;
  c.attention_bias = p.attention_bias, c.eos_token_ids = p.eos, c.bos_token_id = p.bos;
  return c;
}

}  // namespace

std::vector<std::string> builtin_model_names() {
  std::vector<std::string> names;
  for (const Preset& p : presets()) names.push_back(p.name);
  return names;
}

std::string builtin_model_names_text() {
  std::string text;
  for (const std::string& n : builtin_model_names()) text += (text.empty() ? "" : ", ") + n;
  return text;
}

Result<ModelConfig> builtin_model_config(const std::string& name) {
  for (const Preset& p : presets())
    if (name == p.name) return to_config(p);
  return invalid_argument("unknown --model-config '" + name + "' (known: " + builtin_model_names_text() + ")");
}

}  // namespace tk
