// mistral: [TOOL_CALLS] then a JSON list of {"name", "arguments"} objects (Mistral 7B v0.3, Nemo),
// or the newer tokenizers' [TOOL_CALLS]name[ARGS]{...}, one marker per call. Ids are Mistral's
// nine alphanumerics (its templates check the length).
#include <cctype>

#include "call_parser.h"

namespace tk::tools {
namespace {

using Step = JsonScanner::Step;

// ---- mistral

class MistralParser final : public SteppedCallParser {
 public:
  MistralParser(uint64_t seed) : SteppedCallParser(seed, /*mistral_ids=*/true) {}
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

  bool step(OutputDelta& out) override {
    switch (state_) {
      case State::kText:
        if (!content_until(kMarker, out)) return false;
        raw_ = kMarker, state_ = State::kAfterMarker;
        return true;
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

}  // namespace

std::unique_ptr<TextParser> make_mistral_parser(uint64_t seed) { return std::make_unique<MistralParser>(seed); }

}  // namespace tk::tools
