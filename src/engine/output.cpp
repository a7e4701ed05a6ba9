// Output processing on the client's side: incremental detokenizing and stop strings over streamed
// text. Text that could still grow into a stop string is held back, so a stop string is never
// emitted, not even in part.
#include "engine/engine.h"

namespace tk {

// Length of the longest suffix of `text` that is a proper prefix of `stop`.
static size_t partial_stop_suffix(const std::string& text, const std::string& stop) {
  for (size_t k = std::min(stop.size() - 1, text.size()); k > 0; --k)
    if (text.compare(text.size() - k, k, stop, 0, k) == 0) return k;
  return 0;
}

std::string release_text(std::string& pending, const std::vector<std::string>& stop, bool final, int* stop_index) {
  *stop_index = -1;
  size_t first = std::string::npos;
  for (size_t i = 0; i < stop.size(); ++i) {
    const size_t at = pending.find(stop[i]);
    if (at < first) first = at, *stop_index = static_cast<int>(i);
  }
  if (first != std::string::npos) {
    std::string out = pending.substr(0, first);
    pending.clear();
    return out;
  }
  size_t hold = 0;
  if (!final)
    for (const std::string& s : stop) hold = std::max(hold, partial_stop_suffix(pending, s));
  std::string out = pending.substr(0, pending.size() - hold);
  pending.erase(0, out.size());
  return out;
}

OutputProcessor::OutputProcessor(const Tokenizer& tokenizer, const SamplingParams& params,
                                 const std::vector<int32_t>& prompt)
    : detok_(tokenizer, params.skip_special_tokens), stop_(params.stop), include_stop_(params.include_stop_str_in_output) {
  detok_.prime(prompt);
}

TextDelta OutputProcessor::process(const RequestOutput& output) {
  TextDelta d;
  if (finished()) return d;
  for (size_t i = 0; i < output.token_ids.size(); ++i) {
    // The eos or stop token that ended the sequence is not text.
    const bool last = i + 1 == output.token_ids.size();
    if (last && output.stop_token && output.token_ids[i] == *output.stop_token) continue;
    pending_ += detok_.push(output.token_ids[i]);
  }
  const bool ending = output.finished();
  if (ending) pending_ += detok_.flush();
  int stop_index = -1;
  d.text = release_text(pending_, stop_, ending, &stop_index);
  if (stop_index >= 0) {
    d.finish = FinishReason::kStop;
    d.stop_string = stop_[stop_index];
    if (include_stop_) d.text += d.stop_string;
  } else if (ending) {
    d.finish = output.finish;
  }
  finish_ = d.finish;
  return d;
}

}  // namespace tk
