// Flags shared by the commands that load a model, and the weight-loading progress bar.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cli.h"

namespace tk::cli {

void add_model_flags(CLI::App& app, ModelFlags& f) {
  app.add_option("--model,-m", f.model, "Hugging Face model directory")->required();
  app.add_option("--device", f.device, "cpu, cuda or auto (the GPU when present)")
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  app.add_option("--dtype", f.dtype, "GPU dtype: auto (bfloat16), bfloat16 or float16")
      ->check(CLI::IsMember({"auto", "bfloat16", "float16", "bf16", "fp16"}));
  app.add_option("--max-model-len", f.max_model_len, "context length (default: the model's)")->check(CLI::NonNegativeNumber);
  app.add_option("--threads,-t", f.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  app.add_option("--page-size", f.page_size, "KV cache page size in tokens")->check(CLI::IsMember({1, 8, 16, 32, 64}));
  app.add_option("--max-num-seqs", f.max_num_seqs, "sequences per step")->check(CLI::PositiveNumber);
  app.add_option("--max-num-batched-tokens", f.max_num_batched_tokens, "tokens per step")->check(CLI::Range(16, 1 << 20));
  app.add_option("--gpu-memory-utilization", f.gpu_memory_utilization, "share of free GPU memory for the KV cache")
      ->check(CLI::Range(0.01, 1.0));
}

Result<std::unique_ptr<Engine>> load_engine(const ModelFlags& f) {
  EngineConfig c;
  c.model_dir = f.model;
  c.device = f.device;
  c.dtype = f.dtype;
  c.max_model_len = f.max_model_len;
  c.num_threads = f.threads;
  c.page_size = f.page_size;
  c.max_num_seqs = f.max_num_seqs;
  c.max_num_batched_tokens = f.max_num_batched_tokens;
  c.gpu_memory_utilization = f.gpu_memory_utilization;
  return Engine::create(c, make_progress_printer());
}

ProgressSink make_progress_printer() {
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
