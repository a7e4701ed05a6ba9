// vLLM's metric names and buckets (vllm/v1/metrics/loggers.py), with the model_name label.
#include "metrics.h"

#include <cstdio>

namespace tk::server {
namespace {

const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
                                          1.0,   2.5,   5.0,  7.5,  10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                         0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kLatencyBuckets = {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
                                             30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string header(const std::string& name, const std::string& help, const char* type) {
  return "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

std::string escape_label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Histogram::observe(double v) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t b = 0;
  while (b < bounds_.size() && v > bounds_[b]) ++b;
  ++counts_[b];
  sum_ += v;
  ++count_;
}

std::string Histogram::render(const std::string& name, const std::string& help, const std::string& labels) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out = header(name, help, "histogram");
  uint64_t cumulative = 0;
  for (size_t b = 0; b <= bounds_.size(); ++b) {
    cumulative += counts_[b];
    const std::string le = b < bounds_.size() ? num(bounds_[b]) : "+Inf";
    out += name + "_bucket{" + labels + ",le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_sum{" + labels + "} " + num(sum_) + "\n";
  out += name + "_count{" + labels + "} " + std::to_string(count_) + "\n";
  return out;
}

Metrics::Metrics(std::string model_name)
    : labels_("model_name=\"" + escape_label(model_name) + "\""),
      ttft_(kTtftBuckets),
      itl_(kItlBuckets),
      e2e_(kLatencyBuckets),
      queue_(kLatencyBuckets),
      prefill_(kLatencyBuckets),
      decode_(kLatencyBuckets) {}

void Metrics::record(const RequestRecord& r) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    prompt_tokens_ += r.prompt_tokens;
    generation_tokens_ += r.generation_tokens;
    ++success_[r.finished_reason];
  }
  if (r.first_token > 0) ttft_.observe(r.first_token - r.arrival);
  for (double d : r.inter_token_seconds) itl_.observe(d);
  if (r.finished > 0) e2e_.observe(r.finished - r.arrival);
  if (r.scheduled > 0) queue_.observe(r.scheduled - r.arrival);
  if (r.scheduled > 0 && r.first_token > 0) prefill_.observe(r.first_token - r.scheduled);
  if (r.first_token > 0 && r.finished > 0) decode_.observe(r.finished - r.first_token);
}

std::string Metrics::render(const EngineStats& s) const {
  const std::string& l = labels_;
  std::string out;
  auto gauge = [&](const std::string& name, const std::string& help, double v) {
    out += header(name, help, "gauge") + name + "{" + l + "} " + num(v) + "\n";
  };
  auto counter = [&](const std::string& name, const std::string& help, double v) {
    out += header(name, help, "counter") + name + "{" + l + "} " + num(v) + "\n";
  };
  gauge("vllm:num_requests_running", "Number of sequences in model execution batches.", s.num_running);
  gauge("vllm:num_requests_waiting", "Number of sequences waiting to be processed.", s.num_waiting);
  gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", s.kv_cache_usage);
  counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens.",
          static_cast<double>(s.prefix_cache.queries));
  counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens.",
          static_cast<double>(s.prefix_cache.hits));
  {
    std::lock_guard<std::mutex> lock(mutex_);
    counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", static_cast<double>(prompt_tokens_));
    counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
            static_cast<double>(generation_tokens_));
    const std::string name = "vllm:request_success_total";
    out += header(name, "Count of successfully processed requests.", "counter");
    for (const char* reason : {"stop", "length", "abort", "error"}) {
      auto it = success_.find(reason);
      out += name + "{" + l + ",finished_reason=\"" + reason + "\"} " +
             std::to_string(it == success_.end() ? 0 : it->second) + "\n";
    }
  }
  out += ttft_.render("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", l);
  out += itl_.render("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", l);
  out += e2e_.render("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", l);
  out += queue_.render("vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.", l);
  out += prefill_.render("vllm:request_prefill_time_seconds", "Histogram of time spent in PREFILL phase for request.", l);
  out += decode_.render("vllm:request_decode_time_seconds", "Histogram of time spent in DECODE phase for request.", l);
  return out;
}

}  // namespace tk::server
