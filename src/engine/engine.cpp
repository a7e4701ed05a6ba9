// The engine: owns the backend, model, KV cache, scheduler and runner; turns sampled ids into
// streamed text and decides when each request is done.
#include <algorithm>
#include <random>

#include "engine/engine.h"

namespace tk {

// The ids that end a sequence: generation_config.json's, config.json's, else the tokenizer's eos.
static std::vector<int32_t> collect_eos_ids(const GenerationConfig& generation, const ModelConfig& config,
                                            const Tokenizer& tokenizer) {
  std::vector<int32_t> ids = generation.eos_token_ids;
  for (int32_t id : config.eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  if (ids.empty())
    if (auto eos = tokenizer.eos_token())
      if (auto id = tokenizer.token_to_id(*eos)) ids.push_back(*id);
  return ids;
}

Engine::~Engine() = default;

Result<std::unique_ptr<Engine>> Engine::create(const EngineConfig& config, const ProgressSink& progress) {
  std::unique_ptr<Engine> engine(new Engine());
  TK_RETURN_IF_ERROR(engine->init(config, progress));
  return engine;
}

Status Engine::init(const EngineConfig& config, const ProgressSink& progress) {
  TK_RETURN_IF_ERROR(config.validate());
  config_ = config;
  if (!is_directory(config.model_dir)) return not_found(config.model_dir + ": model directory does not exist");
  TK_ASSIGN_OR_RETURN(backend_, make_backend(config.device, config.num_threads, config.dtype));
  TK_ASSIGN_OR_RETURN(tokenizer_, Tokenizer::load(config.model_dir));
  TK_ASSIGN_OR_RETURN(generation_, load_generation_config(config.model_dir));
  TK_ASSIGN_OR_RETURN(model_, Model::load(config.model_dir, *backend_, progress));
  TK_RETURN_IF_ERROR(backend_->configure(model_->attention_shape(), config.page_size));
  eos_ids_ = collect_eos_ids(generation_, model_->config(), *tokenizer_);
  const int64_t model_max = model_->config().max_position_embeddings;
  if (config_.max_model_len == 0) config_.max_model_len = static_cast<int>(model_max);
  if (config_.max_model_len > model_max)
    return invalid_argument("--max-model-len " + std::to_string(config_.max_model_len) +
                            " exceeds the model's max_position_embeddings " + std::to_string(model_max));
  TK_RETURN_IF_ERROR(model_->reserve(config_.max_num_batched_tokens, config_.max_num_seqs));
  TK_RETURN_IF_ERROR(size_kv_cache());
  SchedulerConfig sc{config_.max_num_seqs, config_.max_num_batched_tokens, config_.max_model_len};
  scheduler_ = std::make_unique<Scheduler>(sc, *pool_);
  runner_ = std::make_unique<ModelRunner>(*model_, cache_);
  return Status::ok_status();
}

// KV pages: enough for max_num_seqs full-length sequences when memory allows, never fewer than
// one full-length sequence.
Status Engine::size_kv_cache() {
  const ModelConfig& c = model_->config();
  const int page = config_.page_size;
  const size_t bytes_per_token = 2 * static_cast<size_t>(c.num_layers * c.num_kv_heads * c.head_dim) *
                                 dtype_size(backend_->compute_dtype());
  const int64_t min_pages = (config_.max_model_len + page - 1) / page;
  int64_t pages = 0;
  if (config_.kv_cache_tokens > 0) {
    pages = (config_.kv_cache_tokens + page - 1) / page;
  } else {
    const double share = backend_->device() == Device::kCpu ? 0.25 : config_.gpu_memory_utilization;
    const int64_t budget = static_cast<int64_t>(static_cast<double>(backend_->free_memory()) * share);
    const int64_t want = min_pages * config_.max_num_seqs;
    pages = std::min<int64_t>(want, budget / static_cast<int64_t>(bytes_per_token * page));
  }
  if (pages < min_pages)
    return out_of_memory("the KV cache holds " + std::to_string(pages * page) + " tokens but --max-model-len is " +
                         std::to_string(config_.max_model_len) + "; lower --max-model-len");
  TK_ASSIGN_OR_RETURN(cache_, backend_->alloc_kv_cache(static_cast<int>(c.num_layers), static_cast<int>(pages), page,
                                                       static_cast<int>(c.num_kv_heads), static_cast<int>(c.head_dim)));
  pool_ = std::make_unique<PagePool>(static_cast<int>(pages));
  TK_LOG_DEBUG("KV cache: " + std::to_string(pages) + " pages of " + std::to_string(page) + " tokens");
  return Status::ok_status();
}


SamplingParams Engine::default_sampling_params() const {
  SamplingParams p;
  if (generation_.temperature) p.temperature = *generation_.temperature;
  if (generation_.top_p) p.top_p = *generation_.top_p;
  if (generation_.top_k) p.top_k = *generation_.top_k;
  if (generation_.min_p) p.min_p = *generation_.min_p;
  if (generation_.repetition_penalty) p.repetition_penalty = *generation_.repetition_penalty;
  if (generation_.do_sample && !*generation_.do_sample) p.temperature = 0.f;
  return p;
}

Result<int64_t> Engine::add_request(std::vector<int32_t> prompt_ids, SamplingParams params) {
  TK_RETURN_IF_ERROR(params.validate());
  if (prompt_ids.empty()) return invalid_argument("the prompt is empty");
  const int64_t vocab = model_->config().vocab_size;
  for (int32_t id : prompt_ids)
    if (id < 0 || id >= vocab) return invalid_argument("prompt token id " + std::to_string(id) + " is outside the vocabulary");
  if (static_cast<int>(prompt_ids.size()) >= config_.max_model_len)
    return invalid_argument("the prompt has " + std::to_string(prompt_ids.size()) + " tokens; the model's context is " +
                            std::to_string(config_.max_model_len) + " (--max-model-len)");
  auto seq = std::make_unique<Sequence>(next_id_++, std::move(prompt_ids), std::move(params), config_.page_size);
  seq->seed = seq->params.seed ? *seq->params.seed : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  seq->detok = std::make_unique<IncrementalDetokenizer>(*tokenizer_, seq->params.skip_special_tokens);
  seq->detok->prime(seq->prompt);
  seq->arrival_time = now_seconds();
  scheduler_->add(seq.get());
  sequences_.push_back(std::move(seq));
  return sequences_.back()->id;
}

void Engine::abort(int64_t request_id) {
  auto it = std::find_if(sequences_.begin(), sequences_.end(), [&](auto& s) { return s->id == request_id; });
  if (it == sequences_.end()) return;
  scheduler_->finish(it->get());
  sequences_.erase(it);
}

RequestOutput Engine::process(Sequence& seq, const SampledToken* sampled) {
  RequestOutput out;
  out.request_id = seq.id;
  const int32_t tok = sampled->token;
  if (seq.output.empty()) seq.first_token_time = now_seconds();
  seq.output.push_back(tok);
  out.token_ids.push_back(tok);
  if (seq.params.logprobs) out.logprobs.push_back(sampled->logprob);
  const SamplingParams& p = seq.params;
  const std::vector<int32_t>& eos = eos_ids_;
  bool stop_token = std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), tok) != p.stop_token_ids.end() ||
                    (!p.ignore_eos && std::find(eos.begin(), eos.end(), tok) != eos.end());
  if (!stop_token) seq.pending_text += seq.detok->push(tok);
  const bool length = static_cast<int>(seq.output.size()) >= p.max_tokens || seq.num_tokens() >= config_.max_model_len;
  const bool ending = stop_token || length;
  if (ending) seq.pending_text += seq.detok->flush();
  bool stopped = false;
  out.text = release_text(seq.pending_text, p.stop, ending, &stopped);
  if (stopped || stop_token) out.finish = FinishReason::kStop;
  else if (length) out.finish = FinishReason::kLength;
  seq.emitted_text += out.text;
  return out;
}

Result<std::vector<RequestOutput>> Engine::step() {
  ScheduledStep step = scheduler_->schedule();
  std::vector<RequestOutput> outputs;
  if (step.empty()) {
    if (scheduler_->has_work()) return out_of_memory("no request fits in the KV cache");
    return outputs;
  }
  TK_ASSIGN_OR_RETURN(std::vector<SampledToken> sampled, runner_->run(step));
  size_t k = 0;
  std::vector<Sequence*> done;
  for (const ScheduledSeq& s : step.seqs) {
    s.seq->num_computed += s.num_new;
    if (!s.sample) continue;
    outputs.push_back(process(*s.seq, &sampled[k++]));
    if (outputs.back().finished()) done.push_back(s.seq);
  }
  for (Sequence* seq : done) {
    scheduler_->finish(seq);
    std::erase_if(sequences_, [&](auto& s) { return s.get() == seq; });
  }
  return outputs;
}

Result<std::vector<float>> Engine::score(const std::vector<int32_t>& tokens, int first) {
  if (scheduler_->has_work()) return internal_error("score() needs an idle engine");
  const int n = static_cast<int>(tokens.size());
  if (n < 2 || first < 0 || first >= n - 1) return invalid_argument("score: nothing to score");
  if (n > config_.max_model_len) return invalid_argument("score: window longer than --max-model-len");
  Sequence seq(0, tokens, SamplingParams{}, config_.page_size);
  if (!seq.pages.grow(*pool_, n)) return out_of_memory("score: the KV cache cannot hold the window");
  std::vector<float> result;
  Status status;
  const int chunk = config_.max_num_batched_tokens;
  for (int start = 0; start < n - 1 && status.ok(); start += chunk) {
    ScheduledStep step;
    step.seqs.push_back({&seq, start, std::min(chunk, n - start), false});
    StepBatch batch = ModelRunner::build_batch(step);
    std::vector<int32_t> targets;
    for (int t = start; t < start + step.seqs[0].num_new; ++t) {
      if (t < first || t >= n - 1) continue;
      batch.logit_rows.push_back(t - start);
      targets.push_back(tokens[t + 1]);
    }
    status = model_->reserve(chunk, batch.num_logits());
    if (status.ok()) status = backend_->begin_step(batch);
    if (!status.ok()) break;
    auto logits = model_->forward(batch, cache_);
    if (!logits.ok()) { status = logits.status(); break; }
    if (targets.empty()) continue;
    std::vector<float> lp;
    status = backend_->token_logprobs(*logits, targets, lp);
    result.insert(result.end(), lp.begin(), lp.end());
  }
  seq.pages.release_all(*pool_);
  TK_RETURN_IF_ERROR(status);
  return result;
}

}  // namespace tk
