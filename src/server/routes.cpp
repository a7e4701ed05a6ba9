// Routing: the API key on /v1/*, CORS, 404/405, admission (503 when the queue is full), the small
// endpoints answered on the I/O thread and the heavy ones handed to the workers; one access-log
// line per request.
#include <thread>

#include "generation.h"
#include "sampling.h"

namespace tk::server {

LoggedResponder::LoggedResponder(std::shared_ptr<http::Responder> inner, std::string line, http::Headers extra, bool log)
    : inner_(std::move(inner)), line_(std::move(line)), extra_(std::move(extra)), log_(log), start_(now_seconds()) {}

LoggedResponder::~LoggedResponder() { done(); }

void LoggedResponder::send(http::Response r) {
  status_ = r.status;
  r.headers.insert(r.headers.end(), extra_.begin(), extra_.end());
  inner_->send(std::move(r));
  done();
}

void LoggedResponder::start_stream(int status, http::Headers headers) {
  status_ = status;
  headers.insert(headers.end(), extra_.begin(), extra_.end());
  inner_->start_stream(status, std::move(headers));
}

void LoggedResponder::end() {
  inner_->end();
  done();
}

void LoggedResponder::annotate(int prompt_tokens, int output_tokens, double first_token, double engine_arrival,
                               double engine_first_token) {
  char buf[192];
  const double ttft = first_token > 0 ? (first_token - start_) * 1e3 : 0.0;
  if (engine_arrival > 0 && engine_first_token > 0 && first_token > 0)
    std::snprintf(buf, sizeof(buf), " prompt_tokens=%d output_tokens=%d ttft=%.2fms (to engine %.2f, engine %.2f, back %.2f)",
                  prompt_tokens, output_tokens, ttft, (engine_arrival - start_) * 1e3,
                  (engine_first_token - engine_arrival) * 1e3, (first_token - engine_first_token) * 1e3);
  else
    std::snprintf(buf, sizeof(buf), " prompt_tokens=%d output_tokens=%d ttft=%.2fms", prompt_tokens, output_tokens, ttft);
  note_ = buf;
}

void LoggedResponder::done() {
  if (!log_ || logged_.exchange(true) || status_ == 0) return;
  char buf[64];
  std::snprintf(buf, sizeof(buf), " %d", status_);
  char total[48];
  std::snprintf(total, sizeof(total), " total=%.1fms", (now_seconds() - start_) * 1e3);
  TK_LOG_INFO(line_ + buf + note_ + total);
}

namespace {

constexpr const char* kVersion = "0.2.0";

bool is_generation(const std::string& path) { return path == "/v1/completions" || path == "/v1/chat/completions"; }

}  // namespace

App::App(Engine& engine, ServerConfig config)
    : engine(engine),
      config(std::move(config)),
      model_name(this->config.served_model_names.empty()
                     ? (engine.config().model.empty() ? engine.config().model_config : engine.config().model)
                     : this->config.served_model_names[0]),
      metrics(model_name),
      pool(this->config.worker_threads > 0 ? this->config.worker_threads
                                           : static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())))) {
  defaults = this->config.use_generation_config ? engine.default_sampling_params() : SamplingParams{};
  // Structured output's vocabulary, once per model (grammars are compiled against it per request).
  if (!engine.has_tokenizer()) {
    grammar_vocab_error = "structured output needs the model's tokenizer (--tokenizer)";
  } else if (auto v = grammar_vocabulary(engine.tokenizer(), engine.eos_token_ids(), engine.model_config().vocab_size);
             v.ok()) {
    grammar_vocab = std::move(*v);
    grammar_cache = std::make_unique<grammar::GrammarCache>(grammar_vocab);
  } else {
    grammar_vocab_error = v.status().message();
    TK_LOG_WARN("structured output is off: " + grammar_vocab_error);
  }
}

std::string App::new_id(const char* prefix) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s%016llx%08llx", prefix, static_cast<unsigned long long>(std::time(nullptr)),
                static_cast<unsigned long long>(next_id_++));
  return buf;
}

void App::start_generation(const std::shared_ptr<Generation>& g, bool stream) {
  if (stream) g->responder().start_stream(200, {{"Content-Type", "text/event-stream"}, {"Cache-Control", "no-cache"}});
  ++in_flight;
  if (auto e = g->start()) {
    --in_flight;
    if (!stream) return g->responder().send(error_response(*e));
    g->responder().write(sse(error_json(*e)));
    g->responder().write("data: [DONE]\n\n");
    g->responder().end();
  }
}

Json App::models_json() const {
  Json card = Json::object();
  card["id"] = model_name, card["object"] = "model", card["created"] = static_cast<int64_t>(std::time(nullptr));
  card["owned_by"] = "tokamak";
  card["root"] = engine.config().model.empty() ? engine.config().model_config : engine.config().model;
  card["parent"] = nullptr, card["max_model_len"] = engine.config().max_model_len;
  Json list = Json::object();
  list["object"] = "list";
  list["data"] = Json::array({card});
  return list;
}

std::optional<ApiError> App::check_model(Fields& f, std::string* name) const {
  std::string model;
  f.string("model", model);
  if (f.error) return f.error;
  if (!model.empty() && model != model_name &&
      std::find(config.served_model_names.begin(), config.served_model_names.end(), model) == config.served_model_names.end())
    return ApiError{404, "The model `" + model + "` does not exist.", "model"};
  if (name) *name = model.empty() ? model_name : model;
  return std::nullopt;
}

void App::tokenize(const http::Request& request, std::shared_ptr<http::Responder> responder) {
  Json body;
  if (auto e = parse_json_body(request, body)) return responder->send(error_response(*e));
  Fields f(body);
  if (auto e = check_model(f)) return responder->send(error_response(*e));
  std::string text;
  bool add_special = true;
  if (body.contains("messages")) {
    add_special = false;
    f.boolean("add_special_tokens", add_special);
    Result<std::string> r = render_chat(body, f);
    if (f.error) return responder->send(error_response(*f.error));
    if (!r.ok()) return responder->send(error_response(bad_request(r.status().message(), "messages")));
    text = *r;
  } else {
    if (!f.has("prompt")) return responder->send(error_response(bad_request("prompt: Field required", "prompt")));
    f.string("prompt", text);
    f.boolean("add_special_tokens", add_special);
    if (f.error) return responder->send(error_response(*f.error));
  }
  auto ids = engine.tokenizer().encode(text, add_special);
  if (!ids.ok()) return responder->send(error_response(bad_request(ids.status().message(), "prompt")));
  Json out = Json::object();
  out["count"] = ids->size(), out["max_model_len"] = engine.config().max_model_len, out["tokens"] = *ids;
  out["token_strs"] = nullptr;
  responder->send(json_response(200, out));
}

void App::detokenize(const http::Request& request, std::shared_ptr<http::Responder> responder) {
  Json body;
  if (auto e = parse_json_body(request, body)) return responder->send(error_response(*e));
  Fields f(body);
  if (auto e = check_model(f)) return responder->send(error_response(*e));
  std::vector<int32_t> ids;
  if (!f.has("tokens")) return responder->send(error_response(bad_request("tokens: Field required", "tokens")));
  f.token_ids("tokens", ids);
  if (f.error) return responder->send(error_response(*f.error));
  for (int32_t id : ids)
    if (id >= engine.model_config().vocab_size)
      return responder->send(error_response(bad_request("token id " + std::to_string(id) + " is outside the vocabulary", "tokens")));
  Json out = Json::object();
  out["prompt"] = engine.tokenizer().decode(ids, false);
  responder->send(json_response(200, out));
}

void App::handle(http::Request&& request, std::shared_ptr<http::Responder> raw) {
  http::Headers cors;
  if (!config.allowed_origins.empty()) {
    const auto origin = request.header("Origin");
    const bool any = std::find(config.allowed_origins.begin(), config.allowed_origins.end(), "*") != config.allowed_origins.end();
    if (origin && (any || std::find(config.allowed_origins.begin(), config.allowed_origins.end(), std::string(*origin)) !=
                              config.allowed_origins.end()))
      cors = {{"Access-Control-Allow-Origin", any ? "*" : std::string(*origin)},
              {"Access-Control-Allow-Headers", "*"},
              {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}};
  }
  auto responder = std::make_shared<LoggedResponder>(std::move(raw), request.remote + " " + request.method + " " + request.path,
                                                     cors, config.access_log);
  const std::string& path = request.path;
  const std::string& method = request.method;
  if (method == "OPTIONS" && !cors.empty()) return responder->send({204, {}, ""});
  struct Route {
    const char* path;
    const char* method;
  };
  static const Route kRoutes[] = {{"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"}, {"/v1/models", "GET"},
                                  {"/health", "GET"},          {"/ping", "GET"},                 {"/version", "GET"},
                                  {"/metrics", "GET"},         {"/tokenize", "POST"},            {"/detokenize", "POST"},
                                  {"/openapi.json", "GET"}};
  const Route* route = nullptr;
  for (const Route& r : kRoutes)
    if (path == r.path) route = &r;
  if (!route) return responder->send(error_response({404, "Not Found: " + path, ""}));
  const bool ping_post = path == "/ping" && method == "POST";
  if (method != route->method && !ping_post && !(method == "HEAD" && std::string(route->method) == "GET")) {
    http::Response r = error_response({405, "Method Not Allowed", ""});
    r.headers.push_back({"Allow", route->method});
    return responder->send(std::move(r));
  }
  if (!config.api_key.empty() && path.rfind("/v1/", 0) == 0) {
    const auto auth = request.header("Authorization");
    if (!auth || *auth != "Bearer " + config.api_key)
      return responder->send(error_response({401, "Unauthorized: a valid API key is required", ""}));
  }
  if (path == "/health") return responder->send(ready && !stopping ? http::Response{200, {}, ""} : error_response({503, "not ready", ""}));
  if (path == "/ping") return responder->send({200, {}, ""});
  if (path == "/version") return responder->send(json_response(200, Json{{"version", kVersion}}));
  if (path == "/v1/models") return responder->send(json_response(200, models_json()));
  if (path == "/openapi.json") return responder->send(json_response(200, openapi_json(model_name)));
  if (path == "/metrics") {
    http::Response r{200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}}, metrics.render(engine.loop().stats())};
    return responder->send(std::move(r));
  }
  if (is_generation(path)) {
    if (stopping) return responder->send(error_response({503, "the server is shutting down", ""}));
    if (in_flight >= engine.config().max_num_seqs + config.max_waiting_requests) {
      http::Response r = error_response({503, "the server is at capacity; retry later", ""});
      r.headers.push_back({"Retry-After", "1"});
      return responder->send(std::move(r));
    }
  }
  auto shared = std::make_shared<http::Request>(std::move(request));
  pool.post([this, shared, responder] {
    const std::string& p = shared->path;
    if (p == "/v1/completions") completions(*shared, responder);
    else if (p == "/v1/chat/completions") chat_completions(*shared, responder);
    else if (p == "/tokenize") tokenize(*shared, responder);
    else detokenize(*shared, responder);
  });
}

}  // namespace tk::server
