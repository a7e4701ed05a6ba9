// CompiledGrammarImpl: the FSM, the vocabulary it was compiled for, and the token tables, filled
// lazily (each under its own once-flag) and then shared read-only by every matcher on any thread.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "tables.h"

namespace tk::grammar {

struct CompiledGrammarImpl {
  Fsm fsm;
  std::shared_ptr<const Vocabulary> vocab;
  Limits limits;
  StepperLimits stepper_limits;
  std::unique_ptr<std::once_flag[]> once;
  std::unique_ptr<TokenTable[]> tables;
  mutable std::atomic<int64_t> tables_done{0}, uncertain_total{0}, table_ns{0}, table_bytes{0};
  int64_t tables_total = 0;  // nodes with byte edges
  // The order precompute_tables fills them in: breadth first from the root's start, so that a
  // worker filling tables while a fresh matcher runs is ahead of it rather than elsewhere.
  std::vector<int32_t> fill_order;
  // Where a parse can go next from each node (byte and call edges, a rule's return to where its
  // callers continue): CSR over nodes. With `focus`, the node whose table a matcher asked for
  // last, the filling takes the nodes nearest to it first.
  std::vector<int32_t> succ_begin, succ;
  mutable std::atomic<int32_t> focus{-1};
  std::unique_ptr<std::atomic<uint8_t>[]> done;  // per node: its table is computed
  // Up to `limit` nodes without a table, breadth first from `from` (excluded).
  std::vector<int32_t> nearest_missing(int32_t from, size_t limit) const;
  // Warm walk automata shared by successive table computations (one per concurrent walk, at most
  // two kept); dropped once every table is done, since they hold a few MB each.
  mutable std::mutex pool_mu;
  mutable std::vector<std::unique_ptr<SetAutomaton>> pool;

  const TokenTable& table(int32_t node) const;
};

}  // namespace tk::grammar
