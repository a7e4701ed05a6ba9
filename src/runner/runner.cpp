// The model runner: one StepBatch per step, planned once by begin_step(); decode steps replayed
// from graphs keyed by the plan; sampling with only ids (and asked-for logprobs) coming back.
#include "runner/runner.h"

#include <algorithm>
#include <cmath>

namespace tk {
namespace {

bool penalised(const SamplingParams& p) {
  return p.repetition_penalty != 1.f || p.presence_penalty != 0.f || p.frequency_penalty != 0.f;
}

}  // namespace

std::vector<int> graph_batch_sizes(int max_num_seqs) {
  // Larger decode batches run eagerly (vLLM stops capturing at 512 too): their launches are a
  // small share of a long step, and --max-num-seqs 100000 must not mean 12,500 captures.
  const int cap = std::min(max_num_seqs, kMaxGraphBatch);
  std::vector<int> sizes;
  for (int b : {1, 2, 4}) sizes.push_back(b);
  for (int b = 8; b < cap + 8; b += 8) sizes.push_back(b);
  while (sizes.size() > 1 && sizes[sizes.size() - 2] >= cap) sizes.pop_back();
  return sizes;
}

// NOTE: no graphs under tensor parallelism yet: each rank would capture its own, with its
// all-reduces inside (the NCCL side's work).
ModelRunner::ModelRunner(Model& model, KvCacheTensors& cache, const RunnerConfig& config,
                         std::vector<RankShard> other_ranks)
    : model_(model),
      cache_(cache),
      ranks_(std::move(other_ranks)),
      config_(config),
      graph_sizes_(graph_batch_sizes(config.max_num_seqs)),
      use_graphs_(config.use_graphs && ranks_.empty() && model.backend().supports_graphs() &&
                  !env_flags().disable_cuda_graphs) {}

Result<std::unique_ptr<ModelRunner>> ModelRunner::create(Model& model, KvCacheTensors& cache, const RunnerConfig& config,
                                                         std::vector<RankShard> other_ranks) {
  for (const RankShard& rank : other_ranks) TK_CHECK(rank.model != nullptr && rank.cache != nullptr);
  std::unique_ptr<ModelRunner> r(new ModelRunner(model, cache, config, std::move(other_ranks)));
  const int max_seqs = std::max(config.max_num_seqs, r->graph_sizes_.back());
  StepCapacity cap;
  cap.max_tokens = std::max(config.max_num_batched_tokens, max_seqs);
  cap.max_seqs = max_seqs;
  cap.max_pages_per_seq = (config.max_model_len + config.page_size - 1) / config.page_size;
  cap.max_history = cap.max_tokens;
  TK_RETURN_IF_ERROR(model.reserve(cap.max_tokens, max_seqs + config.max_prompt_logprob_rows));
  r->plan_ = model.backend().new_step_plan(cap);
  if (r->ranks_.empty()) return r;
  std::vector<Backend*> backends;
  std::vector<Model*> models = {&model};
  for (const RankShard& rank : r->ranks_) {
    TK_RETURN_IF_ERROR(on_rank_device(rank.model->backend(), model.backend(), [&] {  // activations, plan
      TK_RETURN_IF_ERROR(rank.model->reserve(cap.max_tokens, max_seqs + config.max_prompt_logprob_rows));
      r->rank_plans_.push_back(rank.model->backend().new_step_plan(cap));
      return Status::ok_status();
    }));
    backends.push_back(&rank.model->backend());
    models.push_back(rank.model);
  }
  // A rank that threw mid-step never reaches its next all-reduce: the others are released there.
  auto abort_all = [models] {
    for (Model* m : models)
      if (Communicator* c = m->communicator()) c->abort();
  };
  r->rank_threads_ = std::make_unique<RankThreads>(std::move(backends), abort_all);
  TK_RETURN_IF_ERROR(r->rank_threads_->run([&](int rank) {  // before the KV cache takes the memory
    Communicator* c = (rank == 0 ? &model : r->ranks_[rank - 1].model)->communicator();
    return c ? c->warm_up() : Status::ok_status();
  }));
  return r;
}

ModelRunner::~ModelRunner() {
  rank_threads_.reset();
  for (size_t r = 0; r < rank_plans_.size(); ++r) {
    ranks_[r].model->backend().bind_to_current_thread();
    rank_plans_[r].reset();
  }
  if (!rank_plans_.empty()) model_.backend().bind_to_current_thread();
}

Status ModelRunner::begin_step(const StepBatch& batch) {
  if (ranks_.empty()) return model_.backend().begin_step(batch, *plan_);
  // Deferred inputs come from the last sampling's ids in rank 0's memory: the other ranks would
  // read ids they never held (EngineCore turns overlap scheduling off under tensor parallelism).
  if (!batch.last_sample_to_token.empty() || !batch.last_sample_to_history.empty())
    return internal_error("a step with inputs deferred to the last sampling (overlap scheduling) reached " +
                          std::to_string(ranks_.size() + 1) + " tensor-parallel ranks, which run only synchronous steps");
  return rank_threads_->run([&](int rank) {
    return rank == 0 ? model_.backend().begin_step(batch, *plan_)
                     : ranks_[rank - 1].model->backend().begin_step(batch, *rank_plans_[rank - 1]);
  });
}

void ModelRunner::add_padding(StepBatch& b, int pad_to) const {
  // Padded rows decode one token at position 0 of the scratch page: they compute, write only
  // there, and their logits are never read.
  const int ps = cache_.page_size(), scratch = cache_.num_pages() - 1;
  const int old_stride = b.max_pages_per_seq, stride = std::max(old_stride, 1);
  if (stride != old_stride) {
    std::vector<int32_t> table(static_cast<size_t>(b.num_seqs()) * stride, -1);
    for (int s = 0; s < b.num_seqs(); ++s)
      std::copy_n(b.page_table.begin() + static_cast<size_t>(s) * old_stride, old_stride, table.begin() + s * stride);
    b.page_table = std::move(table), b.max_pages_per_seq = stride;
  }
  if (b.query_start.empty()) b.query_start.push_back(0);
  while (b.num_seqs() < pad_to) {
    b.logit_rows.push_back(b.num_tokens());
    b.token_ids.push_back(0), b.positions.push_back(0), b.slot_mapping.push_back(scratch * ps);
    b.query_start.push_back(b.num_tokens());
    b.context_lens.push_back(1);
    b.page_table.push_back(scratch);
    b.page_table.insert(b.page_table.end(), stride - 1, -1);
  }
}

StepBatch ModelRunner::build_batch(const ScheduledStep& step) {
  StepBatch b;
  b.query_start.push_back(0);
  for (const ScheduledSeq& s : step.seqs)
    b.max_pages_per_seq = std::max(b.max_pages_per_seq, static_cast<int>(s.seq->pages.pages().size()));
  b.page_table.assign(step.seqs.size() * b.max_pages_per_seq, -1);
  std::vector<int32_t> logprob_rows;
  for (size_t i = 0; i < step.seqs.size(); ++i) {
    const ScheduledSeq& s = step.seqs[i];
    const int first_row = b.num_tokens();
    for (int t = s.start; t < s.start + s.num_new; ++t) {
      b.token_ids.push_back(s.seq->token_at(t));
      b.positions.push_back(t);
      b.slot_mapping.push_back(s.seq->pages.slot(t));
    }
    b.query_start.push_back(b.num_tokens());
    b.context_lens.push_back(s.start + s.num_new);
    const std::vector<int32_t>& pages = s.seq->pages.pages();
    std::copy(pages.begin(), pages.end(), b.page_table.begin() + i * b.max_pages_per_seq);
    if (s.sample) b.logit_rows.push_back(b.num_tokens() - 1);
    for (int p = s.logprob_begin; p < s.logprob_end; ++p) logprob_rows.push_back(first_row + p - s.start);
  }
  b.logit_rows.insert(b.logit_rows.end(), logprob_rows.begin(), logprob_rows.end());
  return b;
}

// Penalised sequences keep their tokens in a row of the device history table: the step's new
// tokens go up with the step's metadata; a row taken over by a sequence with tokens already
// computed (a prefix-cache hit, a new row after preemption) is caught up once by a direct copy.
Status ModelRunner::prepare_history(const ScheduledStep& step, StepBatch& b) {
  const int64_t len = config_.max_model_len;
  for (const ScheduledSeq& s : step.seqs) {
    const Sequence& seq = *s.seq;
    if (!penalised(*seq.params)) continue;
    if (!history_.defined()) {
      TK_ASSIGN_OR_RETURN(history_, model_.backend().alloc(DType::kI32, {config_.max_num_seqs, len}));
      row_owner_.assign(config_.max_num_seqs, 0);
      row_filled_.assign(config_.max_num_seqs, 0);
    }
    const int row = seq.history_row;
    TK_CHECK(row >= 0 && row < config_.max_num_seqs);
    if (row_owner_[row] != seq.uid) row_owner_[row] = seq.uid, row_filled_[row] = 0;
    if (row_filled_[row] < s.start) {
      std::vector<int32_t> head(s.start);
      for (int t = 0; t < s.start; ++t) head[t] = seq.token_at(t);
      Tensor dst(history_.data_as<int32_t>() + row * len, DType::kI32, {s.start}, history_.device());
      TK_RETURN_IF_ERROR(model_.backend().copy_from_host(head.data(), dst));
    }
    for (int t = s.start; t < s.start + s.num_new; ++t) {
      b.history_index.push_back(static_cast<int32_t>(row * len + t));
      b.history_tokens.push_back(seq.token_at(t));
      if (b.history_tokens.back() == kPendingToken) defer_pending(seq.uid, static_cast<int>(b.history_tokens.size()) - 1, true, b);
    }
    row_filled_[row] = s.start + s.num_new;
  }
  return Status::ok_status();
}

std::vector<SamplingSpec> ModelRunner::sampling_specs(const ScheduledStep& step) const {
  std::vector<SamplingSpec> specs;
  for (const ScheduledSeq& s : step.seqs) {
    if (!s.sample) continue;
    const Sequence& seq = *s.seq;
    SamplingSpec spec;
    static_cast<SamplingKnobs&>(spec) = *seq.params;
    spec.seed = seq.seed;
    spec.step = seq.output.size();
    if (penalised(*seq.params)) {
      spec.history_row = seq.history_row;
      spec.num_prompt_tokens = seq.prompt_len();
      spec.num_output_tokens = static_cast<int>(seq.output.size());
    }
    spec.want_logprob = seq.params->logprobs >= 0;
    specs.push_back(spec);
  }
  return specs;
}

// The graph batch size a pure decode step pads to, or 0 when the step runs eagerly.
int ModelRunner::graph_batch_size(const ScheduledStep& step) const {
  if (!use_graphs_) return 0;
  for (const ScheduledSeq& s : step.seqs)
    if (s.num_new != 1 || !s.sample || s.num_prompt_logprobs() > 0) return 0;
  const int n = static_cast<int>(step.seqs.size());
  auto it = std::lower_bound(graph_sizes_.begin(), graph_sizes_.end(), n);
  return it == graph_sizes_.end() ? 0 : *it;
}

Status ModelRunner::run_forward(bool capturable) {
  Backend& backend = model_.backend();
  if (!ranks_.empty())  // every rank at once: they meet in their all-reduces
    return rank_threads_->run([&](int rank) {
      if (rank == 0) return model_.forward(*plan_, cache_);
      const RankShard& r = ranks_[rank - 1];
      return r.model->forward(*rank_plans_[rank - 1], *r.cache);
    });
  if (!capturable) return model_.forward(*plan_, cache_);
  auto it = graphs_.find(plan_->graph_key);
  if (it == graphs_.end()) {
    if (graphs_.size() >= 1024) graphs_.clear();
    const double start = now_seconds();
    TK_ASSIGN_OR_RETURN(std::unique_ptr<StepGraph> graph, backend.capture([&] { return model_.forward(*plan_, cache_); }));
    it = graphs_.emplace(plan_->graph_key, std::move(graph)).first;
    late_captures_ += warmed_up_ ? 1 : 0;
    // A capture while serving (a plan no start-up graph matched) stalls that step: worth seeing.
    TK_LOG_DEBUG("captured decode graph " + std::to_string(graphs_.size()) + " in " +
                 std::to_string(static_cast<int>((now_seconds() - start) * 1e3)) + " ms");
  }
  return backend.replay(*it->second);
}

Status ModelRunner::forward(const StepBatch& batch) {
  TK_RETURN_IF_ERROR(batch.validate(cache_.page_size(), cache_.num_pages()));
  TK_RETURN_IF_ERROR(begin_step(batch));
  return run_forward(false);
}

// One prefill of `len` tokens that writes only the scratch page (every page of its table is the
// scratch page; its K/V and logits are garbage nobody reads), then a sampled and a greedy draw.
Status ModelRunner::warm_up_prefill(int len) {
  const int ps = cache_.page_size(), scratch = cache_.num_pages() - 1;
  StepBatch b;
  b.query_start = {0, len};
  b.context_lens = {len};
  b.max_pages_per_seq = (len + ps - 1) / ps;
  b.page_table.assign(static_cast<size_t>(b.max_pages_per_seq), scratch);
  for (int i = 0; i < len; ++i) {
    b.token_ids.push_back(i % 1000), b.positions.push_back(i);
    b.slot_mapping.push_back(scratch * ps + i % ps);
  }
  b.logit_rows = {len - 1};
  TK_RETURN_IF_ERROR(forward(b));
  Backend& backend = model_.backend();
  std::vector<SamplingSpec> specs(2);
  specs[1].temperature = 0.f;
  Tensor logits = model_.logits(1);
  // One draw per sampling slot: each slot's pinned buffers are allocated on its first use, and
  // overlap scheduling first uses slot 1 for the first decode step, inside the first token's time.
  for (int slot = 0; slot < 2; ++slot) {
    TK_RETURN_IF_ERROR(backend.sample_async(logits, {specs[slot]}, history_, slot));
    Backend::SampledIds ids;
    TK_RETURN_IF_ERROR(backend.wait_sampled(slot, ids));
  }
  return Status::ok_status();
}

Status ModelRunner::warm_up() {
  Backend& backend = model_.backend();
  if (backend.device() == Device::kCpu) return Status::ok_status();  // nothing loads lazily there
  // The first request must not pay for loading kernels and cuBLASLt plans: prefills of a few
  // lengths (cuBLASLt picks other kernels for other M) and the sampler run once here.
  double start = now_seconds();
  int warmed = 0, last = 0;
  for (int len : {7, 64, 512, 4096}) {
    len = std::min({len, config_.max_num_batched_tokens, config_.max_model_len});
    if (len <= last) break;
    TK_RETURN_IF_ERROR(warm_up_prefill(len));
    ++warmed, last = len;
  }
  TK_LOG_INFO("warmed up " + std::to_string(warmed) + " prefill shapes and the sampler in " +
              std::to_string(static_cast<int>((now_seconds() - start) * 1e3)) + " ms");
  if (!use_graphs_) return Status::ok_status();
  start = now_seconds();
  for (int size : graph_sizes_) {
    StepBatch b;
    add_padding(b, size);
    // The first decode step of a request takes the token its prefill sampled from the device
    // (scatter_last_sample): that kernel runs here once, writing the padded row's token, so its
    // first launch is not inside a first token's time (17 ms on the H200).
    if (size == 1) b.last_sample_to_token = {0}, b.last_sample_to_history = {-1};
    TK_RETURN_IF_ERROR(backend.begin_step(b, *plan_));
    TK_RETURN_IF_ERROR(run_forward(true));
  }
  // The graphs' uploads are queued on the stream: ~10 ms of them were still ahead of the first
  // request's prefill on the H200 (its time to first token 18-19 ms against ~8).
  TK_RETURN_IF_ERROR(backend.synchronize());
  warmed_up_ = true;
  TK_LOG_INFO("captured " + std::to_string(graphs_.size()) + " decode graphs (batch sizes 1.." +
              std::to_string(graph_sizes_.back()) + ") in " + std::to_string(static_cast<int>((now_seconds() - start) * 1e3)) +
              " ms");
  return Status::ok_status();
}

Result<int> ModelRunner::launch(const ScheduledStep& step) {
  // The first launches are timed phase by phase at debug level; later ones read no clock.
  const bool traced = launches_ < kTracedLaunches && log_level() <= LogLevel::kDebug;
  auto stamp = [traced] { return traced ? now_seconds() : 0.0; };
  const double launch_start = stamp();
  const int ticket = next_ticket_;
  if (launched_[ticket].active) return internal_error("launch: two steps are already out");
  const int pad_to = graph_batch_size(step);
  StepBatch batch = build_batch(step);
  if (pad_to > 0) add_padding(batch, pad_to);  // pure decode: no prompt log-prob rows to keep last
  defer_pending_inputs(step, batch);
  TK_RETURN_IF_ERROR(prepare_history(step, batch));
  TK_RETURN_IF_ERROR(batch.validate(cache_.page_size(), cache_.num_pages()));
  Backend& backend = model_.backend();
  const double built = stamp();
  TK_RETURN_IF_ERROR(begin_step(batch));
  const double begun = stamp();
  TK_RETURN_IF_ERROR(run_forward(pad_to > 0));
  const double forwarded = stamp();
  if (!batch.history_index.empty()) backend.write_history(*plan_, history_);
  // NOTE: the forward was only launched (on a GPU): the grammar masks are filled meanwhile.
  GrammarMasks masks;
  TK_RETURN_IF_ERROR(fill_grammar_masks(step, masks));
  Launched& out = launched_[ticket];
  out.result = StepResult();
  StepResult& result = out.result;
  const std::vector<SamplingSpec> specs = sampling_specs(step);
  const int num_sampled = static_cast<int>(specs.size());
  const int first_logprob_row = pad_to > 0 ? pad_to : num_sampled;
  Tensor logits = model_.logits(batch.num_logits());
  if (num_sampled > 0) {
    // The mask first: sampling, log-probs and top log-probs all see the masked logits (vLLM).
    TK_RETURN_IF_ERROR(apply_grammar_masks(masks, logits));
    TK_RETURN_IF_ERROR(apply_logit_bias(step, logits));
    // The ids come back in collect(); they stay on the device for the next step's inputs.
    TK_RETURN_IF_ERROR(backend.sample_async(logits.slice_rows(0, num_sampled), specs, history_, ticket));
    result.sampled.resize(num_sampled);
    for (size_t i = 0; i < masks.dead_end.size(); ++i) result.sampled[i].grammar_dead_end = masks.dead_end[i];
  }
  // From here on the step is out: collect() takes its ids, whatever fails below.
  out.active = true, out.num_sampled = num_sampled;
  launches_ += launches_ < kTracedLaunches;
  if (traced) trace_launch(built - launch_start, begun - built, forwarded - begun, stamp() - forwarded);
  next_ticket_ ^= 1;
  last_sample_rows_.clear();
  int row = 0;
  for (const ScheduledSeq& s : step.seqs)
    if (s.sample) last_sample_rows_[s.seq->uid] = row++;
  if (batch.num_logits() > first_logprob_row) {
    std::vector<int32_t> targets;
    for (const ScheduledSeq& s : step.seqs)
      for (int p = s.logprob_begin; p < s.logprob_end; ++p) targets.push_back(s.seq->token_at(p + 1));
    Status s = backend.token_logprobs(logits.slice_rows(first_logprob_row, batch.num_logits()), targets,
                                      result.prompt_logprobs);
    if (!s.ok()) return fail_launched(ticket, s);
  }
  Status s = add_top_logprobs(step, logits, first_logprob_row, result);
  if (!s.ok()) return fail_launched(ticket, s);
  return ticket;
}

// The first launches of a process, phase by phase (TOKAMAK_LOG_LEVEL=debug): what a first request
// pays that later ones do not.
void ModelRunner::trace_launch(double build, double begin, double forward, double sample) const {
  auto ms = [](double s) { return std::to_string(s * 1e3).substr(0, 5) + " ms"; };
  TK_LOG_DEBUG("launch " + std::to_string(launches_) + ": batch " + ms(build) + ", begin_step " + ms(begin) +
               ", forward " + ms(forward) + ", masks and sampling " + ms(sample));
}

// A launched step that failed after its sampling went out: its ids are taken and dropped, so the
// ticket is free again.
Status ModelRunner::fail_launched(int ticket, const Status& error) {
  (void)collect(ticket);
  return error;
}

Result<StepResult> ModelRunner::collect(int ticket) {
  TK_CHECK(ticket == 0 || ticket == 1);
  Launched& l = launched_[ticket];
  if (!l.active) return internal_error("collect: no step is out under ticket " + std::to_string(ticket));
  l.active = false;
  StepResult result = std::move(l.result);
  if (l.num_sampled == 0) return result;
  Backend::SampledIds ids;
  const double start = now_seconds();
  TK_RETURN_IF_ERROR(model_.backend().wait_sampled(ticket, ids));
  times_.wait_seconds += now_seconds() - start;
  times_.device_seconds += ids.device_seconds, times_.last_device_seconds = ids.device_seconds;
  TK_CHECK(static_cast<int>(ids.tokens.size()) == l.num_sampled && static_cast<int>(result.sampled.size()) == l.num_sampled);
  for (int i = 0; i < l.num_sampled; ++i) result.sampled[i].token = ids.tokens[i], result.sampled[i].logprob = ids.logprobs[i];
  return result;
}

Result<StepResult> ModelRunner::run(const ScheduledStep& step) {
  TK_ASSIGN_OR_RETURN(const int ticket, launch(step));
  return collect(ticket);
}

// Overlap scheduling: the step's inputs that the last launched step sampled are kPendingToken on
// the host; the backend writes them in from its device copy of that sampling.
void ModelRunner::defer_pending_inputs(const ScheduledStep& step, StepBatch& b) const {
  for (size_t i = 0; i < step.seqs.size(); ++i)
    for (int row = b.query_start[i]; row < b.query_start[i + 1]; ++row)
      if (b.token_ids[row] == kPendingToken) defer_pending(step.seqs[i].seq->uid, row, false, b);
}

void ModelRunner::defer_pending(uint64_t uid, int at, bool history, StepBatch& b) const {
  auto it = last_sample_rows_.find(uid);
  TK_CHECK_MSG(it != last_sample_rows_.end(), "a pending token the last launched step did not sample");
  if (b.last_sample_to_token.empty()) {
    b.last_sample_to_token.assign(last_sample_rows_.size(), -1);
    b.last_sample_to_history.assign(last_sample_rows_.size(), -1);
  }
  std::vector<int32_t>& tokens = history ? b.history_tokens : b.token_ids;
  (history ? b.last_sample_to_history : b.last_sample_to_token)[it->second] = at;
  tokens[at] = 0;  // any id: the backend overwrites it
}

// logit_bias, and min_tokens' mask over eos and stop tokens, on the sample rows.
Status ModelRunner::apply_logit_bias(const ScheduledStep& step, Tensor& logits) {
  const int64_t vocab = logits.dim(1);
  std::vector<int64_t> index;
  std::vector<float> bias;
  int row = 0;
  for (const ScheduledSeq& s : step.seqs) {
    if (!s.sample) continue;
    const SamplingParams& p = *s.seq->params;
    const int64_t base = row++ * vocab;
    for (const auto& [token, b] : p.logit_bias) index.push_back(base + token), bias.push_back(b);
    // A complete grammar allows only eos: then it ends the output, min_tokens or not (masking eos
    // too would leave the row no token at all).
    const bool grammar_must_end = s.seq->matcher && s.seq->matcher->must_end();
    if (static_cast<int>(s.seq->output.size()) < p.min_tokens && !grammar_must_end) {
      for (int32_t t : p.stop_token_ids) index.push_back(base + t), bias.push_back(-INFINITY);
      if (!p.ignore_eos)
        for (int32_t t : config_.eos_token_ids) index.push_back(base + t), bias.push_back(-INFINITY);
    }
  }
  if (index.empty()) return Status::ok_status();
  return model_.backend().add_logit_bias(logits, index, bias);
}

// The most likely tokens of the sample rows and the prompt log-prob rows that ask for them.
Status ModelRunner::add_top_logprobs(const ScheduledStep& step, const Tensor& logits, int first_logprob_row,
                                     StepResult& result) {
  std::vector<int> rows;
  std::vector<std::vector<TokenLogprob>*> dest;
  std::vector<int> ks;
  int sample_row = 0, lp_row = first_logprob_row, lp = 0;
  bool any_prompt_top = false;
  for (const ScheduledSeq& s : step.seqs) {
    const SamplingParams& p = *s.seq->params;
    if (s.sample) {
      if (p.logprobs > 0) rows.push_back(sample_row), dest.push_back(&result.sampled[sample_row].top), ks.push_back(p.logprobs);
      ++sample_row;
    }
    any_prompt_top = any_prompt_top || (s.num_prompt_logprobs() > 0 && p.prompt_top_logprobs > 0);
  }
  if (any_prompt_top) result.prompt_top.assign(result.prompt_logprobs.size(), {});
  for (const ScheduledSeq& s : step.seqs) {
    const int k = s.seq->params->prompt_top_logprobs;
    for (int i = 0; i < s.num_prompt_logprobs(); ++i, ++lp, ++lp_row)
      if (k > 0) rows.push_back(lp_row), dest.push_back(&result.prompt_top[lp]), ks.push_back(k);
  }
  if (rows.empty()) return Status::ok_status();
  std::vector<std::vector<TokenLogprob>> top;
  TK_RETURN_IF_ERROR(model_.backend().top_logprobs(logits, rows, *std::max_element(ks.begin(), ks.end()), top));
  for (size_t i = 0; i < rows.size(); ++i) {
    top[i].resize(std::min<size_t>(top[i].size(), ks[i]));
    *dest[i] = std::move(top[i]);
  }
  return Status::ok_status();
}

}  // namespace tk
