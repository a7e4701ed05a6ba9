// Flags shared by the commands that load a model, and the weight-loading progress bar.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <algorithm>

#include "cli.h"
#include "flags.h"

namespace tk::cli {

void add_engine_flags(CLI::App& app, EngineConfig& c, unsigned which) {
  if (which & kModelFlags) {
    app.add_option("--model,-m", c.model, "Hugging Face model directory")->required()->type_name("DIR");
    app.add_option("--tokenizer", c.tokenizer, "tokenizer directory or tokenizer.json (default: the model's)")
        ->type_name("PATH");
  }
  add_choice<DeviceChoice>(app, "--device", c.device,
                           {{"auto", DeviceChoice::kAuto}, {"cpu", DeviceChoice::kCpu}, {"cuda", DeviceChoice::kCuda}},
                           "cpu, cuda or auto (the GPU when present)")
      ->default_str(device_choice_name(c.device));
  add_choice<DTypeChoice>(app, "--dtype", c.dtype,
                          {{"auto", DTypeChoice::kAuto},
                           {"bfloat16", DTypeChoice::kBFloat16},
                           {"bf16", DTypeChoice::kBFloat16},
                           {"float16", DTypeChoice::kFloat16},
                           {"fp16", DTypeChoice::kFloat16},
                           {"half", DTypeChoice::kFloat16}},
                          "GPU weights and activations; auto = bfloat16 (the CPU computes in float32)")
      ->default_str(dtype_choice_name(c.dtype));
  add_choice<bool>(app, "--quantization", c.quantize_fp8, {{"fp8", true}},
                   "fp8: quantize a bf16 checkpoint's layers to FP8 at load (per-channel weights, per-token "
                   "inputs; lm_head and embeddings stay); FP8 checkpoints need no flag");
  add_choice<bool>(app, "--kv-cache-dtype", c.kv_cache_fp8, {{"auto", false}, {"fp8", true}, {"fp8_e4m3", true}},
                   "KV cache dtype: auto (the compute dtype) or fp8 / fp8_e4m3 (FP8 e4m3 with the checkpoint's "
                   "k_scale / v_scale, 1.0 when it has none: twice the tokens)")
      ->default_str("auto");
  if (which & kSizingFlags) {
    add_int(app, (which & kLlamaAliases) ? "--max-model-len,-c,--ctx-size" : "--max-model-len", c.max_model_len,
            "context length: prompt + generated tokens (default: the model's max_position_embeddings)", 0);
    add_int(app, "--max-num-seqs", c.max_num_seqs, "sequences in one step", 1)
        ->default_str(std::to_string(c.max_num_seqs));
    // The range is EngineConfig::validate's, which names it.
    add_int(app, "--max-num-batched-tokens", c.max_num_batched_tokens, "tokens in one step, 16 to 1048576")
        ->default_str(std::to_string(c.max_num_batched_tokens));
  }
  add_int(app, "--threads,-t", c.num_threads,
          "CPU threads, at most 4 per CPU (default: one per CPU that other processes do not keep busy; "
          "TOKAMAK_NUM_THREADS)",
          0);
  // "-tp" (vLLM's spelling) is rewritten to this name by normalize_args: CLI11 takes one-letter
  // short names only, and would read it as -t p.
  add_int(app, "--tensor-parallel-size", c.tensor_parallel_size,
          "split the model's layers over N ranks (Megatron-style; -tp N); the CPU backend's ranks share "
          "--threads; on the GPU rank r runs on device r, through NCCL",
          1)
      ->default_str(std::to_string(c.tensor_parallel_size));
  add_checked(
      app, "--page-size,--block-size",
      [&c](const std::string& s) -> std::string {
        ParsedInt p = parse_int(s, 1, 1 << 20);
        if (!p.ok) return p.error;
        if (!is_supported_page_size(static_cast<int>(p.value)))
          return "must be one of " + supported_page_sizes_text() + ", got " + s;
        c.page_size = static_cast<int>(p.value);
        return "";
      },
      "KV cache page size in tokens (" + supported_page_sizes_text() + ")")
      ->type_name("INT")
      ->default_str(std::to_string(c.page_size));
  add_real(app, "--gpu-memory-utilization", c.gpu_memory_utilization,
           "share of the GPU's total memory for weights, activations and the KV cache", {0, 1, true, false})
      ->default_str(std::to_string(c.gpu_memory_utilization).substr(0, 4));
  app.add_flag("--enable-prefix-caching,!--no-enable-prefix-caching", c.enable_prefix_caching,
               "reuse the KV pages of earlier prompts' common prefixes (default: on)");
  app.add_flag("--enforce-eager", c.enforce_eager, "never replay CUDA graphs (default: replay them)");
  app.add_option("--gemm-autotune", c.gemm_autotune,
                 "GPU: time up to N of cuBLASLt's GEMM algorithms per shape on first use and keep the fastest "
                 "(0: its first heuristic)")
      ->check(CLI::Range(0, 64));
  app.add_flag("--async-scheduling,!--no-async-scheduling", c.async_scheduling,
               "overlap scheduling: prepare the next step while the device runs this one; a sequence ending on "
               "an eos or stop token is then noticed a step late (default: on)");
  add_quiet_flag(app);
}

void add_quiet_flag(CLI::App& app) {
  app.add_flag_callback(
      "--quiet,-q", [] { set_log_level(std::max(log_level(), LogLevel::kWarning)); },
      "print only the output, warnings and errors (as TOKAMAK_LOG_LEVEL=warning)");
}

Result<std::unique_ptr<Engine>> load_engine(const EngineConfig& c) { return Engine::create(c, make_progress_printer()); }

LoadProgress make_progress_printer() {
  const bool tty = isatty(STDERR_FILENO) != 0;
  const double start = now_seconds();
  auto last_quarter = std::make_shared<int>(-1);
  auto last_draw = std::make_shared<double>(0.0);
  return [=](size_t done, size_t total, const std::string& file) {
    if (log_level() > LogLevel::kInfo) return;  // --quiet, TOKAMAK_LOG_LEVEL=warning or above
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
