// The engine core: sizes the KV cache from what memory is left after the weights and activations,
// then runs schedule -> run -> update, one step at a time, and reports what each step did to each
// sequence. Failures are per request: a request is checked before it is queued, and a step that
// fails ends only the sequences it ran.
#include "engine_core/engine_core.h"

#include <algorithm>
#include <random>

namespace tk {
namespace {

constexpr size_t kGraphMemoryMargin = 256ull << 20;  // captured graphs and late allocations
constexpr double kCpuKvShare = 0.25;                  // of free RAM, on the CPU backend

double gib(size_t bytes) { return static_cast<double>(bytes) / (1ull << 30); }

std::string fixed2(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

// The KV cache's share of one GPU (the backend current on this thread), by vLLM's rule:
// gpu_memory_utilization x its memory, minus what the weights, activations and workspaces took
// since `free_before` (its free memory before loading).
Result<size_t> gpu_kv_budget(Backend& gpu, size_t free_before, int rank, double utilization) {
  const size_t total = gpu.total_memory(), now = gpu.free_memory();
  const auto allowed = static_cast<size_t>(utilization * static_cast<double>(total));
  if (free_before < allowed)
    return out_of_memory("free memory on the device" + (rank > 0 ? " of rank " + std::to_string(rank) : std::string()) +
                         " (" + fixed2(gib(free_before)) + "/" + fixed2(gib(total)) +
                         " GiB) at start-up is less than --gpu-memory-utilization " + fixed2(utilization) + " of it (" +
                         fixed2(gib(allowed)) + " GiB); lower --gpu-memory-utilization or free memory used by other processes");
  const size_t used = free_before > now ? free_before - now : 0;
  return allowed > used + kGraphMemoryMargin ? allowed - used - kGraphMemoryMargin : 0;
}

}  // namespace

// Tensor parallelism: each rank's plan and KV cache are freed with its device current, the runner
// first (its plans), while the ranks' models live. One rank keeps the members' own order.
EngineCore::~EngineCore() {
  if (model_.other_ranks.empty()) return;
  runner_.reset();
  for (size_t r = 0; r < rank_caches_.size() && r < model_.other_ranks.size(); ++r) {
    model_.other_ranks[r].backend->bind_to_current_thread();
    rank_caches_[r] = KvCacheTensors();
  }
  backend().bind_to_current_thread();
}

Result<std::unique_ptr<EngineCore>> EngineCore::create(const EngineConfig& config, LoadedModel model) {
  std::unique_ptr<EngineCore> core(new EngineCore());
  TK_RETURN_IF_ERROR(core->init(config, std::move(model)));
  return core;
}

Status EngineCore::init(const EngineConfig& config, LoadedModel model) {
  TK_RETURN_IF_ERROR(config.validate());
  config_ = config;
  model_ = std::move(model);
  const int64_t model_max = model_config().max_position_embeddings;
  if (config_.max_model_len == 0) config_.max_model_len = static_cast<int>(model_max);
  if (config_.max_model_len > model_max)
    return invalid_argument("--max-model-len " + std::to_string(config_.max_model_len) +
                            " exceeds the model's max_position_embeddings " + std::to_string(model_max));
  const int tp_size = 1 + static_cast<int>(model_.other_ranks.size());
  if (tp_size != config_.tensor_parallel_size)
    return internal_error("the model was loaded as " + std::to_string(tp_size) + " tensor-parallel ranks, the config asks for " +
                          std::to_string(config_.tensor_parallel_size));
  // Tensor parallelism: steps run synchronously. An overlapped step reads its decode inputs from
  // the last sampling's ids in rank 0's memory, which the ranks past the first never hold.
  if (tp_size > 1 && config_.async_scheduling) {
    config_.async_scheduling = false;
    TK_LOG_INFO("overlap scheduling is off with --tensor-parallel-size " + std::to_string(tp_size) +
                ": the ranks past the first never hold the sampled ids an overlapped step reads");
  }
  RunnerConfig rc;
  rc.max_num_seqs = config_.max_num_seqs;
  rc.max_num_batched_tokens = config_.max_num_batched_tokens;
  rc.max_model_len = config_.max_model_len;
  rc.page_size = config_.page_size;
  rc.use_graphs = !config_.enforce_eager;
  rc.eos_token_ids = model_.eos_token_ids;
  rank_caches_.resize(model_.other_ranks.size());  // allocated by size_kv_cache; the runner keeps their addresses
  std::vector<RankShard> ranks;
  for (size_t r = 0; r < model_.other_ranks.size(); ++r) ranks.push_back({model_.other_ranks[r].model.get(), &rank_caches_[r]});
  TK_ASSIGN_OR_RETURN(runner_, ModelRunner::create(*model_.model, cache_, rc, std::move(ranks)));
  TK_RETURN_IF_ERROR(backend().reserve_sampling(rc.max_num_seqs, model_config().vocab_size));
  TK_RETURN_IF_ERROR(size_kv_cache());
  SchedulerConfig sc;
  sc.max_num_seqs = config_.max_num_seqs;
  sc.max_num_batched_tokens = config_.max_num_batched_tokens;
  sc.max_model_len = config_.max_model_len;
  sc.max_prompt_logprob_rows = rc.max_prompt_logprob_rows;
  sc.enable_prefix_caching = config_.enable_prefix_caching;
  sc.eos_token_ids = model_.eos_token_ids;
  scheduler_ = std::make_unique<Scheduler>(sc, *pool_);
  return runner_->warm_up();
}

// KV pages from what the budget leaves: on the GPU, vLLM's rule (gpu_memory_utilization x total
// memory, minus what the weights, activations and workspaces took); on the CPU, enough for
// max_num_seqs full-length sequences within a quarter of free RAM. Never fewer than one
// full-length sequence; one more page is the runner's scratch page.
Status EngineCore::size_kv_cache() {
  const ModelConfig& c = model_config();
  const int page = config_.page_size;
  // A page of every rank: each holds its KV heads (all of them at one rank).
  const int64_t rank_kv_heads = model_.model->shard().num_kv_heads;
  const int64_t ranks = 1 + static_cast<int64_t>(model_.other_ranks.size());
  const size_t page_bytes = 2 * static_cast<size_t>(c.num_layers * rank_kv_heads * ranks * c.head_dim) * page *
                            (config_.kv_cache_fp8 ? 1 : dtype_size(backend().compute_dtype()));
  const int64_t seq_pages = (config_.max_model_len + page - 1) / page;
  int64_t pages = 0;
  if (config_.kv_cache_tokens > 0) {
    pages = (config_.kv_cache_tokens + page - 1) / page;
  } else if (backend().device() == Device::kCpu) {
    const auto budget = static_cast<int64_t>(static_cast<double>(backend().free_memory()) * kCpuKvShare);
    pages = std::min<int64_t>(seq_pages * config_.max_num_seqs, budget / static_cast<int64_t>(page_bytes));
  } else {
    // Each GPU holds its rank's share of a page; the device with the least room sizes them all.
    TK_ASSIGN_OR_RETURN(size_t budget, gpu_kv_budget(backend(), model_.free_memory_before, 0, config_.gpu_memory_utilization));
    for (size_t r = 0; r < model_.other_ranks.size(); ++r) {
      const LoadedRank& rank = model_.other_ranks[r];
      TK_ASSIGN_OR_RETURN(const size_t b, on_rank_device(*rank.backend, backend(), [&] {
                            return gpu_kv_budget(*rank.backend, rank.free_memory_before, static_cast<int>(r + 1),
                                                 config_.gpu_memory_utilization);
                          }));
      budget = std::min(budget, b);
    }
    pages = static_cast<int64_t>(budget / (page_bytes / static_cast<size_t>(ranks))) - 1;
  }
  if (pages < seq_pages)
    return out_of_memory("the KV cache holds " + std::to_string(pages * page) + " tokens but --max-model-len is " +
                         std::to_string(config_.max_model_len) + "; lower --max-model-len" +
                         (backend().device() == Device::kCpu ? "" : " or raise --gpu-memory-utilization"));
  auto alloc_cache = [&](Backend& backend) {
    return backend.alloc_kv_cache(static_cast<int>(c.num_layers), static_cast<int>(pages + 1), page,
                                  static_cast<int>(rank_kv_heads), static_cast<int>(c.head_dim), config_.kv_cache_fp8);
  };
  TK_ASSIGN_OR_RETURN(cache_, alloc_cache(backend()));
  for (size_t r = 0; r < rank_caches_.size(); ++r) {
    Backend& rank = model_.other_ranks[r].model->backend();
    TK_ASSIGN_OR_RETURN(rank_caches_[r], on_rank_device(rank, backend(), [&] { return alloc_cache(rank); }));
  }
  if (config_.kv_cache_fp8) set_kv_cache_scales();
  pool_ = std::make_unique<PagePool>(static_cast<int>(pages));  // the last page is the runner's scratch page
  TK_LOG_INFO("KV cache: " + std::to_string(pages * page) + " tokens (" + std::to_string(pages) + " pages of " +
              std::to_string(page) + ", " + fixed2(gib(page_bytes * (pages + 1))) + " GiB" +
              (config_.kv_cache_fp8 ? ", fp8 e4m3" : "") + ")");
  return Status::ok_status();
}

// --kv-cache-dtype fp8: the checkpoint's scales per layer, 1.0 where it holds none (as vLLM,
// with a warning: values beyond +-448 then saturate).
void EngineCore::set_kv_cache_scales() {
  const std::vector<LayerWeights>& layers = model_.model->weights().layers;
  int missing = 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    const float k = layers[l].k_scale, v = layers[l].v_scale;
    missing += k > 0.f && v > 0.f ? 0 : 1;
    cache_.k_scale[l] = k > 0.f ? k : 1.f;
    cache_.v_scale[l] = v > 0.f ? v : 1.f;
    for (KvCacheTensors& rank : rank_caches_) rank.k_scale[l] = cache_.k_scale[l], rank.v_scale[l] = cache_.v_scale[l];
  }
  if (missing > 0)
    TK_LOG_WARN("--kv-cache-dtype fp8: the checkpoint holds no KV cache scales (k_scale / v_scale) for " +
                std::to_string(missing) + " of " + std::to_string(layers.size()) +
                " layers; using 1.0 there, so K or V values beyond +-448 saturate (checkpoints quantized with a "
                "kv_cache_scheme carry calibrated scales)");
}

Status EngineCore::validate(const std::vector<int32_t>& prompt, const SamplingParams& params) const {
  TK_RETURN_IF_ERROR(params.validate());
  if (prompt.empty()) return invalid_argument("the prompt is empty");
  const int64_t vocab = model_config().vocab_size;
  for (int32_t id : prompt)
    if (id < 0 || id >= vocab)
      return invalid_argument("prompt token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(vocab) + ")");
  const int64_t len = static_cast<int64_t>(prompt.size());
  // As vLLM: a prompt may fill the context (it then ends after one token); longer ones cannot run.
  if (len > config_.max_model_len)
    return invalid_argument("the prompt has " + std::to_string(len) + " tokens; the model's context is " +
                            std::to_string(config_.max_model_len) + " (--max-model-len)");
  if (params.n > config_.max_num_seqs)
    return invalid_argument("n is " + std::to_string(params.n) + " but at most --max-num-seqs " +
                            std::to_string(config_.max_num_seqs) + " sequences run at once");
  for (const auto& [token, bias] : params.logit_bias)
    if (token < 0 || token >= vocab)
      return invalid_argument("logit_bias token id " + std::to_string(token) + " is outside the vocabulary [0, " +
                              std::to_string(vocab) + ")");
  for (int32_t token : params.stop_token_ids)
    if (token < 0 || token >= vocab)
      return invalid_argument("stop_token_ids holds " + std::to_string(token) + ", outside the vocabulary");
  if (params.grammar && params.grammar->vocabulary().mask_size() != vocab)
    return invalid_argument("the grammar was compiled for a vocabulary of " +
                            std::to_string(params.grammar->vocabulary().mask_size()) + " tokens; the model has " +
                            std::to_string(vocab));
  if (params.prompt_logprobs_from >= len)
    return invalid_argument("prompt_logprobs_from " + std::to_string(params.prompt_logprobs_from) +
                            " is past the prompt's last token");
  return Status::ok_status();
}

void EngineCore::add(int64_t request_id, std::vector<int32_t> prompt, SamplingParams params) {
  const uint64_t seed = params.seed ? *params.seed : (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  ActiveRequest& r = requests_[request_id];
  r.seqs = make_sequences(request_id, std::move(prompt), std::move(params), seed, config_.page_size);
  r.reported.assign(r.seqs.size(), false);
  std::vector<Sequence*> group;
  for (auto& s : r.seqs) group.push_back(s.get());
  scheduler_->add(group);
}

void EngineCore::report_ended(int64_t request_id, std::vector<RequestOutput>& outputs) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  ActiveRequest& r = it->second;
  bool all = true;
  for (size_t i = 0; i < r.seqs.size(); ++i) {
    const Sequence& seq = *r.seqs[i];
    // Overlap scheduling: a sequence that ended on a token still on the device is reported with
    // that token, when it comes back (an aborted one at once: its pending token is dropped).
    const bool natural = seq.finish == FinishReason::kStop || seq.finish == FinishReason::kLength;
    if (!seq.finished() || (natural && !seq.output.empty() && seq.output.back() == kPendingToken)) {
      all = false;
      continue;
    }
    if (r.reported[i]) continue;
    r.reported[i] = true;
    RequestOutput o;
    o.request_id = request_id, o.index = seq.index, o.finish = seq.finish, o.stop_token = seq.stop_token;
    o.num_prompt_tokens = seq.prompt_len(), o.num_cached_tokens = seq.num_cached_tokens;
    o.arrival_time = seq.arrival_time, o.scheduled_time = seq.scheduled_time;
    o.first_token_time = seq.first_token_time, o.finished_time = seq.finished_time;
    o.error = seq.error;  // a grammar's dead end (fail_step's errors come with its outputs)
    // A sequence that finished this step already has an output: its final fields go there (the
    // last one: an overlapped step's outputs may precede a synchronous step's in `outputs`).
    auto same = [&](const RequestOutput& x) { return x.request_id == request_id && x.index == seq.index; };
    auto last = std::find_if(outputs.rbegin(), outputs.rend(), same);
    if (last != outputs.rend()) {
      auto prev = std::prev(last.base());
      o.token_ids = std::move(prev->token_ids), o.logprobs = std::move(prev->logprobs);
      o.top_logprobs = std::move(prev->top_logprobs), o.prompt_logprobs = std::move(prev->prompt_logprobs);
      o.prompt_top_logprobs = std::move(prev->prompt_top_logprobs);
      if (!prev->error.empty()) o.error = std::move(prev->error);
      *prev = std::move(o);
    } else {
      outputs.push_back(std::move(o));
    }
  }
  if (!all) return;
  // A launched step may still name its sequences (overlap scheduling): they outlive it.
  if (config_.async_scheduling) retired_.push_back(std::move(it->second));
  requests_.erase(it);
}

void EngineCore::abort(int64_t request_id, int index, std::vector<RequestOutput>& outputs) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  for (auto& seq : it->second.seqs)
    if (index < 0 || seq->index == index) scheduler_->end(seq.get(), FinishReason::kAbort);
  report_ended(request_id, outputs);
}

void EngineCore::fail_step(const ScheduledStep& step, const Status& error, std::vector<RequestOutput>& outputs) {
  TK_LOG_WARN("step failed, ending its " + std::to_string(step.seqs.size()) + " sequences: " + error.to_string());
  std::vector<int64_t> ids;
  for (const ScheduledSeq& s : step.seqs) {
    RequestOutput o;
    o.request_id = s.seq->request_id, o.index = s.seq->index, o.error = error.message();
    outputs.push_back(std::move(o));
    scheduler_->end(s.seq, FinishReason::kError);
    ids.push_back(s.seq->request_id);
  }
  for (int64_t id : ids) report_ended(id, outputs);
}

EngineStats EngineCore::stats() const {
  EngineStats s = counters_;
  s.num_running = scheduler_->num_running();
  s.num_waiting = scheduler_->num_waiting();
  s.num_kv_pages = pool_->num_pages();
  s.kv_cache_usage = 1.0 - static_cast<double>(pool_->num_free()) / std::max(1, pool_->num_pages());
  s.prefix_cache = scheduler_->prefix_cache_stats();
  s.late_graph_captures = runner_->late_captures();
  s.grammar_masks = runner_->grammar_mask_stats().masks;
  s.grammar_mask_seconds = runner_->grammar_mask_stats().seconds;
  return s;
}

}  // namespace tk
