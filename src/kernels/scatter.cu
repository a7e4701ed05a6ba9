// Scatter of int32 values to indexed places: the step's new tokens into the rows of the sampler's
// token-history table, so the penalties read a history kept on the device instead of one rebuilt
// and uploaded by the host every step. CPU twins: ref::scatter_int32 and the CPU backend's add_logit_bias.
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

__global__ void scatter_kernel(int32_t* __restrict__ dst,           // [dst_size]
                               const int32_t* __restrict__ index,   // [n]
                               const int32_t* __restrict__ values,  // [n]
                               int n, int64_t dst_size) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int64_t at = index[i];
    if (at >= 0 && at < dst_size) dst[at] = values[i];
  }
}

__global__ void scatter_add_kernel(float* __restrict__ dst,            // [dst_size]
                                   const int64_t* __restrict__ index,   // [n]
                                   const float* __restrict__ values,    // [n]
                                   int n, int64_t dst_size) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int64_t at = index[i];
    if (at >= 0 && at < dst_size) atomicAdd(dst + at, values[i]);
  }
}

}  // namespace

Status scatter_add_f32(float* dst, const int64_t* index, const float* values, int n, int64_t dst_size,
                       cudaStream_t stream) {
  if (n < 0) return invalid_argument("scatter_add_f32: n must be >= 0");
  if (n == 0) return Status::ok_status();
  if (!dst || !index || !values) return invalid_argument("scatter_add_f32: null pointer");
  constexpr int kThreads = 256;
  const int blocks = std::min((n + kThreads - 1) / kThreads, 1024);
  scatter_add_kernel<<<blocks, kThreads, 0, stream>>>(dst, index, values, n, dst_size);
  return detail::launch_status("scatter_add_f32");
}

Status scatter_int32(int32_t* dst, const int32_t* index, const int32_t* values, int n, int64_t dst_size,
                     cudaStream_t stream) {
  if (n < 0) return invalid_argument("scatter_int32: n must be >= 0");
  if (n == 0) return Status::ok_status();
  if (!dst || !index || !values) return invalid_argument("scatter_int32: null pointer");
  constexpr int kThreads = 256;
  const int blocks = std::min((n + kThreads - 1) / kThreads, 1024);
  scatter_kernel<<<blocks, kThreads, 0, stream>>>(dst, index, values, n, dst_size);
  return detail::launch_status("scatter_int32");
}

}  // namespace tk::kernels
