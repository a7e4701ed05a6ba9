// CompiledGrammar::compile and the lazily built token tables. Lazy by default because a large
// schema has thousands of FSM nodes of which one generation visits a few dozen; the tables are
// kept, so a grammar cached by the server pays for each node once.
#include <algorithm>
#include <chrono>
#include <thread>

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
  });
  return tables[node];
}

// Workers take nodes from a shared counter; table() is once-guarded, so they never collide.
static void fill_tables(const CompiledGrammarImpl& impl, int threads, const std::atomic<bool>* stop = nullptr) {
  const auto n = static_cast<int32_t>(impl.fsm.nodes.size());
  std::atomic<int32_t> next{0};
  auto work = [&] {
    for (int32_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) {
      if (stop && stop->load(std::memory_order_relaxed)) return;
      if (impl.fsm.nodes[i].bytes_count > 0) impl.table(i);
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
  impl->tables = std::make_unique<TokenTable[]>(n);
  for (const FsmNode& node : impl->fsm.nodes) impl->tables_total += node.bytes_count > 0 ? 1 : 0;
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
