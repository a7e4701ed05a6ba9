// Streaming detokenization for generated tokens. Decoding token by token is wrong for SentencePiece
// (leading spaces depend on position) and for byte-level tokens that split a UTF-8 character, so
// each push decodes a short window (prefix_offset..end) and emits only the text past what the
// window's older part (prefix_offset..read_offset) already produced, and only once it does not end
// in an incomplete character (U+FFFD), the approach of vLLM and TGI.
#include "tokenizer/tokenizer.h"

#include "unicode.h"

namespace tk {
namespace {

constexpr size_t kPrimeWindow = 5;  // prompt tokens kept as context, as vLLM does

// The part of `now` past `before`; when a decoder made `before` differ from the start of `now`,
// everything past their common prefix (cut at a character boundary).
std::string text_after(const std::string& before, const std::string& now) {
  size_t common = 0;
  const size_t limit = std::min(before.size(), now.size());
  while (common < limit && before[common] == now[common]) ++common;
  while (common > 0 && common < now.size() && (static_cast<unsigned char>(now[common]) & 0xC0) == 0x80) --common;
  return now.substr(common);
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens)
    : tok_(tok), skip_special_tokens_(skip_special_tokens) {}

void IncrementalDetokenizer::prime(const std::vector<int32_t>& prompt_ids) {
  ids_ = prompt_ids;
  read_offset_ = ids_.size();
  prefix_offset_ = read_offset_ > kPrimeWindow ? read_offset_ - kPrimeWindow : 0;
  // Start the window on a character boundary: widen it while it begins inside a character.
  while (prefix_offset_ > 0 && prefix_offset_ + 16 > read_offset_) {
    const std::string text = tok_.decode(ids_.data() + prefix_offset_, read_offset_ - prefix_offset_, skip_special_tokens_);
    if (text.rfind("\xEF\xBF\xBD", 0) != 0) break;
    --prefix_offset_;
  }
}

std::string IncrementalDetokenizer::push(int32_t id) {
  ids_.push_back(id);
  const std::string before = tok_.decode(ids_.data() + prefix_offset_, read_offset_ - prefix_offset_, skip_special_tokens_);
  const std::string now = tok_.decode(ids_.data() + prefix_offset_, ids_.size() - prefix_offset_, skip_special_tokens_);
  if (now.size() <= before.size() || tokenizer_detail::ends_with_replacement_char(now)) return {};
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return text_after(before, now);
}

std::string IncrementalDetokenizer::flush() {
  const std::string before = tok_.decode(ids_.data() + prefix_offset_, read_offset_ - prefix_offset_, skip_special_tokens_);
  const std::string now = tok_.decode(ids_.data() + prefix_offset_, ids_.size() - prefix_offset_, skip_special_tokens_);
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (now.size() <= before.size()) return {};
  return text_after(before, now);
}

}  // namespace tk
