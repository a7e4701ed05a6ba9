// The OpenAPI 3.1 description of the server: every route, its request fields with the types and
// ranges the server enforces, its responses and every status it answers with. Served at
// /openapi.json; a test keeps docs/openapi.json equal to it and schemathesis checks the server
// against it. NOTE: limits that depend on the model or on other fields (token ids within the
// vocabulary, prompt plus max_tokens within the context, n within --max-num-seqs, min_tokens <=
// max_tokens, stream_options only with stream, top_logprobs only with logprobs) are checked at run
// time and answered with 400; they are stated in the descriptions.
#include <cstdint>

#include "app.h"

namespace tk::server {
namespace {

Json ref(const char* name) { return Json{{"$ref", std::string("#/components/schemas/") + name}}; }

Json json_content(const Json& schema) { return Json{{"application/json", Json{{"schema", schema}}}}; }

Json error_responses(std::initializer_list<int> codes) {
  Json r = Json::object();
  for (int c : codes) {
    const std::string desc = c == 400   ? "Invalid request"
                             : c == 401 ? "Missing or wrong API key"
                             : c == 404 ? "Unknown model"
                             : c == 413 ? "Body too large"
                             : c == 415 ? "Not JSON"
                             : c == 503 ? "At capacity or shutting down"
                                        : "Error";
    r[std::to_string(c)] = Json{{"description", desc}, {"content", json_content(ref("ErrorResponse"))}};
  }
  return r;
}

Json type(const char* t) { return Json{{"type", t}}; }
Json number(double lo, double hi) { return Json{{"type", "number"}, {"minimum", lo}, {"maximum", hi}}; }
Json integer(int64_t lo, int64_t hi) { return Json{{"type", "integer"}, {"minimum", lo}, {"maximum", hi}}; }
Json nullable(Json schema) { return Json{{"anyOf", Json::array({std::move(schema), type("null")})}}; }
Json described(Json schema, const char* description) {
  schema["description"] = description;
  return schema;
}
Json array_of(Json items, int min_items = 0) {
  Json a = Json{{"type", "array"}, {"items", std::move(items)}};
  if (min_items > 0) a["minItems"] = min_items;
  return a;
}
Json token_id() { return described(integer(0, INT32_MAX), "a token id (within the model's vocabulary)"); }
Json object_schema(Json properties, Json required) {
  Json o = Json{{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) o["required"] = std::move(required);
  return o;
}
Json nonempty_string() { return Json{{"type", "string"}, {"minLength", 1}}; }
Json any_of(std::initializer_list<Json> schemas) {
  Json list = Json::array();
  for (const Json& s : schemas) list.push_back(s);
  return Json{{"anyOf", std::move(list)}};
}

// Structured output: response_format, vLLM's structured_outputs and the older guided_* fields (at
// most one constraint per request; a schema or grammar the grammar engine rejects is a 400).
void add_structured_output_properties(Json& p) {
  const Json schema = any_of({type("object"), type("boolean"), type("string")});
  auto kind = [](const char* k) { return Json{{"type", Json{{"type", "string"}, {"enum", Json::array({k})}}}}; };
  Json json_schema = object_schema(Json{{"name", nullable(type("string"))}, {"description", nullable(type("string"))},
                                        {"schema", nullable(schema)}, {"strict", nullable(type("boolean"))}},
                                   Json::array());
  Json with_schema = kind("json_schema");
  with_schema["json_schema"] = json_schema;
  p["response_format"] = nullable(described(
      any_of({object_schema(kind("text"), Json::array({"type"})), object_schema(kind("json_object"), Json::array({"type"})),
              object_schema(with_schema, Json::array({"type", "json_schema"}))}),
      "json_object: any JSON object; json_schema: output valid against json_schema.schema (unsaid "
      "additionalProperties mean none unless strict is false); whitespace between JSON tokens is bounded"));
  const Json choices = array_of(type("string"), 1);
  p["structured_outputs"] = nullable(described(
      object_schema(Json{{"json", nullable(schema)}, {"regex", nullable(type("string"))}, {"choice", nullable(choices)},
                         {"grammar", nullable(described(type("string"), "GBNF (llama.cpp's), root rule 'root'"))},
                         {"json_object", nullable(type("boolean"))},
                         {"disable_any_whitespace", nullable(described(type("boolean"), "compact JSON"))},
                         {"disable_additional_properties", nullable(type("boolean"))}},
                    Json::array()),
      "vLLM's: exactly one of json, regex, choice, grammar, json_object"));
  p["guided_json"] = nullable(schema);
  p["guided_regex"] = nullable(type("string"));
  p["guided_choice"] = nullable(choices);
  p["guided_grammar"] = nullable(type("string"));
  p["guided_decoding_backend"] = nullable(described(type("string"), "accepted and ignored"));
}

// The request fields both generation endpoints accept; null is the same as leaving a field out.
Json sampling_properties() {
  Json p = Json::object();
  p["model"] = described(type("string"), "the served model name (404 for another)");
  p["temperature"] = nullable(number(0, 100));
  p["top_p"] = nullable(Json{{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1}});
  p["top_k"] = nullable(described(integer(-1, INT32_MAX), "-1 or 0: all tokens"));
  p["min_p"] = nullable(number(0, 1));
  p["n"] = nullable(described(integer(1, INT32_MAX), "sequences per prompt, at most --max-num-seqs"));
  p["stop"] = nullable(any_of({nonempty_string(), array_of(nonempty_string())}));
  p["stop_token_ids"] = nullable(array_of(token_id()));
  p["seed"] = nullable(integer(INT64_MIN, static_cast<int64_t>(INT64_MAX)));
  p["seed"]["anyOf"][0]["maximum"] = UINT64_MAX;
  p["presence_penalty"] = nullable(number(-2, 2));
  p["frequency_penalty"] = nullable(number(-2, 2));
  p["repetition_penalty"] = nullable(Json{{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 10}});
  p["logit_bias"] = nullable(Json{{"type", "object"},
                                  {"propertyNames", Json{{"pattern", "^[0-9]{1,10}$"}}},
                                  {"additionalProperties", number(-100, 100)},
                                  {"description", "token id (within the vocabulary) -> bias"}});
  p["ignore_eos"] = nullable(type("boolean"));
  p["min_tokens"] = nullable(described(integer(0, INT32_MAX), "at most max_tokens"));
  p["skip_special_tokens"] = nullable(type("boolean"));
  p["include_stop_str_in_output"] = nullable(type("boolean"));
  p["stream"] = nullable(type("boolean"));
  p["stream_options"] = nullable(described(object_schema(Json{{"include_usage", nullable(type("boolean"))}}, Json::array()),
                                           "only with stream: true"));
  p["user"] = nullable(type("string"));
  p["cache_salt"] = nullable(type("string"));
  add_structured_output_properties(p);
  return p;
}

Json max_tokens() { return nullable(described(integer(1, INT32_MAX), "prompt tokens + max_tokens must fit the context")); }

Json completion_request() {
  Json p = sampling_properties();
  p["prompt"] = any_of({nonempty_string(), array_of(nonempty_string(), 1), array_of(token_id(), 1),
                        array_of(array_of(token_id(), 1), 1)});
  p["max_tokens"] = max_tokens();
  p["echo"] = nullable(type("boolean"));
  p["logprobs"] = nullable(integer(0, kMaxTopLogprobs));
  p["prompt_logprobs"] = nullable(integer(0, kMaxTopLogprobs));
  return object_schema(p, Json::array({"prompt"}));
}

Json message_schema() {
  Json part = object_schema(Json{{"type", Json{{"type", "string"}, {"enum", Json::array({"text"})}}}, {"text", type("string")}},
                            Json::array({"type", "text"}));
  Json m = object_schema(Json{{"role", described(type("string"), "system, user, assistant, tool, or another the template knows")},
                              {"content", nullable(any_of({type("string"), array_of(part)}))},
                              {"name", nullable(type("string"))}},
                         Json::array({"role"}));
  m["description"] = "passed to the chat template (which may need content); at most 256 fields";
  return m;
}

Json chat_request() {
  Json p = sampling_properties();
  p["messages"] = array_of(ref("ChatMessage"), 1);
  p["max_tokens"] = max_tokens();
  p["max_completion_tokens"] = max_tokens();
  p["logprobs"] = nullable(type("boolean"));
  p["top_logprobs"] = nullable(described(integer(0, kMaxTopLogprobs), "only with logprobs: true"));
  Json function = object_schema(Json{{"name", type("string")}, {"description", nullable(type("string"))},
                                     {"parameters", nullable(type("object"))}, {"strict", nullable(type("boolean"))}},
                                Json::array({"name"}));
  Json tool = object_schema(Json{{"type", Json{{"type", "string"}, {"enum", Json::array({"function"})}}}, {"function", function}},
                            Json::array({"function"}));
  p["tools"] = nullable(array_of(tool));
  Json named = object_schema(Json{{"type", Json{{"type", "string"}, {"enum", Json::array({"function"})}}},
                                  {"function", object_schema(Json{{"name", type("string")}}, Json::array({"name"}))}},
                             Json::array({"function"}));
  p["tool_choice"] = nullable(described(any_of({Json{{"type", "string"}, {"enum", Json::array({"none", "auto", "required"})}}, named}),
                                        "auto needs --enable-auto-tool-choice; required and named need tools"));
  p["parallel_tool_calls"] = nullable(type("boolean"));
  p["chat_template_kwargs"] = nullable(Json{{"type", "object"}, {"maxProperties", 256}});
  p["add_generation_prompt"] = nullable(type("boolean"));
  p["continue_final_message"] = nullable(described(type("boolean"), "not with add_generation_prompt: true"));
  return object_schema(p, Json::array({"messages"}));
}

Json usage_schema() {
  return object_schema(Json{{"prompt_tokens", type("integer")},
                            {"completion_tokens", type("integer")},
                            {"total_tokens", type("integer")},
                            {"prompt_tokens_details", nullable(object_schema(Json{{"cached_tokens", type("integer")}}, Json::array()))}},
                       Json::array({"prompt_tokens", "completion_tokens", "total_tokens"}));
}

Json finish_reason() {
  return nullable(Json{{"type", "string"}, {"enum", Json::array({"stop", "length", "abort", "error", "tool_calls"})}});
}

Json response_head(const char* object, Json choice) {
  return object_schema(Json{{"id", type("string")},
                            {"object", Json{{"type", "string"}, {"enum", Json::array({object})}}},
                            {"created", type("integer")},
                            {"model", type("string")},
                            {"choices", array_of(std::move(choice))},
                            {"usage", nullable(ref("Usage"))}},
                       Json::array({"id", "object", "created", "model", "choices"}));
}

Json completion_response() {
  Json legacy = object_schema(Json{{"text_offset", array_of(type("integer"))},
                                   {"token_logprobs", array_of(nullable(type("number")))},
                                   {"tokens", array_of(type("string"))},
                                   {"top_logprobs", array_of(nullable(type("object")))}},
                              Json::array({"text_offset", "token_logprobs", "tokens", "top_logprobs"}));
  Json choice = object_schema(Json{{"index", type("integer")},
                                   {"text", type("string")},
                                   {"logprobs", nullable(legacy)},
                                   {"finish_reason", finish_reason()},
                                   {"stop_reason", nullable(any_of({type("string"), type("integer")}))},
                                   {"prompt_logprobs", nullable(array_of(nullable(type("object"))))}},
                              Json::array({"index", "text", "finish_reason"}));
  return response_head("text_completion", choice);
}

Json chat_response() {
  Json top = object_schema(Json{{"token", type("string")}, {"logprob", type("number")}, {"bytes", nullable(array_of(type("integer")))}},
                           Json::array({"token", "logprob"}));
  Json entry = top;
  entry["properties"]["top_logprobs"] = array_of(top);
  Json call = object_schema(Json{{"id", type("string")}, {"type", type("string")},
                                  {"function", object_schema(Json{{"name", type("string")}, {"arguments", type("string")}},
                                                             Json::array({"name", "arguments"}))}},
                             Json::array({"id", "type", "function"}));
  Json message = object_schema(Json{{"role", type("string")}, {"content", nullable(type("string"))},
                                    {"tool_calls", nullable(array_of(call))}, {"reasoning_content", nullable(type("string"))}},
                               Json::array({"role"}));
  Json choice = object_schema(Json{{"index", type("integer")},
                                   {"message", message},
                                   {"logprobs", nullable(object_schema(Json{{"content", nullable(array_of(entry))}}, Json::array()))},
                                   {"finish_reason", finish_reason()},
                                   {"stop_reason", nullable(any_of({type("string"), type("integer")}))}},
                              Json::array({"index", "message", "finish_reason"}));
  return response_head("chat.completion", choice);
}

Json schemas() {
  Json s = Json::object();
  s["ErrorResponse"] = object_schema(
      Json{{"error", object_schema(Json{{"message", type("string")}, {"type", type("string")},
                                        {"param", nullable(type("string"))}, {"code", type("integer")}},
                                   Json::array({"message", "type", "param", "code"}))}},
      Json::array({"error"}));
  s["CompletionRequest"] = completion_request();
  s["ChatMessage"] = message_schema();
  s["ChatCompletionRequest"] = chat_request();
  s["Usage"] = usage_schema();
  s["CompletionResponse"] = completion_response();
  s["ChatCompletionResponse"] = chat_response();
  Json tokenize = object_schema(Json{{"model", nullable(type("string"))},
                                     {"prompt", type("string")},
                                     {"messages", array_of(ref("ChatMessage"), 1)},
                                     {"add_special_tokens", nullable(type("boolean"))},
                                     {"add_generation_prompt", nullable(type("boolean"))}},
                                Json::array());
  tokenize["anyOf"] = Json::array({Json{{"required", Json::array({"prompt"})}}, Json{{"required", Json::array({"messages"})}}});
  s["TokenizeRequest"] = tokenize;
  s["TokenizeResponse"] = object_schema(Json{{"count", type("integer")},
                                             {"max_model_len", type("integer")},
                                             {"tokens", array_of(type("integer"))},
                                             {"token_strs", nullable(array_of(type("string")))}},
                                        Json::array({"count", "max_model_len", "tokens"}));
  s["DetokenizeRequest"] = object_schema(Json{{"model", nullable(type("string"))}, {"tokens", array_of(token_id())}},
                                         Json::array({"tokens"}));
  s["DetokenizeResponse"] = object_schema(Json{{"prompt", type("string")}}, Json::array({"prompt"}));
  Json card = object_schema(Json{{"id", type("string")}, {"object", type("string")}, {"created", type("integer")},
                                 {"owned_by", type("string")}, {"root", nullable(type("string"))},
                                 {"parent", nullable(type("string"))}, {"max_model_len", type("integer")}},
                            Json::array({"id", "object", "created", "owned_by"}));
  s["ModelList"] = object_schema(Json{{"object", type("string")}, {"data", array_of(card)}}, Json::array({"object", "data"}));
  s["Version"] = object_schema(Json{{"version", type("string")}}, Json::array({"version"}));
  return s;
}

Json post(const char* summary, const char* request, const char* response, bool streams, std::initializer_list<int> errors) {
  Json ok = Json{{"description", streams ? "OK: JSON, or server-sent events ending in data: [DONE] when stream is true" : "OK"},
                 {"content", json_content(ref(response))}};
  // One event's schema (OpenAPI 3.2's itemSchema; what tools read `schema` as for an event stream).
  if (streams)
    ok["content"]["text/event-stream"] = Json{
        {"schema", object_schema(Json{{"data", described(type("string"), "a chunk as JSON (the object name + '.chunk' for chat), "
                                                                        "or [DONE] last")},
                                      {"event", type("string")}},
                                 Json::array({"data"}))}};
  Json responses = error_responses(errors);
  responses["200"] = ok;
  return Json{{"summary", summary},
              {"requestBody", Json{{"required", true}, {"content", json_content(ref(request))}}},
              {"responses", responses}};
}

Json get(const char* summary, Json ok_content, std::initializer_list<int> errors = {}) {
  Json responses = error_responses(errors);
  responses["200"] = Json{{"description", "OK"}};
  if (!ok_content.is_null()) responses["200"]["content"] = std::move(ok_content);
  return Json{{"summary", summary}, {"responses", responses}};
}

}  // namespace

Json openapi_json(const std::string& /*model_name*/) {
  Json doc = Json::object();
  doc["openapi"] = "3.1.0";
  doc["info"] = Json{{"title", "tokamak"}, {"version", "0.2.0"},
                     {"description", "The OpenAI-compatible API of tokamak serve (vLLM's fields, shapes and status codes). "
                                     "With --api-key, /v1/* needs 'Authorization: Bearer KEY' (401 otherwise)."}};
  Json paths = Json::object();
  const auto gen_errors = {400, 401, 404, 413, 415, 503};
  paths["/v1/completions"] = Json{{"post", post("Create a completion", "CompletionRequest", "CompletionResponse", true, gen_errors)}};
  paths["/v1/chat/completions"] =
      Json{{"post", post("Create a chat completion", "ChatCompletionRequest", "ChatCompletionResponse", true, gen_errors)}};
  paths["/tokenize"] = Json{{"post", post("Tokenize a prompt or chat messages", "TokenizeRequest", "TokenizeResponse", false,
                                          {400, 404, 413, 415})}};
  paths["/detokenize"] =
      Json{{"post", post("Detokenize token ids", "DetokenizeRequest", "DetokenizeResponse", false, {400, 404, 413, 415})}};
  paths["/v1/models"] = Json{{"get", get("List the served model", json_content(ref("ModelList")), {401})}};
  paths["/health"] = Json{{"get", get("200 when serving, 503 while starting or stopping", nullptr, {503})}};
  paths["/ping"] = Json{{"get", get("Liveness", nullptr)}, {"post", get("Liveness (SageMaker's POST)", nullptr)}};
  paths["/version"] = Json{{"get", get("Server version", json_content(ref("Version")))}};
  paths["/metrics"] = Json{{"get", get("Prometheus metrics (vLLM's names)", Json{{"text/plain", Json{{"schema", type("string")}}}})}};
  paths["/openapi.json"] = Json{{"get", get("This description", json_content(type("object")))}};
  doc["paths"] = paths;
  doc["components"] = Json{{"schemas", schemas()}};
  return doc;
}

}  // namespace tk::server
