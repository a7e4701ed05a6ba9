// tokamak cuda: CUDA runtime plumbing shared by kernels, GEMMs and the CUDA backend — error
// checks, device properties, owning device buffers, streams, events and graph capture.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "core/core.h"

namespace tk {

// A CUDA failure is fatal with file:line: it means a bug or a broken device, not bad user input.
#define CUDA_CHECK(expr)                                                                       \
  do {                                                                                         \
    cudaError_t tk_err_ = (expr);                                                              \
    if (tk_err_ != cudaSuccess)                                                                \
      ::tk::fatal(__FILE__, __LINE__, std::string(#expr) + ": " + cudaGetErrorString(tk_err_)); \
  } while (0)

// The launch that just happened: fatal on a configuration error.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// Devices visible to this process; 0 when there is no driver or no GPU (never fatal).
int cuda_device_count();

struct DeviceInfo {
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  size_t total_memory = 0;
  size_t l2_bytes = 0;
  size_t max_smem_per_block_optin = 0;
};
DeviceInfo device_info(int device = 0);

// Free device memory right now.
size_t device_free_memory();

// Device memory with single ownership, released with the object.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  static Result<DeviceBuffer> allocate(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return ptr_; }
  size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// A device tensor whose storage is owned by the returned Tensor (freed with its last copy).
Result<Tensor> cuda_alloc_tensor(DType dtype, Shape shape);

}  // namespace tk
