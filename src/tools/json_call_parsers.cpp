// The tool-call parsers whose calls are JSON objects: hermes (<tool_call>{...}</tool_call>, Qwen2.5
// and Qwen3) and llama3_json (Llama 3.1-3.3: an optional <|python_tag|>, then {"name",
// "parameters"} objects separated by ';', at the start of the output); and the parser factory.
#include "call_parser.h"

namespace tk::tools {
namespace {

using Step = JsonScanner::Step;

// ---- hermes

class HermesParser final : public SteppedCallParser {
 public:
  using SteppedCallParser::SteppedCallParser;
  void finish(OutputDelta& out) override {
    if (state_ == State::kOpen || (state_ == State::kJson && !json_named())) {
      content(raw_ + buf_, out);
    } else if (state_ == State::kJson) {
      malformed_ = true;  // cut inside a call (max_tokens)
      end_call();
    } else if (state_ != State::kClose) {
      content(buf_, out);
    }
    buf_.clear();
    flush_content(out);
  }

 private:
  enum class State { kText, kOpen, kJson, kClose, kBroken };
  static constexpr std::string_view kStart = "<tool_call>", kEnd = "</tool_call>";

  bool step(OutputDelta& out) override {
    switch (state_) {
      case State::kText:
        if (!content_until(kStart, out)) return false;
        raw_ = kStart, state_ = State::kOpen;
        return true;
      case State::kOpen: {
        raw_ += skip_ws(buf_);
        if (buf_.empty()) return false;
        if (buf_[0] != '{') return fall_back(out);
        json_begin();
        state_ = State::kJson;
        return true;
      }
      case State::kJson:
        for (size_t i = 0; i < buf_.size(); ++i) {
          const Step s = json_push(buf_[i], out);
          raw_ += buf_[i];
          if (s == Step::kError) {
            buf_.erase(0, i + 1);
            if (!json_named()) return fall_back(out);
            end_call();
            malformed_ = true, state_ = State::kBroken;
            return true;
          }
          if (s == Step::kDone) {
            buf_.erase(0, i + 1);
            if (!json_end(out)) return fall_back(out);
            state_ = State::kClose;
            return true;
          }
        }
        buf_.clear();
        return false;
      case State::kClose: {
        skip_ws(buf_);
        if (buf_.empty() || is_proper_prefix(buf_, kEnd)) return false;
        if (buf_.compare(0, kEnd.size(), kEnd) == 0) buf_.erase(0, kEnd.size());
        state_ = State::kText;  // a missing </tool_call> is forgiven
        return true;
      }
      case State::kBroken:
        content(buf_, out);
        buf_.clear();
        return false;
    }
    return false;
  }
  // What looked like a call was not one: its text is content.
  bool fall_back(OutputDelta& out) {
    content(raw_, out);
    raw_.clear();
    state_ = State::kText;
    return true;
  }

  State state_ = State::kText;
  std::string raw_;  // the call's text so far (for falling back)
};

// ---- llama3_json

class Llama3JsonParser final : public SteppedCallParser {
 public:
  using SteppedCallParser::SteppedCallParser;
  void finish(OutputDelta& out) override {
    if (state_ == State::kJson && json_named()) {
      malformed_ = true;
      end_call();
    } else if (state_ == State::kStart || state_ == State::kJson) {
      if (calls() == 0) content(raw_, out);
      else malformed_ = true;
      content(buf_, out);
    } else if (state_ == State::kPass) {
      content(buf_, out);
    }
    buf_.clear();
    flush_content(out);
  }

 private:
  enum class State { kStart, kJson, kAfter, kBetween, kPass };
  static constexpr std::string_view kTag = "<|python_tag|>";

  bool step(OutputDelta& out) override {
    switch (state_) {
      case State::kStart: {
        size_t ws = 0;
        while (ws < buf_.size() && is_json_ws(buf_[ws])) ++ws;
        std::string_view rest = std::string_view(buf_).substr(ws);
        if (rest.empty() || is_proper_prefix(rest, kTag)) return false;
        raw_ += buf_.substr(0, ws);
        buf_.erase(0, ws);
        if (rest.substr(0, kTag.size()) == kTag) {
          raw_ += kTag;
          buf_.erase(0, kTag.size());
          state_ = State::kBetween;
          return true;
        }
        return begin_object(out);
      }
      case State::kBetween:
      case State::kAfter: {
        raw_ += skip_ws(buf_);
        if (buf_.empty()) return false;
        if (state_ == State::kAfter && buf_[0] == ';') {
          raw_ += ';';
          buf_.erase(0, 1);
          state_ = State::kBetween;
          return true;
        }
        return begin_object(out);
      }
      case State::kJson:
        for (size_t i = 0; i < buf_.size(); ++i) {
          const Step s = json_push(buf_[i], out);
          raw_ += buf_[i];
          if (s == Step::kError || (s == Step::kDone && !json_end(out))) {
            buf_.erase(0, i + 1);
            return broken(out, raw_.substr(raw_.size() - (json_text().size())));
          }
          if (s == Step::kDone) {
            buf_.erase(0, i + 1);
            state_ = State::kAfter;
            return true;
          }
        }
        buf_.clear();
        return false;
      case State::kPass:
        content(buf_, out);
        buf_.clear();
        return false;
    }
    return false;
  }
  bool begin_object(OutputDelta& out) {
    if (buf_[0] != '{') return broken(out, "");
    json_begin();
    state_ = State::kJson;
    return true;
  }
  // Not (or no longer) calls: with no call made, all text so far is content (vLLM: the output did
  // not parse as calls); after a call, the rest is content and the answer is malformed.
  bool broken(OutputDelta& out, const std::string& partial) {
    if (calls() == 0 && !json_named()) {
      content(raw_, out);
    } else {
      if (json_named()) end_call();
      malformed_ = true;
      content(partial, out);
    }
    raw_.clear();
    state_ = State::kPass;
    return true;
  }

  State state_ = State::kStart;
  std::string raw_;
};

}  // namespace

std::unique_ptr<TextParser> make_tool_parser(ToolParserKind kind, std::vector<Tool> tools, uint64_t seed) {
  switch (kind) {
    case ToolParserKind::kHermes: return std::make_unique<HermesParser>(seed, false);
    case ToolParserKind::kLlama3Json: return std::make_unique<Llama3JsonParser>(seed, false);
    case ToolParserKind::kMistral: return make_mistral_parser(seed);
    case ToolParserKind::kQwen3Coder: return make_qwen3_coder_parser(std::move(tools), seed);
  }
  return nullptr;
}

}  // namespace tk::tools
