// The engine core's step pipeline. Synchronous: schedule, run, update, report. Overlapped (vLLM's
// async scheduling, SGLang's overlap loop): schedule and launch step N+1, then collect step N —
// whose ids the device sent back while N+1 was being prepared — put its tokens in and report it,
// then run update() for N+1 with kPendingToken for each token it samples; so the host's work for
// one step runs while the device computes the next. N+1 reads the tokens N sampled from device
// memory. Steps that need their sequences' tokens on the host before they run (a grammar's mask)
// or that return prompt log-probs run synchronously.
#include <algorithm>
#include <cstdio>

#include "engine_core/engine_core.h"

namespace tk {
namespace {

bool decode_only(const ScheduledStep& step) {
  for (const ScheduledSeq& s : step.seqs)
    if (s.num_new != 1 || !s.sample) return false;
  return !step.empty();
}

bool overlappable(const ScheduledStep& step) {
  if (step.needs_host_tokens()) return false;
  for (const ScheduledSeq& s : step.seqs)
    if (s.num_prompt_logprobs() > 0) return false;  // update() would need them at once
  return true;
}

}  // namespace

std::vector<RequestOutput> EngineCore::step() {
  std::vector<RequestOutput> outputs;
  const double start = now_seconds();
  const double waited = runner_->times().wait_seconds, device = runner_->times().device_seconds;
  ScheduledStep next = scheduler_->schedule();
  const bool decode = decode_only(next);
  if (!next.empty() && config_.async_scheduling && overlappable(next)) {
    launch_overlapped(next, outputs);
  } else {
    finish_in_flight(outputs);  // the step before: its tokens on the host, its ended sequences out of `next`
    drop_finished(next);
    if (!next.empty()) run_now(next, outputs);
  }
  const double host = now_seconds() - start - (runner_->times().wait_seconds - waited);
  counters_.step_host_seconds += host;
  counters_.step_device_seconds += runner_->times().device_seconds - device;
  if (decode) counters_.decode_host_seconds += host;
  if (counters_.steps <= kTracedSteps && !next.empty() && log_level() <= LogLevel::kDebug) trace_step(next, host, waited, device);
  return outputs;
}

// The first steps of a process, piece by piece (TOKAMAK_LOG_LEVEL=debug): where a first request's
// time goes that later ones do not pay.
void EngineCore::trace_step(const ScheduledStep& step, double host, double waited_before, double device_before) const {
  auto ms = [](double s) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.2f ms", s * 1e3);
    return std::string(buf);
  };
  TK_LOG_DEBUG("step " + std::to_string(counters_.steps) + ": " + std::to_string(step.seqs.size()) + " seqs, " +
               std::to_string(step.num_tokens()) + " tokens; host " + ms(host) + ", waited for the device " +
               ms(runner_->times().wait_seconds - waited_before) + ", device time collected " +
               ms(runner_->times().device_seconds - device_before));
}

void EngineCore::drain(std::vector<RequestOutput>& outputs) { finish_in_flight(outputs); }

void EngineCore::count_launch(const ScheduledStep& step) {
  counters_.steps += 1;
  counters_.sequences_scheduled += static_cast<int64_t>(step.seqs.size());
  counters_.tokens_computed += step.num_tokens();
  if (decode_only(step)) counters_.decode_steps += 1, counters_.decode_sequences += static_cast<int64_t>(step.seqs.size());
}

void EngineCore::drop_finished(ScheduledStep& step) const {
  std::erase_if(step.seqs, [](const ScheduledSeq& s) { return s.seq->finished(); });
}

void EngineCore::run_now(ScheduledStep& step, std::vector<RequestOutput>& outputs) {
  count_launch(step);
  Result<StepResult> result = runner_->run(step);
  if (!result.ok()) {
    fail_step(step, result.status(), outputs);
    return;
  }
  if (decode_only(step)) counters_.decode_device_seconds += runner_->times().last_device_seconds;
  std::vector<SeqUpdate> updates = scheduler_->update(step, *result);
  emit(updates, outputs);
}

void EngineCore::launch_overlapped(ScheduledStep& step, std::vector<RequestOutput>& outputs) {
  count_launch(step);
  Result<int> ticket = runner_->launch(step);
  finish_in_flight(outputs);  // the step before, while this one runs
  // Sequences the step before ended (eos, stop tokens) are in this one too: their rows compute
  // and their tokens are dropped.
  InFlight f;
  ScheduledStep live;
  int row = 0;
  for (const ScheduledSeq& s : step.seqs) {
    const bool running = !s.seq->finished();
    if (running) live.seqs.push_back(s);
    if (s.sample) {
      if (running) f.sample_rows.push_back(row);
      ++row;
    }
  }
  if (!ticket.ok()) {
    fail_step(live, ticket.status(), outputs);
    return;
  }
  f.ticket = *ticket;
  counters_.overlapped_steps += 1;
  f.decode_only = decode_only(step);
  StepResult pending;
  pending.sampled.assign(f.sample_rows.size(), SampledToken{kPendingToken, 0.f, {}, false});
  f.updates = scheduler_->update(live, pending);
  TK_CHECK(f.updates.size() == f.sample_rows.size());
  in_flight_ = std::move(f);
}

void EngineCore::finish_in_flight(std::vector<RequestOutput>& outputs) {
  // Requests retired before this point may be named by the step collected here, by no later one.
  std::vector<ActiveRequest> freeing;
  freeing.swap(retired_);
  if (!in_flight_) return;
  InFlight f = std::move(*in_flight_);
  in_flight_.reset();
  Result<StepResult> result = runner_->collect(f.ticket);
  if (result.ok() && f.decode_only) counters_.decode_device_seconds += runner_->times().last_device_seconds;
  std::vector<SeqUpdate> due;
  for (size_t i = 0; i < f.updates.size(); ++i) {
    SeqUpdate& u = f.updates[i];
    std::optional<int32_t> token;
    if (result.ok()) token = result->sampled[f.sample_rows[i]].token;
    if (!scheduler_->resolve_pending_token(u.seq, token)) continue;  // aborted while out: the token is dropped
    if (result.ok()) u.token = std::move(result->sampled[f.sample_rows[i]]);
    due.push_back(std::move(u));
  }
  if (result.ok()) {
    emit(due, outputs);
    return;
  }
  TK_LOG_WARN("step failed, ending its " + std::to_string(due.size()) + " sequences: " + result.status().to_string());
  for (const SeqUpdate& u : due) {
    RequestOutput o;
    o.request_id = u.seq->request_id, o.index = u.seq->index, o.error = result.status().message();
    outputs.push_back(std::move(o));
    report_ended(u.seq->request_id, outputs);
  }
}

void EngineCore::emit(std::vector<SeqUpdate>& updates, std::vector<RequestOutput>& outputs) {
  std::vector<int64_t> touched;
  for (SeqUpdate& u : updates) {
    RequestOutput o;
    o.request_id = u.seq->request_id, o.index = u.seq->index;
    if (u.token) {
      o.token_ids.push_back(u.token->token);
      if (u.seq->params->logprobs >= 0) o.logprobs.push_back(u.token->logprob);
      if (u.seq->params->logprobs > 0) o.top_logprobs.push_back(std::move(u.token->top));
    }
    o.prompt_logprobs = std::move(u.prompt_logprobs);
    o.prompt_top_logprobs = std::move(u.prompt_top);
    outputs.push_back(std::move(o));
    if (u.seq->finished()) touched.push_back(u.seq->request_id);
  }
  for (int64_t id : touched) report_ended(id, outputs);
}

}  // namespace tk
