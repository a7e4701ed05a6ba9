// The CUDA backend's step machinery: the StepBatch uploaded once into fixed-address buffers,
// the attention plan made on the host, sampling with only ids and logprobs coming back, and
// decode steps captured into CUDA graphs and replayed.
#include <algorithm>
#include <cstring>

#include "cuda_backend_impl.h"

namespace tk {
namespace {

int next_pow2(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

}  // namespace

Status CudaBackend::ensure_bytes(DeviceBuffer& buf, size_t bytes) {
  if (buf.size() >= bytes) return Status::ok_status();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  buf = DeviceBuffer();
  TK_ASSIGN_OR_RETURN(buf, DeviceBuffer::allocate(std::max<size_t>(bytes, 256) * 5 / 4));
  clear_graphs();
  return Status::ok_status();
}

// Grows the metadata arrays (powers of two, so growth is rare) and lays them out at fixed offsets.
Status CudaBackend::ensure_metadata(const StepBatch& b) {
  StepMetadata& m = meta_;
  if (b.num_tokens <= m.max_tokens && b.num_seqs <= m.max_seqs && b.max_pages_per_seq <= m.page_cap)
    return Status::ok_status();
  m.max_tokens = std::max(m.max_tokens, next_pow2(b.num_tokens));
  m.max_seqs = std::max(m.max_seqs, next_pow2(b.num_seqs));
  m.page_cap = std::max(m.page_cap, next_pow2(std::max(b.max_pages_per_seq, 1)));
  m.count = 4 * static_cast<size_t>(m.max_tokens) + 2 * m.max_seqs + 1 + static_cast<size_t>(m.max_seqs) * m.page_cap;
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  if (meta_host_) CUDA_CHECK(cudaFreeHost(meta_host_));
  CUDA_CHECK(cudaMallocHost(&meta_host_, m.count * 4));
  meta_device_ = DeviceBuffer();
  TK_ASSIGN_OR_RETURN(meta_device_, DeviceBuffer::allocate(m.count * 4));
  m.h_base = meta_host_;
  m.d_base = static_cast<int32_t*>(meta_device_.data());
  int32_t* d = m.d_base;
  m.token_ids = d, d += m.max_tokens;
  m.positions = d, d += m.max_tokens;
  m.slot_mapping = d, d += m.max_tokens;
  m.logit_rows = d, d += m.max_tokens;
  m.query_start = d, d += m.max_seqs + 1;
  m.context_lens = d, d += m.max_seqs;
  m.page_table = d;  // last: a step copies only the rows it uses
  clear_graphs();
  return Status::ok_status();
}

Status CudaBackend::begin_step(const StepBatch& b) {
  TK_RETURN_IF_ERROR(ensure_metadata(b));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the pinned mirror may still feed the last copy
  StepMetadata& m = meta_;
  int32_t* h = m.h_base;
  auto put = [&](int32_t* dev, const std::vector<int32_t>& v) {
    std::copy(v.begin(), v.end(), h + (dev - m.d_base));
  };
  put(m.token_ids, b.token_ids);
  put(m.positions, b.positions);
  put(m.slot_mapping, b.slot_mapping);
  put(m.logit_rows, b.logit_rows);
  put(m.query_start, b.query_start);
  put(m.context_lens, b.context_lens);
  int32_t* table = h + (m.page_table - m.d_base);
  for (int s = 0; s < b.num_seqs; ++s) {
    int32_t* row = table + static_cast<size_t>(s) * m.page_cap;
    std::fill(row, row + m.page_cap, -1);
    std::copy_n(b.page_table.begin() + static_cast<size_t>(s) * b.max_pages_per_seq, b.max_pages_per_seq, row);
  }
  const size_t used = static_cast<size_t>(m.page_table - m.d_base) + static_cast<size_t>(b.num_seqs) * m.page_cap;
  CUDA_CHECK(cudaMemcpyAsync(m.d_base, h, used * 4, cudaMemcpyHostToDevice, stream_));
  m.num_tokens = b.num_tokens, m.num_seqs = b.num_seqs, m.num_logits = b.num_logits();
  m.max_query_len = b.max_query_len, m.max_context_len = b.max_context_len;
  m.use_decode_kernel = b.max_query_len <= kernels::kMaxDecodeQueryLen;
  if (m.use_decode_kernel) {
    // Planned for the context rounded up to 256 tokens: the plan (and so the captured graph)
    // then changes only every 256 decode steps; the kernel reads the real lengths on the device.
    const int planned_ctx = (b.max_context_len + 255) / 256 * 256;
    m.plan = kernels::plan_decode(b.num_seqs, planned_ctx, b.max_query_len, attn_shape_.num_kv_heads, page_size_,
                                  info_.sm_count);
    TK_RETURN_IF_ERROR(ensure_bytes(attn_workspace_, m.plan.workspace_bytes));
  }
  return Status::ok_status();
}

Status CudaBackend::sample(const Tensor& logits, const std::vector<SamplingSpec>& specs, std::vector<int32_t>& tokens,
                           std::vector<float>& logprobs) {
  const int rows = static_cast<int>(specs.size());
  const int64_t vocab = logits.dim(1);
  std::vector<kernels::SamplingRow> rs(rows);
  std::vector<int32_t> history;
  for (int r = 0; r < rows; ++r) {
    const SamplingSpec& s = specs[r];
    kernels::SamplingRow& k = rs[r];
    static_cast<SamplingKnobs&>(k) = s;
    k.want_logprob = s.want_logprob;
    const bool penalised = s.repetition_penalty != 1.f || s.presence_penalty != 0.f || s.frequency_penalty != 0.f;
    k.history_offset = static_cast<int64_t>(history.size());
    if (!penalised) continue;  // histories cross only when a penalty reads them
    k.num_prompt_tokens = s.num_prompt_tokens, k.num_output_tokens = s.num_output_tokens;
    history.insert(history.end(), s.prompt_tokens, s.prompt_tokens + s.num_prompt_tokens);
    history.insert(history.end(), s.output_tokens, s.output_tokens + s.num_output_tokens);
  }
  const size_t row_bytes = rows * sizeof(kernels::SamplingRow), hist_bytes = history.size() * 4;
  sample_host_.resize(row_bytes + hist_bytes);
  std::memcpy(sample_host_.data(), rs.data(), row_bytes);
  if (hist_bytes) std::memcpy(sample_host_.data() + row_bytes, history.data(), hist_bytes);
  TK_RETURN_IF_ERROR(ensure_bytes(sample_in_, sample_host_.size()));
  TK_RETURN_IF_ERROR(ensure_bytes(sample_out_, static_cast<size_t>(rows) * 8));
  TK_RETURN_IF_ERROR(ensure_bytes(sample_workspace_, kernels::sample_workspace_bytes(rows, vocab)));
  CUDA_CHECK(cudaMemcpyAsync(sample_in_.data(), sample_host_.data(), sample_host_.size(), cudaMemcpyHostToDevice, stream_));
  kernels::SampleParams p;
  p.logits = logits.data_as<float>();
  p.rows = static_cast<const kernels::SamplingRow*>(sample_in_.data());
  p.history = reinterpret_cast<const int32_t*>(static_cast<const char*>(sample_in_.data()) + row_bytes);
  p.num_rows = rows, p.vocab = vocab;
  p.out_tokens = static_cast<int32_t*>(sample_out_.data());
  p.out_logprobs = reinterpret_cast<float*>(p.out_tokens + rows);
  TK_RETURN_IF_ERROR(kernels::sample(p, sample_workspace_.data(), stream_));
  tokens.resize(rows);
  logprobs.resize(rows);
  CUDA_CHECK(cudaMemcpyAsync(tokens.data(), p.out_tokens, rows * 4, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaMemcpyAsync(logprobs.data(), p.out_logprobs, rows * 4, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return Status::ok_status();
}

Status CudaBackend::token_logprobs(const Tensor& logits, const std::vector<int32_t>& targets, std::vector<float>& logprobs) {
  const int rows = static_cast<int>(targets.size());
  TK_RETURN_IF_ERROR(ensure_bytes(sample_in_, static_cast<size_t>(rows) * 4));
  TK_RETURN_IF_ERROR(ensure_bytes(sample_out_, static_cast<size_t>(rows) * 4));
  CUDA_CHECK(cudaMemcpyAsync(sample_in_.data(), targets.data(), rows * 4, cudaMemcpyHostToDevice, stream_));
  kernels::TokenLogprobsParams p;
  p.logits = logits.data_as<float>(), p.targets = static_cast<const int32_t*>(sample_in_.data());
  p.out = static_cast<float*>(sample_out_.data()), p.num_rows = rows, p.vocab = logits.dim(1);
  TK_RETURN_IF_ERROR(kernels::token_logprobs(p, stream_));
  logprobs.resize(rows);
  CUDA_CHECK(cudaMemcpyAsync(logprobs.data(), p.out, rows * 4, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return Status::ok_status();
}

Status CudaBackend::run_step(const std::function<Status()>& body, bool capturable) {
  if (!capturable || env_flags().disable_cuda_graphs) return body();
  const GraphKey key{meta_.num_tokens, meta_.num_logits, meta_.num_seqs, meta_.plan.num_splits, meta_.plan.split_tokens};
  auto it = graphs_.find(key);
  if (it == graphs_.end()) {
    if (graphs_.size() >= 512) clear_graphs();
    cudaGraph_t graph = nullptr;
    CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
    Status s = body();
    CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
    if (!s.ok()) {
      cudaGraphDestroy(graph);
      return s;
    }
    cudaGraphExec_t exec = nullptr;
    CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph));
    it = graphs_.emplace(key, exec).first;
  }
  CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
  return Status::ok_status();
}

void CudaBackend::clear_graphs() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

}  // namespace tk
