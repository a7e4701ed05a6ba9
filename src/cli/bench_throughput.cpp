// `tokamak bench throughput`: vLLM's offline throughput benchmark through the real engine loop —
// every prompt submitted at once, each generating its output length (ignore_eos), timed from the
// first submission to the last token — with the engine's own counters beside vLLM's line.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bench_dataset.h"
#include "cli.h"
#include "flags.h"
#include "output.h"

namespace tk::cli {
namespace {

struct ThroughputFlags {
  EngineConfig engine;
  DatasetFlags data;
  bool random_weights = false;
  std::string output_json;
};

Status run_throughput(ThroughputFlags f) {
  EngineConfig& c = f.engine;
  if (c.model.empty() == c.model_config.empty())
    return invalid_argument("give --model DIR or --model-config NAME --random-weights");
  if (!c.model_config.empty() && !f.random_weights) return invalid_argument("--model-config needs --random-weights");
  TK_ASSIGN_OR_RETURN(auto engine, load_engine(c));
  const Tokenizer* tok = engine->has_tokenizer() ? &engine->tokenizer() : nullptr;
  TK_ASSIGN_OR_RETURN(auto prompts, make_dataset(f.data, tok, engine->model_config().vocab_size));
  const int max_len = engine->config().max_model_len;
  std::vector<EngineLoop::NewRequest> requests;
  int64_t prompt_tokens = 0, output_tokens = 0;
  for (BenchPrompt& p : prompts) {
    if (static_cast<int>(p.ids.size()) + p.output_len > max_len)
      return invalid_argument("a prompt of " + std::to_string(p.ids.size()) + " tokens plus " + std::to_string(p.output_len) +
                              " output tokens exceeds --max-model-len " + std::to_string(max_len));
    SamplingParams s;
    s.temperature = 1.f, s.top_p = 1.f, s.ignore_eos = true, s.max_tokens = p.output_len, s.seed = requests.size();
    prompt_tokens += static_cast<int64_t>(p.ids.size());
    requests.push_back({std::move(p.ids), s});
  }
  const EngineStats before = engine->loop().stats();
  const double start = now_seconds();
  TK_ASSIGN_OR_RETURN(auto streams, engine->loop().add_all(std::move(requests)));
  for (auto& stream : streams)
    for (std::vector<RequestOutput> outs; !(outs = stream->next()).empty();)
      for (const RequestOutput& o : outs) {
        if (o.finish == FinishReason::kError) return internal_error(o.error);
        output_tokens += static_cast<int64_t>(o.token_ids.size());
      }
  const double elapsed = now_seconds() - start;
  EngineStats s = engine->loop().stats();
  for (int i = 0; i < 200 && s.steps == before.steps; ++i) s = engine->loop().stats();
  const int64_t steps = s.steps - before.steps;
  const double mean_batch = steps ? static_cast<double>(s.sequences_scheduled - before.sequences_scheduled) / steps : 0;
  const double host_ms = steps ? (s.step_host_seconds - before.step_host_seconds) / steps * 1e3 : 0;
  const double device_ms = steps ? (s.step_device_seconds - before.step_device_seconds) / steps * 1e3 : 0;
  const int64_t decode_steps = s.decode_steps - before.decode_steps;
  const double decode_batch =
      decode_steps ? static_cast<double>(s.decode_sequences - before.decode_sequences) / decode_steps : 0;
  const double decode_host_ms = decode_steps ? (s.decode_host_seconds - before.decode_host_seconds) / decode_steps * 1e3 : 0;
  const double decode_device_ms =
      decode_steps ? (s.decode_device_seconds - before.decode_device_seconds) / decode_steps * 1e3 : 0;
  const int64_t overlapped = s.overlapped_steps - before.overlapped_steps;
  const int64_t late_captures = s.late_graph_captures - before.late_graph_captures;
  // Steps with prefill chunks: a running stream's time per token while prompts are computed.
  const int64_t mixed_steps = steps - decode_steps;
  const double mixed_device_ms = mixed_steps ? ((s.step_device_seconds - before.step_device_seconds) -
                                                (s.decode_device_seconds - before.decode_device_seconds)) /
                                                   mixed_steps * 1e3
                                             : 0;
  const int64_t queries = s.prefix_cache.queries - before.prefix_cache.queries, hits = s.prefix_cache.hits - before.prefix_cache.hits;
  const double hit_rate = queries ? static_cast<double>(hits) / queries : 0;
  const double n = static_cast<double>(streams.size());
  std::printf("Throughput: %.2f requests/s, %.2f total tokens/s, %.2f output tokens/s\n", n / elapsed,
              (prompt_tokens + output_tokens) / elapsed, output_tokens / elapsed);
  std::printf("Total num prompt tokens: %lld\nTotal num output tokens: %lld\n", static_cast<long long>(prompt_tokens),
              static_cast<long long>(output_tokens));
  std::printf("Engine: %lld steps, mean batch %.1f sequences, mean host time %.3f ms/step, prefix cache hit rate %.1f%%\n",
              static_cast<long long>(steps), mean_batch, host_ms, hit_rate * 100);
  // Host time: the engine thread's work per step, its waits for the device left out; device time:
  // the step on the device's clock (GPU only). The bar: host under 10% of device at batch 256.
  auto share = [](double host, double device) -> std::string {
    if (device <= 0) return "n/a";
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f%%", 100 * host / device);
    return buf;
  };
  std::printf("Steps: host %.3f ms/step, device %.3f ms/step (host/device %s); async scheduling %s, %lld steps overlapped\n",
              host_ms, device_ms, share(host_ms, device_ms).c_str(), engine->config().async_scheduling ? "on" : "off",
              static_cast<long long>(overlapped));
  std::printf("Decode-only steps: %lld, mean batch %.1f: host %.3f ms/step, device %.3f ms/step (host/device %s)\n",
              static_cast<long long>(decode_steps), decode_batch, decode_host_ms, decode_device_ms,
              share(decode_host_ms, decode_device_ms).c_str());
  std::printf("Steps with prefill: %lld, device %.3f ms/step (%.2fx a decode-only step)\n", static_cast<long long>(mixed_steps),
              mixed_device_ms, decode_device_ms > 0 ? mixed_device_ms / decode_device_ms : 0.0);
  // Each stalls its step (a plan no graph had: a context bucket the start-up captures did not reach).
  std::printf("Decode graphs captured while running: %lld\n", static_cast<long long>(late_captures));
  if (!f.output_json.empty()) {
    nlohmann::ordered_json j;
    j["elapsed_time"] = elapsed, j["num_requests"] = streams.size(), j["total_num_tokens"] = prompt_tokens + output_tokens;
    j["requests_per_second"] = n / elapsed, j["tokens_per_second"] = (prompt_tokens + output_tokens) / elapsed;
    j["output_tokens_per_second"] = output_tokens / elapsed;
    j["steps"] = steps, j["mean_batch_size"] = mean_batch, j["mean_host_ms_per_step"] = host_ms;
    j["prefix_cache_hit_rate"] = hit_rate;
    j["mean_device_ms_per_step"] = device_ms, j["async_scheduling"] = engine->config().async_scheduling;
    j["overlapped_steps"] = overlapped;
    j["decode_steps"] = decode_steps, j["decode_mean_batch_size"] = decode_batch;
    j["decode_host_ms_per_step"] = decode_host_ms, j["decode_device_ms_per_step"] = decode_device_ms;
    j["prefill_steps"] = mixed_steps, j["prefill_device_ms_per_step"] = mixed_device_ms;
    j["late_graph_captures"] = late_captures;
    TK_ASSIGN_OR_RETURN(auto out, OutputFile::open(f.output_json, "--output-json"));
    TK_RETURN_IF_ERROR(out->write(j.dump(2) + "\n"));
    TK_RETURN_IF_ERROR(out->commit());
  }
  return Status::ok_status();
}

}  // namespace

void add_dataset_flags(CLI::App& app, DatasetFlags& d, bool serve) {
  app.add_option("--dataset-name", d.name, "random or sharegpt")->check(CLI::IsMember({"random", "sharegpt"}))->capture_default_str();
  app.add_option("--dataset-path", d.path, "a ShareGPT JSON file");
  add_int(app, serve ? "--random-input-len,--input-len" : "--input-len,--random-input-len", d.input_len,
          "prompt tokens (random)", 1, 1 << 24)
      ->default_str(std::to_string(d.input_len));
  add_int(app, serve ? "--random-output-len,--output-len" : "--output-len,--random-output-len", d.output_len,
          "output tokens (random)", 1, 1 << 24)
      ->default_str(std::to_string(d.output_len));
  add_real(app, "--range-ratio,--random-range-ratio", d.range_ratio, "lengths uniform in [len*(1-r), len*(1+r)]",
           RealRange{0, 1, false, true});
  add_int(app, "--prefix-len,--random-prefix-len", d.prefix_len, "tokens every random prompt starts with", 0, 1 << 24);
  add_int(app, "--num-prompts", d.num_prompts, "requests", 1, 10'000'000)->default_str(std::to_string(d.num_prompts));
  add_int(app, "--seed", d.seed, "dataset seed")->default_str(std::to_string(d.seed));
}

Command add_bench_throughput(CLI::App& bench) {
  auto f = std::make_shared<ThroughputFlags>();
  CLI::App* app = bench.add_subcommand("throughput", "offline throughput through the engine loop (vLLM's bench throughput)");
  app->add_option("--model,-m", f->engine.model, "Hugging Face model directory");
  app->add_option("--model-config", f->engine.model_config, "or a built-in configuration: " + builtin_model_names_text());
  app->add_flag("--random-weights", f->random_weights, "random weights for --model-config");
  app->add_option("--tokenizer", f->engine.tokenizer, "tokenizer directory (sharegpt prompts)");
  // vLLM's offline defaults on large GPUs (LLM(): 1024 sequences, 16384 tokens per step).
  f->engine.max_num_seqs = 1024, f->engine.max_num_batched_tokens = 16384;
  add_engine_flags(*app, f->engine, kSizingFlags);
  add_dataset_flags(*app, f->data, false);
  app->add_option("--output-json", f->output_json, "write the figures as JSON");
  return {app, [f] { return run_throughput(*f); }};
}

}  // namespace tk::cli
