// tk::Tokenizer: reads tokenizer.json into the pipeline stages and runs them in HF's order:
// added tokens -> normalizer -> pre-tokenizer -> BPE -> post-processor; decode runs the decoder.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <filesystem>

#include "tokenizer_impl.h"
#include "unicode.h"

namespace tk {
namespace tokenizer_detail {

bool json_bool(const Json& j, const char* key, bool fallback) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_boolean()) return fallback;
  return j[key].get<bool>();
}

std::string json_string(const Json& j, const char* key, const std::string& fallback) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_string()) return fallback;
  return j[key].get<std::string>();
}

std::string json_type(const Json& j) { return json_string(j, "type", "<missing type>"); }

namespace {

Result<std::vector<AddedToken>> parse_added_tokens(const Json& j) {
  std::vector<AddedToken> tokens;
  if (!j.contains("added_tokens") || j["added_tokens"].is_null()) return tokens;
  if (!j["added_tokens"].is_array()) return corrupt("'added_tokens' must be a list");
  for (const Json& t : j["added_tokens"]) {
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id") ||
        !t["id"].is_number_integer()) {
      return corrupt("an added token needs a string 'content' and an integer 'id'");
    }
    AddedToken token;
    token.content = t["content"].get<std::string>();
    token.id = t["id"].get<int32_t>();
    token.special = json_bool(t, "special", false);
    token.lstrip = json_bool(t, "lstrip", false);
    token.rstrip = json_bool(t, "rstrip", false);
    token.single_word = json_bool(t, "single_word", false);
    token.normalized = json_bool(t, "normalized", !token.special);
    if (token.id < 0) return corrupt("added token '" + token.content + "' has a negative id");
    tokens.push_back(std::move(token));
  }
  return tokens;
}

// Builds one optional stage: null or missing JSON means "no stage".
template <typename T, typename Make>
Status make_stage(const Json& j, const char* key, std::unique_ptr<T>& stage, Make make) {
  if (!j.contains(key) || j[key].is_null()) return Status::ok_status();
  auto made = make(j[key]);
  if (!made.ok()) return made.status().with_context(key);
  stage = std::move(made).value();
  return Status::ok_status();
}

Result<std::unique_ptr<TokenizerImpl>> build_impl(const Json& j) {
  if (!j.is_object()) return corrupt("not a JSON object");
  if (!j.contains("model") || !j["model"].is_object()) return corrupt("no 'model' object");
  const Json& model = j["model"];
  const std::string type = json_string(model, "type", model.contains("merges") ? "BPE" : "<missing type>");
  if (type != "BPE") return unsupported("model type '" + type + "' is not supported (only BPE)");
  auto impl = std::make_unique<TokenizerImpl>();
  TK_ASSIGN_OR_RETURN(impl->model, make_bpe_model(model));
  TK_RETURN_IF_ERROR(make_stage(j, "normalizer", impl->normalizer, make_normalizer));
  TK_RETURN_IF_ERROR(make_stage(j, "pre_tokenizer", impl->pre_tokenizer, make_pre_tokenizer));
  TK_RETURN_IF_ERROR(make_stage(j, "decoder", impl->decoder, make_decoder));
  TK_RETURN_IF_ERROR(make_stage(j, "post_processor", impl->post_processor, make_post_processor));
  TK_ASSIGN_OR_RETURN(auto added, parse_added_tokens(j));
  impl->vocab_size = impl->model->vocab_size();
  for (const AddedToken& t : added) impl->vocab_size = std::max(impl->vocab_size, t.id + 1);
  TK_RETURN_IF_ERROR(impl->added.build(std::move(added), impl->normalizer.get()));
  return impl;
}

}  // namespace

Result<std::unique_ptr<TokenizerImpl>> parse_tokenizer_json(const std::string& text) {
  try {
    Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return corrupt("malformed JSON");
    return build_impl(j);
  } catch (const std::exception& e) {  // nlohmann type errors on unexpected shapes
    return corrupt(std::string("unexpected JSON content: ") + e.what());
  }
}

}  // namespace tokenizer_detail

using tokenizer_detail::TokenizerImpl;

Tokenizer::Tokenizer(std::unique_ptr<TokenizerImpl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

namespace {

// chat_template.jinja replaces the config's "default" template (transformers' newer layout).
void set_template(tokenizer_detail::TokenizerConfig& config, const std::string& name, std::string text) {
  for (auto& [existing, body] : config.chat_templates) {
    if (existing == name) {
      body = std::move(text);
      return;
    }
  }
  config.chat_templates.emplace_back(name, std::move(text));
}

// additional_chat_templates/NAME.jinja: the named templates transformers saves beside it.
Status load_additional_templates(const std::string& dir, tokenizer_detail::TokenizerConfig& config) {
  const std::string folder = join_path(dir, "additional_chat_templates");
  if (!is_directory(folder)) return Status::ok_status();
  std::error_code ec;
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.size() > 6 && name.compare(name.size() - 6, 6, ".jinja") == 0) files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) {
    TK_ASSIGN_OR_RETURN(std::string text, read_text_file(join_path(folder, file)));
    set_template(config, file.substr(0, file.size() - 6), std::move(text));
  }
  return Status::ok_status();
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::from_json(const std::string& tokenizer_json,
                                                        const std::string& tokenizer_config_json,
                                                        const std::string& chat_template_jinja) {
  auto impl = tokenizer_detail::parse_tokenizer_json(tokenizer_json);
  if (!impl.ok()) return impl.status().with_context("tokenizer.json");
  try {
    auto config = tokenizer_detail::parse_tokenizer_config(tokenizer_config_json);
    if (!config.ok()) return config.status().with_context("tokenizer_config.json");
    impl.value()->config = std::move(config).value();
    if (!chat_template_jinja.empty()) set_template(impl.value()->config, "default", chat_template_jinja);
  } catch (const std::exception& e) {
    return corrupt(std::string("tokenizer_config.json: unexpected JSON content: ") + e.what());
  }
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::move(impl).value()));
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::load(const std::string& path) {
  // A path to the tokenizer.json file itself is accepted too; the config is looked up beside it.
  const bool is_file = !is_directory(path) && file_exists(path);
  const std::string dir = is_file ? (path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'))) : path;
  const std::string json_path = is_file ? path : join_path(dir, "tokenizer.json");
  if (!file_exists(json_path)) return not_found(json_path + ": file not found");
  TK_ASSIGN_OR_RETURN(std::string json_text, read_text_file(json_path));
  std::string config_text;
  const std::string config_path = join_path(dir, "tokenizer_config.json");
  if (file_exists(config_path)) {
    TK_ASSIGN_OR_RETURN(config_text, read_text_file(config_path));
  }
  std::string jinja_text;
  const std::string jinja_path = join_path(dir, "chat_template.jinja");
  if (file_exists(jinja_path)) {
    TK_ASSIGN_OR_RETURN(jinja_text, read_text_file(jinja_path));
  }
  auto tok = from_json(json_text, config_text, jinja_text);
  if (!tok.ok()) return tok.status().with_context(dir);  // "dir: tokenizer.json: why"
  Status extra = load_additional_templates(dir, tok.value()->impl_->config);
  if (!extra.ok()) return extra.with_context(dir);
  return tok;
}

Result<std::vector<int32_t>> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  if (!tokenizer_detail::is_valid_utf8(text)) return invalid_argument("encode: input is not valid UTF-8");
  tokenizer_detail::SplitList splits;
  splits.buffer.reserve(text.size() + 16);
  TK_RETURN_IF_ERROR(impl_->added.extract_and_normalize(text, impl_->normalizer.get(), splits));
  if (impl_->pre_tokenizer) TK_RETURN_IF_ERROR(impl_->pre_tokenizer->pre_tokenize(splits));
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  for (const tokenizer_detail::SplitRef& r : splits.refs) {
    if (r.token_id >= 0) ids.push_back(r.token_id);
    else impl_->model->tokenize(splits.text(r), ids);
  }
  if (add_special_tokens && impl_->post_processor) impl_->post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return decode(ids.data(), ids.size(), skip_special_tokens);
}

std::string Tokenizer::decode(const int32_t* ids, size_t count, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(count);
  for (size_t k = 0; k < count; ++k) {
    if (const auto* added = impl_->added.by_id(ids[k])) {
      if (!(skip_special_tokens && added->special)) tokens.push_back(added->content);
    } else if (const std::string* t = impl_->model->id_to_token(ids[k])) {
      tokens.push_back(*t);
    }
  }
  if (!impl_->decoder) {
    std::string out;
    for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
    return out;
  }
  impl_->decoder->decode_chain(tokens);
  std::string out;
  for (const std::string& t : tokens) out += t;
  return out;
}

int32_t Tokenizer::vocab_size() const { return impl_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (auto id = impl_->added.id_of(token)) return id;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(int32_t id) const {
  if (const auto* added = impl_->added.by_id(id)) return added->content;
  if (const std::string* t = impl_->model->id_to_token(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(int32_t id) const {
  const auto* added = impl_->added.by_id(id);
  return added && added->special;
}

std::optional<std::string> Tokenizer::bos_token() const { return impl_->config.bos_token; }
std::optional<std::string> Tokenizer::eos_token() const { return impl_->config.eos_token; }
std::optional<std::string> Tokenizer::chat_template(std::string_view name) const {
  for (const auto& [n, text] : impl_->config.chat_templates)
    if (n == name) return text;
  return std::nullopt;
}

std::vector<std::string> Tokenizer::chat_template_names() const {
  std::vector<std::string> names;
  for (const auto& entry : impl_->config.chat_templates) names.push_back(entry.first);
  return names;
}

Result<std::shared_ptr<const jinja::Template>> Tokenizer::parsed_chat_template(std::string_view name) const {
  std::lock_guard<std::mutex> lock(impl_->template_mutex);
  auto cached = impl_->parsed_templates.find(std::string(name));
  if (cached != impl_->parsed_templates.end()) return cached->second;
  std::optional<std::string> text = chat_template(name);
  if (!text) return not_found("the tokenizer has no chat template named '" + std::string(name) + "'");
  auto parsed = jinja::Template::parse(*text);
  if (!parsed.ok()) return parsed.status().with_context("chat template '" + std::string(name) + "'");
  auto shared = std::make_shared<const jinja::Template>(std::move(parsed).value());
  impl_->parsed_templates.emplace(std::string(name), shared);
  return shared;
}
bool Tokenizer::add_bos_token() const { return impl_->config.add_bos_token; }
bool Tokenizer::add_eos_token() const { return impl_->config.add_eos_token; }

}  // namespace tk
