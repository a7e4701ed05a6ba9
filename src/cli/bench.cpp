// `tokamak bench`: benchmarks that need no checkpoint.
//   kernels  every GPU kernel against the ceilings measured on the same device (bench/)
//   latency  time to first token and decode tokens/s of a whole model, e.g. a built-in
//            configuration with random weights made on the device
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <random>

#include "cli.h"
#ifdef TOKAMAK_WITH_CUDA
#include "bench/bench.h"
#endif

namespace tk::cli {
namespace {

struct LatencyFlags {
  EngineConfig engine;
  bool random_weights = false;
  int prompt_len = 128, gen_len = 256, batch = 1, iters = 2, prefix_len = 0;
};

struct LatencyResult {
  double ttft_s = 0, decode_s = 0;
  int decode_tokens = 0;
};

// A batch of random prompts (sharing their first prefix_len tokens) through the engine loop:
// prefill in one step, then greedy decode to gen_len tokens each.
Result<LatencyResult> run_once(Engine& engine, const LatencyFlags& f, const std::vector<int32_t>& prefix, uint32_t seed) {
  std::mt19937 rng(seed);
  SamplingParams greedy;
  greedy.temperature = 0.f, greedy.max_tokens = f.gen_len, greedy.ignore_eos = true;
  const int64_t vocab = engine.model_config().vocab_size;
  std::vector<EngineLoop::NewRequest> requests;
  for (int b = 0; b < f.batch; ++b) {
    std::vector<int32_t> prompt = prefix;
    while (static_cast<int>(prompt.size()) < f.prompt_len) prompt.push_back(static_cast<int32_t>(rng() % vocab));
    requests.push_back({std::move(prompt), greedy});
  }
  const double start = now_seconds();
  TK_ASSIGN_OR_RETURN(auto streams, engine.loop().add_all(std::move(requests)));
  LatencyResult r;
  double first = 0;  // the last first token of the batch (the engine's timestamps)
  for (auto& stream : streams)
    for (std::vector<RequestOutput> outs; !(outs = stream->next()).empty();)
      for (const RequestOutput& o : outs) {
        if (o.finish == FinishReason::kError) return internal_error(o.error);
        r.decode_tokens += static_cast<int>(o.token_ids.size());
        if (o.finished()) first = std::max(first, o.first_token_time);
      }
  r.decode_tokens -= f.batch;  // each sequence's first token came with the prefill
  r.ttft_s = first - start;
  r.decode_s = now_seconds() - first;
  return r;
}

Status run_latency(LatencyFlags f) {
  if (f.engine.model.empty() == f.engine.model_config.empty())
    return invalid_argument("give --model DIR or --model-config NAME --random-weights");
  if (!f.engine.model_config.empty() && !f.random_weights) return invalid_argument("--model-config needs --random-weights");
  if (f.prefix_len >= f.prompt_len) return invalid_argument("--prefix-len must be below --prompt-len");
  EngineConfig& c = f.engine;
  c.max_num_seqs = f.batch;
  c.max_num_batched_tokens = std::max(16, f.batch * f.prompt_len);
  c.max_model_len = f.prompt_len + f.gen_len;
  // Room for the batch and the cached prefix, not more: a benchmark's cache is not its subject.
  const int64_t page = c.page_size, pages_per_seq = (c.max_model_len + page - 1) / page;
  c.kv_cache_tokens = (f.batch * pages_per_seq + (f.prefix_len + page - 1) / page) * page;
  TK_ASSIGN_OR_RETURN(auto engine, load_engine(c));
  std::mt19937 rng(99);
  std::vector<int32_t> prefix(f.prefix_len);
  for (int32_t& t : prefix) t = static_cast<int32_t>(rng() % engine->model_config().vocab_size);
  // The first run captures what is left to capture, warms the GEMM plans and (with a prefix)
  // fills the prefix cache; later runs are timed.
  LatencyResult best;
  for (int i = 0; i <= f.iters; ++i) {
    TK_ASSIGN_OR_RETURN(LatencyResult r, run_once(*engine, f, prefix, 7 + i));
    if (i > 0 && (best.decode_s == 0 || r.decode_s < best.decode_s)) best = r;
  }
  const EngineStats stats = engine->loop().stats();
  const double tps = best.decode_tokens / best.decode_s;
  std::printf("%s %s: batch %d, prompt %d, generated %d: time to first token %.2f ms, decode %.1f tokens/s "
              "(%.2f ms/step)\n",
              c.model.empty() ? c.model_config.c_str() : c.model.c_str(), engine->backend_name().c_str(), f.batch,
              f.prompt_len, f.gen_len, best.ttft_s * 1e3, tps, best.decode_s / (best.decode_tokens / f.batch) * 1e3);
  if (f.prefix_len > 0)
    std::printf("prefix %d tokens, prefix caching %s: %lld of %lld prompt tokens served from the cache\n", f.prefix_len,
                c.enable_prefix_caching ? "on" : "off", static_cast<long long>(stats.prefix_cache.hits),
                static_cast<long long>(stats.prefix_cache.queries));
  return Status::ok_status();
}

Status run_kernels(const std::string& filter, bool json) {
#ifdef TOKAMAK_WITH_CUDA
  return bench::run_kernel_benchmarks(filter, json, std::cout);
#else
  (void)filter, (void)json;
  return unsupported("tokamak bench kernels needs a build with CUDA");
#endif
}

}  // namespace

Command add_bench(CLI::App& parent) {
  CLI::App* app = parent.add_subcommand("bench", "benchmarks (kernels, latency)");
  app->require_subcommand(1);
  auto kf = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* kernels = app->add_subcommand("kernels", "time every GPU kernel against the device's ceilings");
  kernels->add_flag("--json", kf->second, "print JSON instead of a table");
  kernels->add_option("--filter", kf->first, "only suites whose name contains this (rowwise, decode, prefill, gemm)");
  auto lf = std::make_shared<LatencyFlags>();
  CLI::App* latency = app->add_subcommand("latency", "time to first token and decode tokens/s");
  latency->add_option("--model-config", lf->engine.model_config, "built-in configuration: llama-3-8b, mistral-7b, qwen2.5-7b");
  latency->add_flag("--random-weights", lf->random_weights, "random weights made on the device (no checkpoint)");
  latency->add_option("--model,-m", lf->engine.model, "or a Hugging Face model directory");
  add_engine_flags(*latency, lf->engine, /*model_flags=*/false);
  latency->add_option("--prompt-len", lf->prompt_len, "prompt tokens")->check(CLI::Range(1, 1 << 20));
  latency->add_option("--gen-len", lf->gen_len, "generated tokens")->check(CLI::Range(2, 1 << 20));
  latency->add_option("--batch", lf->batch, "sequences")->check(CLI::Range(1, 4096));
  latency->add_option("--prefix-len", lf->prefix_len, "leading prompt tokens shared by every request (prefix cache)")
      ->check(CLI::NonNegativeNumber);
  latency->add_option("--iters", lf->iters, "timed runs after the warm-up run")->check(CLI::Range(1, 100));
  return {app, [=]() -> Status {
            if (kernels->parsed()) return run_kernels(kf->first, kf->second);
            return run_latency(*lf);
          }};
}

}  // namespace tk::cli
