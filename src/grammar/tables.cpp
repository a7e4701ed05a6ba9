// compute_table: one preorder walk of the vocabulary trie from a single FSM node (see tables.h).
// A rejected prefix skips its whole subtree; tokens sharing a prefix share its parse work, and
// the parse sets are states of a lazy DFA (set_automaton.h), so most trie steps are a lookup;
// and a subtree whose bytes all keep to one run of states that decide alike (plain text under a
// string position) is decided without walking it.
#include "tables.h"

#include <algorithm>

namespace tk::grammar {
namespace {

struct TableBuilder {
  const Vocabulary::Trie& trie;
  TokenTable& out;  // out.bits collects the accepted tokens (sized by the caller)

  void accept(int32_t node, uint8_t k) { accept_range(node, node + 1, k); }
  // The tokens of trie nodes [first, last).
  void accept_range(int32_t first, int32_t last, uint8_t k) {
    for (int32_t t = trie.tok_begin[first]; t < trie.tok_begin[last]; ++t) {
      int32_t id = trie.ids[t];
      if (out.body) {
        out.kmin[id] = k;
        out.max_k = std::max(out.max_k, k);
      }
      out.bits[id >> 5] |= 1u << (id & 31);
      ++out.accepted;
    }
  }
  void uncertain(int32_t node) { uncertain_range(node, node + 1); }
  void uncertain_range(int32_t first, int32_t last) {
    for (int32_t t = trie.tok_begin[first]; t < trie.tok_begin[last]; ++t) out.uncertain.push_back(trie.ids[t]);
  }
  void uncertain_subtree(int32_t node) { uncertain_range(node, trie.end[node]); }
  // What the walk decides for a trie node in state `in`, for the nodes [first, last).
  void decide(int32_t first, int32_t last, const SetAutomaton::Info& in) {
    if (in.exact_k < 256) {
      accept_range(first, last, static_cast<uint8_t>(std::min<int>(in.exact_k, 254)));
      // A repetition body's token that a low count refuses may still fit by leaving the repetition.
      if (in.exact_k > 0 && in.guessed) uncertain_range(first, last);
    } else {
      uncertain_range(first, last);
    }
  }
};

// Few accepted tokens are kept as a list (or-ing a 16 KB mask per step would cost more).
void finish(const Vocabulary& vocab, TableBuilder& b) {
  TokenTable& out = b.out;
  if (out.body && out.max_k == 0) {  // no accepted token starts another iteration: every count allows
    out.body = false;                // them all, so the 128 KB of kmin would say nothing
    out.kmin = {};
  }
  bool dense = out.body || out.accepted * 32 >= vocab.mask_size();
  if (dense) return;
  out.ids.reserve(static_cast<size_t>(out.accepted));
  for (size_t w = 0; w < out.bits.size(); ++w) {
    for (uint32_t x = out.bits[w]; x; x &= x - 1) out.ids.push_back(static_cast<int32_t>(w * 32 + __builtin_ctz(x)));
  }
  out.bits.clear();
  out.bits.shrink_to_fit();
}

// Whether every node below trie node i (reached in state s) gets s's decision: all of the
// subtree's bytes lead one run further at each depth (a string's characters looping on one state,
// or the positions of a bounded run) through states that decide alike. Most of a 128k vocabulary
// is plain text under a string position, so the walk then decides whole subtrees at once.
bool uniform_subtree(const Vocabulary::Trie& trie, SetAutomaton& sets, int32_t i, int32_t s) {
  const SetAutomaton::Run* run = sets.run(s);
  return run && trie.below_within(i, run->bytes) && trie.height[i] <= sets.uniform_depth(s);
}

}  // namespace

StepperLimits table_walk_limits(const StepperLimits& limits) {
  StepperLimits walk = limits;
  walk.max_depth = std::max(limits.max_depth, 4096);  // the real depth is checked at run time
  return walk;
}

void compute_table(const Fsm& fsm, const Vocabulary& vocab, SetAutomaton& sets, int32_t node, TokenTable& out) {
  const Vocabulary::Trie& trie = vocab.trie();
  out = TokenTable{};
  out.body = fsm.rule_is_body[fsm.nodes[node].rule] != 0;
  if (out.body) out.kmin.assign(vocab.size(), 255);
  out.bits.assign(vocab.mask_words(), 0);
  TableBuilder b{trie, out};
  CfgSet root;
  root.pool.push_back(Elem{node, 0});
  root.cfgs.push_back(Cfg{kUnknown, 0, 1, 0, 0});
  std::vector<int32_t> level(std::max(1, trie.max_depth) + 1, SetAutomaton::kNoState);
  level[0] = sets.intern(root);
  for (int32_t i = 1; i < trie.size();) {
    int d = trie.depth[i];
    if (d == 1 && !fsm.has_byte(node, trie.byte[i])) {
      i = trie.end[i];
      continue;
    }
    if (sets.full()) sets.compact(level.data(), d);
    int32_t s = sets.next(level[d - 1], trie.byte[i]);
    level[d] = s;
    const SetAutomaton::Info& in = sets.info(s);
    if (in.empty) {
      if (in.escaped) b.uncertain_subtree(i);
      i = trie.end[i];
      continue;
    }
    int32_t last = trie.end[i] > i + 1 && uniform_subtree(trie, sets, i, s) ? trie.end[i] : i + 1;
    b.decide(i, last, sets.info(s));  // info after uniform_subtree, which may add states
    i = last;
  }
  finish(vocab, b);
}

}  // namespace tk::grammar
