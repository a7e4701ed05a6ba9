// The outputs of a forced tool choice, whose grammar (forced_call_schema) shapes them: "required"
// writes a JSON list of {"name", "parameters"}; a named function writes its arguments alone.
#include "call_parser.h"

namespace tk::tools {
namespace {

using Step = JsonScanner::Step;

// ---- tool_choice "required": [{"name": ..., "parameters": {...}}, ...]

class RequiredParser final : public SteppedCallParser {
 public:
  using SteppedCallParser::SteppedCallParser;
  void finish(OutputDelta& out) override {
    if (json_named() && state_ == State::kJson) end_call();
    if (state_ != State::kEnd) malformed_ = true;  // the grammar ends the list; cut by max_tokens
    if (state_ == State::kBroken) content(buf_, out);
    buf_.clear();
  }

 private:
  enum class State { kStart, kList, kJson, kNext, kEnd, kBroken };
  bool step(OutputDelta& out) override {
    if (state_ != State::kJson && state_ != State::kBroken) skip_ws(buf_);
    if (buf_.empty()) return false;
    const char c = buf_[0];
    switch (state_) {
      case State::kStart:
        if (c != '[') return broken();
        state_ = State::kList;
        break;
      case State::kList:
        if (c == ']' && calls() > 0) {
          state_ = State::kEnd;
          break;
        }
        if (c != '{') return broken();
        json_begin();
        state_ = State::kJson;
        return true;
      case State::kJson:
        for (size_t i = 0; i < buf_.size(); ++i) {
          const Step s = json_push(buf_[i], out);
          if (s == Step::kError || (s == Step::kDone && !json_end(out))) {
            if (json_named()) end_call();
            buf_.erase(0, i + 1);
            return broken();
          }
          if (s == Step::kDone) {
            buf_.erase(0, i + 1);
            state_ = State::kNext;
            return true;
          }
        }
        buf_.clear();
        return false;
      case State::kNext:
        if (c == ',') state_ = State::kList;
        else if (c == ']') state_ = State::kEnd;
        else return broken();
        break;
      case State::kEnd:
      case State::kBroken:
        return broken();
    }
    buf_.erase(0, 1);
    return true;
  }
  bool broken() {
    malformed_ = true;
    state_ = State::kBroken;
    return false;  // the rest is content, at finish
  }
  State state_ = State::kStart;
};

// ---- a named tool choice: the output is the function's arguments

class NamedParser final : public CallParser {
 public:
  NamedParser(std::string name, uint64_t seed, bool mistral_ids) : CallParser(seed, mistral_ids), name_(std::move(name)) {}
  void feed(std::string_view text, OutputDelta& out) override {
    if (!json_named()) start_call(name_, out);
    // Leading and trailing whitespace is not part of the arguments.
    for (char c : text) {
      if (is_json_ws(c)) {
        if (begun_) ws_ += c;
        continue;
      }
      begun_ = true;
      call_arguments(ws_, out);
      ws_.clear();
      call_arguments(std::string_view(&c, 1), out);
    }
  }
  void finish(OutputDelta& out) override {
    if (!json_named()) start_call(name_, out);
    end_call();
  }

 private:
  std::string name_, ws_;
  bool begun_ = false;
};

}  // namespace

std::unique_ptr<TextParser> make_required_parser(uint64_t seed, bool mistral_ids) {
  return std::make_unique<RequiredParser>(seed, mistral_ids);
}

std::unique_ptr<TextParser> make_named_parser(std::string name, uint64_t seed, bool mistral_ids) {
  return std::make_unique<NamedParser>(std::move(name), seed, mistral_ids);
}

}  // namespace tk::tools
