// Tensor-parallel collectives over NCCL (issue 14 item 3): one communicator per CUDA backend of
// one process, created together by ncclCommInitAll, each enqueueing on its backend's compute
// stream so that a captured decode step keeps its all-reduces (NCCL collectives are capturable).
// The sum's order is NCCL's (ring or tree over the ranks), fixed for a fixed configuration, so a
// result repeats run to run but is not the in-process communicator's rank-order sum bit for bit.
// NVLink multicast (NVLS) is forced off before the first communicator: on shared hosts it can
// take the GPUs out of service.
// Without NCCL at build time (TOKAMAK_HAVE_NCCL unset) make_nccl_communicators says so.
#include <algorithm>
#include <cstdlib>
#include <string>

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
    if (scratch_) cudaFree(scratch_);
    if (!aborted_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  Status all_reduce_sum(Tensor& x) override {
    TK_RETURN_IF_ERROR(check_usable(x, "all_reduce_sum"));
    TK_ASSIGN_OR_RETURN(ncclDataType_t type, nccl_type(x.dtype()));
    return nccl_status(ncclAllReduce(x.data(), x.data(), static_cast<size_t>(x.numel()), type, ncclSum, comm_, stream_),
                       "ncclAllReduce");
  }

  // NOTE: the scratch grows on first use of a size; a captured step must have run once eagerly at
  // its size first (the engine's warm-up does), since allocation is not capturable.
  Status all_gather(const Tensor& x, Tensor& out) override {
    TK_RETURN_IF_ERROR(check_usable(x, "all_gather"));
    if (x.dtype() != DType::kF32 || out.dtype() != DType::kF32 || x.rank() != 2 || out.rank() != 2 ||
        out.dim(0) != x.dim(0) || out.dim(1) <= 0 || out.dim(1) > size_ * x.dim(1))
      return invalid_argument("all_gather: x [rows, cols] and out [rows, 0 < out_cols <= size * cols], fp32");
    const int64_t rows = x.dim(0), cols = x.dim(1), out_cols = out.dim(1);
    const size_t bytes = static_cast<size_t>(size_ * rows * cols) * sizeof(float);
    float* gathered = static_cast<float*>(out.data());
    const bool direct = rows == 1 && out_cols == size_ * cols;  // rank-major [size, 1, cols] is out's row
    if (!direct) {
      if (scratch_bytes_ < bytes) {
        if (scratch_) cudaFree(scratch_);
        scratch_ = nullptr, scratch_bytes_ = 0;
        if (cudaMalloc(&scratch_, bytes) != cudaSuccess) return out_of_memory("all_gather: scratch");
        scratch_bytes_ = bytes;
      }
      gathered = static_cast<float*>(scratch_);
    }
    TK_RETURN_IF_ERROR(nccl_status(
        ncclAllGather(x.data(), gathered, static_cast<size_t>(rows * cols), ncclFloat32, comm_, stream_),
        "ncclAllGather"));
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

  void abort() override {
    if (aborted_) return;
    aborted_ = true;
    ncclCommAbort(comm_);  // releases a rank blocked in a collective; the communicator is gone after it
  }

 private:
  Status check_usable(const Tensor& x, const char* op) {
    if (aborted_) return internal_error(std::string(op) + ": the communicator was aborted");
    if (x.device() != Device::kCuda) return invalid_argument(std::string(op) + ": a CUDA tensor");
    if (cudaSetDevice(device_) != cudaSuccess) return internal_error(std::string(op) + ": cudaSetDevice");
    return Status::ok_status();
  }

  ncclComm_t comm_;
  int rank_, size_, device_;
  cudaStream_t stream_;
  void* scratch_ = nullptr;
  size_t scratch_bytes_ = 0;
  bool aborted_ = false;
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
