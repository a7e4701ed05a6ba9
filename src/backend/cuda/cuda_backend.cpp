// The CUDA backend. (Being built: until the kernels land, asking for it is an error value.)
#include "backend_cuda/cuda_backend.h"
#include "cuda/cuda.h"

namespace tk {

Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options) {
  (void)options;
  return unsupported("the CUDA backend is not implemented yet; use --device cpu");
}

}  // namespace tk
