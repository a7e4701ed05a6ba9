// The grammar IR every front end produces (GBNF text, regexes, JSON schemas, choices) and the
// compiler consumes: named rules whose bodies are expression trees over UTF-8 literals and
// code-point classes. Keeping one IR means one compiler and one printer (to_gbnf).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "grammar/grammar.h"

namespace tk::grammar {

constexpr int64_t kUnbounded = -1;  // Expr::max of an open repetition
constexpr uint32_t kMaxCodepoint = 0x10FFFF;

struct CodepointRange {
  uint32_t lo = 0, hi = 0;  // inclusive
  bool operator==(const CodepointRange&) const = default;
};

// Sorted, disjoint, non-adjacent ranges.
using CodepointSet = std::vector<CodepointRange>;
CodepointSet normalize_set(CodepointSet set);
CodepointSet complement_set(const CodepointSet& set);  // within [0, 0x10FFFF] minus surrogates
CodepointSet union_sets(const CodepointSet& a, const CodepointSet& b);
CodepointSet subtract_sets(const CodepointSet& a, const CodepointSet& b);
bool set_contains(const CodepointSet& set, uint32_t cp);

struct Expr {
  enum class Kind : uint8_t { kEmpty, kLiteral, kClass, kRef, kSeq, kAlt, kRepeat };
  Kind kind = Kind::kEmpty;
  std::string bytes;          // kLiteral: UTF-8
  CodepointSet ranges;        // kClass: the characters matched (negation already applied)
  int32_t rule = -1;          // kRef
  int64_t min = 0, max = 0;   // kRepeat (max == kUnbounded: no upper bound)
  std::vector<Expr> children; // kSeq, kAlt; kRepeat: exactly one
};

struct Rule {
  std::string name;
  Expr body;
};

struct GrammarIR {
  std::vector<Rule> rules;
  int32_t root = 0;
};

// Builders. seq/alt flatten nested nodes of their kind and drop empty literals.
Expr empty_expr();
Expr lit(std::string_view bytes);
Expr cls(CodepointSet ranges);
Expr cls_chars(std::string_view chars);  // each (ASCII) character of `chars`, taken literally
Expr range(uint32_t lo, uint32_t hi);
Expr ref(int32_t rule);
Expr seq(std::vector<Expr> children);
Expr alt(std::vector<Expr> children);
Expr rep(Expr child, int64_t min, int64_t max);
Expr opt(Expr child);
Expr star(Expr child);
Expr plus(Expr child);

// Collects rules while a front end builds a grammar; names are made unique.
class GrammarBuilder {
 public:
  int32_t add_rule(std::string_view name, Expr body = empty_expr());
  int32_t reserve_rule(std::string_view name) { return add_rule(name); }
  void set_body(int32_t rule, Expr body) { ir_.rules[rule].body = std::move(body); }
  int32_t find(std::string_view name) const;  // -1 when absent
  const std::string& name(int32_t rule) const { return ir_.rules[rule].name; }
  size_t num_rules() const { return ir_.rules.size(); }
  Grammar build(int32_t root);

 private:
  std::string unique_name(std::string_view name) const;
  GrammarIR ir_;
  std::unordered_map<std::string, int32_t> names_;
};

// Depth of the expression tree (front ends bound it; the compiler recurses on it).
int expr_depth(const Expr& e);

using ::tk::append_utf8;  // core
// Decodes one UTF-8 character at s[i]; returns its length or 0 if invalid.
int decode_utf8(std::string_view s, size_t i, uint32_t* cp);

}  // namespace tk::grammar
