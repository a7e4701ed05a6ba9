// Python's str() and repr() of template values: what `{{ value }}` writes. A dict prints as
// {'a': 'b'}, floats with the shortest round-trip digits (1.0, 1e-05), strings quoted as CPython
// quotes them.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "ustr.h"
#include "value.h"

namespace tk::jinja::detail {

namespace {

thread_local int g_repr_depth = 0;
struct ReprGuard {
  ReprGuard() {
    if (++g_repr_depth > 400) {
      --g_repr_depth;
      raise(ErrorKind::kRecursionError, "maximum recursion depth exceeded while getting the repr of an object");
    }
  }
  ~ReprGuard() { --g_repr_depth; }
};

void append_escape(std::string& out, const char* prefix, int digits, uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%s%0*x", prefix, digits, cp);
  out += buf;
}

std::string seq_repr(const std::vector<Value>& items, bool tuple) {
  ReprGuard guard;
  std::string out = tuple ? "(" : "[";
  for (size_t k = 0; k < items.size(); ++k) {
    if (k) out += ", ";
    out += repr(items[k]);
  }
  if (tuple && items.size() == 1) out += ",";
  out += tuple ? ")" : "]";
  return out;
}

std::string dict_repr(const Dict& d) {
  ReprGuard guard;
  std::string out = "{";
  bool first = true;
  for (const auto& [key, value] : d.entries()) {
    if (!first) out += ", ";
    first = false;
    out += repr(key) + ": " + repr(value);
  }
  return out + "}";
}

}  // namespace

std::string py_float_repr(double f) {
  if (std::isnan(f)) return "nan";
  if (std::isinf(f)) return f < 0 ? "-inf" : "inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, f, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-1.2345e+17": shortest round-trip digits
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  int exponent = std::stoi(sci.substr(e + 1));
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  const int decpt = exponent + 1;  // value = 0.DIGITS * 10^decpt
  const int n = static_cast<int>(digits.size());
  std::string out;
  if (decpt <= -4 || decpt > 16) {
    out = digits.substr(0, 1);
    if (n > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
    out += ebuf;
  } else if (decpt <= 0) {
    out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
  } else if (decpt >= n) {
    out = digits + std::string(static_cast<size_t>(decpt - n), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
  }
  return sign + out;
}

std::string py_str_repr(std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out(1, quote);
  for (char32_t c : decode_utf8(s)) {
    if (c == static_cast<char32_t>(quote) || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      append_escape(out, "\\x", 2, c);
    } else if (c < 0x7F) {
      out += static_cast<char>(c);
    } else if (!py_isprintable(c)) {
      if (c <= 0xFF) append_escape(out, "\\x", 2, c);
      else if (c <= 0xFFFF) append_escape(out, "\\u", 4, c);
      else append_escape(out, "\\U", 8, c);
    } else {
      append_utf8(out, c);
    }
  }
  out += quote;
  return out;
}

std::string to_str(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return "";
    case Kind::kString: return v.str();
    default: return repr(v);
  }
}

std::string repr(const Value& v) {
  switch (v.kind()) {
    case Kind::kUndefined: return "Undefined";
    case Kind::kNone: return "None";
    case Kind::kBool: return v.as_bool() ? "True" : "False";
    case Kind::kInt: return std::to_string(v.as_int());
    case Kind::kFloat: return py_float_repr(v.as_float());
    case Kind::kString: return v.is_markup() ? "Markup(" + py_str_repr(v.str()) + ")" : py_str_repr(v.str());
    case Kind::kList: return seq_repr(v.items(), false);
    case Kind::kTuple:
      return seq_repr(v.items(), true);
    case Kind::kDict: return dict_repr(v.dict());
    case Kind::kObject: return v.obj().repr();
  }
  return "";
}

}  // namespace tk::jinja::detail
