// The pushdown automaton's step and closure, written once for the three places that run it: the
// matcher advancing by a token (over real stack frames), the run-time check of a token the tables
// left open (same), and the table precomputation (over an unknown stack below one position).
//
// A parse is a stack of elements: FSM nodes (the current node of each active rule, top = the
// innermost) and counting frames (a repetition X{m,n} in progress and how many X it has done).
// A configuration (Cfg) is a shared base frame (interned in the matcher's arena, or one of the
// sentinels) plus a short local stack above it; parses are sets of configurations (nondeterminism
// and ambiguity are just more members).
#pragma once

#include <climits>
#include <cstdint>
#include <vector>

#include "fsm.h"

namespace tk::grammar {

struct Elem {
  int32_t id = 0;     // >= 0: an FSM node; < 0: the counting frame of call edge ~id
  int32_t count = 0;  // counting frame: repetitions completed (-1: unknown, in guessed parses)
  bool operator==(const Elem&) const = default;
};

struct Frame {
  Elem elem;
  int32_t parent = -1;  // frame id or kBottom
  int32_t depth = 1;    // elements in the stack down to the bottom, this one included
};

constexpr int32_t kBottom = -1;   // nothing below: the root's caller (the grammar's end)
constexpr int32_t kUnknown = -2;  // precomputation: whatever the real stack holds

struct Cfg {
  int32_t base = kBottom;
  uint32_t off = 0, len = 0;  // local stack: CfgSet::pool[off, off + len), top last
  uint8_t guess = 0;          // 0: exact; n: continued in a caller guessed n levels down
  uint8_t k = 0;              // repetition-body tables: further iterations started (saturating)
};

struct CfgSet {
  std::vector<Cfg> cfgs;
  std::vector<Elem> pool;
  bool completed = false;  // a parse emptied its stack: the grammar may end here
  bool escaped = false;    // precomputation: a parse left what can be known without the stack
  bool overflow = false;   // the parallel-parse or depth bound was hit
  void clear() {
    cfgs.clear();
    pool.clear();
    completed = escaped = overflow = false;
  }
  bool empty() const { return cfgs.empty(); }
};

struct StepperLimits {
  int max_depth = 2000;
  int max_cfgs = 4096;
  int max_guess = 3;
};

class Stepper {
 public:
  Stepper(const Fsm& fsm, const StepperLimits& limits) : fsm_(fsm), limits_(limits) {}
  // Real frames for bases >= 0 (the matcher's arena; may grow between calls).
  void set_frames(const std::vector<Frame>* frames) { frames_ = frames; }

  // Expands `in` (tops just reached) into byte-ready parses: every top in `out` is a node with a
  // byte edge. Calls push, finished rules pop, repetitions loop or leave.
  void close(const CfgSet& in, CfgSet& out);
  // Moves every parse of a closed set over byte b; `out` is not closed.
  void step(const CfgSet& closed, uint8_t b, CfgSet& out);
  // A single parse whose top is a node with only byte edges needs no closure.
  bool is_plain(const CfgSet& set) const;

  Elem top(int32_t base, const Elem* local, uint32_t len) const {
    return len > 0 ? local[len - 1] : (*frames_)[base].elem;
  }
  int32_t base_depth(int32_t base) const { return base >= 0 ? (*frames_)[base].depth : 0; }

 private:
  struct Item {
    int32_t base;
    uint32_t off, len;  // into spool_
    uint8_t guess, k;
    int32_t min_new;  // depth of the shallowest element this closure created
  };
  Elem item_top(const Item& it) const { return top(it.base, spool_.data() + it.off, it.len); }
  int32_t depth(const Item& it) const { return base_depth(it.base) + static_cast<int32_t>(it.len); }
  Item copy_item(const Item& it, uint32_t keep);
  Item replace_top(const Item& it, Elem e);
  bool push(Item& it, Elem e, CfgSet& out);
  Item pop(const Item& it) const;
  void expand(const Item& it, CfgSet& out);
  void complete(const Item& it, CfgSet& out);
  void decide(const Item& it, bool fresh, CfgSet& out);
  void guess(const Item& it, int32_t rule, const Item& popped, CfgSet& out);
  void emit(const Item& it, CfgSet& out);
  bool first_visit(const Item& it);
  uint64_t hash_item(int32_t base, const Elem* local, uint32_t len, uint32_t extra) const;

  const Fsm& fsm_;
  StepperLimits limits_;
  const std::vector<Frame>* frames_ = nullptr;
  std::vector<Elem> spool_;
  std::vector<Item> work_;
  std::vector<std::pair<uint64_t, uint32_t>> visited_;  // (hash, index in seen_)
  std::vector<Item> seen_;
  std::vector<int32_t> slots_;  // open addressing over visited_
  std::vector<uint64_t> out_hashes_;
};

}  // namespace tk::grammar
