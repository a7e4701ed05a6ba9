// Validation of what a request sets, and the names of finish reasons.
#include "scheduler/scheduler.h"

namespace tk {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
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
  if (n < 1) return bad("n must be >= 1, got " + std::to_string(n));
  if (max_tokens < 1) return bad("max_tokens must be >= 1, got " + std::to_string(max_tokens));
  if (min_tokens < 0 || min_tokens > max_tokens)
    return bad("min_tokens must be in [0, max_tokens], got " + std::to_string(min_tokens));
  if (logprobs < -1 || logprobs > kMaxTopLogprobs)
    return bad("logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " + std::to_string(logprobs));
  if (prompt_top_logprobs < 0 || prompt_top_logprobs > kMaxTopLogprobs)
    return bad("prompt_logprobs must be in [0, " + std::to_string(kMaxTopLogprobs) + "], got " +
               std::to_string(prompt_top_logprobs));
  for (const auto& [token, bias] : logit_bias)
    if (!(bias >= -100.f && bias <= 100.f))
      return bad("logit_bias values must be in [-100, 100], got " + std::to_string(bias) + " for token " +
                 std::to_string(token));
  if (prompt_logprobs_from == 0 || prompt_logprobs_from < -1)
    return bad("prompt_logprobs_from must be -1 (none) or >= 1, got " + std::to_string(prompt_logprobs_from));
  for (const std::string& s : stop)
    if (s.empty()) return bad("stop strings must not be empty");
  return Status::ok_status();
}

}  // namespace tk
