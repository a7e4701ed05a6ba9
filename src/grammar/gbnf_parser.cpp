// parse_gbnf: llama.cpp's GBNF text into the IR. A recursive-descent parser over the bytes with
// a depth bound; every error names its line:column, because grammars arrive from API clients
// who need to find their mistake.
#include <charconv>

#include "ir.h"

namespace tk::grammar {
namespace {

bool is_word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

class Parser {
 public:
  Parser(std::string_view text, const Limits& limits) : s_(text), limits_(limits) {}

  Result<Grammar> parse(std::string_view root_name);

 private:
  Status error_at(size_t pos, const std::string& message) const;
  void skip_space();
  bool at_rule_start() const;
  bool at_end() const { return pos_ >= s_.size(); }
  std::string_view parse_name();
  Status parse_rule();
  Result<Expr> parse_alternatives(int depth);
  Result<Expr> parse_sequence(int depth);
  Result<Expr> parse_atom(int depth);
  Result<Expr> parse_postfix(Expr atom);
  Result<uint32_t> parse_char(bool in_class);
  Result<Expr> parse_literal();
  Result<Expr> parse_class();
  Result<int64_t> parse_count();
  int32_t rule_id(std::string_view name, size_t pos);

  std::string_view s_;
  const Limits& limits_;
  size_t pos_ = 0;
  GrammarBuilder builder_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
};

Status Parser::error_at(size_t pos, const std::string& message) const {
  int line = 1, col = 1;
  for (size_t i = 0; i < pos && i < s_.size(); ++i) {
    if (s_[i] == '\n') {
      ++line;
      col = 1;
    } else if ((static_cast<unsigned char>(s_[i]) & 0xC0) != 0x80) {
      ++col;
    }
  }
  return invalid_argument("grammar:" + std::to_string(line) + ":" + std::to_string(col) + ": " + message);
}

void Parser::skip_space() {
  while (pos_ < s_.size()) {
    char c = s_[pos_];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++pos_;
    } else if (c == '#') {
      while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
    } else {
      break;
    }
  }
}

// `name ::=` ahead: the current rule ends here.
bool Parser::at_rule_start() const {
  size_t p = pos_;
  while (p < s_.size() && is_word_char(s_[p])) ++p;
  if (p == pos_) return false;
  while (p < s_.size() && (s_[p] == ' ' || s_[p] == '\t')) ++p;
  return s_.substr(p, 3) == "::=";
}

std::string_view Parser::parse_name() {
  size_t start = pos_;
  while (pos_ < s_.size() && is_word_char(s_[pos_])) ++pos_;
  return s_.substr(start, pos_ - start);
}

int32_t Parser::rule_id(std::string_view name, size_t pos) {
  int32_t id = builder_.find(name);
  if (id >= 0) return id;
  id = builder_.add_rule(name);
  defined_.push_back(false);
  first_use_.push_back(pos);
  return id;
}

Result<Grammar> Parser::parse(std::string_view root_name) {
  if (s_.size() > limits_.max_input_bytes) {
    return invalid_argument("grammar: " + std::to_string(s_.size()) + " bytes is over the limit of " +
                            std::to_string(limits_.max_input_bytes));
  }
  skip_space();
  if (at_end()) return invalid_argument("grammar: empty grammar (no rules)");
  while (!at_end()) {
    TK_RETURN_IF_ERROR(parse_rule());
    skip_space();
  }
  for (size_t i = 0; i < defined_.size(); ++i) {
    if (!defined_[i]) {
      return error_at(first_use_[i], "undefined rule '" + builder_.name(static_cast<int32_t>(i)) + "'");
    }
  }
  int32_t root = builder_.find(root_name);
  if (root < 0) return invalid_argument("grammar: no rule named '" + std::string(root_name) + "' (the start rule)");
  return builder_.build(root);
}

Status Parser::parse_rule() {
  size_t start = pos_;
  std::string_view name = parse_name();
  if (name.empty()) return error_at(pos_, "expected a rule name");
  while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t')) ++pos_;
  if (s_.substr(pos_, 3) != "::=") return error_at(pos_, "expected '::=' after rule name '" + std::string(name) + "'");
  pos_ += 3;
  int32_t id = rule_id(name, start);
  if (defined_[id]) return error_at(start, "rule '" + std::string(name) + "' is defined twice");
  defined_[id] = true;
  if (builder_.num_rules() > static_cast<size_t>(limits_.max_rules)) {
    return error_at(start, "more than " + std::to_string(limits_.max_rules) + " rules");
  }
  TK_ASSIGN_OR_RETURN(Expr body, parse_alternatives(0));
  skip_space();
  if (!at_end() && !at_rule_start()) {
    if (s_[pos_] == ')') return error_at(pos_, "unmatched ')'");
    return error_at(pos_, "unexpected '" + std::string(1, s_[pos_]) + "'");
  }
  builder_.set_body(id, std::move(body));
  return {};
}

Result<Expr> Parser::parse_alternatives(int depth) {
  if (depth > limits_.max_nesting) return error_at(pos_, "nesting deeper than " + std::to_string(limits_.max_nesting));
  std::vector<Expr> alts;
  while (true) {
    TK_ASSIGN_OR_RETURN(Expr e, parse_sequence(depth));
    alts.push_back(std::move(e));
    skip_space();
    if (at_end() || s_[pos_] != '|') break;
    ++pos_;
  }
  if (alts.size() == 1) return std::move(alts[0]);
  Expr e;  // not alt(): an empty alternative must stay an alternative
  e.kind = Expr::Kind::kAlt;
  e.children = std::move(alts);
  return e;
}

Result<Expr> Parser::parse_sequence(int depth) {
  std::vector<Expr> items;
  while (true) {
    skip_space();
    if (at_end() || s_[pos_] == '|' || s_[pos_] == ')' || at_rule_start()) break;
    TK_ASSIGN_OR_RETURN(Expr atom, parse_atom(depth));
    TK_ASSIGN_OR_RETURN(Expr item, parse_postfix(std::move(atom)));
    items.push_back(std::move(item));
  }
  return seq(std::move(items));
}

Result<Expr> Parser::parse_atom(int depth) {
  char c = s_[pos_];
  if (c == '"') return parse_literal();
  if (c == '[') return parse_class();
  if (c == '.') {
    ++pos_;
    return cls(complement_set({}));
  }
  if (c == '(') {
    size_t open = pos_++;
    TK_ASSIGN_OR_RETURN(Expr inner, parse_alternatives(depth + 1));
    skip_space();
    if (at_end() || s_[pos_] != ')') return error_at(open, "unclosed '('");
    ++pos_;
    return inner;
  }
  if (is_word_char(c)) {
    size_t start = pos_;
    std::string_view name = parse_name();
    return ref(rule_id(name, start));
  }
  return error_at(pos_, "unexpected '" + std::string(1, c) + "'");
}

Result<int64_t> Parser::parse_count() {
  while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  size_t start = pos_;
  while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
  if (pos_ == start) return error_at(pos_, "expected a number in {m,n}");
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s_.data() + start, s_.data() + pos_, v);
  if (ec != std::errc() || v > limits_.max_repeat) {
    return error_at(start, "repetition count over the limit of " + std::to_string(limits_.max_repeat));
  }
  while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  return v;
}

Result<Expr> Parser::parse_postfix(Expr atom) {
  while (!at_end()) {
    char c = s_[pos_];
    if (c == '*' || c == '+' || c == '?') {
      ++pos_;
      atom = c == '*' ? star(std::move(atom)) : c == '+' ? plus(std::move(atom)) : opt(std::move(atom));
      continue;
    }
    if (c != '{') break;
    size_t open = pos_++;
    TK_ASSIGN_OR_RETURN(int64_t min, parse_count());
    int64_t max = min;
    if (!at_end() && s_[pos_] == ',') {
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
      max = kUnbounded;
      if (!at_end() && s_[pos_] != '}') {
        TK_ASSIGN_OR_RETURN(max, parse_count());
      }
    }
    if (at_end() || s_[pos_] != '}') return error_at(open, "unclosed '{' (expected {m}, {m,} or {m,n})");
    ++pos_;
    if (max != kUnbounded && max < min) return error_at(open, "repetition {m,n} with n < m");
    atom = rep(std::move(atom), min, max);
  }
  return atom;
}

Result<uint32_t> Parser::parse_char(bool in_class) {
  size_t start = pos_;
  if (s_[pos_] != '\\') {
    uint32_t cp = 0;
    int len = decode_utf8(s_, pos_, &cp);
    if (len == 0) return error_at(pos_, "invalid UTF-8");
    pos_ += len;
    return cp;
  }
  if (pos_ + 1 >= s_.size()) return error_at(pos_, "unfinished escape");
  char e = s_[pos_ + 1];
  pos_ += 2;
  int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
  if (digits > 0) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      int h = pos_ < s_.size() ? hex_value(s_[pos_]) : -1;
      if (h < 0) return error_at(start, std::string("expected ") + std::to_string(digits) + " hex digits after \\" + e);
      v = v * 16 + h;
      ++pos_;
    }
    if (v > kMaxCodepoint || (v >= 0xD800 && v <= 0xDFFF)) return error_at(start, "escape is not a Unicode character");
    return v;
  }
  switch (e) {
    case 'n': return uint32_t{'\n'};
    case 'r': return uint32_t{'\r'};
    case 't': return uint32_t{'\t'};
    case '0': return uint32_t{0};
    case '\\': case '"': case '[': case ']': case '-': case '^': case '/': case '.': case '|':
      return static_cast<uint32_t>(e);
    default: break;
  }
  (void)in_class;
  return error_at(start, std::string("unknown escape '\\") + e + "'");
}

Result<Expr> Parser::parse_literal() {
  size_t open = pos_++;
  std::string bytes;
  while (true) {
    if (at_end() || s_[pos_] == '\n') return error_at(open, "unclosed string literal");
    if (s_[pos_] == '"') break;
    TK_ASSIGN_OR_RETURN(uint32_t cp, parse_char(false));
    append_utf8(bytes, cp);
  }
  ++pos_;
  return lit(bytes);
}

Result<Expr> Parser::parse_class() {
  size_t open = pos_++;
  bool negated = !at_end() && s_[pos_] == '^';
  if (negated) ++pos_;
  CodepointSet set;
  while (true) {
    if (at_end() || s_[pos_] == '\n') return error_at(open, "unclosed character class");
    if (s_[pos_] == ']') break;
    size_t here = pos_;
    TK_ASSIGN_OR_RETURN(uint32_t lo, parse_char(true));
    uint32_t hi = lo;
    if (pos_ + 1 < s_.size() && s_[pos_] == '-' && s_[pos_ + 1] != ']') {
      ++pos_;
      TK_ASSIGN_OR_RETURN(hi, parse_char(true));
      if (hi < lo) return error_at(here, "character range out of order");
    }
    set.push_back({lo, hi});
  }
  ++pos_;
  set = normalize_set(std::move(set));
  return cls(negated ? complement_set(set) : set);
}

}  // namespace

Result<Grammar> parse_gbnf(std::string_view text, std::string_view root_rule, const Limits& limits) {
  Parser parser(text, limits);
  return parser.parse(root_rule);
}

}  // namespace tk::grammar
