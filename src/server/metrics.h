// Prometheus metrics with vLLM's names and bucket boundaries, so dashboards and alerts written
// for vLLM read tokamak unchanged. Thread-safe; rendered in the text exposition format.
#pragma once

#include <array>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "engine_core/engine_core.h"

namespace tk::server {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}
  void observe(double v);
  // `# TYPE` and the _bucket/_sum/_count lines, each with `labels` (e.g. model_name="m").
  std::string render(const std::string& name, const std::string& help, const std::string& labels) const;

 private:
  mutable std::mutex mutex_;
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket (not cumulative); the last is +Inf
  double sum_ = 0;
  uint64_t count_ = 0;
};

// What the server saw of one finished request.
struct RequestRecord {
  std::string finished_reason;  // "stop", "length", "abort", "error"
  int prompt_tokens = 0;
  int generation_tokens = 0;
  double arrival = 0, scheduled = 0, first_token = 0, finished = 0;  // now_seconds(); 0 when not reached
  std::vector<double> inter_token_seconds;
};

class Metrics {
 public:
  explicit Metrics(std::string model_name);
  void record(const RequestRecord& r);
  std::string render(const EngineStats& engine) const;

 private:
  std::string labels_;
  mutable std::mutex mutex_;
  uint64_t prompt_tokens_ = 0, generation_tokens_ = 0;
  std::map<std::string, uint64_t> success_;  // by finished_reason
  Histogram ttft_, itl_, e2e_, queue_, prefill_, decode_;
};

}  // namespace tk::server
