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

#include <algorithm>
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

// Indices keyed by a 64-bit hash (open addressing); the caller compares the candidates. clear()
// is O(1) (a generation bump), since closures run millions of times and most are tiny.
class HashIndex {
 public:
  void clear() {
    ++gen_;
    n_ = 0;
  }
  // Calls eq(index) for each index stored under h until it returns true; returns that index or -1.
  template <class Eq>
  int32_t find(uint64_t h, Eq eq) const {
    if (slots_.empty()) return -1;
    size_t mask = slots_.size() - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.gen != gen_) return -1;
      if (s.h == h && eq(s.idx)) return s.idx;
    }
  }
  void insert(uint64_t h, int32_t idx) {
    if ((n_ + 1) * 2 > slots_.size()) grow();
    size_t mask = slots_.size() - 1;
    size_t i = h & mask;
    while (slots_[i].gen == gen_) i = (i + 1) & mask;
    slots_[i] = Slot{h, idx, gen_};
    ++n_;
  }

 private:
  struct Slot {
    uint64_t h = 0;
    int32_t idx = -1;
    uint32_t gen = 0;
  };
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    uint32_t g = gen_;
    gen_ = 1;  // fresh table: every slot is gen 0 = empty
    n_ = 0;
    for (const Slot& s : old) {
      if (s.gen == g) insert(s.h, s.idx);
    }
  }
  std::vector<Slot> slots_;
  size_t n_ = 0;
  uint32_t gen_ = 1;
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
  HashIndex visited_;  // over seen_
  std::vector<Item> seen_;
  HashIndex out_index_;  // over the output set's cfgs
};

}  // namespace tk::grammar
