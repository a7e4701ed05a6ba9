// The state behind tk::Tokenizer: the pipeline stages read from tokenizer.json plus the few
// fields of tokenizer_config.json the engine needs. Internal to src/tokenizer.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "jinja/jinja.h"

#include "added_tokens.h"
#include "pipeline.h"

namespace tk::tokenizer_detail {

// What tokenizer_config.json says (all optional).
struct TokenizerConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  // (name, template) in file order; a plain string is named "default".
  std::vector<std::pair<std::string, std::string>> chat_templates;
  bool add_bos_token = false;
  bool add_eos_token = false;
};

Result<TokenizerConfig> parse_tokenizer_config(const std::string& text);

struct TokenizerImpl {
  AddedVocabulary added;
  std::unique_ptr<Normalizer> normalizer;        // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;   // may be null
  std::unique_ptr<Model> model;
  std::unique_ptr<Decoder> decoder;              // may be null: tokens joined by spaces
  std::unique_ptr<PostProcessor> post_processor; // may be null
  TokenizerConfig config;
  int32_t vocab_size = 0;
  // Chat templates parsed on first use (a broken template must not stop plain generation).
  std::mutex template_mutex;
  std::map<std::string, std::shared_ptr<const jinja::Template>> parsed_templates;
};

Result<std::unique_ptr<TokenizerImpl>> parse_tokenizer_json(const std::string& text);

}  // namespace tk::tokenizer_detail
