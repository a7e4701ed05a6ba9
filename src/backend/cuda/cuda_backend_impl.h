// The CUDA backend's class, shared by its .cpp files: ops (cuda_backend.cpp) and the step
// machinery — plans, sampling, graph capture (cuda_step.cpp).
#pragma once

#include <optional>

#include "backend_cuda/cuda_backend.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk {

// A step planned on the GPU: the StepBatch uploaded into int32 arrays of fixed capacity inside one
// device allocation (with a pinned host mirror), so a graph captured for one step replays
// correctly for the next one of the same key.
class CudaStepPlan final : public StepPlan {
 public:
  ~CudaStepPlan() override;
  StepCapacity capacity;
  DeviceBuffer device;           // the arrays below
  int32_t* host = nullptr;       // pinned mirror of `device`
  int32_t *token_ids = nullptr, *positions = nullptr, *slot_mapping = nullptr, *logit_rows = nullptr;
  int32_t *query_start = nullptr, *context_lens = nullptr, *history_index = nullptr, *history_tokens = nullptr;
  // Overlap scheduling: where row r of the last sampling goes, as offsets into `device` (-1: nowhere).
  int32_t *last_to_token = nullptr, *last_to_history = nullptr;  // [max_seqs] each
  int32_t* page_table = nullptr;  // last: [num_seqs, page_stride], only the rows a step uses are copied
  size_t num_ints = 0;            // int32 entries of `device`
  int page_stride = 0;            // this step's page-table row length (a power of two)
  int num_history = 0;
  cudaEvent_t uploaded = nullptr;  // the last upload has left the pinned mirror
  // Sequences [0, num_decode_seqs) (at most kMaxDecodeQueryLen new tokens each, the first
  // decode_tokens rows) go to the split-KV decode kernel, the rest to the prefill kernel.
  int num_decode_seqs = 0, decode_tokens = 0, decode_max_query = 0, decode_max_context = 0;
  int prefill_max_query = 0, prefill_max_context = 0;
  kernels::DecodePlan decode;
  DeviceBuffer attn_workspace;
  int workspace_generation = 0;  // part of the graph key: bumped when attn_workspace moves
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const CudaBackendOptions& options, std::unique_ptr<GemmRunner> gemm, cudaStream_t stream);
  ~CudaBackend() override;

  std::string name() const override { return "cuda:" + info_.name; }
  Device device() const override { return Device::kCuda; }
  DType compute_dtype() const override { return dtype_; }
  void bind_to_current_thread() override { CUDA_CHECK(cudaSetDevice(device_)); }
  Status configure(const AttentionShape& shape, int page_size) override;
  Status take_error() override;
  Status synchronize() override;

  Result<Tensor> alloc(DType dtype, Shape shape) override;
  Result<Tensor> upload(const Tensor& host) override;  // cuda_upload.cpp
  Result<Tensor> upload_stacked(const std::vector<Tensor>& parts) override;
  Status download(const Tensor& src, void* dst) override;
  Status copy_from_host(const void* src, Tensor& dst) override;
  size_t free_memory() const override;
  size_t total_memory() const override { return info_.total_memory; }

  std::unique_ptr<StepPlan> new_step_plan(const StepCapacity& capacity) override;
  size_t decode_workspace_bound(const StepCapacity& capacity) const;
  Status begin_step(const StepBatch& batch, StepPlan& plan) override;
  void embedding(const StepPlan& plan, const Tensor& table, Tensor& out) override;
  void embedding_shard(const StepPlan& plan, const Tensor& table, int64_t vocab_begin, Tensor& out) override;
  void rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override;
  void add_rmsnorm(Tensor& residual, const Tensor& delta, const Tensor& weight, float eps, Tensor& out) override;
  void matmul(const Tensor& x, const Linear& w, Tensor& out) override;
  void qk_norm(Tensor& qkv, const Tensor& q_weight, const Tensor& k_weight, float eps, const AttentionShape& shape) override;
  void rope_kv_store(const StepPlan& plan, Tensor& qkv, const Tensor& inv_freq, KvCacheTensors& cache, int layer,
                     const AttentionShape& shape) override;
  void attention(const StepPlan& plan, const Tensor& qkv, const KvCacheTensors& cache, int layer,
                 const AttentionShape& shape, Tensor& out) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void gather_logit_rows(const StepPlan& plan, const Tensor& x, Tensor& out) override;
  void write_history(const StepPlan& plan, Tensor& history) override;
  Status sample(const Tensor& logits, const std::vector<SamplingSpec>& specs, const Tensor& history,
                std::vector<int32_t>& tokens, std::vector<float>& logprobs) override;
  Status sample_async(const Tensor& logits, const std::vector<SamplingSpec>& specs, const Tensor& history,
                      int slot) override;
  Status wait_sampled(int slot, SampledIds& out) override;
  Status reserve_sampling(int rows, int64_t vocab) override;
  Status add_logit_bias(Tensor& logits, const std::vector<int64_t>& index, const std::vector<float>& bias) override;
  Status top_logprobs(const Tensor& logits, const std::vector<int>& rows, int k,
                      std::vector<std::vector<TokenLogprob>>& out) override;
  Status apply_token_bitmask(Tensor& logits, const std::vector<int32_t>& rows, const std::vector<uint32_t>& bitmask) override;
  Status token_logprobs(const Tensor& logits, const std::vector<int32_t>& targets, std::vector<float>& logprobs) override;
  bool supports_graphs() const override { return true; }
  Result<std::unique_ptr<StepGraph>> capture(const std::function<Status()>& body) override;
  Status replay(StepGraph& graph) override;
  Status fill_random(Tensor& t, uint64_t seed, float mean, float std) override;
  Result<Linear> upload_fp8_linear(const Fp8HostLinear& host) override;  // cuda_fp8.cpp
  Status quantize_linear_fp8(Linear& w) override;
  Status reserve_fp8_inputs(int64_t max_tokens, int64_t max_in) override;
  void rmsnorm_fp8(const Tensor& x, const Tensor& weight, float eps, const Linear& consumer,
                   Fp8Activation& out) override;  // cuda_backend.cpp
  void add_rmsnorm_fp8(Tensor& residual, const Tensor& delta, const Fp8DeferredScales& delta_scales,
                       const Tensor& weight, float eps, const Linear& consumer, Fp8Activation& out) override;
  void silu_mul_fp8(const Tensor& gate_up, const Fp8DeferredScales& gate_up_scales, const Linear& consumer,
                    Fp8Activation& out) override;
  void matmul_quantized(const Fp8Activation& x, const Linear& w, Tensor& out) override;  // cuda_fp8.cpp
  void matmul_unscaled(const Tensor& x, const Linear& w, Tensor& out, Fp8DeferredScales& scales) override;
  void matmul_quantized_unscaled(const Fp8Activation& x, const Linear& w, Tensor& out,
                                 Fp8DeferredScales& scales) override;

  cudaStream_t stream() const { return stream_; }
  int device_index() const { return device_; }

 protected:
  bool serves_fused_fp8_input(const Linear& w) const override;  // cuda_fp8.cpp
  bool serves_deferred_fp8_scales(const Linear& w) const override;

 private:
  void record(const Status& s) {
    if (!s.ok() && error_.ok()) error_ = s;
  }
  Status ensure_bytes(DeviceBuffer& buf, size_t bytes);
  Status ensure_upload_staging();  // cuda_upload.cpp
  void free_upload_staging();
  Status upload_elements(const void* src, DType from, void* dst, size_t n);
  // `deferred` (serves_deferred_fp8_scales only): the raw product, its scales left in *deferred.
  Status matmul_fp8(const Tensor& x, const Linear& w, Tensor& out, Fp8DeferredScales* deferred = nullptr);
  // The product of an input already in fp8 (xq [m, k], one scale per row) with an FP8 weight.
  Status fp8_weight_product(const void* xq, const float* row_scales, int64_t m, int64_t k, const Linear& w,
                            Tensor& out, Fp8DeferredScales* deferred);
  static bool fp8_output_fits(const Fp8Activation& out, int64_t rows, int64_t cols);
  bool fp8_outer_vectors_served();  // cuda_fp8.cpp
  Status ensure_fp8_prescale();
  void ensure_events();
  Status scatter_last_sample(const StepBatch& b, CudaStepPlan& m);
  static HeadLayout layout(const Tensor& qkv, const AttentionShape& s);

  int device_;
  DType dtype_;
  DeviceInfo info_;
  std::unique_ptr<GemmRunner> gemm_;
  cudaStream_t stream_ = nullptr;
  Status error_;
  // Recorded by configure(): decode split plans depend on the KV heads and the page size.
  AttentionShape attn_shape_;
  int page_size_ = kDefaultPageSize;
  // FP8 linears' quantized inputs (reserve_fp8_inputs): fp8 values, their scales, and the
  // dequantized copy for linears held in the compute dtype. Fixed addresses once reserved.
  DeviceBuffer fp8_input_, fp8_input_scales_, fp8_dequantized_;
  int64_t fp8_input_rows_ = 0, fp8_input_cols_ = 0;
  std::optional<bool> fp8_outer_vectors_;  // fp8_outer_vectors_served(), asked once
  DeviceBuffer fp8_prescale_;  // [1] fp32: the constant scales of FP8 GEMMs scaled afterwards
  // Sampling staging (cuda_sampling.cpp): rows up, tokens and logprobs down, through pinned
  // memory per slot so that one step's ids come back while the next step is sampled.
  DeviceBuffer sample_in_, sample_out_, sample_workspace_, bias_in_, mask_in_;
  DeviceBuffer sampled_;  // [rows] ids then [rows] logprobs of the last sampling; only sample_async writes it
  int last_sampled_rows_ = 0;
  struct SampleSlot {
    void* rows_host = nullptr;  // pinned SamplingRows
    size_t rows_bytes = 0;
    void* ids_host = nullptr;   // pinned [rows] ids then [rows] logprobs
    size_t ids_bytes = 0;
    cudaEvent_t rows_sent = nullptr;  // rows_host may be written again
    cudaEvent_t ids_ready = nullptr;  // ids_host holds the ids (timed: the step's end)
    cudaEvent_t started = nullptr;    // the step's begin_step (timed), or null
    int rows = 0;
    bool pending = false;
  };
  SampleSlot slots_[2];
  // Weight uploads (cuda_upload.cpp): pinned slices filled by host threads while the one before
  // is copied; made on the first upload, freed by configure() (loading is over by then).
  static constexpr int kUploadStages = 3;
  struct UploadStage {
    void* host = nullptr;
    cudaEvent_t sent = nullptr;  // the slice's copy has left host memory
  };
  UploadStage upload_stages_[kUploadStages];
  int next_stage_ = 0;
  cudaEvent_t step_started_[2] = {nullptr, nullptr};  // begin_step's, alternating
  int next_start_ = 0, last_start_ = -1;
  bool profiling_ = false;  // TOKAMAK_PROFILE's window is open (cuda_step.cpp)
  int profiled_steps_ = 0;
  void profile_step(const StepBatch& b);
  void free_sampling_host();
};

}  // namespace tk
