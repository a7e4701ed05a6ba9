// Structured output requests: OpenAI's response_format, vLLM's structured_outputs and its older
// guided_* fields, read into one grammar and compiled in the HTTP handler against the model's
// vocabulary (built once at start-up). Compiled grammars are cached by what was asked
// (grammar::GrammarCache), so a schema sent again costs a lookup. Every user mistake is a 400 naming the field; the grammar
// engine's message names the keyword it does not support.
#include "sampling.h"

namespace tk::server {

Result<std::shared_ptr<const grammar::CompiledGrammar>> App::compile_grammar(const grammar::GrammarSpec& spec) {
  if (!grammar_cache) return invalid_argument(grammar_vocab_error);
  return grammar_cache->get(spec);
}

namespace {

using Kind = grammar::GrammarSpec::Kind;

// One constraint as the request gave it.
struct Constraint {
  std::string field;  // where it came from, for errors: "response_format", "guided_json", ...
  grammar::GrammarSpec spec;
  Constraint() {
    spec.kind = Kind::kJsonObject;
    spec.json.strict = true;  // additionalProperties left unsaid means none (OpenAI's strict mode)
  }
};

using Reader = std::optional<ApiError>;

ApiError with_param(ApiError e, const std::string& param) {
  e.param = param;
  return e;
}

// A schema is an object (or true/false), or the same as JSON text.
Reader schema_text(const Json& v, const std::string& field, std::string& out) {
  if (v.is_object() || v.is_boolean()) {
    out = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    return std::nullopt;
  }
  if (v.is_string()) {
    out = v.get<std::string>();
    return std::nullopt;
  }
  return bad_request(field + ": a JSON schema must be an object or a string of JSON", field);
}

Reader string_field(const Json& v, const std::string& field, std::string& out) {
  if (!v.is_string()) return bad_request(field + ": Input should be a valid string", field);
  out = v.get<std::string>();
  return std::nullopt;
}

Reader choice_list(const Json& v, const std::string& field, Constraint& c) {
  if (!v.is_array() || v.empty()) return bad_request(field + ": Input should be a non-empty list of strings", field);
  for (const Json& x : v) {
    if (!x.is_string()) return bad_request(field + ": Input should be a non-empty list of strings", field);
    c.spec.choices.push_back(x.get<std::string>());
  }
  return std::nullopt;
}

Reader optional_bool(const Json& obj, const char* key, const std::string& field, bool& out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::nullopt;
  if (!it->is_boolean()) return bad_request(field + "." + key + ": Input should be a valid boolean", field);
  out = it->get<bool>();
  return std::nullopt;
}

// response_format: {"type": "text"} | {"type": "json_object"} |
// {"type": "json_schema", "json_schema": {"name", "schema", "strict", "description"}}.
Reader read_response_format(const Json& rf, std::vector<Constraint>& out) {
  const std::string field = "response_format";
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string())
    return bad_request("response_format: an object with a string 'type' is required", field);
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return std::nullopt;
  Constraint c;
  c.field = field;
  if (type == "json_object") {
    out.push_back(c);
    return std::nullopt;
  }
  if (type != "json_schema")
    return bad_request("response_format.type must be 'text', 'json_object' or 'json_schema', got '" + type.substr(0, 64) + "'",
                       field);
  if (!rf.contains("json_schema") || !rf["json_schema"].is_object())
    return bad_request("response_format.json_schema: Field required (an object with 'name' and 'schema')", field);
  const Json& js = rf["json_schema"];
  if (js.contains("name") && !js["name"].is_string() && !js["name"].is_null())
    return bad_request("response_format.json_schema.name: Input should be a valid string", field);
  if (js.contains("description") && !js["description"].is_string() && !js["description"].is_null())
    return bad_request("response_format.json_schema.description: Input should be a valid string", field);
  if (auto e = optional_bool(js, "strict", "response_format.json_schema", c.spec.json.strict)) return e;
  if (!js.contains("schema") || js["schema"].is_null()) {
    out.push_back(c);  // no schema: any JSON object
    return std::nullopt;
  }
  c.spec.kind = Kind::kJsonSchema;
  if (auto e = schema_text(js["schema"], "response_format.json_schema.schema", c.spec.text)) return with_param(*e, field);
  out.push_back(c);
  return std::nullopt;
}

// vLLM's structured_outputs: one of json, regex, choice, grammar, json_object, with options.
Reader read_structured_outputs(const Json& so, std::vector<Constraint>& out) {
  const std::string field = "structured_outputs";
  if (!so.is_object()) return bad_request("structured_outputs: Input should be an object", field);
  Constraint base;
  base.field = field;
  bool no_whitespace = false, no_additional = true, json_object = false;
  if (auto e = optional_bool(so, "disable_any_whitespace", field, no_whitespace)) return e;
  // Unsaid additionalProperties already mean none here (strict), as this flag asks.
  if (auto e = optional_bool(so, "disable_additional_properties", field, no_additional)) return e;
  if (auto e = optional_bool(so, "json_object", field, json_object)) return e;
  base.spec.json.compact = no_whitespace;
  for (const char* unsupported : {"whitespace_pattern", "structural_tag"})
    if (so.contains(unsupported) && !so[unsupported].is_null())
      return bad_request(std::string("structured_outputs.") + unsupported +
                             " is not supported (JSON whitespace is bounded; disable_any_whitespace makes it compact)",
                         field);
  size_t before = out.size();
  auto has = [&](const char* k) { return so.contains(k) && !so[k].is_null(); };
  if (has("json")) {
    Constraint c = base;
    c.spec.kind = Kind::kJsonSchema;
    if (auto e = schema_text(so["json"], "structured_outputs.json", c.spec.text)) return with_param(*e, field);
    out.push_back(c);
  }
  if (has("regex")) {
    Constraint c = base;
    c.spec.kind = Kind::kRegex;
    if (auto e = string_field(so["regex"], "structured_outputs.regex", c.spec.text)) return with_param(*e, field);
    out.push_back(c);
  }
  if (has("choice")) {
    Constraint c = base;
    c.spec.kind = Kind::kChoice;
    if (auto e = choice_list(so["choice"], "structured_outputs.choice", c)) return with_param(*e, field);
    out.push_back(c);
  }
  if (has("grammar")) {
    Constraint c = base;
    c.spec.kind = Kind::kGbnf;
    if (auto e = string_field(so["grammar"], "structured_outputs.grammar", c.spec.text)) return with_param(*e, field);
    out.push_back(c);
  }
  if (json_object) out.push_back(base);
  if (out.size() == before)
    return bad_request("structured_outputs: one of 'json', 'regex', 'choice', 'grammar' or 'json_object' is required", field);
  return std::nullopt;
}

// The older top-level fields: guided_json, guided_regex, guided_choice, guided_grammar.
Reader read_guided(const Json& body, std::vector<Constraint>& out) {
  auto has = [&](const char* k) { return body.contains(k) && !body[k].is_null(); };
  if (has("guided_whitespace_pattern"))
    return bad_request("guided_whitespace_pattern is not supported (JSON whitespace is bounded; structured_outputs."
                       "disable_any_whitespace makes it compact)",
                       "guided_whitespace_pattern");
  if (has("guided_decoding_backend") && !body["guided_decoding_backend"].is_string())
    return bad_request("guided_decoding_backend: Input should be a valid string", "guided_decoding_backend");
  if (has("guided_json")) {
    Constraint c;
    c.field = "guided_json", c.spec.kind = Kind::kJsonSchema;
    if (auto e = schema_text(body["guided_json"], c.field, c.spec.text)) return e;
    out.push_back(c);
  }
  if (has("guided_regex")) {
    Constraint c;
    c.field = "guided_regex", c.spec.kind = Kind::kRegex;
    if (auto e = string_field(body["guided_regex"], c.field, c.spec.text)) return e;
    out.push_back(c);
  }
  if (has("guided_choice")) {
    Constraint c;
    c.field = "guided_choice", c.spec.kind = Kind::kChoice;
    if (auto e = choice_list(body["guided_choice"], c.field, c)) return e;
    out.push_back(c);
  }
  if (has("guided_grammar")) {
    Constraint c;
    c.field = "guided_grammar", c.spec.kind = Kind::kGbnf;
    if (auto e = string_field(body["guided_grammar"], c.field, c.spec.text)) return e;
    out.push_back(c);
  }
  return std::nullopt;
}

}  // namespace

std::optional<ApiError> read_structured_output(App& app, const Json& body, SamplingParams& params) {
  std::vector<Constraint> constraints;
  if (body.contains("response_format") && !body["response_format"].is_null())
    if (auto e = read_response_format(body["response_format"], constraints)) return e;
  if (body.contains("structured_outputs") && !body["structured_outputs"].is_null())
    if (auto e = read_structured_outputs(body["structured_outputs"], constraints)) return e;
  if (auto e = read_guided(body, constraints)) return e;
  if (constraints.empty()) return std::nullopt;
  if (constraints.size() > 1)
    return bad_request("only one structured output constraint may be given; the request has " +
                           std::to_string(constraints.size()) + " (" + constraints[0].field + " and " +
                           constraints[1].field + ")",
                       constraints[1].field);
  const Constraint& c = constraints[0];
  auto compiled = app.compile_grammar(c.spec);
  if (!compiled.ok()) return bad_request(c.field + ": " + compiled.status().message(), c.field);
  params.grammar = std::move(*compiled);
  return std::nullopt;
}

}  // namespace tk::server
