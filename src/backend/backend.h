// tokamak backend interface: the ops the decoder forward is written against. The CPU backend
// (fp32 reference loops) and the CUDA backend (fused kernels, cuBLASLt) implement it; the model
// never knows which one it runs on.
//
// Plan once, run many: the runner describes a step in one StepBatch on the host; begin_step()
// turns it into a StepPlan — the step's device metadata, the attention kernel and its split plan,
// the key of a captured graph — that the runner owns and hands to every op of every layer. Ops
// that need no metadata take their row counts from their tensors.
#pragma once

#include <array>
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

// The KV page sizes every backend supports (tokens per page), and the default.
constexpr std::array<int, 5> kSupportedPageSizes = {1, 8, 16, 32, 64};
constexpr int kDefaultPageSize = 16;
bool is_supported_page_size(int page_size);
std::string supported_page_sizes_text();  // "1, 8, 16, 32, 64"

// One engine step: a batch of sequences, each contributing `query_len` new tokens (a prefill
// chunk, or one decode token) on top of what its KV pages already hold. No padding anywhere:
// the new tokens of all sequences are packed into one [num_tokens] axis.
struct StepBatch {
  std::vector<int32_t> token_ids;     // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens] absolute position of each new token
  std::vector<int32_t> query_start;   // [num_seqs + 1] prefix sums of new tokens per sequence
  std::vector<int32_t> context_lens;  // [num_seqs] tokens in the cache after this step
  std::vector<int32_t> page_table;    // [num_seqs, max_pages_per_seq] page ids, -1 past the end
  int max_pages_per_seq = 0;
  std::vector<int32_t> slot_mapping;  // [num_tokens] page * page_size + offset for the new K/V
  std::vector<int32_t> logit_rows;    // [num_logits] token rows whose logits are wanted
  // Writes into the sampler's token-history table this step: history[index[i]] = token[i].
  std::vector<int32_t> history_index;   // [num_history]
  std::vector<int32_t> history_tokens;  // [num_history]
  // Overlap scheduling: tokens the last sample()/sample_async() drew that the host does not hold
  // yet. Row r of that sampling writes its token to token_ids[last_sample_to_token[r]] and to
  // history_tokens[last_sample_to_history[r]] (-1: nowhere) on the device, after the upload and
  // before any op reads them. Both empty, or both [rows of the last sampling].
  std::vector<int32_t> last_sample_to_token;
  std::vector<int32_t> last_sample_to_history;

  int num_seqs() const { return static_cast<int>(context_lens.size()); }
  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int num_logits() const { return static_cast<int>(logit_rows.size()); }
  int max_query_len() const;
  int max_context_len() const;
  // Checks every index against the sizes it refers to; an engine bug, not user input, if wrong.
  Status validate(int page_size, int num_pages) const;
};

// The most a StepPlan must hold; device metadata is sized for it once, at a fixed address.
struct StepCapacity {
  int max_tokens = 0;
  int max_seqs = 0;
  int max_pages_per_seq = 0;
  int max_history = 0;  // token-history writes per step
};

// A step as the backend planned it. Owned by the caller (one per runner, reused step after step,
// so its device metadata keeps one address and a captured graph stays valid); every op of the
// step reads it. Backends extend it with their device state.
class StepPlan {
 public:
  virtual ~StepPlan() = default;
  int num_tokens = 0, num_seqs = 0, num_logits = 0, max_query_len = 0, max_context_len = 0;
  // What a captured graph of this step bakes in (launch shapes, split plan); equal keys replay
  // the same graph.
  std::array<int, 7> graph_key{};
};

// The paged KV cache of every layer, in the layout the GPU decode kernel wants: one page holds
// `page_size` consecutive tokens of one KV head contiguously. In the compute dtype, or FP8 e4m3
// (--kv-cache-dtype fp8: half the bytes of bf16): then layer l's k and v are stored as
// fp8(k / k_scale[l]) and fp8(v / v_scale[l]), rounded to nearest even and saturated to +-448.
struct KvCacheTensors {
  std::vector<Tensor> k;  // per layer: [num_pages, num_kv_heads, page_size, head_dim]
  std::vector<Tensor> v;  // per layer: [num_pages, num_kv_heads, page_size, head_dim]
  std::vector<float> k_scale, v_scale;  // [num_layers]: the checkpoint's, or 1.0
  int num_pages() const { return static_cast<int>(k.at(0).dim(0)); }
  int page_size() const { return static_cast<int>(k.at(0).dim(2)); }
  bool fp8() const { return k.at(0).dtype() == DType::kF8E4M3; }
};

// FP8 (W8A8) quantization of one Linear, as the checkpoint or --quantization fp8 asks for it.
// Weights: w[n, k] = fp8[n, k] * scale, the scale per tensor, per output channel or per 128x128
// block. Inputs: x is quantized to fp8 before the product (x ~ fp8 * scale, the scale static per
// tensor, or the amax of each token or of each 1x128 group of a token / 448); kNone leaves the
// input in the compute dtype (weight-only FP8, dequantized at load).
enum class WeightScale : uint8_t {
  kNone,     // not FP8
  kTensor,   // weight_scale [1]
  kChannel,  // weight_scale [out]
  kBlock,    // weight_scale [ceil(out / 128), ceil(in / 128)]
};
enum class InputQuant : uint8_t {
  kNone,
  kStaticTensor,   // input_scale [1] from the checkpoint
  kDynamicToken,   // one scale per row, amax / 448 (amax clamped to input_scale_ub when > 0)
  kDynamicGroup,   // one scale per row and 128 columns
};
constexpr int kFp8BlockSize = 128;
const char* weight_scale_name(WeightScale s);
const char* input_quant_name(InputQuant q);

struct Fp8Scheme {
  WeightScale weight = WeightScale::kNone;
  InputQuant input = InputQuant::kNone;
  float input_scale_ub = 0.f;  // kDynamicToken: fbgemm's activation_scale_ub (0: none)
  bool operator==(const Fp8Scheme& o) const {
    return weight == o.weight && input == o.input && input_scale_ub == o.input_scale_ub;
  }
};

// The smallest dynamic scale (vLLM's): an all-zero row quantizes to zeros, never divides by 0.
constexpr float kFp8MinScale = 1.f / (448.f * 512.f);

// A weight matrix as the GEMMs see it: [out, in] plus an optional bias and, for FP8, scales.
// A backend that runs FP8 GEMMs keeps `weight` in fp8 with its `weight_scale`; one that does not
// (the CPU) holds it dequantized in the compute dtype with scheme.weight = kNone, and still
// quantizes the input as scheme.input says, so both compute the same products.
struct Linear {
  Tensor weight;        // [out_features, in_features]: compute dtype, or fp8 e4m3
  Tensor bias;          // [out_features] or undefined
  Tensor weight_scale;  // fp32, shaped as scheme.weight says; undefined when not fp8
  Tensor input_scale;   // [1] fp32 (kStaticTensor), else undefined
  Fp8Scheme scheme;
  int64_t out_features() const { return weight.dim(0); }
  int64_t in_features() const { return weight.dim(1); }
  bool quantizes_input() const { return scheme.input != InputQuant::kNone; }
};

// An activation quantized per token (dynamic, one scale per row) by the op that produced it, for
// the FP8 linear that reads it: what that linear's own quantization of the producer's
// compute-dtype output would give, bit for bit (Backend::fuses_fp8_input).
struct Fp8Activation {
  Tensor q;       // [T, in] fp8 e4m3, contiguous
  Tensor scales;  // [T] fp32
};

// The per-token x per-channel scales of an FP8 linear's output, left for the fused op that reads it
// (Backend::defers_fp8_scales): that op reads T(raw * (x_scales[m] * gain) * w_scales[n]), what
// the linear's own scale pass would have written, bit for bit.
struct Fp8DeferredScales {
  Tensor x_scales;  // [M] fp32; undefined: the output is already scaled
  Tensor w_scales;  // [N] fp32
  float gain = 1.f;
  bool pending() const { return x_scales.defined(); }
};

// An FP8 weight as a checkpoint holds it, on the host: what Backend::upload_fp8_linear takes
// (a bias is uploaded on its own).
struct Fp8HostLinear {
  Tensor weight;            // [out, in] fp8 e4m3
  Tensor weight_scale;      // fp32, shaped as scheme.weight says
  float input_scale = 0.f;  // kStaticTensor
  Fp8Scheme scheme;
};

// Host-side FP8 arithmetic, the reference every FP8 kernel is checked against.
namespace fp8 {
// w[n, k] = fp8[n, k] * scale as `s` says: [out, in] fp32.
void dequantize_weight(const uint8_t* q, const float* scale, WeightScale s, int64_t out, int64_t in, float* w);
// Per-channel quantization of an fp32 [out, in] weight (--quantization fp8): scale[n] =
// max(amax(w[n]) / 448, kFp8MinScale), q = fp8(w / scale).
void quantize_weight_per_channel(const float* w, int64_t out, int64_t in, uint8_t* q, float* scale);
// Quantizes the rows of x [rows, cols] (row stride ld) as `scheme.input` says: q [rows, cols],
// scales [rows] (token; static: the static scale repeated) or [rows, ceil(cols / 128)] (group).
void quantize_input(const float* x, int64_t rows, int64_t cols, int64_t ld, const Fp8Scheme& scheme,
                    float static_scale, uint8_t* q, float* scales);
// The number of input scales per row quantize_input writes.
int64_t input_scales_per_row(InputQuant q, int64_t cols);
// out[r, c] = out[r, c] * (x_scale[r] * gain) * w_scale[c] (+ bias[c]) in fp32, in this order,
// over out [m, ldo] (the first n of each row): the scales of an FP8 product applied after a GEMM
// with constant scales (kernels::scale_fp8_product's twin). x_scale [m] or [1] (x_per_row false),
// w_scale [n] or [1] (w_per_col false), bias [n] or null.
void scale_product(float* out, int64_t m, int64_t n, int64_t ldo, const float* x_scale, bool x_per_row,
                   const float* w_scale, bool w_per_col, float gain, const float* bias);
}  // namespace fp8

// What the sampler needs of one sequence. Penalties follow vLLM: repetition over prompt and
// output tokens, presence/frequency over output tokens only; both read the sequence's row of the
// token-history table.
struct SamplingSpec : SamplingDraw {
  int history_row = -1;            // row of the history table (penalised rows only)
  int num_prompt_tokens = 0;       // the row holds the prompt, then the output so far
  int num_output_tokens = 0;
  bool want_logprob = false;       // log-probability of the chosen token under the raw logits
};

// Tensor parallelism: the collectives between the ranks of one model (Megatron-style shards, one
// rank per device or CPU thread group). One object per rank; every rank calls the same collectives
// in the same order on tensors of the same shape. Ordered like the backend's ops (NCCL enqueues on
// the rank's compute stream, so a captured step keeps its all-reduces; the in-process one runs at
// once, the ranks' threads meeting at barriers). Sums run in rank order, never in arrival order:
// a result does not depend on thread timing.
class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x = the sum of every rank's x, in place: compute dtype, contiguous, on this rank's device.
  virtual Status all_reduce_sum(Tensor& x /*[T, hidden]*/) = 0;
  // Every rank's x side by side in every rank's out: out[:, r * cols + j] = rank r's x[:, j], the
  // columns past out's end dropped (the padded vocabulary of the last ranks' logit slices). x the
  // same shape on every rank, 0 < out_cols <= size * cols; fp32, contiguous, on
  // this rank's device. NCCL: ncclAllGather of x into a rank-major [size, rows, cols] scratch,
  // then one strided copy per rank (cudaMemcpy2DAsync, its width clipped) into out's columns, all
  // on the compute stream (a captured step keeps them; at one row the scratch is out itself).
  virtual Status all_gather(const Tensor& x /*[rows, cols]*/, Tensor& out /*[rows, out_cols]*/) = 0;
  // Before the first step, this rank alone: what all_gather of up to [rows, cols] needs, taken
  // now (NCCL: its scratch), so no step allocates while the other ranks wait in a collective.
  virtual Status reserve_gather(int64_t /*rows*/, int64_t /*cols*/) { return Status::ok_status(); }
  // Before the KV cache is sized, every rank at once: one small collective of each kind (NCCL
  // connects the peers, and takes their buffers, at a communicator's first collectives).
  virtual Status warm_up() { return Status::ok_status(); }
  // A rank failed in the middle of a step (an exception): every rank waiting in a collective is
  // released with an error, and every later call fails at once, so no rank waits forever for one
  // that will never arrive. The default does nothing (for a communicator that cannot hang).
  virtual void abort() {}
};
// `size` ranks of one process on host memory (the CPU backend's fp32 tensors), rank r at index r,
// each called from its own thread.
std::vector<std::unique_ptr<Communicator>> make_in_process_communicators(int size);

// A captured step (a CUDA graph); replayed with the plan it was captured with.
class StepGraph {
 public:
  virtual ~StepGraph() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual Device device() const = 0;
  // Dtype of weights and activations on this backend (fp32 on the CPU; bf16/fp16 on the GPU).
  virtual DType compute_dtype() const = 0;
  // Makes the backend's device current on the calling thread (the engine loop's thread).
  virtual void bind_to_current_thread() {}

  // ---- FP8 linears
  // An FP8 checkpoint's weight: kept in fp8 where the backend has FP8 GEMMs for its scheme,
  // otherwise (the default, the CPU) dequantized into compute_dtype() with the input quantization
  // kept.
  virtual Result<Linear> upload_fp8_linear(const Fp8HostLinear& host);
  // --quantization fp8: quantizes a loaded weight per output channel, its input per token.
  virtual Status quantize_linear_fp8(Linear& w);
  // Sizes the scratch that quantized inputs need for up to max_tokens rows of max_in columns
  // (before any step: captured graphs refer to it).
  virtual Status reserve_fp8_inputs(int64_t max_tokens, int64_t max_in) {
    (void)max_tokens, (void)max_in;
    return Status::ok_status();
  }
  // Whether the norm or SiLU·up before `w` should write w's quantized input itself (the *_fp8 ops
  // below, then matmul_quantized) instead of a compute-dtype output that w's matmul quantizes:
  // the same numbers, one kernel and one pass over the row fewer. For linears that quantize per
  // token where the backend serves it; off for all with set_fp8_input_fusion(false) (tests
  // compare the two paths).
  bool fuses_fp8_input(const Linear& w) const { return fp8_input_fusion_ && serves_fused_fp8_input(w); }
  void set_fp8_input_fusion(bool on) { fp8_input_fusion_ = on; }
  // rmsnorm / add_rmsnorm / silu_mul whose output is quantized for `consumer` into `out`
  // (fuses_fp8_input(consumer) only; the defaults are fatal). delta / gate_up may be an FP8
  // linear's raw output with its scales pending (defers_fp8_scales).
  virtual void rmsnorm_fp8(const Tensor& x /*[T, hidden]*/, const Tensor& weight /*[hidden]*/, float eps,
                           const Linear& consumer, Fp8Activation& out /*[T, hidden]*/);
  virtual void add_rmsnorm_fp8(Tensor& residual /*[T, hidden]*/, const Tensor& delta /*[T, hidden]*/,
                               const Fp8DeferredScales& delta_scales, const Tensor& weight /*[hidden]*/, float eps,
                               const Linear& consumer, Fp8Activation& out /*[T, hidden]*/);
  virtual void silu_mul_fp8(const Tensor& gate_up /*[T, 2I]*/, const Fp8DeferredScales& gate_up_scales,
                            const Linear& consumer, Fp8Activation& out /*[T, I]*/);
  // out = x @ w^T (+ bias) for an input its producer quantized for w.
  virtual void matmul_quantized(const Fp8Activation& x /*[M, in]*/, const Linear& w, Tensor& out /*[M, out]*/);
  // Whether w's output may be left unscaled for the fused op after it (the *_unscaled matmuls,
  // then add_rmsnorm_fp8 / silu_mul_fp8 with the scales): a pass over the output fewer. Per-token
  // x per-channel FP8 linears without bias where the backend scales after the GEMM; off for all
  // with set_fp8_scale_deferral(false).
  bool defers_fp8_scales(const Linear& w) const { return fp8_scale_deferral_ && serves_deferred_fp8_scales(w); }
  void set_fp8_scale_deferral(bool on) { fp8_scale_deferral_ = on; }
  // matmul / matmul_quantized writing the raw product into `out` and its scales into `scales`
  // (defers_fp8_scales(w) only; the defaults are fatal). The scales refer to backend or producer
  // scratch: valid until the next op of their kind.
  virtual void matmul_unscaled(const Tensor& x /*[M, in]*/, const Linear& w, Tensor& out /*[M, out]*/,
                               Fp8DeferredScales& scales);
  virtual void matmul_quantized_unscaled(const Fp8Activation& x /*[M, in]*/, const Linear& w,
                                         Tensor& out /*[M, out]*/, Fp8DeferredScales& scales);

  // Checks once, at load, that this backend can run the model's attention shape and page size
  // (an error naming what it cannot).
  virtual Status configure(const AttentionShape& shape, int page_size) = 0;
  // Ops report failures here (sticky, like cudaGetLastError): the first error of a step, which
  // Model::forward returns. Reading it clears it.
  virtual Status take_error() { return Status::ok_status(); }
  // Waits until everything enqueued so far has run (the end of start-up: its graph uploads must
  // not be still queued when the first request's step is).
  virtual Status synchronize() { return Status::ok_status(); }

  // ---- memory
  virtual Result<Tensor> alloc(DType dtype, Shape shape) = 0;
  // Copies a host tensor of any float dtype into a new backend tensor of compute_dtype().
  virtual Result<Tensor> upload(const Tensor& host) = 0;
  // Host tensors of any float dtypes with the same trailing dims, stacked along dim 0 into one
  // backend tensor of compute_dtype() (q/k/v -> qkv). The default stacks them on the host first.
  virtual Result<Tensor> upload_stacked(const std::vector<Tensor>& parts);
  // Copies a backend tensor to host memory of the same dtype; synchronises.
  virtual Status download(const Tensor& src, void* dst) = 0;
  // Copies dst.nbytes() bytes of host memory into a backend tensor, dtype unchanged.
  virtual Status copy_from_host(const void* src, Tensor& dst) = 0;
  // The cache in compute_dtype(), or in FP8 e4m3 (fp8) with every scale 1.0.
  Result<KvCacheTensors> alloc_kv_cache(int num_layers, int num_pages, int page_size, int num_kv_heads, int head_dim,
                                        bool fp8 = false);
  // Bytes the backend could still allocate, and all it has (device memory; host RAM on the CPU).
  virtual size_t free_memory() const = 0;
  virtual size_t total_memory() const = 0;

  // ---- the step
  virtual std::unique_ptr<StepPlan> new_step_plan(const StepCapacity& capacity) = 0;
  // Uploads the batch into the plan's metadata and plans the attention kernels.
  virtual Status begin_step(const StepBatch& batch, StepPlan& plan) = 0;

  // ---- ops (every tensor in compute_dtype() unless noted; T = rows of the step)
  // out[t] = table[token_ids[t]]
  virtual void embedding(const StepPlan& plan, const Tensor& table /*[vocab, hidden]*/, Tensor& out /*[T, hidden]*/) = 0;
  // Tensor parallelism's vocabulary-parallel embedding: out[t] = table[token_ids[t] - vocab_begin]
  // for the tokens this rank's rows hold, [vocab_begin, vocab_begin + rows), zeros for the others
  // (another rank's row: the ranks' outputs are summed, exactly, by an all-reduce). The CPU and
  // CUDA backends have it; the default is fatal.
  virtual void embedding_shard(const StepPlan& plan, const Tensor& table /*[rows, hidden]*/, int64_t vocab_begin,
                               Tensor& out /*[T, hidden]*/);
  // out = rmsnorm(x) * weight
  virtual void rmsnorm(const Tensor& x /*[T, hidden]*/, const Tensor& weight /*[hidden]*/, float eps,
                       Tensor& out /*[T, hidden]*/) = 0;
  // residual += delta; out = rmsnorm(residual) * weight
  virtual void add_rmsnorm(Tensor& residual /*[T, hidden]*/, const Tensor& delta /*[T, hidden]*/,
                           const Tensor& weight /*[hidden]*/, float eps, Tensor& out /*[T, hidden]*/) = 0;
  // out = x @ w^T (+ bias). `out` may be fp32 when x is not (logits).
  virtual void matmul(const Tensor& x /*[M, in]*/, const Linear& w, Tensor& out /*[M, out]*/) = 0;
  // Per-head RMSNorm of the q and k parts of qkv, in place (Qwen3).
  virtual void qk_norm(Tensor& qkv /*[T, qkv_width]*/, const Tensor& q_weight /*[head_dim]*/,
                       const Tensor& k_weight /*[head_dim]*/, float eps, const AttentionShape& shape) = 0;
  // Rotates q (in place) and k by RoPE (neox layout) at the step's positions, and writes k and v
  // into the cache at its slot mapping.
  virtual void rope_kv_store(const StepPlan& plan, Tensor& qkv /*[T, qkv_width]*/,
                             const Tensor& inv_freq /*[head_dim/2] fp32*/, KvCacheTensors& cache, int layer,
                             const AttentionShape& shape) = 0;
  // Causal attention of each new token over its sequence's cached K/V (which already holds the
  // new tokens): query i of a sequence with L new tokens and context C sees positions
  // [0, C - L + i].
  virtual void attention(const StepPlan& plan, const Tensor& qkv /*[T, qkv_width]*/, const KvCacheTensors& cache,
                         int layer, const AttentionShape& shape, Tensor& out /*[T, Hq * head_dim]*/) = 0;
  // out = silu(gate) * up, gate = gate_up[:, :I], up = gate_up[:, I:]
  virtual void silu_mul(const Tensor& gate_up /*[T, 2I]*/, Tensor& out /*[T, I]*/) = 0;
  // out[r] = x[logit_rows[r]]
  virtual void gather_logit_rows(const StepPlan& plan, const Tensor& x /*[T, hidden]*/, Tensor& out /*[R, hidden]*/) = 0;

  // ---- sampling: only ids (and requested logprobs) come back to the host.
  // Applies the step's token-history writes to `history` [rows, max_model_len] int32.
  virtual void write_history(const StepPlan& plan, Tensor& history) = 0;
  // `history` may be undefined when no spec is penalised.
  virtual Status sample(const Tensor& logits /*[R, vocab] fp32*/, const std::vector<SamplingSpec>& specs,
                        const Tensor& history, std::vector<int32_t>& tokens /*[R]*/,
                        std::vector<float>& logprobs /*[R]*/) = 0;
  // Overlap scheduling: sample() without waiting. The ids stay on the device for the next
  // begin_step (StepBatch::last_sample_*) and come back, with the log-probs, through
  // wait_sampled(slot) while the host prepares the next step. Two slots: a step's ids can be on
  // their way back while the next step is sampled into the other one.
  virtual Status sample_async(const Tensor& logits /*[R, vocab] fp32*/, const std::vector<SamplingSpec>& specs,
                              const Tensor& history, int slot) = 0;
  struct SampledIds {
    std::vector<int32_t> tokens;  // [R]
    std::vector<float> logprobs;  // [R]
    // The step on the device's clock, from its begin_step to its ids' copy (0: not timed).
    double device_seconds = 0;
  };
  virtual Status wait_sampled(int slot, SampledIds& out) = 0;
  // logits[index[i]] += bias[i] (index into the flattened [R, vocab] logits): logit_bias and
  // min_tokens' masks, before sampling.
  virtual Status add_logit_bias(Tensor& logits /*[R, vocab] fp32*/, const std::vector<int64_t>& index,
                                const std::vector<float>& bias) = 0;
  // Structured output: logits[rows[r], t] = -inf where bit t of bitmask row r is clear
  // (bitmask [rows, ceil(vocab / 32)], made on the host while the forward runs).
  virtual Status apply_token_bitmask(Tensor& logits /*[R, vocab] fp32*/, const std::vector<int32_t>& rows,
                                     const std::vector<uint32_t>& bitmask) = 0;
  // The k most likely tokens of each row in `rows` and their log-probabilities (log_softmax of
  // the logits), most likely first, ties by lower id.
  virtual Status top_logprobs(const Tensor& logits /*[R, vocab] fp32*/, const std::vector<int>& rows, int k,
                              std::vector<std::vector<TokenLogprob>>& out /*[rows][k]*/) = 0;
  // Allocates what sampling `rows` rows of `vocab` needs now, so that memory is counted before the
  // KV cache takes the rest.
  virtual Status reserve_sampling(int rows, int64_t vocab) {
    (void)rows, (void)vocab;
    return Status::ok_status();
  }
  // logprobs[r] = log_softmax(logits[r])[targets[r]], for prompt log-probabilities.
  virtual Status token_logprobs(const Tensor& logits /*[R, vocab] fp32*/, const std::vector<int32_t>& targets,
                                std::vector<float>& logprobs /*[R]*/) = 0;

  // ---- captured steps
  virtual bool supports_graphs() const { return false; }
  // Captures the ops `body` enqueues into a graph that replays them (supports_graphs() only).
  // Capturing runs nothing: replay the graph to run the step.
  virtual Result<std::unique_ptr<StepGraph>> capture(const std::function<Status()>& body) {
    (void)body;
    return unsupported(name() + " does not capture graphs");
  }
  virtual Status replay(StepGraph& graph) {
    (void)graph;
    return unsupported(name() + " does not replay graphs");
  }

  // ---- utilities
  // Deterministic pseudo-random values mean + std * N(0, 1), for random-weight models.
  virtual Status fill_random(Tensor& t, uint64_t seed, float mean, float std) = 0;

 protected:
  // Whether the *_fp8 ops and matmul_quantized serve `w` (fuses_fp8_input without the switch).
  virtual bool serves_fused_fp8_input(const Linear& w) const {
    (void)w;
    return false;
  }
  // Whether the *_unscaled matmuls serve `w` (defers_fp8_scales without the switch).
  virtual bool serves_deferred_fp8_scales(const Linear& w) const {
    (void)w;
    return false;
  }

 private:
  bool fp8_input_fusion_ = true;
  bool fp8_scale_deferral_ = true;
};

// f() with `rank`'s device current on this thread, then `home`'s again: set-up or tear-down of a
// tensor-parallel rank's memory from a thread that works for another rank (the engine's: rank 0).
template <typename F>
auto on_rank_device(Backend& rank, Backend& home, F&& f) {
  rank.bind_to_current_thread();
  auto result = f();
  home.bind_to_current_thread();
  return result;
}

}  // namespace tk
