// Strict parsing of flag values (see flags.h).
#include "flags.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tk::cli {
namespace {

constexpr __int128 kWide = 2147483647;  // a bound this far out reads as "no bound" in messages

std::string quoted(const std::string& text) {
  return "'" + (text.size() > 40 ? text.substr(0, 37) + "..." : text) + "'";
}

std::string real_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

}  // namespace

std::string integer_text(__int128 v) {
  if (v == 0) return "0";
  const bool negative = v < 0;
  std::string s;
  for (unsigned __int128 u = negative ? -static_cast<unsigned __int128>(v) : static_cast<unsigned __int128>(v); u > 0; u /= 10)
    s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
  return negative ? "-" + s : s;
}

ParsedInt parse_int(const std::string& text, __int128 lo, __int128 hi) {
  ParsedInt r;
  if (text.empty()) {
    r.error = "expected a number, got an empty value";
    return r;
  }
  size_t i = text[0] == '-' || text[0] == '+' ? 1 : 0;
  bool digits = i < text.size(), huge = false;
  __int128 v = 0;
  for (size_t k = i; k < text.size() && digits; ++k) {
    if (text[k] < '0' || text[k] > '9') digits = false;
    else if (!huge && (v = v * 10 + (text[k] - '0')) > (static_cast<__int128>(1) << 100)) huge = true;
  }
  if (!digits) {
    char* end = nullptr;
    const double d = std::strtod(text.c_str(), &end);
    r.error = quoted(text) + (*end == '\0' && std::isfinite(d) ? " is not a whole number" : " is not a number");
    return r;
  }
  const bool negative = text[0] == '-';
  if (negative) v = -v;
  const bool below = huge ? negative : v < lo, above = huge ? !negative : v > hi;
  if (below || above) {
    const std::string got = ", got " + (huge ? quoted(text) : integer_text(v));
    if (below && hi >= kWide) r.error = "must be at least " + integer_text(lo) + got;
    else if (above && lo <= -kWide) r.error = "must be at most " + integer_text(hi) + got;
    else if (above && lo >= 0 && hi >= kWide) r.error = "must be at most " + integer_text(hi) + got;
    else r.error = "must be in [" + integer_text(lo) + ", " + integer_text(hi) + "]" + got;
    return r;
  }
  r.ok = true, r.value = v;
  return r;
}

ParsedReal parse_real(const std::string& text, const RealRange& range) {
  ParsedReal r;
  if (text.empty()) {
    r.error = "expected a number, got an empty value";
    return r;
  }
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (*end != '\0' || std::isspace(static_cast<unsigned char>(text[0]))) {
    r.error = quoted(text) + " is not a number";
    return r;
  }
  if (!std::isfinite(v)) {
    r.error = quoted(text) + " is not a finite number";
    return r;
  }
  const bool below = range.lo_open ? !(v > range.lo) : !(v >= range.lo);
  const bool above = range.hi_open ? !(v < range.hi) : !(v <= range.hi);
  if (below || above) {
    const bool has_lo = std::isfinite(range.lo), has_hi = std::isfinite(range.hi);
    const std::string got = ", got " + text;
    if (has_lo && has_hi)
      r.error = "must be in " + std::string(range.lo_open ? "(" : "[") + real_text(range.lo) + ", " + real_text(range.hi) +
                (range.hi_open ? ")" : "]") + got;
    else if (has_lo)
      r.error = (range.lo_open ? "must be greater than " : "must be at least ") + real_text(range.lo) + got;
    else
      r.error = (range.hi_open ? "must be less than " : "must be at most ") + real_text(range.hi) + got;
    return r;
  }
  r.ok = true, r.value = v;
  return r;
}

CLI::Option* add_checked(CLI::App& app, const std::string& names, std::function<std::string(const std::string&)> set,
                         const std::string& help) {
  std::string flag;
  for (size_t at = 0; at <= names.size();) {
    size_t end = names.find(',', at);
    if (end == std::string::npos) end = names.size();
    const std::string name = names.substr(at, end - at);
    if (flag.empty() || (name.rfind("--", 0) == 0 && flag.rfind("--", 0) != 0)) flag = name;
    at = end + 1;
  }
  return app.add_option_function<std::string>(
      names,
      [flag, set](const std::string& value) {
        const std::string error = set(value);
        if (!error.empty()) throw CLI::ValidationError(flag + ": " + error);
      },
      help)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);  // a repeated flag: the last one counts
}

std::vector<std::string> normalize_args(int argc, char** argv) {
  std::vector<std::string> args;
  bool options = true;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") options = false;
    if (options && i > 0 && (a == "-tp" || a.rfind("-tp=", 0) == 0)) a = "--tensor-parallel-size" + a.substr(3);
    if (options && i > 0 && a.size() > 3 && a.rfind("--", 0) == 0 && a.back() == '=' && a.find('=') == a.size() - 1) {
      args.push_back(a.substr(0, a.size() - 1));
      args.emplace_back();
    } else {
      args.push_back(std::move(a));
    }
  }
  return args;
}

}  // namespace tk::cli
