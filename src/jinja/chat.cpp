// transformers' apply_chat_template(tokenize=False) around Template::render: the message
// normalisation it does before rendering, and continue_final_message (render with a tag after
// the last message's text, cut the output there).
#include "jinja/jinja.h"
#include "pystr.h"

namespace tk::jinja {

namespace {

constexpr const char* kContinueTag = "CONTINUE_FINAL_MESSAGE_TAG ";
constexpr const char* kContinueTagStripped = "CONTINUE_FINAL_MESSAGE_TAG";

Json normalize_message(const Json& message) {
  if (!message.is_object()) return message;
  const Json* reasoning = nullptr;
  for (const char* key : {"reasoning_content", "thinking", "reasoning"}) {
    auto it = message.find(key);
    if (it != message.end() && !it->is_null()) {
      reasoning = &*it;
      break;
    }
  }
  Json out = Json::object();
  if (reasoning) out["thinking"] = *reasoning;
  for (auto it = message.begin(); it != message.end(); ++it) {
    if (it.value().is_null() || (reasoning && it.key() == "thinking")) continue;
    out[it.key()] = it.value();
  }
  if (reasoning && !out.contains("reasoning_content")) out["reasoning_content"] = *reasoning;
  return out;
}

Result<std::string> value_error(const std::string& message, Error* error) {
  Error e{"ValueError", message, 0};
  if (error) *error = e;
  return invalid_argument(e.to_string());
}

// Appends the tag to the last message's text; returns that text as it was.
Result<std::string> tag_final_message(Json& variables, Error* error) {
  Json* messages = variables.contains("messages") ? &variables["messages"] : nullptr;
  if (!messages || !messages->is_array() || messages->empty() || !messages->back().is_object()) {
    return value_error("continue_final_message is set but there is no final message to continue", error);
  }
  Json& last = messages->back();
  auto content = last.find("content");
  if (content != last.end() && content->is_array()) {
    for (auto part = content->rbegin(); part != content->rend(); ++part) {
      if (part->is_object() && part->contains("text") && (*part)["text"].is_string()) {
        std::string text = (*part)["text"].get<std::string>();
        (*part)["text"] = text + kContinueTag;
        return text;
      }
    }
    return value_error("continue_final_message is set but we could not find any text to continue in the final message!", error);
  }
  if (content == last.end() || !content->is_string()) {
    return value_error("continue_final_message is set but the final message has no string content", error);
  }
  std::string text = content->get<std::string>();
  *content = text + kContinueTag;
  return text;
}

}  // namespace

Json chat_variables(const ChatInputs& inputs) {
  Json vars = Json::object();
  Json messages = Json::array();
  if (inputs.messages.is_array()) {
    for (const Json& m : inputs.messages) messages.push_back(normalize_message(m));
  }
  vars["messages"] = std::move(messages);
  vars["tools"] = inputs.tools;
  vars["documents"] = inputs.documents;
  vars["add_generation_prompt"] = inputs.add_generation_prompt;
  if (inputs.bos_token) vars["bos_token"] = *inputs.bos_token;
  if (inputs.eos_token) vars["eos_token"] = *inputs.eos_token;
  if (inputs.kwargs.is_object()) {
    for (auto it = inputs.kwargs.begin(); it != inputs.kwargs.end(); ++it) vars[it.key()] = it.value();
  }
  return vars;
}

Result<std::string> render_chat(const Template& tmpl, const ChatInputs& inputs, const RenderOptions& options, Error* error) {
  if (inputs.continue_final_message && inputs.add_generation_prompt) {
    return value_error(
        "continue_final_message and add_generation_prompt are not compatible. Use continue_final_message when you want "
        "the model to continue the final message, and add_generation_prompt when you want to add a header that will "
        "prompt it to start a new assistant message instead.",
        error);
  }
  return render_chat_variables(tmpl, chat_variables(inputs), inputs.continue_final_message, options, error);
}

Result<std::string> render_chat_variables(const Template& tmpl, const Json& variables, bool continue_final_message,
                                          const RenderOptions& options, Error* error) {
  if (!continue_final_message) return tmpl.render(variables, options, error);
  if (tmpl.source().find("content") == std::string::npos) {
    return value_error("continue_final_message is set but the chat template does not use message content", error);
  }
  Json tagged = variables;
  TK_ASSIGN_OR_RETURN(std::string final_text, tag_final_message(tagged, error));
  TK_ASSIGN_OR_RETURN(std::string rendered, tmpl.render(tagged, options, error));
  const std::string stripped = detail::py_strip(final_text, std::nullopt, true, true);
  const size_t tag_at = rendered.rfind(kContinueTagStripped);
  if (rendered.find(stripped) == std::string::npos || tag_at == std::string::npos) {
    return value_error(
        "continue_final_message is set but the final message does not appear in the chat after applying the chat "
        "template! This can happen if the chat template deletes portions of the final message. Please verify the chat "
        "template and final message in your chat to ensure they are compatible.",
        error);
  }
  if (rendered.compare(tag_at, std::string(kContinueTag).size(), kContinueTag) == 0) return rendered.substr(0, tag_at);
  return detail::py_strip(std::string_view(rendered).substr(0, tag_at), std::nullopt, false, true);
}

}  // namespace tk::jinja
