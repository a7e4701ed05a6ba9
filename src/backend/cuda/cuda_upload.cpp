// Weights onto the device at the speed of the host's memory and the PCIe link: the source (a
// memory-mapped checkpoint, or any host tensor) goes through pinned staging slices of 64 MB, each
// filled — copied, or converted to the compute dtype — by several host threads at once (their page
// faults on the mapping overlap too), then sent with cudaMemcpyAsync while the next slice fills.
// Stacked parts (q/k/v, gate/up) land straight in their rows of one device tensor.
#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "cuda_backend_impl.h"

namespace tk {
namespace {

constexpr size_t kSliceBytes = 64ull << 20;

int fill_threads() { return static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 8u)); }

// dst[0, n) in `to` (the compute dtype, 2 bytes) from src[0, n) in `from`, on the calling thread.
void convert_range(const void* src, DType from, void* dst, DType to, size_t n) {
  if (from == to) {
    std::memcpy(dst, src, n * dtype_size(to));
    return;
  }
  constexpr size_t kChunk = 1 << 14;
  float f32[kChunk];
  auto* out = static_cast<uint16_t*>(dst);
  const char* in = static_cast<const char*>(src);
  for (size_t off = 0; off < n; off += kChunk) {
    const size_t len = std::min(kChunk, n - off);
    convert_to_f32(in + off * dtype_size(from), from, f32, len);
    for (size_t i = 0; i < len; ++i) out[off + i] = to == DType::kBF16 ? f32_to_bf16(f32[i]) : f32_to_f16(f32[i]);
  }
}

// convert_range split over `threads` host threads.
void convert_parallel(const void* src, DType from, void* dst, DType to, size_t n, int threads) {
  const size_t per = (n + threads - 1) / threads;
  std::vector<std::thread> pool;
  for (int t = 1; t < threads && per * t < n; ++t) {
    const size_t b = per * t, len = std::min(per, n - b);
    pool.emplace_back(convert_range, static_cast<const char*>(src) + b * dtype_size(from), from,
                      static_cast<char*>(dst) + b * dtype_size(to), to, len);
  }
  convert_range(src, from, dst, to, std::min(per, n));
  for (std::thread& t : pool) t.join();
}

}  // namespace

Status CudaBackend::ensure_upload_staging() {
  for (UploadStage& s : upload_stages_) {
    if (!s.host) CUDA_CHECK(cudaMallocHost(&s.host, kSliceBytes));
    if (!s.sent) CUDA_CHECK(cudaEventCreateWithFlags(&s.sent, cudaEventDisableTiming));
  }
  return Status::ok_status();
}

void CudaBackend::free_upload_staging() {
  for (UploadStage& s : upload_stages_) {
    if (s.sent) cudaEventSynchronize(s.sent), cudaEventDestroy(s.sent);
    if (s.host) cudaFreeHost(s.host);
    s = UploadStage{};
  }
}

// n elements of `from` at src into the compute dtype at dst (device), through the stages in turn.
// Returns once the last copy is queued; the stages' events say when each may be refilled.
Status CudaBackend::upload_elements(const void* src, DType from, void* dst, size_t n) {
  TK_RETURN_IF_ERROR(ensure_upload_staging());
  const size_t to_size = dtype_size(dtype_), per_slice = kSliceBytes / to_size;
  // Threads only where a slice is large enough to pay for starting them.
  const int threads = n * to_size >= (4u << 20) ? fill_threads() : 1;
  for (size_t off = 0; off < n; off += per_slice) {
    UploadStage& s = upload_stages_[next_stage_];
    next_stage_ = (next_stage_ + 1) % kUploadStages;
    CUDA_CHECK(cudaEventSynchronize(s.sent));  // its previous slice has left
    const size_t len = std::min(per_slice, n - off);
    convert_parallel(static_cast<const char*>(src) + off * dtype_size(from), from, s.host, dtype_, len, threads);
    CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + off * to_size, s.host, len * to_size, cudaMemcpyHostToDevice,
                               stream_));
    CUDA_CHECK(cudaEventRecord(s.sent, stream_));
  }
  return Status::ok_status();
}

Result<Tensor> CudaBackend::upload(const Tensor& host) { return upload_stacked({host}); }

// Finished before returning (the caller may unmap or free the source), on the backend's stream:
// a kernel queued next reads the new bytes.
Result<Tensor> CudaBackend::upload_stacked(const std::vector<Tensor>& parts) {
  if (parts.empty()) return invalid_argument("upload_stacked: no parts");
  Shape shape = parts[0].shape();
  int64_t rows = 0;
  for (const Tensor& p : parts) rows += p.dim(0);
  shape[0] = rows;
  TK_ASSIGN_OR_RETURN(Tensor t, cuda_alloc_tensor(dtype_, shape));
  char* dst = static_cast<char*>(t.data());
  for (const Tensor& p : parts) {
    const size_t n = static_cast<size_t>(p.numel());
    TK_RETURN_IF_ERROR(upload_elements(p.data(), p.dtype(), dst, n));
    dst += n * dtype_size(dtype_);
  }
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return t;
}

}  // namespace tk
