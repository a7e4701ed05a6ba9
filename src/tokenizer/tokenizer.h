// tokamak tokenizer: reads a Hugging Face tokenizer.json (and tokenizer_config.json) and encodes /
// decodes exactly as the `tokenizers` library does, so that prompts and outputs match what users of
// the same checkpoints get elsewhere. Also: a streaming detokenizer and the checkpoint's chat
// templates, rendered by the Jinja engine (src/jinja) exactly as transformers renders them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"
#include "jinja/jinja.h"

namespace tk {

namespace tokenizer_detail {
struct TokenizerImpl;  // the pipeline: added tokens, normalizer, pre-tokenizer, model, decoder, ...
}

class Tokenizer {
 public:
  // dir holds tokenizer.json (and optionally tokenizer_config.json, chat_template.jinja and
  // additional_chat_templates/NAME.jinja); a path to the tokenizer.json file itself works too.
  // Errors name the file.
  static Result<std::unique_ptr<Tokenizer>> load(const std::string& dir);
  // tokenizer_config_json may be empty; chat_template_jinja, when not empty, is the "default"
  // chat template (transformers' chat_template.jinja, which takes precedence over the config's).
  static Result<std::unique_ptr<Tokenizer>> from_json(const std::string& tokenizer_json,
                                                      const std::string& tokenizer_config_json,
                                                      const std::string& chat_template_jinja = "");
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
  // The chat template called `name`: "default" is the checkpoint's main one; some ship more
  // (e.g. "tool_use"). Empty when there is none by that name.
  std::optional<std::string> chat_template(std::string_view name = "default") const;
  std::vector<std::string> chat_template_names() const;
  // The template parsed (once, then cached); a syntax error names the template line.
  Result<std::shared_ptr<const jinja::Template>> parsed_chat_template(std::string_view name = "default") const;
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

// How a conversation is rendered with a chat template.
struct ChatTemplateOptions {
  // Which of the checkpoint's templates: "" = transformers' choice ("tool_use" when tools are
  // given and the checkpoint has it, else "default").
  std::string name;
  // Used instead of the checkpoint's templates when set (the server's --chat-template FILE).
  const jinja::Template* template_override = nullptr;
  jinja::RenderOptions render;    // strftime_now's clock, resource limits
  jinja::Error* error = nullptr;  // receives the details of a template failure (type, message, line)
};

// transformers' apply_chat_template(tokenize=False): messages (ordered JSON, with tool calls and
// content parts), tools, add_generation_prompt, continue_final_message and extra variables
// (kwargs, e.g. enable_thinking). bos_token/eos_token, when unset, are the tokenizer's. A template
// that fails (raise_exception, an undefined value, ...) gives invalid_argument with its message.
Result<std::string> render_chat_template(const Tokenizer& tok, jinja::ChatInputs inputs,
                                         const ChatTemplateOptions& options = {});

struct ChatMessage {
  std::string role;
  std::string content;
};

// Plain {role, content} messages through render_chat_template.
Result<std::string> apply_chat_template(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt, const ChatTemplateOptions& options = {});

}  // namespace tk
