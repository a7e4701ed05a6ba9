// String filters (jinja2.filters): case, trim, replace, indent, center, truncate, wordwrap,
// wordcount, title, striptags, escape/safe, format, urlencode, urlize, filesizeformat, xmlattr.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "filters.h"
#include "pyformat.h"
#include "pystr.h"
#include "ustr.h"

namespace tk::jinja::detail {

namespace {

Value text(std::string s) { return Value::string(std::move(s)); }

Value f_upper(Interpreter&, const Value& v, CallArgs& c) { Args("upper", c, {}); return text(to_upper(to_str(v))); }
Value f_lower(Interpreter&, const Value& v, CallArgs& c) { Args("lower", c, {}); return text(to_lower(to_str(v))); }
Value f_capitalize(Interpreter&, const Value& v, CallArgs& c) { Args("capitalize", c, {}); return text(py_capitalize(to_str(v))); }

// Jinja's title: words start after runs of -, whitespace, (, {, [ or <.
Value f_title(Interpreter&, const Value& v, CallArgs& c) {
  Args("title", c, {});
  std::string out;
  bool at_start = true;
  for (char32_t ch : decode_utf8(to_str(v))) {
    const bool sep = ch == '-' || py_isspace(ch) || ch == '(' || ch == '{' || ch == '[' || ch == '<';
    if (sep) {
      append_utf8(out, ch);
      at_start = true;
    } else {
      if (at_start) {
        std::string one;
        append_utf8(one, ch);
        out += to_upper(one);
      } else {
        append_utf8(out, py_lower(ch));
      }
      at_start = false;
    }
  }
  return text(std::move(out));
}

Value f_trim(Interpreter&, const Value& v, CallArgs& c) {
  Args a("trim", c, {"chars"});
  std::optional<std::string> chars;
  if (a.has(0) && !a.get(0).is_none()) chars = expect_string(a.get(0), "trim() chars");
  return text(py_strip(to_str(v), chars, true, true));
}

Value f_replace(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("replace", c, {"old", "new", "count"}, 2);
  std::string out = py_replace(to_str(v), to_str(a.get(0)), to_str(a.get(1)), a.get_int(2, -1), interp.limits().max_output_bytes);
  interp.check_size(static_cast<int64_t>(out.size()));
  return text(std::move(out));
}

Value f_center(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("center", c, {"width"});
  const int64_t width = a.get_int(0, 80);
  std::string s = to_str(v);
  const int64_t n = count_code_points(s);
  if (width <= n) return text(s);
  interp.check_size(width + static_cast<int64_t>(s.size()));
  const int64_t pad = width - n, left = pad / 2 + (pad & width & 1);
  return text(std::string(static_cast<size_t>(left), ' ') + s + std::string(static_cast<size_t>(pad - left), ' '));
}

Value f_indent(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("indent", c, {"width", "first", "blank"});
  std::string indention;
  if (a.has(0) && a.get(0).is_string()) {
    indention = a.get(0).str();
  } else {
    int64_t width = a.get_int(0, 4);
    interp.check_size(width);
    indention = std::string(static_cast<size_t>(std::max<int64_t>(width, 0)), ' ');
  }
  std::vector<std::string> lines = py_splitlines(to_str(v) + "\n", false);
  std::string out;
  if (a.get_bool(2, false)) {
    for (size_t k = 0; k < lines.size(); ++k) {
      out += (k ? "\n" + indention : "") + lines[k];
      interp.check_size(static_cast<int64_t>(out.size()));
    }
  } else {
    out = lines.empty() ? "" : lines[0];
    for (size_t k = 1; k < lines.size(); ++k) {
      out += "\n" + (lines[k].empty() ? "" : indention) + lines[k];
      interp.check_size(static_cast<int64_t>(out.size()));
    }
  }
  if (a.get_bool(1, false)) out = indention + out;
  interp.check_size(static_cast<int64_t>(out.size()));
  return text(std::move(out));
}

Value f_truncate(Interpreter&, const Value& v, CallArgs& c) {
  Args a("truncate", c, {"length", "killwords", "end", "leeway"});
  const int64_t length = a.get_int(0, 255), leeway = a.get_int(3, 5);
  const std::string end = a.get_string(2, "...");
  std::u32string s = decode_utf8(to_str(v));
  const int64_t end_len = count_code_points(end);
  if (length < end_len) raise(ErrorKind::kAssertionError, "expected length >= " + std::to_string(end_len) + ", got " + std::to_string(length));
  if (leeway < 0) raise(ErrorKind::kAssertionError, "expected leeway >= 0, got " + std::to_string(leeway));
  if (static_cast<int64_t>(s.size()) <= length + leeway) return v.is_string() ? v : text(to_str(v));
  std::string head = encode_utf8(s.substr(0, static_cast<size_t>(length - end_len)));
  if (a.get_bool(1, false)) return text(head + end);
  size_t space = head.rfind(' ');
  return text((space == std::string::npos ? head : head.substr(0, space)) + end);
}

// textwrap.wrap(width, expand_tabs=False, replace_whitespace=False) for one line: words and
// whitespace runs as chunks, greedy filling, whitespace dropped at line edges.
std::vector<std::string> wrap_line(const std::u32string& line, int64_t width, bool break_long) {
  std::vector<std::u32string> chunks;  // reversed: the next chunk is at the back
  for (size_t i = 0; i < line.size();) {
    size_t j = i;
    const bool space = py_isspace(line[i]);
    while (j < line.size() && py_isspace(line[j]) == space) ++j;
    chunks.push_back(line.substr(i, j - i));
    i = j;
  }
  std::reverse(chunks.begin(), chunks.end());
  auto blank = [](const std::u32string& s) { return !s.empty() && py_isspace(s[0]); };
  std::vector<std::string> lines;
  while (!chunks.empty()) {
    std::vector<std::u32string> cur;
    int64_t len = 0;
    if (!lines.empty() && blank(chunks.back())) chunks.pop_back();
    while (!chunks.empty() && len + static_cast<int64_t>(chunks.back().size()) <= width) {
      len += static_cast<int64_t>(chunks.back().size());
      cur.push_back(std::move(chunks.back()));
      chunks.pop_back();
    }
    if (!chunks.empty() && static_cast<int64_t>(chunks.back().size()) > width) {
      if (break_long) {
        const size_t room = static_cast<size_t>(width < 1 ? 1 : width - len);
        cur.push_back(chunks.back().substr(0, room));
        chunks.back() = chunks.back().substr(room);
        if (chunks.back().empty()) chunks.pop_back();
      } else if (cur.empty()) {
        cur.push_back(std::move(chunks.back()));
        chunks.pop_back();
      }
    }
    if (!cur.empty() && blank(cur.back())) cur.pop_back();
    std::u32string joined;
    for (const auto& ch : cur) joined += ch;
    if (!cur.empty()) lines.push_back(encode_utf8(joined));
  }
  return lines;
}

Value f_wordwrap(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("wordwrap", c, {"width", "break_long_words", "wrapstring", "break_on_hyphens"});
  const int64_t width = a.get_int(0, 79);
  if (width <= 0) raise(ErrorKind::kValueError, "invalid width " + std::to_string(width) + " (must be > 0)");
  const std::string wrap = a.has(2) && !a.get(2).is_none() ? to_str(a.get(2)) : "\n";
  std::string out;
  bool first = true;
  for (const std::string& line : py_splitlines(to_str(v), false)) {
    std::vector<std::string> wrapped = wrap_line(decode_utf8(line), width, a.get_bool(1, true));
    std::string joined;
    for (size_t k = 0; k < wrapped.size(); ++k) {
      joined += (k ? wrap : "") + wrapped[k];
      interp.check_size(static_cast<int64_t>(out.size() + joined.size()));
    }
    out += (first ? "" : wrap) + joined;
    first = false;
  }
  return text(std::move(out));
}

Value f_wordcount(Interpreter&, const Value& v, CallArgs& c) {
  Args("wordcount", c, {});
  int64_t n = 0;
  bool in_word = false;
  for (char32_t ch : decode_utf8(to_str(v))) {
    const bool w = py_isalpha(ch) || py_isnumeric(ch) || ch == '_';
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::integer(n);
}

Value f_striptags(Interpreter&, const Value& v, CallArgs& c) {
  Args("striptags", c, {});
  std::string s = to_str(v);
  for (size_t start; (start = s.find("<!--")) != std::string::npos;) {
    size_t end = s.find("-->", start);
    if (end == std::string::npos) break;
    s.erase(start, end + 3 - start);
  }
  for (size_t start; (start = s.find('<')) != std::string::npos;) {
    size_t end = s.find('>', start);
    if (end == std::string::npos) break;
    s.erase(start, end + 1 - start);
  }
  std::string joined;
  for (const std::string& w : py_split(s, std::nullopt, -1)) joined += (joined.empty() ? "" : " ") + w;
  static const std::pair<const char*, const char*> kEntities[] = {
      {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#34;", "\""}, {"&#39;", "'"}, {"&nbsp;", "\u00a0"}, {"&amp;", "&"}};
  for (const auto& [entity, plain] : kEntities) joined = py_replace(joined, entity, plain, -1);
  return text(std::move(joined));
}

Value f_escape(Interpreter&, const Value& v, CallArgs& c) {
  Args("escape", c, {});
  if (v.is_markup()) return v;
  return Value::string(html_escape(to_str(v)), true);
}

Value f_forceescape(Interpreter&, const Value& v, CallArgs& c) {
  Args("forceescape", c, {});
  return Value::string(html_escape(to_str(v)), true);
}

Value f_safe(Interpreter&, const Value& v, CallArgs& c) {
  Args("safe", c, {});
  return Value::string(to_str(v), true);
}

Value f_format(Interpreter& interp, const Value& v, CallArgs& c) {
  if (!c.args.empty() && !c.kwargs.empty()) {
    raise(ErrorKind::kTemplateRuntimeError, "can't handle positional and keyword arguments at the same time");
  }
  Value args;
  if (!c.kwargs.empty()) {
    auto d = std::make_shared<Dict>();
    for (auto& [k, value] : c.kwargs) d->set(Value::string(k), value);
    args = Value::dict(std::move(d));
  } else {
    args = Value::tuple(c.args);
  }
  std::string out = percent_format(to_str(v), args);
  interp.check_size(static_cast<int64_t>(out.size()));
  return text(std::move(out));
}

std::string url_quote(const std::string& s, bool for_qs) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '_' || ch == '.' || ch == '-' || ch == '~' || (!for_qs && ch == '/')) {
      out += static_cast<char>(ch);
    } else if (for_qs && ch == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

Value f_urlencode(Interpreter&, const Value& v, CallArgs& c) {
  Args("urlencode", c, {});
  if (v.is_string() || !(v.is_dict() || v.is_sequence())) return text(url_quote(to_str(v), false));
  std::string out;
  auto add = [&](const Value& k, const Value& value) {
    out += (out.empty() ? "" : "&") + url_quote(to_str(k), true) + "=" + url_quote(to_str(value), true);
  };
  if (v.is_dict()) {
    for (const auto& [k, value] : v.dict().entries()) add(k, value);
  } else {
    for (const Value& pair : v.items()) {
      std::vector<Value> kv = iterate(pair);
      if (kv.size() != 2) raise(ErrorKind::kValueError, "urlencode needs (key, value) pairs");
      add(kv[0], kv[1]);
    }
  }
  return text(std::move(out));
}

Value f_filesizeformat(Interpreter&, const Value& v, CallArgs& c) {
  Args a("filesizeformat", c, {"binary"});
  if (!v.is_number() && !v.is_string()) type_error("float() argument must be a string or a real number, not '" + type_name(v) + "'");
  const double bytes = v.is_number() ? v.as_float() : std::strtod(v.str().c_str(), nullptr);
  const bool binary = a.get_bool(0, false);
  const double base = binary ? 1024 : 1000;
  static const char* const kDecimal[] = {"kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"};
  static const char* const kBinary[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"};
  if (bytes == 1) return text("1 Byte");
  if (bytes < base) return text(std::to_string(static_cast<int64_t>(bytes)) + " Bytes");
  double unit = base;
  const char* prefix = "";
  for (int k = 0; k < 8; ++k) {
    unit = std::pow(base, k + 2);
    prefix = binary ? kBinary[k] : kDecimal[k];
    if (bytes < unit) break;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s", base * bytes / unit, prefix);
  return text(buf);
}

Value f_xmlattr(Interpreter&, const Value& v, CallArgs& c) {
  Args a("xmlattr", c, {"autospace"});
  if (!v.is_dict()) type_error("xmlattr needs a mapping");
  std::string out;
  for (const auto& [k, value] : v.dict().entries()) {
    if (value.is_none() || value.is_undefined()) continue;
    std::string key = to_str(k);
    if (key.find_first_of(" \t\n\r\f\v/>=") != std::string::npos) {
      raise(ErrorKind::kValueError, "Invalid character in attribute name: " + py_str_repr(key));
    }
    out += (out.empty() ? "" : " ") + html_escape(key) + "=\"" + html_escape(to_str(value)) + "\"";
  }
  if (a.get_bool(0, true) && !out.empty()) out = " " + out;
  return text(std::move(out));
}

}  // namespace

Value f_urlize(Interpreter& interp, const Value& v, CallArgs& c);  // filters_urlize.cpp

void add_text_filters(FilterTable& t) {
  t["upper"] = f_upper;
  t["lower"] = f_lower;
  t["capitalize"] = f_capitalize;
  t["title"] = f_title;
  t["trim"] = f_trim;
  t["replace"] = f_replace;
  t["center"] = f_center;
  t["indent"] = f_indent;
  t["truncate"] = f_truncate;
  t["wordwrap"] = f_wordwrap;
  t["wordcount"] = f_wordcount;
  t["striptags"] = f_striptags;
  t["escape"] = t["e"] = f_escape;
  t["forceescape"] = f_forceescape;
  t["safe"] = f_safe;
  t["format"] = f_format;
  t["urlencode"] = f_urlencode;
  t["urlize"] = f_urlize;
  t["filesizeformat"] = f_filesizeformat;
  t["xmlattr"] = f_xmlattr;
}

}  // namespace tk::jinja::detail
