// A lazy DFA over parse sets, the engine of every vocabulary walk (table precomputation and the
// matcher's run-time check). A walk of the token trie computes, for each trie node, the parse set
// after the node's bytes; the sets it meets are few (a string's content, a number's digits: one
// set each) while the trie has ~400k nodes for a 128k vocabulary. So each distinct raw (unclosed)
// set is interned once, closed once, and its successor over a byte is computed once and stored:
// after the first few tokens a trie step is one array lookup instead of a pushdown closure.
//
// States are valid as long as the frames their bases point into are unchanged (frames are
// immutable once interned, so within one matcher they stay valid; the matcher still clears per
// check to bound memory). The number of states is capped: compact() keeps only the states a
// walk still holds.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "stepper.h"

namespace tk::grammar {

class SetAutomaton {
 public:
  // What a walk needs to know about a state without looking at its configurations.
  struct Info {
    bool empty = true;     // no parse survives
    bool escaped = false;  // some parse on the way here left what the walk can follow (or overflowed)
    bool guessed = false;  // escaped, or some surviving parse continued in a guessed caller
    int16_t exact_k = 256; // repetition tables: fewest further iterations among exact parses (256: none)
  };
  static constexpr int32_t kNoState = -1;

  SetAutomaton(const Fsm& fsm, const StepperLimits& limits, size_t max_states = 8192);
  void set_frames(const std::vector<Frame>* frames) { stepper_.set_frames(frames); }
  void clear();
  // The state of a raw parse set (tops just reached, not closed).
  int32_t intern(const CfgSet& raw);
  // The state after byte b from state s.
  int32_t next(int32_t s, uint8_t b);
  const Info& info(int32_t s) const { return info_[s]; }
  size_t size() const { return raws_.size(); }
  bool full() const { return raws_.size() >= max_states_; }
  // Drops every state but `keep` (renumbered in place, in order), e.g. the levels of a walk.
  void compact(int32_t* keep, size_t n);

 private:
  const CfgSet& closed(int32_t s);
  uint64_t hash(const CfgSet& set) const;
  bool same(const CfgSet& a, const CfgSet& b) const;

  const Fsm& fsm_;
  Stepper stepper_;
  size_t max_states_;
  std::vector<CfgSet> raws_, closeds_;
  std::vector<uint8_t> closed_state_;  // 0: not yet, 1: closeds_ holds it, 2: raw is already closed (plain)
  std::vector<Info> info_;
  std::vector<int32_t> trans_;  // [state * 256 + byte], kNoState until computed
  std::unordered_map<uint64_t, int32_t> by_hash_;
  std::vector<int32_t> same_hash_next_;  // chains states whose hashes collide
  CfgSet scratch_;
};

}  // namespace tk::grammar
