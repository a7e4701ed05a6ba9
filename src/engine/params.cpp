// Validation of what users set: sampling parameters and the engine configuration.
#include "engine/engine.h"

namespace tk {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kNone: return "none";
  }
  return "none";
}

Status SamplingParams::validate() const {
  auto bad = [](const std::string& m) { return invalid_argument(m); };
  if (!(temperature >= 0.f) || temperature > 100.f) return bad("temperature must be in [0, 100], got " + std::to_string(temperature));
  if (!(top_p > 0.f && top_p <= 1.f)) return bad("top_p must be in (0, 1], got " + std::to_string(top_p));
  if (top_k < 0) return bad("top_k must be >= 0 (0 disables it), got " + std::to_string(top_k));
  if (!(min_p >= 0.f && min_p <= 1.f)) return bad("min_p must be in [0, 1], got " + std::to_string(min_p));
  if (!(repetition_penalty > 0.f && repetition_penalty <= 10.f))
    return bad("repetition_penalty must be in (0, 10], got " + std::to_string(repetition_penalty));
  if (!(presence_penalty >= -2.f && presence_penalty <= 2.f))
    return bad("presence_penalty must be in [-2, 2], got " + std::to_string(presence_penalty));
  if (!(frequency_penalty >= -2.f && frequency_penalty <= 2.f))
    return bad("frequency_penalty must be in [-2, 2], got " + std::to_string(frequency_penalty));
  if (max_tokens < 1) return bad("max_tokens must be >= 1, got " + std::to_string(max_tokens));
  for (const std::string& s : stop)
    if (s.empty()) return bad("stop strings must not be empty");
  return Status::ok_status();
}

Status EngineConfig::validate() const {
  auto bad = [](const std::string& m) { return invalid_argument(m); };
  if (model_dir.empty()) return bad("--model is required");
  if (device != "cpu" && device != "cuda" && device != "auto")
    return bad("--device must be cpu, cuda or auto, got '" + device + "'");
  if (dtype != "auto" && dtype != "bfloat16" && dtype != "float16" && dtype != "bf16" && dtype != "fp16")
    return bad("--dtype must be auto, bfloat16 or float16, got '" + dtype + "'");
  if (max_model_len < 0) return bad("--max-model-len must be >= 0");
  if (max_num_seqs < 1) return bad("--max-num-seqs must be >= 1");
  if (max_num_batched_tokens < 16) return bad("--max-num-batched-tokens must be >= 16");
  if (page_size != 16 && page_size != 32 && page_size != 64 && page_size != 8 && page_size != 1)
    return bad("--page-size must be one of 1, 8, 16, 32, 64, got " + std::to_string(page_size));
  if (!(gpu_memory_utilization > 0.0 && gpu_memory_utilization <= 1.0))
    return bad("--gpu-memory-utilization must be in (0, 1]");
  if (kv_cache_tokens < 0) return bad("--kv-cache-tokens must be >= 0");
  if (num_threads < 0) return bad("--threads must be >= 0");
  return Status::ok_status();
}

}  // namespace tk
