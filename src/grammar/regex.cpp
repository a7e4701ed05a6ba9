// The regex parser (see regex.h): recursive descent with a depth bound; every construct we do not
// support (lookaround, backreferences, word boundaries, Unicode properties, inner anchors) is an
// error naming it and its offset, never a silently different language.
#include "regex.h"

#include <charconv>

namespace tk::grammar {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const CodepointSet kDigit = {{'0', '9'}};
const CodepointSet kWord = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
const CodepointSet kSpace = normalize_set({{'\t', '\r'}, {' ', ' '}, {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                                           {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000},
                                           {0xFEFF, 0xFEFF}});
const CodepointSet kLineTerminators = {{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}};

class RegexParser {
 public:
  RegexParser(std::string_view s, const Limits& limits) : s_(s), limits_(limits) {}
  Result<RegexParse> parse(bool full_match, const Expr& any);

 private:
  Status error(const std::string& what) const {
    return invalid_argument("regex: " + what + " at offset " + std::to_string(pos_));
  }
  bool at_end() const { return pos_ >= s_.size(); }
  Result<Expr> alternation(int depth);
  Result<Expr> concat(int depth, bool* anchored_start, bool* anchored_end);
  Result<Expr> quantified(int depth);
  Result<Expr> atom(int depth);
  Result<Expr> group(int depth);
  Result<CodepointSet> class_body();
  // One escape after '\' (pos_ at the character after it); sets *set for class escapes.
  Result<uint32_t> escape(bool in_class, CodepointSet* set);
  Result<uint32_t> literal_char();
  Result<int64_t> number();

  std::string_view s_;
  const Limits& limits_;
  size_t pos_ = 0;
};

Result<RegexParse> RegexParser::parse(bool full_match, const Expr& any) {
  if (s_.size() > limits_.max_input_bytes) return invalid_argument("regex: over the size limit");
  RegexParse out;
  std::vector<Expr> alts;
  while (true) {
    bool a0 = false, a1 = false;
    TK_ASSIGN_OR_RETURN(Expr e, concat(0, &a0, &a1));
    if (!full_match && (!a0 || !a1)) {
      out.search = true;
      e = seq({a0 ? empty_expr() : any, std::move(e), a1 ? empty_expr() : any});
    }
    alts.push_back(std::move(e));
    if (at_end()) break;
    if (s_[pos_] == ')') return error("unmatched ')'");
    ++pos_;  // '|'
  }
  out.expr = alts.size() == 1 ? std::move(alts[0]) : Expr{Expr::Kind::kAlt, {}, {}, -1, 0, 0, std::move(alts)};
  return out;
}

Result<Expr> RegexParser::alternation(int depth) {
  if (depth > limits_.max_nesting) return error("groups nested too deeply");
  std::vector<Expr> alts;
  while (true) {
    TK_ASSIGN_OR_RETURN(Expr e, concat(depth, nullptr, nullptr));
    alts.push_back(std::move(e));
    if (at_end() || s_[pos_] != '|') break;
    ++pos_;
  }
  if (alts.size() == 1) return std::move(alts[0]);
  Expr e;
  e.kind = Expr::Kind::kAlt;
  e.children = std::move(alts);
  return e;
}

// Anchors are only understood at the two ends of a top-level alternative.
Result<Expr> RegexParser::concat(int depth, bool* anchored_start, bool* anchored_end) {
  std::vector<Expr> items;
  while (!at_end() && s_[pos_] != '|' && s_[pos_] != ')') {
    if (s_[pos_] == '^') {
      if (!anchored_start || !items.empty()) return error("'^' inside the pattern is not supported");
      *anchored_start = true;
      ++pos_;
      continue;
    }
    if (s_[pos_] == '$') {
      ++pos_;
      if (!anchored_end || (!at_end() && s_[pos_] != '|')) return error("'$' inside the pattern is not supported");
      *anchored_end = true;
      continue;
    }
    TK_ASSIGN_OR_RETURN(Expr e, quantified(depth));
    items.push_back(std::move(e));
  }
  return seq(std::move(items));
}

Result<int64_t> RegexParser::number() {
  size_t start = pos_;
  while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, v);
  if (pos_ == start) return error("expected a number in {m,n}");
  if (ec != std::errc() || v > limits_.max_repeat) return error("repetition count over the limit");
  return v;
}

Result<Expr> RegexParser::quantified(int depth) {
  TK_ASSIGN_OR_RETURN(Expr e, atom(depth));
  int quantifiers = 0;
  while (!at_end()) {
    char c = s_[pos_];
    int64_t min = 0, max = kUnbounded;
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      min = c == '+' ? 1 : 0;
      max = c == '?' ? 1 : kUnbounded;
    } else if (c == '{' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9') {
      ++pos_;
      TK_ASSIGN_OR_RETURN(min, number());
      max = min;
      if (!at_end() && s_[pos_] == ',') {
        ++pos_;
        max = kUnbounded;
        if (!at_end() && s_[pos_] != '}') {
          TK_ASSIGN_OR_RETURN(max, number());
        }
      }
      if (at_end() || s_[pos_] != '}') return error("unclosed '{'");
      ++pos_;
      if (max != kUnbounded && max < min) return error("repetition {m,n} with n < m");
    } else {
      break;
    }
    if (!at_end() && s_[pos_] == '?') ++pos_;  // lazy: same language
    if (!at_end() && s_[pos_] == '+') return error("possessive quantifiers are not supported");
    if (++quantifiers > limits_.max_nesting) return error("too many quantifiers in a row");
    e = rep(std::move(e), min, max);
  }
  return e;
}

Result<Expr> RegexParser::group(int depth) {
  ++pos_;  // '('
  if (!at_end() && s_[pos_] == '?') {
    std::string_view rest = s_.substr(pos_);
    if (rest.substr(0, 2) == "?:") {
      pos_ += 2;
    } else if (rest.substr(0, 2) == "?<" && rest.substr(0, 3) != "?<=" && rest.substr(0, 3) != "?<!") {
      size_t close = s_.find('>', pos_);
      if (close == std::string_view::npos) return error("unclosed group name");
      pos_ = close + 1;
    } else {
      return error("lookaround and other (? groups are not supported");
    }
  }
  TK_ASSIGN_OR_RETURN(Expr e, alternation(depth + 1));
  if (at_end() || s_[pos_] != ')') return error("unclosed '('");
  ++pos_;
  return e;
}

Result<Expr> RegexParser::atom(int depth) {
  char c = s_[pos_];
  switch (c) {
    case '(': return group(depth);
    case '[': {
      TK_ASSIGN_OR_RETURN(CodepointSet set, class_body());
      return cls(std::move(set));
    }
    case '.': ++pos_; return cls(complement_set(kLineTerminators));
    case '*': case '+': case '?': return error(std::string("nothing to repeat before '") + c + "'");
    case '{':
      if (pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9') return error("nothing to repeat before '{'");
      break;
    case '\\': {
      ++pos_;
      CodepointSet set;
      TK_ASSIGN_OR_RETURN(uint32_t cp, escape(false, &set));
      if (!set.empty()) return cls(std::move(set));
      std::string bytes;
      append_utf8(bytes, cp);
      return lit(bytes);
    }
    default: break;
  }
  TK_ASSIGN_OR_RETURN(uint32_t cp, literal_char());
  std::string bytes;
  append_utf8(bytes, cp);
  return lit(bytes);
}

Result<uint32_t> RegexParser::literal_char() {
  uint32_t cp = 0;
  int len = decode_utf8(s_, pos_, &cp);
  if (len == 0) return error("invalid UTF-8");
  pos_ += len;
  return cp;
}

Result<uint32_t> RegexParser::escape(bool in_class, CodepointSet* set) {
  if (at_end()) return error("unfinished escape");
  char e = s_[pos_++];
  switch (e) {
    case 'd': *set = kDigit; return 0u;
    case 'D': *set = complement_set(kDigit); return 0u;
    case 'w': *set = kWord; return 0u;
    case 'W': *set = complement_set(kWord); return 0u;
    case 's': *set = kSpace; return 0u;
    case 'S': *set = complement_set(kSpace); return 0u;
    case 'n': return uint32_t{'\n'};
    case 'r': return uint32_t{'\r'};
    case 't': return uint32_t{'\t'};
    case 'f': return uint32_t{'\f'};
    case 'v': return uint32_t{'\v'};
    case '0': return 0u;
    case 'b':
      if (in_class) return uint32_t{'\b'};
      return error("word boundaries (\\b) are not supported");
    case 'B': return error("word boundaries (\\B) are not supported");
    case 'p': case 'P': return error("Unicode property escapes (\\p) are not supported");
    case 'k': return error("backreferences are not supported");
    case 'c': return error("control escapes (\\c) are not supported");
    case 'x': case 'u': {
      uint32_t v = 0;
      if (e == 'u' && !at_end() && s_[pos_] == '{') {
        size_t close = s_.find('}', pos_);
        if (close == std::string_view::npos || close == pos_ + 1 || close - pos_ > 7) return error("bad \\u{...} escape");
        for (size_t i = pos_ + 1; i < close; ++i) {
          if (hex_digit(s_[i]) < 0) return error("bad \\u{...} escape");
          v = v * 16 + hex_digit(s_[i]);
        }
        pos_ = close + 1;
      } else {
        int n = e == 'x' ? 2 : 4;
        for (int i = 0; i < n; ++i) {
          if (at_end() || hex_digit(s_[pos_]) < 0) return error(std::string("expected hex digits after \\") + e);
          v = v * 16 + hex_digit(s_[pos_++]);
        }
      }
      if (v > kMaxCodepoint || (v >= 0xD800 && v <= 0xDFFF)) return error("escape is not a Unicode character");
      return v;
    }
    default: break;
  }
  if (e >= '1' && e <= '9') return error("backreferences are not supported");
  if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) return error(std::string("unknown escape \\") + e);
  --pos_;
  return literal_char();  // an escaped punctuation character stands for itself
}

Result<CodepointSet> RegexParser::class_body() {
  ++pos_;  // '['
  bool negated = !at_end() && s_[pos_] == '^';
  if (negated) ++pos_;
  CodepointSet set;
  bool first = true;
  while (true) {
    if (at_end()) return error("unclosed character class");
    if (s_[pos_] == ']' && !first) break;
    first = false;
    CodepointSet esc;
    uint32_t lo = 0;
    if (s_[pos_] == '\\') {
      ++pos_;
      TK_ASSIGN_OR_RETURN(lo, escape(true, &esc));
    } else {
      TK_ASSIGN_OR_RETURN(lo, literal_char());
    }
    if (!esc.empty()) {
      set.insert(set.end(), esc.begin(), esc.end());
      continue;
    }
    uint32_t hi = lo;
    if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
      ++pos_;
      if (s_[pos_] == '\\') {
        ++pos_;
        TK_ASSIGN_OR_RETURN(hi, escape(true, &esc));
        if (!esc.empty()) return error("a class escape cannot end a range");
      } else {
        TK_ASSIGN_OR_RETURN(hi, literal_char());
      }
      if (hi < lo) return error("character range out of order");
    }
    set.push_back({lo, hi});
  }
  ++pos_;
  set = normalize_set(std::move(set));
  return negated ? complement_set(set) : set;
}

}  // namespace

Result<RegexParse> parse_regex(std::string_view regex, bool full_match, const Expr& any, const Limits& limits) {
  RegexParser p(regex, limits);
  return p.parse(full_match, any);
}

}  // namespace tk::grammar
