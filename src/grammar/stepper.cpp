// The pushdown closure and byte step (see stepper.h). Termination: without left recursion
// (rejected at compile time) a closure only pushes a bounded number of frames, the visited set
// stops nullable loops, and a repetition whose body just matched nothing may leave but not loop
// again — so nullable bodies cannot spin a counter.
#include "stepper.h"

#include <algorithm>
#include <cstring>

namespace tk::grammar {
namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  return h;
}

bool same_stack(const Elem* a, const Elem* b, uint32_t len) {
  return len == 0 || std::memcmp(a, b, len * sizeof(Elem)) == 0;
}

}  // namespace

uint64_t Stepper::hash_item(int32_t base, const Elem* local, uint32_t len, uint32_t extra) const {
  uint64_t h = mix(static_cast<uint32_t>(base), (uint64_t{len} << 32) | extra);
  for (uint32_t i = 0; i < len; ++i) h = mix(h, (uint64_t(uint32_t(local[i].id)) << 32) | uint32_t(local[i].count));
  return h;
}

bool Stepper::is_plain(const CfgSet& set) const {
  if (set.cfgs.size() != 1) return false;
  const Cfg& c = set.cfgs[0];
  Elem t = top(c.base, set.pool.data() + c.off, c.len);
  if (t.id < 0) return false;
  const FsmNode& n = fsm_.nodes[t.id];
  return n.calls_count == 0 && !n.final && n.bytes_count > 0;
}

Stepper::Item Stepper::copy_item(const Item& it, uint32_t keep) {
  Item x = it;
  x.off = static_cast<uint32_t>(spool_.size());
  x.len = keep;
  for (uint32_t i = 0; i < keep; ++i) spool_.push_back(spool_[it.off + i]);
  return x;
}

Stepper::Item Stepper::replace_top(const Item& it, Elem e) {
  Item x;
  if (it.len > 0) {
    x = copy_item(it, it.len - 1);
  } else {
    x = it;
    x.base = (*frames_)[it.base].parent;
    x.off = static_cast<uint32_t>(spool_.size());
    x.len = 0;
  }
  spool_.push_back(e);
  ++x.len;
  x.min_new = std::min(x.min_new, depth(x));
  return x;
}

bool Stepper::push(Item& it, Elem e, CfgSet& out) {
  if (depth(it) + 1 > limits_.max_depth) {
    out.overflow = true;
    return false;
  }
  if (it.off + it.len != spool_.size()) it = copy_item(it, it.len);
  spool_.push_back(e);
  ++it.len;
  it.min_new = std::min(it.min_new, depth(it));
  return true;
}

Stepper::Item Stepper::pop(const Item& it) const {
  Item x = it;
  if (x.len > 0) {
    --x.len;
  } else if (x.base >= 0) {
    x.base = (*frames_)[x.base].parent;
  }
  return x;
}

bool Stepper::first_visit(const Item& it) {
  uint32_t extra = (uint32_t{it.guess} << 24) ^ (uint32_t{it.k} << 16) ^ static_cast<uint32_t>(it.min_new);
  uint64_t h = hash_item(it.base, spool_.data() + it.off, it.len, extra);
  int32_t hit = visited_.find(h, [&](int32_t idx) {
    const Item& s = seen_[idx];
    return s.base == it.base && s.len == it.len && s.guess == it.guess && s.k == it.k && s.min_new == it.min_new &&
           same_stack(spool_.data() + s.off, spool_.data() + it.off, it.len);
  });
  if (hit >= 0) return false;
  visited_.insert(h, static_cast<int32_t>(seen_.size()));
  seen_.push_back(it);
  return true;
}

void Stepper::emit(const Item& it, CfgSet& out) {
  const Elem* local = spool_.data() + it.off;
  uint64_t h = hash_item(it.base, local, it.len, (uint32_t{it.guess} << 8) | it.k);
  int32_t hit = out_index_.find(h, [&](int32_t i) {
    const Cfg& c = out.cfgs[i];
    return c.base == it.base && c.len == it.len && c.guess == it.guess && c.k == it.k &&
           same_stack(out.pool.data() + c.off, local, it.len);
  });
  if (hit >= 0) return;
  if (static_cast<int>(out.cfgs.size()) >= limits_.max_cfgs) {
    out.overflow = true;
    return;
  }
  Cfg c{it.base, static_cast<uint32_t>(out.pool.size()), it.len, it.guess, it.k};
  out.pool.insert(out.pool.end(), local, local + it.len);
  out_index_.insert(h, static_cast<int32_t>(out.cfgs.size()));
  out.cfgs.push_back(c);
}

void Stepper::close(const CfgSet& in, CfgSet& out) {
  out.clear();
  out_index_.clear();
  spool_.clear();
  work_.clear();
  visited_.clear();
  seen_.clear();
  out.completed = in.completed;
  out.escaped = in.escaped;
  out.overflow = in.overflow;
  for (const Cfg& c : in.cfgs) {
    Item it{c.base, static_cast<uint32_t>(spool_.size()), c.len, c.guess, c.k, INT32_MAX};
    spool_.insert(spool_.end(), in.pool.begin() + c.off, in.pool.begin() + c.off + c.len);
    work_.push_back(it);
  }
  while (!work_.empty()) {
    Item it = work_.back();
    work_.pop_back();
    if (work_.size() + seen_.size() > static_cast<size_t>(limits_.max_cfgs) * 8) {
      out.overflow = true;
      return;
    }
    if (first_visit(it)) expand(it, out);
  }
}

void Stepper::expand(const Item& it, CfgSet& out) {
  Elem t = item_top(it);
  const FsmNode& n = fsm_.nodes[t.id];
  if (n.bytes_count > 0) emit(it, out);
  for (uint32_t k = 0; k < n.calls_count; ++k) {
    int32_t ci = static_cast<int32_t>(n.calls_begin + k);
    const CallEdge& c = fsm_.calls[ci];
    if (c.repeat) {
      decide(replace_top(it, Elem{~ci, 0}), false, out);
      continue;
    }
    Item x = fsm_.nodes[c.target].is_exit() ? pop(it) : replace_top(it, Elem{c.target, 0});
    if (push(x, Elem{fsm_.rule_start[c.rule], 0}, out)) work_.push_back(x);
  }
  if (n.final) complete(it, out);
}

// The top node is final: its rule is done. Pop to the caller (or into a repetition's frame).
void Stepper::complete(const Item& it, CfgSet& out) {
  Item x = pop(it);
  if (x.len == 0 && x.base == kBottom) {
    out.completed = true;
    return;
  }
  if (x.len == 0 && x.base == kUnknown) {
    guess(x, fsm_.nodes[item_top(it).id].rule, it, out);
    return;
  }
  Elem t = item_top(x);
  if (t.id >= 0) {
    work_.push_back(x);
    return;
  }
  const CallEdge& e = fsm_.calls[~t.id];
  bool fresh = depth(x) >= x.min_new;  // the frame was (re)made in this closure: the body matched nothing
  int32_t count = t.count;
  if (count >= 0) {
    ++count;
    if (e.max == kUnboundedCount) count = std::min(count, e.min);  // beyond min, counting is moot
  }
  decide(replace_top(x, Elem{t.id, count}), fresh, out);
}

// A counting frame on top: start another iteration and/or leave the repetition.
void Stepper::decide(const Item& it, bool fresh, CfgSet& out) {
  Elem t = item_top(it);
  const CallEdge& e = fsm_.calls[~t.id];
  bool unknown = t.count < 0;
  bool can_loop = !fresh && (unknown || e.max == kUnboundedCount || t.count < e.max);
  bool can_exit = fresh || unknown || t.count >= e.min;
  if (can_loop) {
    Item x = it;
    if (push(x, Elem{fsm_.rule_start[e.rule], 0}, out)) work_.push_back(x);
  }
  if (can_exit) work_.push_back(replace_top(it, Elem{e.target, 0}));
}

// Precomputation only: rule `rule` finished at the bottom of what is known. An exact parse of a
// repetition body counts another iteration (k); everything else continues in each place the
// rule is called from, marked as a guess (it may not be the real caller).
void Stepper::guess(const Item& empty, int32_t rule, const Item& popped, CfgSet& out) {
  if (popped.guess == 0 && fsm_.rule_is_body[rule]) {
    if (empty.min_new > 0) {  // the body matched something since the bottom frame last looped
      Item x = empty;
      x.k = static_cast<uint8_t>(std::min(254, x.k + 1));
      x.min_new = 0;
      x.off = static_cast<uint32_t>(spool_.size());
      spool_.push_back(Elem{fsm_.rule_start[rule], 0});
      x.len = 1;
      work_.push_back(x);
    }
    for (int32_t ci : fsm_.callers[rule]) {  // leaving the repetition is a guess (the count is unknown)
      Item x = empty;
      x.guess = 1;
      x.off = static_cast<uint32_t>(spool_.size());
      x.len = 1;
      spool_.push_back(Elem{fsm_.calls[ci].target, 0});
      work_.push_back(x);
    }
    return;
  }
  int g = popped.guess + 1;
  if (g > limits_.max_guess) {
    out.escaped = true;
    return;
  }
  for (int32_t ci : fsm_.callers[rule]) {
    const CallEdge& c = fsm_.calls[ci];
    Item x = empty;
    x.guess = static_cast<uint8_t>(g);
    x.off = static_cast<uint32_t>(spool_.size());
    x.len = 1;
    x.min_new = 1;
    if (c.repeat) {
      spool_.push_back(Elem{~ci, -1});
      decide(x, false, out);
    } else {
      spool_.push_back(Elem{c.target, 0});
      work_.push_back(x);
    }
  }
}

void Stepper::step(const CfgSet& closed, uint8_t b, CfgSet& out) {
  out.clear();
  out_index_.clear();
  out.overflow = closed.overflow;
  out.escaped = closed.escaped;
  for (const Cfg& c : closed.cfgs) {
    const Elem* local = closed.pool.data() + c.off;
    Elem t = top(c.base, local, c.len);
    if (!fsm_.has_byte(t.id, b)) continue;
    const FsmNode& n = fsm_.nodes[t.id];
    for (uint32_t k = 0; k < n.bytes_count; ++k) {
      const ByteEdge& e = fsm_.bytes[n.bytes_begin + k];
      if (b < e.lo) break;
      if (b > e.hi) continue;
      Cfg nc = c;
      nc.off = static_cast<uint32_t>(out.pool.size());
      if (c.len > 0) {
        out.pool.insert(out.pool.end(), local, local + c.len - 1);
      } else {
        nc.base = (*frames_)[c.base].parent;
        nc.len = 1;
      }
      out.pool.push_back(Elem{e.target, 0});
      if (!out.cfgs.empty()) {  // several parses or NFA edges: keep the set a set
        if (out.cfgs.size() == 1) {  // the first one is indexed only once a second one comes
          const Cfg& f = out.cfgs[0];
          out_index_.insert(hash_item(f.base, out.pool.data() + f.off, f.len, (uint32_t{f.guess} << 8) | f.k), 0);
        }
        const Elem* mine = out.pool.data() + nc.off;
        uint64_t h = hash_item(nc.base, mine, nc.len, (uint32_t{nc.guess} << 8) | nc.k);
        int32_t hit = out_index_.find(h, [&](int32_t i) {
          const Cfg& o = out.cfgs[i];
          return o.base == nc.base && o.len == nc.len && o.guess == nc.guess && o.k == nc.k &&
                 same_stack(out.pool.data() + o.off, mine, nc.len);
        });
        if (hit >= 0) {
          out.pool.resize(nc.off);
          continue;
        }
        out_index_.insert(h, static_cast<int32_t>(out.cfgs.size()));
      }
      out.cfgs.push_back(nc);
    }
  }
}

}  // namespace tk::grammar
