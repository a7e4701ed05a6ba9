// The CUDA backend's step machinery: the StepBatch uploaded once into a plan's fixed-address
// buffers, the attention kernel and split plan chosen on the host, sampling with only ids and
// logprobs coming back, and steps captured into CUDA graphs.
#include <cuda_profiler_api.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "cuda_backend_impl.h"
#include "ref/ref.h"

namespace tk {
namespace {

int next_pow2(int x) {
  int p = 1;
  while (p < x) p <<= 1;
  return p;
}

// Page-table rows are a power of two long, at least this: the stride is part of a graph's key, and
// short contexts then share the graphs captured at start-up.
constexpr int kMinPageStride = 32;

class CudaGraph final : public StepGraph {
 public:
  explicit CudaGraph(cudaGraphExec_t exec) : exec(exec) {}
  ~CudaGraph() override { cudaGraphExecDestroy(exec); }
  cudaGraphExec_t exec;
};

// The leading sequences with few new tokens (decodes; the scheduler puts them first) take the
// split-KV decode kernel, the others the prefill kernel: a mixed step runs both, so decodes never
// pay for the prefill kernel's 64-row query tiles.
void split_decode_and_prefill(const StepBatch& b, CudaStepPlan& m) {
  m.num_decode_seqs = m.decode_tokens = m.decode_max_query = m.decode_max_context = 0;
  m.prefill_max_query = m.prefill_max_context = 0;
  const int n = b.num_seqs();
  while (m.num_decode_seqs < n) {
    const int s = m.num_decode_seqs, q = b.query_start[s + 1] - b.query_start[s];
    if (q > kernels::kMaxDecodeQueryLen) break;
    m.decode_max_query = std::max(m.decode_max_query, q);
    m.decode_max_context = std::max(m.decode_max_context, b.context_lens[s]);
    m.decode_tokens += q;
    ++m.num_decode_seqs;
  }
  for (int s = m.num_decode_seqs; s < n; ++s) {
    m.prefill_max_query = std::max(m.prefill_max_query, b.query_start[s + 1] - b.query_start[s]);
    m.prefill_max_context = std::max(m.prefill_max_context, b.context_lens[s]);
  }
}

// TOKAMAK_PROFILE=decode|prefill:MIN_TOKENS:COUNT, for `ncu --profile-from-start off`: the
// profiler is on from the begin_step of each of the first COUNT steps of that kind with at least
// MIN_TOKENS new tokens to the next begin_step, so one step of a real run can be profiled among
// thousands. decode: every sequence has one new token; prefill: any sequence has more.
struct ProfileWindow {
  bool prefill = false;
  int min_tokens = 0, count = 0;
};

std::optional<ProfileWindow> profile_window() {
  static const std::optional<ProfileWindow> window = []() -> std::optional<ProfileWindow> {
    const auto& text = env_flags().profile;
    if (!text) return std::nullopt;
    char kind[16] = {};
    ProfileWindow w;
    if (std::sscanf(text->c_str(), "%15[a-z]:%d:%d", kind, &w.min_tokens, &w.count) != 3 || w.count <= 0 ||
        (std::strcmp(kind, "decode") != 0 && std::strcmp(kind, "prefill") != 0)) {
      TK_LOG_WARN("TOKAMAK_PROFILE=" + *text + " ignored: want decode|prefill:MIN_TOKENS:COUNT");
      return std::nullopt;
    }
    w.prefill = std::strcmp(kind, "prefill") == 0;
    return w;
  }();
  return window;
}

}  // namespace

void CudaBackend::profile_step(const StepBatch& b) {
  const std::optional<ProfileWindow> w = profile_window();
  if (!w) return;
  if (profiling_) cudaProfilerStop(), profiling_ = false;
  const bool prefill = b.num_tokens() > b.num_seqs();
  if (profiled_steps_ < w->count && prefill == w->prefill && b.num_tokens() >= w->min_tokens) {
    cudaProfilerStart(), profiling_ = true, ++profiled_steps_;
    TK_LOG_INFO("profiling step: " + std::to_string(b.num_seqs()) + " sequences, " + std::to_string(b.num_tokens()) +
             " tokens");
  }
}

CudaStepPlan::~CudaStepPlan() {
  if (uploaded) cudaEventDestroy(uploaded);
  if (host) cudaFreeHost(host);
}

Status CudaBackend::ensure_bytes(DeviceBuffer& buf, size_t bytes) {
  if (buf.size() >= bytes) return Status::ok_status();
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  buf = DeviceBuffer();
  TK_ASSIGN_OR_RETURN(buf, DeviceBuffer::allocate(std::max<size_t>(bytes, 256) * 5 / 4));
  return Status::ok_status();
}

// Lays the arrays out at fixed offsets for the capacity; the page table goes last so that a step
// copies only the rows it uses.
std::unique_ptr<StepPlan> CudaBackend::new_step_plan(const StepCapacity& cap) {
  auto p = std::make_unique<CudaStepPlan>();
  p->capacity = cap;
  const size_t tokens = std::max(cap.max_tokens, 1), seqs = std::max(cap.max_seqs, 1);
  const size_t history = std::max(cap.max_history, 1);
  const size_t pages = next_pow2(std::max(cap.max_pages_per_seq, kMinPageStride));
  const size_t count = 4 * tokens + 2 * seqs + 1 + 2 * history + 2 * seqs + seqs * pages;
  auto dev = DeviceBuffer::allocate(count * 4);
  TK_CHECK_MSG(dev.ok(), "step metadata: " + dev.status().message());
  p->device = std::move(*dev);
  CUDA_CHECK(cudaMallocHost(&p->host, count * 4));
  CUDA_CHECK(cudaEventCreateWithFlags(&p->uploaded, cudaEventDisableTiming));
  int32_t* d = static_cast<int32_t*>(p->device.data());
  p->token_ids = d, d += tokens;
  p->positions = d, d += tokens;
  p->slot_mapping = d, d += tokens;
  p->logit_rows = d, d += tokens;
  p->query_start = d, d += seqs + 1;
  p->context_lens = d, d += seqs;
  p->history_index = d, d += history;
  p->history_tokens = d, d += history;
  p->last_to_token = d, d += seqs;
  p->last_to_history = d, d += seqs;
  p->page_table = d;
  p->num_ints = count;
  // Reserved now: grown later, it would move, and every graph captured before would be stale
  // (each batch size then recaptured on its first decode while serving, in its time to first token).
  TK_CHECK_MSG(ensure_bytes(p->attn_workspace, decode_workspace_bound(cap)).ok(), "decode workspace");
  return p;
}

// The largest split-KV workspace that begin_step plans for a one-token decode step within the
// capacity: any batch up to max_seqs (one split, no workspace, once the batch fills the SMs), any
// context up to max_pages_per_seq pages, sampled at powers of two (the splits grow with the
// context). A plan that still needs more grows it and bumps the workspace generation.
size_t CudaBackend::decode_workspace_bound(const StepCapacity& cap) const {
  const int kv = std::max(attn_shape_.num_kv_heads, 1);
  const int max_ctx = (std::max(cap.max_pages_per_seq, 1) * page_size_ + 255) / 256 * 256;
  size_t bound = 0;
  for (int seqs = 1; seqs <= cap.max_seqs && seqs * kv < info_.sm_count; ++seqs)
    for (int ctx = 256;; ctx = std::min(2 * ctx, max_ctx)) {
      bound = std::max(bound, kernels::plan_decode(seqs, ctx, 1, kv, page_size_, info_.sm_count).workspace_bytes);
      if (ctx >= max_ctx) break;
    }
  return bound;
}

Status CudaBackend::begin_step(const StepBatch& b, StepPlan& plan) {
  CudaStepPlan& m = static_cast<CudaStepPlan&>(plan);
  const StepCapacity& cap = m.capacity;
  if (b.num_tokens() > cap.max_tokens || b.num_seqs() > cap.max_seqs || b.max_pages_per_seq > cap.max_pages_per_seq ||
      static_cast<int>(b.history_index.size()) > cap.max_history || b.num_logits() > cap.max_tokens ||
      static_cast<int>(b.last_sample_to_token.size()) > std::max(cap.max_seqs, 1))
    return internal_error("begin_step: the batch exceeds the plan's capacity");
  ensure_events();
  profile_step(b);
  CUDA_CHECK(cudaEventSynchronize(m.uploaded));  // the pinned mirror may still feed the last copy
  int32_t* base = static_cast<int32_t*>(m.device.data());
  auto put = [&](int32_t* dev, const std::vector<int32_t>& v) { std::copy(v.begin(), v.end(), m.host + (dev - base)); };
  put(m.token_ids, b.token_ids);
  put(m.positions, b.positions);
  put(m.slot_mapping, b.slot_mapping);
  put(m.logit_rows, b.logit_rows);
  put(m.query_start, b.query_start);
  put(m.context_lens, b.context_lens);
  put(m.history_index, b.history_index);
  put(m.history_tokens, b.history_tokens);
  // Offsets into the metadata for scatter_last_sample (-1 stays -1: the scatter skips it).
  auto put_offsets = [&](int32_t* dev, const std::vector<int32_t>& rows, const int32_t* region) {
    int32_t* h = m.host + (dev - base);
    for (size_t r = 0; r < rows.size(); ++r) h[r] = rows[r] < 0 ? -1 : static_cast<int32_t>(region - base) + rows[r];
  };
  put_offsets(m.last_to_token, b.last_sample_to_token, m.token_ids);
  put_offsets(m.last_to_history, b.last_sample_to_history, m.history_tokens);
  m.page_stride = next_pow2(std::max(b.max_pages_per_seq, kMinPageStride));
  int32_t* table = m.host + (m.page_table - base);
  for (int s = 0; s < b.num_seqs(); ++s) {
    int32_t* row = table + static_cast<size_t>(s) * m.page_stride;
    std::fill(row, row + m.page_stride, -1);
    std::copy_n(b.page_table.begin() + static_cast<size_t>(s) * b.max_pages_per_seq, b.max_pages_per_seq, row);
  }
  const size_t used = static_cast<size_t>(m.page_table - base) + static_cast<size_t>(b.num_seqs()) * m.page_stride;
  // The step's start on the device's clock (wait_sampled reports the span to its ids' copy).
  last_start_ = next_start_, next_start_ ^= 1;
  CUDA_CHECK(cudaEventRecord(step_started_[last_start_], stream_));
  CUDA_CHECK(cudaMemcpyAsync(base, m.host, used * 4, cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaEventRecord(m.uploaded, stream_));
  TK_RETURN_IF_ERROR(scatter_last_sample(b, m));
  m.num_tokens = b.num_tokens(), m.num_seqs = b.num_seqs(), m.num_logits = b.num_logits();
  m.max_query_len = b.max_query_len(), m.max_context_len = b.max_context_len();
  m.num_history = static_cast<int>(b.history_index.size());
  split_decode_and_prefill(b, m);
  m.decode = kernels::DecodePlan();
  if (m.num_decode_seqs > 0) {
    // Planned for the context rounded up to 256 tokens: the plan (and so the captured graph)
    // then changes only every 256 decode steps; the kernel reads the real lengths on the device.
    const int planned_ctx = (m.decode_max_context + 255) / 256 * 256;
    m.decode = kernels::plan_decode(m.num_decode_seqs, planned_ctx, m.decode_max_query, attn_shape_.num_kv_heads,
                                    page_size_, info_.sm_count);
    if (m.attn_workspace.size() < m.decode.workspace_bytes) {
      TK_RETURN_IF_ERROR(ensure_bytes(m.attn_workspace, m.decode.workspace_bytes));
      ++m.workspace_generation;  // graphs captured with the old workspace must not replay
    }
  }
  m.graph_key = {m.num_tokens, m.num_logits, m.num_seqs,           m.page_stride,
                 m.decode.num_splits, m.decode.split_tokens, m.workspace_generation};
  return Status::ok_status();
}

void CudaBackend::write_history(const StepPlan& plan, Tensor& history) {
  const CudaStepPlan& m = static_cast<const CudaStepPlan&>(plan);
  if (m.num_history == 0) return;
  record(kernels::scatter_int32(history.data_as<int32_t>(), m.history_index, m.history_tokens, m.num_history,
                                history.numel(), stream_));
}

Status CudaBackend::add_logit_bias(Tensor& logits, const std::vector<int64_t>& index, const std::vector<float>& bias) {
  const int n = static_cast<int>(index.size());
  if (n == 0) return Status::ok_status();
  TK_RETURN_IF_ERROR(ensure_bytes(bias_in_, static_cast<size_t>(n) * 12));
  auto* idx = static_cast<int64_t*>(bias_in_.data());
  auto* val = reinterpret_cast<float*>(idx + n);
  CUDA_CHECK(cudaMemcpyAsync(idx, index.data(), n * 8, cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaMemcpyAsync(val, bias.data(), n * 4, cudaMemcpyHostToDevice, stream_));
  TK_RETURN_IF_ERROR(kernels::scatter_add_f32(logits.data_as<float>(), idx, val, n, logits.numel(), stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host vectors may go away
  return Status::ok_status();
}

Status CudaBackend::apply_token_bitmask(Tensor& logits, const std::vector<int32_t>& rows,
                                        const std::vector<uint32_t>& bitmask) {
  const int n = static_cast<int>(rows.size());
  if (n == 0) return Status::ok_status();
  const int64_t vocab = logits.dim(1);
  const int words = static_cast<int>((vocab + 31) / 32);
  TK_CHECK(static_cast<int64_t>(bitmask.size()) == static_cast<int64_t>(n) * words);
  TK_RETURN_IF_ERROR(ensure_bytes(mask_in_, static_cast<size_t>(n) * 4 + bitmask.size() * 4));
  auto* d_rows = static_cast<int32_t*>(mask_in_.data());
  auto* d_mask = reinterpret_cast<uint32_t*>(d_rows + n);
  CUDA_CHECK(cudaMemcpyAsync(d_rows, rows.data(), n * 4, cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaMemcpyAsync(d_mask, bitmask.data(), bitmask.size() * 4, cudaMemcpyHostToDevice, stream_));
  TK_RETURN_IF_ERROR(kernels::apply_token_bitmask(logits.data_as<float>(), vocab, d_rows, n, d_mask, words, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host vectors may go away
  return Status::ok_status();
}

// NOTE: the rows come to the host and are ranked there (ref::top_logprobs): 0.5 MB per row of a
// 128k vocabulary, only for requests that ask for top log-probs.
Status CudaBackend::top_logprobs(const Tensor& logits, const std::vector<int>& rows, int k,
                                 std::vector<std::vector<TokenLogprob>>& out) {
  const int64_t vocab = logits.dim(1);
  std::vector<float> host(static_cast<size_t>(vocab));
  out.assign(rows.size(), {});
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < rows.size(); ++i) {
    CUDA_CHECK(cudaMemcpy(host.data(), logits.data_as<float>() + rows[i] * vocab, vocab * 4, cudaMemcpyDeviceToHost));
    out[i] = ref::top_logprobs(host.data(), vocab, k);
  }
  return Status::ok_status();
}

Status CudaBackend::reserve_sampling(int rows, int64_t vocab) {
  TK_RETURN_IF_ERROR(ensure_bytes(sample_in_, std::max(rows * sizeof(kernels::SamplingRow), static_cast<size_t>(rows) * 4)));
  TK_RETURN_IF_ERROR(ensure_bytes(sample_out_, static_cast<size_t>(rows) * 8));
  TK_RETURN_IF_ERROR(ensure_bytes(sampled_, static_cast<size_t>(rows) * 8));
  return ensure_bytes(sample_workspace_, kernels::sample_workspace_bytes(rows, vocab));
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

Result<std::unique_ptr<StepGraph>> CudaBackend::capture(const std::function<Status()>& body) {
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
  // Uploaded now: otherwise the first launch uploads the graph on the caller's thread, and a
  // request's first decode step (launched before its prefill's token is read, with overlap
  // scheduling) pays for it in its time to first token.
  CUDA_CHECK(cudaGraphUpload(exec, stream_));
  return std::unique_ptr<StepGraph>(new CudaGraph(exec));
}

Status CudaBackend::synchronize() {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return Status::ok_status();
}

Status CudaBackend::replay(StepGraph& graph) {
  CUDA_CHECK(cudaGraphLaunch(static_cast<CudaGraph&>(graph).exec, stream_));
  return Status::ok_status();
}

}  // namespace tk
