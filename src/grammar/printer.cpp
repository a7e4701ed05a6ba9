// Grammar::to_gbnf: any grammar (a converted JSON schema, a regex) printed as GBNF that
// parse_gbnf reads back to the same language — for logs, debugging and users who want to start
// from a generated grammar.
#include <cstdio>

#include "ir.h"

namespace tk::grammar {
namespace {

void append_escaped_cp(std::string& out, uint32_t cp, bool in_class) {
  char buf[16];
  switch (cp) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\\': out += "\\\\"; return;
    default: break;
  }
  if ((!in_class && cp == '"') || (in_class && (cp == ']' || cp == '-' || cp == '^' || cp == '['))) {
    out += '\\';
    out += static_cast<char>(cp);
    return;
  }
  if (cp < 0x20 || cp == 0x7F) {
    std::snprintf(buf, sizeof buf, "\\x%02X", cp);
    out += buf;
    return;
  }
  append_utf8(out, cp);
}

void print_literal(std::string& out, const std::string& bytes) {
  out += '"';
  for (size_t i = 0; i < bytes.size();) {
    uint32_t cp = 0;
    int len = decode_utf8(bytes, i, &cp);
    if (len == 0) {  // not UTF-8: cannot come from a front end, print the byte as a code point
      cp = static_cast<unsigned char>(bytes[i]);
      len = 1;
    }
    append_escaped_cp(out, cp, false);
    i += len;
  }
  out += '"';
}

void print_class(std::string& out, const CodepointSet& set) {
  CodepointSet neg = complement_set(set);
  bool negate = !set.empty() && neg.size() < set.size();
  if (neg.empty()) {
    out += '.';
    return;
  }
  const CodepointSet& shown = negate ? neg : set;
  out += negate ? "[^" : "[";
  if (shown.empty()) out += "^\\x00-\\U0010FFFF";  // matches nothing
  for (const CodepointRange& r : shown) {
    append_escaped_cp(out, r.lo, true);
    if (r.hi != r.lo) {
      if (r.hi > r.lo + 1) out += '-';
      append_escaped_cp(out, r.hi, true);
    }
  }
  out += ']';
}

void print_expr(std::string& out, const GrammarIR& g, const Expr& e, int parent_prec);

// Precedence: 0 alternation, 1 sequence, 2 postfix/atom.
int precedence(const Expr& e) {
  switch (e.kind) {
    case Expr::Kind::kAlt: return 0;
    case Expr::Kind::kSeq: return 1;
    default: return 2;
  }
}

void print_repeat(std::string& out, const GrammarIR& g, const Expr& e) {
  const Expr& c = e.children[0];
  bool group = precedence(c) < 2 || c.kind == Expr::Kind::kRepeat;
  if (group) out += '(';
  print_expr(out, g, c, group ? 0 : 2);
  if (group) out += ')';
  if (e.min == 0 && e.max == kUnbounded) {
    out += '*';
  } else if (e.min == 1 && e.max == kUnbounded) {
    out += '+';
  } else if (e.min == 0 && e.max == 1) {
    out += '?';
  } else if (e.max == kUnbounded) {
    out += "{" + std::to_string(e.min) + ",}";
  } else if (e.min == e.max) {
    out += "{" + std::to_string(e.min) + "}";
  } else {
    out += "{" + std::to_string(e.min) + "," + std::to_string(e.max) + "}";
  }
}

void print_expr(std::string& out, const GrammarIR& g, const Expr& e, int parent_prec) {
  bool paren = precedence(e) < parent_prec;
  if (paren) out += '(';
  switch (e.kind) {
    case Expr::Kind::kEmpty: out += "\"\""; break;
    case Expr::Kind::kLiteral: print_literal(out, e.bytes); break;
    case Expr::Kind::kClass: print_class(out, e.ranges); break;
    case Expr::Kind::kRef: out += g.rules[e.rule].name; break;
    case Expr::Kind::kRepeat: print_repeat(out, g, e); break;
    case Expr::Kind::kSeq:
    case Expr::Kind::kAlt:
      for (size_t i = 0; i < e.children.size(); ++i) {
        if (i > 0) out += e.kind == Expr::Kind::kAlt ? " | " : " ";
        print_expr(out, g, e.children[i], e.kind == Expr::Kind::kAlt ? 1 : 2);
      }
      break;
  }
  if (paren) out += ')';
}

}  // namespace

std::string Grammar::to_gbnf() const {
  if (!ir_) return "";
  std::string out;
  // The root first, so the text reads top-down and parses with the default root name.
  auto print_rule = [&](size_t i) {
    out += ir_->rules[i].name + " ::= ";
    print_expr(out, *ir_, ir_->rules[i].body, 0);
    out += '\n';
  };
  print_rule(ir_->root);
  for (size_t i = 0; i < ir_->rules.size(); ++i) {
    if (static_cast<int32_t>(i) != ir_->root) print_rule(i);
  }
  return out;
}

}  // namespace tk::grammar
