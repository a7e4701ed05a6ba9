// tokamak engine core: token ids in, token ids and log-probs out. It owns the backend, the model,
// the KV cache, the scheduler and the runner, and advances every request by one step at a time.
// Single-threaded: the engine loop (engine/engine.h) is its only caller in serving; tests and
// tools may drive it directly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/core.h"
#include "kvcache/kvcache.h"
#include "model/model.h"
#include "runner/runner.h"
#include "scheduler/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace tk {

// ---------------------------------------------------------------------------------------------
// Configuration: one plain struct, filled by the CLI (or a test), validated once, then const.

enum class DeviceChoice { kAuto, kCpu, kCuda };   // auto: the GPU when it can run the model (pick_device)
enum class DTypeChoice { kAuto, kBFloat16, kFloat16 };  // GPU weights and activations; auto = bfloat16
const char* device_choice_name(DeviceChoice d);
const char* dtype_choice_name(DTypeChoice d);

struct EngineConfig {
  std::string model;              // a Hugging Face model directory ...
  std::string model_config;       // ... or a built-in configuration with random weights
  std::string tokenizer;          // tokenizer directory (default: the model's; none for a bare model_config)
  uint64_t random_weights_seed = 1234;
  DeviceChoice device = DeviceChoice::kAuto;
  DTypeChoice dtype = DTypeChoice::kAuto;
  bool quantize_fp8 = false;      // --quantization fp8: FP8 weights (per channel) and inputs (per token)
  // --kv-cache-dtype fp8: K and V cached in FP8 e4m3 with the checkpoint's per-layer k/v scales
  // (1.0 when it has none): twice the tokens per byte, half the bytes a decode step reads.
  bool kv_cache_fp8 = false;
  int max_model_len = 0;          // 0: the model's max_position_embeddings
  int max_num_seqs = 256;         // sequences in one step
  int max_num_batched_tokens = 2048;  // tokens in one step
  int page_size = kDefaultPageSize;   // KV page size in tokens
  // vLLM's meaning: the fraction of the device's total memory the engine may use for weights,
  // activations and the KV cache (GPU only; the CPU KV cache is capped at a quarter of free RAM).
  double gpu_memory_utilization = 0.9;
  int64_t kv_cache_tokens = 0;    // > 0: exactly this many KV tokens (tests), instead of the rule above
  int num_threads = 0;            // CPU backend threads; 0 = all cores
  bool enable_prefix_caching = true;
  bool enforce_eager = false;     // never replay CUDA graphs
  // GPU GEMMs: > 1 times up to this many of cuBLASLt's candidates per shape and M bucket on first
  // eager use (GemmRunner::set_autotune); 0 takes its first heuristic.
  int gemm_autotune = 0;
  // Overlap scheduling (--no-async-scheduling turns it off): step N+1 is scheduled and launched
  // while the device runs step N, its decode inputs read from N's ids in device memory. Costs one
  // step of stop detection: a sequence ending on an eos or stop token at N is in N+1 already
  // (its token there is dropped, never emitted) and its pages come back a step later.
  bool async_scheduling = true;
  // --tensor-parallel-size: the model's layers split over this many ranks (Megatron-style), one
  // worker thread each; they run synchronously (EngineCore::init turns async_scheduling off, with
  // an info line). The CPU backend's ranks share its threads (--threads) and sum through an
  // in-process all-reduce; on the GPU rank r is device r, and the ranks sum through NCCL.
  int tensor_parallel_size = 1;
  Status validate() const;
};

// Makes the backend a config names ("auto" picks CUDA when a GPU is present); a CUDA backend on
// device `gpu` (a tensor-parallel rank's), made current on the calling thread.
Result<std::unique_ptr<Backend>> make_backend(DeviceChoice device, DTypeChoice dtype, int num_threads,
                                              int gemm_autotune = 0, int gpu = 0);
// The ranks' communicators [backends.size()], rank r on backends[r]: in process on the CPU, NCCL
// on CUDA backends (one device each).
Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(const std::vector<Backend*>& backends);
bool cuda_available();

// What the GPU path can run, as the CUDA backend reports it (backend_factory.cpp); nothing CUDA
// in it, so the device choice below is a pure function tested on any machine.
struct GpuCapabilities {
  bool device_present = false;  // a CUDA device is visible (whether or not the kernels suit it)
  std::string unusable;         // why the GPU path cannot run at all (no device, no CUDA build, its
                                // compute capability); empty when it can
  std::vector<int> head_dims;   // head sizes the GPU kernels are built for
  int device_count = 0;         // CUDA devices visible: the most tensor-parallel ranks
  bool nccl = false;            // the build has NCCL (tensor parallelism on the GPU)
};
GpuCapabilities gpu_capabilities();

// The device a model runs on (device_pick.cpp), from --device, the model's shape and the GPU
// path's capabilities. cpu: the CPU. cuda: the GPU, or an error naming what it cannot run.
// auto: the GPU when it can run the model; else the CPU, silently when there is no GPU at all
// and with `warning` saying why when there is one.
struct DevicePick {
  Device device = Device::kCpu;
  std::string warning;  // non-empty: auto fell back to the CPU although a GPU is present
};
// ok, or an unsupported error naming the first property of `model` the GPU path cannot run.
Status gpu_can_run(const ModelConfig& model, const GpuCapabilities& gpu);
Result<DevicePick> pick_device(DeviceChoice choice, const ModelConfig& model, const GpuCapabilities& gpu);
// --tensor-parallel-size on the picked device: ok, or an error naming what cannot split (the
// model's sizes) or run (on the GPU: fewer devices than ranks, or a build without NCCL).
Status tensor_parallel_supported(const ModelConfig& model, int size, Device device, const GpuCapabilities& gpu);

// A rank past the first of a tensor-parallel model: its own backend and model shard.
struct LoadedRank {
  LoadedRank() = default;
  LoadedRank(LoadedRank&&) = default;
  LoadedRank& operator=(LoadedRank&&) = default;
  ~LoadedRank() { if (backend) backend->bind_to_current_thread(); }  // its model freed on its device
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  size_t free_memory_before = 0;  // its device's free memory before its weights were loaded
};

// What loading a model produces: the backend it lives on, the model, its tokenizer (absent for a
// bare built-in configuration), generation defaults and eos ids.
struct LoadedModel {
  // Tensor parallelism: the ranks' communicators [size] and the ranks past the first [size - 1]
  // (rank 0 is `backend` and `model`); both empty at size 1. Declared first: destroyed last.
  std::vector<std::unique_ptr<Communicator>> communicators;
  std::vector<LoadedRank> other_ranks;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;
  GenerationConfig generation;
  std::vector<int32_t> eos_token_ids;  // generation_config.json, config.json, then the tokenizer's eos
  size_t free_memory_before = 0;       // device memory free before the weights were loaded
};
Result<LoadedModel> load_model(const EngineConfig& config, const LoadProgress& progress = nullptr);

// Structured output's vocabulary of a model (grammar_vocab.cpp): each token's bytes from its
// tokenizer (byte-level BPE or SentencePiece), special tokens never allowed, the eos ids ending a
// grammar, one mask bit per logit. Built once per model; grammars compiled against it.
Result<std::shared_ptr<const grammar::Vocabulary>> grammar_vocabulary(const Tokenizer& tokenizer,
                                                                      const std::vector<int32_t>& eos_token_ids,
                                                                      int64_t model_vocab_size);

// ---------------------------------------------------------------------------------------------
// Outputs.

// What one step produced for one sequence of a request.
struct RequestOutput {
  int64_t request_id = 0;
  int index = 0;                     // the sequence, in [0, n)
  std::vector<int32_t> token_ids;    // new tokens
  std::vector<float> logprobs;       // one per new token when asked
  std::vector<std::vector<TokenLogprob>> top_logprobs;  // per new token: the most likely, when asked
  std::vector<float> prompt_logprobs;  // new prompt log-probs (continuing the earlier ones)
  std::vector<std::vector<TokenLogprob>> prompt_top_logprobs;  // beside prompt_logprobs, when asked
  FinishReason finish = FinishReason::kNone;
  std::optional<int32_t> stop_token;  // the eos or stop token that ended it
  std::string error;                 // why, when finish == kError
  // Set on the final output.
  int num_prompt_tokens = 0;
  int num_cached_tokens = 0;         // prompt tokens served by the prefix cache
  double arrival_time = 0, scheduled_time = 0, first_token_time = 0, finished_time = 0;
  bool finished() const { return finish != FinishReason::kNone; }
};

struct EngineStats {
  int num_running = 0;   // sequences
  int num_waiting = 0;
  double kv_cache_usage = 0;  // share of KV pages held by sequences (cached free pages count as free)
  int num_kv_pages = 0;
  PrefixCacheStats prefix_cache;
  int64_t steps = 0;
  int64_t sequences_scheduled = 0;  // summed over steps: the mean batch is this / steps
  int64_t tokens_computed = 0;  // tokens the runner ran (prefill and decode)
  // The engine thread's busy time in steps — scheduling, inputs, launches, updates, outputs — not
  // its waits for the device; and the steps' time on the device's clock, from their inputs'
  // upload to their ids' copy (0 where the backend does not time it: the CPU).
  double step_host_seconds = 0;
  double step_device_seconds = 0;
  // The same for decode-only steps (one new token per sequence): the batch-size figures.
  int64_t decode_steps = 0;
  int64_t decode_sequences = 0;
  double decode_host_seconds = 0, decode_device_seconds = 0;
  int64_t overlapped_steps = 0;  // launched by the overlapped path: before the step before them was collected
  int64_t late_graph_captures = 0;  // decode graphs captured while serving (each stalls its step)
  int64_t grammar_masks = 0;        // structured output: token masks filled (one per constrained row and step)
  double grammar_mask_seconds = 0;  // host time filling them (overlapped with the forward on a GPU)
};

class EngineCore {
 public:
  // Takes the loaded model, sizes the KV cache, builds scheduler and runner, captures graphs.
  static Result<std::unique_ptr<EngineCore>> create(const EngineConfig& config, LoadedModel model);
  ~EngineCore();

  // Checks a request against the model and the limits. Thread-safe (reads only constants).
  Status validate(const std::vector<int32_t>& prompt, const SamplingParams& params) const;
  // Queues a validated request under a caller-chosen id.
  void add(int64_t request_id, std::vector<int32_t> prompt, SamplingParams params);
  // Ends a request (or only its sequence `index`); each unfinished sequence it ends gets a final
  // kAbort output.
  void abort(int64_t request_id, int index, std::vector<RequestOutput>& outputs);
  // One step: outputs for every sequence that produced something or finished.
  std::vector<RequestOutput> step();
  bool has_work() const { return scheduler_->has_work() || in_flight_.has_value(); }
  // Overlap scheduling: waits for the step still out and reports its outputs (before shutdown).
  void drain(std::vector<RequestOutput>& outputs);
  EngineStats stats() const;

  const EngineConfig& config() const { return config_; }  // max_model_len resolved
  const ModelConfig& model_config() const { return model_.model->config(); }
  const LoadedModel& model() const { return model_; }
  Backend& backend() { return *model_.backend; }
  const PagePool& page_pool() const { return *pool_; }

 private:
  EngineCore() = default;
  Status init(const EngineConfig& config, LoadedModel model);
  Status size_kv_cache();
  void set_kv_cache_scales();
  static constexpr int64_t kTracedSteps = 4;
  void trace_step(const ScheduledStep& step, double host, double waited_before, double device_before) const;
  struct ActiveRequest {
    std::vector<std::unique_ptr<Sequence>> seqs;
    std::vector<bool> reported;  // the sequence's final output was emitted
  };
  // Final outputs for the request's sequences that ended without one; forgets a request whose
  // sequences all ended.
  void report_ended(int64_t request_id, std::vector<RequestOutput>& outputs);
  void fail_step(const ScheduledStep& step, const Status& error, std::vector<RequestOutput>& outputs);
  // The step pipeline (engine_step.cpp).
  void run_now(ScheduledStep& step, std::vector<RequestOutput>& outputs);
  void launch_overlapped(ScheduledStep& step, std::vector<RequestOutput>& outputs);
  void finish_in_flight(std::vector<RequestOutput>& outputs);
  void emit(std::vector<SeqUpdate>& updates, std::vector<RequestOutput>& outputs);
  void drop_finished(ScheduledStep& step) const;
  void count_launch(const ScheduledStep& step);
  // Overlap scheduling: the step launched and not yet collected, with what update() made of it
  // (kPendingToken for every sampled token).
  struct InFlight {
    int ticket = 0;
    bool decode_only = false;
    std::vector<SeqUpdate> updates;  // one per sample row whose sequence was still running
    std::vector<int> sample_rows;    // the launched sample row of each update
  };
  std::optional<InFlight> in_flight_;
  // Requests whose sequences all ended while a launched step may still name them: freed once
  // the step after their end is collected.
  std::vector<ActiveRequest> retired_;

  EngineConfig config_;
  LoadedModel model_;
  KvCacheTensors cache_;
  // Tensor parallelism: the KV caches of the ranks past the first (their KV heads, the same
  // pages), sized before the runner is made (it keeps their addresses).
  std::vector<KvCacheTensors> rank_caches_;
  std::unique_ptr<PagePool> pool_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ModelRunner> runner_;
  std::map<int64_t, ActiveRequest> requests_;
  EngineStats counters_;
};

}  // namespace tk
