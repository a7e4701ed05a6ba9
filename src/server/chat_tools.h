// Tool calling and reasoning output on the chat endpoint (private to src/server): what a request
// asks (tools, tool_choice, parallel_tool_calls, checked with vLLM's rules and messages), the
// grammar that forces calls for tool_choice "required" or a named function, and per choice the
// parser that turns the generated text into content, reasoning_content and tool_calls — streamed
// as deltas or whole. The parsers themselves are src/tools.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "app.h"
#include "tools/tools.h"

namespace tk::server {

struct ChatTools {
  std::vector<tools::Tool> tools;
  tools::ToolChoice choice;
  bool parallel = true;
  std::optional<tools::ToolParserKind> parser;    // tool_choice auto with --enable-auto-tool-choice
  std::optional<tools::ReasoningKind> reasoning;  // --reasoning-parser, unless thinking is off
  bool prompt_opened_think = false;               // the rendered prompt ends inside <think>
  bool mistral_ids = false;
  bool forced() const;
  bool active() const { return forced() || parser || reasoning; }
};

// Reads tools, tool_choice and parallel_tool_calls. An error is a 400 in vLLM's words.
std::optional<ApiError> read_chat_tools(const App& app, const Json& body, ChatTools& out);
// A forced tool choice constrains the output by a grammar (p.grammar); a request that already
// has one (response_format) cannot also force a call.
std::optional<ApiError> constrain_tool_choice(App& app, const ChatTools& t, SamplingParams& p);

// One choice's output through the parsers.
class ChatOutput {
 public:
  ChatOutput(const ChatTools& tools, uint64_t seed);
  // The delta's fields (reasoning_content, content, tool_calls) for the next piece of text; an
  // empty object when there is nothing to send yet.
  Json stream(std::string_view text, bool finished);
  // The whole message's content, reasoning_content and tool_calls, from all the text. A call that
  // does not parse leaves the text as content (vLLM).
  void whole(const std::string& text, Json& message);
  // "tool_calls" when calls were made (tool_choice auto or required, as vLLM) and the model
  // stopped by itself; after stream() or whole().
  Json finish_reason(FinishReason f) const;

 private:
  std::unique_ptr<tools::TextParser> make(bool with_tools) const;
  const ChatTools& t_;
  uint64_t seed_;
  std::unique_ptr<tools::TextParser> parser_;
  bool called_ = false;
};

}  // namespace tk::server
