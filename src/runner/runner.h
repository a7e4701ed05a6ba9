// tokamak runner: the only place host state meets the device. One StepBatch per step, planned
// and uploaded once (begin_step); the model forward, replayed from a CUDA graph for decode steps
// (captured at start-up for batch-size buckets, the batch padded to its bucket as vLLM does);
// sampling on the device with the penalties' token history kept there; only sampled ids and
// asked-for log-probs come back.
#pragma once

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "backend/backend.h"
#include "model/model.h"
#include "scheduler/scheduler.h"

namespace tk {

struct RunnerConfig {
  int max_num_seqs = 256;
  int max_num_batched_tokens = 2048;
  int max_model_len = 2048;
  int max_prompt_logprob_rows = 512;
  int page_size = kDefaultPageSize;
  bool use_graphs = true;  // capture decode steps (when the backend can)
  std::vector<int32_t> eos_token_ids;  // masked, with stop tokens, until min_tokens were sampled
};

// Structured output's cost: the host time spent filling grammar masks, and how many were filled.
struct GrammarMaskStats {
  int64_t masks = 0;
  double seconds = 0;
};

// Decode batch sizes with a captured graph: 1, 2, 4, 8, then every 8 up to max_num_seqs (rounded
// up to a multiple of 8), at most kMaxGraphBatch.
constexpr int kMaxGraphBatch = 512;
std::vector<int> graph_batch_sizes(int max_num_seqs);

// Tensor parallelism: a rank past the first, its model shard and its KV cache (the cache of its
// KV heads, with the same pages as rank 0's). Rank 0 is the runner's own model and cache.
struct RankShard {
  Model* model = nullptr;
  KvCacheTensors* cache = nullptr;
};

// One worker thread per tensor-parallel rank past the first, bound to its rank's backend at start:
// run() calls fn(rank) for every rank at once, rank 0 on the calling thread, and returns when all
// have (the first error, by rank). An exception from fn on any rank is that rank's error, an
// internal one naming it, and what run() returns (the others' errors follow from it); first
// on_exception() runs (on the rank's thread): it aborts the ranks' communicators, so the ranks
// waiting in an all-reduce for the one that threw return an error instead of waiting forever.
class RankThreads {
 public:
  explicit RankThreads(std::vector<Backend*> backends /*ranks 1..size-1*/, std::function<void()> on_exception = {});
  ~RankThreads();
  Status run(const std::function<Status(int rank)>& fn);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

class ModelRunner final : public StepRunner {
 public:
  // Sizes the activations and the step metadata for the config. `cache` may be allocated later
  // (after the activations, from what memory is left), before the first step.
  // NOTE: the last page of `cache` is the runner's scratch page, where padded rows write: the
  // page pool of the sequences must leave it out.
  // other_ranks: the ranks past the first of a tensor-parallel model. Every step's plan goes to
  // every rank, whose forwards run at once, in lockstep through their all-reduces; sampling stays
  // on rank 0. Its steps run eagerly, and synchronously: a rank past the first holds no sampled
  // ids for the overlapped path to read.
  static Result<std::unique_ptr<ModelRunner>> create(Model& model, KvCacheTensors& cache, const RunnerConfig& config,
                                                     std::vector<RankShard> other_ranks = {});
  ~ModelRunner() override;  // a rank's plan is freed with its device current
  // On a GPU: runs prefills of a few lengths and the sampler once (kernels and GEMM plans load on
  // first use), then captures the decode graphs of every batch size; logs the times.
  Status warm_up();
  Result<StepResult> run(const ScheduledStep& step) override;  // launch(), then collect()
  // Overlap scheduling: launch() enqueues a step — forward and sampling — and returns a ticket
  // without waiting for the device; collect(ticket) waits for its sampled ids. A step may be
  // launched while the one before it is out (two at most): the tokens of its sequences that the
  // host holds as kPendingToken are the last launched step's samples, read from device memory.
  Result<int> launch(const ScheduledStep& step);
  Result<StepResult> collect(int ticket);
  struct Times {
    double wait_seconds = 0;         // the host blocked in collect()
    double device_seconds = 0;       // the steps' time on the device's clock (0 where not timed)
    double last_device_seconds = 0;  // the last collected step's
  };
  const Times& times() const { return times_; }
  // Builds and plans `batch`, then runs the forward: logits of batch.logit_rows land in
  // model().logits(). For tests that read logits directly.
  Status forward(const StepBatch& batch);
  // The step metadata of a schedule: sample rows first, then prompt log-prob rows.
  static StepBatch build_batch(const ScheduledStep& step);
  Model& model() { return model_; }
  int num_graphs() const { return static_cast<int>(graphs_.size()); }
  // Decode graphs captured after warm_up: each stalled the step that needed it.
  int64_t late_captures() const { return late_captures_; }
  const GrammarMaskStats& grammar_mask_stats() const { return mask_stats_; }

 private:
  ModelRunner(Model& model, KvCacheTensors& cache, const RunnerConfig& config, std::vector<RankShard> other_ranks);
  int graph_batch_size(const ScheduledStep& step) const;
  Status begin_step(const StepBatch& batch);  // on every rank
  Status run_forward(bool capturable);
  Status warm_up_prefill(int len);
  Status prepare_history(const ScheduledStep& step, StepBatch& batch);
  void defer_pending_inputs(const ScheduledStep& step, StepBatch& batch) const;
  void defer_pending(uint64_t uid, int at, bool history, StepBatch& batch) const;
  Status fail_launched(int ticket, const Status& error);
  void add_padding(StepBatch& batch, int pad_to) const;
  std::vector<SamplingSpec> sampling_specs(const ScheduledStep& step) const;
  // Structured output (runner_grammar.cpp): the masks of the sample rows whose sequence has a
  // grammar, filled on the host while the device runs the forward, then applied to the logits.
  struct GrammarMasks {
    std::vector<int32_t> rows;      // sample rows with a mask
    std::vector<uint32_t> bitmask;  // [rows.size(), ceil(vocab / 32)]
    std::vector<bool> dead_end;     // per sample row: the grammar allowed no token
  };
  Status fill_grammar_masks(const ScheduledStep& step, GrammarMasks& masks);
  Status apply_grammar_masks(const GrammarMasks& masks, Tensor& logits);
  Status apply_logit_bias(const ScheduledStep& step, Tensor& logits);
  Status add_top_logprobs(const ScheduledStep& step, const Tensor& logits, int first_logprob_row, StepResult& result);

  Model& model_;
  KvCacheTensors& cache_;
  std::vector<RankShard> ranks_;                       // [tensor-parallel size - 1]
  std::vector<std::unique_ptr<StepPlan>> rank_plans_;  // [tensor-parallel size - 1]
  std::unique_ptr<RankThreads> rank_threads_;          // with ranks_ only
  RunnerConfig config_;
  std::vector<int> graph_sizes_;
  bool use_graphs_;  // the config asks for graphs and the backend captures
  std::unique_ptr<StepPlan> plan_;
  std::map<std::array<int, 7>, std::unique_ptr<StepGraph>> graphs_;
  bool warmed_up_ = false;
  int64_t late_captures_ = 0;
  // The penalties' token history: [max_num_seqs, max_model_len] int32 on the device, made on
  // the first penalised request. Row r holds the tokens of the sequence with uid row_owner_[r]
  // up to row_filled_[r].
  Tensor history_;
  std::vector<uint64_t> row_owner_;
  std::vector<int> row_filled_;
  // Overlap scheduling: steps launched and not collected, by ticket, and the row of each sequence
  // (by uid) in the last launched step's sampling.
  struct Launched {
    bool active = false;
    int num_sampled = 0;
    StepResult result;  // all but the sampled ids and their log-probs
  };
  Launched launched_[2];
  int next_ticket_ = 0;
  std::unordered_map<uint64_t, int> last_sample_rows_;
  Times times_;
  GrammarMaskStats mask_stats_;
  static constexpr int kTracedLaunches = 4;
  int launches_ = 0;
  void trace_launch(double build, double begin, double forward, double sample) const;
};

}  // namespace tk
