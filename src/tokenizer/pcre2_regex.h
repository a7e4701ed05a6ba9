// A thin PCRE2 wrapper (UTF + UCP, JIT when available) with the find-all semantics of the
// Oniguruma regexes that HF tokenizers use: non-overlapping, left to right, and an empty match
// moves the search on by one character.
// NOTE: PCRE2's \s under UCP also matches U+180E (MONGOLIAN VOWEL SEPARATOR), which Oniguruma's
// White_Space-based \s does not; no parity text contains it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/core.h"

namespace tk::tokenizer_detail {

struct Span {
  size_t begin;
  size_t end;
};

class Regex {
 public:
  // `literal` compiles the pattern as a plain string (HF's {"String": ...} patterns).
  static Result<std::shared_ptr<const Regex>> compile(std::string_view pattern, bool literal = false);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends every match in `text` (valid UTF-8) to `out`.
  Status find_all(std::string_view text, std::vector<Span>& out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  Regex() = default;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
  std::string pattern_;
};

}  // namespace tk::tokenizer_detail
