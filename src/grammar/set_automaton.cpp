// SetAutomaton (see set_automaton.h).
#include "set_automaton.h"

#include <algorithm>
#include <climits>
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
  run_at_.clear();
  runs_.clear();
  uniform_.clear();
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
  run_at_.push_back(kRunUnknown);
  uniform_.push_back(kRunUnknown);
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

int32_t SetAutomaton::compute_next(int32_t s, uint8_t b) {
  stepper_.step(closed(s), b, scratch_);
  int32_t t = intern(scratch_);
  trans_[static_cast<size_t>(s) * 256 + b] = t;
  return t;
}

// NOTE: for a plain state (one parse, its top a node with only byte edges) the step over a byte
// that exactly one edge accepts is that parse with the edge's target on top, whatever the byte:
// every byte of one target leads to the same raw set, hence the same state.
constexpr int32_t kRunAskedOnce = -4;

const SetAutomaton::Run* SetAutomaton::first_runs(int32_t s) {
  if (run_at_[s] == kRunUnknown) {
    run_at_[s] = kRunAskedOnce;
    return nullptr;
  }
  return compute_run(s);
}

const SetAutomaton::Run* SetAutomaton::compute_run(int32_t s) {
  if (run_at_[s] == kRunUnknown || run_at_[s] == kRunAskedOnce) {
    run_at_[s] = kRunNone;
    if (stepper_.is_plain(raws_[s])) {
      const Cfg& c = raws_[s].cfgs[0];
      const FsmNode& n = fsm_.nodes[stepper_.top(c.base, raws_[s].pool.data() + c.off, c.len).id];
      int32_t target[256];
      std::fill(target, target + 256, -1);
      for (uint32_t k = 0; k < n.bytes_count; ++k) {
        const ByteEdge& e = fsm_.bytes[n.bytes_begin + k];
        for (int b = e.lo; b <= e.hi; ++b) target[b] = target[b] == -1 ? e.target : -2;  // -2: several edges
      }
      // The target reached by the most bytes (runs of equal targets: edges are sorted by byte).
      int32_t best = -1, best_count = 0;
      for (int b = 0; b < 256;) {
        int e = b;
        while (e < 256 && target[e] == target[b]) ++e;
        if (target[b] >= 0) {
          int32_t count = 0;
          for (int x = b; x < 256; ++x) count += target[x] == target[b];
          if (count > best_count) best = target[b], best_count = count;
        }
        b = e;
      }
      if (best_count > 1) {
        Run r{{0, 0, 0, 0}, kNoState};
        int first = -1;
        for (int b = 0; b < 256; ++b) {
          if (target[b] != best) continue;
          r.bytes[b >> 6] |= uint64_t{1} << (b & 63);
          if (first < 0) first = b;
        }
        r.next = next(s, static_cast<uint8_t>(first));  // may grow raws_: `c` is not used after this
        run_at_[s] = static_cast<int32_t>(runs_.size());
        runs_.push_back(r);
      }
    }
  }
  return run_at_[s] == kRunNone ? nullptr : &runs_[run_at_[s]];
}

int32_t SetAutomaton::uniform_depth(int32_t s) {
  if (uniform_[s] != kRunUnknown) return uniform_[s];
  // Follow the chain of runs over s's bytes until it breaks, loops or reaches a known state;
  // then assign the depths backwards. A state met twice is a loop: unbounded.
  constexpr int32_t kVisiting = -3;
  std::vector<int32_t>& chain = chain_;
  chain.clear();
  int32_t tail = 0;  // the depth past the chain's last state
  const Run* first = compute_run(s);
  uint64_t bytes[4] = {0, 0, 0, 0};
  if (first) std::copy(first->bytes, first->bytes + 4, bytes);
  for (int32_t cur = s;;) {
    if (uniform_[cur] == kVisiting) {
      tail = INT32_MAX;
      break;
    }
    const Run* r = compute_run(cur);
    if (!r || !std::equal(r->bytes, r->bytes + 4, bytes)) {  // (not for s: its bytes are `bytes`)
      if (cur == s) uniform_[s] = 0;
      break;  // cur adds no level over these bytes
    }
    if (uniform_[cur] != kRunUnknown) {  // known, over the same bytes
      tail = uniform_[cur];
      break;
    }
    if (!info_[r->next].decides_like(info_[cur])) {
      uniform_[cur] = 0;
      break;
    }
    uniform_[cur] = kVisiting;
    chain.push_back(cur);
    cur = r->next;
  }
  // chain[j] is followed by chain[j + 1] (or by the state whose depth is `tail`).
  for (size_t j = chain.size(); j-- > 0;) {
    tail = tail == INT32_MAX ? INT32_MAX : tail + 1;
    uniform_[chain[j]] = tail;
  }
  return uniform_[s];
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
