// `tokamak serve`: the OpenAI-compatible server with vLLM's flag names. Loads the model and
// captures the decode graphs before it listens; SIGINT/SIGTERM shut it down gracefully (stop
// accepting, end in-flight requests with finish_reason "abort", exit 0).
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "flags.h"
#include "server/server.h"

namespace tk::cli {
namespace {

struct ServeFlags {
  EngineConfig engine;
  server::ServerConfig server;
  bool random_weights = false;
  std::string chat_template_file, generation_config = "auto", log_level = "info", allowed_origins;
  std::vector<std::string> served_model_names;
};

// vLLM takes a JSON list ('["*"]'); a comma-separated list works too.
Result<std::vector<std::string>> parse_origins(const std::string& s) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  if (s[0] == '[') {
    auto j = nlohmann::json::parse(s, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return invalid_argument("--allowed-origins: not a JSON list: " + s);
    for (const auto& o : j) {
      if (!o.is_string()) return invalid_argument("--allowed-origins: entries must be strings");
      out.push_back(o.get<std::string>());
    }
    return out;
  }
  for (size_t at = 0; at <= s.size();) {
    size_t end = s.find(',', at);
    if (end == std::string::npos) end = s.size();
    if (end > at) out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

Status run_serve(ServeFlags f) {
  if (f.engine.model.empty() == f.engine.model_config.empty())
    return invalid_argument("give --model DIR or --model-config NAME --random-weights --tokenizer DIR");
  if (!f.engine.model_config.empty() && !f.random_weights) return invalid_argument("--model-config needs --random-weights");
  if (!f.engine.model_config.empty() && f.engine.tokenizer.empty()) return invalid_argument("--model-config needs --tokenizer DIR");
  const std::map<std::string, LogLevel> levels = {{"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},
                                                  {"warning", LogLevel::kWarning}, {"error", LogLevel::kError},
                                                  {"critical", LogLevel::kError}, {"trace", LogLevel::kDebug}};
  set_log_level(levels.at(f.log_level));
  server::ServerConfig& sc = f.server;
  if (sc.api_key.empty() && env_flags().api_key) sc.api_key = *env_flags().api_key;
  sc.served_model_names = f.served_model_names;
  sc.use_generation_config = f.generation_config == "auto";
  TK_ASSIGN_OR_RETURN(sc.allowed_origins, parse_origins(f.allowed_origins));
  if (sc.enable_auto_tool_choice && sc.tool_call_parser.empty())
    return invalid_argument("--enable-auto-tool-choice requires --tool-call-parser");
  if (!f.chat_template_file.empty()) {
    TK_ASSIGN_OR_RETURN(sc.chat_template, read_text_file(f.chat_template_file));
  }
  // Signals go to this thread only (sigwait below): block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  TK_ASSIGN_OR_RETURN(auto engine, load_engine(f.engine));
  TK_ASSIGN_OR_RETURN(auto srv, server::Server::start(*engine, sc));
  std::fprintf(stderr, "[tokamak info] serving %s on http://%s:%d (OpenAI API at /v1)\n",
               sc.served_model_names.empty() ? (f.engine.model.empty() ? f.engine.model_config.c_str() : f.engine.model.c_str())
                                             : sc.served_model_names[0].c_str(),
               sc.host.c_str(), srv->port());
  int sig = 0;
  sigwait(&signals, &sig);
  TK_LOG_INFO(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
  srv->shutdown();
  return Status::ok_status();
}

}  // namespace

Command add_serve(CLI::App& parent) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* app = parent.add_subcommand("serve", "an OpenAI-compatible HTTP server (vLLM's API and flags)");
  app->add_option("--model,-m", f->engine.model, "Hugging Face model directory");
  app->add_option("--model-config", f->engine.model_config, "or a built-in configuration: " + builtin_model_names_text());
  app->add_flag("--random-weights", f->random_weights, "random weights for --model-config (benchmarks)");
  app->add_option("--tokenizer", f->engine.tokenizer, "tokenizer directory (default: the model's)");
  add_engine_flags(*app, f->engine, kSizingFlags);
  app->add_option("--host", f->server.host, "address to listen on")->capture_default_str();
  add_int(*app, "--port", f->server.port, "port to listen on (0: any free one)", 0, 65535)->default_str("8000");
  app->add_option("--api-key", f->server.api_key, "require this key on /v1/* (also from TOKAMAK_API_KEY)");
  app->add_option("--served-model-name", f->served_model_names, "the model name(s) clients use (default: the model path)");
  app->add_option("--chat-template", f->chat_template_file, "a Jinja chat template file instead of the checkpoint's");
  app->add_option("--generation-config", f->generation_config,
                  "auto: sampling defaults from generation_config.json; vllm: none")
      ->check(CLI::IsMember({"auto", "vllm"}))
      ->capture_default_str();
  app->add_option("--allowed-origins", f->allowed_origins, "CORS origins, a JSON list (e.g. '[\"*\"]') or comma-separated");
  app->add_option("--log-level,--uvicorn-log-level", f->log_level, "debug, info, warning, error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error", "critical", "trace"}))
      ->capture_default_str();
  add_int(*app, "--max-waiting-requests", f->server.max_waiting_requests,
          "requests queued beyond --max-num-seqs before new ones get 503", 0, 10'000'000)
      ->default_str(std::to_string(f->server.max_waiting_requests));
  app->add_flag("--enable-auto-tool-choice", f->server.enable_auto_tool_choice,
                "let the model call tools when a request's tool_choice is auto (needs --tool-call-parser)");
  app->add_option("--tool-call-parser", f->server.tool_call_parser, "how the model writes tool calls")
      ->check(CLI::IsMember({"llama3_json", "hermes", "mistral", "qwen3_coder"}));
  app->add_option("--reasoning-parser", f->server.reasoning_parser,
                  "split <think>...</think> into reasoning_content")
      ->check(CLI::IsMember({"qwen3", "deepseek_r1"}));
  app->add_flag("--disable-log-requests{false},--enable-log-requests{true}", f->server.access_log,
                "one access-log line per request (default: on)");
  return {app, [f] { return run_serve(*f); }};
}

}  // namespace tk::cli
