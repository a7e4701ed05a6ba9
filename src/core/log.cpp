// Logging, environment flags (read only here) and the clock.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/core.h"

namespace tk {

std::optional<LogLevel> parse_log_level(std::string_view s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warning" || s == "warn") return LogLevel::kWarning;
  if (s == "error") return LogLevel::kError;
  if (s == "silent" || s == "none") return LogLevel::kSilent;
  return std::nullopt;
}

// An unknown TOKAMAK_LOG_LEVEL logs at info (the CLI refuses it with an error line).
static LogLevel parse_level(const std::optional<std::string>& s) {
  return s ? parse_log_level(*s).value_or(LogLevel::kInfo) : LogLevel::kInfo;
}

const EnvFlags& env_flags() {
  static const EnvFlags flags = [] {
    EnvFlags f;
    if (const char* v = std::getenv("TOKAMAK_LOG_LEVEL")) f.log_level = v;
    if (const char* v = std::getenv("TOKAMAK_NUM_THREADS")) {
      f.num_threads_text = v;
      char* end = nullptr;
      errno = 0;
      const long n = std::strtol(v, &end, 10);
      if (*v != '\0' && *end == '\0' && errno == 0 && n > 0 && n <= 1 << 20) f.num_threads = static_cast<int>(n);
    }
    f.omp_num_threads = std::getenv("OMP_NUM_THREADS") != nullptr;
    if (const char* v = std::getenv("TOKAMAK_DISABLE_CUDA_GRAPHS")) f.disable_cuda_graphs = std::string(v) == "1";
    if (const char* v = std::getenv("TOKAMAK_FP8_GEMV"); v && (std::string(v) == "0" || std::string(v) == "1"))
      f.fp8_gemv = std::string(v) == "1";
    if (const char* v = std::getenv("TOKAMAK_GEMV"); v && (std::string(v) == "0" || std::string(v) == "1"))
      f.gemv = std::string(v) == "1";
    if (const char* v = std::getenv("TOKAMAK_GEMV_MAX_MB")) {
      char* end = nullptr;
      errno = 0;
      const long long n = std::strtoll(v, &end, 10);
      if (*v != '\0' && *end == '\0' && errno == 0 && n >= 0 && n <= (1ll << 30)) f.gemv_max_mb = n;
    }
    if (const char* v = std::getenv("TOKAMAK_DISABLE_PDL")) f.disable_pdl = std::string(v) == "1";
    if (const char* v = std::getenv("TOKAMAK_DECODE_CLUSTER_MERGE"); v && (std::string(v) == "0" || std::string(v) == "1"))
      f.decode_cluster_merge = std::string(v) == "1";
    if (const char* v = std::getenv("TOKAMAK_API_KEY"); v && *v) f.api_key = v;
    if (const char* v = std::getenv("TOKAMAK_PROFILE"); v && *v) f.profile = v;
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
