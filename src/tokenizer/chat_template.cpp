// Built-in chat templates for the families the engine serves (Llama 3, ChatML/Qwen, Mistral
// [INST]). The family is recognised from the tokenizer's chat_template text, or from its special
// tokens when there is no template. NOTE: this is not a Jinja engine; it reproduces what the stock
// templates of these families render for plain {role, content} messages.
#include "tokenizer/tokenizer.h"

#include "unicode.h"

namespace tk {
namespace {

enum class ChatFamily { kLlama3, kChatMl, kMistral };

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

Result<ChatFamily> detect_family(const Tokenizer& tok) {
  if (auto tmpl = tok.chat_template()) {
    if (contains(*tmpl, "<|start_header_id|>")) return ChatFamily::kLlama3;
    if (contains(*tmpl, "<|im_start|>")) return ChatFamily::kChatMl;
    if (contains(*tmpl, "[INST]") && !contains(*tmpl, "<<SYS>>")) return ChatFamily::kMistral;
    return unsupported("chat template is not supported (recognised families: Llama 3, ChatML, Mistral [INST])");
  }
  if (tok.token_to_id("<|start_header_id|>")) return ChatFamily::kLlama3;
  if (tok.token_to_id("<|im_start|>")) return ChatFamily::kChatMl;
  if (tok.token_to_id("[INST]")) return ChatFamily::kMistral;
  return unsupported("tokenizer has no chat template and no special tokens of a known chat format");
}

// Jinja's |trim (Python str.strip()).
std::string trim(std::string_view s) {
  size_t begin = 0, end = s.size();
  while (begin < end) {
    size_t next = begin;
    if (!tokenizer_detail::is_rust_whitespace(tokenizer_detail::next_code_point(s, next))) break;
    begin = next;
  }
  while (end > begin) {
    size_t start = 0;
    if (!tokenizer_detail::is_rust_whitespace(tokenizer_detail::last_code_point(s.substr(0, end), &start))) break;
    end = start;
  }
  return std::string(s.substr(begin, end - begin));
}

std::string render_llama3(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out = tok.bos_token().value_or("<|begin_of_text|>");
  for (const ChatMessage& m : messages) {
    out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) + "<|eot_id|>";
  }
  if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string render_chatml(const Tokenizer& tok, const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
  std::string out;
  // Qwen's templates add a default system prompt when the conversation has none.
  const std::string tmpl = tok.chat_template().value_or("");
  const bool has_system = !messages.empty() && messages.front().role == "system";
  if (!has_system) {
    if (contains(tmpl, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")) {
      out += "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n";
    } else if (contains(tmpl, "You are a helpful assistant.")) {
      out += "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
    }
  }
  for (const ChatMessage& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
  if (add_generation_prompt) out += "<|im_start|>assistant\n";
  return out;
}

// Mistral: user and assistant turns alternate; a leading system message is folded into the first
// user turn. The generation prompt is implicit (the text ends after [/INST]).
Result<std::string> render_mistral(const Tokenizer& tok, const std::vector<ChatMessage>& messages) {
  std::string out = tok.bos_token().value_or("<s>");
  const std::string eos = tok.eos_token().value_or("</s>");
  const std::string tmpl = tok.chat_template().value_or("");
  // v1 templates write '[INST] ' + content + ' [/INST]'; v3 ones drop the space before [/INST].
  const bool space_before_close = tmpl.empty() || contains(tmpl, " [/INST]");
  size_t first = 0;
  std::string system;
  if (!messages.empty() && messages[0].role == "system") {
    system = messages[0].content;
    first = 1;
  }
  for (size_t k = first; k < messages.size(); ++k) {
    const ChatMessage& m = messages[k];
    const bool expect_user = (k - first) % 2 == 0;
    if ((m.role == "user") != expect_user || (m.role != "user" && m.role != "assistant")) {
      return invalid_argument("Mistral chat template: roles must alternate user/assistant (got '" + m.role + "')");
    }
    if (m.role == "user") {
      const std::string content = (k == first && !system.empty()) ? system + "\n\n" + m.content : m.content;
      out += "[INST] " + content + (space_before_close ? " [/INST]" : "[/INST]");
    } else {
      out += (space_before_close ? "" : " ") + m.content + eos;
    }
  }
  return out;
}

}  // namespace

Result<std::string> apply_chat_template(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt) {
  TK_ASSIGN_OR_RETURN(ChatFamily family, detect_family(tok));
  switch (family) {
    case ChatFamily::kLlama3:
      return render_llama3(tok, messages, add_generation_prompt);
    case ChatFamily::kChatMl:
      return render_chatml(tok, messages, add_generation_prompt);
    case ChatFamily::kMistral:
      return render_mistral(tok, messages);
  }
  return internal_error("unreachable chat family");
}

}  // namespace tk
