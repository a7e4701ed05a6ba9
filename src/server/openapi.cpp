// The OpenAPI 3.1 description of the server: every route, its request schema and every status it
// answers with. Served at /openapi.json; a test keeps docs/openapi.json equal to it and
// schemathesis checks the server against it.
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

Json number(double lo, double hi) { return Json{{"type", "number"}, {"minimum", lo}, {"maximum", hi}}; }
Json integer(int64_t lo, int64_t hi) { return Json{{"type", "integer"}, {"minimum", lo}, {"maximum", hi}}; }
Json nullable(Json schema) { return Json{{"anyOf", Json::array({std::move(schema), Json{{"type", "null"}}})}}; }
Json string_or_list() {
  return Json{{"anyOf", Json::array({Json{{"type", "string"}, {"minLength", 1}},
                                     Json{{"type", "array"}, {"items", Json{{"type", "string"}, {"minLength", 1}}}, {"maxItems", 4}}})}};
}

// The sampling fields both generation endpoints accept.
Json sampling_properties() {
  Json p = Json::object();
  p["model"] = Json{{"type", "string"}};
  p["temperature"] = nullable(number(0, 2));
  p["top_p"] = nullable(Json{{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 1}});
  p["top_k"] = nullable(integer(-1, 1000));
  p["min_p"] = nullable(number(0, 1));
  p["n"] = nullable(integer(1, 4));
  p["stop"] = nullable(string_or_list());
  p["stop_token_ids"] = nullable(Json{{"type", "array"}, {"items", integer(0, 1000)}, {"maxItems", 8}});
  p["seed"] = nullable(integer(0, 4294967295LL));
  p["presence_penalty"] = nullable(number(-2, 2));
  p["frequency_penalty"] = nullable(number(-2, 2));
  p["repetition_penalty"] = nullable(Json{{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", 2}});
  p["ignore_eos"] = nullable(Json{{"type", "boolean"}});
  p["min_tokens"] = nullable(integer(0, 4));
  p["skip_special_tokens"] = nullable(Json{{"type", "boolean"}});
  p["include_stop_str_in_output"] = nullable(Json{{"type", "boolean"}});
  p["stream"] = nullable(Json{{"type", "boolean"}});
  p["stream_options"] = nullable(Json{{"type", "object"}, {"properties", Json{{"include_usage", Json{{"type", "boolean"}}}}}});
  p["user"] = nullable(Json{{"type", "string"}});
  p["cache_salt"] = nullable(Json{{"type", "string"}});
  return p;
}

Json object_schema(Json properties, Json required) {
  return Json{{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)}};
}

Json schemas() {
  Json s = Json::object();
  s["ErrorResponse"] = object_schema(
      Json{{"error", object_schema(Json{{"message", Json{{"type", "string"}}},
                                        {"type", Json{{"type", "string"}}},
                                        {"param", nullable(Json{{"type", "string"}})},
                                        {"code", Json{{"type", "integer"}}}},
                                   Json::array({"message", "type", "param", "code"}))}},
      Json::array({"error"}));
  Json completion = sampling_properties();
  completion["prompt"] = Json{{"anyOf", Json::array({Json{{"type", "string"}, {"minLength", 1}},
                                                     Json{{"type", "array"}, {"items", Json{{"type", "string"}, {"minLength", 1}}},
                                                          {"minItems", 1}, {"maxItems", 4}},
                                                     Json{{"type", "array"}, {"items", integer(0, 1000)}, {"minItems", 1}, {"maxItems", 64}}})}};
  completion["max_tokens"] = nullable(integer(1, 16));
  completion["echo"] = nullable(Json{{"type", "boolean"}});
  completion["logprobs"] = nullable(integer(0, 5));
  completion["prompt_logprobs"] = nullable(integer(0, 5));
  s["CompletionRequest"] = object_schema(completion, Json::array({"prompt"}));
  Json message = object_schema(Json{{"role", Json{{"type", "string"}, {"enum", Json::array({"system", "user", "assistant"})}}},
                                    {"content", Json{{"type", "string"}}}},
                               Json::array({"role", "content"}));
  Json chat = sampling_properties();
  chat["messages"] = Json{{"type", "array"}, {"items", message}, {"minItems", 1}, {"maxItems", 4}};
  chat["max_tokens"] = nullable(integer(1, 16));
  chat["max_completion_tokens"] = nullable(integer(1, 16));
  chat["logprobs"] = nullable(Json{{"type", "boolean"}});
  chat["add_generation_prompt"] = nullable(Json{{"type", "boolean"}});
  chat["chat_template_kwargs"] = nullable(Json{{"type", "object"}});
  s["ChatCompletionRequest"] = object_schema(chat, Json::array({"messages"}));
  s["CompletionResponse"] = object_schema(
      Json{{"id", Json{{"type", "string"}}}, {"object", Json{{"type", "string"}}}, {"created", Json{{"type", "integer"}}},
           {"model", Json{{"type", "string"}}}, {"choices", Json{{"type", "array"}}}, {"usage", Json{{"type", "object"}}}},
      Json::array({"id", "object", "created", "model", "choices"}));
  s["TokenizeRequest"] = object_schema(Json{{"model", Json{{"type", "string"}}},
                                            {"prompt", Json{{"type", "string"}}},
                                            {"add_special_tokens", Json{{"type", "boolean"}}}},
                                       Json::array({"prompt"}));
  s["TokenizeResponse"] = object_schema(Json{{"count", Json{{"type", "integer"}}},
                                             {"max_model_len", Json{{"type", "integer"}}},
                                             {"tokens", Json{{"type", "array"}, {"items", Json{{"type", "integer"}}}}}},
                                        Json::array({"count", "max_model_len", "tokens"}));
  s["DetokenizeRequest"] = object_schema(Json{{"model", Json{{"type", "string"}}},
                                              {"tokens", Json{{"type", "array"}, {"items", integer(0, 1000)}}}},
                                         Json::array({"tokens"}));
  s["DetokenizeResponse"] = object_schema(Json{{"prompt", Json{{"type", "string"}}}}, Json::array({"prompt"}));
  s["ModelList"] = object_schema(Json{{"object", Json{{"type", "string"}}}, {"data", Json{{"type", "array"}}}},
                                 Json::array({"object", "data"}));
  s["Version"] = object_schema(Json{{"version", Json{{"type", "string"}}}}, Json::array({"version"}));
  return s;
}

Json post(const char* summary, const char* request, const char* response, bool streams, std::initializer_list<int> errors) {
  Json ok = Json{{"description", "OK"}, {"content", json_content(ref(response))}};
  if (streams) ok["content"]["text/event-stream"] = Json{{"schema", Json{{"type", "string"}}}};
  Json responses = error_responses(errors);
  responses["200"] = ok;
  return Json{{"post", Json{{"summary", summary},
                            {"requestBody", Json{{"required", true}, {"content", json_content(ref(request))}}},
                            {"responses", responses}}}};
}

Json get(const char* summary, Json ok_content, std::initializer_list<int> errors = {}) {
  Json responses = error_responses(errors);
  responses["200"] = Json{{"description", "OK"}};
  if (!ok_content.is_null()) responses["200"]["content"] = std::move(ok_content);
  return Json{{"get", Json{{"summary", summary}, {"responses", responses}}}};
}

}  // namespace

Json openapi_json(const std::string& model_name) {
  Json doc = Json::object();
  doc["openapi"] = "3.1.0";
  doc["info"] = Json{{"title", "tokamak"}, {"version", "0.2.0"},
                     {"description", "OpenAI-compatible API of tokamak serving " + model_name}};
  Json paths = Json::object();
  paths["/v1/completions"] = post("Create a completion", "CompletionRequest", "CompletionResponse", true, {400, 401, 404, 413, 415, 503});
  paths["/v1/chat/completions"] = post("Create a chat completion", "ChatCompletionRequest", "CompletionResponse", true,
                                       {400, 401, 404, 413, 415, 503});
  paths["/tokenize"] = post("Tokenize a prompt", "TokenizeRequest", "TokenizeResponse", false, {400, 413, 415});
  paths["/detokenize"] = post("Detokenize token ids", "DetokenizeRequest", "DetokenizeResponse", false, {400, 413, 415});
  paths["/v1/models"] = get("List the served model", json_content(ref("ModelList")), {401});
  paths["/health"] = get("200 when serving, 503 while starting or stopping", nullptr, {503});
  paths["/ping"] = get("Liveness", nullptr);
  paths["/version"] = get("Server version", json_content(ref("Version")));
  paths["/metrics"] = get("Prometheus metrics (vLLM's names)", Json{{"text/plain", Json{{"schema", Json{{"type", "string"}}}}}});
  paths["/openapi.json"] = get("This description", Json{{"application/json", Json{{"schema", Json{{"type", "object"}}}}}});
  doc["paths"] = paths;
  doc["components"] = Json{{"schemas", schemas()}};
  return doc;
}

}  // namespace tk::server
