// An incremental JSON syntax checker for one value, fed a character at a time. The tool-call
// parsers use it to know, while a model is still writing a call, which characters belong to the
// call object's "name" and "arguments" members (so arguments stream as they are written) and
// whether the object is still well formed. Private to src/tools.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tk::tools {

class JsonScanner {
 public:
  enum class Step {
    kMore,        // consumed; the value is not finished
    kDone,        // consumed; the value ended with this character
    kDoneBefore,  // the value (a top-level number) ended before this character, which is not consumed
    kError,       // not JSON; the scanner stays failed
  };
  // A member of the top-level object: its key (decoded) and the span of its raw value in text().
  struct Member {
    std::string key;
    size_t value_begin = 0, value_end = 0;  // [begin, end) in text()
    bool complete = false;                  // value_end is final
  };
  static constexpr int kMaxDepth = 256;  // deeper nesting is an error, not a deep stack

  Step push(char c);
  const std::string& text() const { return text_; }  // every consumed character
  bool top_is_object() const { return !text_.empty() && text_[0] == '{'; }
  const std::vector<Member>& members() const { return members_; }
  bool failed() const { return state_ == State::kFailed; }

 private:
  enum class State {
    kValue, kValueOrClose, kKeyOrClose, kKey, kColon, kCommaOrClose,
    kString, kEscape, kHex, kNumber, kLiteral, kEnd, kFailed,
  };
  // The number DFA's positions (JSON's grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?).
  enum class Num { kSign, kZero, kInt, kDot, kFrac, kExp, kExpSign, kExpDigits };
  Step dispatch(char c);
  Step begin_value(char c);
  Step end_value();  // a value at the current depth finished
  bool number(char c);  // false: c cannot continue the number
  bool number_may_end() const;
  bool top_object_member_depth() const { return stack_.size() == 1 && stack_[0] == '{'; }

  std::string text_;
  std::vector<char> stack_;  // '{' or '[' per open container
  std::vector<Member> members_;
  State state_ = State::kValue;
  Num num_ = Num::kSign;
  bool string_is_key_ = false;
  int hex_left_ = 0;
  std::string literal_;  // the rest of true/false/null still expected
  size_t key_begin_ = 0;
  bool value_open_ = false;  // a top-level member's value began and has not ended
};

}  // namespace tk::tools
