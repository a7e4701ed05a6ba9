// A generation request's life on the server: engine requests queued, outputs pumped on a worker
// whenever the engine thread signals one (one pump at a time per request), text made by one
// OutputProcessor per choice, a stop string ending its sequence in the engine, a client that
// leaves aborting everything, metrics recorded when the engine reports each sequence's end.
#include "generation.h"

namespace tk::server {

const char* finish_reason_json(FinishReason f) {
  switch (f) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kAbort: return "abort";
    case FinishReason::kError: return "error";
    case FinishReason::kNone: return "none";
  }
  return "none";
}

SamplingParams params_for_prompt(const SamplingParams& p, size_t prompt_len, int max_model_len) {
  SamplingParams q = p;
  if (q.max_tokens <= 0) q.max_tokens = std::max(1, max_model_len - static_cast<int>(prompt_len));
  if (q.prompt_logprobs_from >= 0 && static_cast<size_t>(q.prompt_logprobs_from) >= prompt_len) {
    q.prompt_logprobs_from = -1;
    q.prompt_top_logprobs = 0;
  }
  return q;
}

Generation::Generation(App& app, std::shared_ptr<http::Responder> responder, std::vector<PromptInput> prompts,
                       SamplingParams params, std::unique_ptr<Formatter> formatter)
    : app_(app),
      responder_(std::move(responder)),
      prompts_(std::move(prompts)),
      params_(std::move(params)),
      formatter_(std::move(formatter)),
      prompt_lp_(prompts_.size()),
      prompt_top_(prompts_.size()),
      created_(static_cast<int64_t>(std::time(nullptr))),
      arrival_(now_seconds()) {
  const Tokenizer& tok = app_.engine.tokenizer();
  for (size_t p = 0; p < prompts_.size(); ++p)
    for (int i = 0; i < params_.n; ++i)
      choices_.emplace_back(static_cast<int>(p) * params_.n + i, static_cast<int>(p),
                            OutputProcessor(tok, params_, prompts_[p].ids));
}

std::optional<ApiError> Generation::start() {
  std::vector<EngineLoop::NewRequest> requests;
  const int max_len = app_.engine.config().max_model_len;
  for (const PromptInput& p : prompts_) requests.push_back({p.ids, params_for_prompt(params_, p.ids.size(), max_len)});
  auto streams = app_.engine.loop().add_all(std::move(requests));
  if (!streams.ok()) {
    if (app_.stopping) return ApiError{503, "the server is shutting down", ""};
    return bad_request(streams.status().message());
  }
  streams_ = std::move(*streams);
  auto self = shared_from_this();
  responder_->on_disconnect([self] { self->abort_all(); });
  for (auto& s : streams_) s->set_notify([self] { self->schedule_pump(); });
  return std::nullopt;
}

int Generation::prompt_tokens() const {
  int n = 0;
  for (const PromptInput& p : prompts_) n += static_cast<int>(p.ids.size());
  return n;
}

int Generation::completion_tokens() const {
  int n = 0;
  for (const Choice& c : choices_) n += c.num_tokens;
  return n;
}

void Generation::abort_all() {
  for (auto& s : streams_) s->abort();
}

void Generation::schedule_pump() {
  if (pump_queued_.exchange(true)) return;
  auto self = shared_from_this();
  app_.pool.post([self] { self->pump(); });
}

void Generation::pump() {
  std::lock_guard<std::mutex> lock(mutex_);
  pump_queued_ = false;  // before polling: output that arrives from now on queues another pump
  bool all_ended = true;
  for (size_t p = 0; p < streams_.size(); ++p) {
    for (RequestOutput& o : streams_[p]->poll()) take(static_cast<int>(p), o);
    all_ended = all_ended && streams_[p]->ended();
  }
  finish_if_done();
  if (all_ended)
    for (auto& s : streams_) s->set_notify(nullptr);  // breaks the stream -> generation cycle
}

void Generation::take(int prompt, RequestOutput& o) {
  Choice& c = choices_[prompt * params_.n + o.index];
  if (o.index == 0) {
    prompt_lp_[prompt].insert(prompt_lp_[prompt].end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
    for (auto& t : o.prompt_top_logprobs) prompt_top_[prompt].push_back(std::move(t));
  }
  if (o.finished()) {
    c.engine_done = true;
    if (o.index == 0) cached_tokens_ += o.num_cached_tokens;
    if (engine_arrival_ == 0) engine_arrival_ = o.arrival_time, engine_first_token_ = o.first_token_time;
    record_metrics(c, o);
  }
  if (c.done) return;  // a stop string ended it; the engine was catching up
  if (o.finish == FinishReason::kError) {
    // A grammar that leaves no token to sample is the request's fault (the engine's message
    // starts so), not the server's.
    const bool grammar = o.error.rfind("structured output", 0) == 0;
    error_ = grammar ? bad_request(o.error) : ApiError{500, "generation failed: " + o.error, ""};
    c.done = true, c.finish = FinishReason::kError;
    return;
  }
  Delta d;
  d.first = c.num_tokens == 0 && c.full_text.empty();
  const TextDelta t = c.text.process(o);
  d.text = t.text, d.token_ids = o.token_ids, d.logprobs = o.logprobs, d.top_logprobs = o.top_logprobs;
  const double now = now_seconds();
  if (!o.token_ids.empty()) {
    if (c.first_output == 0) c.first_output = now;
    if (c.last_output > 0) c.inter_token.push_back(now - c.last_output);
    c.last_output = now;
  }
  c.num_tokens += static_cast<int>(o.token_ids.size());
  c.full_text += d.text;
  if (t.finish != FinishReason::kNone) {
    c.finish = t.finish;
    if (!t.stop_string.empty()) c.stop_reason = t.stop_string;
    else if (o.stop_token && std::find(params_.stop_token_ids.begin(), params_.stop_token_ids.end(), *o.stop_token) !=
                                 params_.stop_token_ids.end())
      c.stop_reason = *o.stop_token;
    d.finished = true;
    if (!o.finished()) streams_[prompt]->abort(o.index);
  }
  formatter_->on_delta(c, d);
  if (d.finished) c.done = true;
}

void Generation::finish_if_done() {
  if (answered_) return;
  for (const Choice& c : choices_)
    if (!c.done) return;
  answered_ = true;
  double first = 0;
  for (const Choice& c : choices_)
    if (c.first_output > 0 && (first == 0 || c.first_output < first)) first = c.first_output;
  if (auto* log = dynamic_cast<LoggedResponder*>(responder_.get()))
    log->annotate(prompt_tokens(), completion_tokens(), first, engine_arrival_, engine_first_token_);
  formatter_->on_done(choices_, error_);
  --app_.in_flight;
}

void Generation::record_metrics(const Choice& c, const RequestOutput& o) {
  RequestRecord r;
  const FinishReason f = c.finish != FinishReason::kNone ? c.finish : o.finish;
  r.finished_reason = finish_reason_json(f);
  r.prompt_tokens = c.index % params_.n == 0 ? static_cast<int>(prompts_[c.prompt].ids.size()) : 0;
  r.generation_tokens = c.num_tokens + (c.done ? 0 : static_cast<int>(o.token_ids.size()));
  r.arrival = arrival_, r.scheduled = o.scheduled_time, r.first_token = o.first_token_time, r.finished = now_seconds();
  r.inter_token_seconds = c.inter_token;
  app_.metrics.record(r);
}

}  // namespace tk::server
