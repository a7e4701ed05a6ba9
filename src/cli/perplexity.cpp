// `tokamak perplexity`: llama.cpp's method. The text is tokenized once (with BOS when the
// tokenizer adds one) and cut into non-overlapping windows of --ctx tokens; each window starts
// with BOS and only its second half is scored, so every scored token has at least ctx/2 tokens
// of context.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "cli.h"
#include "flags.h"
#include "output.h"

namespace tk::cli {
namespace {

struct PerplexityFlags {
  EngineConfig engine;
  std::string file;
  int ctx = 512;
  std::string logprobs_out;
};

// Every window is a request for its prompt log-probs from position ctx/2 + 1 on, all submitted at
// once so the engine batches them beside each other.
Result<std::vector<std::vector<float>>> score_windows(Engine& engine, const std::vector<std::vector<int32_t>>& windows,
                                                      int first) {
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 1, p.ignore_eos = true, p.prompt_logprobs_from = first + 1;
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (const auto& w : windows) {
    TK_ASSIGN_OR_RETURN(auto stream, engine.loop().add(w, p));
    streams.push_back(std::move(stream));
  }
  std::vector<std::vector<float>> scores(windows.size());
  for (size_t i = 0; i < windows.size(); ++i)
    for (std::vector<RequestOutput> outs; !(outs = streams[i]->next()).empty();)
      for (const RequestOutput& o : outs) {
        if (o.finish == FinishReason::kError) return internal_error(o.error);
        scores[i].insert(scores[i].end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
      }
  return scores;
}

Status run_perplexity(const PerplexityFlags& f) {
  TK_ASSIGN_OR_RETURN(std::string text, read_input(f.file));
  TK_RETURN_IF_ERROR(check_utf8(text, f.file == "-" ? "stdin" : f.file));
  std::unique_ptr<OutputFile> out;  // opened first: a bad path fails before the model loads
  if (!f.logprobs_out.empty()) {
    TK_ASSIGN_OR_RETURN(out, OutputFile::open(f.logprobs_out, "--logprobs-out"));
  }
  EngineConfig config = f.engine;
  // Each window is a request's prompt, which may fill the context (the token it generates after
  // it is never computed).
  if (!is_directory(config.model)) return not_found("--model " + config.model + ": not a model directory");
  TK_ASSIGN_OR_RETURN(const ModelConfig shape, load_model_config(config.model));
  const int64_t model_context = shape.max_position_embeddings;
  if (config.max_model_len == 0) config.max_model_len = static_cast<int>(std::min<int64_t>(f.ctx + 1, model_context));
  if (config.max_model_len < f.ctx)
    return invalid_argument("--ctx " + std::to_string(f.ctx) + ": longer than the context, " +
                            std::to_string(config.max_model_len) +
                            (f.engine.max_model_len ? " (--max-model-len)"
                                                    : " (max_position_embeddings of " + join_path(config.model, "config.json") + ")"));
  TK_ASSIGN_OR_RETURN(auto engine, load_engine(config));
  TK_ASSIGN_OR_RETURN(std::vector<int32_t> tokens, engine->tokenizer().encode(text, true));
  TK_ASSIGN_OR_RETURN(std::vector<int32_t> with_bos, engine->tokenizer().encode("", true));
  const bool add_bos = !with_bos.empty();  // the tokenizer adds BOS: every window starts with it
  const int n_chunk = static_cast<int>(tokens.size()) / f.ctx;
  if (n_chunk < 1)
    return invalid_argument(f.file + ": " + std::to_string(tokens.size()) + " tokens, fewer than one window of --ctx " +
                            std::to_string(f.ctx));
  std::vector<std::vector<int32_t>> windows;
  for (int c = 0; c < n_chunk; ++c) {
    windows.emplace_back(tokens.begin() + static_cast<int64_t>(c) * f.ctx, tokens.begin() + static_cast<int64_t>(c + 1) * f.ctx);
    if (add_bos) windows.back()[0] = with_bos[0];
  }
  const int first = f.ctx / 2;
  if (log_level() <= LogLevel::kInfo)
    std::fprintf(stderr, "perplexity: %zu tokens, %d windows of %d, scoring the second half of each\n", tokens.size(),
               n_chunk, f.ctx);
  TK_ASSIGN_OR_RETURN(auto scores, score_windows(*engine, windows, first));
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  std::string progress;
  for (int c = 0; c < n_chunk; ++c) {
    const std::vector<float>& lp = scores[c];
    std::ostringstream lines;
    for (size_t j = 0; j < lp.size(); ++j) {
      nll -= lp[j];
      nll2 += static_cast<double>(lp[j]) * lp[j];
      ++count;
      lines << "{\"window\":" << c << ",\"pos\":" << first + j + 1 << ",\"id\":" << windows[c][first + j + 1]
            << ",\"logprob\":" << lp[j] << "}\n";
    }
    if (out) TK_RETURN_IF_ERROR(out->write(lines.str()));
    char buf[64];
    std::snprintf(buf, sizeof(buf), "[%d]%.4f,", c + 1, std::exp(nll / static_cast<double>(count)));
    progress += buf;
  }
  TK_RETURN_IF_ERROR(write_stdout(progress));
  const double mean = nll / static_cast<double>(count);
  // Standard error of the mean NLL, carried to the perplexity as llama.cpp reports it.
  const double var = nll2 / static_cast<double>(count) - mean * mean;
  const double err = count > 1 ? std::sqrt(std::max(var, 0.0) / static_cast<double>(count - 1)) : 0.0;
  char summary[160];
  std::snprintf(summary, sizeof(summary), "\nFinal estimate: PPL = %.4f +/- %.5f\nmean NLL = %.6f over %lld tokens\n",
                std::exp(mean), std::exp(mean) * err, mean, static_cast<long long>(count));
  TK_RETURN_IF_ERROR(write_stdout(summary, /*flush=*/true));
  return out ? out->commit() : Status::ok_status();
}

}  // namespace

Command add_perplexity(CLI::App& parent) {
  auto f = std::make_shared<PerplexityFlags>();
  CLI::App* app = parent.add_subcommand("perplexity", "perplexity of a text file (llama.cpp's method)");
  add_engine_flags(*app, f->engine);
  app->add_option("--file,-f", f->file, "text file to score ('-' for stdin)")->required()->type_name("FILE");
  add_int(*app, "--ctx,-c", f->ctx, "window length in tokens", 4, 1 << 20)->default_str(std::to_string(f->ctx));
  app->add_option("--logprobs-out", f->logprobs_out,
                  "write each scored token's id and log-probability (JSON lines; '-' for stdout)")
      ->type_name("FILE");
  return {app, [f] { return run_perplexity(*f); }};
}

}  // namespace tk::cli
