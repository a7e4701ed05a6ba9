// `tokamak generate`: encode the prompt as transformers and vLLM do, stream the generated text
// (not the prompt) to stdout, then one line of figures on stderr.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli.h"

namespace tk::cli {
namespace {

struct GenerateFlags {
  EngineConfig engine;
  std::string prompt;
  bool chat = false;
  int max_tokens = 128;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
  float presence_penalty = 0.f, frequency_penalty = 0.f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

Result<std::vector<int32_t>> encode_prompt(const Engine& engine, const GenerateFlags& f) {
  if (f.prompt.empty()) return invalid_argument("--prompt is empty");
  if (!f.chat) return engine.tokenizer().encode(f.prompt, /*add_special_tokens=*/true);
  TK_ASSIGN_OR_RETURN(std::string text, apply_chat_template(engine.tokenizer(), {{"user", f.prompt}}, true));
  // The template already holds the special tokens (BOS included), as transformers' apply_chat_template.
  return engine.tokenizer().encode(text, /*add_special_tokens=*/false);
}

SamplingParams sampling_params(const Engine& engine, const GenerateFlags& f) {
  SamplingParams p = engine.default_sampling_params();  // generation_config.json first
  if (f.temperature) p.temperature = *f.temperature;
  if (f.top_p) p.top_p = *f.top_p;
  if (f.top_k) p.top_k = *f.top_k;
  if (f.min_p) p.min_p = *f.min_p;
  if (f.repetition_penalty) p.repetition_penalty = *f.repetition_penalty;
  p.presence_penalty = f.presence_penalty;
  p.frequency_penalty = f.frequency_penalty;
  p.seed = f.seed;
  p.max_tokens = f.max_tokens;
  p.stop = f.stop;
  p.ignore_eos = f.ignore_eos;
  return p;
}

Status run_generate(const GenerateFlags& f) {
  if (f.prompt.empty()) return invalid_argument("--prompt is empty");
  TK_ASSIGN_OR_RETURN(auto engine, load_engine(f.engine));
  TK_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, encode_prompt(*engine, f));
  const size_t prompt_tokens = prompt.size();
  const SamplingParams params = sampling_params(*engine, f);
  OutputProcessor text(engine->tokenizer(), params, prompt);
  const double start = now_seconds();
  TK_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream, engine->loop().add(std::move(prompt), params));
  double first_token = 0;
  size_t generated = 0;
  std::string error;
  for (std::vector<RequestOutput> outputs; !(outputs = stream->next()).empty();) {
    for (const RequestOutput& o : outputs) {
      if (text.finished()) break;  // a stop string ended it; the engine is catching up
      if (generated == 0 && !o.token_ids.empty()) first_token = now_seconds();
      generated += o.token_ids.size();
      const TextDelta d = text.process(o);
      std::fwrite(d.text.data(), 1, d.text.size(), stdout);
      std::fflush(stdout);
      if (o.finish == FinishReason::kError) error = o.error;
      if (text.finished() && !o.finished()) stream->abort();
    }
  }
  if (!error.empty()) return internal_error(error);
  const double end = now_seconds();
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const double decode_tps = generated > 1 ? static_cast<double>(generated - 1) / (end - first_token) : 0.0;
  std::fprintf(stderr, "prompt tokens: %zu, generated tokens: %zu, time to first token: %.1f ms, decode: %.1f tokens/s (%s)\n",
               prompt_tokens, generated, (first_token - start) * 1e3, decode_tps, engine->backend_name().c_str());
  return Status::ok_status();
}

}  // namespace

Command add_generate(CLI::App& parent) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* app = parent.add_subcommand("generate", "generate text from a prompt, streamed to stdout");
  add_engine_flags(*app, f->engine);
  app->add_option("--prompt,-p", f->prompt, "the prompt text")->required();
  app->add_flag("--chat", f->chat, "apply the checkpoint's chat template to the prompt (one user turn)");
  app->add_option("--max-tokens,-n", f->max_tokens, "tokens to generate at most")->check(CLI::PositiveNumber);
  app->add_option("--temperature", f->temperature, "0 = greedy (default: generation_config.json, else 1)")
      ->check(CLI::Range(0.0, 100.0));
  app->add_option("--top-p", f->top_p, "nucleus sampling mass")->check(CLI::Range(0.0, 1.0));
  app->add_option("--top-k", f->top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  app->add_option("--min-p", f->min_p, "drop tokens below min_p x the top probability")->check(CLI::Range(0.0, 1.0));
  app->add_option("--repetition-penalty", f->repetition_penalty, "penalise tokens already seen (1 = off)")
      ->check(CLI::Range(0.01, 10.0));
  app->add_option("--presence-penalty", f->presence_penalty, "OpenAI presence penalty")->check(CLI::Range(-2.0, 2.0));
  app->add_option("--frequency-penalty", f->frequency_penalty, "OpenAI frequency penalty")->check(CLI::Range(-2.0, 2.0));
  app->add_option("--seed", f->seed, "sampling seed: the same seed gives the same tokens");
  app->add_option("--stop", f->stop, "stop string (not emitted); repeatable");
  app->add_flag("--ignore-eos", f->ignore_eos, "keep generating past the end-of-sequence token");
  return {app, [f] { return run_generate(*f); }};
}

}  // namespace tk::cli
