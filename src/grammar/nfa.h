// Thompson NFAs, one per rule, the intermediate step between the IR and the determinized FSM.
// Character classes become UTF-8 byte-range sequences here; small repetitions are unrolled and
// large ones become counted calls of an anonymous body rule, so X{0,100000} costs one rule, not
// 100000 copies.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "fsm.h"

namespace tk::grammar {

struct NfaState {
  std::vector<int32_t> eps;
  std::vector<ByteEdge> bytes;
  std::vector<CallEdge> calls;
};

struct Nfa {
  std::vector<NfaState> states;
  int32_t start = 0, accept = 0;
};

// The rules being compiled: the IR's, then anonymous repetition bodies as they are found.
struct RuleSet {
  std::vector<const Expr*> bodies;
  std::vector<std::string> names;
  std::vector<uint8_t> is_body;
  std::map<std::string, int32_t> body_by_key;  // identical bodies share one rule
  std::vector<std::unique_ptr<Expr>> owned;    // body expressions copied out of the IR
  // Per IR rule: it can reach itself through references (never embedded, so recursion, and the
  // errors that name it, stay as written).
  std::vector<uint8_t> recursive;
};

// Marks the IR rules that lie on a cycle of references.
std::vector<uint8_t> find_recursive_rules(const std::vector<const Expr*>& bodies);

// Builds rule `rule`'s NFA; may append body rules to `rules`. A reference in tail position to a
// rule that is not recursive is embedded (the callee's NFA joins this one, once per callee), so
// right-linear chains of rules (what regexes with lengths become) are one automaton: the token
// tables then see through them instead of leaving every token that crosses a rule's end to the
// run-time check.
Result<Nfa> build_nfa(const Expr& body, RuleSet& rules, const Limits& limits);

// UTF-8 encodings of the code points in [lo, hi] as sequences of byte ranges (1 to 4 ranges each).
struct ByteSeq {
  uint8_t len = 0;
  uint8_t lo[4] = {0, 0, 0, 0}, hi[4] = {0, 0, 0, 0};
};
void utf8_sequences(uint32_t lo, uint32_t hi, std::vector<ByteSeq>& out);

}  // namespace tk::grammar
