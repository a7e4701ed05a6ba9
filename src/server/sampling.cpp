// The request fields both generation endpoints share (vLLM's names, ranges and messages), and the
// context-length check.
#include "sampling.h"

namespace tk::server {

void read_sampling(Fields& f, const SamplingParams& defaults, SamplingParams& p) {
  p = defaults;
  f.number("temperature", p.temperature);
  f.number("top_p", p.top_p);
  int top_k = p.top_k;
  f.integer("top_k", top_k, -1, INT32_MAX);
  p.top_k = top_k < 0 ? 0 : top_k;  // vLLM: -1 (or 0) disables it
  f.number("min_p", p.min_p);
  f.number("presence_penalty", p.presence_penalty);
  f.number("frequency_penalty", p.frequency_penalty);
  f.number("repetition_penalty", p.repetition_penalty);
  f.integer("n", p.n, 1, INT32_MAX);
  f.seed("seed", p.seed);
  f.stop("stop", p.stop);
  f.token_ids("stop_token_ids", p.stop_token_ids);
  f.boolean("ignore_eos", p.ignore_eos);
  f.integer("min_tokens", p.min_tokens, 0, INT32_MAX);
  f.boolean("skip_special_tokens", p.skip_special_tokens);
  f.boolean("include_stop_str_in_output", p.include_stop_str_in_output);
  f.logit_bias("logit_bias", p.logit_bias);
  f.string("cache_salt", p.cache_salt);
  if (f.error) return;
  if (!(p.temperature >= 0.f)) f.fail("temperature must be non-negative, got " + std::to_string(p.temperature), "temperature");
  else if (!(p.top_p > 0.f && p.top_p <= 1.f)) f.fail("top_p must be in (0, 1], got " + std::to_string(p.top_p), "top_p");
  else if (!(p.min_p >= 0.f && p.min_p <= 1.f)) f.fail("min_p must be in [0, 1], got " + std::to_string(p.min_p), "min_p");
  else if (!(p.presence_penalty >= -2.f && p.presence_penalty <= 2.f))
    f.fail("presence_penalty must be in [-2, 2], got " + std::to_string(p.presence_penalty), "presence_penalty");
  else if (!(p.frequency_penalty >= -2.f && p.frequency_penalty <= 2.f))
    f.fail("frequency_penalty must be in [-2, 2], got " + std::to_string(p.frequency_penalty), "frequency_penalty");
  else if (!(p.repetition_penalty > 0.f && p.repetition_penalty <= 10.f))
    f.fail("repetition_penalty must be in (0, 10], got " + std::to_string(p.repetition_penalty), "repetition_penalty");
  else if (p.temperature > 100.f) f.fail("temperature must be at most 100, got " + std::to_string(p.temperature), "temperature");
  for (const auto& [token, bias] : p.logit_bias)
    if (!(bias >= -100.f && bias <= 100.f)) f.fail("logit_bias values must be in [-100, 100]", "logit_bias");
}

void read_stream_options(Fields& f, bool& stream, bool& include_usage) {
  f.boolean("stream", stream);
  include_usage = false;
  if (!f.has("stream_options")) return;
  const Json& so = f.json()["stream_options"];
  if (!so.is_object()) return f.fail("stream_options: Input should be an object", "stream_options");
  if (!stream) return f.fail("Stream options can only be defined when `stream=True`.", "stream_options");
  Fields sf(so);
  sf.boolean("include_usage", include_usage);
  if (sf.error) f.fail(sf.error->message, "stream_options");
}

std::optional<ApiError> check_context(int prompt_len, int max_tokens, int max_model_len, const char* param) {
  if (prompt_len >= max_model_len)
    return bad_request("This model's maximum context length is " + std::to_string(max_model_len) +
                           " tokens. However, your request has " + std::to_string(prompt_len) +
                           " input tokens. Please reduce the length of the input messages.",
                       "messages");
  if (max_tokens > max_model_len - prompt_len)
    return bad_request("'" + std::string(param) + "' is too large: " + std::to_string(max_tokens) +
                           ". This model's maximum context length is " + std::to_string(max_model_len) +
                           " tokens and your request has " + std::to_string(prompt_len) + " input tokens (" +
                           std::to_string(max_tokens) + " > " + std::to_string(max_model_len) + " - " +
                           std::to_string(prompt_len) + ").",
                       param);
  return std::nullopt;
}

void warn_unknown_fields(const Json& body, const std::vector<std::string>& known, const char* endpoint) {
  std::string unknown;
  size_t count = 0;
  for (auto it = body.begin(); it != body.end(); ++it)
    if (std::find(known.begin(), known.end(), it.key()) == known.end() && ++count <= 16)
      unknown += (unknown.empty() ? "" : ", ") + it.key().substr(0, 64);
  if (count > 16) unknown += ", ... (" + std::to_string(count - 16) + " more)";  // a hostile body floods no log
  if (!unknown.empty())
    TK_LOG_WARN(std::string(endpoint) + ": the following fields were present in the request but ignored: {" + unknown + "}");
}

std::string token_text(const Tokenizer& tok, int32_t id) { return tok.decode(&id, 1, false); }

Json token_bytes(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

Json usage_json(int prompt_tokens, int completion_tokens, int cached_tokens) {
  Json u = Json::object();
  u["prompt_tokens"] = prompt_tokens;
  u["total_tokens"] = prompt_tokens + completion_tokens;
  u["completion_tokens"] = completion_tokens;
  Json details = Json::object();
  details["cached_tokens"] = cached_tokens;
  u["prompt_tokens_details"] = details;
  return u;
}

std::string sse(const Json& j) { return "data: " + j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n\n"; }

}  // namespace tk::server
