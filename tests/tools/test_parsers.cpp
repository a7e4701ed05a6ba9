// Every tool-call and reasoning parser on text a model writes: whole, one character at a time and
// in random chunkings (the reassembled deltas must equal the whole parse, ids included: the ids
// come from a seed), the shape of the stream (a call's first delta carries id and name with empty
// arguments, later ones only arguments), malformed and cut calls, and mutated inputs (no crash, no
// dependence on the chunking).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "parser_util.h"

namespace tk::tools::test {
namespace {

constexpr uint64_t kSeed = 42;

struct Expected {
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
  std::string reasoning;
};

void expect_same(const Parsed& a, const Parsed& b, const std::string& what) {
  EXPECT_EQ(a.result.content, b.result.content) << what;
  EXPECT_EQ(a.result.reasoning, b.result.reasoning) << what;
  EXPECT_EQ(a.malformed, b.malformed) << what;
  ASSERT_EQ(a.result.tool_calls.size(), b.result.tool_calls.size()) << what;
  for (size_t i = 0; i < a.result.tool_calls.size(); ++i) {
    EXPECT_EQ(a.result.tool_calls[i].id, b.result.tool_calls[i].id) << what;
    EXPECT_EQ(a.result.tool_calls[i].name, b.result.tool_calls[i].name) << what;
    EXPECT_EQ(a.result.tool_calls[i].arguments, b.result.tool_calls[i].arguments) << what;
  }
}

// The stream as the openai client reads it: calls numbered 0, 1, ... in order; each call's first
// delta has its id and name and empty arguments; later deltas have arguments only.
void expect_stream_shape(const Parsed& p, const std::string& what) {
  int seen = 0;
  for (const OutputDelta& d : p.deltas)
    for (const ToolCallDelta& t : d.tool_calls) {
      ASSERT_LE(t.index, seen) << what;
      if (t.index == seen) {
        EXPECT_FALSE(t.id.empty()) << what;
        EXPECT_FALSE(t.name.empty()) << what;
        EXPECT_TRUE(t.arguments.empty()) << what;
        ++seen;
      } else {
        EXPECT_TRUE(t.id.empty() && t.name.empty()) << what;
        EXPECT_FALSE(t.arguments.empty()) << what;
      }
    }
}

// Whole, char by char and 30 random chunkings agree; returns the whole parse.
Parsed check_chunkings(const Factory& make, const std::string& text) {
  Parsed whole = run_whole(make, text);
  Parsed chars = run_chars(make, text);
  expect_same(whole, chars, "char by char: " + text);
  expect_stream_shape(chars, text);
  std::mt19937 rng(7);
  for (int i = 0; i < 30; ++i) expect_same(whole, run_pieces(make, text, random_cuts(rng, text.size())), "chunks: " + text);
  return whole;
}

void expect_result(const Factory& make, const std::string& text, const Expected& e) {
  Parsed p = check_chunkings(make, text);
  EXPECT_EQ(p.result.content, e.content) << text;
  EXPECT_EQ(p.result.reasoning, e.reasoning) << text;
  EXPECT_FALSE(p.malformed) << text;
  ASSERT_EQ(p.result.tool_calls.size(), e.calls.size()) << text;
  for (size_t i = 0; i < e.calls.size(); ++i) {
    EXPECT_EQ(p.result.tool_calls[i].name, e.calls[i].first) << text;
    EXPECT_EQ(p.result.tool_calls[i].arguments, e.calls[i].second) << text;
    EXPECT_TRUE(nlohmann::json::accept(p.result.tool_calls[i].arguments)) << p.result.tool_calls[i].arguments;
  }
}

// Random deletions, insertions and duplications of a valid output: never a crash, and the
// chunking never changes the result.
void mutate_and_check(const Factory& make, const std::string& text, int rounds, bool tool_parser = true) {
  std::mt19937 rng(1234);
  const std::string alphabet = "{}[]<>/\":,; \n\\abc01=_|";
  for (int r = 0; r < rounds; ++r) {
    std::string s = text;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = rng() % s.size();
      switch (rng() % 3) {
        case 0: s.erase(at, 1 + rng() % 3); break;
        case 1: s.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
        default: s.insert(at, s.substr(at, std::min<size_t>(8, s.size() - at))); break;
      }
    }
    Parsed whole = run_whole(make, s);
    expect_same(whole, run_chars(make, s), "mutated: " + s);
    expect_same(whole, run_pieces(make, s, random_cuts(rng, s.size())), "mutated: " + s);
    // A tool parser that found no call gives the text back unchanged.
    if (tool_parser && !whole.malformed && whole.result.tool_calls.empty()) EXPECT_EQ(whole.result.content, s);
  }
}

Factory parser(ToolParserKind kind, std::vector<Tool> tools = {}) {
  return [kind, tools] { return make_tool_parser(kind, tools, kSeed); };
}

// ---- hermes

TEST(Hermes, CallsAndContent) {
  auto make = parser(ToolParserKind::kHermes);
  expect_result(make, "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
                {"Let me check.", {{"get_weather", "{\"city\": \"Paris\"}"}}});
  expect_result(make,
                "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2.5e3, -0, true, null, \"}\\\"\"]}}\n</tool_call>\n"
                "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>",
                {"", {{"a", "{\"x\": [1, 2.5e3, -0, true, null, \"}\\\"\"]}"}, {"b", "{}"}}});
  // Arguments before the name wait for it; "parameters" is accepted too.
  expect_result(make, "<tool_call>{\"parameters\": {\"q\": 1}, \"name\": \"s\"}</tool_call>", {"", {{"s", "{\"q\": 1}"}}});
  // No arguments at all: {}. A missing </tool_call> at the end is forgiven.
  expect_result(make, "<tool_call>{\"name\": \"now\"}", {"", {{"now", "{}"}}});
  // Text between and after calls stays content.
  expect_result(make, "A<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call> and B",
                {"A and B", {{"f", "{}"}}});
}

TEST(Hermes, PlainTextIsUntouched) {
  auto make = parser(ToolParserKind::kHermes);
  for (std::string s : {"", "hello", "trailing space  \n", "a <tool is not a call", "ends with <tool_ca", "<", "x < y > z",
                        "unicode: caf\xc3\xa9 \xe2\x9c\x93"})
    expect_result(make, s, {s, {}});
}

TEST(Hermes, MalformedFallsBackToContent) {
  auto make = parser(ToolParserKind::kHermes);
  expect_result(make, "<tool_call>not json</tool_call>", {"<tool_call>not json</tool_call>", {}});
  expect_result(make, "<tool_call>{\"foo\": 1}</tool_call>", {"<tool_call>{\"foo\": 1}</tool_call>", {}});
  expect_result(make, "<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>",
                {"<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>", {}});
  // Cut inside a call (max_tokens): malformed, so a whole answer gives the text as content.
  Parsed cut = check_chunkings(make, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\": ");
  EXPECT_TRUE(cut.malformed);
  Parsed broken = check_chunkings(make, "<tool_call>{\"name\": \"f\", \"arguments\": {\"a\" 1}}</tool_call>");
  EXPECT_TRUE(broken.malformed);
}

TEST(Hermes, Mutations) {
  mutate_and_check(parser(ToolParserKind::kHermes),
                   "Sure.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"n\": 3}}\n</tool_call>\n"
                   "<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>",
                   400);
}

// ---- llama3_json

TEST(Llama3Json, Calls) {
  auto make = parser(ToolParserKind::kLlama3Json);
  expect_result(make, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
                {"", {{"get_weather", "{\"city\": \"Paris\"}"}}});
  expect_result(make, "<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"arguments\": {\"x\": 1}}",
                {"", {{"a", "{}"}, {"b", "{\"x\": 1}"}}});
  expect_result(make, "\n {\"name\": \"a\", \"parameters\": {\"s\": \"{;}\"}};", {"", {{"a", "{\"s\": \"{;}\"}"}}});
}

TEST(Llama3Json, TextIsContent) {
  auto make = parser(ToolParserKind::kLlama3Json);
  for (std::string s : {"Hello {\"name\": \"a\"}", "The answer is 4.", "{\"foo\": 1}", "{not json", "<|python_tag|>print(1)",
                        "<|python", "  ", "{\"name\": 3}"})
    expect_result(make, s, {s, {}});
  Parsed trailing = check_chunkings(make, "{\"name\": \"a\", \"parameters\": {}} and more");
  EXPECT_TRUE(trailing.malformed);
}

TEST(Llama3Json, Mutations) {
  mutate_and_check(parser(ToolParserKind::kLlama3Json),
                   "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"q\": \"x y\"}}; {\"name\": \"b\", \"parameters\": {\"n\": 1.5}}",
                   400);
}

// ---- mistral

TEST(Mistral, ListForm) {
  auto make = parser(ToolParserKind::kMistral);
  Parsed p = check_chunkings(make, "[TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": 1}}, {\"name\": \"g\", \"arguments\": {}}]");
  ASSERT_EQ(p.result.tool_calls.size(), 2u);
  EXPECT_EQ(p.result.tool_calls[0].arguments, "{\"a\": 1}");
  EXPECT_EQ(p.result.tool_calls[1].name, "g");
  for (const ToolCall& c : p.result.tool_calls) {
    EXPECT_EQ(c.id.size(), 9u);  // Mistral's templates check the length
    for (char ch : c.id) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(ch)));
  }
  expect_result(make, "Checking. [TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}]", {"Checking.", {{"f", "{}"}}});
}

TEST(Mistral, NameArgsForm) {
  auto make = parser(ToolParserKind::kMistral);
  expect_result(make, "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]now[ARGS]{}",
                {"", {{"get_weather", "{\"city\": \"Paris\"}"}, {"now", "{}"}}});
}

TEST(Mistral, Malformed) {
  auto make = parser(ToolParserKind::kMistral);
  for (std::string s : {"[TOOL_CALLS] not a call!", "[TOOL_CALLS][5]", "[TOOL_CALLS]f[ARGS]nope", "[TOOL", "[TOOL_CALLS][{\"x\": 1}]"})
    expect_result(make, s, {s, {}});
}

TEST(Mistral, Mutations) {
  mutate_and_check(parser(ToolParserKind::kMistral),
                   "Hi [TOOL_CALLS][{\"name\": \"f\", \"arguments\": {\"a\": [1, 2]}}, {\"name\": \"g\", \"arguments\": {}}]", 300);
  mutate_and_check(parser(ToolParserKind::kMistral), "[TOOL_CALLS]f[ARGS]{\"a\": \"b\"}[TOOL_CALLS]g[ARGS]{}", 300);
}

// ---- qwen3_coder

std::vector<Tool> coder_tools() {
  Tool t;
  t.name = "run";
  t.parameters = nlohmann::ordered_json::parse(R"({"type": "object", "properties": {
      "n": {"type": "integer"}, "x": {"type": "number"}, "ok": {"type": "boolean"}, "opts": {"type": "object"},
      "items": {"type": "array"}, "s": {"type": "string"}, "maybe": {"type": ["null", "integer"]}}})");
  return {t};
}

TEST(Qwen3Coder, TypedParameters) {
  auto make = parser(ToolParserKind::kQwen3Coder, coder_tools());
  expect_result(make,
                "I will run it.\n<tool_call>\n<function=run>\n<parameter=n>\n42\n</parameter>\n<parameter=x>\n2.5\n</parameter>\n"
                "<parameter=ok>\ntrue\n</parameter>\n<parameter=opts>\n{\"a\": 1}\n</parameter>\n<parameter=items>\n[1, \"b\"]\n</parameter>\n"
                "<parameter=s>\nline 1\n<b>line 2</b>\n</parameter>\n<parameter=maybe>\n7\n</parameter>\n</function>\n</tool_call>",
                {"I will run it.",
                 {{"run", "{\"n\": 42, \"x\": 2.5, \"ok\": true, \"opts\": {\"a\": 1}, \"items\": [1, \"b\"], \"s\": \"line 1\\n<b>line 2</b>\", \"maybe\": 7}"}}});
  // Values not of their type stay strings; unknown functions and parameters are strings; null is null.
  expect_result(make, "<tool_call>\n<function=run>\n<parameter=n>\nmany\n</parameter>\n<parameter=zz>\n5\n</parameter>\n"
                      "<parameter=s>\nnull\n</parameter>\n</function>\n</tool_call>",
                {"", {{"run", "{\"n\": \"many\", \"zz\": \"5\", \"s\": null}"}}});
  expect_result(make, "<tool_call>\n<function=other>\n</function>\n</tool_call><tool_call><function=run><parameter=n>1</function></tool_call>",
                {"", {{"other", "{}"}, {"run", "{\"n\": 1}"}}});
}

TEST(Qwen3Coder, Malformed) {
  auto make = parser(ToolParserKind::kQwen3Coder, coder_tools());
  for (std::string s : {"<tool_call>\nplain words\n</tool_call>", "<tool_call><function=bad name\n>", "<tool_call><funct"})
    expect_result(make, s, {s, {}});
  Parsed cut = check_chunkings(make, "<tool_call>\n<function=run>\n<parameter=n>\n4");
  EXPECT_TRUE(cut.malformed);
  ASSERT_EQ(cut.result.tool_calls.size(), 1u);
  EXPECT_TRUE(nlohmann::json::accept(cut.result.tool_calls[0].arguments));
}

TEST(Qwen3Coder, Mutations) {
  mutate_and_check(parser(ToolParserKind::kQwen3Coder, coder_tools()),
                   "Ok\n<tool_call>\n<function=run>\n<parameter=n>\n42\n</parameter>\n<parameter=s>\nhi\n</parameter>\n</function>\n</tool_call>",
                   400);
}

// ---- reasoning

Factory reasoning(ReasoningKind kind, bool opened = false, std::optional<ToolParserKind> then = std::nullopt) {
  return [=] { return make_reasoning_parser(kind, opened, then ? make_tool_parser(*then, {}, kSeed) : nullptr); };
}

TEST(Reasoning, Qwen3) {
  auto make = reasoning(ReasoningKind::kQwen3);
  expect_result(make, "<think>\nLet me think.\n</think>\n\nThe answer is 4.", {"\n\nThe answer is 4.", {}, "\nLet me think.\n"});
  // enable_thinking false: the template closed the think block, the output is plain content.
  expect_result(make, "The answer is 4.", {"The answer is 4.", {}, ""});
  expect_result(make, "<thi", {"<thi", {}, ""});
  // Cut while reasoning: it stays reasoning.
  expect_result(make, "<think>still going", {"", {}, "still going"});
  // The template opened <think> (Qwen3 thinking models): the output starts inside.
  expect_result(reasoning(ReasoningKind::kQwen3, true), "hmm</think>4", {"4", {}, "hmm"});
  EXPECT_TRUE(prompt_opens_think("<|im_start|>assistant\n<think>\n"));
  EXPECT_FALSE(prompt_opens_think("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
}

TEST(Reasoning, DeepSeekR1) {
  auto make = reasoning(ReasoningKind::kDeepSeekR1);
  expect_result(make, "Okay, 2+2.</think>\n\n4", {"\n\n4", {}, "Okay, 2+2."});
  expect_result(make, "<think>Okay.</think>4", {"4", {}, "Okay."});
  expect_result(make, "no end tag", {"", {}, "no end tag"});
  expect_result(make, "a</thi", {"", {}, "a</thi"});
}

TEST(Reasoning, WithToolCalls) {
  auto make = reasoning(ReasoningKind::kQwen3, false, ToolParserKind::kHermes);
  expect_result(make, "<think>\nI need the weather. <tool_call> is how I call.\n</think>\n\n<tool_call>\n{\"name\": \"w\", \"arguments\": {\"c\": 1}}\n</tool_call>",
                {"", {{"w", "{\"c\": 1}"}}, "\nI need the weather. <tool_call> is how I call.\n"});
  mutate_and_check(make, "<think>x</think>\n\nok <tool_call>{\"name\": \"w\", \"arguments\": {}}</tool_call>", 300, false);
  mutate_and_check(reasoning(ReasoningKind::kDeepSeekR1), "a<think>b</think>c", 200, false);
}

// ---- forced calls (tool_choice required / named)

TEST(Forced, Required) {
  Factory make = [] { return make_required_parser(kSeed); };
  expect_result(make, "[{\"name\": \"f\", \"parameters\": {\"a\": 1}}, {\"name\": \"g\", \"parameters\": {}}]",
                {"", {{"f", "{\"a\": 1}"}, {"g", "{}"}}});
  expect_result(make, "[\n  {\n    \"name\": \"f\",\n    \"parameters\": {\"a\": \"]\"}\n  }\n]", {"", {{"f", "{\"a\": \"]\"}"}}});
  Parsed cut = check_chunkings(make, "[{\"name\": \"f\", \"parameters\": {\"a\"");
  EXPECT_TRUE(cut.malformed);
  mutate_and_check(make, "[{\"name\": \"f\", \"parameters\": {\"a\": 1}}, {\"name\": \"g\", \"parameters\": {}}]", 300);
}

TEST(Forced, Named) {
  Factory make = [] { return make_named_parser("get_weather", kSeed); };
  expect_result(make, "{\"city\": \"Paris\"}", {"", {{"get_weather", "{\"city\": \"Paris\"}"}}});
  expect_result(make, "\n  {\"city\": \"Paris\"}\n ", {"", {{"get_weather", "{\"city\": \"Paris\"}"}}});
}

}  // namespace
}  // namespace tk::tools::test
