// JSON schema -> grammar: the entry points, keyword checks, dispatch by type, $ref and the
// combinators. A keyword JSON Schema defines but we cannot express is an error naming it (the
// server answers 400); keywords JSON Schema does not define are ignored, as validators do.
#include "json_schema.h"

#include <set>

namespace tk::grammar {
namespace {

const std::set<std::string> kAnnotations = {
    "$schema", "$id", "id", "$comment", "title", "description", "default", "examples", "example", "deprecated",
    "readOnly", "writeOnly", "$anchor", "$dynamicAnchor", "$recursiveAnchor", "$vocabulary", "discriminator", "xml",
    "externalDocs", "contentMediaType", "contentEncoding", "$defs", "definitions"};
const std::set<std::string> kUnsupported = {
    "not", "if", "then", "else", "multipleOf", "patternProperties", "propertyNames", "dependentRequired",
    "dependentSchemas", "dependencies", "contains", "minContains", "maxContains", "unevaluatedItems", "$dynamicRef",
    "$recursiveRef", "contentSchema"};
const std::set<std::string> kObjectKeys = {"properties", "additionalProperties", "required", "minProperties",
                                           "maxProperties", "unevaluatedProperties"};
const std::set<std::string> kArrayKeys = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems"};
const std::set<std::string> kStringKeys = {"minLength", "maxLength", "pattern", "format"};
const std::set<std::string> kNumberKeys = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"};
const std::set<std::string> kTypes = {"null", "boolean", "object", "array", "number", "integer", "string"};

bool has_any(const Json& s, const std::set<std::string>& keys) {
  for (const auto& [k, v] : s.items()) {
    if (keys.count(k)) return true;
  }
  return false;
}

// A schema with only annotations (and the given keys removed) constrains nothing further.
bool only_annotations(const Json& s, std::initializer_list<const char*> ignore) {
  for (const auto& [k, v] : s.items()) {
    bool skip = kAnnotations.count(k) || k.rfind("x-", 0) == 0;
    for (const char* i : ignore) skip = skip || k == i;
    if (!skip) return false;
  }
  return true;
}

const char* json_type_of(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return "boolean";
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::number_float: return "number";
    default: return "integer";
  }
}

std::string pointer_unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

Status SchemaConverter::check_keywords(const Json& schema, const std::string& path) const {
  for (const auto& [k, v] : schema.items()) {
    if (kUnsupported.count(k)) return unsupported(path, k);
  }
  if (schema.contains("uniqueItems") && schema["uniqueItems"] == true) {
    auto max = schema.find("maxItems");
    if (max == schema.end() || !max->is_number() || max->get<double>() > 1) return unsupported(path, "uniqueItems");
  }
  if (schema.contains("unevaluatedProperties") && !schema["unevaluatedProperties"].is_boolean()) {
    return unsupported(path, "unevaluatedProperties");
  }
  return {};
}

Result<const Json*> SchemaConverter::resolve(const std::string& ref, const std::string& path) const {
  if (ref.empty() || ref[0] != '#') return error(path, "only local $refs (\"#...\") are supported, not '" + ref + "'");
  std::string pointer = pointer_unescape(ref.substr(1));
  if (pointer.empty()) return &root_;
  if (pointer[0] != '/') return error(path, "$ref anchors are not supported ('" + ref + "')");
  try {
    return &root_.at(Json::json_pointer(pointer));
  } catch (const std::exception&) {
    return error(path, "$ref '" + ref + "' points to nothing");
  }
}

Result<Expr> SchemaConverter::visit(const Json& schema, const std::string& path, int depth) {
  if (depth > opt_.limits.max_nesting) return error(path, "schema nested deeper than " + std::to_string(opt_.limits.max_nesting));
  if (schema.is_boolean()) {
    if (schema.get<bool>()) return value_rule();
    return error(path, "the schema 'false' matches nothing");
  }
  if (!schema.is_object()) return error(path, "a schema must be an object or a boolean");
  TK_RETURN_IF_ERROR(check_keywords(schema, path));
  if (schema.contains("$ref")) return visit_ref(schema, path, depth);
  if (schema.contains("allOf") || schema.contains("anyOf") || schema.contains("oneOf")) {
    return visit_combinator(schema, path, depth);
  }
  if (schema.contains("enum") || schema.contains("const")) return visit_enum(schema, path);
  return visit_typed(schema, path, depth);
}

Result<Expr> SchemaConverter::visit_ref(const Json& schema, const std::string& path, int depth) {
  const Json& r = schema["$ref"];
  if (!r.is_string()) return error(path, "$ref must be a string");
  std::string pointer = r.get<std::string>();
  TK_ASSIGN_OR_RETURN(const Json* target, resolve(pointer, path));
  if (!only_annotations(schema, {"$ref"})) {  // siblings of $ref apply too (2019-09 and later)
    Json rest = schema;
    rest.erase("$ref");
    Json both = Json::object();
    both["allOf"] = Json::array({rest, Json{{"$ref", pointer}}});
    return visit(both, path, depth + 1);
  }
  auto it = ref_rules_.find(pointer);
  if (it != ref_rules_.end()) return ref(it->second);
  std::string name = pointer.substr(pointer.find_last_of('/') + 1);
  int32_t id = b_.reserve_rule(name.empty() || name == "#" ? "root-ref" : name);
  ref_rules_.emplace(pointer, id);
  TK_ASSIGN_OR_RETURN(Expr body, visit(*target, pointer.substr(1), depth + 1));
  b_.set_body(id, std::move(body));
  return ref(id);
}

Result<Expr> SchemaConverter::visit_combinator(const Json& schema, const std::string& path, int depth) {
  Json rest = schema;
  rest.erase("allOf");
  rest.erase("anyOf");
  rest.erase("oneOf");
  if (schema.contains("allOf")) {
    const Json& parts = schema["allOf"];
    if (!parts.is_array() || parts.empty()) return error(path, "allOf must be a non-empty array");
    Json merged = rest;
    if (schema.contains("anyOf")) merged["anyOf"] = schema["anyOf"];
    if (schema.contains("oneOf")) merged["oneOf"] = schema["oneOf"];
    for (size_t i = 0; i < parts.size(); ++i) {
      const Json* part = &parts[i];
      std::string where = path + "/allOf/" + std::to_string(i);
      for (int hops = 0; part->is_object() && part->contains("$ref"); ++hops) {  // a $ref is its target
        if (hops > 64 || !(*part)["$ref"].is_string()) return error(where, "$ref chain too long or not a string");
        if (!only_annotations(*part, {"$ref"})) {
          Json siblings = *part;
          siblings.erase("$ref");
          TK_ASSIGN_OR_RETURN(merged, merge_schemas(merged, siblings, where));
        }
        TK_ASSIGN_OR_RETURN(part, resolve((*part)["$ref"].get<std::string>(), where));
      }
      TK_ASSIGN_OR_RETURN(merged, merge_schemas(merged, *part, where));
    }
    return visit(merged, path, depth + 1);
  }
  const char* key = schema.contains("anyOf") ? "anyOf" : "oneOf";
  if (schema.contains("anyOf") && schema.contains("oneOf")) return unsupported(path, "oneOf (together with anyOf)");
  const Json& alts = schema[key];
  if (!alts.is_array() || alts.empty()) return error(path, std::string(key) + " must be a non-empty array");
  bool plain = only_annotations(rest, {});
  std::vector<Expr> exprs;
  Status first_error;
  for (size_t i = 0; i < alts.size(); ++i) {
    std::string where = path + "/" + key + "/" + std::to_string(i);
    Result<Expr> e = plain ? visit(alts[i], where, depth + 1) : [&]() -> Result<Expr> {
      TK_ASSIGN_OR_RETURN(Json sub, merge_schemas(rest, alts[i], where));
      return visit(sub, where, depth + 1);
    }();
    if (e.ok()) {
      exprs.push_back(std::move(e).value());
    } else if (first_error.ok()) {
      first_error = e.status();
    }
    // An alternative we cannot express is an error (dropping it would change the schema).
    if (!e.ok() && e.status().message().find("matches nothing") == std::string::npos) return e.status();
  }
  if (exprs.empty()) return first_error;
  return alt(std::move(exprs));
}

Result<Expr> SchemaConverter::visit_enum(const Json& schema, const std::string& path) {
  std::vector<Json> values;
  if (schema.contains("enum")) {
    if (!schema["enum"].is_array()) return error(path, "enum must be an array");
    for (const Json& v : schema["enum"]) values.push_back(v);
  }
  if (schema.contains("const")) {
    const Json& c = schema["const"];
    if (schema.contains("enum") && std::find(values.begin(), values.end(), c) == values.end()) values.clear();
    else values = {c};
  }
  std::set<std::string> types;
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    if (t.is_string()) types.insert(t.get<std::string>());
    if (t.is_array()) {
      for (const Json& x : t) {
        if (x.is_string()) types.insert(x.get<std::string>());
      }
    }
    if (types.count("number")) types.insert("integer");
  }
  if (schema.contains("nullable") && schema["nullable"] == true && !types.empty()) types.insert("null");
  std::vector<Expr> alts;
  std::set<std::string> seen;
  for (const Json& v : values) {
    if (!types.empty() && !types.count(json_type_of(v))) continue;
    std::string text = v.dump(-1, ' ', false, Json::error_handler_t::replace);
    if (seen.insert(text).second) alts.push_back(json_literal(v));
  }
  if (alts.empty()) return error(path, "enum/const: no value satisfies the schema (the schema matches nothing)");
  return alt(std::move(alts));
}

Result<Expr> SchemaConverter::visit_typed(const Json& schema, const std::string& path, int depth) {
  std::vector<std::string> types;
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    std::vector<Json> list = t.is_array() ? std::vector<Json>(t.begin(), t.end()) : std::vector<Json>{t};
    for (const Json& x : list) {
      if (!x.is_string() || !kTypes.count(x.get<std::string>())) return error(path, "unknown type " + x.dump());
      types.push_back(x.get<std::string>());
    }
    if (types.empty()) return error(path, "type: an empty list matches nothing");
  } else {
    if (has_any(schema, kObjectKeys)) types.push_back("object");
    if (has_any(schema, kArrayKeys)) types.push_back("array");
    if (has_any(schema, kStringKeys)) types.push_back("string");
    if (has_any(schema, kNumberKeys)) types.push_back("number");
    if (types.empty()) return value_rule();
  }
  if (schema.contains("nullable") && schema["nullable"] == true) types.push_back("null");
  bool has_number = std::find(types.begin(), types.end(), "number") != types.end();
  std::vector<Expr> alts;
  std::set<std::string> done;
  for (const std::string& t : types) {
    if (!done.insert(t).second || (t == "integer" && has_number)) continue;
    Result<Expr> e = empty_expr();
    if (t == "null") e = lit("null");
    else if (t == "boolean") e = alt({lit("true"), lit("false")});
    else if (t == "string") e = string(schema, path);
    else if (t == "integer") e = integer(schema, path);
    else if (t == "number") e = number(schema, path);
    else if (t == "object") e = object(schema, path, depth);
    else e = array(schema, path, depth);
    if (!e.ok()) return e.status();
    alts.push_back(std::move(e).value());
  }
  return alt(std::move(alts));
}

Result<Grammar> SchemaConverter::run() {
  TK_ASSIGN_OR_RETURN(Expr e, visit(root_, "", 0));
  int32_t root = b_.add_rule("root", std::move(e));
  return b_.build(root);
}

Grammar SchemaConverter::any_object() {
  int32_t root = b_.add_rule("root", object_rule());
  return b_.build(root);
}

Grammar SchemaConverter::any_value() {
  int32_t root = b_.add_rule("root", value_rule());
  return b_.build(root);
}

Result<Json> parse_schema_text(std::string_view text, int max_depth) {
  struct TooDeep {};
  try {
    Json::parser_callback_t cb = [max_depth](int depth, Json::parse_event_t, Json&) {
      if (depth > max_depth) throw TooDeep{};
      return true;
    };
    return Json::parse(text.begin(), text.end(), cb);
  } catch (const TooDeep&) {
    return invalid_argument("json schema: nested deeper than " + std::to_string(max_depth));
  } catch (const std::exception& e) {
    return invalid_argument(std::string("json schema: not valid JSON: ") + e.what());
  }
}

Result<Grammar> json_schema_to_grammar(std::string_view schema_json, const JsonSchemaOptions& options) {
  if (schema_json.size() > options.limits.max_input_bytes) return invalid_argument("json schema: over the size limit");
  if (options.max_indent < 0 || options.max_indent > 1000 || options.max_integer_digits < 1 ||
      options.max_integer_digits > 18 || options.max_fraction_digits < 1 || options.max_exponent_digits < 1 ||
      options.max_fraction_seconds < 1) {
    return invalid_argument("json schema: options out of range");
  }
  TK_ASSIGN_OR_RETURN(Json schema, parse_schema_text(schema_json, options.limits.max_nesting));
  SchemaConverter c(schema, options);
  return c.run();
}

Grammar json_object_grammar(const JsonSchemaOptions& options) {
  Json none;
  SchemaConverter c(none, options);
  return c.any_object();
}

Grammar json_value_grammar(const JsonSchemaOptions& options) {
  Json none;
  SchemaConverter c(none, options);
  return c.any_value();
}

}  // namespace tk::grammar
