// The state behind tk::Tokenizer: the pipeline stages read from tokenizer.json plus the few
// fields of tokenizer_config.json the engine needs. Internal to src/tokenizer.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "added_tokens.h"
#include "pipeline.h"

namespace tk::tokenizer_detail {

// What tokenizer_config.json says (all optional).
struct TokenizerConfig {
  std::optional<std::string> bos_token;
  std::optional<std::string> eos_token;
  std::optional<std::string> chat_template;
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
};

Result<std::unique_ptr<TokenizerImpl>> parse_tokenizer_json(const std::string& text);

}  // namespace tk::tokenizer_detail
