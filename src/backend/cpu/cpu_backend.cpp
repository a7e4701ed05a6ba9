// The CPU backend: thin adapters from Tensors and the step metadata to the reference loops.
#include <omp.h>
#include <unistd.h>

#include <random>

#include "backend_cpu/cpu_backend.h"
#include "ref/ref.h"

namespace tk {
namespace {

float* f32(const Tensor& t) {
  TK_CHECK_MSG(t.dtype() == DType::kF32 && t.device() == Device::kCpu, "CPU backend tensors are host fp32");
  return t.data_as<float>();
}

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(int num_threads) {
    int n = num_threads > 0 ? num_threads : env_flags().num_threads.value_or(0);
    if (n > 0) omp_set_num_threads(n);
  }
  std::string name() const override { return "cpu"; }
  Device device() const override { return Device::kCpu; }
  DType compute_dtype() const override { return DType::kF32; }

  Status configure(const AttentionShape& s, int page_size) override {
    if (s.head_dim % 2 != 0) return unsupported("RoPE needs an even head_dim, got " + std::to_string(s.head_dim));
    if (s.num_kv_heads <= 0 || s.num_q_heads % s.num_kv_heads != 0) return unsupported("q heads must be a multiple of kv heads");
    if (page_size <= 0) return invalid_argument("page size must be positive");
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

  Result<KvCache> alloc_kv_cache(int num_layers, int num_pages, int page_size, int num_kv_heads,
                                 int head_dim) override {
    KvCache cache;
    cache.num_pages = num_pages, cache.page_size = page_size;
    cache.num_kv_heads = num_kv_heads, cache.head_dim = head_dim;
    Shape shape{num_pages, num_kv_heads, page_size, head_dim};
    for (int l = 0; l < num_layers; ++l) {
      cache.k.push_back(Tensor::empty_cpu(DType::kF32, shape));
      cache.v.push_back(Tensor::empty_cpu(DType::kF32, shape));
    }
    return cache;
  }

  size_t free_memory() const override {
    long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<size_t>(pages) * static_cast<size_t>(page) : 0;
  }

  Status begin_step(const StepBatch& batch) override {
    batch_ = &batch;
    return Status::ok_status();
  }

  void embedding(const Tensor& table, Tensor& out) override {
    ref::embedding(f32(table), batch_->token_ids.data(), batch_->num_tokens, table.dim(1), f32(out));
  }
  void rmsnorm(const Tensor& x, const Tensor& w, float eps, Tensor& out) override {
    ref::rmsnorm(f32(x), f32(w), batch_->num_tokens, x.dim(1), eps, f32(out));
  }
  void add_rmsnorm(Tensor& residual, const Tensor& delta, const Tensor& w, float eps, Tensor& out) override {
    ref::add_rmsnorm(f32(residual), f32(delta), f32(w), batch_->num_tokens, residual.dim(1), eps, f32(out));
  }
  void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) override {
    TK_CHECK(x.dim(1) == w.dim(1) && out.dim(0) == x.dim(0) && out.dim(1) == w.dim(0));
    ref::matmul(f32(x), f32(w), bias ? f32(*bias) : nullptr, x.dim(0), w.dim(0), w.dim(1), f32(out));
  }
  void qk_norm(Tensor& qkv, const Tensor& qw, const Tensor& kw, float eps, const AttentionShape& s) override {
    ref::qk_norm(f32(qkv), f32(qw), f32(kw), heads(qkv, s), eps);
  }
  void rope_kv_store(Tensor& qkv, const Tensor& inv_freq, KvCache& cache, int layer,
                     const AttentionShape& s) override {
    ref::rope_kv_store(f32(qkv), batch_->positions.data(), f32(inv_freq), batch_->slot_mapping.data(), heads(qkv, s),
                       paged(cache, layer));
  }
  void attention(const Tensor& qkv, const KvCache& cache, int layer, const AttentionShape& s, Tensor& out) override {
    ref::AttentionParams p;
    p.heads = heads(qkv, s);
    p.scale = s.scale;
    p.num_seqs = batch_->num_seqs;
    p.query_start = batch_->query_start.data();
    p.context_lens = batch_->context_lens.data();
    p.page_table = batch_->page_table.data();
    p.max_pages_per_seq = batch_->max_pages_per_seq;
    ref::paged_attention(f32(qkv), paged(cache, layer), p, f32(out));
  }
  void silu_mul(const Tensor& gate_up, Tensor& out) override {
    ref::silu_mul(f32(gate_up), batch_->num_tokens, out.dim(1), f32(out));
  }
  void gather_logit_rows(const Tensor& x, Tensor& out) override {
    const int64_t h = x.dim(1);
    for (int r = 0; r < batch_->num_logits(); ++r)
      std::memcpy(f32(out) + r * h, f32(x) + static_cast<int64_t>(batch_->logit_rows[r]) * h, sizeof(float) * h);
  }

  Status sample(const Tensor& logits, const std::vector<SamplingSpec>& specs, std::vector<int32_t>& tokens,
                std::vector<float>& logprobs) override {
    const int64_t rows = static_cast<int64_t>(specs.size()), vocab = logits.dim(1);
    tokens.assign(rows, 0);
    logprobs.assign(rows, 0.f);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t r = 0; r < rows; ++r) {
      thread_local std::vector<float> scratch;
      const float* row = f32(logits) + r * vocab;
      tokens[r] = ref::sample_row(row, vocab, to_ref(specs[r]), scratch);
      if (specs[r].want_logprob) logprobs[r] = ref::token_logprob(row, vocab, tokens[r]);
    }
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

  Status synchronize() override { return Status::ok_status(); }

 private:
  ref::HeadsParams heads(const Tensor& qkv, const AttentionShape& s) const {
    ref::HeadsParams p;
    p.num_tokens = batch_->num_tokens;
    p.num_q_heads = s.num_q_heads, p.num_kv_heads = s.num_kv_heads, p.head_dim = s.head_dim;
    p.qkv_stride = qkv.stride(0);
    return p;
  }
  static ref::PagedKv paged(const KvCache& cache, int layer) {
    return {f32(cache.k[layer]), f32(cache.v[layer]), cache.num_pages, cache.page_size};
  }
  static ref::SampleParams to_ref(const SamplingSpec& s) {
    ref::SampleParams p;
    static_cast<SamplingKnobs&>(p) = s;
    p.prompt_tokens = s.prompt_tokens, p.num_prompt_tokens = s.num_prompt_tokens;
    p.output_tokens = s.output_tokens, p.num_output_tokens = s.num_output_tokens;
    return p;
  }

  const StepBatch* batch_ = nullptr;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(int num_threads) { return std::make_unique<CpuBackend>(num_threads); }

}  // namespace tk
