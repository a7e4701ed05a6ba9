// Tensor-parallel collectives over NCCL (issue 14 item 3): one communicator per CUDA backend of
// one process, created together by ncclCommInitAll, each enqueueing on its backend's compute
// stream so that a captured decode step keeps its all-reduces (NCCL collectives are capturable).
// The sum's order is NCCL's (ring or tree over the ranks), fixed for a fixed configuration, so a
// result repeats run to run but is not the in-process communicator's rank-order sum bit for bit.
// NVLink multicast (NVLS) is forced off before the first communicator: on shared hosts it can
// take the GPUs out of service. Each rank checks only its own shapes: ranks that disagree hang or
// corrupt memory in NCCL instead of failing as the in-process communicator does (the model calls
// every rank alike).
// Without NCCL at build time (TOKAMAK_HAVE_NCCL unset) make_nccl_communicators says so.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_backend_impl.h"

#ifdef TOKAMAK_HAVE_NCCL
#include <nccl.h>
#endif

namespace tk {

#ifdef TOKAMAK_HAVE_NCCL
namespace {

Status nccl_status(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return Status::ok_status();
  return internal_error(std::string(what) + ": " + ncclGetErrorString(r));
}

Result<ncclDataType_t> nccl_type(DType t) {
  switch (t) {
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    case DType::kF32: return ncclFloat32;
    default: return unsupported(std::string("NCCL collectives: dtype ") + dtype_name(t));
  }
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int rank, int size, int device, cudaStream_t stream)
      : comm_(comm), rank_(rank), size_(size), device_(device), stream_(stream) {}
  ~NcclCommunicator() override {
    cudaSetDevice(device_);  // the destroying thread may be bound to another rank's device
    for (void* p : scratch_) cudaFree(p);
    if (!aborted_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status all_reduce_sum(Tensor& x) override {
    TK_RETURN_IF_ERROR(check_usable(x, "all_reduce_sum"));
    TK_ASSIGN_OR_RETURN(ncclDataType_t type, nccl_type(x.dtype()));
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_) return internal_error("all_reduce_sum: the communicator was aborted");
    return nccl_status(ncclAllReduce(x.data(), x.data(), static_cast<size_t>(x.numel()), type, ncclSum, comm_, stream_),
                       "ncclAllReduce");
  }

  // NOTE: the gather's scratch grows outside captures only (allocation is not capturable: a
  // capture that needs more than an eager call has sized fails with an error), and a grown-out
  // buffer is kept until the communicator goes, because graphs captured earlier still write it.
  Status all_gather(const Tensor& x, Tensor& out) override {
    TK_RETURN_IF_ERROR(check_usable(x, "all_gather"));
    if (!out.is_contiguous() || out.device() != Device::kCuda)
      return invalid_argument("all_gather: out must be a contiguous CUDA tensor");
    if (x.dtype() != DType::kF32 || out.dtype() != DType::kF32 || x.rank() != 2 || out.rank() != 2 ||
        out.dim(0) != x.dim(0) || out.dim(1) <= 0 || out.dim(1) > size_ * x.dim(1))
      return invalid_argument("all_gather: x [rows, cols] and out [rows, 0 < out_cols <= size * cols], fp32");
    const int64_t rows = x.dim(0), cols = x.dim(1), out_cols = out.dim(1);
    const size_t bytes = static_cast<size_t>(size_ * rows * cols) * sizeof(float);
    float* gathered = static_cast<float*>(out.data());
    const bool direct = rows == 1 && out_cols == size_ * cols;  // rank-major [size, 1, cols] is out's row
    if (!direct) {
      TK_ASSIGN_OR_RETURN(gathered, scratch(bytes));
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (aborted_) return internal_error("all_gather: the communicator was aborted");
      TK_RETURN_IF_ERROR(nccl_status(
          ncclAllGather(x.data(), gathered, static_cast<size_t>(rows * cols), ncclFloat32, comm_, stream_),
          "ncclAllGather"));
    }
    if (direct) return Status::ok_status();
    for (int r = 0; r < size_; ++r) {  // rank r's [rows, cols] into out's columns [r * cols, ...), clipped
      const int64_t width = std::min(cols, out_cols - r * cols);
      if (width <= 0) break;
      if (cudaMemcpy2DAsync(static_cast<float*>(out.data()) + r * cols, out_cols * sizeof(float),
                            gathered + r * rows * cols, cols * sizeof(float), width * sizeof(float), rows,
                            cudaMemcpyDeviceToDevice, stream_) != cudaSuccess)
        return internal_error("all_gather: strided copy");
    }
    return Status::ok_status();
  }

  Status reserve_gather(int64_t rows, int64_t cols) override {
    TK_RETURN_IF_ERROR(bind("reserve_gather"));
    return scratch(static_cast<size_t>(size_ * std::max<int64_t>(rows * cols, 1)) * sizeof(float)).status();
  }

  Status warm_up() override {
    TK_RETURN_IF_ERROR(bind("warm_up"));
    TK_ASSIGN_OR_RETURN(float* s, scratch(static_cast<size_t>(size_ + 1) * sizeof(float)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (aborted_) return internal_error("warm_up: the communicator was aborted");
      TK_RETURN_IF_ERROR(nccl_status(ncclAllReduce(s, s, 1, ncclFloat32, ncclSum, comm_, stream_), "ncclAllReduce"));
      TK_RETURN_IF_ERROR(nccl_status(ncclAllGather(s, s + 1, 1, ncclFloat32, comm_, stream_), "ncclAllGather"));
    }
    return cudaStreamSynchronize(stream_) == cudaSuccess ? Status::ok_status()
                                                         : internal_error("warm_up: the collectives failed");
  }

  // Called from whichever rank's thread failed, while the others may be mid-step: the enqueueing
  // calls hold mu_, so none runs on a communicator ncclCommAbort has freed.
  void abort() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (aborted_.exchange(true)) return;
    ncclCommAbort(comm_);  // also ends this communicator's collectives in flight on the stream
  }

 private:
  Status check_usable(const Tensor& x, const char* op) {
    if (aborted_) return internal_error(std::string(op) + ": the communicator was aborted");
    if (x.device() != Device::kCuda || !x.is_contiguous())
      return invalid_argument(std::string(op) + ": a contiguous CUDA tensor");
    return bind(op);
  }

  // This rank's device current: the calling thread may be bound to another rank's.
  Status bind(const char* op) {
    return cudaSetDevice(device_) == cudaSuccess ? Status::ok_status() : internal_error(std::string(op) + ": cudaSetDevice");
  }

  // At least `bytes` of device scratch, grown only outside a capture (see all_gather).
  Result<float*> scratch(size_t bytes) {
    if (scratch_bytes_ >= bytes) return static_cast<float*>(scratch_.back());
    cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
    if (cudaStreamIsCapturing(stream_, &capturing) != cudaSuccess || capturing != cudaStreamCaptureStatusNone)
      return unsupported("all_gather: " + std::to_string(bytes) + " bytes of scratch needed inside a capture; an eager "
                         "step of that size must come first");
    const size_t grown = std::max(bytes, 2 * scratch_bytes_);
    void* p = nullptr;
    if (cudaMalloc(&p, grown) != cudaSuccess) return out_of_memory("all_gather: scratch");
    scratch_.push_back(p), scratch_bytes_ = grown;
    return static_cast<float*>(p);
  }

  ncclComm_t comm_;
  int rank_, size_, device_;
  cudaStream_t stream_;
  std::vector<void*> scratch_;  // the last is in use; the earlier ones may be in captured graphs
  size_t scratch_bytes_ = 0;
  std::mutex mu_;
  std::atomic<bool> aborted_{false};
};

}  // namespace

bool nccl_available() { return true; }

Result<std::vector<std::unique_ptr<Communicator>>> make_nccl_communicators(const std::vector<Backend*>& backends) {
  const int n = static_cast<int>(backends.size());
  if (n < 1) return invalid_argument("make_nccl_communicators: no backends");
  std::vector<int> devices(n);
  std::vector<cudaStream_t> streams(n);
  for (int r = 0; r < n; ++r) {
    auto* cuda = dynamic_cast<CudaBackend*>(backends[r]);
    if (cuda == nullptr) return invalid_argument("make_nccl_communicators: rank " + std::to_string(r) + " is not CUDA");
    devices[r] = cuda->device_index(), streams[r] = cuda->stream();
    for (int q = 0; q < r; ++q)
      if (devices[q] == devices[r]) return invalid_argument("make_nccl_communicators: two ranks on one device");
  }
  setenv("NCCL_NVLS_ENABLE", "0", 1);  // multicast off, whatever the environment says
  std::vector<ncclComm_t> comms(n);
  TK_RETURN_IF_ERROR(nccl_status(ncclCommInitAll(comms.data(), n, devices.data()), "ncclCommInitAll"));
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < n; ++r) out.push_back(std::make_unique<NcclCommunicator>(comms[r], r, n, devices[r], streams[r]));
  return out;
}

#else  // no NCCL in this build

bool nccl_available() { return false; }

Result<std::vector<std::unique_ptr<Communicator>>> make_nccl_communicators(const std::vector<Backend*>&) {
  return unsupported("tensor parallelism on GPUs needs NCCL, which this build did not find (nccl.h, libnccl)");
}

#endif

}  // namespace tk
