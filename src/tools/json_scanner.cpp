// The incremental JSON checker of json_scanner.h: a pushdown automaton over characters (a stack
// of open containers, a state for where in a value we are, a small DFA for numbers).
#include "json_scanner.h"

#include <nlohmann/json.hpp>

namespace tk::tools {
namespace {
bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
}  // namespace

JsonScanner::Step JsonScanner::push(char c) {
  if (state_ == State::kFailed || state_ == State::kEnd) {
    state_ = State::kFailed;
    return Step::kError;
  }
  if (state_ == State::kNumber) {
    if (number(c)) {
      text_ += c;
      return Step::kMore;
    }
    if (!number_may_end()) {
      state_ = State::kFailed;
      return Step::kError;
    }
    if (end_value() == Step::kDone) return Step::kDoneBefore;
  }
  text_ += c;
  Step s = dispatch(c);
  if (s == Step::kError) state_ = State::kFailed;
  return s;
}

JsonScanner::Step JsonScanner::dispatch(char c) {
  switch (state_) {
    case State::kValue:
    case State::kValueOrClose:
      if (is_ws(c)) return Step::kMore;
      if (state_ == State::kValueOrClose && c == ']') {
        stack_.pop_back();
        return end_value();
      }
      return begin_value(c);
    case State::kKeyOrClose:
    case State::kKey:
      if (is_ws(c)) return Step::kMore;
      if (state_ == State::kKeyOrClose && c == '}') {
        stack_.pop_back();
        return end_value();
      }
      if (c != '"') return Step::kError;
      state_ = State::kString, string_is_key_ = true, key_begin_ = text_.size() - 1;
      return Step::kMore;
    case State::kString:
      if (c == '\\') {
        state_ = State::kEscape;
        return Step::kMore;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Step::kError;
      if (c != '"') return Step::kMore;
      if (!string_is_key_) return end_value();
      if (top_object_member_depth()) {
        // NOTE: the key's text was checked character by character, so it parses.
        Member m;
        m.key = nlohmann::json::parse(text_.substr(key_begin_)).get<std::string>();
        members_.push_back(std::move(m));
      }
      state_ = State::kColon;
      return Step::kMore;
    case State::kEscape:
      if (c == 'u') {
        state_ = State::kHex, hex_left_ = 4;
        return Step::kMore;
      }
      if (std::string_view("\"\\/bfnrt").find(c) == std::string_view::npos) return Step::kError;
      state_ = State::kString;
      return Step::kMore;
    case State::kHex:
      if (!is_hex(c)) return Step::kError;
      if (--hex_left_ == 0) state_ = State::kString;
      return Step::kMore;
    case State::kColon:
      if (is_ws(c)) return Step::kMore;
      if (c != ':') return Step::kError;
      state_ = State::kValue;
      return Step::kMore;
    case State::kCommaOrClose:
      if (is_ws(c)) return Step::kMore;
      if (c == ',') {
        state_ = stack_.back() == '{' ? State::kKey : State::kValue;
        return Step::kMore;
      }
      if ((c == '}' && stack_.back() == '{') || (c == ']' && stack_.back() == '[')) {
        stack_.pop_back();
        return end_value();
      }
      return Step::kError;
    case State::kLiteral:
      if (literal_.empty() || c != literal_[0]) return Step::kError;
      literal_.erase(0, 1);
      return literal_.empty() ? end_value() : Step::kMore;
    case State::kNumber:  // handled in push
    case State::kEnd:
    case State::kFailed:
      break;
  }
  return Step::kError;
}

JsonScanner::Step JsonScanner::begin_value(char c) {
  if (top_object_member_depth() && !members_.empty()) {
    members_.back().value_begin = text_.size() - 1;
    value_open_ = true;
  }
  if (c == '{' || c == '[') {
    if (static_cast<int>(stack_.size()) >= kMaxDepth) return Step::kError;
    stack_.push_back(c);
    state_ = c == '{' ? State::kKeyOrClose : State::kValueOrClose;
    return Step::kMore;
  }
  if (c == '"') {
    state_ = State::kString, string_is_key_ = false;
    return Step::kMore;
  }
  if (c == '-' || is_digit(c)) {
    state_ = State::kNumber;
    num_ = c == '-' ? Num::kSign : c == '0' ? Num::kZero : Num::kInt;
    return Step::kMore;
  }
  if (c == 't' || c == 'f' || c == 'n') {
    literal_ = c == 't' ? "rue" : c == 'f' ? "alse" : "ull";
    state_ = State::kLiteral;
    return Step::kMore;
  }
  return Step::kError;
}

JsonScanner::Step JsonScanner::end_value() {
  if (stack_.empty()) {
    state_ = State::kEnd;
    return Step::kDone;
  }
  if (top_object_member_depth() && value_open_) {
    members_.back().value_end = text_.size();
    members_.back().complete = true;
    value_open_ = false;
  }
  state_ = State::kCommaOrClose;
  return Step::kMore;
}

bool JsonScanner::number(char c) {
  const bool d = is_digit(c), e = c == 'e' || c == 'E';
  switch (num_) {
    case Num::kSign: if (c == '0') num_ = Num::kZero; else if (d) num_ = Num::kInt; else return false; return true;
    case Num::kZero: if (c == '.') num_ = Num::kDot; else if (e) num_ = Num::kExp; else return false; return true;
    case Num::kInt: if (c == '.') num_ = Num::kDot; else if (e) num_ = Num::kExp; else if (!d) return false; return true;
    case Num::kDot: if (!d) return false; num_ = Num::kFrac; return true;
    case Num::kFrac: if (e) num_ = Num::kExp; else if (!d) return false; return true;
    case Num::kExp: if (c == '+' || c == '-') num_ = Num::kExpSign; else if (d) num_ = Num::kExpDigits; else return false; return true;
    case Num::kExpSign: if (!d) return false; num_ = Num::kExpDigits; return true;
    case Num::kExpDigits: return d;
  }
  return false;
}

bool JsonScanner::number_may_end() const {
  return num_ == Num::kZero || num_ == Num::kInt || num_ == Num::kFrac || num_ == Num::kExpDigits;
}

}  // namespace tk::tools
