// compute_table: one preorder walk of the vocabulary trie from a single FSM node (see tables.h).
// A rejected prefix skips its whole subtree; tokens sharing a prefix share its parse work.
#include "tables.h"

#include <algorithm>

namespace tk::grammar {

LevelWalker::LevelWalker(const Fsm& fsm, const StepperLimits& limits, int max_bytes)
    : stepper_(fsm, limits), raw_(max_bytes + 1), closed_(max_bytes + 1), ready_(max_bytes + 1, nullptr),
      escaped_(max_bytes + 1, 0) {}

void LevelWalker::reset() {
  ready_[0] = &raw_[0];
  escaped_[0] = raw_[0].escaped;
  for (size_t d = 1; d < ready_.size(); ++d) ready_[d] = nullptr;
}

const CfgSet& LevelWalker::advance(int d, uint8_t b) {
  const CfgSet*& prev = ready_[d - 1];
  if (prev == nullptr) {
    if (stepper_.is_plain(raw_[d - 1])) {
      prev = &raw_[d - 1];
    } else {
      stepper_.close(raw_[d - 1], closed_[d - 1]);
      prev = &closed_[d - 1];
    }
  }
  escaped_[d] = escaped_[d - 1] || prev->escaped || prev->overflow;
  stepper_.step(*prev, b, raw_[d]);
  ready_[d] = nullptr;
  return raw_[d];
}

namespace {

struct TableBuilder {
  const Vocabulary::Trie& trie;
  TokenTable& out;
  std::vector<int32_t> accepted;

  void accept(int32_t node, uint8_t k) {
    for (int32_t t = trie.tok_begin[node]; t < trie.tok_begin[node + 1]; ++t) {
      int32_t id = trie.ids[t];
      if (out.body) {
        out.kmin[id] = k;
        out.max_k = std::max(out.max_k, k);
      }
      accepted.push_back(id);
    }
  }
  void uncertain(int32_t node) {
    for (int32_t t = trie.tok_begin[node]; t < trie.tok_begin[node + 1]; ++t) out.uncertain.push_back(trie.ids[t]);
  }
  void uncertain_subtree(int32_t node) {
    for (int32_t n = node; n < trie.end[node]; ++n) uncertain(n);
  }
};

void finish(const Vocabulary& vocab, TableBuilder& b) {
  TokenTable& out = b.out;
  std::sort(b.accepted.begin(), b.accepted.end());
  out.accepted = static_cast<int64_t>(b.accepted.size());
  bool dense = out.body || out.accepted * 32 >= vocab.mask_size();
  if (dense) {
    out.bits.assign(vocab.mask_words(), 0);
    for (int32_t id : b.accepted) out.bits[id >> 5] |= 1u << (id & 31);
  } else {
    out.ids = std::move(b.accepted);
  }
}

}  // namespace

void compute_table(const Fsm& fsm, const Vocabulary& vocab, const StepperLimits& limits, int32_t node,
                   TokenTable& out) {
  const Vocabulary::Trie& trie = vocab.trie();
  out = TokenTable{};
  out.body = fsm.rule_is_body[fsm.nodes[node].rule] != 0;
  if (out.body) out.kmin.assign(vocab.size(), 255);
  TableBuilder b{trie, out, {}};
  StepperLimits walk_limits = limits;
  walk_limits.max_depth = std::max(limits.max_depth, 4096);  // the real depth is checked at run time
  LevelWalker walker(fsm, walk_limits, std::max(1, trie.max_depth));
  CfgSet& root = walker.root();
  root.clear();
  root.pool.push_back(Elem{node, 0});
  root.cfgs.push_back(Cfg{kUnknown, 0, 1, 0, 0});
  walker.reset();
  for (int32_t i = 1; i < trie.size();) {
    int d = trie.depth[i];
    if (d == 1 && !fsm.has_byte(node, trie.byte[i])) {
      i = trie.end[i];
      continue;
    }
    const CfgSet& cur = walker.advance(d, trie.byte[i]);
    if (cur.empty()) {
      if (walker.escaped(d)) b.uncertain_subtree(i);
      i = trie.end[i];
      continue;
    }
    int k = 256;
    bool guessed = walker.escaped(d);
    for (const Cfg& c : cur.cfgs) {
      if (c.guess == 0) k = std::min<int>(k, c.k);
      guessed = guessed || c.guess != 0;
    }
    if (k < 256) {
      b.accept(i, static_cast<uint8_t>(std::min(k, 254)));
      // A repetition body's token that a low count refuses may still fit by leaving the repetition.
      if (k > 0 && guessed) b.uncertain(i);
    } else {
      b.uncertain(i);
    }
    ++i;
  }
  finish(vocab, b);
}

}  // namespace tk::grammar
