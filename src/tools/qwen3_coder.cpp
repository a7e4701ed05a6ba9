// qwen3_coder: Qwen3-Coder's XML-like calls,
//   <tool_call>\n<function=NAME>\n<parameter=P>\nVALUE\n</parameter>\n...</function>\n</tool_call>
// Values are plain text; each becomes JSON by the type its tool's parameter schema gives it (as
// vLLM converts them), so a parameter's JSON goes out once its </parameter> arrives.
#include <cstdlib>

#include "call_parser.h"

namespace tk::tools {
namespace {

// The schema's type of a parameter ("string" when unknown): the first non-null of a type list.
std::string parameter_type(const std::vector<Tool>& tools, const std::string& function, const std::string& param) {
  for (const Tool& t : tools) {
    if (t.name != function) continue;
    const Json& props = t.parameters.is_object() ? t.parameters.value("properties", Json()) : Json();
    if (!props.is_object() || !props.contains(param) || !props[param].is_object()) return "string";
    const Json& type = props[param].value("type", Json());
    if (type.is_string()) return type.get<std::string>();
    if (type.is_array())
      for (const Json& x : type)
        if (x.is_string() && x != "null") return x.get<std::string>();
    if (props[param].contains("properties")) return "object";
    return "string";
  }
  return "string";
}

bool starts_with(const std::string& s, std::string_view p) { return s.compare(0, p.size(), p) == 0; }

// A parameter's text as JSON of its schema's type; text that is not of that type stays a string.
Json convert_value(const std::string& text, const std::string& type) {
  if (text == "null") return nullptr;
  if (type == "string" || type == "str" || type == "text" || type == "enum") return text;
  if (starts_with(type, "int") || starts_with(type, "uint") || type == "long" || type == "short") {
    Json j = Json::parse(text, nullptr, false);
    return j.is_number_integer() ? j : Json(text);
  }
  if (type == "number" || type == "float" || type == "double" || type == "num") {
    Json j = Json::parse(text, nullptr, false);
    return j.is_number() ? j : Json(text);
  }
  if (type == "boolean" || type == "bool") {
    if (text == "true" || text == "True") return true;
    if (text == "false" || text == "False") return false;
    return text;
  }
  if (type == "object" || type == "array" || type == "dict" || type == "list") {
    Json j = Json::parse(text, nullptr, false);
    return j.is_discarded() ? Json(text) : j;
  }
  return text;
}

// JSON as Python's json.dumps writes it (", " and ": "), as vLLM's arguments read.
std::string dump(const Json& j) {
  if (j.is_object()) {
    std::string s = "{";
    for (auto it = j.begin(); it != j.end(); ++it)
      s += (it == j.begin() ? "" : ", ") + dump(Json(it.key())) + ": " + dump(it.value());
    return s + "}";
  }
  if (j.is_array()) {
    std::string s = "[";
    for (size_t i = 0; i < j.size(); ++i) s += (i ? ", " : "") + dump(j[i]);
    return s + "]";
  }
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

class Qwen3CoderParser final : public SteppedCallParser {
 public:
  Qwen3CoderParser(std::vector<Tool> tools, uint64_t seed) : SteppedCallParser(seed, false), tools_(std::move(tools)) {}
  void finish(OutputDelta& out) override {
    if (in_call()) {
      malformed_ = true;  // cut inside a call (max_tokens): closed, so its arguments parse
      call_arguments(params_sent_ == 0 ? "{}" : "}", out);
      end_call();
    } else if (state_ == State::kOpen || state_ == State::kName) {
      content(raw_ + buf_, out);
    } else if (state_ == State::kText) {
      content(buf_, out);
    }
    buf_.clear();
    flush_content(out);
  }

 private:
  enum class State { kText, kOpen, kName, kBody, kParamName, kValue, kClose, kBroken };
  static constexpr std::string_view kStart = "<tool_call>", kEnd = "</tool_call>", kFunction = "<function=",
                                    kFunctionEnd = "</function>", kParam = "<parameter=", kParamEnd = "</parameter>";
  static constexpr size_t kMaxName = 256;

  bool step(OutputDelta& out) override {
    switch (state_) {
      case State::kText:
        if (!content_until(kStart, out)) return false;
        raw_ = kStart, state_ = State::kOpen;
        return true;
      case State::kOpen:
        raw_ += skip_ws(buf_);
        if (buf_.empty() || is_proper_prefix(buf_, kFunction)) return false;
        if (!starts_with(buf_, kFunction)) return fail(out);
        take(kFunction.size());
        state_ = State::kName;
        return true;
      case State::kName:
      case State::kParamName: {
        // Character by character, so that where a bad name breaks does not depend on the chunking.
        std::string& name = state_ == State::kName ? name_ : param_;
        size_t n = 0;
        while (n < buf_.size() && buf_[n] != '>' && buf_[n] != '<' && buf_[n] != '\n' && name.size() + n < kMaxName) ++n;
        name += buf_.substr(0, n);
        take(n);
        if (buf_.empty()) return false;
        if (buf_[0] != '>') return fail(out);
        take(1);
        if (name.empty()) return fail(out);
        if (state_ == State::kName) {
          start_call(name_, out);
          state_ = State::kBody;
        } else {
          value_.clear();
          state_ = State::kValue;
        }
        return true;
      }
      case State::kBody:
        skip_ws(buf_);
        if (buf_.empty() || is_proper_prefix(buf_, kParam) || is_proper_prefix(buf_, kFunctionEnd)) return false;
        if (starts_with(buf_, kParam)) {
          take(kParam.size());
          param_.clear();
          state_ = State::kParamName;
          return true;
        }
        if (!starts_with(buf_, kFunctionEnd)) return fail(out);
        take(kFunctionEnd.size());
        call_arguments(params_sent_ == 0 ? "{}" : "}", out);
        end_call();
        params_sent_ = 0, name_.clear();
        state_ = State::kClose;
        return true;
      case State::kValue: {
        // A value ends at </parameter>; a missing one is forgiven at the next <parameter= or </function>.
        MarkerHit h = find_markers(buf_, {kParamEnd, kParam, kFunctionEnd});
        value_ += buf_.substr(0, h.at);
        buf_.erase(0, h.at);
        if (!h.full) return false;
        if (h.which == 0) buf_.erase(0, kParamEnd.size());
        send_parameter(out);
        state_ = State::kBody;
        return true;
      }
      case State::kClose:
        skip_ws(buf_);
        if (buf_.empty() || is_proper_prefix(buf_, kEnd)) return false;
        if (starts_with(buf_, kEnd)) buf_.erase(0, kEnd.size());
        state_ = State::kText;
        return true;
      case State::kBroken:
        content(buf_, out);
        buf_.clear();
        return false;
    }
    return false;
  }
  void take(size_t n) {
    raw_ += buf_.substr(0, n);
    buf_.erase(0, n);
  }
  void send_parameter(OutputDelta& out) {
    std::string v = value_;
    if (!v.empty() && v.front() == '\n') v.erase(0, 1);
    if (!v.empty() && v.back() == '\n') v.pop_back();
    const Json value = convert_value(v, parameter_type(tools_, name_, param_));
    call_arguments((params_sent_++ == 0 ? "{" : ", ") + dump(Json(param_)) + ": " + dump(value), out);
  }
  // Before the name went out the markup is content; inside a call, the call ends with what it had
  // (closed, so its arguments still parse) and the answer is malformed.
  bool fail(OutputDelta& out) {
    if (in_call()) {
      call_arguments(params_sent_ == 0 ? "{}" : "}", out);
      end_call();
      malformed_ = true;
      state_ = State::kBroken;
      return true;
    }
    content(raw_, out);
    raw_.clear(), name_.clear();
    state_ = State::kText;
    return true;
  }

  std::vector<Tool> tools_;
  State state_ = State::kText;
  std::string raw_, name_, param_, value_;
  int params_sent_ = 0;
};

}  // namespace

std::unique_ptr<TextParser> make_qwen3_coder_parser(std::vector<Tool> tools, uint64_t seed) {
  return std::make_unique<Qwen3CoderParser>(std::move(tools), seed);
}

}  // namespace tk::tools
