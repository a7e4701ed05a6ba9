// Matcher: the run-time half. The parse state is a set of byte-ready stack tops, each a frame
// interned in this matcher's arena (identical stacks are one id, so the set is small and a state
// seen before is recognised). The mask is the union, over the tops, of each node's precomputed
// table plus its uncertain tokens checked against the real stack (remembered per frame, so a long
// string or a repeated array element pays the check once). Rollback restores an earlier top set:
// frames are immutable, so nothing else needs undoing.
#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "compiled.h"
#include "mask_ops.h"

namespace tk::grammar {

struct FrameKey {
  int32_t id, count, parent;
  bool operator==(const FrameKey&) const = default;
};
struct FrameKeyHash {
  size_t operator()(const FrameKey& k) const {
    uint64_t h = (uint64_t(uint32_t(k.id)) << 32) ^ uint32_t(k.count);
    h ^= uint64_t(uint32_t(k.parent)) * 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

struct MatcherState {
  const CompiledGrammarImpl& g;
  std::vector<Frame> frames;
  std::unordered_map<FrameKey, int32_t, FrameKeyHash> intern;
  struct Snapshot {
    std::vector<int32_t> ready;
    bool completed = false, terminated = false;
  };
  Snapshot cur;
  std::vector<Snapshot> history;
  Status status;
  Stepper stepper;
  SetAutomaton sets;  // the check's walk; cleared per check to bound its memory
  std::vector<int32_t> level;
  CfgSet a, b;
  std::unordered_map<int32_t, std::vector<int32_t>> checked;  // frame -> uncertain tokens that pass

  explicit MatcherState(const CompiledGrammarImpl& impl)
      : g(impl), stepper(impl.fsm, impl.stepper_limits),
        sets(impl.fsm, impl.stepper_limits, 1024), level(std::max(1, impl.vocab->trie().max_depth) + 1) {
    stepper.set_frames(&frames);
    sets.set_frames(&frames);
  }

  int32_t intern_frame(Elem e, int32_t parent) {
    FrameKey key{e.id, e.count, parent};
    auto [it, fresh] = intern.emplace(key, static_cast<int32_t>(frames.size()));
    if (fresh) frames.push_back(Frame{e, parent, parent >= 0 ? frames[parent].depth + 1 : 1});
    return it->second;
  }

  // Closed parse set -> top frames.
  Snapshot adopt(const CfgSet& closed) {
    Snapshot s;
    s.completed = closed.completed;
    for (const Cfg& c : closed.cfgs) {
      int32_t f = c.base;
      for (uint32_t i = 0; i < c.len; ++i) f = intern_frame(closed.pool[c.off + i], f);
      s.ready.push_back(f);
    }
    std::sort(s.ready.begin(), s.ready.end());
    s.ready.erase(std::unique(s.ready.begin(), s.ready.end()), s.ready.end());
    return s;
  }

  void start() {
    a.clear();
    a.pool.push_back(Elem{g.fsm.rule_start[g.fsm.root], 0});
    a.cfgs.push_back(Cfg{kBottom, 0, 1, 0, 0});
    stepper.close(a, b);
    cur = adopt(b);
  }

  Status bound_error() const {
    return invalid_argument("grammar: the parse passed its bounds (nesting deeper than " +
                            std::to_string(g.limits.max_stack_depth) + " or more than " +
                            std::to_string(g.limits.max_parallel_parses) + " parallel parses)");
  }

  bool feed(std::string_view bytes) {
    if (cur.terminated || !status.ok()) return false;
    a.clear();
    for (int32_t f : cur.ready) a.cfgs.push_back(Cfg{f, 0, 0, 0, 0});
    for (size_t i = 0; i < bytes.size(); ++i) {
      if (i > 0) stepper.close(b, a);
      stepper.step(a, static_cast<uint8_t>(bytes[i]), b);
      if (b.overflow) status = bound_error();
      if (b.empty() || b.overflow) return false;
    }
    stepper.close(b, a);
    if (a.overflow) {
      status = bound_error();
      return false;
    }
    history.push_back(cur);
    cur = adopt(a);
    return true;
  }

  const std::vector<int32_t>& check(int32_t frame, const TokenTable& table, int32_t limit);
};

// The uncertain tokens of frame's node, run against the real stack; shared prefixes are walked once.
const std::vector<int32_t>& MatcherState::check(int32_t frame, const TokenTable& table, int32_t limit) {
  auto it = checked.find(frame);
  if (it != checked.end()) return it->second;
  const std::vector<int32_t>& tokens = table.uncertain;
  std::vector<int32_t> pass;
  sets.clear();
  CfgSet root;
  root.cfgs.push_back(Cfg{frame, 0, 0, 0, 0});
  level[0] = sets.intern(root);
  const Vocabulary& vocab = *g.vocab;
  const std::string* prev = nullptr;
  size_t prev_dead = SIZE_MAX;  // prev's bytes died at this level (SIZE_MAX: survived)
  for (int32_t id : tokens) {
    if (table.body && table.kmin[id] <= limit) continue;  // the count allows it: already in the mask
    const std::string& s = vocab.token_bytes(id);
    size_t l = 0;
    if (prev) {
      while (l < s.size() && l < prev->size() && s[l] == (*prev)[l]) ++l;
    }
    size_t dead = SIZE_MAX;
    if (prev && l >= prev_dead) {
      dead = prev_dead;
    } else if (prev && l == s.size() && s.size() == prev->size()) {
      dead = prev_dead;
    } else {
      for (size_t d = l + 1; d <= s.size(); ++d) {
        if (sets.full()) sets.compact(level.data(), d);
        level[d] = sets.next(level[d - 1], static_cast<uint8_t>(s[d - 1]));
        if (sets.info(level[d]).empty) {
          dead = d;
          break;
        }
      }
    }
    if (dead == SIZE_MAX) pass.push_back(id);
    prev = &s;
    prev_dead = dead;
  }
  return checked.emplace(frame, std::move(pass)).first->second;
}

Matcher::Matcher(std::shared_ptr<const CompiledGrammar> grammar)
    : grammar_(std::move(grammar)), state_(std::make_unique<MatcherState>(grammar_->impl())) {
  state_->start();
}
Matcher::~Matcher() = default;
Matcher::Matcher(Matcher&&) noexcept = default;
Matcher& Matcher::operator=(Matcher&&) noexcept = default;

bool Matcher::fill_next_token_bitmask(uint32_t* bitmask) {
  MatcherState& s = *state_;
  const CompiledGrammarImpl& g = s.g;
  const Vocabulary& vocab = *g.vocab;
  const int32_t words = vocab.mask_words();
  std::memset(bitmask, 0, sizeof(uint32_t) * words);
  if (!s.cur.terminated && s.status.ok()) {
    std::vector<std::pair<int32_t, int32_t>> applied;  // (node, limit) already or-ed in
    for (int32_t f : s.cur.ready) {
      const Frame& fr = s.frames[f];
      int32_t node = fr.elem.id;
      g.focus.store(node, std::memory_order_relaxed);  // a filling worker goes here next
      const TokenTable& t = g.table(node);
      int32_t limit = 254;
      if (t.body) {
        const Elem& counter = s.frames[fr.parent].elem;
        const CallEdge& e = g.fsm.calls[~counter.id];
        if (e.max != kUnboundedCount) limit = std::clamp(e.max - counter.count - 1, 0, 254);
      }
      std::pair<int32_t, int32_t> key{node, limit};
      if (std::find(applied.begin(), applied.end(), key) == applied.end()) {
        applied.push_back(key);
        if (t.body && limit < t.max_k) {
          or_kmin_at_most(bitmask, t.kmin.data(), vocab.size(), static_cast<uint8_t>(limit));
        } else if (!t.bits.empty()) {
          or_words(bitmask, t.bits.data(), words);
        } else {
          for (int32_t id : t.ids) bitmask[id >> 5] |= 1u << (id & 31);
        }
      }
      for (int32_t id : s.check(f, t, limit)) bitmask[id >> 5] |= 1u << (id & 31);
    }
  }
  if (s.cur.completed || s.cur.terminated) {
    for (int32_t id : vocab.eos_ids()) bitmask[id >> 5] |= 1u << (id & 31);
  }
  return any_bit(bitmask, words);
}

bool Matcher::accept_token(int32_t token_id) {
  MatcherState& s = *state_;
  const Vocabulary& vocab = *s.g.vocab;
  if (token_id < 0 || token_id >= vocab.mask_size() || s.cur.terminated || !s.status.ok()) return false;
  const auto& eos = vocab.eos_ids();
  if (std::find(eos.begin(), eos.end(), token_id) != eos.end()) {
    if (!s.cur.completed) return false;
    s.history.push_back(s.cur);
    s.cur.terminated = true;
    s.cur.ready.clear();
    return true;
  }
  if (token_id >= vocab.size() || vocab.is_special(token_id) || vocab.token_bytes(token_id).empty()) return false;
  return s.feed(vocab.token_bytes(token_id));
}

bool Matcher::accept_bytes(std::string_view bytes) {
  if (bytes.empty()) return !state_->cur.terminated;
  return state_->feed(bytes);
}

bool Matcher::rollback(int n) {
  MatcherState& s = *state_;
  if (n < 0 || static_cast<size_t>(n) > s.history.size()) return false;
  for (int i = 0; i < n; ++i) {
    s.cur = std::move(s.history.back());
    s.history.pop_back();
  }
  return true;
}

void Matcher::reset() {
  state_->history.clear();
  state_->status = Status();
  state_->start();
}

bool Matcher::can_end() const { return state_->cur.completed && !state_->cur.terminated; }
bool Matcher::must_end() const { return can_end() && state_->cur.ready.empty(); }
bool Matcher::is_terminated() const { return state_->cur.terminated; }
int Matcher::num_accepted() const { return static_cast<int>(state_->history.size()); }
const Status& Matcher::status() const { return state_->status; }

}  // namespace tk::grammar
