// SetAutomaton (see set_automaton.h).
#include "set_automaton.h"

#include <algorithm>
#include <cstring>

namespace tk::grammar {
namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

}  // namespace

SetAutomaton::SetAutomaton(const Fsm& fsm, const StepperLimits& limits, size_t max_states)
    : fsm_(fsm), stepper_(fsm, limits), max_states_(std::max<size_t>(max_states, 64)) {}

void SetAutomaton::clear() {
  raws_.clear();
  closeds_.clear();
  closed_state_.clear();
  info_.clear();
  trans_.clear();
  by_hash_.clear();
  same_hash_next_.clear();
}

uint64_t SetAutomaton::hash(const CfgSet& set) const {
  uint64_t h = mix(set.cfgs.size(), (uint64_t{set.escaped} << 1) | uint64_t{set.overflow});
  for (const Cfg& c : set.cfgs) {
    h = mix(h, (uint64_t(uint32_t(c.base)) << 32) | (uint64_t{c.len} << 16) | (uint64_t{c.guess} << 8) | c.k);
    for (uint32_t i = 0; i < c.len; ++i) {
      const Elem& e = set.pool[c.off + i];
      h = mix(h, (uint64_t(uint32_t(e.id)) << 32) | uint32_t(e.count));
    }
  }
  return h;
}

bool SetAutomaton::same(const CfgSet& a, const CfgSet& b) const {
  if (a.cfgs.size() != b.cfgs.size() || a.escaped != b.escaped || a.overflow != b.overflow) return false;
  for (size_t i = 0; i < a.cfgs.size(); ++i) {
    const Cfg &x = a.cfgs[i], &y = b.cfgs[i];
    if (x.base != y.base || x.len != y.len || x.guess != y.guess || x.k != y.k) return false;
    if (x.len > 0 && std::memcmp(a.pool.data() + x.off, b.pool.data() + y.off, x.len * sizeof(Elem)) != 0) return false;
  }
  return true;
}

int32_t SetAutomaton::intern(const CfgSet& raw) {
  uint64_t h = hash(raw);
  auto it = by_hash_.find(h);
  int32_t head = it == by_hash_.end() ? kNoState : it->second;
  for (int32_t s = head; s != kNoState; s = same_hash_next_[s]) {
    if (same(raws_[s], raw)) return s;
  }
  auto id = static_cast<int32_t>(raws_.size());
  raws_.push_back(raw);
  closeds_.emplace_back();
  closed_state_.push_back(0);
  same_hash_next_.push_back(head);
  by_hash_[h] = id;
  trans_.resize(trans_.size() + 256, kNoState);
  Info in;
  in.empty = raw.cfgs.empty();
  in.escaped = raw.escaped || raw.overflow;
  in.guessed = in.escaped;
  for (const Cfg& c : raw.cfgs) {
    if (c.guess == 0) in.exact_k = std::min<int16_t>(in.exact_k, c.k);
    in.guessed = in.guessed || c.guess != 0;
  }
  info_.push_back(in);
  return id;
}

const CfgSet& SetAutomaton::closed(int32_t s) {
  if (closed_state_[s] == 0) {
    if (stepper_.is_plain(raws_[s])) {
      closed_state_[s] = 2;
    } else {
      stepper_.close(raws_[s], closeds_[s]);
      closed_state_[s] = 1;
    }
  }
  return closed_state_[s] == 2 ? raws_[s] : closeds_[s];
}

int32_t SetAutomaton::next(int32_t s, uint8_t b) {
  int32_t t = trans_[static_cast<size_t>(s) * 256 + b];
  if (t != kNoState) return t;
  stepper_.step(closed(s), b, scratch_);
  t = intern(scratch_);
  trans_[static_cast<size_t>(s) * 256 + b] = t;
  return t;
}

void SetAutomaton::compact(int32_t* keep, size_t n) {
  std::vector<CfgSet> raws;
  std::vector<int32_t> ids;  // old id of each kept state, deduplicated
  for (size_t i = 0; i < n; ++i) {
    auto at = std::find(ids.begin(), ids.end(), keep[i]);
    if (at == ids.end()) {
      ids.push_back(keep[i]);
      raws.push_back(std::move(raws_[keep[i]]));
      keep[i] = static_cast<int32_t>(ids.size() - 1);
    } else {
      keep[i] = static_cast<int32_t>(at - ids.begin());
    }
  }
  clear();
  for (const CfgSet& r : raws) intern(r);  // distinct sets: ids come back in order
}

}  // namespace tk::grammar
