// tokamak tools: what the OpenAI API's tool calling and reasoning output need besides the model —
// the tools a request offers (checked as vLLM checks them), the JSON schema that forces a call
// (tool_choice "required" or a named function), and the parsers that turn a model's text, fed as
// it is generated, into OpenAI deltas: reasoning (`<think>...</think>`, vLLM's qwen3 and
// deepseek_r1), and tool calls in each model family's markup (vLLM's llama3_json, hermes, mistral,
// qwen3_coder). Engine independent: text in, deltas out.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tk::tools {

using Json = nlohmann::ordered_json;

// ---- the request side

// tools[i].function of a request.
struct Tool {
  std::string name;
  Json parameters = Json::object();  // a JSON schema ({} when left out)
};

// tools: a list of {"type": "function", "function": {"name", "description", "parameters",
// "strict"}}. Returns an error message (empty: fine) naming what is wrong.
std::string parse_tools(const Json& tools, std::vector<Tool>& out);

// The tool choice after vLLM's rules: left out it is "auto" when tools are given, "none" otherwise;
// "required" with an empty tool list is "none".
struct ToolChoice {
  enum class Kind { kNone, kAuto, kRequired, kNamed } kind = Kind::kNone;
  std::string name;  // kNamed
};
// Error message (empty: fine); `tools_given` says whether the request had a tools list.
std::string parse_tool_choice(const Json* choice, bool tools_given, const std::vector<Tool>& tools, ToolChoice& out);

// The JSON schema an output must follow when the tool choice forces calls (as vLLM builds it):
// required: a list of {"name": one of the tools, "parameters": its schema}, at least one item (at
// most one when parallel calls are off); named: the function's parameters.
Json forced_call_schema(const ToolChoice& choice, const std::vector<Tool>& tools, bool parallel_tool_calls);

// Messages for the chat template, as vLLM hands them over: an assistant's tool_calls[].function
// .arguments, a JSON string on the wire, becomes the object it encodes (templates write it with
// tojson). Error message for malformed tool_calls or tool messages.
std::string prepare_tool_messages(Json& messages);

// ---- the output side

// One piece of a tool call as the OpenAI stream sends it: the first piece of a call carries its
// id and name (arguments ""), later pieces only argument text.
struct ToolCallDelta {
  int index = 0;
  std::string id, name;  // the first piece only
  std::string arguments;
};

// What a piece of generated text became.
struct OutputDelta {
  std::string reasoning, content;
  std::vector<ToolCallDelta> tool_calls;
  bool empty() const { return reasoning.empty() && content.empty() && tool_calls.empty(); }
};

struct ToolCall {
  std::string id, name, arguments;  // arguments: JSON text
};

// Adds deltas up as the openai client's stream helpers do.
struct Accumulated {
  std::string reasoning, content;
  std::vector<ToolCall> tool_calls;
  void add(const OutputDelta& d);
};

enum class ToolParserKind { kLlama3Json, kHermes, kMistral, kQwen3Coder };
std::optional<ToolParserKind> tool_parser_kind(std::string_view name);  // vLLM's names
enum class ReasoningKind { kQwen3, kDeepSeekR1 };
std::optional<ReasoningKind> reasoning_kind(std::string_view name);

// Call ids: "call_" and 24 characters, or Mistral's 9 (its templates check the length).
class CallIds {
 public:
  explicit CallIds(uint64_t seed, bool mistral = false) : state_(seed), mistral_(mistral) {}
  std::string next();

 private:
  uint64_t state_;
  bool mistral_;
};

// Turns text, fed in pieces as generated, into deltas. feed and finish append to `out`; the
// reassembled deltas do not depend on how the text was cut.
class TextParser {
 public:
  virtual ~TextParser() = default;
  virtual void feed(std::string_view text, OutputDelta& out) = 0;
  virtual void finish(OutputDelta& out) = 0;  // the end of the output: flushes what was held back
  // A call broke after its first delta went out; a whole (non-streamed) answer then gives the
  // text as content, as vLLM does when a call does not parse.
  virtual bool malformed() const { return false; }
};

// Text outside calls is content; a call's markup never reaches content. Each parser keeps back
// only text that may still be the start of a marker.
std::unique_ptr<TextParser> make_tool_parser(ToolParserKind kind, std::vector<Tool> tools, uint64_t seed);
// tool_choice "required" (the output is the forced_call_schema list) and a named function (the
// output is its arguments).
std::unique_ptr<TextParser> make_required_parser(uint64_t seed, bool mistral_ids = false);
std::unique_ptr<TextParser> make_named_parser(std::string name, uint64_t seed, bool mistral_ids = false);

// Splits reasoning from content. deepseek_r1 starts inside the reasoning (its template opens
// <think> in the prompt); qwen3 reasons when the output opens with <think> or the prompt ended
// with one. `then` (may be null) parses the content after </think> (tool calls).
std::unique_ptr<TextParser> make_reasoning_parser(ReasoningKind kind, bool prompt_opened_think,
                                                  std::unique_ptr<TextParser> then);
// True when the rendered prompt ends inside an opened <think> (the template opened it).
bool prompt_opens_think(std::string_view prompt);

}  // namespace tk::tools
