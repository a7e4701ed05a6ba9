// build_fsm: each rule's NFA determinized by subset construction (call edges are symbols like
// bytes), so that a parse usually holds one state per rule and the token walks stay narrow. A rule
// whose DFA would blow up keeps its epsilon-free NFA: the matcher handles nondeterminism anyway.
#include <algorithm>
#include <map>
#include <unordered_map>

#include "nfa.h"

namespace tk::grammar {

Status analyze_fsm(Fsm& fsm, const Limits& limits);  // fsm_analysis.cpp

namespace {

using StateSet = std::vector<int32_t>;

// `mark` is scratch of nfa.states.size() entries, all != stamp on entry; stamps stay distinct per
// call so that it never needs clearing (a closure per DFA state would otherwise cost O(NFA)).
void close_eps(const Nfa& nfa, StateSet& set, std::vector<uint32_t>& mark, uint32_t stamp) {
  for (int32_t s : set) mark[s] = stamp;
  for (size_t i = 0; i < set.size(); ++i) {
    for (int32_t t : nfa.states[set[i]].eps) {
      if (mark[t] != stamp) {
        mark[t] = stamp;
        set.push_back(t);
      }
    }
  }
  std::sort(set.begin(), set.end());
}

struct StateSetHash {
  size_t operator()(const StateSet& s) const {
    uint64_t h = s.size();
    for (int32_t x : s) h = (h ^ static_cast<uint32_t>(x)) * 0x100000001B3ull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

// A rule's automaton before it joins the global node array; edge targets are local ids.
struct LocalFsm {
  std::vector<std::vector<ByteEdge>> bytes;
  std::vector<std::vector<CallEdge>> calls;
  std::vector<uint8_t> final;
};

bool same_call(const CallEdge& a, const CallEdge& b) {
  return a.rule == b.rule && a.min == b.min && a.max == b.max && a.repeat == b.repeat;
}

// Subset construction; false when it would pass `cap` states.
bool determinize(const Nfa& nfa, size_t cap, LocalFsm& out) {
  std::unordered_map<StateSet, int32_t, StateSetHash> ids;
  std::vector<StateSet> sets;
  std::vector<uint32_t> mark(nfa.states.size(), 0);
  uint32_t stamp = 0;
  auto id_of = [&](StateSet set) {
    close_eps(nfa, set, mark, ++stamp);
    auto [it, fresh] = ids.emplace(set, static_cast<int32_t>(sets.size()));
    if (fresh) sets.push_back(std::move(set));
    return it->second;
  };
  id_of({nfa.start});
  for (size_t d = 0; d < sets.size(); ++d) {
    if (sets.size() > cap) return false;
    StateSet cur = sets[d];
    std::vector<uint16_t> cuts;  // elementary byte intervals start at these
    for (int32_t s : cur) {
      for (const ByteEdge& e : nfa.states[s].bytes) {
        cuts.push_back(e.lo);
        cuts.push_back(static_cast<uint16_t>(e.hi + 1));
      }
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    std::vector<ByteEdge> bytes;
    std::vector<StateSet> by_interval(cuts.empty() ? 0 : cuts.size() - 1);
    for (int32_t s : cur) {  // each edge lands in the intervals it covers
      for (const ByteEdge& e : nfa.states[s].bytes) {
        size_t i = std::lower_bound(cuts.begin(), cuts.end(), e.lo) - cuts.begin();
        for (; i + 1 < cuts.size() && cuts[i] <= e.hi; ++i) by_interval[i].push_back(e.target);
      }
    }
    for (size_t i = 0; i + 1 < cuts.size(); ++i) {
      StateSet& targets = by_interval[i];
      if (targets.empty()) continue;
      std::sort(targets.begin(), targets.end());
      targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
      int32_t t = id_of(std::move(targets));
      auto lo = static_cast<uint8_t>(cuts[i]);
      auto hi = static_cast<uint8_t>(cuts[i + 1] - 1);
      if (!bytes.empty() && bytes.back().target == t && bytes.back().hi + 1 == lo) {
        bytes.back().hi = hi;
      } else {
        bytes.push_back({lo, hi, t});
      }
    }
    std::vector<CallEdge> groups;
    std::vector<StateSet> group_targets;
    for (int32_t s : cur) {
      for (const CallEdge& c : nfa.states[s].calls) {
        size_t g = 0;
        while (g < groups.size() && !same_call(groups[g], c)) ++g;
        if (g == groups.size()) {
          groups.push_back(c);
          group_targets.emplace_back();
        }
        group_targets[g].push_back(c.target);
      }
    }
    std::vector<CallEdge> calls;
    for (size_t g = 0; g < groups.size(); ++g) {
      CallEdge c = groups[g];
      c.target = id_of(std::move(group_targets[g]));
      calls.push_back(c);
    }
    out.bytes.push_back(std::move(bytes));
    out.calls.push_back(std::move(calls));
    out.final.push_back(std::binary_search(cur.begin(), cur.end(), nfa.accept));
  }
  return true;
}

// The fallback: node i is NFA state i with the edges of its epsilon closure.
void epsilon_free(const Nfa& nfa, LocalFsm& out) {
  size_t n = nfa.states.size();
  out.bytes.assign(n, {});
  out.calls.assign(n, {});
  out.final.assign(n, 0);
  std::vector<int32_t> order(n);
  // Node 0 must be the start.
  for (size_t i = 0; i < n; ++i) order[i] = static_cast<int32_t>(i);
  std::swap(order[0], order[nfa.start]);
  std::vector<int32_t> local(n);
  for (size_t i = 0; i < n; ++i) local[order[i]] = static_cast<int32_t>(i);
  std::vector<uint32_t> mark(n, 0);
  for (size_t i = 0; i < n; ++i) {
    StateSet set = {order[i]};
    close_eps(nfa, set, mark, static_cast<uint32_t>(i + 1));
    for (int32_t s : set) {
      for (ByteEdge e : nfa.states[s].bytes) out.bytes[i].push_back({e.lo, e.hi, local[e.target]});
      for (CallEdge c : nfa.states[s].calls) {
        c.target = local[c.target];
        out.calls[i].push_back(c);
      }
      if (s == nfa.accept) out.final[i] = 1;
    }
    std::sort(out.bytes[i].begin(), out.bytes[i].end(), [](const ByteEdge& a, const ByteEdge& b) { return a.lo < b.lo; });
  }
}

void append_rule(Fsm& fsm, int32_t rule, const LocalFsm& local) {
  auto base = static_cast<int32_t>(fsm.nodes.size());
  fsm.rule_start[rule] = base;
  for (size_t i = 0; i < local.final.size(); ++i) {
    FsmNode node;
    node.rule = rule;
    node.final = local.final[i] != 0;
    node.bytes_begin = static_cast<uint32_t>(fsm.bytes.size());
    for (ByteEdge e : local.bytes[i]) {
      e.target += base;
      fsm.bytes.push_back(e);
    }
    node.bytes_count = static_cast<uint32_t>(fsm.bytes.size() - node.bytes_begin);
    node.calls_begin = static_cast<uint32_t>(fsm.calls.size());
    for (CallEdge c : local.calls[i]) {
      c.target += base;
      fsm.calls.push_back(c);
    }
    node.calls_count = static_cast<uint32_t>(fsm.calls.size() - node.calls_begin);
    fsm.nodes.push_back(node);
  }
}

}  // namespace

Result<Fsm> build_fsm(const GrammarIR& ir, const Limits& limits) {
  if (ir.rules.empty() || ir.root < 0 || ir.root >= static_cast<int32_t>(ir.rules.size())) {
    return invalid_argument("grammar has no start rule");
  }
  if (ir.rules.size() > static_cast<size_t>(limits.max_rules)) {
    return invalid_argument("grammar has " + std::to_string(ir.rules.size()) + " rules, over the limit of " +
                            std::to_string(limits.max_rules));
  }
  RuleSet rules;
  for (const Rule& r : ir.rules) {
    rules.bodies.push_back(&r.body);
    rules.names.push_back(r.name);
    rules.is_body.push_back(0);
  }
  rules.recursive = find_recursive_rules(rules.bodies);
  // Only rules a parse can call are built (an embedded rule needs no automaton of its own); the
  // others get one dead node so that rule ids stay the IR's.
  std::vector<LocalFsm> built;
  std::vector<uint8_t> wanted(rules.bodies.size(), 0), done;
  std::vector<int32_t> work = {ir.root};
  wanted[ir.root] = 1;
  size_t nodes = 0;
  while (!work.empty()) {
    int32_t r = work.back();
    work.pop_back();
    TK_ASSIGN_OR_RETURN(Nfa nfa, build_nfa(*rules.bodies[r], rules, limits));
    LocalFsm local;
    size_t cap = 4 * nfa.states.size() + 64;
    if (!determinize(nfa, cap, local)) {
      local = LocalFsm{};
      epsilon_free(nfa, local);
    }
    nodes += local.final.size();
    if (nodes > limits.max_fsm_nodes) {
      return invalid_argument("grammar too large: over " + std::to_string(limits.max_fsm_nodes) + " automaton states");
    }
    wanted.resize(rules.bodies.size(), 0);  // body rules found by this build
    for (const auto& calls : local.calls) {
      for (const CallEdge& c : calls) {
        if (!wanted[c.rule]) {
          wanted[c.rule] = 1;
          work.push_back(c.rule);
        }
      }
    }
    built.resize(rules.bodies.size());
    built[r] = std::move(local);
    done.resize(rules.bodies.size(), 0);
    done[r] = 1;
  }
  Fsm fsm;
  fsm.rule_start.assign(rules.bodies.size(), -1);
  built.resize(rules.bodies.size());
  done.resize(rules.bodies.size(), 0);
  for (size_t r = 0; r < rules.bodies.size(); ++r) {
    if (!done[r]) {  // never called: one node that matches nothing
      built[r].bytes.emplace_back();
      built[r].calls.emplace_back();
      built[r].final.push_back(0);
    }
    append_rule(fsm, static_cast<int32_t>(r), built[r]);
  }
  fsm.rule_start.resize(rules.bodies.size(), -1);
  fsm.rule_names = rules.names;
  fsm.rule_is_body = rules.is_body;
  fsm.root = ir.root;
  TK_RETURN_IF_ERROR(analyze_fsm(fsm, limits));
  return fsm;
}

}  // namespace tk::grammar
