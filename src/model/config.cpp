// config.json -> ModelConfig. Every field a checkpoint controls is type- and range-checked here,
// so the weight loader and the forward can trust the sizes they multiply. Both RoPE spellings in
// the wild are read: rope_theta + rope_scaling (published checkpoints) and the rope_parameters
// object transformers 5 writes.
#include <limits>

#include "json_fields.h"
#include "quantization.h"
#include "model/model.h"

namespace tk {

using json_fields::json;

const char* architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::kLlama: return "LlamaForCausalLM";
    case Architecture::kMistral: return "MistralForCausalLM";
    case Architecture::kQwen2: return "Qwen2ForCausalLM";
    case Architecture::kQwen3: return "Qwen3ForCausalLM";
  }
  return "?";
}

namespace {

// Sizes feed int32 launch parameters and int64 byte counts; bounding them keeps every product
// the loader forms far from overflow.
constexpr int64_t kMaxSize = std::numeric_limits<int32_t>::max();

struct ArchEntry {
  const char* class_name;
  const char* model_type;
  Architecture arch;
  int64_t default_max_positions;  // transformers' config class default
};
constexpr ArchEntry kArchitectures[] = {
    {"LlamaForCausalLM", "llama", Architecture::kLlama, 2048},
    {"MistralForCausalLM", "mistral", Architecture::kMistral, 4096 * 32},
    {"Qwen2ForCausalLM", "qwen2", Architecture::kQwen2, 32768},
    {"Qwen3ForCausalLM", "qwen3", Architecture::kQwen3, 32768},
};

// `architectures[0]` names the class; `model_type` is the fallback some exports rely on.
Status read_architecture(const json& j, const std::string& src, ModelConfig& c) {
  std::string name;
  if (const json* archs = json_fields::find(j, "architectures")) {
    if (!archs->is_array() || archs->empty() || !(*archs)[0].is_string())
      return json_fields::field_error(src, "architectures", "must be a non-empty list of strings", *archs);
    name = (*archs)[0].get<std::string>();
  }
  std::string model_type;
  TK_RETURN_IF_ERROR(json_fields::read_string(j, "model_type", src, &model_type));
  for (const ArchEntry& e : kArchitectures) {
    if (name.empty() ? model_type == e.model_type : name == e.class_name) {
      c.architecture = e.arch;
      c.architecture_string = e.class_name;
      c.max_position_embeddings = e.default_max_positions;
      return Status::ok_status();
    }
  }
  if (name.empty() && model_type.empty()) return invalid_argument(src + ": no architectures or model_type given");
  return unsupported(src + ": architecture '" + (name.empty() ? model_type : name) +
                     "' is not supported (supported: LlamaForCausalLM, MistralForCausalLM, "
                     "Qwen2ForCausalLM, Qwen3ForCausalLM)");
}

Status read_sizes(const json& j, const std::string& src, ModelConfig& c) {
  using json_fields::read_int;
  struct Required {
    const char* key;
    int64_t* out;
  };
  const Required required[] = {{"vocab_size", &c.vocab_size},
                               {"hidden_size", &c.hidden_size},
                               {"intermediate_size", &c.intermediate_size},
                               {"num_hidden_layers", &c.num_layers},
                               {"num_attention_heads", &c.num_heads}};
  for (const Required& r : required) {
    if (json_fields::find(j, r.key) == nullptr) return invalid_argument(src + ": missing " + r.key);
    TK_RETURN_IF_ERROR(read_int(j, r.key, src, r.out, 1, kMaxSize));
  }
  c.num_kv_heads = c.num_heads;
  TK_RETURN_IF_ERROR(read_int(j, "num_key_value_heads", src, &c.num_kv_heads, 1, kMaxSize));
  c.head_dim = 0;
  TK_RETURN_IF_ERROR(read_int(j, "head_dim", src, &c.head_dim, 1, kMaxSize));
  TK_RETURN_IF_ERROR(read_int(j, "max_position_embeddings", src, &c.max_position_embeddings, 1, kMaxSize));

  if (c.num_heads % c.num_kv_heads != 0)
    return invalid_argument(src + ": num_attention_heads=" + std::to_string(c.num_heads) +
                            " is not a multiple of num_key_value_heads=" + std::to_string(c.num_kv_heads));
  if (c.head_dim == 0) {
    if (c.hidden_size % c.num_heads != 0)
      return invalid_argument(src + ": hidden_size=" + std::to_string(c.hidden_size) +
                              " is not a multiple of num_attention_heads=" + std::to_string(c.num_heads) +
                              " and no head_dim is given");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  // RoPE rotates pairs of channels.
  if (c.head_dim % 2 != 0) return invalid_argument(src + ": head_dim=" + std::to_string(c.head_dim) + " is odd");
  if ((c.num_heads + 2 * c.num_kv_heads) * c.head_dim > kMaxSize)
    return invalid_argument(src + ": (num_attention_heads + 2 * num_key_value_heads) * head_dim is too large");
  return Status::ok_status();
}

// Reads one rope_scaling / rope_parameters object. `rope_type` ("type" before transformers
// 4.45) selects the scheme; only llama3 rescales frequencies among the ones we run.
Status read_rope_object(const json& rope, const std::string& src, const std::string& key, ModelConfig& c) {
  if (!rope.is_object()) return json_fields::field_error(src, key, "must be an object", rope);
  const std::string where = src + ": " + key;  // names nested fields in messages
  std::string type = "default";
  TK_RETURN_IF_ERROR(json_fields::read_string(rope, "type", where, &type));
  TK_RETURN_IF_ERROR(json_fields::read_string(rope, "rope_type", where, &type));
  TK_RETURN_IF_ERROR(json_fields::read_double(rope, "rope_theta", where, &c.rope_theta));
  if (type == "default") {
    c.rope_scaling = RopeScaling();
    return Status::ok_status();
  }
  if (type != "llama3")
    return unsupported(src + ": " + key + " type '" + type + "' is not supported (supported: default, llama3)");
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScaling::Type::kLlama3;
  const char* required[] = {"factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings"};
  for (const char* r : required)
    if (json_fields::find(rope, r) == nullptr) return invalid_argument(src + ": " + key + " of type llama3 lacks " + r);
  TK_RETURN_IF_ERROR(json_fields::read_double(rope, "factor", where, &s.factor));
  TK_RETURN_IF_ERROR(json_fields::read_double(rope, "low_freq_factor", where, &s.low_freq_factor));
  TK_RETURN_IF_ERROR(json_fields::read_double(rope, "high_freq_factor", where, &s.high_freq_factor));
  TK_RETURN_IF_ERROR(json_fields::read_int(rope, "original_max_position_embeddings", where,
                                           &s.original_max_position_embeddings, 1, kMaxSize));
  // The smoothing divides by these; transformers only warns, we refuse values that give inf/NaN.
  if (!(s.factor > 0) || !(s.low_freq_factor > 0) || !(s.high_freq_factor > s.low_freq_factor))
    return invalid_argument(src + ": " + key + " needs factor > 0 and high_freq_factor > low_freq_factor > 0");
  return Status::ok_status();
}

Status read_rope(const json& j, const std::string& src, ModelConfig& c) {
  TK_RETURN_IF_ERROR(json_fields::read_double(j, "rope_theta", src, &c.rope_theta));
  // transformers 5 moves rope_theta and the scaling into rope_parameters; when both forms are
  // present the newer one wins, as it does in transformers.
  if (const json* p = json_fields::find(j, "rope_parameters")) {
    TK_RETURN_IF_ERROR(read_rope_object(*p, src, "rope_parameters", c));
  } else if (const json* s = json_fields::find(j, "rope_scaling")) {
    TK_RETURN_IF_ERROR(read_rope_object(*s, src, "rope_scaling", c));
  }
  if (!(c.rope_theta > 0)) return invalid_argument(src + ": rope_theta must be positive");
  double partial = 1.0;
  TK_RETURN_IF_ERROR(json_fields::read_double(j, "partial_rotary_factor", src, &partial));
  if (partial != 1.0) return unsupported(src + ": partial_rotary_factor != 1 is not supported");
  return Status::ok_status();
}

// Sliding-window attention is not implemented: we attend to the whole context, which is exact
// for every sequence shorter than the window, and say so once at load.
void warn_sliding_window(const json& j, const std::string& src, const ModelConfig& c) {
  int64_t window = 0;
  bool use_window = false;
  if (!json_fields::read_int(j, "sliding_window", src, &window, 1, std::numeric_limits<int64_t>::max()).ok() ||
      window == 0)
    return;  // null, absent or not a size: nothing a model would use
  if (c.architecture == Architecture::kMistral) {
    use_window = window < c.max_position_embeddings;
  } else {
    (void)json_fields::read_bool(j, "use_sliding_window", src, &use_window);
  }
  if (use_window)
    TK_LOG_WARN(src + ": sliding_window=" + std::to_string(window) +
                " is ignored: tokamak attends to the whole context");
}

Status read_flags(const json& j, const std::string& src, ModelConfig& c) {
  TK_RETURN_IF_ERROR(json_fields::read_double(j, "rms_norm_eps", src, &c.rms_norm_eps));
  if (!(c.rms_norm_eps > 0)) return invalid_argument(src + ": rms_norm_eps must be positive");
  TK_RETURN_IF_ERROR(json_fields::read_bool(j, "tie_word_embeddings", src, &c.tie_word_embeddings));
  TK_RETURN_IF_ERROR(json_fields::read_bool(j, "attention_bias", src, &c.attention_bias));
  // Qwen2 always has q/k/v bias (the config has no flag for it); Qwen3 always has q/k norm.
  if (c.architecture == Architecture::kQwen2) c.attention_bias = true;
  c.qk_norm = c.architecture == Architecture::kQwen3;
  bool mlp_bias = false;
  TK_RETURN_IF_ERROR(json_fields::read_bool(j, "mlp_bias", src, &mlp_bias));
  if (mlp_bias) return unsupported(src + ": mlp_bias=true is not supported");

  // transformers 5 writes "dtype"; earlier versions "torch_dtype".
  std::string dtype;
  const char* dtype_key = json_fields::find(j, "dtype") != nullptr ? "dtype" : "torch_dtype";
  TK_RETURN_IF_ERROR(json_fields::read_string(j, dtype_key, src, &dtype));
  if (!dtype.empty()) {
    std::optional<DType> d = dtype_from_torch_name(dtype);
    if (!d) return unsupported(src + ": " + dtype_key + " '" + dtype + "' is not supported (float32, float16, bfloat16)");
    c.torch_dtype = *d;
  }
  TK_RETURN_IF_ERROR(json_fields::read_token_ids(j, "eos_token_id", src, &c.eos_token_ids));
  TK_RETURN_IF_ERROR(json_fields::read_token_id(j, "bos_token_id", src, &c.bos_token_id));
  warn_sliding_window(j, src, c);
  return Status::ok_status();
}

}  // namespace

Result<ModelConfig> parse_model_config(const std::string& json_text, const std::string& source) {
  TK_ASSIGN_OR_RETURN(json j, json_fields::parse_json(json_text, source));
  if (!j.is_object()) return corrupt(source + ": expected a JSON object, got " + j.type_name());
  // NOTE: the readers above check every type before reading; this catch is the boundary that
  // keeps a missed case from escaping as an exception.
  try {
    ModelConfig c;
    TK_RETURN_IF_ERROR(read_architecture(j, source, c));
    TK_RETURN_IF_ERROR(read_sizes(j, source, c));
    TK_RETURN_IF_ERROR(read_rope(j, source, c));
    TK_RETURN_IF_ERROR(read_flags(j, source, c));
    TK_RETURN_IF_ERROR(model_detail::parse_quantization_config(j, source, c.quantization));
    return c;
  } catch (const std::exception& e) {
    return invalid_argument(source + ": " + e.what());
  }
}

Result<ModelConfig> load_model_config(const std::string& model_dir) {
  std::string path = join_path(model_dir, "config.json");
  if (!file_exists(path)) return not_found(path + ": no such file");
  TK_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_model_config(text, path);
}

}  // namespace tk
