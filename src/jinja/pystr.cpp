// The algorithms of CPython's str methods, by code point.
#include "pystr.h"

#include "ustr.h"

namespace tk::jinja::detail {

namespace {

bool in_set(char32_t c, const std::u32string& set) { return set.find(c) != std::u32string::npos; }

}  // namespace

std::string html_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string py_strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right) {
  std::u32string cps = decode_utf8(s);
  std::u32string set = chars ? decode_utf8(*chars) : std::u32string();
  auto strip_it = [&](char32_t c) { return chars ? in_set(c, set) : py_isspace(c); };
  size_t begin = 0, end = cps.size();
  if (left)
    while (begin < end && strip_it(cps[begin])) ++begin;
  if (right)
    while (end > begin && strip_it(cps[end - 1])) --end;
  return encode_utf8(std::u32string_view(cps).substr(begin, end - begin));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) raise(ErrorKind::kValueError, "empty separator");
    if (!from_right) {
      size_t start = 0, at;
      while (maxsplit-- > 0 && (at = s.find(*sep, start)) != std::string_view::npos) {
        parts.emplace_back(s.substr(start, at - start));
        start = at + sep->size();
      }
      parts.emplace_back(s.substr(start));
      return parts;
    }
    size_t end = s.size();
    while (maxsplit-- > 0 && end >= sep->size()) {
      size_t at = s.rfind(*sep, end - sep->size());
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(at + sep->size(), end - at - sep->size()));
      end = at;
    }
    parts.emplace_back(s.substr(0, end));
    return {parts.rbegin(), parts.rend()};
  }
  std::u32string cps = decode_utf8(s);
  if (from_right) {
    int64_t i = static_cast<int64_t>(cps.size()) - 1;
    while (true) {
      while (i >= 0 && py_isspace(cps[static_cast<size_t>(i)])) --i;
      if (i < 0) break;
      int64_t end = i + 1;
      if (maxsplit-- <= 0) {
        parts.push_back(encode_utf8(std::u32string_view(cps).substr(0, static_cast<size_t>(end))));
        break;
      }
      while (i >= 0 && !py_isspace(cps[static_cast<size_t>(i)])) --i;
      parts.push_back(encode_utf8(std::u32string_view(cps).substr(static_cast<size_t>(i + 1), static_cast<size_t>(end - i - 1))));
    }
    return {parts.rbegin(), parts.rend()};
  }
  size_t i = 0;
  while (true) {
    while (i < cps.size() && py_isspace(cps[i])) ++i;
    if (i >= cps.size()) break;
    if (maxsplit-- <= 0) {
      size_t end = cps.size();
      while (end > i && py_isspace(cps[end - 1])) --end;
      parts.push_back(encode_utf8(std::u32string_view(cps).substr(i, end - i)));
      break;
    }
    size_t start = i;
    while (i < cps.size() && !py_isspace(cps[i])) ++i;
    parts.push_back(encode_utf8(std::u32string_view(cps).substr(start, i - start)));
  }
  return parts;
}

std::string py_title(std::string_view s) {
  std::string out;
  bool previous_cased = false;
  for (char32_t c : decode_utf8(s)) {
    append_utf8(out, previous_cased ? py_lower(c) : py_title(c));
    previous_cased = py_iscased(c);
  }
  return out;
}

std::string py_capitalize(std::string_view s) {
  std::u32string cps = decode_utf8(s);
  std::string out;
  for (size_t k = 0; k < cps.size(); ++k) append_utf8(out, k == 0 ? py_title(cps[k]) : py_lower(cps[k]));
  return out;
}

std::string py_replace(std::string_view s, std::string_view old, std::string_view replacement, int64_t count,
                       int64_t max_bytes) {
  if (count < 0) count = INT64_MAX;
  std::string out;
  auto check = [&] {
    if (static_cast<int64_t>(out.size()) > max_bytes) {
      raise(ErrorKind::kLimitError, "the template output would exceed " + std::to_string(max_bytes) + " bytes");
    }
  };
  if (old.empty()) {
    std::u32string cps = decode_utf8(s);
    for (size_t k = 0; k < cps.size(); ++k) {
      if (count-- > 0) out += replacement;
      append_utf8(out, cps[k]);
      check();
    }
    if (count > 0) out += replacement;
    return out;
  }
  size_t start = 0, at;
  while (count-- > 0 && (at = s.find(old, start)) != std::string_view::npos) {
    out += s.substr(start, at - start);
    out += replacement;
    start = at + old.size();
    check();
  }
  out += s.substr(start);
  return out;
}

std::vector<std::string> py_splitlines(std::string_view s, bool keepends) {
  std::u32string cps = decode_utf8(s);
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < cps.size(); ++i) {
    char32_t c = cps[i];
    const bool brk = c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E ||
                     c == 0x85 || c == 0x2028 || c == 0x2029;
    if (!brk) continue;
    size_t end = i;
    if (c == '\r' && i + 1 < cps.size() && cps[i + 1] == '\n') ++i;
    lines.push_back(encode_utf8(std::u32string_view(cps).substr(start, (keepends ? i + 1 : end) - start)));
    start = i + 1;
  }
  if (start < cps.size()) lines.push_back(encode_utf8(std::u32string_view(cps).substr(start)));
  return lines;
}

}  // namespace tk::jinja::detail
