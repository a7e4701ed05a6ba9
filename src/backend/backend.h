// tokamak backend interface: the ops the decoder forward is written against. The CPU backend
// (fp32 reference loops) and the CUDA backend (fused kernels, cuBLASLt) implement it; the model
// never knows which one it runs on.
//
// Plan once, run many: the engine describes a step in one StepBatch on the host; begin_step()
// uploads it once and every op of every layer reads that metadata.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/core.h"

namespace tk {

// Heads of one attention layer.
struct AttentionShape {
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 0.f;  // softmax scale, 1/sqrt(head_dim)
  int qkv_width() const { return (num_q_heads + 2 * num_kv_heads) * head_dim; }
};

// One engine step: a batch of sequences, each contributing `query_len` new tokens (a prefill
// chunk, or one decode token) on top of what its KV pages already hold. No padding anywhere:
// the new tokens of all sequences are packed into one [num_tokens] axis.
struct StepBatch {
  int num_seqs = 0;
  int num_tokens = 0;
  std::vector<int32_t> token_ids;     // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens] absolute position of each new token
  std::vector<int32_t> query_start;   // [num_seqs + 1] prefix sums of new tokens per sequence
  std::vector<int32_t> context_lens;  // [num_seqs] tokens in the cache after this step
  std::vector<int32_t> page_table;    // [num_seqs, max_pages_per_seq] page ids, -1 past the end
  int max_pages_per_seq = 0;
  std::vector<int32_t> slot_mapping;  // [num_tokens] page * page_size + offset for the new K/V
  std::vector<int32_t> logit_rows;    // [num_logits] token rows whose logits are wanted
  int max_query_len = 0;
  int max_context_len = 0;

  int num_logits() const { return static_cast<int>(logit_rows.size()); }
  // Checks every index against the sizes it refers to; an engine bug, not user input, if wrong.
  Status validate(int page_size, int num_pages) const;
};

// The paged KV cache of every layer, in the layout the GPU decode kernel wants:
// one page holds `page_size` consecutive tokens of one KV head contiguously.
struct KvCache {
  std::vector<Tensor> k;  // per layer: [num_pages, num_kv_heads, page_size, head_dim]
  std::vector<Tensor> v;  // per layer: [num_pages, num_kv_heads, page_size, head_dim]
  int num_pages = 0;
  int page_size = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
};

// What the sampler needs of one sequence. Penalties follow vLLM: repetition over prompt and
// output tokens, presence/frequency over output tokens only.
struct SamplingSpec : SamplingKnobs {
  const int32_t* prompt_tokens = nullptr;  // for the repetition penalty
  int num_prompt_tokens = 0;
  const int32_t* output_tokens = nullptr;  // tokens generated so far
  int num_output_tokens = 0;
  bool want_logprob = false;       // log-probability of the chosen token under the raw logits
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  // Dtype of weights and activations on this backend (fp32 on the CPU; bf16/fp16 on the GPU).
  virtual DType compute_dtype() const = 0;

  // Checks once, at load, that this backend can run the model's attention shape and page size
  // (an error naming what it cannot), and prepares what depends on them (attention plans).
  virtual Status configure(const AttentionShape& shape, int page_size) = 0;
  // Activation buffers moved (Model::reserve grew them): captured graphs refer to the old ones.
  virtual void invalidate_graphs() {}
  // Ops report failures here (sticky, like cudaGetLastError): the first error of a step, which
  // Model::forward returns. Reading it clears it.
  virtual Status take_error() { return Status::ok_status(); }

  // ---- memory
  virtual Result<Tensor> alloc(DType dtype, Shape shape) = 0;
  // Copies a host tensor of any float dtype into a new backend tensor of compute_dtype().
  virtual Result<Tensor> upload(const Tensor& host) = 0;
  // Copies a backend tensor to host memory of the same dtype; synchronises.
  virtual Status download(const Tensor& src, void* dst) = 0;
  // Copies dst.nbytes() bytes of host memory into a backend tensor, dtype unchanged.
  virtual Status copy_from_host(const void* src, Tensor& dst) = 0;
  virtual Result<KvCache> alloc_kv_cache(int num_layers, int num_pages, int page_size,
                                         int num_kv_heads, int head_dim) = 0;
  // Bytes the backend could still allocate (device memory; host RAM on the CPU).
  virtual size_t free_memory() const = 0;

  // ---- the step
  virtual Status begin_step(const StepBatch& batch) = 0;

  // ---- ops (T = batch.num_tokens; every tensor in compute_dtype() unless noted)
  // out[t] = table[token_ids[t]]
  virtual void embedding(const Tensor& table /*[vocab, hidden]*/, Tensor& out /*[T, hidden]*/) = 0;
  // out = rmsnorm(x) * weight
  virtual void rmsnorm(const Tensor& x /*[T, hidden]*/, const Tensor& weight /*[hidden]*/, float eps,
                       Tensor& out /*[T, hidden]*/) = 0;
  // residual += delta; out = rmsnorm(residual) * weight
  virtual void add_rmsnorm(Tensor& residual /*[T, hidden]*/, const Tensor& delta /*[T, hidden]*/,
                           const Tensor& weight /*[hidden]*/, float eps, Tensor& out /*[T, hidden]*/) = 0;
  // out = x @ w^T (+ bias). `out` may be fp32 when x is not (logits).
  virtual void matmul(const Tensor& x /*[M, K]*/, const Tensor& w /*[N, K]*/, const Tensor* bias /*[N]*/,
                      Tensor& out /*[M, N]*/) = 0;
  // Per-head RMSNorm of the q and k parts of qkv, in place (Qwen3).
  virtual void qk_norm(Tensor& qkv /*[T, qkv_width]*/, const Tensor& q_weight /*[head_dim]*/,
                       const Tensor& k_weight /*[head_dim]*/, float eps, const AttentionShape& shape) = 0;
  // Rotates q (in place) and k by RoPE (neox layout) at batch.positions, and writes k and v into
  // the cache at batch.slot_mapping.
  virtual void rope_kv_store(Tensor& qkv /*[T, qkv_width]*/, const Tensor& inv_freq /*[head_dim/2] fp32*/,
                             KvCache& cache, int layer, const AttentionShape& shape) = 0;
  // Causal attention of each new token over its sequence's cached K/V (which already holds the
  // new tokens): query i of a sequence with L new tokens and context C sees positions
  // [0, C - L + i].
  virtual void attention(const Tensor& qkv /*[T, qkv_width]*/, const KvCache& cache, int layer,
                         const AttentionShape& shape, Tensor& out /*[T, Hq * head_dim]*/) = 0;
  // out = silu(gate) * up, gate = gate_up[:, :I], up = gate_up[:, I:]
  virtual void silu_mul(const Tensor& gate_up /*[T, 2I]*/, Tensor& out /*[T, I]*/) = 0;
  // out[r] = x[batch.logit_rows[r]]
  virtual void gather_logit_rows(const Tensor& x /*[T, hidden]*/, Tensor& out /*[R, hidden]*/) = 0;

  // ---- sampling: only ids (and requested logprobs) come back to the host.
  virtual Status sample(const Tensor& logits /*[R, vocab] fp32*/, const std::vector<SamplingSpec>& specs,
                        std::vector<int32_t>& tokens /*[R]*/, std::vector<float>& logprobs /*[R]*/) = 0;
  // logprobs[r] = log_softmax(logits[r])[targets[r]], for perplexity.
  virtual Status token_logprobs(const Tensor& logits /*[R, vocab] fp32*/, const std::vector<int32_t>& targets,
                                std::vector<float>& logprobs /*[R]*/) = 0;

  // ---- whole steps
  // Runs `body`, which enqueues one step's ops. A backend may capture it into a graph the first
  // time it sees this step's shape and replay the graph afterwards (`capturable` steps only:
  // the runner marks pure decode steps, whose buffers and launch shapes repeat).
  virtual Status run_step(const std::function<Status()>& body, bool capturable) {
    (void)capturable;
    return body();
  }

  // ---- utilities
  // Deterministic pseudo-random values mean + std * N(0, 1), for random-weight models.
  virtual Status fill_random(Tensor& t, uint64_t seed, float mean, float std) = 0;
  virtual Status synchronize() = 0;
};

}  // namespace tk
