// `tokamak bench serve`: a load generator for any OpenAI-compatible server (tokamak, vLLM,
// llama.cpp), after vLLM's `bench serve`: requests arrive all at once or as a Poisson/gamma
// process, at most --max-concurrency in flight, each streamed; the result table reports
// throughput and the mean/median/P99 of TTFT, TPOT, ITL and E2EL, and goodput.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "bench_dataset.h"
#include "cli.h"
#include "flags.h"
#include "http_client.h"
#include "output.h"

namespace tk::cli {
namespace {

using Json = nlohmann::ordered_json;

struct ServeBenchFlags {
  std::string base_url = "http://127.0.0.1:8000", endpoint = "/v1/completions", model, tokenizer, api_key;
  DatasetFlags data;
  double request_rate = INFINITY, burstiness = 1.0;
  int max_concurrency = 0;  // 0: no limit
  std::string goodput;
  bool ignore_eos = false, save_result = false;
  std::string result_dir = ".";
  double timeout_s = 600;
};

struct RequestResult {
  bool ok = false;
  std::string error;
  int prompt_tokens = 0, output_tokens = 0;
  double ttft = 0, e2el = 0;
  std::vector<double> itl;
};

Json request_body(const ServeBenchFlags& f, const std::string& model, const BenchPrompt& p) {
  Json b = Json::object();
  b["model"] = model;
  if (f.endpoint.find("chat") != std::string::npos) b["messages"] = Json::array({Json{{"role", "user"}, {"content", p.text}}});
  else b["prompt"] = p.text;
  b["max_tokens"] = p.output_len;
  b["temperature"] = 0.0;
  b["stream"] = true;
  b["stream_options"] = Json{{"include_usage", true}};
  if (f.ignore_eos) b["ignore_eos"] = true;
  return b;
}

RequestResult run_request(const ServeBenchFlags& f, const HttpTarget& t, const std::string& body) {
  RequestResult r;
  const double start = now_seconds();
  double last = 0;
  int chunks = 0;
  auto on_event = [&](const std::string& data) {
    if (data == "[DONE]") return false;
    auto j = Json::parse(data, nullptr, false);
    if (j.is_discarded()) return true;
    if (j.contains("error")) {
      r.error = j["error"].value("message", "error");
      return false;
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      r.prompt_tokens = j["usage"].value("prompt_tokens", 0);
      r.output_tokens = j["usage"].value("completion_tokens", 0);
    }
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return true;
    const Json& c = j["choices"][0];
    std::string text;
    if (c.contains("text") && c["text"].is_string()) text = c["text"];
    else if (c.contains("delta") && c["delta"].contains("content") && c["delta"]["content"].is_string()) text = c["delta"]["content"];
    if (text.empty()) return true;
    const double now = now_seconds();
    if (chunks++ == 0) r.ttft = now - start;
    else r.itl.push_back(now - last);
    last = now;
    return true;
  };
  auto reply = http_post(t, f.endpoint, body, f.api_key, on_event, f.timeout_s);
  r.e2el = now_seconds() - start;
  if (!reply.ok()) r.error = reply.status().message();
  else if (reply->status != 200) r.error = "HTTP " + std::to_string(reply->status) + ": " + reply->body.substr(0, 200);
  if (r.output_tokens == 0) r.output_tokens = chunks;
  r.ok = r.error.empty() && chunks > 0;
  return r;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q / 100.0 * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(pos), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

// "ttft:MS tpot:MS e2el:MS" -> the SLOs (ms); a request meets goodput when it meets all given.
Result<std::map<std::string, double>> parse_goodput(const std::string& s) {
  std::map<std::string, double> slo;
  for (size_t at = 0; at < s.size();) {
    size_t end = s.find(' ', at);
    if (end == std::string::npos) end = s.size();
    const std::string item = s.substr(at, end - at);
    at = end + 1;
    if (item.empty()) continue;
    const size_t colon = item.find(':');
    if (colon == std::string::npos) return invalid_argument("--goodput: expected KEY:MS, got '" + item + "'");
    const std::string key = item.substr(0, colon);
    if (key != "ttft" && key != "tpot" && key != "e2el") return invalid_argument("--goodput: keys are ttft, tpot, e2el");
    char* e = nullptr;
    const double v = std::strtod(item.c_str() + colon + 1, &e);
    if (*e != '\0' || !(v > 0)) return invalid_argument("--goodput: '" + item + "' needs a positive number of ms");
    slo[key] = v;
  }
  return slo;
}

void progress(int done, int total) {
  static const bool tty = isatty(STDERR_FILENO) != 0;
  if (!tty && done % std::max(1, total / 10) != 0 && done != total) return;
  const int width = 30, filled = total ? done * width / total : width;
  std::fprintf(stderr, tty ? "\r[%s%s] %d/%d" : "[%s%s] %d/%d\n", std::string(filled, '#').c_str(),
               std::string(width - filled, ' ').c_str(), done, total);
  if (tty && done == total) std::fprintf(stderr, "\n");
}

void print_stats(const char* title, const char* key, const std::vector<double>& ms) {
  std::printf("%s\n", title);
  std::printf("%-40s%-10.2f\n", ("Mean " + std::string(key) + " (ms):").c_str(), mean(ms));
  std::printf("%-40s%-10.2f\n", ("Median " + std::string(key) + " (ms):").c_str(), percentile(ms, 50));
  std::printf("%-40s%-10.2f\n", ("P99 " + std::string(key) + " (ms):").c_str(), percentile(ms, 99));
}

Status run_serve_bench(ServeBenchFlags f) {
  TK_ASSIGN_OR_RETURN(HttpTarget target, parse_base_url(f.base_url));
  if (f.tokenizer.empty()) return invalid_argument("--tokenizer DIR is needed to make and count prompts");
  if (f.model.empty()) return invalid_argument("--model NAME (the served model name) is required");
  if (!(f.request_rate > 0)) return invalid_argument("--request-rate must be positive (or inf)");
  if (!(f.burstiness > 0)) return invalid_argument("--burstiness must be positive");
  TK_ASSIGN_OR_RETURN(auto slo, parse_goodput(f.goodput));
  TK_ASSIGN_OR_RETURN(auto tok, Tokenizer::load(f.tokenizer));
  TK_ASSIGN_OR_RETURN(auto prompts, make_dataset(f.data, tok.get(), tok->vocab_size()));
  const int n = static_cast<int>(prompts.size());
  std::vector<std::string> bodies;
  for (const BenchPrompt& p : prompts) bodies.push_back(request_body(f, f.model, p).dump());
  // Arrival times: all at once, or gaps drawn from Gamma(burstiness, 1 / (rate * burstiness)).
  std::vector<double> arrival(n, 0.0);
  if (std::isfinite(f.request_rate)) {
    std::mt19937_64 rng(f.data.seed + 1);
    std::gamma_distribution<double> gap(f.burstiness, 1.0 / (f.request_rate * f.burstiness));
    for (int i = 1; i < n; ++i) arrival[i] = arrival[i - 1] + gap(rng);
  }
  std::vector<RequestResult> results(n);
  std::atomic<int> next{0}, done{0};
  const int workers = std::min(n, f.max_concurrency > 0 ? f.max_concurrency : 1024);
  std::fprintf(stderr, "bench serve: %d requests to %s%s (%s), %d in flight at most\n", n, f.base_url.c_str(),
               f.endpoint.c_str(), std::isfinite(f.request_rate) ? "Poisson arrivals" : "all at once", workers);
  const double start = now_seconds();
  std::mutex progress_mutex;
  std::vector<std::thread> threads;
  for (int w = 0; w < workers; ++w)
    threads.emplace_back([&] {
      for (int i; (i = next++) < n;) {
        const double wait = start + arrival[i] - now_seconds();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        results[i] = run_request(f, target, bodies[i]);
        std::lock_guard<std::mutex> lock(progress_mutex);
        progress(++done, n);
      }
    });
  for (auto& t : threads) t.join();
  const double duration = now_seconds() - start;
  std::vector<double> ttft, tpot, itl, e2el;
  int64_t input = 0, output = 0;
  int ok = 0, good = 0;
  std::string first_error;
  for (const RequestResult& r : results) {
    if (!r.ok) {
      if (first_error.empty()) first_error = r.error;
      continue;
    }
    ++ok;
    input += r.prompt_tokens, output += r.output_tokens;
    ttft.push_back(r.ttft * 1e3), e2el.push_back(r.e2el * 1e3);
    const double t = r.output_tokens > 1 ? (r.e2el - r.ttft) / (r.output_tokens - 1) * 1e3 : 0;  // vLLM's TPOT
    if (r.output_tokens > 1) tpot.push_back(t);
    for (double d : r.itl) itl.push_back(d * 1e3);
    bool meets = true;
    if (slo.count("ttft")) meets = meets && r.ttft * 1e3 <= slo["ttft"];
    if (slo.count("tpot")) meets = meets && t <= slo["tpot"];
    if (slo.count("e2el")) meets = meets && r.e2el * 1e3 <= slo["e2el"];
    good += meets;
  }
  std::printf("============ Serving Benchmark Result ============\n");
  std::printf("%-40s%-10d\n", "Successful requests:", ok);
  if (ok < n) std::printf("%-40s%-10d (first: %s)\n", "Failed requests:", n - ok, first_error.c_str());
  if (std::isfinite(f.request_rate)) std::printf("%-40s%-10.2f\n", "Request rate configured (RPS):", f.request_rate);
  std::printf("%-40s%-10.2f\n", "Benchmark duration (s):", duration);
  std::printf("%-40s%-10lld\n", "Total input tokens:", static_cast<long long>(input));
  std::printf("%-40s%-10lld\n", "Total generated tokens:", static_cast<long long>(output));
  std::printf("%-40s%-10.2f\n", "Request throughput (req/s):", ok / duration);
  if (!slo.empty()) std::printf("%-40s%-10.2f\n", "Request goodput (req/s):", good / duration);
  std::printf("%-40s%-10.2f\n", "Output token throughput (tok/s):", output / duration);
  std::printf("%-40s%-10.2f\n", "Total Token throughput (tok/s):", (input + output) / duration);
  print_stats("---------------Time to First Token----------------", "TTFT", ttft);
  print_stats("-----Time per Output Token (excl. 1st token)------", "TPOT", tpot);
  print_stats("---------------Inter-token Latency----------------", "ITL", itl);
  print_stats("----------------End-to-end Latency----------------", "E2EL", e2el);
  std::printf("==================================================\n");
  if (f.save_result) {
    Json j = Json::object();
    j["duration"] = duration, j["completed"] = ok, j["total_input_tokens"] = input, j["total_output_tokens"] = output;
    j["request_throughput"] = ok / duration, j["output_throughput"] = output / duration;
    j["total_token_throughput"] = (input + output) / duration;
    if (!slo.empty()) j["request_goodput"] = good / duration;
    for (auto [name, v] : {std::pair{"ttft", &ttft}, std::pair{"tpot", &tpot}, std::pair{"itl", &itl}, std::pair{"e2el", &e2el}}) {
      j[std::string("mean_") + name + "_ms"] = mean(*v);
      j[std::string("median_") + name + "_ms"] = percentile(*v, 50);
      j[std::string("p99_") + name + "_ms"] = percentile(*v, 99);
    }
    j["max_concurrency"] = f.max_concurrency, j["request_rate"] = std::isfinite(f.request_rate) ? Json(f.request_rate) : Json("inf");
    const std::string path = f.result_dir + "/bench_serve_" + std::to_string(static_cast<long long>(std::time(nullptr))) + ".json";
    TK_ASSIGN_OR_RETURN(auto out, OutputFile::open(path, "--result-dir"));
    TK_RETURN_IF_ERROR(out->write(j.dump(2) + "\n"));
    TK_RETURN_IF_ERROR(out->commit());
    std::fprintf(stderr, "saved %s\n", path.c_str());
  }
  if (ok == 0) return internal_error("no request succeeded (first error: " + first_error + ")");
  return Status::ok_status();
}

}  // namespace

Command add_bench_serve(CLI::App& bench) {
  auto f = std::make_shared<ServeBenchFlags>();
  CLI::App* app = bench.add_subcommand("serve", "load an OpenAI-compatible server (vLLM's bench serve)");
  app->add_option("--base-url", f->base_url, "the server, http://host:port")->capture_default_str();
  app->add_option("--endpoint", f->endpoint, "/v1/completions or /v1/chat/completions")
      ->check(CLI::IsMember({"/v1/completions", "/v1/chat/completions"}))
      ->capture_default_str();
  app->add_option("--model", f->model, "the served model name")->required();
  app->add_option("--tokenizer", f->tokenizer, "tokenizer directory (makes and counts the prompts)")->required();
  app->add_option("--api-key", f->api_key, "sent as a bearer token");
  add_dataset_flags(*app, f->data, true);
  add_checked(*app, "--request-rate",
              [f](const std::string& v) -> std::string {
                if (v == "inf") return f->request_rate = INFINITY, "";
                ParsedReal p = parse_real(v, RealRange{0, INFINITY, true, false});
                if (p.ok) f->request_rate = p.value;
                return p.error;
              },
              "requests/s (Poisson arrivals), or inf: all at once")
      ->default_str("inf");
  add_real(*app, "--burstiness", f->burstiness, "gamma shape of the arrival gaps (1 = Poisson)", RealRange{0, 1e6, true, false})
      ->default_str("1");
  add_int(*app, "--max-concurrency", f->max_concurrency, "requests in flight at most (0: no limit)", 0, 100000);
  app->add_option("--goodput", f->goodput, "SLOs, e.g. 'ttft:500 tpot:50 e2el:10000' (ms)");
  app->add_flag("--ignore-eos", f->ignore_eos, "generate every output token (fixed output lengths)");
  app->add_flag("--save-result", f->save_result, "write the figures as JSON into --result-dir");
  app->add_option("--result-dir", f->result_dir, "where --save-result writes");
  return {app, [f] { return run_serve_bench(*f); }};
}

}  // namespace tk::cli
