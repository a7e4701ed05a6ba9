// Checks and facts about a built FSM that the matcher relies on: every kept edge leads somewhere
// that can finish (so a live parse always has a way to complete), which rules can match the empty
// string, and no left recursion (the pushdown closure would never end). Errors name the rules.
#include <algorithm>
#include <functional>

#include "fsm.h"

namespace tk::grammar {
namespace {

bool call_passable(const CallEdge& c, const std::vector<uint8_t>& rule_ok) {
  return rule_ok[c.rule] || (c.repeat && c.min == 0);
}

// live[n]: some path from n reaches the rule's end. Fixpoint, nodes visited backwards so that
// chains resolve in one pass.
std::vector<uint8_t> compute_live(const Fsm& fsm) {
  std::vector<uint8_t> live(fsm.nodes.size(), 0), productive(fsm.rule_start.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t i = fsm.nodes.size(); i-- > 0;) {
      if (live[i]) continue;
      const FsmNode& n = fsm.nodes[i];
      bool ok = n.final;
      for (uint32_t k = 0; !ok && k < n.bytes_count; ++k) ok = live[fsm.bytes[n.bytes_begin + k].target];
      for (uint32_t k = 0; !ok && k < n.calls_count; ++k) {
        const CallEdge& c = fsm.calls[n.calls_begin + k];
        ok = live[c.target] && call_passable(c, productive);
      }
      if (ok) {
        live[i] = 1;
        changed = true;
        if (fsm.rule_start[n.rule] == static_cast<int32_t>(i)) productive[n.rule] = 1;
      }
    }
  }
  return live;
}

void prune(Fsm& fsm, const std::vector<uint8_t>& live) {
  std::vector<uint8_t> productive(fsm.rule_start.size(), 0);
  for (size_t r = 0; r < productive.size(); ++r) productive[r] = live[fsm.rule_start[r]];
  std::vector<ByteEdge> bytes;
  std::vector<CallEdge> calls;
  for (FsmNode& n : fsm.nodes) {
    uint32_t b0 = static_cast<uint32_t>(bytes.size()), c0 = static_cast<uint32_t>(calls.size());
    for (uint32_t k = 0; k < n.bytes_count; ++k) {
      const ByteEdge& e = fsm.bytes[n.bytes_begin + k];
      if (live[e.target]) bytes.push_back(e);
    }
    for (uint32_t k = 0; k < n.calls_count; ++k) {
      CallEdge c = fsm.calls[n.calls_begin + k];
      if (!live[c.target] || !call_passable(c, productive)) continue;
      if (c.repeat && !productive[c.rule]) c.max = 0;  // only the empty repetition is left
      calls.push_back(c);
    }
    n.bytes_begin = b0;
    n.bytes_count = static_cast<uint32_t>(bytes.size()) - b0;
    n.calls_begin = c0;
    n.calls_count = static_cast<uint32_t>(calls.size()) - c0;
  }
  fsm.bytes = std::move(bytes);
  fsm.calls = std::move(calls);
}

// Nodes of rule r reachable from its start without consuming a byte.
std::vector<int32_t> empty_reach(const Fsm& fsm, int32_t start) {
  std::vector<int32_t> out = {start}, stack = {start};
  while (!stack.empty()) {
    const FsmNode& n = fsm.nodes[stack.back()];
    stack.pop_back();
    for (uint32_t k = 0; k < n.calls_count; ++k) {
      const CallEdge& c = fsm.calls[n.calls_begin + k];
      bool skippable = fsm.rule_nullable[c.rule] || (c.repeat && c.min == 0);
      if (skippable && std::find(out.begin(), out.end(), c.target) == out.end()) {
        out.push_back(c.target);
        stack.push_back(c.target);
      }
    }
  }
  return out;
}

void compute_nullable(Fsm& fsm) {
  fsm.rule_nullable.assign(fsm.rule_start.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < fsm.rule_start.size(); ++r) {
      if (fsm.rule_nullable[r]) continue;
      for (int32_t n : empty_reach(fsm, fsm.rule_start[r])) {
        if (fsm.nodes[n].final) {
          fsm.rule_nullable[r] = 1;
          changed = true;
          break;
        }
      }
    }
  }
}

Status check_left_recursion(const Fsm& fsm) {
  size_t nr = fsm.rule_start.size();
  std::vector<std::vector<int32_t>> left(nr);
  for (size_t r = 0; r < nr; ++r) {
    for (int32_t n : empty_reach(fsm, fsm.rule_start[r])) {
      const FsmNode& node = fsm.nodes[n];
      for (uint32_t k = 0; k < node.calls_count; ++k) left[r].push_back(fsm.calls[node.calls_begin + k].rule);
    }
  }
  std::vector<uint8_t> color(nr, 0);  // 0 new, 1 on the path, 2 done
  std::vector<int32_t> path;
  std::string cycle;
  // Iterative DFS (grammars may have thousands of rules).
  for (size_t s = 0; s < nr && cycle.empty(); ++s) {
    if (color[s]) continue;
    std::vector<std::pair<int32_t, size_t>> stack = {{static_cast<int32_t>(s), 0}};
    color[s] = 1;
    path = {static_cast<int32_t>(s)};
    while (!stack.empty() && cycle.empty()) {
      auto& [r, i] = stack.back();
      if (i == left[r].size()) {
        color[r] = 2;
        stack.pop_back();
        path.pop_back();
        continue;
      }
      int32_t next = left[r][i++];
      if (color[next] == 1) {
        auto at = std::find(path.begin(), path.end(), next);
        for (auto it = at; it != path.end(); ++it) cycle += fsm.rule_names[*it] + " -> ";
        cycle += fsm.rule_names[next];
      } else if (color[next] == 0) {
        color[next] = 1;
        path.push_back(next);
        stack.push_back({next, 0});
      }
    }
  }
  if (!cycle.empty()) return invalid_argument("left recursion in the grammar: " + cycle);
  return {};
}

// Nodes a parse from the root can reach (unreachable rules must not widen the callers lists).
std::vector<uint8_t> compute_reachable(const Fsm& fsm) {
  std::vector<uint8_t> seen(fsm.nodes.size(), 0);
  std::vector<int32_t> stack = {fsm.rule_start[fsm.root]};
  seen[stack[0]] = 1;
  auto visit = [&](int32_t n) {
    if (!seen[n]) {
      seen[n] = 1;
      stack.push_back(n);
    }
  };
  while (!stack.empty()) {
    const FsmNode& n = fsm.nodes[stack.back()];
    stack.pop_back();
    for (uint32_t k = 0; k < n.bytes_count; ++k) visit(fsm.bytes[n.bytes_begin + k].target);
    for (uint32_t k = 0; k < n.calls_count; ++k) {
      visit(fsm.calls[n.calls_begin + k].target);
      visit(fsm.rule_start[fsm.calls[n.calls_begin + k].rule]);
    }
  }
  return seen;
}

}  // namespace

Status analyze_fsm(Fsm& fsm, const Limits& limits) {
  (void)limits;
  std::vector<uint8_t> live = compute_live(fsm);
  if (!live[fsm.rule_start[fsm.root]]) {
    return invalid_argument("the grammar matches nothing (rule '" + fsm.rule_names[fsm.root] + "' cannot complete)");
  }
  prune(fsm, live);
  compute_nullable(fsm);
  TK_RETURN_IF_ERROR(check_left_recursion(fsm));
  fsm.callers.assign(fsm.rule_start.size(), {});
  std::vector<uint8_t> reachable = compute_reachable(fsm);
  for (size_t i = 0; i < fsm.nodes.size(); ++i) {
    const FsmNode& n = fsm.nodes[i];
    if (!reachable[i]) continue;
    for (uint32_t k = 0; k < n.calls_count; ++k) fsm.callers[fsm.calls[n.calls_begin + k].rule].push_back(n.calls_begin + k);
  }
  fsm.byte_masks.assign(fsm.nodes.size() * 4, 0);
  for (size_t i = 0; i < fsm.nodes.size(); ++i) {
    const FsmNode& n = fsm.nodes[i];
    for (uint32_t k = 0; k < n.bytes_count; ++k) {
      const ByteEdge& e = fsm.bytes[n.bytes_begin + k];
      for (int b = e.lo; b <= e.hi; ++b) fsm.byte_masks[i * 4 + (b >> 6)] |= uint64_t{1} << (b & 63);
    }
  }
  return {};
}

}  // namespace tk::grammar
