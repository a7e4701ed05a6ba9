// The prompts of the serving benchmarks, as vLLM's `bench throughput` and `bench serve` make them:
// random token ids (lengths spread by --range-ratio, an optional shared prefix), or the first turn
// of ShareGPT conversations with the reply's length as the output length.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli.h"
#include "core/core.h"
#include "tokenizer/tokenizer.h"

namespace tk::cli {

struct DatasetFlags {
  std::string name = "random";  // random | sharegpt
  std::string path;             // the ShareGPT JSON file
  int input_len = 1024;
  int output_len = 128;
  double range_ratio = 0.0;     // lengths uniform in [len * (1 - r), len * (1 + r)]
  int prefix_len = 0;           // random: tokens every prompt starts with
  int num_prompts = 1000;
  uint64_t seed = 0;
};

struct BenchPrompt {
  std::vector<int32_t> ids;
  std::string text;  // decoded (what a remote server is sent), when a tokenizer is given
  int output_len = 0;
};

// `tokenizer` may be null for random ids sent as ids (in-process); sharegpt needs it.
Result<std::vector<BenchPrompt>> make_dataset(const DatasetFlags& flags, const Tokenizer* tokenizer, int64_t vocab);

// The dataset flags (vLLM's names; bench serve's spelling --random-input-len first).
void add_dataset_flags(CLI::App& app, DatasetFlags& flags, bool serve);
// `bench throughput` and `bench serve`, registered under `bench`.
Command add_bench_throughput(CLI::App& bench);
Command add_bench_serve(CLI::App& bench);

}  // namespace tk::cli
