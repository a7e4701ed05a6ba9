// Jinja's lexer rules, written as a hand-rolled scanner: data up to the next `{{`, `{%` or `{#`
// (stripped by `-`, lstrip_blocks and trim_blocks exactly where Jinja's regexes strip), then the
// tokens inside the tag until its end marker, which only counts outside brackets.
#include "lexer.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "error.h"
#include "ustr.h"

namespace tk::jinja::detail {
namespace {

// Python's \s on one UTF-8 character at s[i]; returns its byte length or 0.
size_t whitespace_len(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return (c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F)) ? 1 : 0;
  size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
  if (i + n > s.size()) return 0;
  std::u32string cp = decode_utf8(s.substr(i, n));
  return cp.size() == 1 && py_isspace(cp[0]) ? n : 0;
}

size_t skip_whitespace(std::string_view s, size_t i) {
  while (i < s.size()) {
    size_t n = whitespace_len(s, i);
    if (!n) break;
    i += n;
  }
  return i;
}

// Python str.rstrip() on UTF-8 text.
std::string_view rstrip_ws(std::string_view s) {
  std::u32string cps = decode_utf8(s);
  size_t keep = cps.size();
  while (keep > 0 && py_isspace(cps[keep - 1])) --keep;
  size_t bytes = 0;
  for (size_t k = 0; k < keep; ++k) {
    char32_t c = cps[k];
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return s.substr(0, bytes);
}

bool all_whitespace(std::string_view s) {
  if (s.empty()) return false;
  return skip_whitespace(s, 0) == s.size();
}

int count_newlines(std::string_view s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();  // keep_trailing_newline=False
  return out;
}

class Lexer {
 public:
  Lexer(std::string_view source, const LexOptions& o) : src_(normalize_source(source)), o_(o) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) root();
    push(TokenType::kEof, "");
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& message) { throw JinjaError(ErrorKind::kTemplateSyntaxError, message, line_); }

  void push(TokenType type, std::string value) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    t.line = line_;
    tokens_.push_back(std::move(t));
  }

  // Data before a tag, with the tag's whitespace control applied. `is_variable` tags are exempt
  // from lstrip_blocks.
  void emit_data(std::string_view text, char sign, bool is_variable) {
    std::string_view kept = text;
    if (sign == '-') {
      kept = rstrip_ws(text);
    } else if (sign != '+' && o_.lstrip_blocks && !is_variable) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && all_whitespace(text.substr(l_pos))) kept = text.substr(0, l_pos);
    }
    if (!kept.empty()) push(TokenType::kData, std::string(kept));
    line_ += count_newlines(text);
  }

  // Consumes a block end at pos_ if there is one: `+%}`, `-%}\s*` or `%}` (+ one newline with
  // trim_blocks). Returns false when pos_ is not at a block end.
  bool block_end(bool variable) {
    const char* close = variable ? "}}" : "%}";
    std::string_view rest = std::string_view(src_).substr(pos_);
    size_t start = pos_;
    if (!variable && rest.substr(0, 3) == "+%}") {
      pos_ += 3;
    } else if (rest.size() >= 3 && rest[0] == '-' && rest.substr(1, 2) == close) {
      pos_ = skip_whitespace(src_, pos_ + 3);
    } else if (rest.substr(0, 2) == close) {
      pos_ += 2;
      if (!variable && o_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
    } else {
      return false;
    }
    std::string_view matched = std::string_view(src_).substr(start, pos_ - start);
    line_starting_ = !matched.empty() && matched.back() == '\n';
    return true;
  }

  void root() {
    size_t open = src_.find('{', pos_);
    while (open != std::string::npos && open + 1 < src_.size() && src_[open + 1] != '{' && src_[open + 1] != '%' &&
           src_[open + 1] != '#') {
      open = src_.find('{', open + 1);
    }
    if (open == std::string::npos || open + 1 >= src_.size()) {
      push(TokenType::kData, src_.substr(pos_));
      line_ += count_newlines(std::string_view(src_).substr(pos_));
      pos_ = src_.size();
      return;
    }
    const char kind = src_[open + 1];
    char sign = open + 2 < src_.size() && (src_[open + 2] == '-' || src_[open + 2] == '+') ? src_[open + 2] : 0;
    std::string_view text = std::string_view(src_).substr(pos_, open - pos_);
    if (kind == '%' && raw_begin(open, text, sign)) return;
    emit_data(text, sign, kind == '{');
    pos_ = open + 2 + (sign ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') return comment();
    push(kind == '{' ? TokenType::kVariableBegin : TokenType::kBlockBegin, kind == '{' ? "{{" : "{%");
    tag(kind == '{');
  }

  void comment() {
    size_t close = src_.find("#}", pos_);
    if (close == std::string::npos) fail("Missing end of comment tag");
    size_t body_end = close;
    char sign = 0;
    if (close > pos_ && (src_[close - 1] == '-' || src_[close - 1] == '+')) sign = src_[--body_end];
    line_ += count_newlines(std::string_view(src_).substr(pos_, body_end - pos_));
    pos_ = body_end;
    size_t start = pos_;
    pos_ = close + 2;
    if (sign == '-') pos_ = skip_whitespace(src_, pos_);
    else if (sign != '+' && o_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
    line_ += count_newlines(std::string_view(src_).substr(close, pos_ - close));
    line_starting_ = pos_ > start && src_[pos_ - 1] == '\n';
  }

  // `{% raw %}...{% endraw %}`: the body is data, untouched except for the end tag's whitespace
  // control. Returns false when the block tag at `open` is not `raw`.
  bool raw_begin(size_t open, std::string_view text, char sign);
  void tag(bool variable);
  void tag_token(bool variable);
  void number();
  void string_literal();
  void op();

  std::string src_;
  LexOptions o_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;
  std::vector<char> balance_;
  std::vector<Token> tokens_;
};

// Matches `\s*NAME\s*` at i; returns the end or npos.
size_t match_word(std::string_view s, size_t i, std::string_view word) {
  i = skip_whitespace(s, i);
  if (s.substr(i, word.size()) != word) return std::string_view::npos;
  i += word.size();
  if (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) return std::string_view::npos;
  return skip_whitespace(s, i);
}

bool Lexer::raw_begin(size_t open, std::string_view text, char sign) {
  size_t i = match_word(src_, open + 2 + (sign ? 1 : 0), "raw");
  if (i == std::string::npos) return false;
  size_t after;
  if (src_.compare(i, 3, "-%}") == 0) after = skip_whitespace(src_, i + 3);
  else if (src_.compare(i, 2, "%}") == 0) after = i + 2;
  else return false;
  emit_data(text, sign, false);
  line_ += count_newlines(std::string_view(src_).substr(open, after - open));
  // Find `{%[-+]?\s*endraw\s*` followed by an end marker.
  for (size_t at = src_.find("{%", after); at != std::string::npos; at = src_.find("{%", at + 1)) {
    char end_sign = at + 2 < src_.size() && (src_[at + 2] == '-' || src_[at + 2] == '+') ? src_[at + 2] : 0;
    size_t j = match_word(src_, at + 2 + (end_sign ? 1 : 0), "endraw");
    if (j == std::string::npos) continue;
    if (src_.compare(j, 2, "%}") != 0 && src_.compare(j, 3, "-%}") != 0 && src_.compare(j, 3, "+%}") != 0) continue;
    line_starting_ = false;
    emit_data(std::string_view(src_).substr(after, at - after), end_sign, false);
    line_ += count_newlines(std::string_view(src_).substr(at, j - at));
    pos_ = j;
    block_end(false);
    return true;
  }
  line_ += count_newlines(std::string_view(src_).substr(after));
  fail("Missing end of raw directive");
}

void Lexer::tag(bool variable) {
  while (true) {
    size_t ws_end = skip_whitespace(src_, pos_);
    line_ += count_newlines(std::string_view(src_).substr(pos_, ws_end - pos_));
    pos_ = ws_end;
    if (pos_ >= src_.size()) return;  // the parser reports the missing end
    if (balance_.empty()) {
      int line = line_;
      size_t start = pos_;
      if (block_end(variable)) {
        line_ = line;
        push(variable ? TokenType::kVariableEnd : TokenType::kBlockEnd, "");
        line_ += count_newlines(std::string_view(src_).substr(start, pos_ - start));
        return;
      }
    }
    tag_token(variable);
  }
}

void Lexer::tag_token(bool) {
  unsigned char c = static_cast<unsigned char>(src_[pos_]);
  if (std::isdigit(c)) return number();
  if (std::isalpha(c) || c == '_' || c >= 0x80) {
    size_t start = pos_;
    while (pos_ < src_.size()) {
      unsigned char d = static_cast<unsigned char>(src_[pos_]);
      if (!(std::isalnum(d) || d == '_' || d >= 0x80)) break;
      ++pos_;
    }
    push(TokenType::kName, src_.substr(start, pos_ - start));
    return;
  }
  if (c == '\'' || c == '"') return string_literal();
  op();
}


// Jinja's float_re before integer_re: digits with `_` separators, a fraction and/or an exponent;
// integers may be 0b/0o/0x prefixed.
void Lexer::number() {
  auto digits = [&](size_t i) {
    size_t start = i;
    while (i < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[i])) ||
                               (src_[i] == '_' && i > start && i + 1 < src_.size() &&
                                std::isdigit(static_cast<unsigned char>(src_[i + 1])))))
      ++i;
    return i;
  };
  const size_t start = pos_;
  const bool after_dot = start > 0 && src_[start - 1] == '.';
  size_t i = digits(pos_);
  bool is_float = false;
  if (!after_dot) {
    size_t j = i;
    if (j + 1 < src_.size() && src_[j] == '.' && std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
      j = digits(j + 1);
      is_float = true;
    }
    if (j < src_.size() && (src_[j] == 'e' || src_[j] == 'E')) {
      size_t k = j + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && std::isdigit(static_cast<unsigned char>(src_[k]))) {
        j = digits(k);
        is_float = true;
      }
    }
    if (is_float) i = j;
  }
  std::string text;
  if (!is_float && src_[start] == '0' && i == start + 1 && i < src_.size() && std::strchr("bBoOxX", src_[i])) {
    const int base = std::tolower(src_[i]) == 'b' ? 2 : std::tolower(src_[i]) == 'o' ? 8 : 16;
    size_t j = i + 1;
    while (j < src_.size() && (std::isxdigit(static_cast<unsigned char>(src_[j])) || src_[j] == '_')) {
      if (src_[j] != '_') text += src_[j];
      ++j;
    }
    pos_ = j;
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(text.c_str(), &end, base);
    if (text.empty() || *end || errno) fail("invalid integer literal");
    push(TokenType::kInteger, src_.substr(start, j - start));
    tokens_.back().int_value = v;
    return;
  }
  for (size_t k = start; k < i; ++k)
    if (src_[k] != '_') text += src_[k];
  pos_ = i;
  push(is_float ? TokenType::kFloat : TokenType::kInteger, text);
  errno = 0;
  if (is_float) {
    tokens_.back().float_value = std::strtod(text.c_str(), nullptr);
  } else {
    tokens_.back().int_value = std::strtoll(text.c_str(), nullptr, 10);
    if (errno == ERANGE) fail("integer literal " + text + " does not fit in 64 bits");
  }
}

void Lexer::string_literal() {
  const char quote = src_[pos_];
  size_t i = pos_ + 1;
  while (i < src_.size() && src_[i] != quote) i += src_[i] == '\\' ? 2 : 1;
  if (i >= src_.size()) fail("unexpected char " + std::string(1, quote) + " at " + std::to_string(pos_));
  std::string_view body = std::string_view(src_).substr(pos_ + 1, i - pos_ - 1);
  push(TokenType::kString, unescape_string(body, line_));
  line_ += count_newlines(body);
  pos_ = i + 1;
}

void Lexer::op() {
  static const char* const kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
  std::string_view rest = std::string_view(src_).substr(pos_);
  for (const char* two : kTwo) {
    if (rest.substr(0, 2) == two) {
      push(TokenType::kOperator, two);
      pos_ += 2;
      return;
    }
  }
  const char c = src_[pos_];
  if (!std::strchr("+-/*%~[](){}=<>.:|,;", c)) {
    std::string shown(1, c);
    if (static_cast<unsigned char>(c) >= 0x80) shown = std::string(rest.substr(0, 4));
    fail("unexpected char '" + shown + "' at " + std::to_string(pos_));
  }
  if (c == '(' || c == '[' || c == '{') {
    balance_.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
  } else if (c == ')' || c == ']' || c == '}') {
    if (balance_.empty()) fail(std::string("unexpected '") + c + "'");
    char expected = balance_.back();
    balance_.pop_back();
    if (expected != c) fail(std::string("unexpected '") + c + "', expected '" + expected + "'");
  }
  push(TokenType::kOperator, std::string(1, c));
  ++pos_;
}

}  // namespace

std::vector<Token> tokenize(std::string_view source, const LexOptions& options) {
  Lexer lexer(source, options);
  return lexer.run();
}

}  // namespace tk::jinja::detail
