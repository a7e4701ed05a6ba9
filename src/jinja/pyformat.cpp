// Python's `%` formatting and str.format(): flags, width, precision and the conversion types
// over template values, with CPython's error messages for mismatched arguments.
#include "pyformat.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "ustr.h"

namespace tk::jinja::detail {

namespace {

struct Spec {
  std::u32string fill = U" ";
  char align = 0;  // < > ^ =
  char sign = '-';
  bool alternate = false;
  bool zero = false;
  int64_t width = -1;
  char grouping = 0;
  int64_t precision = -1;
  char type = 0;
};

constexpr int64_t kMaxWidth = 1 << 20;  // a field wider than 1 MiB is refused

Spec parse_spec(const std::string& text) {
  std::u32string s = decode_utf8(text);
  Spec spec;
  size_t i = 0;
  auto is_align = [](char32_t c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (s.size() >= 2 && is_align(s[1])) {
    spec.fill = s.substr(0, 1);
    spec.align = static_cast<char>(s[1]);
    i = 2;
  } else if (!s.empty() && is_align(s[0])) {
    spec.align = static_cast<char>(s[0]);
    i = 1;
  }
  if (i < s.size() && (s[i] == '+' || s[i] == '-' || s[i] == ' ')) spec.sign = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '#') spec.alternate = true, ++i;
  if (i < s.size() && s[i] == '0') spec.zero = true, ++i;
  auto number = [&]() {
    int64_t v = 0;
    bool any = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      v = v * 10 + (s[i++] - '0');
      any = true;
      if (v > kMaxWidth) raise(ErrorKind::kValueError, "format width or precision too big");
    }
    return any ? v : -1;
  };
  spec.width = number();
  if (i < s.size() && (s[i] == ',' || s[i] == '_')) spec.grouping = static_cast<char>(s[i++]);
  if (i < s.size() && s[i] == '.') {
    ++i;
    spec.precision = number();
    if (spec.precision < 0) raise(ErrorKind::kValueError, "Format specifier missing precision");
  }
  if (i < s.size()) spec.type = static_cast<char>(s[i++]);
  if (i < s.size()) raise(ErrorKind::kValueError, "Invalid format specifier '" + text + "'");
  return spec;
}

std::string group_digits(const std::string& digits, char sep) {
  std::string out;
  int n = 0;
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
    if (n && n % 3 == 0) out += sep;
    out += *it;
    ++n;
  }
  return {out.rbegin(), out.rend()};
}

std::string pad(const std::string& body, const std::string& sign, const Spec& spec, char default_align) {
  char align = spec.align ? spec.align : (spec.zero ? '=' : default_align);
  std::u32string fill = spec.zero && !spec.align ? U"0" : spec.fill;
  const int64_t len = count_code_points(body) + count_code_points(sign);
  if (spec.width <= len) return sign + body;
  const int64_t total = spec.width - len;
  std::string f = encode_utf8(fill);
  auto repeat = [&](int64_t n) {
    std::string out;
    for (int64_t k = 0; k < n; ++k) out += f;
    return out;
  };
  switch (align) {
    case '<': return sign + body + repeat(total);
    case '^': return repeat(total / 2) + sign + body + repeat(total - total / 2);
    case '=': return sign + repeat(total) + body;
    default: return repeat(total) + sign + body;
  }
}

std::string c_format(const char* conv, int64_t precision, double v, bool alternate) {
  char fmt[16];
  std::snprintf(fmt, sizeof fmt, "%%%s.*%s", alternate ? "#" : "", conv);
  char buf[512];
  int n = std::snprintf(buf, sizeof buf, fmt, static_cast<int>(precision), v);
  if (n < static_cast<int>(sizeof buf)) return std::string(buf, static_cast<size_t>(n));
  std::string big(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(big.data(), big.size(), fmt, static_cast<int>(precision), v);
  big.resize(static_cast<size_t>(n));
  return big;
}

std::string format_int(int64_t v, const Spec& spec) {
  std::string digits;
  uint64_t mag = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  const char type = spec.type ? spec.type : 'd';
  std::string prefix;
  if (type == 'c') return pad(encode_utf8(std::u32string(1, static_cast<char32_t>(v))), "", spec, '<');
  if (type == 'x' || type == 'X' || type == 'o' || type == 'b') {
    const int base = type == 'o' ? 8 : type == 'b' ? 2 : 16;
    const char* alphabet = type == 'X' ? "0123456789ABCDEF" : "0123456789abcdef";
    do digits.insert(digits.begin(), alphabet[mag % base]), mag /= base;
    while (mag);
    if (spec.alternate) prefix = type == 'o' ? "0o" : type == 'b' ? "0b" : type == 'X' ? "0X" : "0x";
  } else if (type == 'd' || type == 'n') {
    digits = std::to_string(mag);
    if (spec.grouping) digits = group_digits(digits, spec.grouping);
  } else {
    raise(ErrorKind::kValueError, std::string("Unknown format code '") + type + "' for object of type 'int'");
  }
  std::string sign = v < 0 ? "-" : spec.sign == '+' ? "+" : spec.sign == ' ' ? " " : "";
  return pad(digits, sign + prefix, spec, '>');
}

std::string format_float(double v, const Spec& spec) {
  char type = spec.type;
  std::string body;
  const double mag = std::fabs(v);
  if (std::isnan(v) || std::isinf(v)) {
    body = std::isnan(v) ? "nan" : "inf";
    if (type == 'E' || type == 'F' || type == 'G') body = std::isnan(v) ? "NAN" : "INF";
  } else if (type == 0 && spec.precision < 0) {
    body = py_float_repr(mag);
  } else if (type == '%') {
    body = c_format("f", spec.precision < 0 ? 6 : spec.precision, mag * 100, spec.alternate) + "%";
  } else {
    const char conv = type == 0 || type == 'n' ? 'g' : type;
    if (!std::strchr("eEfFgG", conv)) {
      raise(ErrorKind::kValueError, std::string("Unknown format code '") + type + "' for object of type 'float'");
    }
    body = c_format(std::string(1, conv).c_str(), spec.precision < 0 ? 6 : spec.precision, mag, spec.alternate);
    if (type == 0 && body.find_first_of(".e") == std::string::npos) body += ".0";
  }
  if (spec.grouping) {
    size_t end = body.find_first_not_of("0123456789");
    body = group_digits(body.substr(0, end), spec.grouping) + (end == std::string::npos ? "" : body.substr(end));
  }
  std::string sign = std::signbit(v) && !std::isnan(v) ? "-" : spec.sign == '+' ? "+" : spec.sign == ' ' ? " " : "";
  return pad(body, sign, spec, '>');
}

}  // namespace

std::string format_spec(const Value& value, const std::string& text) {
  if (text.empty()) return to_str(value);
  Spec spec = parse_spec(text);
  if (value.is_string() || (!value.is_number())) {
    if (!value.is_string()) type_error("unsupported format string passed to " + type_name(value) + ".__format__");
    if (spec.type && spec.type != 's') {
      raise(ErrorKind::kValueError, std::string("Unknown format code '") + spec.type + "' for object of type 'str'");
    }
    std::string body = value.str();
    if (spec.precision >= 0) body = encode_utf8(decode_utf8(body).substr(0, static_cast<size_t>(spec.precision)));
    return pad(body, "", spec, '<');
  }
  const bool float_type = spec.type && std::strchr("eEfFgG%", spec.type);
  if (value.is_float() || float_type) return format_float(value.as_float(), spec);
  if (value.is_bool() && !spec.type) return pad(to_str(value), "", spec, '<');
  return format_int(value.as_int(), spec);
}

}  // namespace tk::jinja::detail
