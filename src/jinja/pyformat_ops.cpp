// The two Python string-formatting operators built on format_spec: printf-style `%` and
// str.format()'s replacement fields ({}, {0}, {name}, {0.attr}, {0[key]}, !r/!s, :spec).
#include <cmath>
#include <cctype>
#include <cstdio>
#include <cstring>

#include "pyformat.h"

namespace tk::jinja::detail {

namespace {

// `%` conversions take their arguments from a tuple, a mapping (%(name)s) or one value.
class PercentArgs {
 public:
  explicit PercentArgs(const Value& v) : value_(v) {
    if (v.is_tuple()) items_ = v.items();
    else items_ = {v};
  }
  const Value& next() {
    if (pos_ >= items_.size()) type_error("not enough arguments for format string");
    return items_[pos_++];
  }
  const Value& named(const std::string& key) {
    if (!value_.is_dict()) type_error("format requires a mapping");
    const Value* v = value_.dict().find(key);
    if (!v) raise(ErrorKind::kKeyError, "'" + key + "'");
    used_mapping_ = true;
    return *v;
  }
  void finish() const {
    if (!used_mapping_ && pos_ < items_.size() && !(value_.is_dict() && pos_ == 0)) {
      type_error("not all arguments converted during string formatting");
    }
  }

 private:
  Value value_;
  std::vector<Value> items_;
  size_t pos_ = 0;
  bool used_mapping_ = false;
};

std::string percent_one(char conv, const std::string& flags, int64_t width, int64_t precision, const Value& v) {
  std::string spec;
  const bool left = flags.find('-') != std::string::npos;
  if (conv == 's' || conv == 'r' || conv == 'a') {
    std::string text = conv == 's' ? to_str(v) : repr(v);
    spec = (left ? "<" : ">") + (width >= 0 ? std::to_string(width) : "") + (precision >= 0 ? "." + std::to_string(precision) : "");
    return format_spec(Value::string(text), spec);
  }
  if (!v.is_number()) {
    type_error(std::string("%") + conv + " format: a real number is required, not " + type_name(v));
  }
  if (left) spec += "<";
  if (flags.find('+') != std::string::npos) spec += "+";
  else if (flags.find(' ') != std::string::npos) spec += " ";
  if (flags.find('#') != std::string::npos) spec += "#";
  if (flags.find('0') != std::string::npos && !left) spec += "0";
  if (width >= 0) spec += std::to_string(width);
  if (conv == 'd' || conv == 'i' || conv == 'u') {
    double f = v.as_float();
    Value n = v.is_float() ? Value::integer(static_cast<int64_t>(std::trunc(f))) : Value::integer(v.as_int());
    return format_spec(n, spec + "d");
  }
  if (conv == 'x' || conv == 'X' || conv == 'o' || conv == 'c') {
    if (v.is_float()) type_error(std::string("%") + conv + " format: an integer is required, not float");
    return format_spec(Value::integer(v.as_int()), spec + conv);
  }
  spec += "." + std::to_string(precision >= 0 ? precision : 6) + conv;
  return format_spec(Value::number(v.as_float()), spec);
}

}  // namespace

std::string percent_format(const std::string& format, const Value& args) {
  PercentArgs pa(args);
  std::string out;
  for (size_t i = 0; i < format.size(); ++i) {
    if (format[i] != '%') {
      out += format[i];
      continue;
    }
    if (++i >= format.size()) raise(ErrorKind::kValueError, "incomplete format");
    std::optional<Value> keyed;
    if (format[i] == '(') {
      size_t close = format.find(')', i);
      if (close == std::string::npos) raise(ErrorKind::kValueError, "incomplete format key");
      keyed = pa.named(format.substr(i + 1, close - i - 1));
      i = close + 1;
    }
    std::string flags;
    while (i < format.size() && std::string("-+ #0").find(format[i]) != std::string::npos) flags += format[i++];
    auto number = [&](int64_t fallback) {
      if (i < format.size() && format[i] == '*') {
        ++i;
        const Value& v = pa.next();
        if (!v.is_int()) type_error("* wants int");
        return v.as_int();
      }
      int64_t n = -1;
      while (i < format.size() && std::isdigit(static_cast<unsigned char>(format[i]))) {
        n = (n < 0 ? 0 : n) * 10 + (format[i++] - '0');
        if (n > (1 << 20)) raise(ErrorKind::kValueError, "width too big");
      }
      return n < 0 ? fallback : n;
    };
    int64_t width = number(-1), precision = -1;
    if (i < format.size() && format[i] == '.') {
      ++i;
      precision = number(0);
    }
    while (i < format.size() && (format[i] == 'l' || format[i] == 'h' || format[i] == 'L')) ++i;
    if (i >= format.size()) raise(ErrorKind::kValueError, "incomplete format");
    const char conv = format[i];
    if (conv == '%') {
      out += '%';
      continue;
    }
    if (!std::strchr("diouxXeEfFgGcrsa", conv)) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "unsupported format character '%c' (0x%x) at index %zu", conv, static_cast<unsigned>(static_cast<unsigned char>(conv)), i);
      raise(ErrorKind::kValueError, buf);
    }
    out += percent_one(conv, flags, width, precision, keyed ? *keyed : pa.next());
  }
  pa.finish();
  return out;
}

namespace {

// Resolves "0", "name", "0.attr", "name[key]" against the call's arguments.
Value resolve_field(const std::string& field, const CallArgs& args, size_t& auto_index, int& numbering) {
  size_t end = field.find_first_of(".[");
  std::string head = field.substr(0, end);
  Value v;
  if (head.empty() || std::isdigit(static_cast<unsigned char>(head[0]))) {
    size_t index;
    if (head.empty()) {
      if (numbering == 2) raise(ErrorKind::kValueError, "cannot switch from manual field specification to automatic field numbering");
      numbering = 1;
      index = auto_index++;
    } else {
      if (numbering == 1) raise(ErrorKind::kValueError, "cannot switch from automatic field numbering to manual field specification");
      numbering = 2;
      index = std::stoul(head);
    }
    if (index >= args.args.size()) {
      raise(ErrorKind::kIndexError, "tuple index out of range");
    }
    v = args.args[index];
  } else {
    bool found = false;
    for (const auto& [k, value] : args.kwargs) {
      if (k == head) v = value, found = true;
    }
    if (!found) raise(ErrorKind::kKeyError, "'" + head + "'");
  }
  size_t i = end;
  while (i != std::string::npos && i < field.size()) {
    if (field[i] == '.') {
      size_t next = field.find_first_of(".[", i + 1);
      std::string attr = field.substr(i + 1, next == std::string::npos ? std::string::npos : next - i - 1);
      if (!attr.empty() && attr[0] == '_') raise(ErrorKind::kSecurityError, "access to attribute '" + attr + "' of '" + type_name(v) + "' object is unsafe.");
      const Value* item = v.is_dict() ? v.dict().find(attr) : nullptr;
      if (!item) raise(ErrorKind::kAttributeError, "'" + type_name(v) + "' object has no attribute '" + attr + "'");
      v = *item;
      i = next;
    } else {
      size_t close = field.find(']', i);
      if (close == std::string::npos) raise(ErrorKind::kValueError, "Missing ']' in format string");
      std::string key = field.substr(i + 1, close - i - 1);
      const bool numeric = !key.empty() && key.find_first_not_of("0123456789") == std::string::npos;
      if (v.is_sequence() && numeric && std::stoul(key) < v.items().size()) v = v.items()[std::stoul(key)];
      else if (v.is_dict() && v.dict().find(numeric ? Value::integer(std::stoll(key)) : Value::string(key))) v = *v.dict().find(numeric ? Value::integer(std::stoll(key)) : Value::string(key));
      else raise(ErrorKind::kKeyError, "'" + key + "'");
      i = close + 1;
    }
  }
  return v;
}

}  // namespace

std::string brace_format(const std::string& format, const CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  int numbering = 0;  // 1 automatic, 2 manual
  for (size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c == '}') {
      if (i + 1 < format.size() && format[i + 1] == '}') ++i;
      else raise(ErrorKind::kValueError, "Single '}' encountered in format string");
      out += '}';
      continue;
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < format.size() && format[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    int depth = 1;
    size_t j = i + 1;
    for (; j < format.size() && depth; ++j) depth += format[j] == '{' ? 1 : format[j] == '}' ? -1 : 0;
    if (depth) raise(ErrorKind::kValueError, "expected '}' before end of string");
    std::string field = format.substr(i + 1, j - i - 2);
    i = j - 1;
    std::string spec;
    size_t colon = field.find(':');
    if (colon != std::string::npos) spec = field.substr(colon + 1), field.resize(colon);
    char conversion = 0;
    size_t bang = field.find('!');
    if (bang != std::string::npos) {
      if (bang + 2 != field.size()) raise(ErrorKind::kValueError, "expected ':' after conversion specifier");
      conversion = field[bang + 1];
      field.resize(bang);
    }
    if (spec.find('{') != std::string::npos) spec = brace_format(spec, args);  // nested {width}
    Value v = resolve_field(field, args, auto_index, numbering);
    if (conversion == 'r' || conversion == 'a') v = Value::string(repr(v));
    else if (conversion == 's') v = Value::string(to_str(v));
    else if (conversion) raise(ErrorKind::kValueError, std::string("Unknown conversion specifier ") + conversion);
    out += format_spec(v, spec);
  }
  return out;
}

}  // namespace tk::jinja::detail
