// The CUDA backend's sampling for overlap scheduling: a step's sampling is enqueued behind its
// forward and its ids come back through pinned memory and an event, so the host can prepare the
// next step meanwhile; the ids also stay on the device, where the next begin_step scatters them
// into its token inputs (scatter_last_sample). Two slots: one step's ids can still be on their way
// back while the next step samples into the other.
#include <algorithm>

#include "cuda_backend_impl.h"

namespace tk {
namespace {

// Grows a pinned buffer; the caller has made sure no copy still reads or writes it.
void ensure_pinned(void*& buf, size_t& have, size_t bytes) {
  if (have >= bytes) return;
  if (buf) CUDA_CHECK(cudaFreeHost(buf));
  have = std::max<size_t>(bytes, 4096) * 2;
  CUDA_CHECK(cudaMallocHost(&buf, have));
}

}  // namespace

void CudaBackend::ensure_events() {
  if (step_started_[0]) return;
  for (cudaEvent_t& e : step_started_) CUDA_CHECK(cudaEventCreate(&e));  // timed
  for (SampleSlot& s : slots_) {
    CUDA_CHECK(cudaEventCreateWithFlags(&s.rows_sent, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreate(&s.ids_ready));  // timed: the step's end
  }
}

void CudaBackend::free_sampling_host() {
  if (stream_) cudaStreamSynchronize(stream_);
  for (SampleSlot& s : slots_) {
    if (s.rows_host) cudaFreeHost(s.rows_host);
    if (s.ids_host) cudaFreeHost(s.ids_host);
    if (s.rows_sent) cudaEventDestroy(s.rows_sent);
    if (s.ids_ready) cudaEventDestroy(s.ids_ready);
    s = SampleSlot();
  }
  for (cudaEvent_t& e : step_started_)
    if (e) cudaEventDestroy(e), e = nullptr;
}

// token_ids[to_token[r]] = sampled[r] and history_tokens[to_history[r]] = sampled[r] on the
// device: the offsets were uploaded with the metadata, so this runs after that copy and before
// the forward (or its graph) reads the tokens.
Status CudaBackend::scatter_last_sample(const StepBatch& b, CudaStepPlan& m) {
  const int n = static_cast<int>(b.last_sample_to_token.size());
  if (n == 0) return Status::ok_status();
  if (n != last_sampled_rows_)
    return internal_error("begin_step: " + std::to_string(n) + " rows of the last sampling asked for, it had " +
                          std::to_string(last_sampled_rows_));
  int32_t* base = static_cast<int32_t*>(m.device.data());
  const auto* ids = static_cast<const int32_t*>(sampled_.data());
  const auto size = static_cast<int64_t>(m.num_ints);
  TK_RETURN_IF_ERROR(kernels::scatter_int32(base, m.last_to_token, ids, n, size, stream_));
  return kernels::scatter_int32(base, m.last_to_history, ids, n, size, stream_);
}

Status CudaBackend::sample_async(const Tensor& logits, const std::vector<SamplingSpec>& specs, const Tensor& history,
                                 int slot) {
  TK_CHECK(slot == 0 || slot == 1);
  ensure_events();
  SampleSlot& s = slots_[slot];
  if (s.pending) return internal_error("sample_async: slot " + std::to_string(slot) + " still holds ids not waited for");
  const int rows = static_cast<int>(specs.size());
  const int64_t vocab = logits.dim(1);
  const size_t row_bytes = rows * sizeof(kernels::SamplingRow);
  CUDA_CHECK(cudaEventSynchronize(s.rows_sent));  // the slot's last upload has left its pinned rows
  CUDA_CHECK(cudaEventSynchronize(s.ids_ready));  // and its last ids were copied (and taken)
  ensure_pinned(s.rows_host, s.rows_bytes, row_bytes);
  ensure_pinned(s.ids_host, s.ids_bytes, static_cast<size_t>(rows) * 8);
  auto* rs = static_cast<kernels::SamplingRow*>(s.rows_host);
  for (int r = 0; r < rows; ++r) {
    const SamplingSpec& spec = specs[r];
    kernels::SamplingRow k;
    static_cast<SamplingDraw&>(k) = spec;
    k.want_logprob = spec.want_logprob;
    if (spec.history_row >= 0) {  // histories are read only when a penalty needs them
      TK_CHECK(history.defined());
      k.history_offset = static_cast<int64_t>(spec.history_row) * history.dim(1);
      k.num_prompt_tokens = spec.num_prompt_tokens, k.num_output_tokens = spec.num_output_tokens;
    }
    rs[r] = k;
  }
  TK_RETURN_IF_ERROR(ensure_bytes(sample_in_, row_bytes));
  TK_RETURN_IF_ERROR(ensure_bytes(sampled_, static_cast<size_t>(rows) * 8));
  TK_RETURN_IF_ERROR(ensure_bytes(sample_workspace_, kernels::sample_workspace_bytes(rows, vocab)));
  CUDA_CHECK(cudaMemcpyAsync(sample_in_.data(), s.rows_host, row_bytes, cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaEventRecord(s.rows_sent, stream_));
  kernels::SampleParams p;
  p.logits = logits.data_as<float>();
  p.rows = static_cast<const kernels::SamplingRow*>(sample_in_.data());
  p.history = history.defined() ? history.data_as<int32_t>() : nullptr;
  p.num_rows = rows, p.vocab = vocab;
  p.out_tokens = static_cast<int32_t*>(sampled_.data());
  p.out_logprobs = reinterpret_cast<float*>(p.out_tokens + rows);
  TK_RETURN_IF_ERROR(kernels::sample(p, sample_workspace_.data(), stream_));
  last_sampled_rows_ = rows;
  CUDA_CHECK(cudaMemcpyAsync(s.ids_host, sampled_.data(), static_cast<size_t>(rows) * 8, cudaMemcpyDeviceToHost, stream_));
  CUDA_CHECK(cudaEventRecord(s.ids_ready, stream_));
  s.rows = rows;
  s.started = last_start_ >= 0 ? step_started_[last_start_] : nullptr;
  s.pending = true;
  return Status::ok_status();
}

Status CudaBackend::wait_sampled(int slot, SampledIds& out) {
  TK_CHECK(slot == 0 || slot == 1);
  SampleSlot& s = slots_[slot];
  if (!s.pending) return internal_error("wait_sampled: nothing was sampled into slot " + std::to_string(slot));
  CUDA_CHECK(cudaEventSynchronize(s.ids_ready));
  s.pending = false;
  const auto* ids = static_cast<const int32_t*>(s.ids_host);
  const auto* lps = reinterpret_cast<const float*>(ids + s.rows);
  out.tokens.assign(ids, ids + s.rows);
  out.logprobs.assign(lps, lps + s.rows);
  out.device_seconds = 0;
  float ms = 0;
  // The start event was recorded before this slot's ids; begin_step alternates two, and a slot is
  // waited for before the second begin_step after it, so the event is still this step's.
  if (s.started) {
    if (cudaEventElapsedTime(&ms, s.started, s.ids_ready) == cudaSuccess) {
      out.device_seconds = std::max(0.f, ms) * 1e-3;
    } else {
      (void)cudaGetLastError();  // a timing miss is no failure of the step
    }
  }
  return Status::ok_status();
}

Status CudaBackend::sample(const Tensor& logits, const std::vector<SamplingSpec>& specs, const Tensor& history,
                           std::vector<int32_t>& tokens, std::vector<float>& logprobs) {
  TK_RETURN_IF_ERROR(sample_async(logits, specs, history, 0));
  SampledIds ids;
  TK_RETURN_IF_ERROR(wait_sampled(0, ids));
  tokens = std::move(ids.tokens), logprobs = std::move(ids.logprobs);
  return Status::ok_status();
}

}  // namespace tk
