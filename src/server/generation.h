// One generation request of the API (a completion or a chat completion): its engine requests
// (one per prompt, each with n sequences), the text of every choice built on the server's
// workers as outputs arrive, and the calls into the endpoint's formatter. Shared by both
// endpoints, which differ only in the JSON they write.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "app.h"

namespace tk::server {

// One choice of the response: prompt p's sequence i is choice p * n + i, as vLLM numbers them.
struct Choice {
  Choice(int index, int prompt, OutputProcessor text) : index(index), prompt(prompt), text(std::move(text)) {}
  int index;
  int prompt;
  OutputProcessor text;
  std::string full_text;               // everything emitted so far
  int num_tokens = 0;                  // tokens that count towards usage
  FinishReason finish = FinishReason::kNone;
  Json stop_reason = nullptr;          // the stop string or stop token that ended it
  bool done = false;                   // its final delta was handed to the formatter
  bool engine_done = false;            // the engine's final output arrived
  double first_output = 0, last_output = 0;
  std::vector<double> inter_token;     // for the metrics
};

// What one engine output became for a choice.
struct Delta {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<float> logprobs;
  std::vector<std::vector<TokenLogprob>> top_logprobs;
  bool first = false;                  // the choice's first delta
  bool finished = false;               // choice.finish is set
};

// The endpoint's side: JSON for each delta and the end (streamed or gathered).
class Formatter {
 public:
  virtual ~Formatter() = default;
  virtual void on_delta(Choice& choice, const Delta& delta) = 0;
  // Every choice has finished (or the request failed with `error`).
  virtual void on_done(const std::vector<Choice>& choices, const std::optional<ApiError>& error) = 0;
};

struct PromptInput {
  std::vector<int32_t> ids;
  std::string text;  // for echo
};

class Generation : public std::enable_shared_from_this<Generation> {
 public:
  Generation(App& app, std::shared_ptr<http::Responder> responder, std::vector<PromptInput> prompts,
             SamplingParams params, std::unique_ptr<Formatter> formatter);
  // Queues the engine requests; an error (a bad value the engine checks) is for the client.
  std::optional<ApiError> start();
  const std::vector<PromptInput>& prompts() const { return prompts_; }
  const SamplingParams& params() const { return params_; }
  int prompt_tokens() const;
  int completion_tokens() const;
  int cached_tokens() const { return cached_tokens_; }
  const std::string& id() const { return id_; }
  void set_id(std::string id) { id_ = std::move(id); }
  const std::string& model() const { return model_; }  // the name the response carries
  void set_model(std::string model) { model_ = std::move(model); }
  int64_t created() const { return created_; }
  // Prompt p's log-probs (for echo): token i's from index 1 on, with the most likely tokens.
  const std::vector<float>& prompt_logprobs(int p) const { return prompt_lp_[p]; }
  const std::vector<std::vector<TokenLogprob>>& prompt_top(int p) const { return prompt_top_[p]; }
  App& app() { return app_; }
  http::Responder& responder() { return *responder_; }
  // Ends every engine request (the client left or a write failed).
  void abort_all();

 private:
  void schedule_pump();
  void pump();
  void take(int prompt, RequestOutput& o);
  void finish_if_done();
  void record_metrics(const Choice& c, const RequestOutput& final_output);

  App& app_;
  std::shared_ptr<http::Responder> responder_;
  std::vector<PromptInput> prompts_;
  SamplingParams params_;
  std::unique_ptr<Formatter> formatter_;
  std::vector<std::shared_ptr<RequestStream>> streams_;
  std::vector<Choice> choices_;
  std::vector<std::vector<float>> prompt_lp_;
  std::vector<std::vector<std::vector<TokenLogprob>>> prompt_top_;
  std::string id_, model_;
  int64_t created_ = 0;
  double arrival_ = 0;
  int cached_tokens_ = 0;
  double engine_arrival_ = 0, engine_first_token_ = 0;  // the engine's timestamps of the first sequence
  std::optional<ApiError> error_;
  bool answered_ = false;
  std::mutex mutex_;                  // one pump at a time
  std::atomic<bool> pump_queued_{false};
};

const char* finish_reason_json(FinishReason f);  // "stop", "length", "abort"

// The engine request's parameters for one prompt of the request: max_tokens 0 is what the context
// leaves after this prompt; a one-token prompt has no prompt log-probs to compute (vLLM answers
// [null] for it, not an error).
SamplingParams params_for_prompt(const SamplingParams& p, size_t prompt_len, int max_model_len);

}  // namespace tk::server
