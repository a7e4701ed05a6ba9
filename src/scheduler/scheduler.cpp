// Continuous batching with chunked prefill. Each step: running sequences first (one decode token,
// or the next prefill chunk), then waiting ones while the token budget, the sequence limit and
// free pages allow. A waiting sequence first adopts the longest cached chain of its prefix's
// pages (always leaving one token to compute, whose logits it samples from). When pages run out,
// the newest running sequence is preempted: its pages are released (the committed ones stay
// cached) and it is recomputed later, as vLLM does.
#include "scheduler/scheduler.h"

#include <algorithm>

namespace tk {

int ScheduledStep::num_tokens() const {
  int n = 0;
  for (const ScheduledSeq& s : seqs) n += s.num_new;
  return n;
}

bool ScheduledStep::needs_host_tokens() const {
  for (const ScheduledSeq& s : seqs)
    if (s.sample && s.seq->has_grammar()) return true;
  return false;
}

std::vector<int32_t> Sequence::tokens() const {
  std::vector<int32_t> all(*prompt);
  all.insert(all.end(), output.begin(), output.end());
  return all;
}

Scheduler::Scheduler(SchedulerConfig config, PagePool& pool) : config_(std::move(config)), pool_(pool) {
  for (int r = config_.max_num_seqs - 1; r >= 0; --r) free_rows_.push_back(r);
}

int Scheduler::num_waiting() const {
  int n = static_cast<int>(waiting_.size());
  for (const Sequence* s : waiting_) n += static_cast<int>(s->followers.size());
  for (const Sequence* s : running_) n += static_cast<int>(s->followers.size());
  return n;
}

std::string Scheduler::salt_of(const Sequence* seq) const {
  // Without prefix caching a request shares pages only among its own sequences (forks).
  if (config_.enable_prefix_caching) return seq->params->cache_salt;
  return "\x1f" "request " + std::to_string(seq->request_id);
}

// Commits the pages that became full and computed; the tokens are gathered only for those.
void Scheduler::commit_pages(Sequence* seq) {
  const int ps = seq->pages.page_size();
  std::vector<int32_t> page;
  while ((seq->pages.num_committed() + 1) * ps <= seq->num_computed) {
    const int begin = seq->pages.num_committed() * ps;
    page.resize(ps);
    for (int i = 0; i < ps; ++i) page[i] = seq->token_at(begin + i);
    pool_.commit(seq->pages, page.data(), salt_of(seq));
  }
}

void Scheduler::add(const std::vector<Sequence*>& group) {
  TK_CHECK(!group.empty());
  Sequence* leader = group[0];
  for (Sequence* s : group) s->uid = next_uid_++;
  for (size_t i = 1; i < group.size(); ++i) {
    group[i]->leader = leader;
    leader->followers.push_back(group[i]);
  }
  waiting_.push_back(leader);
}

void Scheduler::run(Sequence* seq) {
  TK_CHECK(!free_rows_.empty());
  seq->history_row = free_rows_.back();
  free_rows_.pop_back();
  running_.push_back(seq);
}

void Scheduler::stop_running(Sequence* seq) {
  auto it = std::find(running_.begin(), running_.end(), seq);
  if (it == running_.end()) return;
  running_.erase(it);
  free_rows_.push_back(seq->history_row);
  seq->history_row = -1;
}

void Scheduler::preempt(Sequence* seq, std::vector<Sequence*>& preempted) {
  seq->pages.release_all(pool_);
  seq->num_computed = 0;
  stop_running(seq);
  waiting_.push_front(seq);
  preempted.push_back(seq);
}

// Grows `seq` to `num_tokens`, preempting the newest running sequences as needed. False when
// `seq` itself had to be preempted.
bool Scheduler::reserve_pages(Sequence* seq, int num_tokens, std::vector<Sequence*>& preempted) {
  while (!seq->pages.grow(pool_, num_tokens)) {
    Sequence* victim = running_.back();
    preempt(victim, preempted);
    if (victim == seq) return false;
  }
  return true;
}

// The next chunk of `seq` within the token and prompt-log-prob budgets (num_new 0: nothing fits).
ScheduledSeq Scheduler::plan_chunk(Sequence* seq, int budget, int logprob_budget) const {
  ScheduledSeq s{seq, seq->num_computed, std::min(seq->num_tokens() - seq->num_computed, budget), false, 0, 0};
  const int from = seq->params->prompt_logprobs_from;
  if (from > 0) {
    // Position p's logits score token p + 1, for tokens [from, prompt_len).
    const int first = std::max({s.start, from - 1, seq->scored_until}), last = seq->prompt_len() - 1;
    if (first < last && first < s.start + s.num_new) {
      if (logprob_budget <= 0) {
        s.num_new = std::max(0, first - s.start);  // up to the first scored position
      } else {
        s.num_new = std::min(s.num_new, first + logprob_budget - s.start);
      }
      s.logprob_begin = first;
      s.logprob_end = std::max(first, std::min(last, s.start + s.num_new));
    }
  }
  s.sample = s.num_new > 0 && s.start + s.num_new == seq->num_tokens();
  return s;
}

bool Scheduler::admit(Sequence* seq, int budget, int logprob_budget, ScheduledStep& step) {
  const bool first_time = !seq->admitted;
  int matched = 0;
  if (seq->pages.pages().empty() && seq->params->prompt_logprobs_from < 0) {
    const std::vector<int32_t> tokens = seq->tokens();
    matched = pool_.match(seq->pages, tokens.data(), seq->num_tokens() - 1, salt_of(seq));
    seq->num_computed = matched;
    prefix_stats_.queries += seq->prompt_len();
    prefix_stats_.hits += std::min(matched, seq->prompt_len());
  }
  ScheduledSeq s = plan_chunk(seq, budget, logprob_budget);
  if (s.num_new == 0 || !seq->pages.grow(pool_, s.start + s.num_new)) {
    seq->pages.release_all(pool_);
    seq->num_computed = 0;
    return false;
  }
  if (first_time) {
    seq->admitted = true;
    seq->num_cached_tokens = matched;
    seq->scheduled_time = now_seconds();
  }
  run(seq);
  step.seqs.push_back(s);
  return true;
}

ScheduledStep Scheduler::schedule() {
  ScheduledStep step;
  std::vector<Sequence*> preempted;
  int budget = config_.max_num_batched_tokens, logprob_budget = config_.max_prompt_logprob_rows;
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    ScheduledSeq s = plan_chunk(seq, budget, logprob_budget);
    if (s.num_new == 0) {
      ++i;
      continue;
    }
    if (!reserve_pages(seq, s.start + s.num_new, preempted)) break;  // seq was the newest: nothing after it
    step.seqs.push_back(s);
    budget -= s.num_new;
    logprob_budget -= s.num_prompt_logprobs();
    ++i;
  }
  while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* seq = waiting_.front();
    // A sequence preempted in this very step waits for the next one.
    if (std::find(preempted.begin(), preempted.end(), seq) != preempted.end()) break;
    if (!admit(seq, budget, logprob_budget, step)) break;
    waiting_.pop_front();
    budget -= step.seqs.back().num_new;
    logprob_budget -= step.seqs.back().num_prompt_logprobs();
  }
  // Decodes (and other short chunks) first: a backend can hand that leading run of sequences to a
  // decode kernel and the rest to a prefill kernel. The order within a step means nothing else.
  std::stable_sort(step.seqs.begin(), step.seqs.end(),
                   [](const ScheduledSeq& a, const ScheduledSeq& b) { return a.num_new < b.num_new; });
  // NOTE: the invariant of kvcache.h — a step writes only pages its sequence holds alone.
  for (const ScheduledSeq& s : step.seqs) {
    const int ps = s.seq->pages.page_size();
    for (int p = s.start / ps; p <= (s.start + s.num_new - 1) / ps; ++p) pool_.check_writable(s.seq->pages.pages()[p]);
  }
  return step;
}

// Eos and stop tokens (vLLM's order), then the length limits. A grammar that accepted its eos
// has ended the output, ignore_eos or not.
bool Scheduler::check_finished(Sequence* seq) const {
  const SamplingParams& p = *seq->params;
  const int32_t last = seq->output.back();
  const auto& eos = config_.eos_token_ids;
  const bool grammar_ended = seq->matcher && seq->matcher->is_terminated();
  if (grammar_ended || (!p.ignore_eos && std::find(eos.begin(), eos.end(), last) != eos.end()) ||
      std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), last) != p.stop_token_ids.end()) {
    seq->finish = FinishReason::kStop;
    seq->stop_token = last;
    return true;
  }
  if (static_cast<int>(seq->output.size()) >= p.max_tokens || seq->num_tokens() >= config_.max_model_len) {
    seq->finish = FinishReason::kLength;
    return true;
  }
  return false;
}

void Scheduler::release_followers(Sequence* leader) {
  // Forks go first in line: they adopt the leader's committed prompt pages and compute only the
  // prompt's last (partial) page.
  for (auto it = leader->followers.rbegin(); it != leader->followers.rend(); ++it) {
    (*it)->leader = nullptr;
    waiting_.push_front(*it);
  }
  leader->followers.clear();
}

void Scheduler::finish(Sequence* seq, FinishReason reason) {
  seq->finish = reason;
  seq->finished_time = now_seconds();
  seq->pages.release_all(pool_);
  stop_running(seq);
}

// Advances the sequence's matcher by its sampled token. False (the sequence ended with an error,
// the token dropped) when the grammar allowed nothing or refused the token: no output that breaks
// the grammar ever reaches the client.
bool Scheduler::advance_grammar(Sequence* seq, const SampledToken& token) {
  grammar::Matcher& m = *seq->matcher;
  if (token.grammar_dead_end) {
    seq->error = m.status().ok() ? "structured output: the grammar allows no token after " +
                                       std::to_string(seq->output.size()) + " generated tokens"
                                 : "structured output: " + m.status().message();
  } else if (!m.accept_token(token.token)) {
    seq->error = "structured output: the grammar refused the sampled token " + std::to_string(token.token) +
                 (m.status().ok() ? "" : ": " + m.status().message());
  } else {
    return true;
  }
  finish(seq, FinishReason::kError);
  return false;
}

std::vector<SeqUpdate> Scheduler::update(const ScheduledStep& step, const StepResult& result) {
  std::vector<SeqUpdate> updates;
  size_t k = 0, lp = 0;
  for (const ScheduledSeq& s : step.seqs) {
    Sequence* seq = s.seq;
    SeqUpdate u;
    u.seq = seq;
    seq->num_computed += s.num_new;
    commit_pages(seq);
    if (s.num_prompt_logprobs() > 0) seq->scored_until = s.logprob_end;
    TK_CHECK(lp + s.num_prompt_logprobs() <= result.prompt_logprobs.size());
    u.prompt_logprobs.assign(result.prompt_logprobs.begin() + lp, result.prompt_logprobs.begin() + lp + s.num_prompt_logprobs());
    if (result.prompt_top.size() == result.prompt_logprobs.size())
      u.prompt_top.assign(result.prompt_top.begin() + lp, result.prompt_top.begin() + lp + s.num_prompt_logprobs());
    lp += s.num_prompt_logprobs();
    if (seq->num_computed >= seq->prompt_len() && !seq->followers.empty()) release_followers(seq);
    if (s.sample) {
      TK_CHECK(k < result.sampled.size());
      const SampledToken& sampled = result.sampled[k++];
      if (seq->matcher && !advance_grammar(seq, sampled)) {
        updates.push_back(std::move(u));  // ended with an error, no token
        continue;
      }
      u.token = sampled;
      if (seq->output.empty()) seq->first_token_time = now_seconds();
      seq->output.push_back(u.token->token);
      if (check_finished(seq)) finish(seq, seq->finish);
    }
    if (u.token || !u.prompt_logprobs.empty()) updates.push_back(std::move(u));
  }
  return updates;
}

bool Scheduler::resolve_pending_token(Sequence* seq, std::optional<int32_t> token) {
  TK_CHECK(!seq->output.empty() && seq->output.back() == kPendingToken);
  const FinishReason before = seq->finish;  // kLength: update() already ended it at this token
  if (before == FinishReason::kAbort || before == FinishReason::kError) {
    if (token) seq->output.back() = *token;
    else seq->output.pop_back();
    return false;
  }
  if (!token) {
    seq->output.pop_back();
    if (before == FinishReason::kNone) end(seq, FinishReason::kError);
    else seq->finish = FinishReason::kError;
    return true;
  }
  seq->output.back() = *token;
  if (seq->output.size() == 1) seq->first_token_time = now_seconds();
  seq->finish = FinishReason::kNone;
  if (!check_finished(seq)) return true;  // eos and stop tokens first, as update() checks them
  if (before == FinishReason::kNone) {
    const FinishReason reason = seq->finish;
    seq->finish = FinishReason::kNone;
    end(seq, reason);  // also when it waits, preempted by the step after this token's
  } else {
    seq->finished_time = now_seconds();
  }
  return true;
}

void Scheduler::end(Sequence* seq, FinishReason reason) {
  if (seq->finished()) return;
  seq->finish = reason;
  seq->finished_time = now_seconds();
  seq->pages.release_all(pool_);
  stop_running(seq);
  auto w = std::find(waiting_.begin(), waiting_.end(), seq);
  if (w != waiting_.end()) waiting_.erase(w);
  if (seq->leader) std::erase(seq->leader->followers, seq);
  seq->leader = nullptr;
  // Forks not yet released cannot start without their leader: they end with it.
  for (Sequence* f : std::vector<Sequence*>(seq->followers)) {
    f->leader = nullptr;
    f->finish = reason;
    f->finished_time = seq->finished_time;
  }
  seq->followers.clear();
}

std::vector<std::unique_ptr<Sequence>> make_sequences(int64_t request_id, std::vector<int32_t> prompt,
                                                      SamplingParams params, uint64_t seed, int page_size) {
  auto shared_prompt = std::make_shared<const std::vector<int32_t>>(std::move(prompt));
  auto shared_params = std::make_shared<const SamplingParams>(std::move(params));
  std::vector<std::unique_ptr<Sequence>> seqs;
  const double now = now_seconds();
  for (int i = 0; i < shared_params->n; ++i) {
    // Each sequence draws its own numbers; the first keeps the request's seed, so n = 1 and the
    // first of n agree.
    const uint64_t s = i == 0 ? seed : seed ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(i));
    seqs.push_back(std::make_unique<Sequence>(request_id, i, shared_prompt, shared_params, s, page_size));
    seqs.back()->arrival_time = now;
    if (shared_params->grammar) seqs.back()->matcher = std::make_unique<grammar::Matcher>(shared_params->grammar);
  }
  return seqs;
}

}  // namespace tk
