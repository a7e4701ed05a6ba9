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

// The engine flags (vLLM's names), bound straight to the engine's config so that their defaults
// are the engine's. `model_flags`: also --model (required) and --tokenizer.
void add_engine_flags(CLI::App& app, EngineConfig& config, bool model_flags = true);
// Loads the engine with a progress bar on a terminal (plain log lines otherwise).
Result<std::unique_ptr<Engine>> load_engine(const EngineConfig& config);

// A weight-loading progress printer: a bar on a terminal, a few log lines otherwise.
LoadProgress make_progress_printer();

}  // namespace tk::cli
