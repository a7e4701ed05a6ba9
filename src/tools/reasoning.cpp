// Reasoning parsers: the text between <think> and </think> is reasoning, the rest content (handed
// to the tool-call parser when there is one). deepseek_r1 starts inside the reasoning: its template
// writes <think> into the prompt, so the output may open with the reasoning itself; qwen3 reasons
// only when the output opens with <think> (or its template opened one), so a model answering with
// enable_thinking false is plain content.
#include "call_parser.h"

namespace tk::tools {
namespace {

constexpr std::string_view kOpen = "<think>", kClose = "</think>";

class ReasoningParser final : public TextParser {
 public:
  ReasoningParser(bool starts_inside, std::unique_ptr<TextParser> then)
      : starts_inside_(starts_inside), then_(std::move(then)) {}
  void feed(std::string_view text, OutputDelta& out) override {
    buf_ += text;
    while (step(out)) {}
  }
  void finish(OutputDelta& out) override {
    if (state_ == State::kStart && !starts_inside_) state_ = State::kContent;
    if (state_ == State::kContent) {
      pass(buf_, out);
    } else {
      out.reasoning += buf_;  // a cut reasoning (max_tokens) stays reasoning
    }
    buf_.clear();
    if (then_) then_->finish(out);
  }
  bool malformed() const override { return then_ && then_->malformed(); }

 private:
  enum class State { kStart, kReasoning, kContent };
  bool step(OutputDelta& out) {
    switch (state_) {
      case State::kStart:
        if (is_proper_prefix(buf_, kOpen)) return false;
        if (buf_.compare(0, kOpen.size(), kOpen) == 0) {
          buf_.erase(0, kOpen.size());
          state_ = State::kReasoning;
        } else {
          state_ = starts_inside_ ? State::kReasoning : State::kContent;
        }
        return true;
      case State::kReasoning: {
        MarkerHit h = find_markers(buf_, {kClose});
        out.reasoning += buf_.substr(0, h.at);
        buf_.erase(0, h.at);
        if (!h.full) return false;
        buf_.erase(0, kClose.size());
        state_ = State::kContent;
        return true;
      }
      case State::kContent:
        pass(buf_, out);
        buf_.clear();
        return false;
    }
    return false;
  }
  void pass(const std::string& text, OutputDelta& out) {
    if (text.empty()) return;
    if (then_) then_->feed(text, out);
    else out.content += text;
  }

  bool starts_inside_;
  std::unique_ptr<TextParser> then_;
  State state_ = State::kStart;
  std::string buf_;
};

}  // namespace

std::unique_ptr<TextParser> make_reasoning_parser(ReasoningKind kind, bool prompt_opened_think,
                                                  std::unique_ptr<TextParser> then) {
  const bool inside = kind == ReasoningKind::kDeepSeekR1 || prompt_opened_think;
  return std::make_unique<ReasoningParser>(inside, std::move(then));
}

bool prompt_opens_think(std::string_view prompt) {
  size_t end = prompt.size();
  while (end > 0 && is_json_ws(prompt[end - 1])) --end;
  return end >= kOpen.size() && prompt.substr(end - kOpen.size(), kOpen.size()) == kOpen;
}

}  // namespace tk::tools
