// Regex-derived grammars: vLLM's guided_regex and guided_choice as whole-output grammars, the
// JSON string encoding of a character-level expression (for schema patterns), and length bounds.
#include <algorithm>
#include <cstdio>

#include "regex.h"

namespace tk::grammar {
namespace {

// The one encoding we generate for a character inside a JSON string.
std::string json_char(uint32_t cp) {
  switch (cp) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default: break;
  }
  std::string out;
  if (cp < 0x20) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "\\u%04x", cp);
    return buf;
  }
  append_utf8(out, cp);
  return out;
}

const CodepointSet kNeedsEscape = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};

int64_t sat_add(int64_t a, int64_t b) { return (a < 0 || b < 0) ? -1 : std::min<int64_t>(a + b, INT64_MAX / 4); }
int64_t sat_mul(int64_t a, int64_t b) {
  if (a < 0 || b < 0) return (a == 0 || b == 0) ? 0 : -1;
  if (a != 0 && b > (INT64_MAX / 4) / a) return INT64_MAX / 4;
  return a * b;
}

}  // namespace

Expr json_encode_chars(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kLiteral: {
      std::string out;
      for (size_t i = 0; i < e.bytes.size();) {
        uint32_t cp = 0;
        int len = decode_utf8(e.bytes, i, &cp);
        if (len == 0) return e;  // not produced by the regex parser
        out += json_char(cp);
        i += len;
      }
      return lit(out);
    }
    case Expr::Kind::kClass: {
      std::vector<Expr> alts;
      CodepointSet plain = subtract_sets(e.ranges, kNeedsEscape);
      if (!plain.empty()) alts.push_back(cls(plain));
      for (const CodepointRange& r : kNeedsEscape) {
        for (uint32_t cp = r.lo; cp <= r.hi; ++cp) {
          if (set_contains(e.ranges, cp)) alts.push_back(lit(json_char(cp)));
        }
      }
      return alt(std::move(alts));
    }
    case Expr::Kind::kSeq:
    case Expr::Kind::kAlt:
    case Expr::Kind::kRepeat: {
      Expr out = e;
      for (Expr& c : out.children) c = json_encode_chars(c);
      return out;
    }
    default: return e;
  }
}

LengthRange length_range(const Expr& e) {
  LengthRange r;
  switch (e.kind) {
    case Expr::Kind::kEmpty: return r;
    case Expr::Kind::kLiteral: {
      int64_t n = 0;
      for (unsigned char c : e.bytes) n += (c & 0xC0) != 0x80;
      return {n, n};
    }
    case Expr::Kind::kClass: return {1, 1};
    case Expr::Kind::kRef: return {0, -1};
    case Expr::Kind::kSeq:
      for (const Expr& c : e.children) {
        LengthRange x = length_range(c);
        r.min = sat_add(r.min, x.min);
        r.max = sat_add(r.max, x.max);
      }
      return r;
    case Expr::Kind::kAlt: {
      r = {INT64_MAX / 4, 0};
      for (const Expr& c : e.children) {
        LengthRange x = length_range(c);
        r.min = std::min(r.min, x.min);
        r.max = (r.max < 0 || x.max < 0) ? -1 : std::max(r.max, x.max);
      }
      return r;
    }
    case Expr::Kind::kRepeat: {
      LengthRange x = length_range(e.children[0]);
      r.min = sat_mul(x.min, e.min);
      r.max = e.max == kUnbounded ? (x.max == 0 ? 0 : -1) : sat_mul(x.max, e.max);
      return r;
    }
  }
  return r;
}

Result<Grammar> regex_to_grammar(std::string_view regex, const Limits& limits) {
  TK_ASSIGN_OR_RETURN(RegexParse p, parse_regex(regex, true, empty_expr(), limits));
  GrammarBuilder b;
  int32_t root = b.add_rule("root", std::move(p.expr));
  return b.build(root);
}

Result<Grammar> choice_grammar(const std::vector<std::string>& choices, const Limits& limits) {
  if (choices.empty()) return invalid_argument("choice: the list of choices is empty");
  size_t total = 0;
  std::vector<Expr> alts;
  for (const std::string& c : choices) {
    total += c.size();
    for (size_t i = 0; i < c.size();) {
      uint32_t cp = 0;
      int len = decode_utf8(c, i, &cp);
      if (len == 0) return invalid_argument("choice: a choice is not valid UTF-8");
      i += len;
    }
    alts.push_back(lit(c));
  }
  if (total > limits.max_input_bytes) return invalid_argument("choice: the choices are over the size limit");
  GrammarBuilder b;
  int32_t root = b.add_rule("root", alt(std::move(alts)));
  return b.build(root);
}

}  // namespace tk::grammar
