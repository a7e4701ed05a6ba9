// The test validator (see validator.h). Formats are asserted, strictly: the formats the grammar
// generates must hold under a checker at least as strict as what the grammar enforces.
#include "validator.h"

#include <cmath>
#include <regex>
#include <set>

namespace tk::grammar::testing {
namespace {

struct V {
  const OJson& root;
  std::string error;

  bool fail(const std::string& path, const std::string& what) {
    if (error.empty()) error = what + " at " + (path.empty() ? "/" : path);
    return false;
  }
  bool check(const OJson& s, const OJson& x, const std::string& path, int depth);
  bool check_type(const OJson& s, const OJson& x, const std::string& path);
  bool check_object(const OJson& s, const OJson& x, const std::string& path, int depth);
  bool check_array(const OJson& s, const OJson& x, const std::string& path, int depth);
  bool check_string(const OJson& s, const OJson& x, const std::string& path);
  bool check_number(const OJson& s, const OJson& x, const std::string& path);
};

bool is_integer(const OJson& x) {
  return x.is_number_integer() || (x.is_number_float() && std::floor(x.get<double>()) == x.get<double>());
}

bool type_matches(const std::string& t, const OJson& x) {
  if (t == "null") return x.is_null();
  if (t == "boolean") return x.is_boolean();
  if (t == "object") return x.is_object();
  if (t == "array") return x.is_array();
  if (t == "string") return x.is_string();
  if (t == "number") return x.is_number();
  if (t == "integer") return x.is_number() && is_integer(x);
  return false;
}

size_t codepoints(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

bool valid_date(const std::string& s) {
  static const std::regex re("^([0-9]{4})-([0-9]{2})-([0-9]{2})$");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  int y = std::stoi(m[1]), mo = std::stoi(m[2]), d = std::stoi(m[3]);
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || mo < 1 || mo > 12 || d < 1) return false;
  return d <= kDays[mo - 1] + (mo == 2 && leap(y));
}

bool valid_time(const std::string& s) {
  static const std::regex re("^([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]+)?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$");
  return std::regex_match(s, re);
}

bool valid_format(const std::string& f, const std::string& s) {
  if (f == "date") return valid_date(s);
  if (f == "time") return valid_time(s);
  if (f == "date-time") {
    size_t t = s.find_first_of("Tt");
    return t == 10 && valid_date(s.substr(0, 10)) && valid_time(s.substr(11));
  }
  if (f == "uuid") return std::regex_match(s, std::regex("^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"));
  if (f == "email") return std::regex_match(s, std::regex("^[^@\\s\"]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)+$"));
  if (f == "ipv4") {
    return std::regex_match(s, std::regex("^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$"));
  }
  if (f == "hostname") {
    return s.size() <= 253 && std::regex_match(s, std::regex("^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"));
  }
  if (f == "uri") return std::regex_match(s, std::regex("^[A-Za-z][A-Za-z0-9+.-]*:[^\\s\"<>\\\\^`{|}]*$"));
  return true;
}

bool V::check_type(const OJson& s, const OJson& x, const std::string& path) {
  std::vector<std::string> types;
  if (s["type"].is_string()) types.push_back(s["type"]);
  for (const OJson& t : s["type"].is_array() ? s["type"] : OJson::array()) types.push_back(t);
  if (s.value("nullable", false)) types.push_back("null");
  for (const std::string& t : types) {
    if (type_matches(t, x)) return true;
  }
  return fail(path, "type " + s["type"].dump() + " does not match " + x.dump());
}

bool V::check_number(const OJson& s, const OJson& x, const std::string& path) {
  double v = x.get<double>();
  if (s.contains("minimum")) {
    bool strict = s.value("exclusiveMinimum", OJson()).is_boolean() && s["exclusiveMinimum"].get<bool>();
    double m = s["minimum"];
    if (strict ? v <= m : v < m) return fail(path, "below minimum");
  }
  if (s.contains("maximum")) {
    bool strict = s.value("exclusiveMaximum", OJson()).is_boolean() && s["exclusiveMaximum"].get<bool>();
    double m = s["maximum"];
    if (strict ? v >= m : v > m) return fail(path, "above maximum");
  }
  if (s.contains("exclusiveMinimum") && s["exclusiveMinimum"].is_number() && v <= s["exclusiveMinimum"].get<double>()) return fail(path, "not above exclusiveMinimum");
  if (s.contains("exclusiveMaximum") && s["exclusiveMaximum"].is_number() && v >= s["exclusiveMaximum"].get<double>()) return fail(path, "not below exclusiveMaximum");
  return true;
}

bool V::check_string(const OJson& s, const OJson& x, const std::string& path) {
  const std::string v = x.get<std::string>();
  size_t n = codepoints(v);
  if (s.contains("minLength") && n < s["minLength"].get<size_t>()) return fail(path, "shorter than minLength");
  if (s.contains("maxLength") && n > s["maxLength"].get<size_t>()) return fail(path, "longer than maxLength");
  if (s.contains("pattern") && !std::regex_search(v, std::regex(s["pattern"].get<std::string>(), std::regex::ECMAScript))) {
    return fail(path, "does not match pattern " + s["pattern"].get<std::string>());
  }
  if (s.contains("format") && !valid_format(s["format"], v)) return fail(path, "not a " + s["format"].get<std::string>());
  return true;
}

bool V::check_object(const OJson& s, const OJson& x, const std::string& path, int depth) {
  static const OJson kNone;
  const OJson& props = s.contains("properties") ? s["properties"] : kNone;
  for (const OJson& r : s.value("required", OJson::array())) {
    if (!x.contains(r.get<std::string>())) return fail(path, "missing required " + r.dump());
  }
  for (const auto& [k, v] : x.items()) {
    if (props.is_object() && props.contains(k)) {
      if (!check(props[k], v, path + "/" + k, depth + 1)) return false;
    } else if (s.contains("additionalProperties")) {
      if (!check(s["additionalProperties"], v, path + "/" + k, depth + 1)) return false;
    }
  }
  return true;
}

bool V::check_array(const OJson& s, const OJson& x, const std::string& path, int depth) {
  size_t n = x.size(), tuple = 0;
  const OJson* rest = s.contains("items") ? &s["items"] : nullptr;
  const OJson* prefix = s.contains("prefixItems") ? &s["prefixItems"] : nullptr;
  if (rest && rest->is_array()) {
    prefix = rest;
    rest = s.contains("additionalItems") ? &s["additionalItems"] : nullptr;
  }
  if (prefix) {
    tuple = prefix->size();
    for (size_t i = 0; i < n && i < tuple; ++i) {
      if (!check((*prefix)[i], x[i], path + "/" + std::to_string(i), depth + 1)) return false;
    }
  }
  for (size_t i = tuple; rest && i < n; ++i) {
    if (!check(*rest, x[i], path + "/" + std::to_string(i), depth + 1)) return false;
  }
  if (s.contains("minItems") && n < s["minItems"].get<size_t>()) return fail(path, "fewer than minItems");
  if (s.contains("maxItems") && n > s["maxItems"].get<size_t>()) return fail(path, "more than maxItems");
  if (s.value("uniqueItems", false)) {
    std::set<std::string> seen;
    for (const OJson& e : x) {
      if (!seen.insert(e.dump()).second) return fail(path, "items not unique");
    }
  }
  return true;
}

bool V::check(const OJson& s, const OJson& x, const std::string& path, int depth) {
  if (depth > 200) return fail(path, "too deep");
  if (s.is_boolean()) return s.get<bool>() || fail(path, "schema false");
  if (s.contains("$ref")) {
    std::string ref = s["$ref"];
    const OJson& target = ref == "#" ? root : root.at(OJson::json_pointer(ref.substr(1)));
    if (!check(target, x, path, depth + 1)) return false;
  }
  for (const OJson& part : s.value("allOf", OJson::array())) {
    if (!check(part, x, path, depth + 1)) return false;
  }
  if (s.contains("anyOf")) {
    bool any = false;
    for (const OJson& part : s["anyOf"]) {
      V sub{root, {}};
      any = any || sub.check(part, x, path, depth + 1);
    }
    if (!any) return fail(path, "no anyOf alternative matches");
  }
  if (s.contains("oneOf")) {
    int matched = 0;
    for (const OJson& part : s["oneOf"]) {
      V sub{root, {}};
      matched += sub.check(part, x, path, depth + 1);
    }
    if (matched != 1) return fail(path, std::to_string(matched) + " oneOf alternatives match");
  }
  if (s.contains("enum") && std::find(s["enum"].begin(), s["enum"].end(), x) == s["enum"].end()) return fail(path, "not in enum");
  if (s.contains("const") && s["const"] != x) return fail(path, "not the const");
  if (s.contains("type") && !check_type(s, x, path)) return false;
  if (x.is_number() && !check_number(s, x, path)) return false;
  if (x.is_string() && !check_string(s, x, path)) return false;
  if (x.is_object() && !check_object(s, x, path, depth)) return false;
  if (x.is_array() && !check_array(s, x, path, depth)) return false;
  return true;
}

}  // namespace

std::string validate_instance(const OJson& schema, const OJson& instance) {
  V v{schema, {}};
  try {
    if (v.check(schema, instance, "", 0)) return "";
  } catch (const std::exception& e) {
    return std::string("validator exception: ") + e.what();
  }
  return v.error.empty() ? "invalid" : v.error;
}

}  // namespace tk::grammar::testing
