// Makes the backend a user named (cpu or cuda; load_model resolves auto with pick_device first), and
// reports what the GPU path can run (gpu_capabilities).
#include "backend_cpu/cpu_backend.h"
#include "engine_core/engine_core.h"
#ifdef TOKAMAK_WITH_CUDA
#include "backend_cuda/cuda_backend.h"
#endif

namespace tk {

bool cuda_available() {
#ifdef TOKAMAK_WITH_CUDA
  return cuda_device_count() > 0;
#else
  return false;
#endif
}

GpuCapabilities gpu_capabilities() {
  GpuCapabilities gpu;
#ifdef TOKAMAK_WITH_CUDA
  gpu.device_count = cuda_device_count();
  gpu.device_present = gpu.device_count > 0;
  gpu.nccl = nccl_available();
  if (!gpu.device_present) {
    gpu.unusable = "no CUDA device is available";
    return gpu;
  }
  if (Status s = cuda_device_supported(0); !s.ok()) gpu.unusable = s.message();
  gpu.head_dims = cuda_supported_head_dims();
#else
  gpu.unusable = "this build of tokamak has no CUDA backend";
#endif
  return gpu;
}

Result<std::unique_ptr<Backend>> make_backend(DeviceChoice device, DTypeChoice dtype, int num_threads,
                                              int gemm_autotune, int gpu) {
  if (device == DeviceChoice::kCpu || (device == DeviceChoice::kAuto && !cuda_available()))
    return make_cpu_backend(num_threads);
#ifdef TOKAMAK_WITH_CUDA
  if (!cuda_available()) return unsupported("--device cuda: no CUDA device is available");
  CudaBackendOptions options;
  options.dtype = dtype == DTypeChoice::kFloat16 ? DType::kF16 : DType::kBF16;
  options.gemm_autotune = gemm_autotune;
  options.device = gpu;
  return make_cuda_backend(options);
#else
  (void)dtype, (void)gemm_autotune, (void)gpu;
  return unsupported("--device cuda: this build of tokamak has no CUDA backend");
#endif
}

Result<std::vector<std::unique_ptr<Communicator>>> make_communicators(const std::vector<Backend*>& backends) {
  if (backends.empty() || backends[0]->device() == Device::kCpu)
    return make_in_process_communicators(static_cast<int>(backends.size()));
#ifdef TOKAMAK_WITH_CUDA
  return make_nccl_communicators(backends);
#else
  return unsupported("tensor parallelism on a GPU: this build of tokamak has no CUDA backend");
#endif
}

}  // namespace tk
