// `tokamak generate`: encode the prompt as transformers and vLLM do, stream the generated text
// (not the prompt) to stdout, then one line on stderr: the figures and why generation stopped.
// llama.cpp's spellings (-f, --temp, -s, -c/--ctx-size, --repeat-penalty) are accepted too.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli.h"
#include "flags.h"
#include "output.h"

namespace tk::cli {
namespace {

constexpr int kDefaultMaxTokens = 128;

struct GenerateFlags {
  EngineConfig engine;
  std::optional<std::string> prompt, prompt_file;
  bool chat = false;
  std::optional<int> max_tokens;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int> top_k;
  float presence_penalty = 0.f, frequency_penalty = 0.f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  bool ignore_eos = false;
};

// The prompt text, from --prompt or --prompt-file (stdin for "-"), checked to be UTF-8.
Result<std::string> read_prompt(const GenerateFlags& f) {
  if (f.prompt.has_value() == f.prompt_file.has_value())
    return invalid_argument(f.prompt ? "give --prompt or --prompt-file, not both" : "give --prompt TEXT or --prompt-file FILE");
  std::string where = "--prompt";
  std::string text;
  if (f.prompt) {
    text = *f.prompt;
  } else {
    where = *f.prompt_file == "-" ? "stdin" : *f.prompt_file;
    TK_ASSIGN_OR_RETURN(text, read_input(*f.prompt_file));
  }
  if (text.empty()) return invalid_argument(where + ": the prompt is empty");
  TK_RETURN_IF_ERROR(check_utf8(text, where));
  return text;
}

Result<std::vector<int32_t>> encode_prompt(const Engine& engine, const GenerateFlags& f, const std::string& prompt) {
  if (!f.chat) return engine.tokenizer().encode(prompt, /*add_special_tokens=*/true);
  TK_ASSIGN_OR_RETURN(std::string text, apply_chat_template(engine.tokenizer(), {{"user", prompt}}, true));
  // The template already holds the special tokens (BOS included), as transformers' apply_chat_template.
  return engine.tokenizer().encode(text, /*add_special_tokens=*/false);
}

SamplingParams sampling_params(const Engine& engine, const GenerateFlags& f) {
  SamplingParams p = engine.default_sampling_params();  // generation_config.json first
  if (f.temperature) p.temperature = *f.temperature;
  if (f.top_p) p.top_p = *f.top_p;
  if (f.top_k) p.top_k = *f.top_k < 0 ? 0 : *f.top_k;  // -1: off, as in vLLM
  if (f.min_p) p.min_p = *f.min_p;
  if (f.repetition_penalty) p.repetition_penalty = *f.repetition_penalty;
  p.presence_penalty = f.presence_penalty;
  p.frequency_penalty = f.frequency_penalty;
  p.seed = f.seed;
  // As vLLM: generation_config.json's max_new_tokens is the default.
  p.max_tokens = f.max_tokens.value_or(engine.generation_config().max_new_tokens.value_or(kDefaultMaxTokens));
  p.stop = f.stop;
  p.ignore_eos = f.ignore_eos;
  return p;
}

// Why the sequence ended, for the last line on stderr.
std::string stop_reason(const Engine& engine, const RequestOutput& last, const TextDelta& delta, size_t generated,
                        const SamplingParams& p) {
  if (!delta.stop_string.empty()) return "stop string \"" + delta.stop_string + "\"";
  if (last.finish == FinishReason::kStop && last.stop_token) {
    const int32_t id = *last.stop_token;
    const auto& eos = engine.eos_token_ids();
    const std::string name = engine.tokenizer().id_to_token(id).value_or("");
    const bool is_eos = std::find(eos.begin(), eos.end(), id) != eos.end();
    return std::string(is_eos ? "end of sequence" : "stop token") + " (token " + std::to_string(id) +
           (name.empty() ? "" : " " + name) + ")";
  }
  if (last.finish == FinishReason::kLength) {
    if (generated >= static_cast<size_t>(p.max_tokens)) return "max tokens (" + std::to_string(p.max_tokens) + ")";
    return "context limit (--max-model-len " + std::to_string(engine.config().max_model_len) + ")";
  }
  return finish_reason_name(last.finish);
}

Status run_generate(const GenerateFlags& f) {
  TK_ASSIGN_OR_RETURN(const std::string prompt_text, read_prompt(f));
  TK_ASSIGN_OR_RETURN(auto engine, load_engine(f.engine));
  TK_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, encode_prompt(*engine, f, prompt_text));
  const size_t prompt_tokens = prompt.size();
  const SamplingParams params = sampling_params(*engine, f);
  OutputProcessor text(engine->tokenizer(), params, prompt);
  const double start = now_seconds();
  TK_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream, engine->loop().add(std::move(prompt), params));
  double first_token = 0;
  size_t generated = 0;
  std::string error, reason;
  for (std::vector<RequestOutput> outputs; !(outputs = stream->next()).empty();) {
    for (const RequestOutput& o : outputs) {
      if (text.finished()) break;  // a stop string ended it; the engine is catching up
      if (generated == 0 && !o.token_ids.empty()) first_token = now_seconds();
      generated += o.token_ids.size();
      const TextDelta d = text.process(o);
      if (Status written = write_stdout(d.text, /*flush=*/true); !written.ok()) {
        stream->abort();  // nobody reads what follows
        return written;
      }
      if (o.finish == FinishReason::kError) error = o.error;
      if (text.finished()) reason = stop_reason(*engine, o, d, generated, params);
      if (text.finished() && !o.finished()) stream->abort();
    }
  }
  if (!error.empty()) return internal_error(error);
  const double end = now_seconds();
  TK_RETURN_IF_ERROR(write_stdout("\n", /*flush=*/true));
  const double decode_tps = generated > 1 ? static_cast<double>(generated - 1) / (end - first_token) : 0.0;
  if (log_level() <= LogLevel::kInfo)
    std::fprintf(stderr,
                 "prompt tokens: %zu, generated tokens: %zu, stopped by: %s, time to first token: %.1f ms, "
                 "decode: %.1f tokens/s (%s)\n",
                 prompt_tokens, generated, reason.c_str(), (first_token - start) * 1e3, decode_tps,
                 engine->backend_name().c_str());
  return Status::ok_status();
}

}  // namespace

Command add_generate(CLI::App& parent) {
  auto f = std::make_shared<GenerateFlags>();
  CLI::App* app = parent.add_subcommand("generate", "generate text from a prompt, streamed to stdout");
  add_engine_flags(*app, f->engine, kModelFlags | kSizingFlags | kLlamaAliases);
  app->add_option("--prompt,-p", f->prompt, "the prompt text");
  app->add_option("--prompt-file,-f", f->prompt_file, "read the prompt from a file, '-' for stdin")->type_name("FILE");
  app->add_flag("--chat", f->chat, "apply the checkpoint's chat template to the prompt (one user turn)");
  add_int(*app, "--max-tokens,-n", f->max_tokens, "tokens to generate at most", 1)
      ->default_str("generation_config.json's max_new_tokens, else " + std::to_string(kDefaultMaxTokens));
  add_real(*app, "--temperature,--temp", f->temperature, "0 = greedy", {0, 100})
      ->default_str("generation_config.json, else 1");
  add_real(*app, "--top-p", f->top_p, "nucleus sampling: keep the most likely tokens up to this mass, in (0, 1]",
           {0, 1, true, false})
      ->default_str("generation_config.json, else 1 = off");
  add_int(*app, "--top-k", f->top_k, "keep the k most likely tokens (-1 or 0 = off)", -1)
      ->default_str("generation_config.json, else off");
  add_real(*app, "--min-p", f->min_p, "drop tokens below min_p x the top probability, in [0, 1]", {0, 1})
      ->default_str("generation_config.json, else 0 = off");
  add_real(*app, "--repetition-penalty,--repeat-penalty", f->repetition_penalty,
           "penalise tokens already seen, in (0, 10] (1 = off)", {0, 10, true, false})
      ->default_str("generation_config.json, else 1");
  add_real(*app, "--presence-penalty", f->presence_penalty, "OpenAI presence penalty, in [-2, 2]", {-2, 2})
      ->default_str("0");
  add_real(*app, "--frequency-penalty", f->frequency_penalty, "OpenAI frequency penalty, in [-2, 2]", {-2, 2})
      ->default_str("0");
  add_int(*app, "--seed,-s", f->seed, "sampling seed, 0 to 2^64-1: the same seed gives the same tokens")
      ->default_str("random");
  app->add_option("--stop", f->stop, "stop string (not emitted); repeatable")->type_name("TEXT");
  app->add_flag("--ignore-eos", f->ignore_eos, "keep generating past the end-of-sequence token");
  return {app, [f] { return run_generate(*f); }};
}

}  // namespace tk::cli
