// The request side of tool calling, with vLLM's rules and messages: the tools list, tool_choice,
// the schema that forces calls, and the assistant/tool messages handed to the chat template. Also
// the small shared pieces: parser names, call ids, adding deltas up.
#include <array>

#include "tools/tools.h"

namespace tk::tools {
namespace {
constexpr size_t kMaxTools = 1024;
constexpr size_t kMaxNameBytes = 256;
const char* kCorrectUsage = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`";
}  // namespace

std::string parse_tools(const Json& tools, std::vector<Tool>& out) {
  out.clear();
  if (!tools.is_array()) return "tools: Input should be a valid list";
  if (tools.size() > kMaxTools) return "tools: at most " + std::to_string(kMaxTools) + " tools";
  for (size_t i = 0; i < tools.size(); ++i) {
    const Json& t = tools[i];
    const std::string at = "tools[" + std::to_string(i) + "]";
    if (!t.is_object() || (t.contains("type") && t["type"] != "function"))
      return "tools: each tool should be an object of type 'function'";
    if (!t.contains("function") || !t["function"].is_object() || !t["function"].contains("name") ||
        !t["function"]["name"].is_string())
      return "tools: each tool needs a 'function' object with a string 'name'";
    const Json& f = t["function"];
    Tool tool;
    tool.name = f["name"].get<std::string>();
    if (tool.name.empty() || tool.name.size() > kMaxNameBytes)
      return at + ".function.name: a name of 1 to " + std::to_string(kMaxNameBytes) + " bytes";
    if (f.contains("description") && !f["description"].is_string() && !f["description"].is_null())
      return at + ".function.description: Input should be a valid string";
    if (f.contains("strict") && !f["strict"].is_boolean() && !f["strict"].is_null())
      return at + ".function.strict: Input should be a valid boolean";
    if (f.contains("parameters") && !f["parameters"].is_null()) {
      if (!f["parameters"].is_object()) return at + ".function.parameters: Input should be a valid dictionary";
      tool.parameters = f["parameters"];
    }
    out.push_back(std::move(tool));
  }
  return "";
}

std::string parse_tool_choice(const Json* choice, bool tools_given, const std::vector<Tool>& tools, ToolChoice& out) {
  using Kind = ToolChoice::Kind;
  out = {};
  if (choice == nullptr || choice->is_null()) {
    out.kind = tools_given && !tools.empty() ? Kind::kAuto : Kind::kNone;
    return "";
  }
  if (choice->is_string() && *choice == "none") return "";
  if (!tools_given) return "When using `tool_choice`, `tools` must be set.";
  if (choice->is_string() && *choice == "auto") {
    out.kind = Kind::kAuto;
    return "";
  }
  if (choice->is_string() && *choice == "required") {
    out.kind = tools.empty() ? Kind::kNone : Kind::kRequired;  // OpenAI's behaviour for no tools
    return "";
  }
  if (!choice->is_object())
    return "Invalid value for `tool_choice`: " + choice->dump() + "! Only named tools, \"none\", \"auto\" or \"required\" are supported.";
  const Json* f = choice->contains("function") ? &(*choice)["function"] : nullptr;
  if (f == nullptr || !f->is_object())
    return "Invalid value for `function`: `" + (f ? f->dump() : std::string("None")) + "` in `tool_choice`! " + kCorrectUsage;
  if (!f->contains("name")) return std::string("Expected field `name` in `function` in `tool_choice`! ") + kCorrectUsage;
  const Json& name = (*f)["name"];
  if (!name.is_string() || name.get<std::string>().empty())
    return "Invalid `name` in `function`: `" + name.dump() + "` in `tool_choice`! " + kCorrectUsage;
  for (const Tool& t : tools)
    if (t.name == name.get<std::string>()) {
      out.kind = Kind::kNamed, out.name = t.name;
      return "";
    }
  return "The tool specified in `tool_choice` does not match any of the specified `tools`";
}

Json forced_call_schema(const ToolChoice& choice, const std::vector<Tool>& tools, bool parallel_tool_calls) {
  if (choice.kind == ToolChoice::Kind::kNamed) {
    for (const Tool& t : tools)
      if (t.name == choice.name) return t.parameters;
    return nullptr;
  }
  if (choice.kind != ToolChoice::Kind::kRequired) return nullptr;
  Json any = Json::array();
  for (const Tool& t : tools) {
    Json name = Json::object();
    name["type"] = "string", name["enum"] = Json::array({t.name});
    Json item = Json::object();
    item["type"] = "object";
    item["properties"] = Json::object();
    item["properties"]["name"] = name;
    item["properties"]["parameters"] = t.parameters;
    item["required"] = Json::array({"name", "parameters"});
    any.push_back(item);
  }
  Json schema = Json::object();
  schema["type"] = "array", schema["minItems"] = 1;
  if (!parallel_tool_calls) schema["maxItems"] = 1;
  schema["items"] = Json::object();
  schema["items"]["type"] = "object";
  schema["items"]["anyOf"] = any;
  return schema;
}

std::string prepare_tool_messages(Json& messages) {
  for (size_t i = 0; i < messages.size(); ++i) {
    Json& m = messages[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (m["role"] == "tool" && m.contains("tool_call_id") && !m["tool_call_id"].is_string() && !m["tool_call_id"].is_null())
      return at + ".tool_call_id: Input should be a valid string";
    if (!m.contains("tool_calls") || m["tool_calls"].is_null()) continue;
    // The openai client sends content null beside tool calls; templates test the content as a
    // string (Qwen3's `'</think>' in content`), and vLLM hands them "".
    if (m.contains("content") && m["content"].is_null()) m["content"] = "";
    Json& calls = m["tool_calls"];
    if (!calls.is_array()) return at + ".tool_calls: Input should be a valid list";
    for (size_t k = 0; k < calls.size(); ++k) {
      Json& c = calls[k];
      const std::string cat = at + ".tool_calls[" + std::to_string(k) + "]";
      if (!c.is_object() || !c.contains("function") || !c["function"].is_object())
        return cat + ": a tool call needs a 'function' object";
      if (c.contains("id") && !c["id"].is_string()) return cat + ".id: Input should be a valid string";
      Json& f = c["function"];
      if (!f.contains("name") || !f["name"].is_string()) return cat + ".function.name: Field required (a string)";
      if (!f.contains("arguments") || !f["arguments"].is_string())
        return cat + ".function.arguments: Field required (a JSON string)";
      // As vLLM: the templates write arguments with tojson, so they get the object; text that is
      // not JSON stays a string (Qwen3's template writes strings as they are).
      Json parsed = Json::parse(f["arguments"].get<std::string>(), nullptr, false);
      if (!parsed.is_discarded() && parsed.is_object()) f["arguments"] = std::move(parsed);
    }
  }
  return "";
}

void Accumulated::add(const OutputDelta& d) {
  reasoning += d.reasoning;
  content += d.content;
  for (const ToolCallDelta& t : d.tool_calls) {
    if (t.index >= static_cast<int>(tool_calls.size())) tool_calls.resize(t.index + 1);
    ToolCall& c = tool_calls[t.index];
    c.id += t.id, c.name += t.name, c.arguments += t.arguments;
  }
}

std::optional<ToolParserKind> tool_parser_kind(std::string_view name) {
  if (name == "llama3_json") return ToolParserKind::kLlama3Json;
  if (name == "hermes") return ToolParserKind::kHermes;
  if (name == "mistral") return ToolParserKind::kMistral;
  if (name == "qwen3_coder") return ToolParserKind::kQwen3Coder;
  return std::nullopt;
}

std::optional<ReasoningKind> reasoning_kind(std::string_view name) {
  if (name == "qwen3") return ReasoningKind::kQwen3;
  if (name == "deepseek_r1") return ReasoningKind::kDeepSeekR1;
  return std::nullopt;
}

std::string CallIds::next() {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::string id = mistral_ ? "" : "call_";
  for (int i = 0; i < (mistral_ ? 9 : 24); ++i) {
    state_ += 0x9e3779b97f4a7c15ull;  // splitmix64
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    id += kAlphabet[(z ^ (z >> 31)) % 62];
  }
  return id;
}

}  // namespace tk::tools
