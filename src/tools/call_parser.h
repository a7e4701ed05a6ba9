// What every tool-call parser shares (private to src/tools): text held back while it may still be
// the start of a marker, content whose trailing whitespace waits for what follows (whitespace
// before a call or after the last one is dropped, as vLLM's parsers drop it), the numbering and
// ids of calls, and a JSON call object ({"name": ..., "arguments": ...}) streamed while it is
// being written.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "json_scanner.h"
#include "tools/tools.h"

namespace tk::tools {

// Where the first of `markers` starts in `text`: `full` when one occurs whole (`which` says which);
// otherwise `at` is where a suffix of text that may still grow into a marker begins (text.size()
// when none): the text before `at` can be passed on.
struct MarkerHit {
  size_t at = 0;
  bool full = false;
  int which = -1;
};
MarkerHit find_markers(std::string_view text, std::initializer_list<std::string_view> markers);

bool is_json_ws(char c);
// Removes leading JSON whitespace from s and returns it.
std::string skip_ws(std::string& s);
// s holds only a proper prefix of marker (more text may complete it).
bool is_proper_prefix(std::string_view s, std::string_view marker);

class CallParser : public TextParser {
 public:
  CallParser(uint64_t seed, bool mistral_ids) : ids_(seed, mistral_ids) {}
  bool malformed() const override { return malformed_; }

 protected:
  // Content, with its trailing whitespace held until more content follows.
  void content(std::string_view s, OutputDelta& out);
  // End of output: held whitespace is content only when no call was made.
  void flush_content(OutputDelta& out);
  void start_call(const std::string& name, OutputDelta& out);
  void call_arguments(std::string_view s, OutputDelta& out);
  void end_call() { ++calls_, in_call_ = false; }
  int calls() const { return calls_; }
  bool in_call() const { return in_call_; }

  // The JSON call object: begin, then push characters; the name goes out once whole, the value of
  // "arguments" (or "parameters") as it is written. raw_arguments: the whole value is the
  // arguments and `name` is already known (Mistral's name[ARGS]{...}, a named tool choice).
  void json_begin(bool raw_arguments = false);
  JsonScanner::Step json_push(char c, OutputDelta& out);
  // After kDone: false when the object was not a call (no string name).
  bool json_end(OutputDelta& out);
  bool json_named() const { return in_call_; }
  const std::string& json_text() const { return scanner_->text(); }

  bool malformed_ = false;
  std::string buf_;  // text fed and not yet consumed

 private:
  void json_update(OutputDelta& out);
  CallIds ids_;
  int calls_ = 0;
  bool in_call_ = false;
  std::string held_ws_;
  std::unique_ptr<JsonScanner> scanner_;
  bool raw_arguments_ = false;
  size_t args_sent_ = 0;  // characters of the arguments value already sent (from its start)
  int args_member_ = -1;
};

// A parser of the text as it streams in: feed() appends to buf_ and runs step() until a step needs
// more text.
class SteppedCallParser : public CallParser {
 public:
  using CallParser::CallParser;
  void feed(std::string_view text, OutputDelta& out) final {
    buf_ += text;
    while (step(out)) {}
  }

 protected:
  // Consumes what it can of buf_; false when it needs more text.
  virtual bool step(OutputDelta& out) = 0;
  // Passes on buf_'s content before `marker`: true with the marker consumed when it is there
  // whole; false with only the text that may still grow into it kept.
  bool content_until(std::string_view marker, OutputDelta& out);
};

// The parsers of their own files (make_tool_parser picks one).
std::unique_ptr<TextParser> make_qwen3_coder_parser(std::vector<Tool> tools, uint64_t seed);  // qwen3_coder.cpp
std::unique_ptr<TextParser> make_mistral_parser(uint64_t seed);                                  // mistral.cpp

}  // namespace tk::tools
