// The decoder forward, written once against the backend ops. Reads top to bottom like the
// Llama paper: embed; per layer attention and MLP with pre-norms (the residual add is fused into
// the next norm); final norm; logits for the rows the engine asked for.
#include <algorithm>
#include <cmath>
#include <utility>

#include "model/model.h"

namespace tk {

Result<std::unique_ptr<Model>> Model::load(const std::string& model_dir, Backend& backend,
                                           const LoadProgress& progress, bool quantize_fp8, TensorParallel tp) {
  TK_ASSIGN_OR_RETURN(ModelConfig config, load_model_config(model_dir));
  TK_RETURN_IF_ERROR(check_tensor_parallel(config, tp.size));
  TK_ASSIGN_OR_RETURN(auto checkpoint, Checkpoint::open(model_dir));
  TK_ASSIGN_OR_RETURN(ModelWeights weights, load_weights(config, *checkpoint, backend, progress, tp));
  if (quantize_fp8) TK_RETURN_IF_ERROR(quantize_weights_fp8(weights, backend));
  return std::make_unique<Model>(std::move(config), std::move(weights), backend, tp);
}

Status quantize_weights_fp8(ModelWeights& weights, Backend& backend) {
  for (LayerWeights& l : weights.layers)
    for (Linear* w : {&l.qkv, &l.o_proj, &l.gate_up, &l.down})
      if (w->scheme.weight == WeightScale::kNone && !w->quantizes_input())
        TK_RETURN_IF_ERROR(backend.quantize_linear_fp8(*w));
  return Status::ok_status();
}

Model::Model(ModelConfig config, ModelWeights weights, Backend& backend, TensorParallel tp)
    : config_(std::move(config)), weights_(std::move(weights)), backend_(backend), tp_(tp),
      shard_(shard_sizes(config_, tp)) {}

AttentionShape Model::attention_shape() const {
  AttentionShape s;
  s.num_q_heads = static_cast<int>(shard_.num_heads);
  s.num_kv_heads = static_cast<int>(shard_.num_kv_heads);
  s.head_dim = static_cast<int>(config_.head_dim);
  s.scale = 1.f / std::sqrt(static_cast<float>(config_.head_dim));
  return s;
}

Status Model::reserve(int64_t max_tokens, int64_t max_logits) {
  if (max_tokens <= this->max_tokens() && max_logits <= this->max_logits()) return Status::ok_status();
  max_tokens = std::max(max_tokens, this->max_tokens());
  max_logits = std::max(max_logits, this->max_logits());
  const DType dt = backend_.compute_dtype();
  const ModelConfig& c = config_;
  Activations a;
  TK_ASSIGN_OR_RETURN(a.residual, backend_.alloc(dt, {max_tokens, c.hidden_size}));
  TK_ASSIGN_OR_RETURN(a.normed, backend_.alloc(dt, {max_tokens, c.hidden_size}));
  TK_ASSIGN_OR_RETURN(a.qkv, backend_.alloc(dt, {max_tokens, attention_shape().qkv_width()}));
  TK_ASSIGN_OR_RETURN(a.attn, backend_.alloc(dt, {max_tokens, shard_.num_heads * c.head_dim}));
  TK_ASSIGN_OR_RETURN(a.delta, backend_.alloc(dt, {max_tokens, c.hidden_size}));
  TK_ASSIGN_OR_RETURN(a.gate_up, backend_.alloc(dt, {max_tokens, 2 * shard_.intermediate_size}));
  TK_ASSIGN_OR_RETURN(a.mlp, backend_.alloc(dt, {max_tokens, shard_.intermediate_size}));
  TK_ASSIGN_OR_RETURN(a.last, backend_.alloc(dt, {max_logits, c.hidden_size}));
  TK_ASSIGN_OR_RETURN(a.logits, backend_.alloc(DType::kF32, {max_logits, c.vocab_size}));
  if (tp_.size > 1) {  // the rank's slice of the vocabulary, gathered into logits
    TK_ASSIGN_OR_RETURN(a.logits_shard, backend_.alloc(DType::kF32, {max_logits, shard_.vocab_size}));
    if (comm_) TK_RETURN_IF_ERROR(comm_->reserve_gather(max_logits, shard_.vocab_size));
  }
  TK_RETURN_IF_ERROR(reserve_fp8_inputs(max_tokens, max_logits));
  TK_RETURN_IF_ERROR(reserve_fused_fp8_inputs(max_tokens, a));
  act_ = std::move(a);
  reserved_logits_ = max_logits;
  return Status::ok_status();
}

// The widest input any FP8 linear quantizes, for the backend's quantized-input scratch.
Status Model::reserve_fp8_inputs(int64_t max_tokens, int64_t max_logits) {
  int64_t max_in = 0;
  for (const LayerWeights& l : weights_.layers)
    for (const Linear* w : {&l.qkv, &l.o_proj, &l.gate_up, &l.down})
      if (w->quantizes_input()) max_in = std::max(max_in, w->in_features());
  if (weights_.lm_head.quantizes_input()) {
    max_in = std::max(max_in, weights_.lm_head.in_features());
    max_tokens = std::max(max_tokens, max_logits);
  }
  return max_in > 0 ? backend_.reserve_fp8_inputs(max_tokens, max_in) : Status::ok_status();
}

// The widest input a norm or SiLU·up quantizes for the linear after it (qkv and gate_up read the
// hidden size, down the intermediate one): one buffer, written by each producer and read by its
// linear before the next producer runs.
Status Model::reserve_fused_fp8_inputs(int64_t max_tokens, Activations& a) {
  int64_t max_in = 0;
  for (const LayerWeights& l : weights_.layers)
    for (const Linear* w : {&l.qkv, &l.gate_up, &l.down})
      if (backend_.fuses_fp8_input(*w)) max_in = std::max(max_in, w->in_features());
  if (max_in == 0) return Status::ok_status();
  TK_ASSIGN_OR_RETURN(a.fp8_q, backend_.alloc(DType::kF8E4M3, {max_tokens * max_in}));
  TK_ASSIGN_OR_RETURN(a.fp8_scales, backend_.alloc(DType::kF32, {2 * max_tokens}));  // the norms', SiLU·up's
  return Status::ok_status();
}

// NOTE: fused only where the buffer was reserved (fusion switched on after reserve() runs unfused).
bool Model::fuses_input(const Linear& w) const {
  return act_.fp8_q.defined() && w.in_features() * max_tokens() <= act_.fp8_q.numel() && backend_.fuses_fp8_input(w);
}

int Model::fp8_fused_inputs() const {
  int n = 0;
  for (const LayerWeights& l : weights_.layers)
    for (const Linear* w : {&l.qkv, &l.gate_up, &l.down}) n += fuses_input(*w);
  return n;
}

// A linear leaves its scales to the op after it where that op is a fused one: o_proj to the
// post-attention norm (before gate_up), gate_up to SiLU·up (before down), down to the next
// layer's input norm (before its qkv; the last layer's down feeds the final norm, unfused).
// NOTE: never under tensor parallelism: o_proj's and down's partial products are summed over the
// ranks, each with its own input scales, so each is scaled before the all-reduce (gate_up's could
// stay deferred; not worth a second rule while only the CPU runs tensor-parallel).
bool Model::defers_scales(const Linear& w, const Linear* next_consumer) const {
  return comm_ == nullptr && next_consumer != nullptr && fuses_input(*next_consumer) && backend_.defers_fp8_scales(w);
}
const Linear* Model::next_qkv(int layer) const {
  return layer + 1 < static_cast<int>(weights_.layers.size()) ? &weights_.layers[layer + 1].qkv : nullptr;
}

int Model::fp8_deferred_scales() const {
  int n = 0;
  for (int l = 0; l < static_cast<int>(weights_.layers.size()); ++l) {
    const LayerWeights& w = weights_.layers[l];
    n += defers_scales(w.o_proj, &w.gate_up) + defers_scales(w.gate_up, &w.down) + defers_scales(w.down, next_qkv(l));
  }
  return n;
}

// NOTE: the norms write the first half of act_.fp8_scales, SiLU·up the second: an op reading a
// deferred product reads its producer's scales while it writes its own.
Fp8Activation Model::fp8_input(int64_t t, int64_t cols, Fp8Producer producer) const {
  const int64_t half = act_.fp8_scales.numel() / 2;
  float* scales = act_.fp8_scales.data_as<float>() + (producer == Fp8Producer::kSiluMul ? half : 0);
  return {Tensor(act_.fp8_q.data(), DType::kF8E4M3, {t, cols}, act_.fp8_q.device()),
          Tensor(scales, DType::kF32, {t}, act_.fp8_scales.device())};
}

void Model::pre_norm(Tensor& residual, const Tensor* delta, const Fp8DeferredScales& delta_scales, const Tensor& weight,
                     const Linear& consumer, int64_t t) {
  const float eps = static_cast<float>(config_.rms_norm_eps);
  if (fuses_input(consumer)) {
    Fp8Activation q = fp8_input(t, consumer.in_features(), Fp8Producer::kNorm);
    if (delta) backend_.add_rmsnorm_fp8(residual, *delta, delta_scales, weight, eps, consumer, q);
    else backend_.rmsnorm_fp8(residual, weight, eps, consumer, q);
    return;
  }
  TK_CHECK(!delta_scales.pending());
  Tensor normed = act_.normed.slice_rows(0, t);
  if (delta) backend_.add_rmsnorm(residual, *delta, weight, eps, normed);
  else backend_.rmsnorm(residual, weight, eps, normed);
}

void Model::activation(const Tensor& gate_up, const Fp8DeferredScales& gate_up_scales, const Linear& consumer,
                       Tensor& out) {
  if (!fuses_input(consumer)) {
    TK_CHECK(!gate_up_scales.pending());
    return backend_.silu_mul(gate_up, out);
  }
  Fp8Activation q = fp8_input(gate_up.dim(0), consumer.in_features(), Fp8Producer::kSiluMul);
  backend_.silu_mul_fp8(gate_up, gate_up_scales, consumer, q);
}

// out = x @ w^T, from x's fp8 form where `producer` wrote one for w; with `deferred` set (the op
// after w is fused), w's scales are left there where the backend defers them (else it is cleared).
void Model::linear(const Tensor& x, Fp8Producer producer, const Linear& w, Tensor& out,
                   Fp8DeferredScales* deferred) {
  const bool defer = deferred != nullptr && backend_.defers_fp8_scales(w);
  if (deferred != nullptr) *deferred = Fp8DeferredScales{};
  if (producer != Fp8Producer::kNone && fuses_input(w)) {
    const Fp8Activation q = fp8_input(x.dim(0), w.in_features(), producer);
    if (defer) backend_.matmul_quantized_unscaled(q, w, out, *deferred);
    else backend_.matmul_quantized(q, w, out);
  } else if (defer) {
    backend_.matmul_unscaled(x, w, out, *deferred);
  } else {
    backend_.matmul(x, w, out);
  }
}

void Model::attention_block(const StepPlan& plan, int layer, int64_t t, KvCacheTensors& cache,
                            Fp8DeferredScales& delta_scales) {
  const LayerWeights& w = weights_.layers[layer];
  const AttentionShape s = attention_shape();
  Tensor normed = act_.normed.slice_rows(0, t);
  Tensor qkv = act_.qkv.slice_rows(0, t);
  Tensor attn = act_.attn.slice_rows(0, t);
  Tensor delta = act_.delta.slice_rows(0, t);
  linear(normed, Fp8Producer::kNorm, w.qkv, qkv, nullptr);
  if (config_.qk_norm) backend_.qk_norm(qkv, w.q_norm, w.k_norm, static_cast<float>(config_.rms_norm_eps), s);
  backend_.rope_kv_store(plan, qkv, weights_.inv_freq, cache, layer, s);
  backend_.attention(plan, qkv, cache, layer, s, attn);
  delta_scales = Fp8DeferredScales{};
  linear(attn, Fp8Producer::kNone, w.o_proj, delta, defers_scales(w.o_proj, &w.gate_up) ? &delta_scales : nullptr);
  if (comm_) all_reduce(delta);  // the rank's heads' share of the attention output
}

void Model::mlp_block(int layer, int64_t t, Fp8DeferredScales& delta_scales) {
  const LayerWeights& w = weights_.layers[layer];
  Tensor normed = act_.normed.slice_rows(0, t);
  Tensor gate_up = act_.gate_up.slice_rows(0, t);
  Tensor mlp = act_.mlp.slice_rows(0, t);
  Tensor delta = act_.delta.slice_rows(0, t);
  Fp8DeferredScales gate_up_scales;
  linear(normed, Fp8Producer::kNorm, w.gate_up, gate_up, defers_scales(w.gate_up, &w.down) ? &gate_up_scales : nullptr);
  activation(gate_up, gate_up_scales, w.down, mlp);
  delta_scales = Fp8DeferredScales{};
  linear(mlp, Fp8Producer::kSiluMul, w.down, delta, defers_scales(w.down, next_qkv(layer)) ? &delta_scales : nullptr);
  if (comm_) all_reduce(delta);  // the rank's rows' share of the MLP output
}

// NOTE: every rank calls it at the same points of the same step: a failure is kept for forward()
// to return, never an early exit that would leave the other ranks waiting.
void Model::all_reduce(Tensor& partial) {
  Status s = comm_->all_reduce_sum(partial);
  if (!s.ok() && comm_error_.ok()) comm_error_ = std::move(s);
}

// NOTE: every rank gathers (an all-gather, as NCCL has it; only rank 0 samples from them).
void Model::all_gather_logits(const Tensor& shard, Tensor& logits) {
  Status s = comm_->all_gather(shard, logits);
  if (!s.ok() && comm_error_.ok()) comm_error_ = std::move(s);
}

// NOTE: each block's output (`delta`) is added to the residual stream by the next norm
// (add_rmsnorm), so layer l reads: h = x + attention(norm(x)); x' = h + mlp(norm(h)).
Status Model::forward(const StepPlan& plan, KvCacheTensors& cache) {
  const int64_t t = plan.num_tokens, r = plan.num_logits;
  if (t > max_tokens() || r > max_logits())
    return internal_error("forward: a step of " + std::to_string(t) + " tokens and " + std::to_string(r) +
                          " logit rows exceeds the reserved activations");
  TK_CHECK_MSG(tp_.size == 1 || (comm_ != nullptr && comm_->size() == tp_.size && comm_->rank() == tp_.rank),
               "a tensor-parallel rank runs with its communicator");
  const float eps = static_cast<float>(config_.rms_norm_eps);
  Tensor residual = act_.residual.slice_rows(0, t);
  Tensor normed = act_.normed.slice_rows(0, t);
  Tensor delta = act_.delta.slice_rows(0, t);

  if (comm_ == nullptr) {
    backend_.embedding(plan, weights_.embed, residual);
  } else {  // the rank's vocabulary rows, zeros for the others' tokens: the sum is every token's row
    backend_.embedding_shard(plan, weights_.embed, shard_.vocab_begin, residual);
    all_reduce(residual);
  }
  Fp8DeferredScales delta_scales;  // delta's, where its FP8 linear left them to the next norm
  for (int l = 0; l < static_cast<int>(config_.num_layers); ++l) {
    const LayerWeights& w = weights_.layers[l];
    pre_norm(residual, l == 0 ? nullptr : &delta, delta_scales, w.input_norm, w.qkv, t);  // adds the MLP output
    attention_block(plan, l, t, cache, delta_scales);
    pre_norm(residual, &delta, delta_scales, w.post_attn_norm, w.gate_up, t);  // adds the attention output
    mlp_block(l, t, delta_scales);
  }
  TK_CHECK(!delta_scales.pending());
  backend_.add_rmsnorm(residual, delta, weights_.final_norm, eps, normed);  // adds the last MLP output
  if (r > 0) {
    Tensor last = act_.last.slice_rows(0, r);
    Tensor logits = act_.logits.slice_rows(0, r);
    backend_.gather_logit_rows(plan, normed, last);
    if (comm_ == nullptr) {
      backend_.matmul(last, weights_.lm_head, logits);
    } else {  // each rank's vocabulary slice, side by side, the padding dropped
      Tensor shard = act_.logits_shard.slice_rows(0, r);
      backend_.matmul(last, weights_.lm_head, shard);
      all_gather_logits(shard, logits);
    }
  }
  if (!comm_error_.ok()) {
    (void)backend_.take_error();
    return std::exchange(comm_error_, Status::ok_status());
  }
  return backend_.take_error();
}

}  // namespace tk
