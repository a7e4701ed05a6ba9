// Validation of the engine configuration and the names of its enums.
#include "engine_core/engine_core.h"
#include "machine.h"

namespace tk {
namespace {

// --tensor-parallel-size's bound: a host's GPUs (8), or CPU rank threads, with room to spare.
constexpr int kMaxTensorParallelSize = 64;

}  // namespace

const char* device_choice_name(DeviceChoice d) {
  switch (d) {
    case DeviceChoice::kAuto: return "auto";
    case DeviceChoice::kCpu: return "cpu";
    case DeviceChoice::kCuda: return "cuda";
  }
  return "auto";
}

const char* dtype_choice_name(DTypeChoice d) {
  switch (d) {
    case DTypeChoice::kAuto: return "auto";
    case DTypeChoice::kBFloat16: return "bfloat16";
    case DTypeChoice::kFloat16: return "float16";
  }
  return "auto";
}

// Bounds that hold whatever the machine; check_memory (machine.cpp) then weighs the sizes
// against the device once the model's shape is known.
Status EngineConfig::validate() const {
  auto bad = [](const std::string& flag, int64_t value, const std::string& why) {
    return invalid_argument(flag + " " + std::to_string(value) + ": " + why);
  };
  if (model.empty() == model_config.empty()) return invalid_argument("give --model DIR or --model-config NAME (one of them)");
  if (max_model_len < 0) return bad("--max-model-len", max_model_len, "must be at least 0 (0: the model's context)");
  if (max_num_seqs < 1) return bad("--max-num-seqs", max_num_seqs, "must be at least 1");
  if (max_num_batched_tokens < kMinBatchedTokens || max_num_batched_tokens > kMaxBatchedTokens)
    return bad("--max-num-batched-tokens", max_num_batched_tokens,
               "must be in [" + std::to_string(kMinBatchedTokens) + ", " + std::to_string(kMaxBatchedTokens) + "]");
  if (!is_supported_page_size(page_size))
    return bad("--page-size", page_size, "must be one of " + supported_page_sizes_text());
  if (!(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0))
    return invalid_argument("--gpu-memory-utilization " + std::to_string(gpu_memory_utilization) + ": must be in (0, 1]");
  if (kv_cache_tokens < 0) return bad("kv_cache_tokens", kv_cache_tokens, "must be at least 0");
  if (num_threads < 0) return bad("--threads", num_threads, "must be at least 0 (0: one per CPU not kept busy)");
  if (tensor_parallel_size < 1 || tensor_parallel_size > kMaxTensorParallelSize)
    return bad("--tensor-parallel-size", tensor_parallel_size,
               "must be in [1, " + std::to_string(kMaxTensorParallelSize) + "]");
  if (num_threads > max_cpu_threads())
    return bad("--threads", num_threads,
               "too many threads, at most " + std::to_string(max_cpu_threads()) + " (" + std::to_string(kMaxThreadsPerCpu) +
                   " per usable CPU; " + std::to_string(usable_cpus()) + " here)");
  return Status::ok_status();
}

}  // namespace tk
