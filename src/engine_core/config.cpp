// Validation of the engine configuration and the names of its enums.
#include "engine_core/engine_core.h"

namespace tk {

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

Status EngineConfig::validate() const {
  auto bad = [](const std::string& m) { return invalid_argument(m); };
  if (model.empty() == model_config.empty()) return bad("give --model DIR or --model-config NAME (one of them)");
  if (max_model_len < 0) return bad("--max-model-len must be >= 0, got " + std::to_string(max_model_len));
  if (max_num_seqs < 1) return bad("--max-num-seqs must be >= 1, got " + std::to_string(max_num_seqs));
  if (max_num_batched_tokens < 16)
    return bad("--max-num-batched-tokens must be >= 16, got " + std::to_string(max_num_batched_tokens));
  if (!is_supported_page_size(page_size))
    return bad("--page-size must be one of " + supported_page_sizes_text() + ", got " + std::to_string(page_size));
  if (!(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0))
    return bad("--gpu-memory-utilization must be in (0, 1], got " + std::to_string(gpu_memory_utilization));
  if (kv_cache_tokens < 0) return bad("kv_cache_tokens must be >= 0, got " + std::to_string(kv_cache_tokens));
  if (num_threads < 0) return bad("--threads must be >= 0, got " + std::to_string(num_threads));
  return Status::ok_status();
}

}  // namespace tk
