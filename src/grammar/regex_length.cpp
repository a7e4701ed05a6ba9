// A pattern (or format) intersected with minLength/maxLength: the pattern's code-point automaton
// run in product with a length counter, written back as right-linear rules (one per reachable
// (state set, length) pair). Grammars cannot intersect in general; a regular language and a
// length bound can, at a cost proportional to the automaton times the bound (capped).
#include <algorithm>
#include <map>

#include "regex.h"

namespace tk::grammar {
namespace {

struct CEdge {
  CodepointSet set;
  int32_t target;
};
struct CState {
  std::vector<int32_t> eps;
  std::vector<CEdge> edges;
};

constexpr size_t kMaxNfa = 4096;
constexpr size_t kMaxProduct = 20000;

class CodepointNfa {
 public:
  std::vector<CState> states;
  int32_t add() {
    states.emplace_back();
    return static_cast<int32_t>(states.size() - 1);
  }
  Status build(const Expr& e, int32_t from, int32_t to, int depth);
  std::vector<int32_t> close(std::vector<int32_t> set) const;
};

Status CodepointNfa::build(const Expr& e, int32_t from, int32_t to, int depth) {
  if (states.size() > kMaxNfa || depth > 1000) return invalid_argument("pattern too large to combine with minLength/maxLength");
  switch (e.kind) {
    case Expr::Kind::kEmpty: states[from].eps.push_back(to); return {};
    case Expr::Kind::kClass: states[from].edges.push_back({e.ranges, to}); return {};
    case Expr::Kind::kRef: return invalid_argument("pattern refers to a rule");
    case Expr::Kind::kLiteral: {
      int32_t cur = from;
      for (size_t i = 0; i < e.bytes.size();) {
        uint32_t cp = 0;
        int len = decode_utf8(e.bytes, i, &cp);
        if (len == 0) return invalid_argument("pattern literal is not UTF-8");
        i += len;
        int32_t next = i == e.bytes.size() ? to : add();
        states[cur].edges.push_back({{{cp, cp}}, next});
        cur = next;
      }
      return {};
    }
    case Expr::Kind::kSeq: {
      int32_t cur = from;
      for (size_t i = 0; i < e.children.size(); ++i) {
        int32_t next = i + 1 == e.children.size() ? to : add();
        TK_RETURN_IF_ERROR(build(e.children[i], cur, next, depth + 1));
        cur = next;
      }
      return {};
    }
    case Expr::Kind::kAlt:
      for (const Expr& c : e.children) TK_RETURN_IF_ERROR(build(c, from, to, depth + 1));
      return {};
    case Expr::Kind::kRepeat: {
      const Expr& x = e.children[0];
      int32_t cur = from;
      if (e.min > static_cast<int64_t>(kMaxNfa) || (e.max != kUnbounded && e.max > static_cast<int64_t>(kMaxNfa))) {
        return invalid_argument("pattern too large to combine with minLength/maxLength");
      }
      for (int64_t i = 0; i < e.min; ++i) {
        int32_t next = add();
        TK_RETURN_IF_ERROR(build(x, cur, next, depth + 1));
        cur = next;
      }
      if (e.max == kUnbounded) {
        int32_t loop = add();
        states[cur].eps.push_back(loop);
        TK_RETURN_IF_ERROR(build(x, loop, loop, depth + 1));
        states[loop].eps.push_back(to);
        return {};
      }
      for (int64_t i = e.min; i < e.max; ++i) {
        states[cur].eps.push_back(to);
        int32_t next = add();
        TK_RETURN_IF_ERROR(build(x, cur, next, depth + 1));
        cur = next;
      }
      states[cur].eps.push_back(to);
      return {};
    }
  }
  return {};
}

std::vector<int32_t> CodepointNfa::close(std::vector<int32_t> set) const {
  std::vector<uint8_t> seen(states.size(), 0);
  for (int32_t s : set) seen[s] = 1;
  for (size_t i = 0; i < set.size(); ++i) {
    for (int32_t t : states[set[i]].eps) {
      if (!seen[t]) {
        seen[t] = 1;
        set.push_back(t);
      }
    }
  }
  std::sort(set.begin(), set.end());
  return set;
}

struct Move {
  CodepointSet atom;
  int32_t target;
};

}  // namespace

Result<Expr> limit_length(const Expr& e, int64_t min, int64_t max, bool json, GrammarBuilder& b, std::string name) {
  CodepointNfa nfa;
  int32_t start = nfa.add(), accept = nfa.add();
  TK_RETURN_IF_ERROR(nfa.build(e, start, accept, 0));
  std::map<std::pair<std::vector<int32_t>, int64_t>, int32_t> ids;
  std::vector<std::pair<std::vector<int32_t>, int64_t>> keys;
  std::vector<std::vector<Move>> moves;
  std::vector<uint8_t> accepting;
  auto id_of = [&](std::vector<int32_t> set, int64_t n) {
    auto key = std::make_pair(nfa.close(std::move(set)), n);
    auto [it, fresh] = ids.emplace(key, static_cast<int32_t>(keys.size()));
    if (fresh) keys.push_back(key);
    return it->second;
  };
  id_of({start}, 0);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys.size() > kMaxProduct) return invalid_argument("pattern with minLength/maxLength too large (over 20000 states)");
    auto [set, n] = keys[i];
    accepting.push_back(std::binary_search(set.begin(), set.end(), accept) && n >= min);
    moves.emplace_back();
    if (max != kUnbounded && n >= max) continue;
    int64_t next_n = max == kUnbounded ? std::min(n + 1, min) : n + 1;
    std::vector<uint32_t> cuts;  // elementary intervals of the code points the edges name
    for (int32_t s : set) {
      for (const CEdge& edge : nfa.states[s].edges) {
        for (const CodepointRange& r : edge.set) {
          cuts.push_back(r.lo);
          cuts.push_back(r.hi + 1);
        }
      }
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::map<std::vector<int32_t>, CodepointSet> by_target;
    for (size_t c = 0; c + 1 < cuts.size(); ++c) {
      std::vector<int32_t> targets;
      for (int32_t s : set) {
        for (const CEdge& edge : nfa.states[s].edges) {
          if (set_contains(edge.set, cuts[c])) targets.push_back(edge.target);
        }
      }
      if (targets.empty()) continue;
      std::sort(targets.begin(), targets.end());
      targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
      by_target[targets].push_back({cuts[c], cuts[c + 1] - 1});
    }
    for (auto& [targets, atom] : by_target) moves[i].push_back({normalize_set(atom), id_of(targets, next_n)});
  }
  // Keep states from which an accepting one is reachable.
  std::vector<uint8_t> live = accepting;
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = keys.size(); i-- > 0;) {
      if (live[i]) continue;
      for (const Move& m : moves[i]) {
        if (live[m.target]) {
          live[i] = 1;
          changed = true;
          break;
        }
      }
    }
  }
  if (!live[0]) return invalid_argument("no string matches both the pattern/format and minLength/maxLength (the schema matches nothing)");
  std::vector<int32_t> rule(keys.size(), -1);
  for (size_t i = 0; i < keys.size(); ++i) {
    if (live[i]) rule[i] = b.reserve_rule(name + "-" + std::to_string(i));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (!live[i]) continue;
    std::vector<Expr> alts;
    if (accepting[i]) alts.push_back(empty_expr());
    for (const Move& m : moves[i]) {
      if (!live[m.target]) continue;
      Expr c = cls(m.atom);
      alts.push_back(seq({json ? json_encode_chars(c) : c, ref(rule[m.target])}));
    }
    Expr body;  // not alt(): the empty alternative must stay
    body.kind = Expr::Kind::kAlt;
    body.children = std::move(alts);
    if (body.children.size() == 1) body = std::move(body.children[0]);
    b.set_body(rule[i], std::move(body));
  }
  return ref(rule[0]);
}

}  // namespace tk::grammar
