// The IR's builders and code-point set algebra, shared by every front end so that each produces
// the same normalized shapes (flattened sequences, merged class ranges).
#include "ir.h"

#include <algorithm>

namespace tk::grammar {

CodepointSet normalize_set(CodepointSet set) {
  std::sort(set.begin(), set.end(), [](const CodepointRange& a, const CodepointRange& b) { return a.lo < b.lo; });
  CodepointSet out;
  for (const CodepointRange& r : set) {
    if (r.lo > r.hi) continue;
    if (!out.empty() && r.lo <= out.back().hi + 1) {
      out.back().hi = std::max(out.back().hi, r.hi);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// Surrogates are not characters: they never appear in UTF-8, so no class contains them.
static CodepointSet remove_surrogates(const CodepointSet& set) {
  CodepointSet out;
  for (const CodepointRange& r : set) {
    if (r.hi < 0xD800 || r.lo > 0xDFFF) {
      out.push_back(r);
      continue;
    }
    if (r.lo < 0xD800) out.push_back({r.lo, 0xD7FF});
    if (r.hi > 0xDFFF) out.push_back({0xE000, r.hi});
  }
  return out;
}

CodepointSet complement_set(const CodepointSet& set) {
  CodepointSet out;
  uint32_t next = 0;
  for (const CodepointRange& r : set) {
    if (r.lo > next) out.push_back({next, r.lo - 1});
    next = r.hi + 1;
  }
  if (next <= kMaxCodepoint) out.push_back({next, kMaxCodepoint});
  return remove_surrogates(out);
}

CodepointSet union_sets(const CodepointSet& a, const CodepointSet& b) {
  CodepointSet all = a;
  all.insert(all.end(), b.begin(), b.end());
  return normalize_set(std::move(all));
}

CodepointSet subtract_sets(const CodepointSet& a, const CodepointSet& b) {
  CodepointSet nb = complement_set(b);
  // a ∩ ¬b by a merge of two sorted lists.
  CodepointSet out;
  size_t j = 0;
  for (const CodepointRange& r : a) {
    while (j < nb.size() && nb[j].hi < r.lo) ++j;
    for (size_t k = j; k < nb.size() && nb[k].lo <= r.hi; ++k) {
      out.push_back({std::max(r.lo, nb[k].lo), std::min(r.hi, nb[k].hi)});
    }
  }
  return normalize_set(out);
}

bool set_contains(const CodepointSet& set, uint32_t cp) {
  auto it = std::upper_bound(set.begin(), set.end(), cp, [](uint32_t v, const CodepointRange& r) { return v < r.lo; });
  return it != set.begin() && std::prev(it)->hi >= cp;
}

Expr empty_expr() { return Expr{}; }

Expr lit(std::string_view bytes) {
  if (bytes.empty()) return empty_expr();
  Expr e;
  e.kind = Expr::Kind::kLiteral;
  e.bytes = std::string(bytes);
  return e;
}

Expr cls(CodepointSet ranges) {
  Expr e;
  e.kind = Expr::Kind::kClass;
  e.ranges = remove_surrogates(normalize_set(std::move(ranges)));
  return e;
}

Expr cls_chars(std::string_view chars) {
  CodepointSet set;
  for (unsigned char c : chars) set.push_back({c, c});
  return cls(std::move(set));
}

Expr range(uint32_t lo, uint32_t hi) { return cls({{lo, hi}}); }

Expr ref(int32_t rule) {
  Expr e;
  e.kind = Expr::Kind::kRef;
  e.rule = rule;
  return e;
}

static Expr flatten(Expr::Kind kind, std::vector<Expr> children) {
  std::vector<Expr> out;
  for (Expr& c : children) {
    if (kind == Expr::Kind::kSeq && c.kind == Expr::Kind::kEmpty) continue;
    if (c.kind == kind) {
      for (Expr& g : c.children) out.push_back(std::move(g));
    } else if (kind == Expr::Kind::kSeq && c.kind == Expr::Kind::kLiteral && !out.empty() &&
               out.back().kind == Expr::Kind::kLiteral) {
      out.back().bytes += c.bytes;  // adjacent literals merge
    } else {
      out.push_back(std::move(c));
    }
  }
  if (out.empty()) return kind == Expr::Kind::kAlt ? cls({}) : empty_expr();  // no alternative: nothing matches
  if (out.size() == 1) return std::move(out[0]);
  Expr e;
  e.kind = kind;
  e.children = std::move(out);
  return e;
}

Expr seq(std::vector<Expr> children) { return flatten(Expr::Kind::kSeq, std::move(children)); }
Expr alt(std::vector<Expr> children) { return flatten(Expr::Kind::kAlt, std::move(children)); }

Expr rep(Expr child, int64_t min, int64_t max) {
  if (max == 0 || child.kind == Expr::Kind::kEmpty) return empty_expr();
  if (min == 1 && max == 1) return child;
  Expr e;
  e.kind = Expr::Kind::kRepeat;
  e.min = min;
  e.max = max;
  e.children.push_back(std::move(child));
  return e;
}

Expr opt(Expr child) { return rep(std::move(child), 0, 1); }
Expr star(Expr child) { return rep(std::move(child), 0, kUnbounded); }
Expr plus(Expr child) { return rep(std::move(child), 1, kUnbounded); }

std::string GrammarBuilder::unique_name(std::string_view name) const {
  std::string base;
  for (char c : name) {
    bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    base += word ? c : '-';
  }
  if (base.empty()) base = "r";
  if (find(base) < 0) return base;
  for (int i = 1;; ++i) {
    std::string candidate = base + "-" + std::to_string(i);
    if (find(candidate) < 0) return candidate;
  }
}

int32_t GrammarBuilder::add_rule(std::string_view name, Expr body) {
  std::string unique = unique_name(name);
  int32_t id = static_cast<int32_t>(ir_.rules.size());
  names_.emplace(unique, id);
  ir_.rules.push_back(Rule{std::move(unique), std::move(body)});
  return id;
}

int32_t GrammarBuilder::find(std::string_view name) const {
  auto it = names_.find(std::string(name));
  return it == names_.end() ? -1 : it->second;
}

Grammar GrammarBuilder::build(int32_t root) {
  ir_.root = root;
  names_.clear();
  return Grammar(std::make_shared<const GrammarIR>(std::move(ir_)));
}

int expr_depth(const Expr& e) {
  int d = 0;
  for (const Expr& c : e.children) d = std::max(d, expr_depth(c));
  return d + 1;
}


int decode_utf8(std::string_view s, size_t i, uint32_t* cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  uint32_t v = len == 1 ? c : c & (0x7F >> len);
  for (int k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    v = (v << 6) | (b(i + k) & 0x3F);
  }
  static const uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (v < kMin[len] || v > kMaxCodepoint || (v >= 0xD800 && v <= 0xDFFF)) return 0;
  *cp = v;
  return len;
}

}  // namespace tk::grammar
