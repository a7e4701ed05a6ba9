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
  std::string model_config, model, device = "auto";
  bool random_weights = false;
  int prompt_len = 128, gen_len = 256, batch = 1, page_size = 16, iters = 2;
};

struct LatencyResult {
  double ttft_s = 0, decode_s = 0;
  int decode_tokens = 0;
};

Result<std::unique_ptr<Model>> make_model(const LatencyFlags& f, Backend& backend) {
  if (!f.model.empty()) return Model::load(f.model, backend, make_progress_printer());
  if (f.model_config.empty()) return invalid_argument("give --model DIR or --model-config NAME --random-weights");
  if (!f.random_weights) return invalid_argument("--model-config needs --random-weights");
  TK_ASSIGN_OR_RETURN(ModelConfig config, builtin_model_config(f.model_config));
  TK_ASSIGN_OR_RETURN(ModelWeights weights, random_weights(config, backend, 1234));
  return std::make_unique<Model>(config, std::move(weights), backend);
}

// One request batch through the real scheduler and runner: prefill, then greedy decode.
Result<LatencyResult> run_once(Model& model, KvCache& cache, const LatencyFlags& f, uint32_t seed) {
  PagePool pool(cache.num_pages);
  Scheduler sched({f.batch, f.batch * f.prompt_len, f.prompt_len + f.gen_len}, pool);
  ModelRunner runner(model, cache);
  std::mt19937 rng(seed);
  std::vector<std::unique_ptr<Sequence>> seqs;
  SamplingParams greedy;
  greedy.temperature = 0.f;
  for (int b = 0; b < f.batch; ++b) {
    std::vector<int32_t> prompt(f.prompt_len);
    for (int32_t& t : prompt) t = static_cast<int32_t>(rng() % model.config().vocab_size);
    seqs.push_back(std::make_unique<Sequence>(b, prompt, greedy, cache.page_size));
    sched.add(seqs.back().get());
  }
  LatencyResult r;
  const double start = now_seconds();
  double first = 0;
  while (sched.has_work()) {
    ScheduledStep step = sched.schedule();
    if (step.empty()) return out_of_memory("the KV cache cannot hold the batch");
    TK_ASSIGN_OR_RETURN(std::vector<SampledToken> sampled, runner.run(step));
    size_t k = 0;
    for (const ScheduledSeq& s : step.seqs) {
      s.seq->num_computed += s.num_new;
      if (!s.sample) continue;
      s.seq->output.push_back(sampled[k++].token);
      if (static_cast<int>(s.seq->output.size()) == f.gen_len) sched.finish(s.seq);
    }
    if (first == 0 && k > 0) first = now_seconds();
    else r.decode_tokens += static_cast<int>(k);
  }
  r.ttft_s = first - start;
  r.decode_s = now_seconds() - first;
  return r;
}

Status run_latency(const LatencyFlags& f) {
  TK_ASSIGN_OR_RETURN(auto backend, make_backend(f.device, 0));
  TK_ASSIGN_OR_RETURN(auto model, make_model(f, *backend));
  TK_RETURN_IF_ERROR(backend->configure(model->attention_shape(), f.page_size));
  TK_RETURN_IF_ERROR(model->reserve(static_cast<int64_t>(f.batch) * f.prompt_len, f.batch));
  const ModelConfig& c = model->config();
  const int pages_per_seq = (f.prompt_len + f.gen_len + f.page_size - 1) / f.page_size;
  TK_ASSIGN_OR_RETURN(KvCache cache, backend->alloc_kv_cache(static_cast<int>(c.num_layers), pages_per_seq * f.batch,
                                                              f.page_size, static_cast<int>(c.num_kv_heads),
                                                              static_cast<int>(c.head_dim)));
  // The first run captures the decode graphs and warms the GEMM plans; later runs are timed.
  LatencyResult best;
  for (int i = 0; i <= f.iters; ++i) {
    TK_ASSIGN_OR_RETURN(LatencyResult r, run_once(*model, cache, f, 7 + i));
    if (i > 0 && (best.decode_s == 0 || r.decode_s < best.decode_s)) best = r;
  }
  const double tps = best.decode_tokens / best.decode_s;
  std::printf("%s %s: batch %d, prompt %d, generated %d: time to first token %.2f ms, decode %.1f tokens/s "
              "(%.2f ms/step)\n",
              f.model.empty() ? f.model_config.c_str() : f.model.c_str(), backend->name().c_str(), f.batch,
              f.prompt_len, f.gen_len, best.ttft_s * 1e3, tps, best.decode_s / (best.decode_tokens / f.batch) * 1e3);
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
  latency->add_option("--model-config", lf->model_config, "built-in configuration: llama-3-8b, mistral-7b, qwen2.5-7b");
  latency->add_flag("--random-weights", lf->random_weights, "random weights made on the device (no checkpoint)");
  latency->add_option("--model,-m", lf->model, "or a Hugging Face model directory");
  latency->add_option("--device", lf->device, "cpu, cuda or auto")->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  latency->add_option("--prompt-len", lf->prompt_len, "prompt tokens")->check(CLI::Range(1, 1 << 20));
  latency->add_option("--gen-len", lf->gen_len, "generated tokens")->check(CLI::Range(2, 1 << 20));
  latency->add_option("--batch", lf->batch, "sequences")->check(CLI::Range(1, 4096));
  latency->add_option("--page-size", lf->page_size, "KV page size")->check(CLI::IsMember({1, 8, 16, 32, 64}));
  latency->add_option("--iters", lf->iters, "timed runs after the warm-up run")->check(CLI::Range(1, 100));
  return {app, [=]() -> Status {
            if (kernels->parsed()) return run_kernels(kf->first, kf->second);
            return run_latency(*lf);
          }};
}

}  // namespace tk::cli
