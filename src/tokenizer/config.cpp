// tokenizer_config.json: the bos/eos strings, add_bos/add_eos flags and chat templates that
// transformers keeps beside tokenizer.json. Tokens may be plain strings or {"content": ...}.
#include "tokenizer_impl.h"

namespace tk::tokenizer_detail {
namespace {

std::optional<std::string> token_string(const Json& j, const char* key) {
  if (!j.contains(key)) return std::nullopt;
  const Json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return std::nullopt;
}

// A string (the "default" template), or a list of {"name", "template"}: every entry is kept.
std::vector<std::pair<std::string, std::string>> template_list(const Json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!j.contains("chat_template")) return out;
  const Json& v = j["chat_template"];
  if (v.is_string()) out.emplace_back("default", v.get<std::string>());
  if (!v.is_array()) return out;
  for (const Json& entry : v) {
    if (entry.is_object() && entry.contains("name") && entry["name"].is_string() && entry.contains("template") &&
        entry["template"].is_string()) {
      out.emplace_back(entry["name"].get<std::string>(), entry["template"].get<std::string>());
    }
  }
  return out;
}

}  // namespace

Result<TokenizerConfig> parse_tokenizer_config(const std::string& text) {
  TokenizerConfig config;
  if (text.empty()) return config;
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return corrupt("tokenizer_config.json is not a JSON object");
  config.bos_token = token_string(j, "bos_token");
  config.eos_token = token_string(j, "eos_token");
  config.chat_templates = template_list(j);
  config.add_bos_token = json_bool(j, "add_bos_token", false);
  config.add_eos_token = json_bool(j, "add_eos_token", false);
  return config;
}

}  // namespace tk::tokenizer_detail
