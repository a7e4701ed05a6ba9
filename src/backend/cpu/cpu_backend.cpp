// The CPU backend: thin adapters from Tensors and the step plan to the reference loops.
#include <omp.h>
#include <unistd.h>

#include <random>
#include <vector>

#include "backend_cpu/cpu_backend.h"
#include "ref/ref.h"

namespace tk {
namespace {

float* f32(const Tensor& t) {
  TK_CHECK_MSG(t.dtype() == DType::kF32 && t.device() == Device::kCpu, "CPU backend tensors are host fp32");
  return t.data_as<float>();
}

// The CPU's plan is the host batch itself (copied: the plan outlives the caller's batch).
class CpuStepPlan final : public StepPlan {
 public:
  StepBatch batch;
};

const StepBatch& batch_of(const StepPlan& plan) { return static_cast<const CpuStepPlan&>(plan).batch; }

HeadLayout heads(const Tensor& qkv, const AttentionShape& s) {
  HeadLayout p;
  p.num_tokens = qkv.dim(0);
  p.num_q_heads = s.num_q_heads, p.num_kv_heads = s.num_kv_heads, p.head_dim = s.head_dim;
  p.qkv_stride = qkv.stride(0);
  return p;
}

ref::PagedKv paged(const KvCacheTensors& cache, int layer) {
  ref::PagedKv kv;
  kv.num_pages = cache.num_pages(), kv.page_size = cache.page_size();
  if (!cache.fp8()) {
    kv.k = f32(cache.k[layer]), kv.v = f32(cache.v[layer]);
    return kv;
  }
  kv.k8 = const_cast<uint8_t*>(cache.k[layer].data_as<uint8_t>());
  kv.v8 = const_cast<uint8_t*>(cache.v[layer].data_as<uint8_t>());
  kv.k_scale = cache.k_scale.at(layer), kv.v_scale = cache.v_scale.at(layer);
  return kv;
}

ref::SamplingRow to_ref(const SamplingSpec& s, const Tensor& history) {
  ref::SamplingRow p;
  static_cast<SamplingDraw&>(p) = s;
  if (s.history_row < 0) return p;
  const int32_t* row = history.data_as<int32_t>() + static_cast<int64_t>(s.history_row) * history.dim(1);
  p.prompt_tokens = row, p.num_prompt_tokens = s.num_prompt_tokens;
  p.output_tokens = row + s.num_prompt_tokens, p.num_output_tokens = s.num_output_tokens;
  return p;
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads) : num_threads_(num_threads > 0 ? num_threads : env_flags().num_threads.value_or(0)) {
    if (num_threads_ > 0) omp_set_num_threads(num_threads_);
  }
  // NOTE: OpenMP's thread count is a per-thread setting: a thread other than the constructing one
  // (the engine loop, a tensor-parallel rank's worker) takes the backend's count here.
  void bind_to_current_thread() override {
    if (num_threads_ > 0) omp_set_num_threads(num_threads_);
  }
  std::string name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }
  DType compute_dtype() const override { return DType::kF32; }

  Status configure(const AttentionShape& s, int page_size) override {
    if (s.head_dim % 2 != 0) return unsupported("RoPE needs an even head_dim, got " + std::to_string(s.head_dim));
    if (s.num_kv_heads <= 0 || s.num_q_heads % s.num_kv_heads != 0) return unsupported("q heads must be a multiple of kv heads");
    if (!is_supported_page_size(page_size))
      return unsupported("page size " + std::to_string(page_size) + " (supported: " + supported_page_sizes_text() + ")");
    return Status::ok_status();
  }

  Result<Tensor> alloc(DType dtype, Shape shape) override { return Tensor::empty_cpu(dtype, shape); }

  Result<Tensor> upload(const Tensor& host) override {
    Tensor t = Tensor::empty_cpu(DType::kF32, host.shape());
    convert_to_f32(host.data(), host.dtype(), t.data_as<float>(), static_cast<size_t>(host.numel()));
    return t;
  }

  Status download(const Tensor& src, void* dst) override {
    std::memcpy(dst, src.data(), src.nbytes());
    return Status::ok_status();
  }

  Status copy_from_host(const void* src, Tensor& dst) override {
    std::memcpy(dst.data(), src, dst.nbytes());
    return Status::ok_status();
  }

  // x as an FP8 GEMM sees it: quantized as the linear's scheme says, then dequantized, [M, in].
  const float* fp8_input(const Tensor& x, const Linear& w) {
    const int64_t m = x.dim(0), k = x.dim(1), per_row = fp8::input_scales_per_row(w.scheme.input, k);
    fp8_q_.resize(static_cast<size_t>(m * k));
    fp8_scales_.resize(static_cast<size_t>(m * per_row));
    fp8_x_.resize(static_cast<size_t>(m * k));
    const float static_scale = w.input_scale.defined() ? f32(w.input_scale)[0] : 0.f;
    fp8::quantize_input(f32(x), m, k, x.stride(0), w.scheme, static_scale, fp8_q_.data(), fp8_scales_.data());
    dequantize_rows(fp8_q_.data(), fp8_scales_.data(), m, k, per_row, fp8_x_.data());
    return fp8_x_.data();
  }
  static void dequantize_rows(const uint8_t* q, const float* scales, int64_t m, int64_t k, int64_t per_row, float* x) {
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < k; ++c) {
        const int64_t group = per_row > 1 ? c / kFp8BlockSize : 0;
        x[r * k + c] = fp8_e4m3_to_f32(q[r * k + c]) * scales[r * per_row + group];
      }
  }

  // ---- the producers' FP8 outputs: the op into fp32, then fp8::quantize_input as matmul's
  // fp8_input would run it on that output (the same numbers by construction; CI runs this path).
  bool serves_fused_fp8_input(const Linear& w) const override { return w.scheme.input == InputQuant::kDynamicToken; }
  void quantize_for(const float* y, int64_t rows, int64_t cols, const Linear& consumer, Fp8Activation& out) {
    TK_CHECK(out.q.dtype() == DType::kF8E4M3 && out.q.dim(0) == rows && out.q.dim(1) == cols && out.q.is_contiguous());
    TK_CHECK(serves_fused_fp8_input(consumer) && consumer.in_features() == cols && out.scales.dim(0) == rows);
    fp8::quantize_input(y, rows, cols, cols, consumer.scheme, 0.f, out.q.data_as<uint8_t>(), f32(out.scales));
  }
  void rmsnorm_fp8(const Tensor& x, const Tensor& w, float eps, const Linear& consumer, Fp8Activation& out) override {
    fp8_y_.resize(static_cast<size_t>(x.numel()));
    ref::rmsnorm(f32(x), f32(w), x.dim(0), x.dim(1), eps, fp8_y_.data());
    quantize_for(fp8_y_.data(), x.dim(0), x.dim(1), consumer, out);
  }
  void add_rmsnorm_fp8(Tensor& residual, const Tensor& delta, const Fp8DeferredScales& delta_scales, const Tensor& w,
                       float eps, const Linear& consumer, Fp8Activation& out) override {
    TK_CHECK_MSG(!delta_scales.pending(), "the CPU defers no FP8 scales");
    fp8_y_.resize(static_cast<size_t>(residual.numel()));
    ref::add_rmsnorm(f32(residual), f32(delta), f32(w), residual.dim(0), residual.dim(1), eps, fp8_y_.data());
    quantize_for(fp8_y_.data(), residual.dim(0), residual.dim(1), consumer, out);
  }
  void silu_mul_fp8(const Tensor& gate_up, const Fp8DeferredScales& gate_up_scales, const Linear& consumer,
                    Fp8Activation& out) override {
    TK_CHECK_MSG(!gate_up_scales.pending(), "the CPU defers no FP8 scales");
    const int64_t t = gate_up.dim(0), inter = gate_up.dim(1) / 2;
    fp8_y_.resize(static_cast<size_t>(t * inter));
    ref::silu_mul(f32(gate_up), t, inter, fp8_y_.data());
    quantize_for(fp8_y_.data(), t, inter, consumer, out);
  }
  void matmul_quantized(const Fp8Activation& x, const Linear& w, Tensor& out) override {
    const int64_t m = x.q.dim(0), k = x.q.dim(1);
    TK_CHECK(k == w.in_features() && out.dim(0) == m && out.dim(1) == w.out_features());
    TK_CHECK_MSG(w.scheme.weight == WeightScale::kNone, "CPU linears hold dequantized weights");
    fp8_x_.resize(static_cast<size_t>(m * k));
    dequantize_rows(x.q.data_as<uint8_t>(), f32(x.scales), m, k, 1, fp8_x_.data());
    ref::matmul(fp8_x_.data(), f32(w.weight), w.bias.defined() ? f32(w.bias) : nullptr, m, w.out_features(), k,
                f32(out));
  }

  size_t free_memory() const override { return sysconf_bytes(_SC_AVPHYS_PAGES); }
  size_t total_memory() const override { return sysconf_bytes(_SC_PHYS_PAGES); }

  std::unique_ptr<StepPlan> new_step_plan(const StepCapacity&) override { return std::make_unique<CpuStepPlan>(); }

  Status begin_step(const StepBatch& batch, StepPlan& plan) override {
    CpuStepPlan& p = static_cast<CpuStepPlan&>(plan);
    p.batch = batch;
    apply_last_sample(p.batch);
    p.num_tokens = batch.num_tokens(), p.num_seqs = batch.num_seqs(), p.num_logits = batch.num_logits();
    p.max_query_len = batch.max_query_len(), p.max_context_len = batch.max_context_len();
    return Status::ok_status();
  }

  void embedding(const StepPlan& plan, const Tensor& table, Tensor& out) override {
    const StepBatch& b = batch_of(plan);
    TK_CHECK(out.dim(0) == b.num_tokens());
    ref::embedding(f32(table), b.token_ids.data(), b.num_tokens(), table.dim(1), f32(out));
  }
  void embedding_shard(const StepPlan& plan, const Tensor& table, int64_t vocab_begin, Tensor& out) override {
    const StepBatch& b = batch_of(plan);
    TK_CHECK(out.dim(0) == b.num_tokens() && out.dim(1) == table.dim(1));
    const int64_t rows = table.dim(0), h = table.dim(1);
    for (int t = 0; t < b.num_tokens(); ++t) {
      const int64_t row = static_cast<int64_t>(b.token_ids[t]) - vocab_begin;
      float* dst = f32(out) + t * h;
      if (row >= 0 && row < rows) std::memcpy(dst, f32(table) + row * h, sizeof(float) * h);
      else std::fill(dst, dst + h, 0.f);  // another rank's row
    }
  }
  void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    ref::rmsnorm(f32(x), f32(w), x.dim(0), x.dim(1), eps, f32(out));
  }
  void add_rmsnorm(Tensor& residual, const Tensor& delta, const Tensor& w, float eps, Tensor& out) override {
    ref::add_rmsnorm(f32(residual), f32(delta), f32(w), residual.dim(0), residual.dim(1), eps, f32(out));
  }
  void matmul(const Tensor& x, const Linear& w, Tensor& out) override {
    TK_CHECK(x.dim(1) == w.in_features() && out.dim(0) == x.dim(0) && out.dim(1) == w.out_features());
    TK_CHECK_MSG(w.scheme.weight == WeightScale::kNone, "CPU linears hold dequantized weights");
    const float* input = f32(x);
    if (w.quantizes_input()) input = fp8_input(x, w);
    ref::matmul(input, f32(w.weight), w.bias.defined() ? f32(w.bias) : nullptr, x.dim(0), w.out_features(),
                w.in_features(), f32(out));
  }
  void qk_norm(Tensor& qkv, const Tensor& qw, const Tensor& kw, float eps, const AttentionShape& s) override {
    ref::qk_norm(f32(qkv), f32(qw), f32(kw), heads(qkv, s), eps);
  }
  void rope_kv_store(const StepPlan& plan, Tensor& qkv, const Tensor& inv_freq, KvCacheTensors& cache, int layer,
                     const AttentionShape& s) override {
    const StepBatch& b = batch_of(plan);
    ref::rope_kv_store(f32(qkv), b.positions.data(), f32(inv_freq), b.slot_mapping.data(), heads(qkv, s),
                       paged(cache, layer));
  }
  void attention(const StepPlan& plan, const Tensor& qkv, const KvCacheTensors& cache, int layer,
                 const AttentionShape& s, Tensor& out) override {
    const StepBatch& b = batch_of(plan);
    ref::AttentionParams p;
    p.heads = heads(qkv, s);
    p.scale = s.scale;
    p.num_seqs = b.num_seqs();
    p.query_start = b.query_start.data();
    p.context_lens = b.context_lens.data();
    p.page_table = b.page_table.data();
    p.max_pages_per_seq = b.max_pages_per_seq;
    ref::paged_attention(f32(qkv), paged(cache, layer), p, f32(out));
  }
  void silu_mul(const Tensor& gate_up, Tensor& out) override {
    ref::silu_mul(f32(gate_up), gate_up.dim(0), out.dim(1), f32(out));
  }
  void gather_logit_rows(const StepPlan& plan, const Tensor& x, Tensor& out) override {
    const StepBatch& b = batch_of(plan);
    const int64_t h = x.dim(1);
    for (int r = 0; r < b.num_logits(); ++r)
      std::memcpy(f32(out) + r * h, f32(x) + static_cast<int64_t>(b.logit_rows[r]) * h, sizeof(float) * h);
  }

  void write_history(const StepPlan& plan, Tensor& history) override {
    const StepBatch& b = batch_of(plan);
    ref::scatter_int32(history.data_as<int32_t>(), history.numel(), b.history_index.data(), b.history_tokens.data(),
                       static_cast<int64_t>(b.history_index.size()));
  }

  Status sample(const Tensor& logits, const std::vector<SamplingSpec>& specs, const Tensor& history,
                std::vector<int32_t>& tokens, std::vector<float>& logprobs) override {
    const int64_t rows = static_cast<int64_t>(specs.size()), vocab = logits.dim(1);
    tokens.assign(rows, 0);
    logprobs.assign(rows, 0.f);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t r = 0; r < rows; ++r) {
      thread_local std::vector<float> scratch;
      const float* row = f32(logits) + r * vocab;
      tokens[r] = ref::sample_row(row, vocab, to_ref(specs[r], history), scratch);
      if (specs[r].want_logprob) logprobs[r] = ref::token_logprob(row, vocab, tokens[r]);
    }
    last_sampled_ = tokens;
    return Status::ok_status();
  }

  // The CPU samples at once; the slot keeps the ids until they are asked for, and the next
  // begin_step reads them from last_sampled_ as the GPU reads them from device memory.
  Status sample_async(const Tensor& logits, const std::vector<SamplingSpec>& specs, const Tensor& history,
                      int slot) override {
    TK_CHECK(slot == 0 || slot == 1);
    SampledIds& out = slots_[slot];
    return sample(logits, specs, history, out.tokens, out.logprobs);
  }
  Status wait_sampled(int slot, SampledIds& out) override {
    TK_CHECK(slot == 0 || slot == 1);
    out = std::move(slots_[slot]);
    slots_[slot] = SampledIds();
    return Status::ok_status();
  }
  void apply_last_sample(StepBatch& b) const {
    TK_CHECK(b.last_sample_to_token.empty() || b.last_sample_to_token.size() == last_sampled_.size());
    for (size_t r = 0; r < b.last_sample_to_token.size(); ++r) {
      if (b.last_sample_to_token[r] >= 0) b.token_ids[b.last_sample_to_token[r]] = last_sampled_[r];
      if (b.last_sample_to_history[r] >= 0) b.history_tokens[b.last_sample_to_history[r]] = last_sampled_[r];
    }
  }

  Status add_logit_bias(Tensor& logits, const std::vector<int64_t>& index, const std::vector<float>& bias) override {
    float* l = f32(logits);
    for (size_t i = 0; i < index.size(); ++i) l[index[i]] += bias[i];
    return Status::ok_status();
  }

  Status apply_token_bitmask(Tensor& logits, const std::vector<int32_t>& rows, const std::vector<uint32_t>& bitmask) override {
    const int64_t vocab = logits.dim(1), words = (vocab + 31) / 32;
    TK_CHECK(static_cast<int64_t>(bitmask.size()) == static_cast<int64_t>(rows.size()) * words);
    for (size_t r = 0; r < rows.size(); ++r) ref::apply_token_bitmask(f32(logits) + rows[r] * vocab, vocab, &bitmask[r * words]);
    return Status::ok_status();
  }

  Status top_logprobs(const Tensor& logits, const std::vector<int>& rows, int k,
                      std::vector<std::vector<TokenLogprob>>& out) override {
    const int64_t vocab = logits.dim(1);
    out.assign(rows.size(), {});
#pragma omp parallel for
    for (size_t i = 0; i < rows.size(); ++i) out[i] = ref::top_logprobs(f32(logits) + rows[i] * vocab, vocab, k);
    return Status::ok_status();
  }

  Status token_logprobs(const Tensor& logits, const std::vector<int32_t>& targets,
                        std::vector<float>& logprobs) override {
    const int64_t rows = static_cast<int64_t>(targets.size()), vocab = logits.dim(1);
    logprobs.assign(rows, 0.f);
#pragma omp parallel for
    for (int64_t r = 0; r < rows; ++r) logprobs[r] = ref::token_logprob(f32(logits) + r * vocab, vocab, targets[r]);
    return Status::ok_status();
  }

  Status fill_random(Tensor& t, uint64_t seed, float mean, float std) override {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> d(mean, std);
    float* p = f32(t);
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = d(rng);
    return Status::ok_status();
  }

 private:
  static size_t sysconf_bytes(int name) {
    long pages = sysconf(name), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  }

  int num_threads_;             // OpenMP threads of the ops; 0: OpenMP's default
  std::vector<uint8_t> fp8_q_;  // scratch of fp8_input
  std::vector<float> fp8_scales_, fp8_x_;
  std::vector<float> fp8_y_;  // a producer's fp32 output before its quantization
  std::vector<int32_t> last_sampled_;  // the last sampling's ids: the next step's pending inputs
  SampledIds slots_[2];                // sample_async's results until wait_sampled takes them
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int num_threads) { return std::make_unique<CpuBackend>(num_threads); }

int cpu_default_threads() { return omp_get_max_threads(); }

}  // namespace tk
