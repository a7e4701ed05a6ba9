// allOf as one schema: the cases real schemas use (a base object extended with more properties,
// a $ref narrowed by bounds, types intersected). A pair of keywords with no single equivalent (two
// different patterns) is an error naming the keyword; a contradiction (disjoint types or enums)
// "matches nothing", which anyOf uses to drop an alternative.
#include <algorithm>
#include <set>

#include "json_schema.h"

namespace tk::grammar {
namespace {

Status nothing(const std::string& path, const std::string& why) {
  return invalid_argument("json schema: allOf: " + why + ": the schema matches nothing at " + "#" + path);
}

std::set<std::string> type_set(const Json& t) {
  std::set<std::string> out;
  if (t.is_string()) out.insert(t.get<std::string>());
  if (t.is_array()) {
    for (const Json& x : t) {
      if (x.is_string()) out.insert(x.get<std::string>());
    }
  }
  return out;
}

Json both(const Json& a, const Json& b) {
  if (a == b) return a;
  if (a.is_boolean()) return a.get<bool>() ? b : a;
  if (b.is_boolean()) return b.get<bool>() ? a : b;
  return Json{{"allOf", Json::array({a, b})}};
}

// Names an object schema admits when it forbids extra properties (nullopt: any).
std::optional<std::set<std::string>> closed_names(const Json& s) {
  if (!s.contains("additionalProperties") || s["additionalProperties"] != false) return std::nullopt;
  std::set<std::string> names;
  if (s.contains("properties") && s["properties"].is_object()) {
    for (const auto& [k, v] : s["properties"].items()) names.insert(k);
  }
  return names;
}

Status merge_key(Json& out, const std::string& k, const Json& va, const Json& vb, const std::string& path) {
  static const std::set<std::string> kMax = {"minLength", "minItems", "minimum", "minProperties"};
  static const std::set<std::string> kMin = {"maxLength", "maxItems", "maximum", "maxProperties"};
  if (va == vb) return {};
  if (k == "type") {
    std::set<std::string> ta = type_set(va), tb = type_set(vb), t;
    for (const std::string& x : ta) {
      if (tb.count(x) || (x == "integer" && tb.count("number"))) t.insert(x);
      else if (x == "number" && tb.count("integer")) t.insert("integer");
    }
    if (t.empty()) return nothing(path, "no type is in both");
    out[k] = Json(std::vector<std::string>(t.begin(), t.end()));
  } else if (k == "properties" && va.is_object() && vb.is_object()) {
    Json p = va;
    for (const auto& [name, s] : vb.items()) p[name] = p.contains(name) ? both(p[name], s) : s;
    out[k] = p;
  } else if (k == "required" && va.is_array() && vb.is_array()) {
    Json r = va;
    for (const Json& x : vb) {
      if (std::find(r.begin(), r.end(), x) == r.end()) r.push_back(x);
    }
    out[k] = r;
  } else if (k == "enum" && va.is_array() && vb.is_array()) {
    Json e = Json::array();
    for (const Json& x : va) {
      if (std::find(vb.begin(), vb.end(), x) != vb.end()) e.push_back(x);
    }
    if (e.empty()) return nothing(path, "no enum value is in both");
    out[k] = e;
  } else if (k == "const") {
    return nothing(path, "two different consts");
  } else if ((kMax.count(k) || kMin.count(k)) && va.is_number() && vb.is_number()) {
    bool take_max = kMax.count(k) > 0;
    out[k] = (va.get<double>() < vb.get<double>()) == take_max ? vb : va;
  } else if ((k == "exclusiveMinimum" || k == "exclusiveMaximum") && va.is_number() && vb.is_number()) {
    out[k] = (va.get<double>() < vb.get<double>()) == (k == "exclusiveMinimum") ? vb : va;
  } else if (k == "items" || k == "additionalProperties" || k == "additionalItems" || k == "unevaluatedProperties") {
    out[k] = both(va, vb);
  } else if (k == "prefixItems" && va.is_array() && vb.is_array()) {
    Json p = va.size() >= vb.size() ? va : vb;
    const Json& shorter = va.size() >= vb.size() ? vb : va;
    for (size_t i = 0; i < shorter.size(); ++i) p[i] = both(p[i], shorter[i]);
    out[k] = p;
  } else if ((k == "anyOf" || k == "oneOf") && va.is_array() && vb.is_array()) {
    if (va.size() * vb.size() > 64) return invalid_argument("json schema: allOf of two anyOf lists too large at " + path);
    Json alts = Json::array();
    for (const Json& x : va) {
      for (const Json& y : vb) alts.push_back(both(x, y));
    }
    out[k] = alts;
  } else if (k == "allOf" && va.is_array() && vb.is_array()) {
    Json all = va;
    for (const Json& x : vb) all.push_back(x);
    out[k] = all;
  } else if (k == "nullable" || k == "uniqueItems") {
    out[k] = k == "nullable" ? (va == true && vb == true) : (va == true || vb == true);
  } else if (k == "title" || k == "description" || k == "default" || k == "examples" || k == "$comment") {
    // annotations: keep the first
  } else {
    return invalid_argument("json schema: allOf: cannot combine two different '" + k + "' at " + "#" + path);
  }
  return {};
}

// Under additionalProperties false only the listed names may appear: the other side's other
// properties are dropped (required ones make the schema unsatisfiable).
Status restrict_to(Json& s, const std::set<std::string>& names, const std::string& path) {
  if (s.contains("properties") && s["properties"].is_object()) {
    Json kept = Json::object();
    for (const auto& [k, v] : s["properties"].items()) {
      if (names.count(k)) kept[k] = v;
    }
    s["properties"] = kept;
  }
  if (s.contains("required") && s["required"].is_array()) {
    for (const Json& r : s["required"]) {
      if (r.is_string() && !names.count(r.get<std::string>())) {
        return nothing(path, "required '" + r.get<std::string>() + "' is excluded by additionalProperties false");
      }
    }
  }
  s["additionalProperties"] = false;
  return {};
}

}  // namespace

Result<Json> merge_schemas(const Json& a, const Json& b, const std::string& path) {
  if (b.is_boolean()) {
    if (b.get<bool>()) return a;
    return nothing(path, "a part is 'false'");
  }
  if (a.is_boolean()) return merge_schemas(b, a, path);
  if (!a.is_object() || !b.is_object()) return invalid_argument("json schema: allOf parts must be schemas at " + path);
  Json x = a, y = b;
  auto ca = closed_names(x), cb = closed_names(y);
  if (ca) TK_RETURN_IF_ERROR(restrict_to(y, *ca, path));
  if (cb) TK_RETURN_IF_ERROR(restrict_to(x, *cb, path));
  Json out = x;
  for (const auto& [k, vb] : y.items()) {
    if (!out.contains(k)) {
      out[k] = vb;
      continue;
    }
    TK_RETURN_IF_ERROR(merge_key(out, k, out[k], vb, path));
  }
  return out;
}

}  // namespace tk::grammar
