// Logging, environment flags (read only here) and the clock.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/core.h"

namespace tk {

static LogLevel parse_level(const std::optional<std::string>& s) {
  if (!s) return LogLevel::kInfo;
  if (*s == "debug") return LogLevel::kDebug;
  if (*s == "warning" || *s == "warn") return LogLevel::kWarning;
  if (*s == "error") return LogLevel::kError;
  if (*s == "silent" || *s == "none") return LogLevel::kSilent;
  return LogLevel::kInfo;
}

const EnvFlags& env_flags() {
  static const EnvFlags flags = [] {
    EnvFlags f;
    if (const char* v = std::getenv("TOKAMAK_LOG_LEVEL")) f.log_level = v;
    if (const char* v = std::getenv("TOKAMAK_NUM_THREADS")) {
      int n = std::atoi(v);
      if (n > 0) f.num_threads = n;
    }
    if (const char* v = std::getenv("TOKAMAK_DISABLE_CUDA_GRAPHS")) f.disable_cuda_graphs = std::string(v) == "1";
    return f;
  }();
  return flags;
}

static LogLevel& current_level() {
  static LogLevel level = parse_level(env_flags().log_level);
  return level;
}

void set_log_level(LogLevel level) { current_level() = level; }
LogLevel log_level() { return current_level(); }

void log_message(LogLevel level, const std::string& message) {
  if (level < current_level()) return;
  static std::mutex mu;
  static const char* names[] = {"debug", "info", "warning", "error"};
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[tokamak %s] %s\n", names[static_cast<int>(level)], message.c_str());
}

double now_seconds() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

}  // namespace tk
