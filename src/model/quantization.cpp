// config.json's quantization_config: the FP8 formats checkpoints ship in, read into one Fp8Scheme.
//   compressed-tensors (llm-compressor, "float-quantized" / "naive-quantized"): one config group
//     targeting Linear; weights per tensor, per channel or in 128x128 blocks; inputs static per
//     tensor, dynamic per token, dynamic 1x128 groups, or none (weight-only); an `ignore` list.
//   fp8 (transformers' FP8 / DeepSeek-V3, Qwen FP8): weight_block_size [128, 128] with
//     weight_scale_inv and dynamic 1x128 input groups, or per-tensor weight_scale with static or
//     dynamic inputs; ignored_layers / modules_to_not_convert.
//   fbgemm_fp8: per-channel weights, dynamic per-token inputs clamped by activation_scale_ub;
//     modules_to_not_convert.
// Anything else is an error that names the field.
#include <regex>

#include "quantization.h"

namespace tk {
namespace model_detail {
namespace {

using json_fields::json;

// Reads a list of strings (absent or null: empty).
Status read_names(const json& obj, const char* key, const std::string& where, std::vector<std::string>& out) {
  const json* v = json_fields::find(obj, key);
  if (v == nullptr) return Status::ok_status();
  if (!v->is_array()) return json_fields::field_error(where, key, "must be a list of module names", *v);
  for (const json& e : *v) {
    if (!e.is_string()) return json_fields::field_error(where, key, "must be a list of module names", *v);
    out.push_back(e.get<std::string>());
  }
  return Status::ok_status();
}

// One 8-bit float quantization args object (weights or input_activations) of compressed-tensors.
struct CtArgs {
  std::string strategy;
  bool dynamic = false;
  int64_t group_size = 0;
  std::vector<int64_t> block_structure;
};

Status read_ct_args(const json& a, const std::string& where, CtArgs& out) {
  if (!a.is_object()) return json_fields::field_error(where, "", "must be an object", a);
  int64_t bits = 8;
  std::string type = "float", actorder;
  bool symmetric = true;
  TK_RETURN_IF_ERROR(json_fields::read_int(a, "num_bits", where, &bits, 1, 64));
  TK_RETURN_IF_ERROR(json_fields::read_string(a, "type", where, &type));
  TK_RETURN_IF_ERROR(json_fields::read_bool(a, "symmetric", where, &symmetric));
  TK_RETURN_IF_ERROR(json_fields::read_string(a, "strategy", where, &out.strategy));
  TK_RETURN_IF_ERROR(json_fields::read_string(a, "actorder", where, &actorder));
  if (bits != 8 || type != "float")
    return unsupported(where + ": num_bits " + std::to_string(bits) + " type '" + type +
                       "': only 8-bit float (FP8 e4m3) quantization is supported");
  if (!symmetric) return unsupported(where + ".symmetric: asymmetric FP8 quantization is not supported");
  if (!actorder.empty()) return unsupported(where + ".actorder '" + actorder + "' is not supported");
  if (const json* d = json_fields::find(a, "dynamic")) {
    if (d->is_boolean()) out.dynamic = d->get<bool>();
    else return unsupported(where + ".dynamic " + json_fields::brief(*d) + " is not supported (true or false)");
  }
  TK_RETURN_IF_ERROR(json_fields::read_int(a, "group_size", where, &out.group_size, 1, 1 << 30));
  if (const json* b = json_fields::find(a, "block_structure")) {
    if (!b->is_array()) return json_fields::field_error(where, "block_structure", "must be [rows, cols]", *b);
    for (const json& e : *b) {
      std::optional<int64_t> n = json_fields::as_int64(e);
      if (!n) return json_fields::field_error(where, "block_structure", "must be [rows, cols]", *b);
      out.block_structure.push_back(*n);
    }
  }
  return Status::ok_status();
}

Status read_ct_weights(const CtArgs& w, const std::string& where, Fp8Scheme& s) {
  if (w.dynamic) return unsupported(where + ".dynamic: dynamic weight quantization is not supported");
  if (w.strategy == "tensor") {
    s.weight = WeightScale::kTensor;
  } else if (w.strategy == "channel") {
    s.weight = WeightScale::kChannel;
  } else if (w.strategy == "block") {
    if (w.block_structure != std::vector<int64_t>{kFp8BlockSize, kFp8BlockSize})
      return unsupported(where + ".block_structure: only [128, 128] blocks are supported");
    s.weight = WeightScale::kBlock;
  } else {
    return unsupported(where + ".strategy '" + w.strategy + "' is not supported (tensor, channel or block)");
  }
  return Status::ok_status();
}

Status read_ct_inputs(const CtArgs& a, const std::string& where, Fp8Scheme& s) {
  if (a.strategy == "tensor" && !a.dynamic) {
    s.input = InputQuant::kStaticTensor;
  } else if (a.strategy == "token" && a.dynamic) {
    s.input = InputQuant::kDynamicToken;
  } else if (a.strategy == "group" && a.dynamic) {
    if (a.group_size != kFp8BlockSize) return unsupported(where + ".group_size: only groups of 128 are supported");
    s.input = InputQuant::kDynamicGroup;
  } else {
    return unsupported(where + ": strategy '" + a.strategy + "' with dynamic " + (a.dynamic ? "true" : "false") +
                       " is not supported (static tensor, dynamic token, dynamic group)");
  }
  return Status::ok_status();
}

Status read_compressed_tensors(const json& q, const std::string& where, QuantizationConfig& out) {
  std::string format;
  TK_RETURN_IF_ERROR(json_fields::read_string(q, "format", where, &format));
  if (format != "float-quantized" && format != "naive-quantized")
    return unsupported(where + ".format '" + format + "' is not supported (float-quantized or naive-quantized)");
  const json* groups = json_fields::find(q, "config_groups");
  if (groups == nullptr || !groups->is_object() || groups->size() != 1)
    return unsupported(where + ".config_groups: exactly one config group is supported");
  const std::string gwhere = where + ".config_groups." + groups->begin().key();
  const json& g = groups->begin().value();
  if (!g.is_object()) return json_fields::field_error(gwhere, "", "must be an object", g);
  std::vector<std::string> targets;
  TK_RETURN_IF_ERROR(read_names(g, "targets", gwhere, targets));
  if (targets != std::vector<std::string>{"Linear"})
    return unsupported(gwhere + ".targets: only [\"Linear\"] is supported");
  const json* w = json_fields::find(g, "weights");
  if (w == nullptr) return unsupported(gwhere + ".weights: missing (a group must quantize its weights)");
  CtArgs wa;
  TK_RETURN_IF_ERROR(read_ct_args(*w, gwhere + ".weights", wa));
  TK_RETURN_IF_ERROR(read_ct_weights(wa, gwhere + ".weights", out.scheme));
  if (const json* a = json_fields::find(g, "input_activations")) {
    CtArgs ia;
    TK_RETURN_IF_ERROR(read_ct_args(*a, gwhere + ".input_activations", ia));
    TK_RETURN_IF_ERROR(read_ct_inputs(ia, gwhere + ".input_activations", out.scheme));
  }
  if (json_fields::find(g, "output_activations") != nullptr)
    return unsupported(gwhere + ".output_activations: output quantization is not supported");
  // kv_cache_scheme: its k_scale / v_scale tensors are read with the weights and used by
  // --kv-cache-dtype fp8 (as vLLM, the cache dtype is the flag's, not the checkpoint's).
  TK_RETURN_IF_ERROR(read_names(q, "ignore", where, out.ignore));
  for (const std::string& entry : out.ignore) {
    if (entry.rfind("re:", 0) != 0) continue;
    try {
      std::regex check(entry.substr(3));
    } catch (const std::regex_error& e) {
      return invalid_argument(where + ".ignore: '" + entry + "' is not a regular expression: " + e.what());
    }
  }
  return Status::ok_status();
}

Status read_fp8(const json& q, const std::string& where, QuantizationConfig& out) {
  std::string activation = "dynamic";
  TK_RETURN_IF_ERROR(json_fields::read_string(q, "activation_scheme", where, &activation));
  if (activation != "dynamic" && activation != "static")
    return unsupported(where + ".activation_scheme '" + activation + "' is not supported (static or dynamic)");
  if (const json* b = json_fields::find(q, "weight_block_size")) {
    if (!(*b == json::array({kFp8BlockSize, kFp8BlockSize})))
      return unsupported(where + ".weight_block_size " + json_fields::brief(*b) + ": only [128, 128] is supported");
    if (activation != "dynamic")
      return unsupported(where + ".activation_scheme 'static' with weight_block_size: block checkpoints quantize "
                         "inputs dynamically");
    out.scheme = {WeightScale::kBlock, InputQuant::kDynamicGroup, 0.f};
    out.weight_scale_name = "weight_scale_inv";
  } else {
    // NOTE: dynamic inputs of a per-tensor checkpoint are quantized per token (vLLM: per tensor):
    // finer, never coarser.
    out.scheme = {WeightScale::kTensor, activation == "static" ? InputQuant::kStaticTensor : InputQuant::kDynamicToken,
                  0.f};
  }
  TK_RETURN_IF_ERROR(read_names(q, "ignored_layers", where, out.ignore));
  return read_names(q, "modules_to_not_convert", where, out.ignore);
}

Status read_fbgemm(const json& q, const std::string& where, QuantizationConfig& out) {
  double ub = 0;
  TK_RETURN_IF_ERROR(json_fields::read_double(q, "activation_scale_ub", where, &ub));
  if (ub < 0) return json_fields::field_error(where, "activation_scale_ub", "must be positive", q["activation_scale_ub"]);
  out.scheme = {WeightScale::kChannel, InputQuant::kDynamicToken, static_cast<float>(ub)};
  return read_names(q, "modules_to_not_convert", where, out.ignore);
}

}  // namespace

Status parse_quantization_config(const json& j, const std::string& source, QuantizationConfig& out) {
  const char* key = json_fields::find(j, "quantization_config") != nullptr ? "quantization_config"
                    : json_fields::find(j, "compression_config") != nullptr ? "compression_config"
                                                                             : nullptr;
  if (key == nullptr) return Status::ok_status();
  const json& q = j[key];
  const std::string where = source + ": " + key;
  if (!q.is_object()) return json_fields::field_error(source, key, "must be an object", q);
  std::string method;
  TK_RETURN_IF_ERROR(json_fields::read_string(q, "quant_method", where, &method));
  out.key = key;
  if (method == "compressed-tensors") {
    out.method = QuantizationConfig::Method::kCompressedTensors;
    return read_compressed_tensors(q, where, out);
  }
  if (method == "fp8") {
    out.method = QuantizationConfig::Method::kFp8;
    return read_fp8(q, where, out);
  }
  if (method == "fbgemm_fp8") {
    out.method = QuantizationConfig::Method::kFbgemmFp8;
    return read_fbgemm(q, where, out);
  }
  return unsupported(where + ".quant_method '" + method +
                     "' is not supported (compressed-tensors, fp8 or fbgemm_fp8; FP8 e4m3 only)");
}

}  // namespace model_detail

bool QuantizationConfig::quantizes(const std::string& module) const {
  if (method == Method::kNone) return false;
  for (const std::string& entry : ignore) {
    if (method == Method::kCompressedTensors) {
      if (entry.rfind("re:", 0) == 0) {
        try {  // checked when the config was read

          if (std::regex_match(module, std::regex(entry.substr(3)))) return false;
        } catch (const std::regex_error&) {
        }
      } else if (entry == module) {
        return false;
      }
    } else if (module.find(entry) != std::string::npos) {
      return false;
    }
  }
  return true;
}

}  // namespace tk
