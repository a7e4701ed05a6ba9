// Built-in configurations of published checkpoints (their config.json values), so that
// `tokamak bench latency --model-config NAME --random-weights` needs no download.
#include "model/model.h"

namespace tk {
namespace {

ModelConfig base(Architecture arch, const char* arch_string) {
  ModelConfig c;
  c.architecture = arch;
  c.architecture_string = arch_string;
  c.torch_dtype = DType::kBF16;
  return c;
}

ModelConfig llama_3_8b() {
  ModelConfig c = base(Architecture::kLlama, "LlamaForCausalLM");
  c.vocab_size = 128256, c.hidden_size = 4096, c.intermediate_size = 14336, c.num_layers = 32;
  c.num_heads = 32, c.num_kv_heads = 8, c.head_dim = 128, c.rms_norm_eps = 1e-5, c.rope_theta = 500000;
  c.max_position_embeddings = 8192, c.eos_token_ids = {128001}, c.bos_token_id = 128000;
  return c;
}

ModelConfig mistral_7b() {
  ModelConfig c = base(Architecture::kMistral, "MistralForCausalLM");
  c.vocab_size = 32768, c.hidden_size = 4096, c.intermediate_size = 14336, c.num_layers = 32;
  c.num_heads = 32, c.num_kv_heads = 8, c.head_dim = 128, c.rms_norm_eps = 1e-5, c.rope_theta = 1e6;
  c.max_position_embeddings = 32768, c.eos_token_ids = {2}, c.bos_token_id = 1;
  return c;
}

ModelConfig qwen25_7b() {
  ModelConfig c = base(Architecture::kQwen2, "Qwen2ForCausalLM");
  c.vocab_size = 152064, c.hidden_size = 3584, c.intermediate_size = 18944, c.num_layers = 28;
  c.num_heads = 28, c.num_kv_heads = 4, c.head_dim = 128, c.rms_norm_eps = 1e-6, c.rope_theta = 1e6;
  c.max_position_embeddings = 32768, c.attention_bias = true, c.eos_token_ids = {151645, 151643};
  return c;
}

}  // namespace

std::vector<std::string> builtin_model_names() { return {"llama-3-8b", "mistral-7b", "qwen2.5-7b"}; }

Result<ModelConfig> builtin_model_config(const std::string& name) {
  if (name == "llama-3-8b") return llama_3_8b();
  if (name == "mistral-7b") return mistral_7b();
  if (name == "qwen2.5-7b") return qwen25_7b();
  std::string known;
  for (const std::string& n : builtin_model_names()) known += (known.empty() ? "" : ", ") + n;
  return invalid_argument("unknown --model-config '" + name + "' (known: " + known + ")");
}

}  // namespace tk
