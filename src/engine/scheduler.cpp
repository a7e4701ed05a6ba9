// Continuous batching with chunked prefill. Each step: running sequences first (one decode token,
// or the next prefill chunk), then waiting ones while the token budget, the sequence limit and
// free pages allow. When pages run out, the newest running sequence is preempted: its pages are
// freed and it is recomputed later (prompt and output so far), as vLLM does.
#include <algorithm>

#include "engine/engine.h"

namespace tk {

int ScheduledStep::num_tokens() const {
  int n = 0;
  for (const ScheduledSeq& s : seqs) n += s.num_new;
  return n;
}

void Scheduler::add(Sequence* seq) {
  seq->status = SequenceStatus::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::preempt(Sequence* seq, ScheduledStep& step) {
  seq->pages.release_all(pool_);
  seq->num_computed = 0;
  seq->status = SequenceStatus::kWaiting;
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  waiting_.push_front(seq);
  step.preempted.push_back(seq);
}

// Grows `seq` to `num_tokens`, preempting the newest running sequences as needed. False when
// `seq` itself had to be preempted.
bool Scheduler::reserve_pages(Sequence* seq, int num_tokens, ScheduledStep& step) {
  while (!seq->pages.grow(pool_, num_tokens)) {
    Sequence* victim = running_.back();
    preempt(victim, step);
    if (victim == seq) return false;
  }
  return true;
}

ScheduledStep Scheduler::schedule() {
  ScheduledStep step;
  int budget = config_.max_num_batched_tokens;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    int n = std::min(seq->num_tokens() - seq->num_computed, budget);
    if (!reserve_pages(seq, seq->num_computed + n, step)) break;  // seq was the newest: nothing after it
    step.seqs.push_back({seq, seq->num_computed, n, seq->num_computed + n == seq->num_tokens()});
    budget -= n;
    ++i;
  }
  while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    // A sequence preempted in this very step waits for the next one.
    if (std::find(step.preempted.begin(), step.preempted.end(), seq) != step.preempted.end()) break;
    int n = std::min(seq->num_tokens() - seq->num_computed, budget);
    if (!seq->pages.grow(pool_, seq->num_computed + n)) break;
    waiting_.pop_front();
    seq->status = SequenceStatus::kRunning;
    running_.push_back(seq);
    step.seqs.push_back({seq, seq->num_computed, n, seq->num_computed + n == seq->num_tokens()});
    budget -= n;
  }
  return step;
}

void Scheduler::finish(Sequence* seq) {
  seq->pages.release_all(pool_);
  seq->status = SequenceStatus::kFinished;
  auto r = std::find(running_.begin(), running_.end(), seq);
  if (r != running_.end()) running_.erase(r);
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) waiting_.erase(w);
}

}  // namespace tk
