// The JSON schema converter's internals, split by subject over json_schema*.cpp: dispatch,
// references and combinators; objects and arrays; strings, formats and numbers; allOf merging.
// Schemas become IR expressions directly (one rule per object, array and $ref target, so that
// recursion works and the printed grammar reads like the schema).
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "ir.h"

namespace tk::grammar {

using Json = nlohmann::ordered_json;

class SchemaConverter {
 public:
  SchemaConverter(const Json& root, const JsonSchemaOptions& options) : root_(root), opt_(options) {}
  Result<Grammar> run();
  Grammar any_object();
  Grammar any_value();

  // Any JSON (sub)schema as an expression; `path` is its JSON pointer, for errors and rule names.
  Result<Expr> visit(const Json& schema, const std::string& path, int depth);

 private:
  Status error(const std::string& path, const std::string& what) const {
    return invalid_argument("json schema: " + what + " at #" + path);
  }
  Status unsupported(const std::string& path, const std::string& keyword) const {
    return invalid_argument("json schema: unsupported keyword '" + keyword + "' at #" + path);
  }
  Status check_keywords(const Json& schema, const std::string& path) const;
  Result<Expr> visit_typed(const Json& schema, const std::string& path, int depth);
  Result<Expr> visit_ref(const Json& schema, const std::string& path, int depth);
  Result<Expr> visit_combinator(const Json& schema, const std::string& path, int depth);
  Result<Expr> visit_enum(const Json& schema, const std::string& path);
  Result<const Json*> resolve(const std::string& ref, const std::string& path) const;

  // json_schema_object.cpp
  Result<Expr> object(const Json& schema, const std::string& path, int depth);
  Result<Expr> array(const Json& schema, const std::string& path, int depth);
  Result<Expr> key_not_in(const std::vector<std::string>& names);

  // json_schema_values.cpp
  Result<Expr> string(const Json& schema, const std::string& path);
  Result<Expr> format(const std::string& name, const std::string& path);
  Result<Expr> integer(const Json& schema, const std::string& path);
  Result<Expr> number(const Json& schema, const std::string& path);

  // Shared rules, made on first use.
  Expr ws() const;            // the bounded gap after [ { , and before ] } (empty when compact)
  Expr sep(char c) const;     // c ws
  Expr key_sep() const;       // the colon of a key, at most a space either side
  Expr json_char() const;     // one character of a JSON string, escapes included
  Expr string_rule();         // any JSON string
  Expr value_rule();          // any JSON value
  Expr object_rule();         // any JSON object
  Expr array_rule();          // any JSON array
  Expr json_literal(const Json& v);  // exactly this value, whitespace as elsewhere
  Expr unbounded_integer() const;
  Expr unbounded_number() const;
  int32_t named_rule(const std::string& path, const std::string& fallback);

  const Json& root_;
  const JsonSchemaOptions& opt_;
  GrammarBuilder b_;
  std::map<std::string, int32_t> ref_rules_;  // $ref target -> its rule
  int32_t string_ = -1, value_ = -1, object_ = -1, array_ = -1;
};

// allOf: one schema holding the constraints of all (json_schema_merge.cpp). $refs among the parts
// are resolved through `resolve`.
Result<Json> merge_schemas(const Json& a, const Json& b, const std::string& path);

// Parses schema text with a depth bound (nlohmann's parser is recursive in places).
Result<Json> parse_schema_text(std::string_view text, int max_depth);

}  // namespace tk::grammar
