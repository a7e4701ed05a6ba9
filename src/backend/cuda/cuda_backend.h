// tokamak CUDA backend: the op interface on one NVIDIA GPU — fused kernels from src/kernels,
// cuBLASLt GEMMs from src/gemm, bf16/fp16 activations with fp32 accumulation. This header has
// no CUDA include so that the engine stays a plain C++ target.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.h"

namespace tk {

// GPUs visible to this process; 0 without a driver or device.
int cuda_device_count();

// What the GPU path can run, asked before a model is loaded (--device auto's choice): the head
// sizes of the attention, RoPE and q/k-norm kernels, and whether `device` is one the kernels are
// built for (an error saying why not).
std::vector<int> cuda_supported_head_dims();
Status cuda_device_supported(int device = 0);

struct CudaBackendOptions {
  int device = 0;
  DType dtype = DType::kBF16;  // activations and weights: bf16 or fp16
  int gemm_autotune = 0;       // GemmRunner::set_autotune
};

Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options = {});

// Tensor parallelism over NCCL (nccl_communicator.cpp): one communicator per backend, rank r on
// backends[r] (CUDA backends on distinct devices), created together by ncclCommInitAll; every
// collective enqueues on its backend's compute stream (capturable). Unsupported when the build
// has no NCCL (nccl_available() false). NVLink multicast is forced off (NCCL_NVLS_ENABLE=0).
bool nccl_available();
Result<std::vector<std::unique_ptr<Communicator>>> make_nccl_communicators(const std::vector<Backend*>& backends);

}  // namespace tk
