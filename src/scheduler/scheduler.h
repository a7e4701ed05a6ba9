// tokamak scheduler: what each step computes, and the one owner of sequence state. Host
// bookkeeping only (no model, no device): continuous batching with chunked prefill over the paged
// KV cache, preemption by recompute, automatic prefix caching, n > 1 sequences forked from one
// prompt, prompt log-probabilities as ordinary prefill rows. Unit-tested with a fake runner.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/core.h"
#include "grammar/grammar.h"
#include "kvcache/kvcache.h"

namespace tk {

// ---------------------------------------------------------------------------------------------
// Requests.

// What a client asks of one request: the sampling knobs (core), how many sequences, when to stop,
// what to return. Text-level fields (stop strings, special tokens) are read by the consumer's
// OutputProcessor, not by the engine.
struct SamplingParams : SamplingKnobs {
  std::optional<uint64_t> seed;         // same seed => same tokens; unset: a random one
  int n = 1;                            // sequences from one prompt (they share its KV pages)
  int max_tokens = 16;
  std::vector<int32_t> stop_token_ids;  // stop tokens besides the model's eos ids
  bool ignore_eos = false;
  int min_tokens = 0;                   // eos and stop tokens are masked until this many were sampled
  std::vector<std::pair<int32_t, float>> logit_bias;  // added to the token's logit before sampling
  // Log-probabilities of each sampled token: -1 none, 0 the sampled token's, k > 0 also the k
  // most likely tokens' (at most kMaxTopLogprobs). Computed after logit_bias and min_tokens.
  int logprobs = -1;
  // Log-probabilities of the prompt tokens from this index on (>= 1), or -1 for none: each is
  // log p(prompt[i] | prompt[0, i)), with the prompt_top_logprobs most likely tokens at each
  // position. Requests that ask for them skip the prefix cache.
  int prompt_logprobs_from = -1;
  int prompt_top_logprobs = 0;
  std::string cache_salt;               // only requests with the same salt share cached pages
  // Text side.
  std::vector<std::string> stop;        // stop strings, not emitted (unless include_stop_str_in_output)
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
  // Structured output: every sampled token must continue this grammar (compiled against the
  // model's vocabulary, off the engine thread); each sequence of the request gets its own
  // matcher. When the grammar is complete only eos may follow; min_tokens does not override that.
  std::shared_ptr<const grammar::CompiledGrammar> grammar;

  // Checks ranges; errors are for the user who set them.
  Status validate() const;
};

constexpr int kMaxTopLogprobs = 20;  // OpenAI's limit

enum class FinishReason { kNone, kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "abort", "error" (vLLM's names)

// One sequence's state across steps. Owned by the engine, changed only by the Scheduler.
struct Sequence {
  Sequence(int64_t request_id, int index, std::shared_ptr<const std::vector<int32_t>> prompt,
           std::shared_ptr<const SamplingParams> params, uint64_t seed, int page_size)
      : request_id(request_id), index(index), prompt(std::move(prompt)), params(std::move(params)), seed(seed),
        pages(page_size) {}
  int64_t request_id;
  int index;                                          // in [0, n) of its request
  std::shared_ptr<const std::vector<int32_t>> prompt;  // shared by the request's sequences
  std::shared_ptr<const SamplingParams> params;
  uint64_t seed;
  std::vector<int32_t> output;
  int num_computed = 0;    // tokens whose K/V are in the cache
  PageTable pages;
  int history_row = -1;    // row of the sampler's token-history table while running
  uint64_t uid = 0;        // unique per scheduler (rows and caches are keyed by it)
  int num_cached_tokens = 0;  // prompt tokens the prefix cache supplied at first admission
  int scored_until = 0;       // prompt log-probs of positions before this were returned (kept across preemption)
  bool admitted = false;
  FinishReason finish = FinishReason::kNone;
  std::optional<int32_t> stop_token;  // the eos or stop token that ended it
  Sequence* leader = nullptr;         // the sequence whose prompt pages this one forks from
  std::vector<Sequence*> followers;   // forked when this one's prompt is computed
  // Structured output: the grammar's state after `output` (advanced only by Scheduler::update).
  std::unique_ptr<grammar::Matcher> matcher;
  std::string error;  // why it ended, when finish == kError
  // Timestamps (now_seconds()) for metrics.
  double arrival_time = 0, scheduled_time = 0, first_token_time = 0, finished_time = 0;

  int prompt_len() const { return static_cast<int>(prompt->size()); }
  int num_tokens() const { return prompt_len() + static_cast<int>(output.size()); }
  int32_t token_at(int i) const { return i < prompt_len() ? (*prompt)[i] : output[i - prompt_len()]; }
  std::vector<int32_t> tokens() const;  // prompt then output
  bool finished() const { return finish != FinishReason::kNone; }
  bool has_grammar() const { return matcher != nullptr; }
};

// ---------------------------------------------------------------------------------------------
// Steps.

struct SchedulerConfig {
  int max_num_seqs = 256;             // sequences in one step
  int max_num_batched_tokens = 2048;  // new tokens in one step (prefill chunks + decodes)
  int max_model_len = 2048;           // prompt + output tokens of one sequence
  int max_prompt_logprob_rows = 512;  // prompt log-prob logit rows in one step
  bool enable_prefix_caching = true;  // adopt other requests' cached pages
  std::vector<int32_t> eos_token_ids;
};

// One sequence's part of a step: `num_new` tokens from position `start`.
struct ScheduledSeq {
  Sequence* seq = nullptr;
  int start = 0;
  int num_new = 0;
  bool sample = false;      // the chunk reaches the sequence's last token: sample the next one
  // Prompt log-probs this chunk yields: the logits of positions [logprob_begin, logprob_end)
  // score the tokens one after each.
  int logprob_begin = 0, logprob_end = 0;
  int num_prompt_logprobs() const { return logprob_end - logprob_begin; }
};

struct ScheduledStep {
  std::vector<ScheduledSeq> seqs;
  int num_tokens() const;
  bool empty() const { return seqs.empty(); }
  // NOTE: a step that samples for a sequence with a grammar needs every earlier step's tokens on
  // the host and accepted by its matcher before it runs (the mask is computed from them): an
  // overlapped (pipelined) engine loop runs such steps synchronously.
  bool needs_host_tokens() const;
};

// Overlap scheduling: the token update() appends for one still on its way back from the device
// (the runner feeds it to the next step from device memory); resolve_pending_token puts the real
// one in its place.
constexpr int32_t kPendingToken = -1;

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.f;
  std::vector<TokenLogprob> top;  // the most likely tokens, when asked
  // The sequence's grammar allowed no token at all: `token` is meaningless and the sequence ends
  // with an error.
  bool grammar_dead_end = false;
};

// What a runner computed for a step.
struct StepResult {
  std::vector<SampledToken> sampled;   // one per ScheduledSeq with sample = true, in order
  std::vector<float> prompt_logprobs;  // every ScheduledSeq's prompt log-probs, concatenated in order
  std::vector<std::vector<TokenLogprob>> prompt_top;  // beside prompt_logprobs (empty lists when not asked)
};

// Runs one scheduled step on a device; the fake runner of the tests implements it without a model.
class StepRunner {
 public:
  virtual ~StepRunner() = default;
  virtual Result<StepResult> run(const ScheduledStep& step) = 0;
};

// What one step did to one sequence.
struct SeqUpdate {
  Sequence* seq = nullptr;
  std::optional<SampledToken> token;   // the token sampled this step
  std::vector<float> prompt_logprobs;  // new prompt log-probs, continuing the earlier ones
  std::vector<std::vector<TokenLogprob>> prompt_top;  // beside prompt_logprobs
};

struct PrefixCacheStats {
  int64_t queries = 0;  // prompt tokens looked up
  int64_t hits = 0;     // of those, tokens found cached
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, PagePool& pool);
  const SchedulerConfig& config() const { return config_; }
  // Queues the n sequences of one request (the first is the leader; the others fork from its
  // prompt pages once it has computed them).
  void add(const std::vector<Sequence*>& group);
  // Running sequences first (decodes and unfinished prefill chunks), then waiting ones, as long as
  // the token budget, the sequence limit and free pages allow. Preempts the newest running
  // sequence when pages run out.
  ScheduledStep schedule();
  // The one place a sequence advances: computed tokens, prompt log-probs, committed prefix pages,
  // the sampled token, forks, finishing (eos, stop tokens, max_tokens, the context) and freeing.
  std::vector<SeqUpdate> update(const ScheduledStep& step, const StepResult& result);
  // Ends a sequence early (abort, or a failed step): frees its pages and forgets it.
  void end(Sequence* seq, FinishReason reason);
  // Overlap scheduling: update() ran with kPendingToken as the sequence's last token. This puts the
  // real token in (nullopt: its step failed, the sequence ends with kError) and finishes the
  // sequence on an eos or stop token as update() would have, even when it is already part of a
  // later step (whose token for it the engine drops). A sequence aborted meanwhile only gets its
  // token. True when the token's output is due: the sequence is not aborted.
  bool resolve_pending_token(Sequence* seq, std::optional<int32_t> token);

  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const;  // sequences not running, forks not yet released included
  const PrefixCacheStats& prefix_cache_stats() const { return prefix_stats_; }

 private:
  bool reserve_pages(Sequence* seq, int num_tokens, std::vector<Sequence*>& preempted);
  void preempt(Sequence* seq, std::vector<Sequence*>& preempted);
  bool admit(Sequence* seq, int budget, int logprob_budget, ScheduledStep& step);
  ScheduledSeq plan_chunk(Sequence* seq, int budget, int logprob_budget) const;
  void run(Sequence* seq);
  void stop_running(Sequence* seq);
  void release_followers(Sequence* leader);
  bool check_finished(Sequence* seq) const;
  bool advance_grammar(Sequence* seq, const SampledToken& token);
  void finish(Sequence* seq, FinishReason reason);
  void commit_pages(Sequence* seq);
  std::string salt_of(const Sequence* seq) const;

  SchedulerConfig config_;
  PagePool& pool_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;
  std::vector<int> free_rows_;  // history-table rows not held by a running sequence
  uint64_t next_uid_ = 1;
  PrefixCacheStats prefix_stats_;
};

// Builds the sequences of one request (the engine's and the tests' single way to do it).
std::vector<std::unique_ptr<Sequence>> make_sequences(int64_t request_id, std::vector<int32_t> prompt,
                                                      SamplingParams params, uint64_t seed, int page_size);

}  // namespace tk
