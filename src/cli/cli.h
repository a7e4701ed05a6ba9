// tokamak cli: the `tokamak` subcommands. Flags are parsed only here (and in the server), with
// the names vLLM and llama.cpp users already type.
#pragma once

#include <functional>
#include <string>

#include "core/core.h"
#include "engine/engine.h"

namespace CLI {
class App;
}

namespace tk::cli {

// Each subcommand registers its flags on `app` and returns the function that runs it.
struct Command {
  CLI::App* app = nullptr;
  std::function<Status()> run;
};

Command add_generate(CLI::App& parent);
Command add_perplexity(CLI::App& parent);
Command add_tokenize(CLI::App& parent);
Command add_bench(CLI::App& parent);
Command add_chat_template(CLI::App& parent);
Command add_serve(CLI::App& parent);

// The engine flags (vLLM's names), bound straight to the engine's config so that their defaults
// are the engine's, and --quiet. kModelFlags: --model (required) and --tokenizer; kSizingFlags:
// --max-model-len, --max-num-seqs, --max-num-batched-tokens (a command that derives them from its
// own flags leaves them out); kLlamaAliases: -c/--ctx-size for --max-model-len.
enum EngineFlagSet : unsigned { kModelFlags = 1, kSizingFlags = 2, kLlamaAliases = 4 };
void add_engine_flags(CLI::App& app, EngineConfig& config, unsigned which = kModelFlags | kSizingFlags);
// --quiet, -q: no loading lines or figures (log level warning).
void add_quiet_flag(CLI::App& app);
// Loads the engine with a progress bar on a terminal (plain log lines otherwise).
Result<std::unique_ptr<Engine>> load_engine(const EngineConfig& config);

// A weight-loading progress printer: a bar on a terminal, a few log lines otherwise.
LoadProgress make_progress_printer();

}  // namespace tk::cli
