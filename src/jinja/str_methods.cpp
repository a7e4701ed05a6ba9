// Python's str methods as template attributes: `message.content.strip()`,
// `tool.name.startswith(('a', 'b'))`, `'{0}: {1}'.format(a, b)`, ...
#include <algorithm>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "interpreter.h"
#include "pyformat.h"
#include "pystr.h"
#include "ustr.h"

namespace tk::jinja::detail {

namespace {

using Method = Value (*)(const std::string& self, CallArgs& args, Interpreter& interp);

Value str(std::string s) { return Value::string(std::move(s)); }

std::optional<std::string> optional_chars(const Args& a, size_t i) {
  if (!a.has(i) || a.get(i).is_none()) return std::nullopt;
  return expect_string(a.get(i), a.function() + " arg");
}

// Python's start/end arguments over code points -> [begin, end) clamped.
std::pair<size_t, size_t> span(const Args& a, size_t first, size_t n) {
  auto bound = [&](size_t i, int64_t fallback) {
    int64_t v = a.get_int(i, fallback);
    if (v < 0) v += static_cast<int64_t>(n);
    return static_cast<size_t>(std::clamp<int64_t>(v, 0, static_cast<int64_t>(n)));
  };
  return {bound(first, 0), bound(first + 1, static_cast<int64_t>(n))};
}

Value affix_test(const std::string& self, CallArgs& call, bool prefix) {
  Args a(prefix ? "startswith" : "endswith", call, {"prefix", "start", "end"}, 1);
  std::u32string cps = decode_utf8(self);
  auto [begin, end] = span(a, 1, cps.size());
  if (begin > end) return Value::boolean(false);
  std::u32string_view window = std::u32string_view(cps).substr(begin, end - begin);
  auto check = [&](const Value& v) {
    std::u32string affix = decode_utf8(expect_string(v, std::string(prefix ? "startswith" : "endswith") + " first arg"));
    if (affix.size() > window.size()) return false;
    return prefix ? window.substr(0, affix.size()) == affix : window.substr(window.size() - affix.size()) == affix;
  };
  const Value& what = a.get(0);
  if (what.is_tuple()) {
    for (const Value& v : what.items())
      if (check(v)) return Value::boolean(true);
    return Value::boolean(false);
  }
  if (!what.is_string()) {
    type_error(std::string(prefix ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " + type_name(what));
  }
  return Value::boolean(check(what));
}

Value find_impl(const std::string& self, CallArgs& call, const char* name, bool reverse, bool raise_missing) {
  Args a(name, call, {"sub", "start", "end"}, 1);
  std::u32string cps = decode_utf8(self);
  std::u32string sub = decode_utf8(expect_string(a.get(0), std::string(name) + "() argument"));
  auto [begin, end] = span(a, 1, cps.size());
  int64_t found = -1;
  if (begin <= end && sub.size() <= end - begin) {
    std::u32string_view window = std::u32string_view(cps).substr(begin, end - begin);
    size_t at = reverse ? window.rfind(sub) : window.find(sub);
    if (at != std::u32string_view::npos) found = static_cast<int64_t>(begin + at);
  }
  if (found < 0 && raise_missing) raise(ErrorKind::kValueError, "substring not found");
  return Value::integer(found);
}

Value count_impl(const std::string& self, CallArgs& call) {
  Args a("count", call, {"sub", "start", "end"}, 1);
  std::u32string cps = decode_utf8(self);
  std::u32string sub = decode_utf8(expect_string(a.get(0), "count() argument"));
  auto [begin, end] = span(a, 1, cps.size());
  if (begin > end) return Value::integer(0);
  if (sub.empty()) return Value::integer(static_cast<int64_t>(end - begin + 1));
  std::u32string_view window = std::u32string_view(cps).substr(begin, end - begin);
  int64_t n = 0;
  for (size_t at = window.find(sub); at != std::u32string_view::npos; at = window.find(sub, at + sub.size())) ++n;
  return Value::integer(n);
}

Value split_impl(const std::string& self, CallArgs& call, bool right) {
  Args a(right ? "rsplit" : "split", call, {"sep", "maxsplit"});
  std::vector<Value> parts;
  for (std::string& p : py_split(self, optional_chars(a, 0), a.get_int(1, -1), right)) parts.push_back(str(std::move(p)));
  return Value::list(std::move(parts));
}

Value justify(const std::string& self, CallArgs& call, const char* name, int where, Interpreter& interp) {
  Args a(name, call, {"width", "fillchar"}, 1);
  int64_t width = a.get_int(0, 0);
  std::u32string fill = decode_utf8(a.get_string(1, " "));
  if (fill.size() != 1) type_error(std::string("The fill character must be exactly one character long"));
  const int64_t n = count_code_points(self);
  if (width <= n) return str(self);
  interp.check_size(width);
  int64_t pad = width - n, left = where < 0 ? 0 : where > 0 ? pad : pad / 2 + (pad & width & 1);
  std::string f = encode_utf8(fill), out;
  for (int64_t k = 0; k < left; ++k) out += f;
  out += self;
  for (int64_t k = 0; k < pad - left; ++k) out += f;
  return str(std::move(out));
}

template <bool (*Pred)(char32_t)>
Value all_chars(const std::string& self) {
  std::u32string cps = decode_utf8(self);
  if (cps.empty()) return Value::boolean(false);
  for (char32_t c : cps)
    if (!Pred(c)) return Value::boolean(false);
  return Value::boolean(true);
}

bool is_alnum(char32_t c) { return py_isalpha(c) || py_isnumeric(c); }
bool is_ascii(char32_t c) { return c < 0x80; }

Value cased_check(const std::string& self, bool want_lower) {
  bool cased = false;
  for (char32_t c : decode_utf8(self)) {
    if (want_lower ? py_isupper(c) : py_islower(c)) return Value::boolean(false);
    cased = cased || py_iscased(c);
  }
  return Value::boolean(cased);
}

Value partition(const std::string& self, CallArgs& call, bool right) {
  Args a(right ? "rpartition" : "partition", call, {"sep"}, 1);
  const std::string& sep = expect_string(a.get(0), "partition() argument");
  if (sep.empty()) raise(ErrorKind::kValueError, "empty separator");
  size_t at = right ? self.rfind(sep) : self.find(sep);
  if (at == std::string::npos) {
    return right ? Value::tuple({str(""), str(""), str(self)}) : Value::tuple({str(self), str(""), str("")});
  }
  return Value::tuple({str(self.substr(0, at)), str(sep), str(self.substr(at + sep.size()))});
}

Value join(const std::string& self, CallArgs& call, Interpreter& interp) {
  Args a("join", call, {"iterable"}, 1);
  std::string out;
  size_t k = 0;
  for (const Value& v : iterate(a.get(0))) {
    if (!v.is_string()) type_error("sequence item " + std::to_string(k) + ": expected str instance, " + type_name(v) + " found");
    if (k++) out += self;
    out += v.str();
    interp.check_size(static_cast<int64_t>(out.size()));
  }
  return str(std::move(out));
}

using MethodList = std::vector<std::pair<const char*, Method>>;

// Case mapping, stripping and splitting.
MethodList case_methods() {
  return {
      {"lower", [](const std::string& s, CallArgs& c, Interpreter&) { Args("str.lower", c, {}); return str(to_lower(s)); }},
      {"upper", [](const std::string& s, CallArgs& c, Interpreter&) { Args("str.upper", c, {}); return str(to_upper(s)); }},
      {"casefold", [](const std::string& s, CallArgs& c, Interpreter&) { Args("str.casefold", c, {}); return str(to_lower(s)); }},
      {"title", [](const std::string& s, CallArgs& c, Interpreter&) { Args("str.title", c, {}); return str(py_title(s)); }},
      {"capitalize", [](const std::string& s, CallArgs& c, Interpreter&) { Args("str.capitalize", c, {}); return str(py_capitalize(s)); }},
      {"swapcase", [](const std::string& s, CallArgs& c, Interpreter&) {
         Args("str.swapcase", c, {});
         std::string out;
         for (char32_t ch : decode_utf8(s)) append_utf8(out, py_isupper(ch) ? py_lower(ch) : py_islower(ch) ? py_upper(ch) : ch);
         return str(out);
       }},
      {"strip", [](const std::string& s, CallArgs& c, Interpreter&) { Args a("strip", c, {"chars"}); return str(py_strip(s, optional_chars(a, 0), true, true)); }},
      {"lstrip", [](const std::string& s, CallArgs& c, Interpreter&) { Args a("lstrip", c, {"chars"}); return str(py_strip(s, optional_chars(a, 0), true, false)); }},
      {"rstrip", [](const std::string& s, CallArgs& c, Interpreter&) { Args a("rstrip", c, {"chars"}); return str(py_strip(s, optional_chars(a, 0), false, true)); }},
      {"split", [](const std::string& s, CallArgs& c, Interpreter&) { return split_impl(s, c, false); }},
      {"rsplit", [](const std::string& s, CallArgs& c, Interpreter&) { return split_impl(s, c, true); }},
      {"splitlines", [](const std::string& s, CallArgs& c, Interpreter&) {
         Args a("splitlines", c, {"keepends"});
         std::vector<Value> lines;
         for (std::string& l : py_splitlines(s, a.get_bool(0, false))) lines.push_back(str(std::move(l)));
         return Value::list(std::move(lines));
       }},
  };
}

// Searching, replacing, joining and formatting.
MethodList search_methods() {
  return {
      {"startswith", [](const std::string& s, CallArgs& c, Interpreter&) { return affix_test(s, c, true); }},
      {"endswith", [](const std::string& s, CallArgs& c, Interpreter&) { return affix_test(s, c, false); }},
      {"replace", [](const std::string& s, CallArgs& c, Interpreter& interp) {
         Args a("replace", c, {"old", "new", "count"}, 2);
         std::string out = py_replace(s, expect_string(a.get(0), "replace() argument 1"), expect_string(a.get(1), "replace() argument 2"), a.get_int(2, -1), interp.limits().max_output_bytes);
         interp.check_size(static_cast<int64_t>(out.size()));
         return str(std::move(out));
       }},
      {"find", [](const std::string& s, CallArgs& c, Interpreter&) { return find_impl(s, c, "find", false, false); }},
      {"rfind", [](const std::string& s, CallArgs& c, Interpreter&) { return find_impl(s, c, "rfind", true, false); }},
      {"index", [](const std::string& s, CallArgs& c, Interpreter&) { return find_impl(s, c, "index", false, true); }},
      {"rindex", [](const std::string& s, CallArgs& c, Interpreter&) { return find_impl(s, c, "rindex", true, true); }},
      {"count", [](const std::string& s, CallArgs& c, Interpreter&) { return count_impl(s, c); }},
      {"join", [](const std::string& s, CallArgs& c, Interpreter& interp) { return join(s, c, interp); }},
      {"format", [](const std::string& s, CallArgs& c, Interpreter& interp) {
         std::string out = brace_format(s, c);
         interp.check_size(static_cast<int64_t>(out.size()));
         return str(std::move(out));
       }},
  };
}

// Padding, partitioning, prefixes and tabs.
MethodList shape_methods() {
  return {
      {"center", [](const std::string& s, CallArgs& c, Interpreter& i) { return justify(s, c, "center", 0, i); }},
      {"ljust", [](const std::string& s, CallArgs& c, Interpreter& i) { return justify(s, c, "ljust", -1, i); }},
      {"rjust", [](const std::string& s, CallArgs& c, Interpreter& i) { return justify(s, c, "rjust", 1, i); }},
      {"zfill", [](const std::string& s, CallArgs& c, Interpreter& interp) {
         Args a("zfill", c, {"width"}, 1);
         int64_t width = a.get_int(0, 0), n = count_code_points(s);
         if (width <= n) return str(s);
         interp.check_size(width);
         size_t sign = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
         return str(s.substr(0, sign) + std::string(static_cast<size_t>(width - n), '0') + s.substr(sign));
       }},
      {"partition", [](const std::string& s, CallArgs& c, Interpreter&) { return partition(s, c, false); }},
      {"rpartition", [](const std::string& s, CallArgs& c, Interpreter&) { return partition(s, c, true); }},
      {"removeprefix", [](const std::string& s, CallArgs& c, Interpreter&) {
         Args a("removeprefix", c, {"prefix"}, 1);
         const std::string& p = expect_string(a.get(0), "removeprefix() argument");
         return str(s.compare(0, p.size(), p) == 0 ? s.substr(p.size()) : s);
       }},
      {"removesuffix", [](const std::string& s, CallArgs& c, Interpreter&) {
         Args a("removesuffix", c, {"suffix"}, 1);
         const std::string& p = expect_string(a.get(0), "removesuffix() argument");
         const bool ends = !p.empty() && s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
         return str(ends ? s.substr(0, s.size() - p.size()) : s);
       }},
      {"expandtabs", [](const std::string& s, CallArgs& c, Interpreter& interp) {
         Args a("expandtabs", c, {"tabsize"});
         int64_t size = a.get_int(0, 8), column = 0;
         std::string out;
         for (char32_t ch : decode_utf8(s)) {
           if (ch == '\t') {
             int64_t spaces = size > 0 ? size - column % size : 0;
             interp.check_size(static_cast<int64_t>(out.size()) + spaces);
             out.append(static_cast<size_t>(spaces), ' ');
             column += spaces;
           } else {
             append_utf8(out, ch);
             column = (ch == '\n' || ch == '\r') ? 0 : column + 1;
           }
         }
         return str(std::move(out));
       }},
  };
}

// The is*() predicates.
MethodList predicates_methods() {
  return {
      {"isdigit", [](const std::string& s, CallArgs&, Interpreter&) { return all_chars<py_isdigit>(s); }},
      {"isdecimal", [](const std::string& s, CallArgs&, Interpreter&) { return all_chars<py_isdecimal>(s); }},
      {"isnumeric", [](const std::string& s, CallArgs&, Interpreter&) { return all_chars<py_isnumeric>(s); }},
      {"isalpha", [](const std::string& s, CallArgs&, Interpreter&) { return all_chars<py_isalpha>(s); }},
      {"isalnum", [](const std::string& s, CallArgs&, Interpreter&) { return all_chars<is_alnum>(s); }},
      {"isspace", [](const std::string& s, CallArgs&, Interpreter&) { return all_chars<py_isspace>(s); }},
      {"isascii", [](const std::string& s, CallArgs&, Interpreter&) { return Value::boolean(s.empty() || all_chars<is_ascii>(s).as_bool()); }},
      {"isprintable", [](const std::string& s, CallArgs&, Interpreter&) { return Value::boolean(s.empty() || all_chars<py_isprintable>(s).as_bool()); }},
      {"islower", [](const std::string& s, CallArgs&, Interpreter&) { return cased_check(s, true); }},
      {"isupper", [](const std::string& s, CallArgs&, Interpreter&) { return cased_check(s, false); }},
      {"istitle", [](const std::string& s, CallArgs&, Interpreter&) {
         bool cased = false, previous = false;
         for (char32_t ch : decode_utf8(s)) {
           if (py_isupper(ch)) {
             if (previous) return Value::boolean(false);
             previous = cased = true;
           } else if (py_islower(ch)) {
             if (!previous) return Value::boolean(false);
             previous = cased = true;
           } else {
             previous = false;
           }
         }
         return Value::boolean(cased);
       }},
      {"isidentifier", [](const std::string& s, CallArgs&, Interpreter&) {
         std::u32string cps = decode_utf8(s);
         bool ok = !cps.empty() && (py_isalpha(cps[0]) || cps[0] == '_');
         for (char32_t ch : cps) ok = ok && (is_alnum(ch) || ch == '_');
         return Value::boolean(ok);
       }},
  };
}

const std::unordered_map<std::string, Method>& methods() {
  static const std::unordered_map<std::string, Method> table = [] {
    std::unordered_map<std::string, Method> t;
    for (auto list : {case_methods(), search_methods(), shape_methods(), predicates_methods()})
      for (const auto& [name, method] : list) t.emplace(name, method);
    return t;
  }();
  return table;
}

bool is_other_str_attribute(const std::string& name) {
  static const char* const kNames[] = {"encode", "format_map", "maketrans", "translate"};
  for (const char* n : kNames)
    if (name == n) return true;
  return false;
}

}  // namespace

std::optional<Value> str_method(const Value& self, const std::string& name) {
  const auto& table = methods();
  auto it = table.find(name);
  if (it != table.end()) {
    Method m = it->second;
    std::string s = self.str();
    return make_function(name, [m, s](Interpreter& interp, CallArgs& args) { return m(s, args, interp); });
  }
  if (is_other_str_attribute(name)) {
    return make_function(name, [name](Interpreter&, CallArgs&) -> Value {
      raise(ErrorKind::kTemplateRuntimeError, "str." + name + "() is not supported in templates");
    });
  }
  return std::nullopt;
}

}  // namespace tk::jinja::detail
