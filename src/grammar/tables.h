// Per-state token tables (xgrammar's adaptive token mask cache, adapted to counted repetitions).
// For an FSM node q, a walk of the vocabulary trie from q alone — the stack below q unknown —
// sorts every token into: accepted (some parse consumes all its bytes without looking below q),
// rejected (every parse dies, whatever lies below), or uncertain (it only survives by leaving q's
// rule into a caller, which the walk guesses from the grammar's call sites; the matcher decides
// these at run time against the real stack). Inside a counted repetition's body the table keeps,
// per token, how many further iterations it starts, so one table serves every count.
#pragma once

#include <cstdint>
#include <vector>

#include "set_automaton.h"
#include "vocab.h"

namespace tk::grammar {

struct TokenTable {
  bool body = false;                // node inside a counted repetition's body whose tokens may start
                                    // further iterations: use kmin (false when none does)
  std::vector<uint32_t> bits;       // accepted tokens as a mask (body: every kmin < 255)
  std::vector<int32_t> ids;         // accepted tokens as a sorted list, when few (bits empty)
  std::vector<uint8_t> kmin;        // body: further iterations token t starts; 255 = not accepted
  uint8_t max_k = 0;                // body: the largest kmin < 255
  std::vector<int32_t> uncertain;   // decided at run time, in trie order
  int64_t accepted = 0;
};

// `sets` must have been made for this fsm with table_walk_limits(); it keeps its states, so the
// next table's walk (often through the same parse sets) starts warm.
void compute_table(const Fsm& fsm, const Vocabulary& vocab, SetAutomaton& sets, int32_t node, TokenTable& out);
StepperLimits table_walk_limits(const StepperLimits& limits);

}  // namespace tk::grammar
