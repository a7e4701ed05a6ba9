// tokamak cli: the `tokamak` subcommands. Flags are parsed only here (and in the server), with
// the names vLLM and llama.cpp users already type.
#pragma once

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

// Flags shared by commands that load a model.
struct ModelFlags {
  std::string model;
  std::string device = "auto";
  std::string dtype = "auto";
  int max_model_len = 0;
  int threads = 0;
  int page_size = 16;
  int max_num_seqs = 16;
  int max_num_batched_tokens = 2048;
  double gpu_memory_utilization = 0.9;
};
void add_model_flags(CLI::App& app, ModelFlags& flags);
// Loads the engine with a progress bar on a terminal (plain log lines otherwise).
Result<std::unique_ptr<Engine>> load_engine(const ModelFlags& flags);

// A weight-loading progress printer: a bar on a terminal, a few log lines otherwise.
ProgressSink make_progress_printer();

}  // namespace tk::cli
