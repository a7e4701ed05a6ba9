// The tool-call parsers whose calls are JSON objects: hermes (<tool_call>{...}</tool_call>, Qwen2.5
// and Qwen3), llama3_json (Llama 3.1-3.3: an optional <|python_tag|>, then {"name", "parameters"}
// objects separated by ';', at the start of the output), mistral ([TOOL_CALLS] then a JSON list, or
// the newer [TOOL_CALLS]name[ARGS]{...}), and the forced forms of tool_choice (a list of calls, or
// one named function's arguments).
#include "call_parser.h"

namespace tk::tools {
namespace {

using Step = JsonScanner::Step;

// ---- hermes

class HermesParser final : public CallParser {
 public:
  using CallParser::CallParser;
  void feed(std::string_view text, OutputDelta& out) override {
    buf_ += text;
    while (step(out)) {}
  }
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

  // Consumes what it can of buf_; false when it needs more text.
  bool step(OutputDelta& out) {
    switch (state_) {
      case State::kText: {
        MarkerHit h = find_markers(buf_, {kStart});
        content(std::string_view(buf_).substr(0, h.at), out);
        if (!h.full) {
          buf_.erase(0, h.at);
          return false;
        }
        buf_.erase(0, h.at + kStart.size());
        raw_ = kStart, state_ = State::kOpen;
        return true;
      }
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

class Llama3JsonParser final : public CallParser {
 public:
  using CallParser::CallParser;
  void feed(std::string_view text, OutputDelta& out) override {
    buf_ += text;
    while (step(out)) {}
  }
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

  bool step(OutputDelta& out) {
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

// ---- mistral

class MistralParser final : public CallParser {
 public:
  MistralParser(uint64_t seed) : CallParser(seed, /*mistral_ids=*/true) {}
  void feed(std::string_view text, OutputDelta& out) override {
    buf_ += text;
    while (step(out)) {}
  }
  void finish(OutputDelta& out) override {
    if (json_named() && (state_ == State::kJson || state_ == State::kArgs)) {
      malformed_ = true;
      end_call();
    } else if (state_ != State::kText && state_ != State::kBroken && state_ != State::kNext) {
      if (calls() > 0) malformed_ = true;
      content(raw_, out);
    }
    if (state_ != State::kNext) content(buf_, out);
    buf_.clear();
    flush_content(out);
  }

 private:
  // kList/kJson/kNext: the JSON-list form; kName/kArgsOpen/kArgs: name[ARGS]{...}.
  enum class State { kText, kAfterMarker, kList, kJson, kNext, kName, kArgsOpen, kArgs, kBroken };
  static constexpr std::string_view kMarker = "[TOOL_CALLS]", kArgsMarker = "[ARGS]";
  static constexpr size_t kMaxName = 256;

  bool step(OutputDelta& out) {
    switch (state_) {
      case State::kText: {
        MarkerHit h = find_markers(buf_, {kMarker});
        content(std::string_view(buf_).substr(0, h.at), out);
        if (!h.full) {
          buf_.erase(0, h.at);
          return false;
        }
        buf_.erase(0, h.at + kMarker.size());
        raw_ = kMarker, state_ = State::kAfterMarker;
        return true;
      }
      case State::kAfterMarker:
        raw_ += skip_ws(buf_);
        if (buf_.empty()) return false;
        if (buf_[0] == '[') {
          raw_ += '[';
          buf_.erase(0, 1);
          state_ = State::kList;
          return true;
        }
        state_ = State::kName;
        return true;
      case State::kList:
        raw_ += skip_ws(buf_);
        if (buf_.empty()) return false;
        if (buf_[0] == ']') return end_list();
        if (buf_[0] != '{') return fail(out);
        json_begin();
        state_ = State::kJson;
        return true;
      case State::kJson:
      case State::kArgs:
        for (size_t i = 0; i < buf_.size(); ++i) {
          const Step s = json_push(buf_[i], out);
          raw_ += buf_[i];
          if (s == Step::kError) {
            buf_.erase(0, i + 1);
            return fail(out);
          }
          if (s == Step::kDone) {
            buf_.erase(0, i + 1);
            if (!json_end(out)) return fail(out);
            raw_.clear();
            state_ = state_ == State::kJson ? State::kNext : State::kText;
            return true;
          }
        }
        buf_.clear();
        return false;
      case State::kNext:
        skip_ws(buf_);
        if (buf_.empty()) return false;
        if (buf_[0] == ',') {
          buf_.erase(0, 1);
          state_ = State::kList;
          return true;
        }
        if (buf_[0] == ']') return end_list();
        return fail(out);
      case State::kName: {
        MarkerHit h = find_markers(buf_, {kArgsMarker});
        for (size_t i = 0; i < h.at; ++i) {
          const char c = buf_[i];
          if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.') ||
              name_.size() >= kMaxName) {
            buf_.erase(0, i);
            return fail(out);
          }
          name_ += c, raw_ += c;
        }
        buf_.erase(0, h.at);
        if (!h.full) return false;
        if (name_.empty()) return fail(out);
        buf_.erase(0, kArgsMarker.size());
        raw_ += kArgsMarker;
        state_ = State::kArgsOpen;
        return true;
      }
      case State::kArgsOpen:
        raw_ += skip_ws(buf_);
        if (buf_.empty()) return false;
        if (buf_[0] != '{') return fail(out);
        start_call(name_, out);
        name_.clear();
        json_begin(/*raw_arguments=*/true);
        state_ = State::kArgs;
        return true;
      case State::kBroken:
        content(buf_, out);
        buf_.clear();
        return false;
    }
    return false;
  }
  bool end_list() {
    buf_.erase(0, 1);
    raw_.clear();
    state_ = State::kText;
    return true;
  }
  // Not a call: before any call's name went out, the markup is content; after, the answer is
  // malformed and the rest is content.
  bool fail(OutputDelta& out) {
    if (json_named()) {
      end_call();
      malformed_ = true;
      content(buf_, out);
      buf_.clear();
      state_ = State::kBroken;
      return false;
    }
    if (calls() > 0) malformed_ = true;
    content(raw_, out);
    raw_.clear(), name_.clear();
    state_ = State::kBroken;
    return true;
  }

  State state_ = State::kText;
  std::string raw_, name_;
};

// ---- tool_choice "required": [{"name": ..., "parameters": {...}}, ...]

class RequiredParser final : public CallParser {
 public:
  using CallParser::CallParser;
  void feed(std::string_view text, OutputDelta& out) override {
    buf_ += text;
    while (step(out)) {}
  }
  void finish(OutputDelta& out) override {
    if (json_named() && state_ == State::kJson) end_call();
    if (state_ != State::kEnd) malformed_ = true;  // the grammar ends the list; cut by max_tokens
    if (state_ == State::kBroken) content(buf_, out);
    buf_.clear();
  }

 private:
  enum class State { kStart, kList, kJson, kNext, kEnd, kBroken };
  bool step(OutputDelta& out) {
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

std::unique_ptr<TextParser> make_tool_parser(ToolParserKind kind, std::vector<Tool> tools, uint64_t seed);
std::unique_ptr<TextParser> make_qwen3_coder_parser(std::vector<Tool> tools, uint64_t seed);

std::unique_ptr<TextParser> make_tool_parser(ToolParserKind kind, std::vector<Tool> tools, uint64_t seed) {
  switch (kind) {
    case ToolParserKind::kHermes: return std::make_unique<HermesParser>(seed, false);
    case ToolParserKind::kLlama3Json: return std::make_unique<Llama3JsonParser>(seed, false);
    case ToolParserKind::kMistral: return std::make_unique<MistralParser>(seed);
    case ToolParserKind::kQwen3Coder: return make_qwen3_coder_parser(std::move(tools), seed);
  }
  return nullptr;
}

std::unique_ptr<TextParser> make_required_parser(uint64_t seed, bool mistral_ids) {
  return std::make_unique<RequiredParser>(seed, mistral_ids);
}

std::unique_ptr<TextParser> make_named_parser(std::string name, uint64_t seed, bool mistral_ids) {
  return std::make_unique<NamedParser>(std::move(name), seed, mistral_ids);
}

}  // namespace tk::tools
