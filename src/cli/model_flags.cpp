// Flags shared by the commands that load a model, and the weight-loading progress bar.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

#include "cli.h"

namespace tk::cli {

void add_engine_flags(CLI::App& app, EngineConfig& c, bool model_flags) {
  if (model_flags) {
    app.add_option("--model,-m", c.model, "Hugging Face model directory")->required();
    app.add_option("--tokenizer", c.tokenizer, "tokenizer directory (default: the model's)");
  }
  const std::map<std::string, DeviceChoice> devices = {
      {"auto", DeviceChoice::kAuto}, {"cpu", DeviceChoice::kCpu}, {"cuda", DeviceChoice::kCuda}};
  const std::map<std::string, DTypeChoice> dtypes = {{"auto", DTypeChoice::kAuto},     {"bfloat16", DTypeChoice::kBFloat16},
                                                     {"bf16", DTypeChoice::kBFloat16}, {"float16", DTypeChoice::kFloat16},
                                                     {"fp16", DTypeChoice::kFloat16},  {"half", DTypeChoice::kFloat16}};
  app.add_option("--device", c.device, "cpu, cuda or auto (the GPU when present)")
      ->transform(CLI::CheckedTransformer(devices, CLI::ignore_case))
      ->default_str(device_choice_name(c.device));
  app.add_option("--dtype", c.dtype, "GPU dtype: auto (bfloat16), bfloat16 or float16")
      ->transform(CLI::CheckedTransformer(dtypes, CLI::ignore_case))
      ->default_str(dtype_choice_name(c.dtype));
  app.add_option("--max-model-len", c.max_model_len, "context length (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--threads,-t", c.num_threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--page-size,--block-size", c.page_size, "KV cache page size in tokens")
      ->check(CLI::IsMember(std::vector<int>(kSupportedPageSizes.begin(), kSupportedPageSizes.end())))
      ->capture_default_str();
  app.add_option("--max-num-seqs", c.max_num_seqs, "sequences per step")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-num-batched-tokens", c.max_num_batched_tokens, "tokens per step")
      ->check(CLI::Range(16, 1 << 20))
      ->capture_default_str();
  app.add_option("--gpu-memory-utilization", c.gpu_memory_utilization,
                 "fraction of the GPU's total memory for weights, activations and the KV cache")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  app.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", c.enable_prefix_caching,
               "reuse the KV pages of earlier prompts' common prefixes (default: on)");
  app.add_flag("--enforce-eager", c.enforce_eager, "never replay CUDA graphs");
}

Result<std::unique_ptr<Engine>> load_engine(const EngineConfig& c) { return Engine::create(c, make_progress_printer()); }

LoadProgress make_progress_printer() {
  const bool tty = isatty(STDERR_FILENO) != 0;
  const double start = now_seconds();
  auto last_quarter = std::make_shared<int>(-1);
  auto last_draw = std::make_shared<double>(0.0);
  return [=](size_t done, size_t total, const std::string& file) {
    const double secs = std::max(now_seconds() - start, 1e-6);
    const double frac = total ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
    const double mb = static_cast<double>(done) / 1e6, total_mb = static_cast<double>(total) / 1e6;
    std::string name = file.substr(file.find_last_of('/') + 1);
    if (tty) {
      if (done < total && now_seconds() - *last_draw < 0.05) return;
      *last_draw = now_seconds();
      const int width = 30, filled = static_cast<int>(frac * width);
      std::fprintf(stderr, "\rloading %s [%s%s] %5.1f%% %.1f/%.1f MB %.0f MB/s", name.c_str(),
                   std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(), frac * 100, mb,
                   total_mb, mb / secs);
      if (done >= total) std::fprintf(stderr, "\n");
    } else {
      int quarter = static_cast<int>(frac * 4);
      if (quarter == *last_quarter) return;
      *last_quarter = quarter;
      std::fprintf(stderr, "[tokamak info] loading weights: %s %.1f/%.1f MB (%.0f%%, %.0f MB/s)\n", name.c_str(), mb,
                   total_mb, frac * 100, mb / secs);
    }
  };
}

}  // namespace tk::cli
