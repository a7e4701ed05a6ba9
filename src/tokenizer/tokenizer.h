// tokamak tokenizer: reads a Hugging Face tokenizer.json (and tokenizer_config.json) and encodes /
// decodes exactly as the `tokenizers` library does, so that prompts and outputs match what users of
// the same checkpoints get elsewhere. Also: a streaming detokenizer and built-in chat templates.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"

namespace tk {

namespace tokenizer_detail {
struct TokenizerImpl;  // the pipeline: added tokens, normalizer, pre-tokenizer, model, decoder, ...
}

class Tokenizer {
 public:
  // dir holds tokenizer.json (and optionally tokenizer_config.json); a path to the tokenizer.json
  // file itself works too. Errors name the file.
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& dir);
  // tokenizer_config_json may be empty.
  static Result<std::unique_ptr<Tokenizer>> from_json(const std::string& tokenizer_json,
                                                      const std::string& tokenizer_config_json);
  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Fails only on input that is not valid UTF-8. Thread-safe.
  Result<std::vector<int32_t>> encode(std::string_view text, bool add_special_tokens) const;
  // skip_special_tokens as in HF decode. Unknown ids are dropped, as HF does.
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;
  std::string decode(const int32_t* ids, size_t count, bool skip_special_tokens) const;

  int32_t vocab_size() const;  // including added tokens (max id + 1)
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;

  // From tokenizer_config.json when present.
  std::optional<std::string> bos_token() const;
  std::optional<std::string> eos_token() const;
  std::optional<std::string> chat_template() const;
  // NOTE: informational only; encode() follows the tokenizer.json post-processor, as the
  // `tokenizers` library does.
  bool add_bos_token() const;
  bool add_eos_token() const;

 private:
  explicit Tokenizer(std::unique_ptr<tokenizer_detail::TokenizerImpl> impl);
  std::unique_ptr<tokenizer_detail::TokenizerImpl> impl_;
};

// Streaming: feed ids one at a time, get back the newly completed text (possibly empty). Never
// returns a partial UTF-8 sequence. Decodes a small window (prefix offset / read offset, as vLLM
// and TGI do) so that each push costs O(window), not O(sequence).
class IncrementalDetokenizer {
 public:
  explicit IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens = true);
  // Optionally prime with the prompt ids so that the first generated token decodes with the
  // correct leading space (Metaspace/SentencePiece). Emits nothing for the prompt.
  void prime(const std::vector<int32_t>& prompt_ids);
  std::string push(int32_t id);
  // Whatever text remains at end of stream (may include U+FFFD for an invalid tail, as HF does).
  std::string flush();

 private:
  const Tokenizer& tok_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // start of the decode window
  size_t read_offset_ = 0;    // ids before this have been emitted
};

struct ChatMessage {
  std::string role;
  std::string content;
};

// Renders messages with a built-in template chosen from the tokenizer's chat_template string (or,
// without one, its special tokens): Llama 3, ChatML (Qwen) or Mistral [INST]. Anything else is an
// unsupported-template error; a full Jinja engine is out of scope.
Result<std::string> apply_chat_template(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt);

}  // namespace tk
