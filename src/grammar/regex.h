// Regular expressions (the ECMAScript subset JSON schemas and vLLM's guided_regex use) into IR
// expressions over code points; plus the rewriting that turns such an expression into the
// characters' JSON string encodings, and code-point length bounds (minLength/maxLength checks).
#pragma once

#include <string_view>

#include "ir.h"

namespace tk::grammar {

struct RegexParse {
  Expr expr;  // code points: classes and literals are characters, not bytes of a JSON string
  bool search = false;  // some top-level alternative is unanchored (JSON schema `pattern` semantics)
};

// full_match: the whole output must match (anchors at the ends are accepted and ignored).
// Otherwise JSON schema semantics: an unanchored side admits any text there (`any` fills it).
Result<RegexParse> parse_regex(std::string_view regex, bool full_match, const Expr& any, const Limits& limits);

// The same language written as JSON string content: '"' as \", '\' as \\, control characters as
// \n, \t, ... or \u00XX; everything else as itself.
Expr json_encode_chars(const Expr& e);

// Length in code points of the strings an expression matches; max -1 when unbounded or unknown.
struct LengthRange {
  int64_t min = 0, max = 0;
};
LengthRange length_range(const Expr& e);

// The strings of a code-point expression whose length is in [min, max] (max kUnbounded: no
// bound), as rules added to `b` (named name-N); classes JSON-encoded when `json`.
Result<Expr> limit_length(const Expr& e, int64_t min, int64_t max, bool json, GrammarBuilder& b, std::string name);

}  // namespace tk::grammar
