// PCRE2 behind the Regex interface: compiled once per tokenizer, matched with per-thread match
// data and JIT stack so that encode() stays const and thread-safe without per-call allocations.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "pcre2_regex.h"

#include <pcre2.h>

#include "unicode.h"

namespace tk::tokenizer_detail {
namespace {

// Per-thread scratch for pcre2_match: the ovector and a JIT stack big enough for long runs.
struct MatchScratch {
  pcre2_match_data* data = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;
  MatchScratch() {
    data = pcre2_match_data_create(64, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (context && jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchScratch() {
    pcre2_match_data_free(data);
    pcre2_match_context_free(context);
    pcre2_jit_stack_free(jit_stack);
  }
};

MatchScratch& scratch() {
  thread_local MatchScratch s;
  return s;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buffer[256];
  pcre2_get_error_message(code, buffer, sizeof(buffer));
  return reinterpret_cast<const char*>(buffer);
}

}  // namespace

Result<std::shared_ptr<const Regex>> Regex::compile(std::string_view pattern, bool literal) {
  // PCRE2_LITERAL admits only a few other options; UCP is meaningless for a literal anyway.
  const uint32_t options = PCRE2_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   options, &error, &offset, nullptr);
  if (!code) {
    return invalid_argument("cannot compile regex '" + std::string(pattern) + "' at offset " +
                            std::to_string(offset) + ": " + pcre2_message(error));
  }
  std::shared_ptr<Regex> regex(new Regex());
  regex->code_ = code;
  regex->pattern_ = std::string(pattern);
  regex->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return std::shared_ptr<const Regex>(std::move(regex));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

Status Regex::find_all(std::string_view text, std::vector<Span>& out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchScratch& s = scratch();
  if (!s.data) return internal_error("pcre2: out of memory for match data");
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos <= text.size()) {
    const int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, s.data, s.context)
                        : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, s.data, s.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) return internal_error("regex '" + pattern_ + "' failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(s.data);
    const size_t begin = ovector[0], end = ovector[1];
    out.push_back({begin, end});
    if (end > begin) {
      pos = end;
    } else {  // empty match: step over one character, as Oniguruma's iterator does
      if (end >= text.size()) break;
      pos = end + utf8_len(static_cast<unsigned char>(text[end]));
    }
  }
  return Status::ok_status();
}

}  // namespace tk::tokenizer_detail
