// The request side of tool calling: tools and tool_choice checked with vLLM's messages, the
// schemas that force calls (compiled by the grammar engine: outputs the required/named parsers
// read are accepted, others refused), and messages prepared for the chat template.
#include <gtest/gtest.h>

#include "grammar/grammar.h"
#include "tools/tools.h"

namespace tk::tools {
namespace {

Json j(const char* s) { return Json::parse(s); }

std::vector<Tool> weather_tools() {
  std::vector<Tool> tools;
  EXPECT_EQ(parse_tools(j(R"([{"type": "function", "function": {"name": "get_weather", "description": "d",
      "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
      "required": ["city"]}}}, {"type": "function", "function": {"name": "now"}}])"), tools), "");
  return tools;
}

TEST(Tools, Parse) {
  auto tools = weather_tools();
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[0].name, "get_weather");
  EXPECT_EQ(tools[1].parameters, Json::object());
  std::vector<Tool> out;
  for (const char* bad : {R"("x")", R"([5])", R"([{"type": "code"}])", R"([{"function": {"name": 5}}])",
                          R"([{"function": {"name": ""}}])", R"([{"function": {"name": "f", "parameters": "x"}}])",
                          R"([{"function": {"name": "f", "parameters": [1]}}])", R"([{"function": {"name": "f", "description": 5}}])",
                          R"([{"function": {"name": "f", "strict": "yes"}}])"})
    EXPECT_NE(parse_tools(j(bad), out), "") << bad;
}

TEST(Tools, Choice) {
  auto tools = weather_tools();
  ToolChoice c;
  EXPECT_EQ(parse_tool_choice(nullptr, true, tools, c), "");
  EXPECT_EQ(c.kind, ToolChoice::Kind::kAuto);
  EXPECT_EQ(parse_tool_choice(nullptr, false, {}, c), "");
  EXPECT_EQ(c.kind, ToolChoice::Kind::kNone);
  Json required = "required", none = "none", bogus = "sometimes";
  EXPECT_EQ(parse_tool_choice(&required, true, tools, c), "");
  EXPECT_EQ(c.kind, ToolChoice::Kind::kRequired);
  EXPECT_EQ(parse_tool_choice(&required, true, {}, c), "");
  EXPECT_EQ(c.kind, ToolChoice::Kind::kNone);
  EXPECT_EQ(parse_tool_choice(&none, false, {}, c), "");
  EXPECT_EQ(parse_tool_choice(&required, false, {}, c), "When using `tool_choice`, `tools` must be set.");
  EXPECT_NE(parse_tool_choice(&bogus, true, tools, c).find("Only named tools"), std::string::npos);
  Json named = j(R"({"type": "function", "function": {"name": "now"}})");
  EXPECT_EQ(parse_tool_choice(&named, true, tools, c), "");
  EXPECT_EQ(c.kind, ToolChoice::Kind::kNamed);
  EXPECT_EQ(c.name, "now");
  Json unknown = j(R"({"type": "function", "function": {"name": "nope"}})");
  EXPECT_EQ(parse_tool_choice(&unknown, true, tools, c),
            "The tool specified in `tool_choice` does not match any of the specified `tools`");
  for (const char* bad : {R"({"type": "function"})", R"({"function": {}})", R"({"function": {"name": 5}})", R"({"function": 5})", "5"}) {
    Json b = j(bad);
    EXPECT_NE(parse_tool_choice(&b, true, tools, c), "") << bad;
  }
}

// Single-byte tokens and an eos: a matcher then accepts exactly the grammar's strings.
bool schema_accepts(const Json& schema, const std::string& text) {
  std::vector<grammar::Vocabulary::Token> tokens;
  for (int b = 0; b < 256; ++b) tokens.push_back({std::string(1, static_cast<char>(b)), false});
  tokens.push_back({"", true});
  auto vocab = grammar::Vocabulary::create(tokens, {256});
  EXPECT_TRUE(vocab.ok());
  auto g = grammar::json_schema_to_grammar(schema.dump());
  EXPECT_TRUE(g.ok()) << (g.ok() ? "" : g.status().message());
  if (!g.ok()) return false;
  auto compiled = grammar::CompiledGrammar::compile(*g, *vocab);
  EXPECT_TRUE(compiled.ok());
  grammar::Matcher m(*compiled);
  return m.accept_bytes(text) && m.can_end();
}

TEST(Tools, ForcedSchemas) {
  auto tools = weather_tools();
  ToolChoice required{ToolChoice::Kind::kRequired, ""};
  Json parallel = forced_call_schema(required, tools, true);
  EXPECT_TRUE(schema_accepts(parallel, R"([{"name": "get_weather", "parameters": {"city": "Paris"}}, {"name": "now", "parameters": {}}])"));
  EXPECT_FALSE(schema_accepts(parallel, R"([])"));
  EXPECT_FALSE(schema_accepts(parallel, R"([{"name": "other", "parameters": {}}])"));
  EXPECT_FALSE(schema_accepts(parallel, R"([{"name": "get_weather", "parameters": {"days": 3}}])"));  // city required
  Json single = forced_call_schema(required, tools, false);
  EXPECT_TRUE(schema_accepts(single, R"([{"name": "now", "parameters": {}}])"));
  EXPECT_FALSE(schema_accepts(single, R"([{"name": "now", "parameters": {}}, {"name": "now", "parameters": {}}])"));
  ToolChoice named{ToolChoice::Kind::kNamed, "get_weather"};
  Json args = forced_call_schema(named, tools, true);
  EXPECT_TRUE(schema_accepts(args, R"({"city": "Paris", "days": 2})"));
  EXPECT_FALSE(schema_accepts(args, R"({"days": "two"})"));
}

TEST(Tools, TemplateMessages) {
  Json messages = j(R"([{"role": "user", "content": "weather?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "x", "arguments": "not json"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}])");
  EXPECT_EQ(prepare_tool_messages(messages), "");
  EXPECT_EQ(messages[1]["tool_calls"][0]["function"]["arguments"], j(R"({"city": "Paris"})"));
  EXPECT_EQ(messages[1]["tool_calls"][1]["function"]["arguments"], "not json");
  for (const char* bad : {R"([{"role": "assistant", "tool_calls": 5}])", R"([{"role": "assistant", "tool_calls": [5]}])",
                          R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}])",
                          R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}])",
                          R"([{"role": "assistant", "tool_calls": [{"id": 5, "function": {"name": "f", "arguments": "{}"}}]}])",
                          R"([{"role": "tool", "tool_call_id": 5, "content": "x"}])"}) {
    Json m = j(bad);
    EXPECT_NE(prepare_tool_messages(m), "") << bad;
  }
}

TEST(Tools, Names) {
  EXPECT_EQ(tool_parser_kind("hermes"), ToolParserKind::kHermes);
  EXPECT_EQ(tool_parser_kind("llama3_json"), ToolParserKind::kLlama3Json);
  EXPECT_EQ(tool_parser_kind("mistral"), ToolParserKind::kMistral);
  EXPECT_EQ(tool_parser_kind("qwen3_coder"), ToolParserKind::kQwen3Coder);
  EXPECT_FALSE(tool_parser_kind("pythonic"));
  EXPECT_EQ(reasoning_kind("qwen3"), ReasoningKind::kQwen3);
  EXPECT_EQ(reasoning_kind("deepseek_r1"), ReasoningKind::kDeepSeekR1);
  EXPECT_FALSE(reasoning_kind("granite"));
  CallIds ids(1), mistral(1, true);
  EXPECT_EQ(ids.next().size(), 29u);
  EXPECT_EQ(ids.next().rfind("call_", 0), 0u);
  EXPECT_EQ(mistral.next().size(), 9u);
}

}  // namespace
}  // namespace tk::tools
