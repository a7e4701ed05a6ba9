// IR expressions to Thompson NFAs (see nfa.h). Unrolling is bounded by a size estimate, so the
// automaton stays proportional to the grammar text whatever its repetition counts.
#include "nfa.h"

#include <algorithm>

namespace tk::grammar {
namespace {

// X{m,n} with n above this is counted, not unrolled, and so is one whose unrolled size would pass
// kMaxInlineSize. Unrolled, a bounded repetition is exact in the token tables (a counted one
// leaves the tokens that cross its end to the run-time check); counted, it costs one rule.
constexpr int kMaxInlineRepeat = 64;
constexpr int64_t kMaxInlineSize = 1024;
constexpr size_t kMaxEmbedStates = 8192;  // tail references are embedded while the NFA is smaller
constexpr int kMaxExprDepth = 2000;

void encode(uint32_t cp, uint8_t* out, int* len) {
  std::string s;
  append_utf8(s, cp);
  *len = static_cast<int>(s.size());
  for (size_t i = 0; i < s.size(); ++i) out[i] = static_cast<uint8_t>(s[i]);
}

// A cheap size estimate of an expression's NFA, saturating.
int64_t estimate(const Expr& e) {
  int64_t n = 0;
  switch (e.kind) {
    case Expr::Kind::kEmpty: return 1;
    case Expr::Kind::kLiteral: return static_cast<int64_t>(e.bytes.size());
    case Expr::Kind::kClass:  // ASCII ranges are edges between the same two states
      return !e.ranges.empty() && e.ranges.back().hi < 0x80 ? 1 : 2 + 2 * static_cast<int64_t>(e.ranges.size());
    case Expr::Kind::kRef: return 1;
    case Expr::Kind::kSeq:
    case Expr::Kind::kAlt:
      for (const Expr& c : e.children) n = std::min<int64_t>(n + estimate(c), 1 << 20);
      return n;
    case Expr::Kind::kRepeat: {
      int64_t copies = e.max == kUnbounded ? e.min + 1 : e.max;
      return std::min<int64_t>(estimate(e.children[0]) * std::min<int64_t>(copies, 1 << 10), 1 << 20);
    }
  }
  return 1;
}

void expr_key(const Expr& e, std::string& out) {
  out += static_cast<char>('A' + static_cast<int>(e.kind));
  switch (e.kind) {
    case Expr::Kind::kLiteral: out += std::to_string(e.bytes.size()) + ":" + e.bytes; break;
    case Expr::Kind::kClass:
      for (const CodepointRange& r : e.ranges) out += std::to_string(r.lo) + "-" + std::to_string(r.hi) + ",";
      break;
    case Expr::Kind::kRef: out += std::to_string(e.rule); break;
    case Expr::Kind::kRepeat: out += std::to_string(e.min) + "," + std::to_string(e.max); break;
    default: break;
  }
  out += '(';
  for (const Expr& c : e.children) expr_key(c, out);
  out += ')';
}

class NfaBuilder {
 public:
  NfaBuilder(Nfa& nfa, RuleSet& rules, const Limits& limits) : nfa_(nfa), rules_(rules), limits_(limits) {}

  int32_t add_state() {
    nfa_.states.emplace_back();
    return static_cast<int32_t>(nfa_.states.size() - 1);
  }
  Status build(const Expr& e, int32_t from, int32_t to, int depth);
  // Builds the bodies of the rules embedded so far (a worklist: chains may be thousands long).
  Status build_embedded();

 private:
  Status check_size() const {
    if (nfa_.states.size() > limits_.max_fsm_nodes) {
      return invalid_argument("grammar too large: over " + std::to_string(limits_.max_fsm_nodes) + " automaton states");
    }
    return {};
  }
  void add_eps(int32_t from, int32_t to) { nfa_.states[from].eps.push_back(to); }
  void add_byte(int32_t from, uint8_t lo, uint8_t hi, int32_t to) { nfa_.states[from].bytes.push_back({lo, hi, to}); }
  Status build_class(const CodepointSet& set, int32_t from, int32_t to);
  Status build_repeat(const Expr& e, int32_t from, int32_t to, int depth);
  int32_t body_rule(const Expr& child);

  bool embeddable(int32_t rule) const {
    return rule < static_cast<int32_t>(rules_.recursive.size()) && !rules_.recursive[rule] &&
           (embedded_.count(rule) > 0 || nfa_.states.size() < kMaxEmbedStates);
  }

  Nfa& nfa_;
  RuleSet& rules_;
  const Limits& limits_;
  std::map<int32_t, int32_t> embedded_;  // rule -> the start state of its copy in this NFA
  std::vector<std::pair<int32_t, int32_t>> pending_;  // (rule, start) still to build
};

Status NfaBuilder::build_embedded() {
  while (!pending_.empty()) {
    auto [rule, start] = pending_.back();
    pending_.pop_back();
    TK_RETURN_IF_ERROR(build(*rules_.bodies[rule], start, nfa_.accept, 0));
  }
  return {};
}

Status NfaBuilder::build_class(const CodepointSet& set, int32_t from, int32_t to) {
  std::vector<ByteSeq> seqs;
  for (const CodepointRange& r : set) utf8_sequences(r.lo, r.hi, seqs);
  for (const ByteSeq& s : seqs) {
    int32_t cur = from;
    for (int i = 0; i < s.len; ++i) {
      int32_t next = i + 1 == s.len ? to : add_state();
      add_byte(cur, s.lo[i], s.hi[i], next);
      cur = next;
    }
  }
  return check_size();
}

int32_t NfaBuilder::body_rule(const Expr& child) {
  std::string key;
  expr_key(child, key);
  auto it = rules_.body_by_key.find(key);
  if (it != rules_.body_by_key.end()) return it->second;
  int32_t id = static_cast<int32_t>(rules_.bodies.size());
  rules_.owned.push_back(std::make_unique<Expr>(child));
  rules_.bodies.push_back(rules_.owned.back().get());
  rules_.names.push_back("repeat-body-" + std::to_string(rules_.body_by_key.size() + 1));
  rules_.is_body.push_back(1);
  rules_.body_by_key.emplace(std::move(key), id);
  return id;
}

Status NfaBuilder::build_repeat(const Expr& e, int32_t from, int32_t to, int depth) {
  const Expr& x = e.children[0];
  int64_t size = estimate(x);
  bool inline_it = e.max == kUnbounded ? (e.min <= 3 && size * (e.min + 1) <= kMaxInlineSize)
                                       : (e.max <= kMaxInlineRepeat && size * e.max <= kMaxInlineSize);
  if (e.max == 1 || (e.min <= 1 && e.max == kUnbounded)) inline_it = true;  // ?, *, + are loops
  if (!inline_it) {
    CallEdge call;
    call.rule = body_rule(x);
    call.target = to;
    call.min = static_cast<int32_t>(e.min);
    call.max = e.max == kUnbounded ? kUnboundedCount : static_cast<int32_t>(e.max);
    call.repeat = true;
    nfa_.states[from].calls.push_back(call);
    return {};
  }
  int32_t cur = from;
  for (int64_t i = 0; i < e.min; ++i) {
    int32_t next = add_state();
    TK_RETURN_IF_ERROR(build(x, cur, next, depth + 1));
    cur = next;
  }
  if (e.max == kUnbounded) {
    int32_t loop = add_state();
    add_eps(cur, loop);
    TK_RETURN_IF_ERROR(build(x, loop, loop, depth + 1));
    add_eps(loop, to);
    return {};
  }
  for (int64_t i = e.min; i < e.max; ++i) {
    add_eps(cur, to);
    int32_t next = i + 1 == e.max ? to : add_state();
    TK_RETURN_IF_ERROR(build(x, cur, next, depth + 1));
    cur = next;
  }
  if (e.min == e.max) add_eps(cur, to);
  return {};
}

Status NfaBuilder::build(const Expr& e, int32_t from, int32_t to, int depth) {
  if (depth > kMaxExprDepth) return invalid_argument("grammar expression nested too deeply");
  switch (e.kind) {
    case Expr::Kind::kEmpty: add_eps(from, to); return {};
    case Expr::Kind::kLiteral: {
      int32_t cur = from;
      for (size_t i = 0; i < e.bytes.size(); ++i) {
        int32_t next = i + 1 == e.bytes.size() ? to : add_state();
        uint8_t b = static_cast<uint8_t>(e.bytes[i]);
        add_byte(cur, b, b, next);
        cur = next;
      }
      return check_size();
    }
    case Expr::Kind::kClass: return build_class(e.ranges, from, to);
    case Expr::Kind::kRef: {
      if (to == nfa_.accept && embeddable(e.rule)) {
        auto [it, fresh] = embedded_.emplace(e.rule, 0);
        if (fresh) {
          it->second = add_state();
          pending_.push_back({e.rule, it->second});
        }
        add_eps(from, it->second);
        return {};
      }
      CallEdge call;
      call.rule = e.rule;
      call.target = to;
      nfa_.states[from].calls.push_back(call);
      return {};
    }
    case Expr::Kind::kSeq: {
      int32_t cur = from;
      for (size_t i = 0; i < e.children.size(); ++i) {
        int32_t next = i + 1 == e.children.size() ? to : add_state();
        TK_RETURN_IF_ERROR(build(e.children[i], cur, next, depth + 1));
        cur = next;
      }
      return check_size();
    }
    case Expr::Kind::kAlt:
      for (const Expr& c : e.children) TK_RETURN_IF_ERROR(build(c, from, to, depth + 1));
      return {};
    case Expr::Kind::kRepeat: return build_repeat(e, from, to, depth);
  }
  return {};
}

}  // namespace

void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<ByteSeq>& out) {
  if (lo > hi) return;
  static const uint32_t kLengthMax[] = {0x7F, 0x7FF, 0xFFFF};
  for (uint32_t m : kLengthMax) {
    if (lo <= m && m < hi) {
      utf8_sequences(lo, m, out);
      utf8_sequences(m + 1, hi, out);
      return;
    }
  }
  for (int i = 1; i < 4; ++i) {
    uint32_t m = (1u << (6 * i)) - 1;
    if ((lo & ~m) != (hi & ~m)) {
      if ((lo & m) != 0) {
        utf8_sequences(lo, lo | m, out);
        utf8_sequences((lo | m) + 1, hi, out);
        return;
      }
      if ((hi & m) != m) {
        utf8_sequences(lo, (hi & ~m) - 1, out);
        utf8_sequences(hi & ~m, hi, out);
        return;
      }
    }
  }
  ByteSeq s;
  int len_lo = 0, len_hi = 0;
  encode(lo, s.lo, &len_lo);
  encode(hi, s.hi, &len_hi);
  s.len = static_cast<uint8_t>(len_lo);
  out.push_back(s);
}

Result<Nfa> build_nfa(const Expr& body, RuleSet& rules, const Limits& limits) {
  Nfa nfa;
  NfaBuilder b(nfa, rules, limits);
  nfa.start = b.add_state();
  nfa.accept = b.add_state();
  TK_RETURN_IF_ERROR(b.build(body, nfa.start, nfa.accept, 0));
  TK_RETURN_IF_ERROR(b.build_embedded());
  return nfa;
}

namespace {

void collect_refs(const Expr& e, std::vector<int32_t>& out) {
  if (e.kind == Expr::Kind::kRef) out.push_back(e.rule);
  for (const Expr& c : e.children) collect_refs(c, out);
}

}  // namespace

// Tarjan's strongly connected components, iteratively (grammars may have thousands of rules).
std::vector<uint8_t> find_recursive_rules(const std::vector<const Expr*>& bodies) {
  const auto n = static_cast<int32_t>(bodies.size());
  std::vector<std::vector<int32_t>> refs(n);
  for (int32_t r = 0; r < n; ++r) collect_refs(*bodies[r], refs[r]);
  std::vector<int32_t> index(n, -1), low(n, 0), stack;
  std::vector<uint8_t> on_stack(n, 0), recursive(n, 0);
  int32_t next_index = 0;
  for (int32_t s = 0; s < n; ++s) {
    if (index[s] >= 0) continue;
    std::vector<std::pair<int32_t, size_t>> dfs = {{s, 0}};
    index[s] = low[s] = next_index++;
    stack.push_back(s);
    on_stack[s] = 1;
    while (!dfs.empty()) {
      auto& [v, i] = dfs.back();
      if (i < refs[v].size()) {
        int32_t w = refs[v][i++];
        if (w < 0 || w >= n) continue;
        if (w == v) recursive[v] = 1;
        if (index[w] < 0) {
          index[w] = low[w] = next_index++;
          stack.push_back(w);
          on_stack[w] = 1;
          dfs.push_back({w, 0});
        } else if (on_stack[w]) {
          low[v] = std::min(low[v], index[w]);
        }
        continue;
      }
      if (low[v] == index[v]) {  // v roots a component
        int32_t size = 0, w;
        size_t top = stack.size();
        do {
          w = stack[--top];
          ++size;
        } while (w != v);
        for (size_t k = top; k < stack.size(); ++k) {
          on_stack[stack[k]] = 0;
          if (size > 1) recursive[stack[k]] = 1;
        }
        stack.resize(top);
      }
      int32_t done = v;
      dfs.pop_back();
      if (!dfs.empty()) low[dfs.back().first] = std::min(low[dfs.back().first], low[done]);
    }
  }
  return recursive;
}

}  // namespace tk::grammar
