// `tokamak bench`: benchmarks that need no checkpoint.
//   kernels  every GPU kernel against the ceilings measured on the same device (bench/)
//   latency  time to first token and decode tokens/s of a whole model, e.g. a built-in
//            configuration with random weights made on the device
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <random>

#include "bench_dataset.h"
#include "cli.h"
#include "flags.h"
#include "output.h"
#ifdef TOKAMAK_WITH_CUDA
#include "bench/bench.h"
#endif

namespace tk::cli {
namespace {

constexpr int64_t kMaxPrefillTokens = 16384;  // tokens per step; a larger batch x prompt prefills in chunks

struct LatencyFlags {
  EngineConfig engine;
  bool random_weights = false;
  int prompt_len = 128, gen_len = 256, batch = 1, iters = 2, prefix_len = 0;
  std::string json_schema;  // a file: every sequence decodes under this schema (structured output)
  std::shared_ptr<const grammar::CompiledGrammar> grammar;
};

struct LatencyResult {
  double ttft_s = 0, decode_s = 0;
  int decode_tokens = 0;
  int decode_steps = 0;  // the longest sequence's decode tokens (a grammar may end others earlier)
};

// A batch of random prompts (sharing their first prefix_len tokens) through the engine loop:
// prefill in one step, then greedy decode to gen_len tokens each.
Result<LatencyResult> run_once(Engine& engine, const LatencyFlags& f, const std::vector<int32_t>& prefix, uint32_t seed) {
  std::mt19937 rng(seed);
  SamplingParams greedy;
  greedy.temperature = 0.f, greedy.max_tokens = f.gen_len, greedy.ignore_eos = true;
  greedy.grammar = f.grammar;  // a complete grammar ends its sequence, ignore_eos or not
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
  for (auto& stream : streams) {
    int tokens = 0;
    for (std::vector<RequestOutput> outs; !(outs = stream->next()).empty();)
      for (const RequestOutput& o : outs) {
        if (o.finish == FinishReason::kError) return internal_error(o.error);
        tokens += static_cast<int>(o.token_ids.size());
        if (o.finished()) first = std::max(first, o.first_token_time);
      }
    r.decode_tokens += tokens - 1;  // each sequence's first token came with the prefill
    r.decode_steps = std::max(r.decode_steps, tokens - 1);
  }
  r.ttft_s = first - start;
  r.decode_s = now_seconds() - first;
  return r;
}

// The model's context, for checking --prompt-len + --gen-len before anything loads.
Result<std::pair<int64_t, std::string>> model_context(const EngineConfig& c) {
  if (!c.model_config.empty()) {
    TK_ASSIGN_OR_RETURN(ModelConfig m, builtin_model_config(c.model_config));
    return std::pair{m.max_position_embeddings, "--model-config " + c.model_config};
  }
  if (!is_directory(c.model)) return not_found("--model " + c.model + ": not a model directory");
  TK_ASSIGN_OR_RETURN(ModelConfig m, load_model_config(c.model));
  return std::pair{m.max_position_embeddings, join_path(c.model, "config.json")};
}

Status run_latency(LatencyFlags f) {
  if (f.engine.model.empty() == f.engine.model_config.empty())
    return invalid_argument("give --model DIR or --model-config NAME --random-weights (one of them)");
  if (!f.engine.model_config.empty() && !f.random_weights) return invalid_argument("--model-config needs --random-weights");
  if (!f.engine.model.empty() && f.random_weights)
    return invalid_argument("--random-weights is for --model-config; --model loads the checkpoint's weights");
  if (f.prefix_len >= f.prompt_len) return invalid_argument("--prefix-len must be below --prompt-len");
  TK_ASSIGN_OR_RETURN(auto context, model_context(f.engine));
  const int64_t seq_len = static_cast<int64_t>(f.prompt_len) + f.gen_len;
  if (seq_len > context.first)
    return invalid_argument("--prompt-len " + std::to_string(f.prompt_len) + " + --gen-len " + std::to_string(f.gen_len) +
                            " = " + std::to_string(seq_len) + " tokens: longer than the model's context, " +
                            std::to_string(context.first) + " (max_position_embeddings of " + context.second + ")");
  EngineConfig& c = f.engine;
  c.max_num_seqs = f.batch;
  // The batch's prompts in one step, or in chunks of kMaxPrefillTokens.
  c.max_num_batched_tokens = static_cast<int>(std::clamp<int64_t>(static_cast<int64_t>(f.batch) * f.prompt_len, 16, kMaxPrefillTokens));
  c.max_model_len = static_cast<int>(seq_len);
  // Room for the batch and the cached prefix, not more: a benchmark's cache is not its subject.
  const int64_t page = c.page_size, pages_per_seq = (c.max_model_len + page - 1) / page;
  c.kv_cache_tokens = (f.batch * pages_per_seq + (f.prefix_len + page - 1) / page) * page;
  const std::string sizing = "--batch " + std::to_string(f.batch) + " --prompt-len " + std::to_string(f.prompt_len) +
                             " --gen-len " + std::to_string(f.gen_len) + " (--max-num-seqs " +
                             std::to_string(c.max_num_seqs) + ", --max-num-batched-tokens " +
                             std::to_string(c.max_num_batched_tokens) + ", --max-model-len " +
                             std::to_string(c.max_model_len) + ", " + std::to_string(c.kv_cache_tokens) + " KV tokens)";
  auto loaded = load_engine(c);
  // An error about a size this command chose names the flags it chose it from.
  const std::string& error = loaded.ok() ? std::string() : loaded.status().message();
  for (const char* derived : {"--max-num-seqs ", "--max-num-batched-tokens ", "--max-model-len ", "kv_cache_tokens "})
    if (error.rfind(derived, 0) == 0) return loaded.status().with_context(sizing);
  TK_ASSIGN_OR_RETURN(auto engine, std::move(loaded));
  double compile_ms = 0;
  if (!f.json_schema.empty()) {
    if (!engine->has_tokenizer()) return invalid_argument("--json-schema needs the model's tokenizer (--tokenizer DIR)");
    TK_ASSIGN_OR_RETURN(std::string schema, read_text_file(f.json_schema));
    TK_ASSIGN_OR_RETURN(auto vocab, grammar_vocabulary(engine->tokenizer(), engine->eos_token_ids(),
                                                       engine->model_config().vocab_size));
    const double t0 = now_seconds();
    auto g = grammar::json_schema_to_grammar(schema);
    if (!g.ok()) return g.status().with_context("--json-schema " + f.json_schema);
    // Every token table now, as the server's cache fills them in the background after a compile:
    // the timed decode pays only for masks.
    grammar::CompileOptions options;
    options.precompute = true;
    TK_ASSIGN_OR_RETURN(f.grammar, grammar::CompiledGrammar::compile(*g, vocab, options));
    compile_ms = (now_seconds() - t0) * 1e3;
  }
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
  char line[512];
  std::snprintf(line, sizeof(line),
                "%s %s: batch %d, prompt %d, generated %d: time to first token %.2f ms, decode %.1f tokens/s "
                "(%.2f ms/step)\n",
                c.model.empty() ? c.model_config.c_str() : c.model.c_str(), engine->backend_name().c_str(), f.batch,
                f.prompt_len, f.gen_len, best.ttft_s * 1e3, tps, best.decode_s / std::max(1, best.decode_steps) * 1e3);
  TK_RETURN_IF_ERROR(write_stdout(line));
  if (f.grammar) {
    // Sequences end when the schema's JSON is complete: ms/step is over the longest one's steps.
    std::snprintf(line, sizeof(line),
                  "json schema %s: compiled (every token table) in %.2f ms; %.1f decode tokens per sequence (longest %d); mask %.1f us "
                  "per token on average (%lld masks, host time overlapped with the forward)\n",
                  f.json_schema.c_str(), compile_ms, static_cast<double>(best.decode_tokens) / f.batch, best.decode_steps,
                  stats.grammar_masks > 0 ? stats.grammar_mask_seconds / static_cast<double>(stats.grammar_masks) * 1e6 : 0.0,
                  static_cast<long long>(stats.grammar_masks));
    TK_RETURN_IF_ERROR(write_stdout(line));
  }
  if (f.prefix_len > 0) {
    std::snprintf(line, sizeof(line), "prefix %d tokens, prefix caching %s: %lld of %lld prompt tokens served from the cache\n",
                  f.prefix_len, c.enable_prefix_caching ? "on" : "off", static_cast<long long>(stats.prefix_cache.hits),
                  static_cast<long long>(stats.prefix_cache.queries));
    TK_RETURN_IF_ERROR(write_stdout(line));
  }
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
  CLI::App* app = parent.add_subcommand("bench", "benchmarks (kernels, latency, throughput, serve)");
  app->require_subcommand(0, 1);
  auto kf = std::make_shared<std::pair<std::string, bool>>();
  CLI::App* kernels = app->add_subcommand("kernels", "time every GPU kernel against the device's ceilings");
  kernels->add_flag("--json", kf->second, "print JSON instead of a table");
  kernels->add_option("--filter", kf->first, "only suites whose name contains this (rowwise, decode, prefill, gemm)")
      ->type_name("TEXT");
  auto lf = std::make_shared<LatencyFlags>();
  CLI::App* latency = app->add_subcommand("latency", "time to first token and decode tokens/s");
  latency->add_option("--model-config", lf->engine.model_config, "built-in configuration: " + builtin_model_names_text())
      ->type_name("NAME");
  latency->add_flag("--random-weights", lf->random_weights, "random weights made on the device (no checkpoint)");
  latency->add_option("--model,-m", lf->engine.model, "or a Hugging Face model directory")->type_name("DIR");
  latency->add_option("--tokenizer", lf->engine.tokenizer, "tokenizer directory (--json-schema with --model-config)")
      ->type_name("DIR");
  // --max-num-seqs, --max-num-batched-tokens and --max-model-len follow from the flags below.
  add_engine_flags(*latency, lf->engine, 0);
  add_int(*latency, "--prompt-len", lf->prompt_len, "prompt tokens", 1, 1 << 20)->default_str(std::to_string(lf->prompt_len));
  add_int(*latency, "--gen-len", lf->gen_len, "generated tokens", 2, 1 << 20)->default_str(std::to_string(lf->gen_len));
  add_int(*latency, "--batch", lf->batch,
          "sequences (--max-num-seqs); their prompts prefill in one step, in chunks of 16384 tokens beyond", 1, 4096)
      ->default_str(std::to_string(lf->batch));
  add_int(*latency, "--prefix-len", lf->prefix_len, "leading prompt tokens shared by every request (prefix cache)", 0)
      ->default_str(std::to_string(lf->prefix_len));
  add_int(*latency, "--iters", lf->iters, "timed runs after the warm-up run", 1, 100)->default_str(std::to_string(lf->iters));
  latency->add_option("--json-schema", lf->json_schema,
                      "decode every sequence under this JSON schema (structured output; needs the tokenizer)")
      ->type_name("FILE");
  const Command throughput = add_bench_throughput(*app), serve = add_bench_serve(*app);
  return {app, [=]() -> Status {
            if (kernels->parsed()) return run_kernels(kf->first, kf->second);
            if (latency->parsed()) return run_latency(*lf);
            if (throughput.app->parsed()) return throughput.run();
            if (serve.app->parsed()) return serve.run();
            return write_stdout(app->help("tokamak"));  // bare `tokamak bench`: its usage
          }};
}

}  // namespace tk::cli
