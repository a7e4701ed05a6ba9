// The CUDA backend's class, shared by its .cpp files: ops (cuda_backend.cpp) and the step
// machinery — metadata upload, sampling, graph capture (cuda_step.cpp).
#pragma once

#include <map>
#include <tuple>

#include "backend_cuda/cuda_backend.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk {

// Device copy of one StepBatch. Every array has a fixed capacity and a fixed address, so a graph
// captured for one step replays correctly for the next one of the same shape.
struct StepMetadata {
  // Capacities.
  int max_tokens = 0, max_seqs = 0, page_cap = 0;
  // int32 arrays inside one device allocation (and its pinned host mirror).
  int32_t* d_base = nullptr;
  int32_t* h_base = nullptr;
  size_t count = 0;  // int32 elements
  int32_t *token_ids = nullptr, *positions = nullptr, *slot_mapping = nullptr, *logit_rows = nullptr;
  int32_t *query_start = nullptr, *context_lens = nullptr, *page_table = nullptr;  // device pointers
  // Host scalars of the current step.
  int num_tokens = 0, num_seqs = 0, num_logits = 0, max_query_len = 0, max_context_len = 0;
  kernels::DecodePlan plan;
  bool use_decode_kernel = false;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaBackendOptions& options, std::unique_ptr<GemmRunner> gemm, cudaStream_t stream);
  ~CudaBackend() override;

  std::string name() const override { return "cuda:" + info_.name; }
  Device device() const override { return Device::kCuda; }
  DType compute_dtype() const override { return dtype_; }
  Status configure(const AttentionShape& shape, int page_size) override;
  void invalidate_graphs() override { clear_graphs(); }
  Status take_error() override;

  Result<Tensor> alloc(DType dtype, Shape shape) override;
  Result<Tensor> upload(const Tensor& host) override;
  Status download(const Tensor& src, void* dst) override;
  Status copy_from_host(const void* src, Tensor& dst) override;
  Result<KvCache> alloc_kv_cache(int num_layers, int num_pages, int page_size, int num_kv_heads, int head_dim) override;
  size_t free_memory() const override;

  Status begin_step(const StepBatch& batch) override;
  void embedding(const Tensor& table, Tensor& out) override;
  void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override;
  void add_rmsnorm(Tensor& residual, const Tensor& delta, const Tensor& weight, float eps, Tensor& out) override;
  void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) override;
  void qk_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, float eps, const AttentionShape& shape) override;
  void rope_kv_store(Tensor& qkv, const Tensor& inv_freq, KvCache& cache, int layer, const AttentionShape& shape) override;
  void attention(const Tensor& qkv, const KvCache& cache, int layer, const AttentionShape& shape, Tensor& out) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void gather_logit_rows(const Tensor& x, Tensor& out) override;
  Status sample(const Tensor& logits, const std::vector<SamplingSpec>& specs, std::vector<int32_t>& tokens,
                std::vector<float>& logprobs) override;
  Status token_logprobs(const Tensor& logits, const std::vector<int32_t>& targets, std::vector<float>& logprobs) override;
  Status run_step(const std::function<Status()>& body, bool capturable) override;
  Status fill_random(Tensor& t, uint64_t seed, float mean, float std) override;
  Status synchronize() override;

  cudaStream_t stream() const { return stream_; }

 private:
  void record(const Status& s) {
    if (!s.ok() && error_.ok()) error_ = s;
  }
  Status ensure_metadata(const StepBatch& batch);
  Status ensure_bytes(DeviceBuffer& buf, size_t bytes);
  kernels::HeadLayout layout(const Tensor& qkv, const AttentionShape& s) const;
  void clear_graphs();

  CudaBackendOptions options_;
  DType dtype_;
  DeviceInfo info_;
  std::unique_ptr<GemmRunner> gemm_;
  cudaStream_t stream_ = nullptr;
  Status error_;
  AttentionShape attn_shape_;  // recorded by configure(): decode plans depend on it
  int page_size_ = 16;
  StepMetadata meta_;
  DeviceBuffer meta_device_;
  int32_t* meta_host_ = nullptr;  // pinned
  DeviceBuffer attn_workspace_;
  // Sampling staging: rows and histories up (pinned), tokens and logprobs down.
  DeviceBuffer sample_in_, sample_out_, sample_workspace_;
  std::vector<uint8_t> sample_host_;
  // Captured decode steps: (tokens, logits, seqs, splits, split tokens) -> executable graph.
  using GraphKey = std::tuple<int, int, int, int, int>;
  std::map<GraphKey, cudaGraphExec_t> graphs_;
};

}  // namespace tk
