// tokamak server: the OpenAI-compatible HTTP API over the engine, field for field as vLLM serves
// it — /v1/completions, /v1/chat/completions (streamed as server-sent events or whole),
// /v1/models, /tokenize, /detokenize, /health, /ping, /version, /metrics (vLLM's names) and
// /openapi.json. The transport is src/http; JSON, chat templates, tokenizing and detokenizing run
// on the server's worker threads, never on the engine thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/core.h"
#include "engine/engine.h"

namespace tk::server {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8000;                           // 0: an ephemeral port (tests)
  std::string api_key;                       // empty: no key; else /v1/* needs "Authorization: Bearer KEY"
  std::vector<std::string> served_model_names;  // empty: the model path; the first is reported
  std::string chat_template;                 // a template's text overriding the checkpoint's
  bool use_generation_config = true;         // --generation-config auto (its sampling defaults) or vllm (none)
  std::vector<std::string> allowed_origins;  // CORS; "*" allows any
  int max_waiting_requests = 4096;           // requests queued beyond those running; then 503
  int worker_threads = 0;                    // 0: min(4, cores)
  size_t max_body_bytes = 32 << 20;
  bool access_log = true;                    // one line per request
  // Tool calling and reasoning output (vLLM's flags): tool_choice auto needs both of the first two.
  bool enable_auto_tool_choice = false;      // --enable-auto-tool-choice
  std::string tool_call_parser;              // --tool-call-parser: llama3_json, hermes, mistral, qwen3_coder
  std::string reasoning_parser;              // --reasoning-parser: qwen3, deepseek_r1
};

class Server {
 public:
  // Listens and serves `engine` (which must outlive the server).
  static Result<std::unique_ptr<Server>> start(Engine& engine, ServerConfig config);
  ~Server();
  int port() const;
  // Graceful: stop accepting, end in-flight requests (finish_reason "abort" where cut), close.
  void shutdown();

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tk::server
