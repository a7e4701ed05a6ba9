// Tool calling and reasoning output on the chat endpoint (chat_tools.h).
#include "chat_tools.h"

#include "generation.h"

namespace tk::server {
namespace {

// The OpenAI shape of a call's piece: the first carries id, type and name.
Json tool_call_delta_json(const tools::ToolCallDelta& d) {
  Json j = Json::object();
  j["index"] = d.index;
  Json function = Json::object();
  if (!d.name.empty()) {
    j["id"] = d.id, j["type"] = "function";
    function["name"] = d.name;
  }
  function["arguments"] = d.arguments;
  j["function"] = function;
  return j;
}

Json tool_call_json(const tools::ToolCall& c) {
  Json j = Json::object();
  j["id"] = c.id, j["type"] = "function";
  Json function = Json::object();
  function["name"] = c.name, function["arguments"] = c.arguments;
  j["function"] = function;
  return j;
}

Json text_or_null(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

tools::Accumulated parse_all(tools::TextParser& p, const std::string& text, bool* malformed) {
  tools::OutputDelta d;
  p.feed(text, d);
  p.finish(d);
  tools::Accumulated a;
  a.add(d);
  if (malformed) *malformed = p.malformed();
  return a;
}

}  // namespace

bool ChatTools::forced() const {
  return choice.kind == tools::ToolChoice::Kind::kRequired || choice.kind == tools::ToolChoice::Kind::kNamed;
}

std::optional<ApiError> read_chat_tools(const App& app, const Json& body, ChatTools& out) {
  out = {};
  const bool tools_given = body.contains("tools") && !body["tools"].is_null();
  if (tools_given) {
    if (std::string e = tools::parse_tools(body["tools"], out.tools); !e.empty()) return bad_request(e, "tools");
  }
  const Json* choice = body.contains("tool_choice") ? &body["tool_choice"] : nullptr;
  if (std::string e = tools::parse_tool_choice(choice, tools_given, out.tools, out.choice); !e.empty())
    return bad_request(e, "tool_choice");
  if (body.contains("parallel_tool_calls") && !body["parallel_tool_calls"].is_null()) {
    if (!body["parallel_tool_calls"].is_boolean())
      return bad_request("parallel_tool_calls: Input should be a valid boolean", "parallel_tool_calls");
    out.parallel = body["parallel_tool_calls"].get<bool>();
  }
  const ServerConfig& c = app.config;
  if (out.choice.kind == tools::ToolChoice::Kind::kAuto) {
    if (!c.enable_auto_tool_choice || c.tool_call_parser.empty())
      return bad_request("\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set",
                         "tool_choice");
    out.parser = tools::tool_parser_kind(c.tool_call_parser);
  }
  out.mistral_ids = c.tool_call_parser == "mistral";
  // NOTE: a forced tool choice's grammar holds from the first token, so such an output has no
  // reasoning to split off (vLLM starts the grammar after </think>; tokamak does not yet).
  if (!c.reasoning_parser.empty() && !out.forced()) {
    out.reasoning = tools::reasoning_kind(c.reasoning_parser);
    // Qwen3's switch: with enable_thinking false the template closes the think block itself and
    // the output is all content.
    const Json* kw = body.contains("chat_template_kwargs") ? &body["chat_template_kwargs"] : nullptr;
    if (out.reasoning == tools::ReasoningKind::kQwen3 && kw && kw->is_object() && kw->contains("enable_thinking") &&
        (*kw)["enable_thinking"] == false)
      out.reasoning.reset();
  }
  return std::nullopt;
}

std::optional<ApiError> constrain_tool_choice(App& app, const ChatTools& t, SamplingParams& p) {
  if (!t.forced()) return std::nullopt;
  if (p.grammar)
    return bad_request("tool_choice \"required\" or a named function cannot be combined with response_format or "
                       "structured outputs", "tool_choice");
  const Json schema = tools::forced_call_schema(t.choice, t.tools, t.parallel);
  const std::string text = schema.dump(-1, ' ', false, Json::error_handler_t::replace);
  // Through the cache: the same tools and choice (an agent's every turn) compile once, and their
  // token tables fill in the background.
  grammar::GrammarSpec spec;
  spec.kind = grammar::GrammarSpec::Kind::kJsonSchema;
  spec.text = text;
  auto compiled = app.compile_grammar(spec);
  if (!compiled.ok()) return bad_request("tools: " + compiled.status().message(), "tools");
  p.grammar = std::move(*compiled);
  return std::nullopt;
}

ChatOutput::ChatOutput(const ChatTools& tools, uint64_t seed) : t_(tools), seed_(seed), parser_(make(true)) {}

std::unique_ptr<tools::TextParser> ChatOutput::make(bool with_tools) const {
  std::unique_ptr<tools::TextParser> calls;
  if (with_tools) {
    if (t_.choice.kind == tools::ToolChoice::Kind::kRequired) calls = tools::make_required_parser(seed_, t_.mistral_ids);
    else if (t_.choice.kind == tools::ToolChoice::Kind::kNamed) calls = tools::make_named_parser(t_.choice.name, seed_, t_.mistral_ids);
    else if (t_.parser) calls = tools::make_tool_parser(*t_.parser, t_.tools, seed_);
  }
  if (t_.reasoning) return tools::make_reasoning_parser(*t_.reasoning, t_.prompt_opened_think, std::move(calls));
  return calls;
}

Json ChatOutput::stream(std::string_view text, bool finished) {
  tools::OutputDelta d;
  if (parser_) {
    parser_->feed(text, d);
    if (finished) parser_->finish(d);
  } else {
    d.content = text;
  }
  Json delta = Json::object();
  if (!d.reasoning.empty()) delta["reasoning_content"] = d.reasoning;
  if (!d.content.empty()) delta["content"] = d.content;
  Json calls = Json::array();
  for (const tools::ToolCallDelta& c : d.tool_calls)
    if (t_.parallel || c.index == 0) calls.push_back(tool_call_delta_json(c));  // vLLM: the first call only
  if (!calls.empty()) {
    delta["tool_calls"] = calls;
    called_ = true;
  }
  return delta;
}

void ChatOutput::whole(const std::string& text, Json& message) {
  std::unique_ptr<tools::TextParser> p = make(true);
  if (!p) return;
  bool malformed = false;
  tools::Accumulated a = parse_all(*p, text, &malformed);
  if (malformed) {
    // As vLLM: calls that do not parse are no calls; the text (less any reasoning) is content.
    std::unique_ptr<tools::TextParser> plain = make(false);
    a = plain ? parse_all(*plain, text, nullptr) : tools::Accumulated{"", text, {}};
  }
  if (!t_.parallel && a.tool_calls.size() > 1) a.tool_calls.resize(1);  // vLLM: the first call only
  message["content"] = text_or_null(a.content);
  Json calls = Json::array();
  for (const tools::ToolCall& c : a.tool_calls) calls.push_back(tool_call_json(c));
  called_ = !a.tool_calls.empty();
  message["tool_calls"] = calls;
  if (t_.reasoning) message["reasoning_content"] = text_or_null(a.reasoning);
}

Json ChatOutput::finish_reason(FinishReason f) const {
  const bool auto_or_required = t_.choice.kind == tools::ToolChoice::Kind::kAuto ||
                                t_.choice.kind == tools::ToolChoice::Kind::kRequired;
  if (called_ && auto_or_required && f == FinishReason::kStop) return "tool_calls";
  return finish_reason_json(f);
}

}  // namespace tk::server
