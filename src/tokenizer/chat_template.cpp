// Chat templates: the checkpoint's own Jinja template (tokenizer_config.json or
// chat_template.jinja) rendered by tokamak's Jinja engine as transformers' apply_chat_template
// renders it, with the tokenizer's bos/eos strings.
#include <algorithm>

#include "tokenizer/tokenizer.h"

namespace tk {
namespace {

// transformers' get_chat_template: an explicit name, else "tool_use" when tools are given and
// the checkpoint has one, else "default".
Result<std::string> pick_template(const Tokenizer& tok, const jinja::ChatInputs& inputs, const std::string& name) {
  const std::vector<std::string> names = tok.chat_template_names();
  if (names.empty()) {
    return invalid_argument(
        "the tokenizer has no chat template (no chat_template in tokenizer_config.json and no chat_template.jinja); "
        "pass one explicitly");
  }
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  if (!name.empty()) {
    if (has(name)) return name;
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    return not_found("no chat template named '" + name + "' (the tokenizer has: " + known + ")");
  }
  if (!inputs.tools.is_null() && has("tool_use")) return std::string("tool_use");
  if (has("default")) return std::string("default");
  return invalid_argument("the tokenizer has several chat templates and none is named 'default'; choose one by name");
}

}  // namespace

Result<std::string> render_chat_template(const Tokenizer& tok, jinja::ChatInputs inputs, const ChatTemplateOptions& options) {
  if (!inputs.bos_token) inputs.bos_token = tok.bos_token();
  if (!inputs.eos_token) inputs.eos_token = tok.eos_token();
  if (options.template_override) {
    auto out = jinja::render_chat(*options.template_override, inputs, options.render, options.error);
    if (!out.ok()) return out.status().with_context("chat template");
    return out;
  }
  TK_ASSIGN_OR_RETURN(std::string name, pick_template(tok, inputs, options.name));
  auto tmpl = tok.parsed_chat_template(name);
  if (!tmpl.ok()) {
    if (options.error) *options.error = jinja::Error{"TemplateSyntaxError", tmpl.status().message(), 0};
    return tmpl.status();
  }
  auto out = jinja::render_chat(**tmpl, inputs, options.render, options.error);
  if (!out.ok()) return out.status().with_context("chat template '" + name + "'");
  return out;
}

Result<std::string> apply_chat_template(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                                        bool add_generation_prompt, const ChatTemplateOptions& options) {
  jinja::ChatInputs inputs;
  for (const ChatMessage& m : messages) inputs.messages.push_back({{"role", m.role}, {"content", m.content}});
  inputs.add_generation_prompt = add_generation_prompt;
  return render_chat_template(tok, std::move(inputs), options);
}

}  // namespace tk
