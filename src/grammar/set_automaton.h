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
    // A table walk decides a token the same way in both states.
    bool decides_like(const Info& o) const {
      return empty == o.empty && exact_k == o.exact_k && (exact_k == 0 || exact_k == 256 || guessed == o.guessed);
    }
  };
  static constexpr int32_t kNoState = -1;

  SetAutomaton(const Fsm& fsm, const StepperLimits& limits, size_t max_states = 8192);
  void set_frames(const std::vector<Frame>* frames) { stepper_.set_frames(frames); }
  void clear();
  // The state of a raw parse set (tops just reached, not closed).
  int32_t intern(const CfgSet& raw);
  // The state after byte b from state s (a lookup once computed: the walks' inner step).
  int32_t next(int32_t s, uint8_t b) {
    int32_t t = trans_[static_cast<size_t>(s) * 256 + b];
    return t != kNoState ? t : compute_next(s, b);
  }
  const Info& info(int32_t s) const { return info_[s]; }
  // The largest set of bytes that all lead from s to one state (a string's plain characters go
  // back to the same state, or on to the next position of a bounded run), or null. Only
  // single-parse states whose node has only byte edges are looked at: that is where permissive
  // table walks spend their time.
  struct Run {
    uint64_t bytes[4];  // 256 bits
    int32_t next;       // next(s, b) for every b in bytes
  };
  // Scanned on the second request for a state (most states a walk meets once are not worth it).
  const Run* run(int32_t s) {
    int32_t at = run_at_[s];
    if (at >= 0) return &runs_[at];
    return at == kRunNone ? nullptr : first_runs(s);
  }
  // How many bytes from s on, each in run(s)->bytes, keep to runs over those same bytes through
  // states that decide like s (INT32_MAX when the run loops): a trie subtree that is no deeper and
  // has no other byte is decided as s is, all at once.
  int32_t uniform_depth(int32_t s);
  size_t size() const { return raws_.size(); }
  bool full() const { return raws_.size() >= max_states_; }
  // Drops every state but `keep` (renumbered in place, in order), e.g. the levels of a walk.
  void compact(int32_t* keep, size_t n);

 private:
  const CfgSet& closed(int32_t s);
  int32_t compute_next(int32_t s, uint8_t b);
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
  std::vector<int32_t> run_at_;  // per state: index into runs_, kRunNone, or kRunUnknown
  std::vector<Run> runs_;
  std::vector<int32_t> uniform_;  // per state: uniform_depth, or kRunUnknown
  std::vector<int32_t> chain_;    // uniform_depth's scratch
  const Run* compute_run(int32_t s);
  const Run* first_runs(int32_t s);  // run() before the scan
  static constexpr int32_t kRunNone = -1, kRunUnknown = -2;
  CfgSet scratch_;
};

}  // namespace tk::grammar
