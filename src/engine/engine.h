// tokamak engine: the engine core on its own thread, and what its clients hold. One thread owns
// every piece of engine state; clients reach it only through one inbox of add/abort commands and
// read results from one RequestStream per request, whose destruction aborts the request (llama.cpp's
// task queue and response reader; vLLM's EngineCore client). Text work — detokenizing, stop
// strings — runs on the client's side in an OutputProcessor, never on the engine thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "engine_core/engine_core.h"
#include "tokenizer/tokenizer.h"

namespace tk {

namespace engine_detail {
struct Inbox;
struct StreamState;
}  // namespace engine_detail

// The outputs of one request, as the engine thread produces them. Thread-safe.
class RequestStream {
 public:
  RequestStream(int64_t id, std::shared_ptr<engine_detail::StreamState> state, std::shared_ptr<engine_detail::Inbox> inbox);
  ~RequestStream();  // aborts the request if it has not ended
  RequestStream(const RequestStream&) = delete;
  RequestStream& operator=(const RequestStream&) = delete;

  int64_t id() const { return id_; }
  // Blocks until there is output; returns everything queued. Empty once the stream has ended
  // (every sequence's final output has been taken).
  std::vector<RequestOutput> next();
  // Whatever is queued, without waiting.
  std::vector<RequestOutput> poll();
  // Called on the engine thread whenever output is queued (must be quick: hand off and return).
  void set_notify(std::function<void()> notify);
  bool ended() const;
  // Asks the engine to end the request (or one of its sequences: a stop string ends only that
  // one); what it ends then ends with finish_reason kAbort.
  void abort(int index = -1);

 private:
  int64_t id_;
  std::shared_ptr<engine_detail::StreamState> state_;
  std::shared_ptr<engine_detail::Inbox> inbox_;
};

// The engine thread and its inbox.
class EngineLoop {
 public:
  explicit EngineLoop(std::unique_ptr<EngineCore> core);
  ~EngineLoop();  // shutdown()
  // Checks the request (errors are for its sender) and queues it; the stream yields its outputs.
  Result<std::shared_ptr<RequestStream>> add(std::vector<int32_t> prompt, SamplingParams params);
  // Queues several requests at once, so that the first step sees them all (benchmarks); all or none.
  struct NewRequest {
    std::vector<int32_t> prompt;
    SamplingParams params;
  };
  Result<std::vector<std::shared_ptr<RequestStream>>> add_all(std::vector<NewRequest> requests);
  void abort(int64_t request_id, int index = -1);
  // Ends every request (finish_reason kAbort) and stops the thread. Idempotent.
  void shutdown();
  // A snapshot, refreshed after every step.
  EngineStats stats() const;
  // Only the constant parts are for other threads (config, model config, validate).
  const EngineCore& core() const { return *core_; }

 private:
  void run();
  void deliver(std::vector<RequestOutput>& outputs);

  std::unique_ptr<EngineCore> core_;
  std::shared_ptr<engine_detail::Inbox> inbox_;
  std::atomic<int64_t> next_id_{1};
  // Engine-thread state.
  std::unordered_map<int64_t, std::shared_ptr<engine_detail::StreamState>> streams_;
  mutable std::mutex stats_mutex_;
  EngineStats stats_;
  std::thread thread_;
};

// What a client makes of one sequence's outputs: incremental text (never half a UTF-8 character),
// stop strings (held back until decided, never emitted), the finish reason.
struct TextDelta {
  std::string text;
  FinishReason finish = FinishReason::kNone;
  std::string stop_string;  // the stop string that ended the sequence, if any
};

class OutputProcessor {
 public:
  OutputProcessor(const Tokenizer& tokenizer, const SamplingParams& params, const std::vector<int32_t>& prompt);
  // After a finish (a stop string included) later outputs are ignored: the caller aborts the
  // request in the engine when a stop string ends it.
  TextDelta process(const RequestOutput& output);
  bool finished() const { return finish_ != FinishReason::kNone; }

 private:
  IncrementalDetokenizer detok_;
  std::vector<std::string> stop_;
  bool include_stop_;
  std::string pending_;  // decoded, not yet emitted (held back while it may start a stop string)
  FinishReason finish_ = FinishReason::kNone;
};

// Streaming text with stop strings: moves the text of `pending` that can no longer be the start
// of a stop string to the result. When a stop string occurs, the text is cut before it and
// *stop gets its index. `final` releases everything that is not a stop string.
std::string release_text(std::string& pending, const std::vector<std::string>& stop, bool final, int* stop_index);

// The whole engine for its users (CLI, server, tests): the loaded model, its tokenizer and
// generation defaults, and the engine loop.
class Engine {
 public:
  static Result<std::unique_ptr<Engine>> create(const EngineConfig& config, const LoadProgress& progress = nullptr);
  ~Engine();

  EngineLoop& loop() { return *loop_; }
  const EngineConfig& config() const { return loop_->core().config(); }  // max_model_len resolved
  const ModelConfig& model_config() const { return loop_->core().model_config(); }
  const GenerationConfig& generation_config() const { return loop_->core().model().generation; }
  bool has_tokenizer() const { return loop_->core().model().tokenizer != nullptr; }
  const Tokenizer& tokenizer() const { return *loop_->core().model().tokenizer; }
  const std::vector<int32_t>& eos_token_ids() const { return loop_->core().model().eos_token_ids; }
  std::string backend_name() const;
  // Defaults from generation_config.json, which the caller's explicit values then override.
  SamplingParams default_sampling_params() const;

 private:
  Engine() = default;
  std::unique_ptr<EngineLoop> loop_;
  std::string backend_name_;  // read once: the backend belongs to the engine thread
};

}  // namespace tk
