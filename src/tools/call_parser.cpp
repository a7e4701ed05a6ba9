// The shared machinery of the tool-call parsers (call_parser.h).
#include "call_parser.h"

namespace tk::tools {

bool is_json_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string skip_ws(std::string& s) {
  size_t n = 0;
  while (n < s.size() && is_json_ws(s[n])) ++n;
  std::string ws = s.substr(0, n);
  s.erase(0, n);
  return ws;
}

bool is_proper_prefix(std::string_view s, std::string_view marker) {
  return s.size() < marker.size() && marker.substr(0, s.size()) == s;
}

MarkerHit find_markers(std::string_view text, std::initializer_list<std::string_view> markers) {
  MarkerHit best{text.size(), false, -1};
  int i = 0;
  for (std::string_view m : markers) {
    size_t f = text.find(m);
    if (f != std::string_view::npos && (!best.full || f < best.at) && f <= best.at) best = {f, true, i};
    ++i;
  }
  // A suffix that may still become a marker, starting before the full hit, must wait: once the
  // rest arrives it may be the earlier marker.
  size_t partial = text.size();
  for (std::string_view m : markers)
    for (size_t len = std::min(m.size() - 1, text.size()); len > 0; --len)
      if (text.substr(text.size() - len) == m.substr(0, len)) {
        partial = std::min(partial, text.size() - len);
        break;
      }
  if (partial < best.at) return {partial, false, -1};
  return best;
}

void CallParser::content(std::string_view s, OutputDelta& out) {
  size_t end = s.size();
  while (end > 0 && is_json_ws(s[end - 1])) --end;
  if (end == 0) {
    held_ws_ += s;
    return;
  }
  out.content += held_ws_;
  held_ws_.clear();
  out.content += s.substr(0, end);
  held_ws_ = s.substr(end);
}

void CallParser::flush_content(OutputDelta& out) {
  if (calls_ == 0 && !in_call_) out.content += held_ws_;
  held_ws_.clear();
}

void CallParser::start_call(const std::string& name, OutputDelta& out) {
  held_ws_.clear();  // whitespace before a call is not content
  ToolCallDelta d;
  d.index = calls_, d.id = ids_.next(), d.name = name;
  out.tool_calls.push_back(std::move(d));
  in_call_ = true;
}

void CallParser::call_arguments(std::string_view s, OutputDelta& out) {
  if (s.empty()) return;
  if (out.tool_calls.empty() || out.tool_calls.back().index != calls_ || !out.tool_calls.back().name.empty()) {
    ToolCallDelta d;
    d.index = calls_;
    out.tool_calls.push_back(std::move(d));
  }
  out.tool_calls.back().arguments += s;
}

void CallParser::json_begin(bool raw_arguments) {
  scanner_ = std::make_unique<JsonScanner>();
  raw_arguments_ = raw_arguments;
  args_sent_ = 0, args_member_ = -1;
}

JsonScanner::Step CallParser::json_push(char c, OutputDelta& out) {
  JsonScanner::Step s = scanner_->push(c);
  if (s != JsonScanner::Step::kError) json_update(out);
  return s;
}

void CallParser::json_update(OutputDelta& out) {
  const std::string& text = scanner_->text();
  if (raw_arguments_) {
    call_arguments(std::string_view(text).substr(args_sent_), out);
    args_sent_ = text.size();
    return;
  }
  const auto& members = scanner_->members();
  if (!in_call_)
    for (const JsonScanner::Member& m : members)
      if (m.key == "name" && m.complete && text[m.value_begin] == '"') {
        auto name = nlohmann::json::parse(text.substr(m.value_begin, m.value_end - m.value_begin));
        start_call(name.get<std::string>(), out);
        break;
      }
  if (args_member_ < 0)
    for (size_t i = 0; i < members.size(); ++i)
      if ((members[i].key == "arguments" || members[i].key == "parameters") && members[i].value_begin > 0) {
        args_member_ = static_cast<int>(i);
        break;
      }
  if (!in_call_ || args_member_ < 0) return;
  const JsonScanner::Member& a = members[args_member_];
  const size_t end = a.complete ? a.value_end : text.size();
  const size_t from = a.value_begin + args_sent_;
  if (end > from) call_arguments(std::string_view(text).substr(from, end - from), out);
  args_sent_ = end - a.value_begin;
}

bool CallParser::json_end(OutputDelta& out) {
  if (!raw_arguments_ && !in_call_) return false;
  if (!raw_arguments_ && args_member_ < 0) call_arguments("{}", out);
  end_call();
  return true;
}

bool SteppedCallParser::content_until(std::string_view marker, OutputDelta& out) {
  const MarkerHit h = find_markers(buf_, {marker});
  content(std::string_view(buf_).substr(0, h.at), out);
  buf_.erase(0, h.at);
  if (!h.full) return false;
  buf_.erase(0, marker.size());
  return true;
}

}  // namespace tk::tools
