// The server's insides, shared by its .cpp files (private to src/server): errors in OpenAI's
// shape, typed reading of request fields, the worker pool, metrics, and the App that routes
// requests.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/http.h"
#include "jinja/jinja.h"
#include "metrics.h"
#include "grammar/grammar.h"
#include "server/server.h"

namespace tk::server {

using Json = nlohmann::ordered_json;

// ---- errors: {"error": {"message", "type", "param", "code"}} with vLLM's status codes

struct ApiError {
  int status = 400;
  std::string message;
  std::string param;  // the request field at fault, or empty
};
ApiError bad_request(std::string message, std::string param = "");
const char* error_type(int status);  // "BadRequestError", "NotFoundError", ...
Json error_json(const ApiError& e);
http::Response error_response(const ApiError& e);
http::Response json_response(int status, const Json& body);

// The body as a JSON object (key order kept; a repeated key's last value wins, in its first
// place, as in Python): 415 for another content type, 400 for broken JSON, nesting deeper than
// kMaxJsonDepth or invalid UTF-8. Linear in the body's size.
constexpr int kMaxJsonDepth = 64;
std::optional<ApiError> parse_json_body(const http::Request& request, Json& out);

// An integer, or a float without a fractional part (pydantic's lax mode, which vLLM's request
// models use: 16.0 is 16), within int64; nullopt otherwise.
std::optional<int64_t> json_integer(const Json& v);

// Reads optional fields of a request object; the first wrong type or value is kept as `error`.
// null counts as absent, as in vLLM's pydantic models.
class Fields {
 public:
  explicit Fields(const Json& object) : j_(object) {}
  bool has(const char* name) const;
  void number(const char* name, float& out);
  void integer(const char* name, int& out, int64_t lo, int64_t hi);
  void seed(const char* name, std::optional<uint64_t>& out);
  void boolean(const char* name, bool& out);
  void string(const char* name, std::string& out);
  void stop(const char* name, std::vector<std::string>& out);  // a string or a list of strings
  void token_ids(const char* name, std::vector<int32_t>& out);
  void logit_bias(const char* name, std::vector<std::pair<int32_t, float>>& out);
  void fail(std::string message, const char* param);
  const Json& json() const { return j_; }
  std::optional<ApiError> error;

 private:
  const Json* get(const char* name) const;
  const Json& j_;
};

// ---- the access log: forwards to the transport's responder, adds CORS headers, and logs one
// line (status, tokens, time to first token, total time) when the response is complete.
class LoggedResponder final : public http::Responder {
 public:
  LoggedResponder(std::shared_ptr<http::Responder> inner, std::string line, http::Headers extra, bool log);
  ~LoggedResponder() override;
  void send(http::Response r) override;
  void start_stream(int status, http::Headers headers) override;
  bool write(std::string data) override { return inner_->write(std::move(data)); }
  void end() override;
  bool closed() const override { return inner_->closed(); }
  void on_disconnect(std::function<void()> callback) override { inner_->on_disconnect(std::move(callback)); }
  // A generation's figures for its line: its first token reached the server at first_token, the
  // engine queued it at engine_arrival and sampled its first token at engine_first_token
  // (now_seconds(); 0 when unknown), which splits the time to first token into its parts.
  void annotate(int prompt_tokens, int output_tokens, double first_token, double engine_arrival,
                double engine_first_token);

 private:
  void done();
  std::shared_ptr<http::Responder> inner_;
  std::string line_, note_;
  http::Headers extra_;
  bool log_;
  double start_;
  int status_ = 0;
  std::atomic<bool> logged_{false};
};

// ---- worker threads for text work (templates, tokenizing, detokenizing, JSON)

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  void post(std::function<void()> work);

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// ---- the application

struct App {
  App(Engine& engine, ServerConfig config);
  Engine& engine;
  const ServerConfig config;
  const std::string model_name;
  std::shared_ptr<const jinja::Template> chat_template;  // --chat-template, or null
  SamplingParams defaults;                                // generation_config.json's, or vLLM's
  Metrics metrics;
  WorkerPool pool;
  std::atomic<int> in_flight{0};                          // generation requests not yet answered
  std::atomic<bool> ready{false};                         // /health answers 200
  std::atomic<bool> stopping{false};

  void handle(http::Request&& request, std::shared_ptr<http::Responder> responder);
  // The endpoints (each runs on a worker thread).
  void completions(const http::Request& request, std::shared_ptr<http::Responder> responder);
  void chat_completions(const http::Request& request, std::shared_ptr<http::Responder> responder);
  void tokenize(const http::Request& request, std::shared_ptr<http::Responder> responder);
  void detokenize(const http::Request& request, std::shared_ptr<http::Responder> responder);
  Json models_json() const;
  // The request's "model": a wrong type is 400, a name this server does not serve 404. `name`
  // gets the name to answer with: the one asked for (any of --served-model-name), as vLLM does.
  std::optional<ApiError> check_model(Fields& fields, std::string* name = nullptr) const;
  // Chat messages -> prompt text through the template (the checkpoint's or --chat-template).
  Result<std::string> render_chat(const Json& body, Fields& fields) const;
  std::string new_id(const char* prefix);
  // Opens the SSE stream (when streaming) and queues the engine requests of a checked request.
  void start_generation(const std::shared_ptr<class Generation>& g, bool stream);

  // Structured output (structured.cpp): the model's vocabulary, built once at start-up (null,
  // with the reason, when the model has no tokenizer), and the compiled grammars.
  std::shared_ptr<const grammar::Vocabulary> grammar_vocab;
  std::string grammar_vocab_error;
  std::unique_ptr<grammar::GrammarCache> grammar_cache;  // bounded; token tables filled in the background
  // Compiles (or finds in the cache) the grammar of a request, in the calling handler. The hook
  // for features that constrain output themselves (tool_choice required / named): put the result
  // in SamplingParams::grammar (a request with response_format too is a 400).
  Result<std::shared_ptr<const grammar::CompiledGrammar>> compile_grammar(const grammar::GrammarSpec& spec);

 private:
  std::atomic<uint64_t> next_id_{1};
};

// The OpenAPI description of every route (served at /openapi.json, copied in docs/).
Json openapi_json(const std::string& model_name);

}  // namespace tk::server
