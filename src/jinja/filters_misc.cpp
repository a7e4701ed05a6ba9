// The filter registry and the filters that are neither text nor plain sequence work: default,
// tojson (transformers' json.dumps), attr, map/select/reject/selectattr/rejectattr, numbers
// (abs, int, float, round), string and pprint.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>

#include "convert.h"
#include "filters.h"
#include "pystr.h"
#include "ustr.h"

namespace tk::jinja::detail {

Value ignore_case(const Value& v) { return v.is_string() ? Value::string(to_lower(v.str())) : v; }

Value generator(std::vector<Value> items, std::string type_name) {
  return Value::object(std::make_shared<Generator>(std::move(items), std::move(type_name)));
}

std::function<Value(const Value&)> attr_getter(Interpreter& interp, const Value& attribute,
                                               const std::optional<Value>& fallback, bool lower) {
  std::vector<Value> parts;
  if (attribute.is_string()) {
    for (const std::string& p : py_split(attribute.str(), std::string("."), -1)) {
      const bool digits = !p.empty() && p.find_first_not_of("0123456789") == std::string::npos;
      parts.push_back(digits ? Value::integer(std::stoll(p)) : Value::string(p));
    }
  } else if (!attribute.is_none() && !attribute.is_undefined()) {
    parts.push_back(attribute);
  }
  Interpreter* ip = &interp;
  return [ip, parts, fallback, lower](const Value& item) {
    Value v = item;
    for (const Value& part : parts) {
      v = ip->getitem(v, part);
      if (fallback && v.is_undefined()) v = *fallback;
    }
    return lower ? ignore_case(v) : v;
  };
}

namespace {

Value f_default(Interpreter&, const Value& v, CallArgs& c) {
  Args a("default", c, {"default_value", "boolean"});
  if (v.is_undefined() || (a.get_bool(1, false) && !truthy(v))) return a.get_or(0, Value::string(""));
  return v;
}

Value f_tojson(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("tojson", c, {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonDumpOptions o;
  o.ensure_ascii = a.get_bool(0, false);
  if (a.has(1) && !a.get(1).is_none()) {
    const Value& indent = a.get(1);
    if (indent.is_string()) {
      o.indent = indent.str();
    } else {
      const int64_t n = expect_int(indent, "tojson() indent");
      interp.check_size(n);
      o.indent = std::string(static_cast<size_t>(std::max<int64_t>(n, 0)), ' ');
    }
    o.item_separator = ",";
  }
  if (a.has(2) && !a.get(2).is_none()) {
    std::vector<Value> seps = iterate(a.get(2));
    if (seps.size() != 2) raise(ErrorKind::kValueError, "too many values to unpack (expected 2)");
    o.item_separator = expect_string(seps[0], "tojson() separators");
    o.key_separator = expect_string(seps[1], "tojson() separators");
  }
  o.sort_keys = a.get_bool(3, false);
  o.max_bytes = interp.limits().max_output_bytes;
  std::string out = json_dumps(v, o);
  interp.check_size(static_cast<int64_t>(out.size()));
  return Value::string(std::move(out));
}

Value f_attr(Interpreter& interp, const Value& v, CallArgs& c) {
  Args a("attr", c, {"name"}, 1);
  const std::string& name = expect_string(a.get(0), "attr() name");
  if (v.is_undefined()) raise_undefined(v);
  if (std::optional<Value> attr = builtin_attribute(interp, v, name)) return *attr;
  return Value::undefined("'" + type_repr(v) + "' has no attribute '" + name + "'");
}

Value f_map(Interpreter& interp, const Value& v, CallArgs& c) {
  std::vector<Value> items = iterate(v), out;
  if (c.args.empty()) {
    std::optional<Value> attribute, fallback;
    for (const auto& [k, value] : c.kwargs) {
      if (k == "attribute") attribute = value;
      else if (k == "default") fallback = value;
      else raise(ErrorKind::kTemplateRuntimeError, "Unexpected keyword argument '" + k + "'");
    }
    if (!attribute) raise(ErrorKind::kTemplateRuntimeError, "map requires a filter argument");
    if (fallback && fallback->is_none()) fallback.reset();
    auto getter = attr_getter(interp, *attribute, fallback);
    for (const Value& item : items) out.push_back(getter(item));
    return generator(std::move(out));
  }
  const std::string name = to_str(c.args[0]);
  CallArgs rest{std::vector<Value>(c.args.begin() + 1, c.args.end()), c.kwargs};
  interp.count_iterations(static_cast<int64_t>(items.size()));
  for (const Value& item : items) {
    CallArgs args = rest;
    out.push_back(interp.apply_filter(name, item, args));
  }
  return generator(std::move(out));
}

Value select_or_reject(Interpreter& interp, const Value& v, CallArgs& c, bool select, bool by_attribute) {
  if (!truthy(v)) return generator({});
  size_t off = 0;
  std::function<Value(const Value&)> trans = [](const Value& x) { return x; };
  if (by_attribute) {
    if (c.args.empty()) raise(ErrorKind::kTemplateRuntimeError, "Missing parameter for attribute name");
    trans = attr_getter(interp, c.args[0]);
    off = 1;
  }
  std::optional<std::string> test;
  CallArgs rest;
  if (c.args.size() > off) {
    test = to_str(c.args[off]);
    rest.args.assign(c.args.begin() + static_cast<long>(off) + 1, c.args.end());
    rest.kwargs = c.kwargs;
  }
  std::vector<Value> items = iterate(v), out;
  interp.count_iterations(static_cast<int64_t>(items.size()));
  for (const Value& item : items) {
    Value probe = trans(item);
    bool ok;
    if (test) {
      CallArgs args = rest;
      ok = interp.apply_test(*test, probe, args);
    } else {
      ok = truthy(probe);
    }
    if (ok == select) out.push_back(item);
  }
  return generator(std::move(out));
}

Value f_select(Interpreter& i, const Value& v, CallArgs& c) { return select_or_reject(i, v, c, true, false); }
Value f_reject(Interpreter& i, const Value& v, CallArgs& c) { return select_or_reject(i, v, c, false, false); }
Value f_selectattr(Interpreter& i, const Value& v, CallArgs& c) { return select_or_reject(i, v, c, true, true); }
Value f_rejectattr(Interpreter& i, const Value& v, CallArgs& c) { return select_or_reject(i, v, c, false, true); }

Value f_abs(Interpreter&, const Value& v, CallArgs& c) {
  Args("abs", c, {});
  if (v.is_float()) return Value::number(std::fabs(v.as_float()));
  if (v.is_number()) {
    if (v.as_int() == INT64_MIN) raise(ErrorKind::kOverflowError, "integer result does not fit in 64 bits");
    return Value::integer(v.as_int() < 0 ? -v.as_int() : v.as_int());
  }
  if (v.is_undefined()) raise_undefined(v);
  type_error("bad operand type for abs(): '" + type_name(v) + "'");
}

// Python float(str): surrounding whitespace, underscores between digits, inf/nan words.
std::optional<double> parse_py_float(const std::string& s) {
  std::string t = py_strip(s, std::nullopt, true, true), clean;
  for (size_t k = 0; k < t.size(); ++k) {
    if (t[k] == '_' && k > 0 && k + 1 < t.size() && std::isdigit(static_cast<unsigned char>(t[k - 1])) &&
        std::isdigit(static_cast<unsigned char>(t[k + 1])))
      continue;
    clean += t[k];
  }
  if (clean.empty() || clean.find_first_of("xXpP") != std::string::npos) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(clean.c_str(), &end);
  if (*end) return std::nullopt;
  return d;
}

std::optional<int64_t> parse_py_int(const std::string& s, int base) {
  std::string t = py_strip(s, std::nullopt, true, true), clean;
  for (char ch : t)
    if (ch != '_') clean += ch;
  if (clean.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(clean.c_str(), &end, base);
  if (*end || errno) return std::nullopt;
  return v;
}

Value f_int(Interpreter&, const Value& v, CallArgs& c) {
  Args a("int", c, {"default", "base"});
  const Value fallback = a.get_or(0, Value::integer(0));
  if (v.is_string()) {
    if (auto i = parse_py_int(v.str(), static_cast<int>(a.get_int(1, 10)))) return Value::integer(*i);
    auto f = parse_py_float(v.str());
    if (f && std::isfinite(*f) && std::fabs(*f) < 9.2e18) return Value::integer(static_cast<int64_t>(*f));
    return fallback;
  }
  if (v.is_float()) {
    const double f = v.as_float();
    if (std::isnan(f)) return fallback;
    if (std::isinf(f)) raise(ErrorKind::kOverflowError, "cannot convert float infinity to integer");
    if (std::fabs(f) >= 9.2e18) raise(ErrorKind::kOverflowError, "integer result does not fit in 64 bits");
    return Value::integer(static_cast<int64_t>(f));
  }
  if (v.is_number()) return Value::integer(v.as_int());
  return fallback;
}

Value f_float(Interpreter&, const Value& v, CallArgs& c) {
  Args a("float", c, {"default"});
  const Value fallback = a.get_or(0, Value::number(0.0));
  if (v.is_number()) return Value::number(v.as_float());
  if (v.is_string()) {
    if (auto f = parse_py_float(v.str())) return Value::number(*f);
  }
  return fallback;
}

Value f_round(Interpreter&, const Value& v, CallArgs& c) {
  Args a("round", c, {"precision", "method"});
  const int64_t precision = a.get_int(0, 0);
  const std::string method = a.get_string(1, "common");
  if (method != "common" && method != "ceil" && method != "floor") {
    raise(ErrorKind::kTemplateRuntimeError, "method must be common, ceil or floor");
  }
  if (!v.is_number()) {
    if (v.is_undefined()) raise_undefined(v);
    type_error("type " + type_name(v) + " doesn't define __round__ method");
  }
  if (method == "common") {
    if (!v.is_float() && precision >= 0) return Value::integer(v.as_int());
    if (precision > 300 || precision < -300) return v.is_float() ? v : Value::integer(v.as_int());
    char buf[512];
    if (precision >= 0) {
      std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), v.as_float());
      return Value::number(std::strtod(buf, nullptr));
    }
    const double scale = std::pow(10.0, static_cast<double>(-precision));
    double r = std::nearbyint(v.as_float() / scale) * scale;
    return v.is_float() ? Value::number(r) : Value::integer(static_cast<int64_t>(r));
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_float() * scale;
  return Value::number((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value f_string(Interpreter&, const Value& v, CallArgs& c) {
  Args("string", c, {});
  return v.is_string() ? v : Value::string(to_str(v));
}

// pprint.pformat sorts dict keys (nested ones too); lines are not wrapped.
Value sorted_dicts(const Value& v, int depth) {
  if (depth > 100) return v;
  if (v.is_sequence()) {
    std::vector<Value> items;
    for (const Value& item : v.items()) items.push_back(sorted_dicts(item, depth + 1));
    return v.is_tuple() ? Value::tuple(std::move(items)) : Value::list(std::move(items));
  }
  if (!v.is_dict()) return v;
  std::vector<std::pair<Value, Value>> entries = v.dict().entries();
  std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return less_than(a.first, b.first); });
  auto d = std::make_shared<Dict>();
  for (auto& [k, value] : entries) d->set(k, sorted_dicts(value, depth + 1));
  return Value::dict(std::move(d));
}

Value f_pprint(Interpreter&, const Value& v, CallArgs& c) {
  Args("pprint", c, {});
  return Value::string(repr(sorted_dicts(v, 0)));
}

FilterTable make_table() {
  FilterTable t;
  add_text_filters(t);
  add_sequence_filters(t);
  add_misc_filters(t);
  return t;
}

}  // namespace

void add_misc_filters(FilterTable& t) {
  t["default"] = t["d"] = f_default;
  t["tojson"] = f_tojson;
  t["attr"] = f_attr;
  t["map"] = f_map;
  t["select"] = f_select;
  t["reject"] = f_reject;
  t["selectattr"] = f_selectattr;
  t["rejectattr"] = f_rejectattr;
  t["abs"] = f_abs;
  t["int"] = f_int;
  t["float"] = f_float;
  t["round"] = f_round;
  t["string"] = f_string;
  t["pprint"] = f_pprint;
}

const std::unordered_map<std::string, FilterFn>& builtin_filters() {
  static const FilterTable table = make_table();
  return table;
}

}  // namespace tk::jinja::detail
