// tokamak engine: requests in, tokens out. A scheduler (host bookkeeping only) picks each step's
// work — continuous batching with chunked prefill over the paged KV cache —, a runner (the only
// place host state meets the device) builds one StepBatch, runs the model and samples, and the
// output processor turns ids into streamed text and decides when a request stops.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/core.h"
#include "kvcache/kvcache.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tk {

// ---------------------------------------------------------------------------------------------
// Requests.

struct SamplingParams {
  float temperature = 1.f;  // 0 = greedy
  float top_p = 1.f;
  int top_k = 0;            // 0 = off
  float min_p = 0.f;
  float repetition_penalty = 1.f;
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
  std::optional<uint64_t> seed;        // same seed => same tokens
  int max_tokens = 256;
  std::vector<std::string> stop;       // stop strings, not emitted
  std::vector<int32_t> stop_token_ids;  // stop tokens besides the model's eos ids
  bool ignore_eos = false;
  bool logprobs = false;               // log-probability of each sampled token
  bool skip_special_tokens = true;

  // Checks ranges; errors are for the user who set them.
  Status validate() const;
};

enum class FinishReason { kNone, kStop, kLength, kAbort };
const char* finish_reason_name(FinishReason reason);  // "stop", "length", "abort" (OpenAI names)

// What one step produced for one request.
struct RequestOutput {
  int64_t request_id = 0;
  std::vector<int32_t> token_ids;  // new tokens this step
  std::vector<float> logprobs;     // one per new token when asked
  std::string text;                // newly completed text (never a partial UTF-8 sequence)
  FinishReason finish = FinishReason::kNone;
  bool finished() const { return finish != FinishReason::kNone; }
};

// Streaming text with stop strings: moves the text of `pending` that can no longer be the start
// of a stop string to the result. When a stop string occurs, the text is cut before it and
// *stopped is set. `final` releases everything that is not a stop string.
std::string release_text(std::string& pending, const std::vector<std::string>& stop, bool final, bool* stopped);

enum class SequenceStatus { kWaiting, kRunning, kFinished };

// One request's state across steps.
struct Sequence {
  int64_t id = 0;
  std::vector<int32_t> prompt;
  std::vector<int32_t> output;
  SamplingParams params;
  uint64_t seed = 0;
  SequenceStatus status = SequenceStatus::kWaiting;
  int num_computed = 0;  // tokens whose K/V are in the cache
  PageTable pages;
  double arrival_time = 0, first_token_time = 0;
  // Output processing state.
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::string pending_text;  // decoded, not yet emitted (held back while it may start a stop string)
  std::string emitted_text;
  FinishReason finish = FinishReason::kNone;

  Sequence(int64_t id_, std::vector<int32_t> prompt_, SamplingParams params_, int page_size)
      : id(id_), prompt(std::move(prompt_)), params(std::move(params_)), pages(page_size) {}
  int num_tokens() const { return static_cast<int>(prompt.size() + output.size()); }
  int32_t token_at(int i) const {
    return i < static_cast<int>(prompt.size()) ? prompt[i] : output[i - prompt.size()];
  }
};

// ---------------------------------------------------------------------------------------------
// Scheduling (host only; unit-tested with a fake runner).

struct SchedulerConfig {
  int max_num_seqs = 64;             // sequences in one step
  int max_num_batched_tokens = 2048; // new tokens in one step (prefill chunks + decodes)
  int max_model_len = 2048;          // prompt + output tokens of one sequence
};

// One sequence's part of a step: `num_new` tokens from position `start`.
struct ScheduledSeq {
  Sequence* seq = nullptr;
  int start = 0;
  int num_new = 0;
  bool sample = false;  // the chunk reaches the sequence's last token: sample the next one
};

struct ScheduledStep {
  std::vector<ScheduledSeq> seqs;
  std::vector<Sequence*> preempted;  // sent back to waiting this step (pages freed, recompute later)
  int num_tokens() const;
  bool empty() const { return seqs.empty(); }
};

class Scheduler {
 public:
  Scheduler(SchedulerConfig config, PagePool& pool) : config_(config), pool_(pool) {}
  const SchedulerConfig& config() const { return config_; }
  void add(Sequence* seq);
  // Running sequences first (decodes and unfinished prefill chunks), then waiting ones, as long as
  // the token budget, the sequence limit and free pages allow. Preempts the newest running
  // sequence when pages run out.
  ScheduledStep schedule();
  // Frees a finished or aborted sequence's pages and forgets it.
  void finish(Sequence* seq);
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  size_t num_waiting() const { return waiting_.size(); }
  size_t num_running() const { return running_.size(); }

 private:
  bool reserve_pages(Sequence* seq, int num_tokens, ScheduledStep& step);
  void preempt(Sequence* seq, ScheduledStep& step);

  SchedulerConfig config_;
  PagePool& pool_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;
};

// What the runner gives back for each ScheduledSeq with sample = true, in order.
struct SampledToken {
  int32_t token = 0;
  float logprob = 0.f;
};

// Runs one scheduled step on a device; the fake runner of the tests implements it without a model.
class StepRunner {
 public:
  virtual ~StepRunner() = default;
  virtual Result<std::vector<SampledToken>> run(const ScheduledStep& step) = 0;
};

// The real runner: StepBatch on the host, one upload, the model forward, sampling on the device.
class ModelRunner final : public StepRunner {
 public:
  ModelRunner(Model& model, KvCache& cache) : model_(model), cache_(cache) {}
  Result<std::vector<SampledToken>> run(const ScheduledStep& step) override;
  // Builds the step metadata (exposed for tests).
  static StepBatch build_batch(const ScheduledStep& step);

 private:
  Model& model_;
  KvCache& cache_;
  StepBatch batch_;
  std::vector<SamplingSpec> specs_;
};

// ---------------------------------------------------------------------------------------------
// The engine.

struct EngineConfig {
  std::string model_dir;
  std::string device = "auto";          // cpu | cuda | auto
  std::string dtype = "auto";           // GPU weights/activations: auto (bfloat16) | bfloat16 | float16
  int max_model_len = 0;                // 0: the model's max_position_embeddings
  int max_num_seqs = 64;
  int max_num_batched_tokens = 2048;
  int page_size = 16;
  int64_t kv_cache_tokens = 0;          // 0: sized from free memory
  double gpu_memory_utilization = 0.9;  // share of device memory for weights + KV cache
  int num_threads = 0;                  // CPU backend threads; 0 = all cores
  Status validate() const;
};

// Prints the weight-loading progress (bytes, rate) somewhere; the CLI draws a bar.
using ProgressSink = LoadProgress;

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const EngineConfig& config, const ProgressSink& progress = nullptr);
  ~Engine();

  // Validates the prompt and parameters; returns the request id.
  Result<int64_t> add_request(std::vector<int32_t> prompt_ids, SamplingParams params);
  void abort(int64_t request_id);
  // One scheduler step; outputs for every request that produced tokens or finished.
  Result<std::vector<RequestOutput>> step();
  bool has_unfinished() const { return scheduler_->has_work(); }

  // Log-probabilities of tokens[i + 1] given tokens[0..i], for i in [first, n - 1): one sequence,
  // prefilled in chunks through the same paged cache (for perplexity).
  Result<std::vector<float>> score(const std::vector<int32_t>& tokens, int first);

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const ModelConfig& model_config() const { return model_->config(); }
  const GenerationConfig& generation_config() const { return generation_; }
  const EngineConfig& config() const { return config_; }
  Backend& backend() { return *backend_; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  // Defaults from generation_config.json applied to unset fields by the caller (CLI/server).
  SamplingParams default_sampling_params() const;

 private:
  Engine() = default;
  Status init(const EngineConfig& config, const ProgressSink& progress);
  Status size_kv_cache();
  RequestOutput process(Sequence& seq, const SampledToken* sampled);

  EngineConfig config_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Model> model_;
  GenerationConfig generation_;
  std::vector<int32_t> eos_ids_;  // generation_config.json, config.json, then the tokenizer's eos
  KvCache cache_;
  std::unique_ptr<PagePool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::vector<std::unique_ptr<Sequence>> sequences_;
  int64_t next_id_ = 1;
};

// Makes the backend EngineConfig::device names ("auto" picks CUDA when a GPU is present).
Result<std::unique_ptr<Backend>> make_backend(const std::string& device, int num_threads,
                                              const std::string& dtype = "auto");
bool cuda_available();

}  // namespace tk
