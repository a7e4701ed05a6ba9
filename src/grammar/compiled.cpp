// CompiledGrammar::compile and the lazily built token tables. Lazy by default because a large
// schema has thousands of FSM nodes of which one generation visits a few dozen; the tables are
// kept, so a grammar cached by the server pays for each node once.
#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_set>

#include "compiled.h"

namespace tk::grammar {

const TokenTable& CompiledGrammarImpl::table(int32_t node) const {
  std::call_once(once[node], [&] {
    auto t0 = std::chrono::steady_clock::now();
    std::unique_ptr<SetAutomaton> sets;
    {
      std::lock_guard lock(pool_mu);
      if (!pool.empty()) {
        sets = std::move(pool.back());
        pool.pop_back();
      }
    }
    if (!sets) sets = std::make_unique<SetAutomaton>(fsm, table_walk_limits(stepper_limits), 2048);
    compute_table(fsm, *vocab, *sets, node, tables[node]);
    bool all_done = tables_done.fetch_add(1, std::memory_order_relaxed) + 1 >= tables_total;
    {
      std::lock_guard lock(pool_mu);
      if (all_done) {
        pool.clear();
      } else if (pool.size() < 2) {
        pool.push_back(std::move(sets));
      }
    }
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    const TokenTable& t = tables[node];
    uncertain_total.fetch_add(static_cast<int64_t>(t.uncertain.size()), std::memory_order_relaxed);
    table_bytes.fetch_add(static_cast<int64_t>(4 * (t.bits.size() + t.ids.size() + t.uncertain.size()) + t.kmin.size()),
                          std::memory_order_relaxed);
    table_ns.fetch_add(ns, std::memory_order_relaxed);
    done[node].store(1, std::memory_order_release);
  });
  return tables[node];
}

std::vector<int32_t> CompiledGrammarImpl::nearest_missing(int32_t from, size_t limit) const {
  std::vector<int32_t> out;
  if (from < 0) return out;
  constexpr size_t kMaxVisits = 4096;  // a bound on the search, not on the grammar
  std::vector<int32_t> queue = {from};
  std::unordered_set<int32_t> seen = {from};  // not a vector over every node: grammars can be large
  for (size_t head = 0; head < queue.size() && queue.size() < kMaxVisits && out.size() < limit; ++head) {
    int32_t x = queue[head];
    if (x != from && fsm.nodes[x].bytes_count > 0 && !done[x].load(std::memory_order_acquire)) out.push_back(x);
    for (int32_t k = succ_begin[x]; k < succ_begin[x + 1]; ++k) {
      if (seen.insert(succ[k]).second) queue.push_back(succ[k]);
    }
  }
  return out;
}

// Nodes with byte edges, breadth first over byte and call edges from the root's start (a call
// leads to the callee's start and to where the caller continues), then any not reached.
static std::vector<int32_t> breadth_first_order(const Fsm& fsm) {
  const auto n = static_cast<int32_t>(fsm.nodes.size());
  std::vector<uint8_t> seen(n, 0);
  std::vector<int32_t> queue;
  auto visit = [&](int32_t x) {
    if (!seen[x]) seen[x] = 1, queue.push_back(x);
  };
  visit(fsm.rule_start[fsm.root]);
  for (size_t head = 0; head < queue.size(); ++head) {
    const FsmNode& node = fsm.nodes[queue[head]];
    for (uint32_t k = 0; k < node.bytes_count; ++k) visit(fsm.bytes[node.bytes_begin + k].target);
    for (uint32_t k = 0; k < node.calls_count; ++k) {
      const CallEdge& c = fsm.calls[node.calls_begin + k];
      visit(fsm.rule_start[c.rule]);
      visit(c.target);
    }
  }
  for (int32_t x = 0; x < n; ++x) visit(x);
  std::vector<int32_t> order;
  for (int32_t x : queue) {
    if (fsm.nodes[x].bytes_count > 0) order.push_back(x);
  }
  return order;
}

// Successors of every node, as CSR: byte edge targets; for a call, the callee's start and the
// node after the call; for a final node, the nodes after each call of its rule.
static void build_successors(CompiledGrammarImpl& impl) {
  const Fsm& fsm = impl.fsm;
  const auto n = static_cast<int32_t>(fsm.nodes.size());
  impl.succ_begin.assign(n + 1, 0);
  impl.succ.clear();
  for (int32_t x = 0; x < n; ++x) {
    const FsmNode& node = fsm.nodes[x];
    for (uint32_t k = 0; k < node.bytes_count; ++k) impl.succ.push_back(fsm.bytes[node.bytes_begin + k].target);
    for (uint32_t k = 0; k < node.calls_count; ++k) {
      const CallEdge& c = fsm.calls[node.calls_begin + k];
      impl.succ.push_back(fsm.rule_start[c.rule]);
      impl.succ.push_back(c.target);
    }
    if (node.final) {
      for (int32_t ci : fsm.callers[node.rule]) {
        impl.succ.push_back(fsm.calls[ci].target);
        if (fsm.calls[ci].repeat) impl.succ.push_back(fsm.rule_start[node.rule]);  // another iteration
      }
    }
    impl.succ_begin[x + 1] = static_cast<int32_t>(impl.succ.size());
  }
}

// Workers take the nodes nearest to the matchers' focus first, then the rest from a shared
// counter; table() is once-guarded, so they never collide.
static void fill_tables(const CompiledGrammarImpl& impl, int threads, const std::atomic<bool>* stop = nullptr) {
  const auto n = static_cast<int32_t>(impl.fill_order.size());
  std::atomic<int32_t> next{0};
  auto work = [&] {
    std::vector<int32_t> near;
    size_t near_at = 0;
    int32_t near_from = -1;
    for (;;) {
      if (stop && stop->load(std::memory_order_relaxed)) return;
      int32_t focus = impl.focus.load(std::memory_order_relaxed);
      if (focus != near_from) {
        near = impl.nearest_missing(focus, 16);
        near_from = focus;
        near_at = 0;
      }
      int32_t pick = -1;
      while (pick < 0 && near_at < near.size()) {
        int32_t x = near[near_at++];
        if (!impl.done[x].load(std::memory_order_acquire)) pick = x;
      }
      if (pick < 0) {
        int32_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= n) return;
        pick = impl.fill_order[i];
      }
      impl.table(pick);
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
}

Result<std::shared_ptr<const CompiledGrammar>> CompiledGrammar::compile(const Grammar& grammar,
                                                                         std::shared_ptr<const Vocabulary> vocab,
                                                                         const CompileOptions& options) {
  if (grammar.empty()) return invalid_argument("compile: empty grammar");
  if (!vocab) return invalid_argument("compile: no vocabulary");
  TK_ASSIGN_OR_RETURN(Fsm fsm, build_fsm(grammar.ir(), options.limits));
  auto impl = std::make_unique<CompiledGrammarImpl>();
  impl->fsm = std::move(fsm);
  impl->vocab = std::move(vocab);
  impl->limits = options.limits;
  impl->stepper_limits.max_depth = options.limits.max_stack_depth;
  impl->stepper_limits.max_cfgs = options.limits.max_parallel_parses;
  size_t n = impl->fsm.nodes.size();
  impl->once = std::make_unique<std::once_flag[]>(n);
  impl->done = std::make_unique<std::atomic<uint8_t>[]>(n);
  for (size_t i = 0; i < n; ++i) impl->done[i].store(0, std::memory_order_relaxed);
  build_successors(*impl);
  impl->tables = std::make_unique<TokenTable[]>(n);
  impl->fill_order = breadth_first_order(impl->fsm);
  impl->tables_total = static_cast<int64_t>(impl->fill_order.size());
  if (options.precompute) fill_tables(*impl, std::max(1, options.precompute_threads));
  auto out = std::shared_ptr<CompiledGrammar>(new CompiledGrammar());
  out->impl_ = std::move(impl);
  return std::shared_ptr<const CompiledGrammar>(std::move(out));
}

CompiledGrammar::~CompiledGrammar() = default;

void CompiledGrammar::precompute_tables(const std::atomic<bool>* stop, int threads) const {
  fill_tables(*impl_, std::max(1, threads), stop);
}

const Vocabulary& CompiledGrammar::vocabulary() const { return *impl_->vocab; }

CompileStats CompiledGrammar::stats() const {
  CompileStats s;
  const Fsm& f = impl_->fsm;
  s.rules = static_cast<int64_t>(f.rule_start.size());
  s.nodes = static_cast<int64_t>(f.nodes.size());
  s.byte_edges = static_cast<int64_t>(f.bytes.size());
  s.call_edges = static_cast<int64_t>(f.calls.size());
  s.tables = impl_->tables_done.load();
  s.uncertain_tokens = impl_->uncertain_total.load();
  s.table_ms = impl_->table_ns.load() * 1e-6;
  s.table_bytes = impl_->table_bytes.load();
  return s;
}

}  // namespace tk::grammar
