// Device helpers shared by the kernels of src/kernels (private: not part of kernels.h). Kept
// generic and stable because several kernel files include it: 16-byte vectors of bf16/fp16 and
// their fp32 conversion, warp/block reductions, dtype dispatch
// and the launchers' validation and launch-error checks.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "core/core.h"

namespace tk::kernels::detail {

constexpr unsigned kFullMask = 0xffffffffu;

// ---- host-side validation ------------------------------------------------------------------

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The status of the launch that just happened: a CUDA failure here is not the caller's input, so
// it comes back as internal_error naming the op (never an abort).
inline Status launch_status(const char* op) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return internal_error(std::string(op) + ": kernel launch failed: " + cudaGetErrorString(err));
  return Status();
}

// Calls f(T{}) with T = __nv_bfloat16 or __half; any other dtype is unsupported.
template <typename F>
Status dispatch_half(DType dtype, const char* op, F&& f) {
  switch (dtype) {
    case DType::kBF16: return f(__nv_bfloat16{});
    case DType::kF16: return f(__half{});
    default: return unsupported(std::string(op) + ": dtype " + dtype_name(dtype) + " (bf16 and fp16 only)");
  }
}

// ---- programmatic dependent launch (sm_90) ---------------------------------------------------
//
// Every kernel of a decode step is launched with programmatic stream serialization (launch()
// below), so it may be scheduled while the kernel before it drains and run its prologue (a
// GEMV's first weights, a norm's weight) meanwhile. Each such kernel calls pdl_wait() before it
// reads anything an earlier kernel wrote, or writes anything an earlier kernel reads: the wait
// returns once every prerequisite grid has completed and flushed. Every kernel calls it, even
// one that reads nothing of its predecessor's, because its own completion is what the kernel
// after it waits for (completion is transitive only through the wait). pdl_trigger() lets the
// next kernel be scheduled: right after the wait, so the next kernel's blocks take what this
// one's leave free (the trigger of a grid counts once all its blocks have triggered or exited).
// Both are no-ops in a kernel launched without the attribute; TOKAMAK_DISABLE_PDL=1 launches
// without it, for comparison.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }

bool programmatic_launch_enabled();  // false under TOKAMAK_DISABLE_PDL=1 (pdl.cpp)

// kernel<<<grid, block, smem, stream>>>(args...) as a programmatic dependent of the kernel before
// it on the stream (a programmatic edge when captured into a graph); with cluster_x > 1 in
// clusters of cluster_x blocks along x (grid.x a multiple of it), for blocks that share a row and
// exchange partial reductions through distributed shared memory.
template <typename... Params, typename... Args>
void launch_kernel_clustered(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             unsigned cluster_x, Args&&... args) {
  cudaLaunchConfig_t config = {};
  config.gridDim = grid, config.blockDim = block, config.dynamicSmemBytes = smem, config.stream = stream;
  cudaLaunchAttribute attribute[2];
  unsigned n = 0;
  if (cluster_x > 1) {
    attribute[n].id = cudaLaunchAttributeClusterDimension;
    attribute[n].val.clusterDim.x = cluster_x, attribute[n].val.clusterDim.y = 1, attribute[n].val.clusterDim.z = 1;
    ++n;
  }
  if (programmatic_launch_enabled()) {
    attribute[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attribute[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  config.attrs = attribute, config.numAttrs = n;
  (void)cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);  // errors: launch_status()
}
template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, Args&&... args) {
  launch_kernel_clustered(kernel, grid, block, smem, stream, 1u, std::forward<Args>(args)...);
}

// ---- 8 halves in one 16-byte access ----------------------------------------------------------

template <typename T>
struct HalfOps;
template <>
struct HalfOps<__nv_bfloat16> {
  static __device__ __forceinline__ float2 to_float2(uint32_t v) {
    __nv_bfloat162 h = *reinterpret_cast<const __nv_bfloat162*>(&v);
    return __bfloat1622float2(h);
  }
  static __device__ __forceinline__ uint32_t from_float2(float a, float b) {
    __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};
template <>
struct HalfOps<__half> {
  static __device__ __forceinline__ float2 to_float2(uint32_t v) {
    __half2 h = *reinterpret_cast<const __half2*>(&v);
    return __half22float2(h);
  }
  static __device__ __forceinline__ uint32_t from_float2(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

template <typename T>
__device__ __forceinline__ void unpack8(const uint4& v, float f[8]) {
  float2 a = HalfOps<T>::to_float2(v.x), b = HalfOps<T>::to_float2(v.y);
  float2 c = HalfOps<T>::to_float2(v.z), d = HalfOps<T>::to_float2(v.w);
  f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = c.x, f[5] = c.y, f[6] = d.x, f[7] = d.y;
}

template <typename T>
__device__ __forceinline__ uint4 pack8(const float f[8]) {
  uint4 v;
  v.x = HalfOps<T>::from_float2(f[0], f[1]);
  v.y = HalfOps<T>::from_float2(f[2], f[3]);
  v.z = HalfOps<T>::from_float2(f[4], f[5]);
  v.w = HalfOps<T>::from_float2(f[6], f[7]);
  return v;
}

// Plain 16-byte load/store (data this kernel may also write); ldg_vec for data read-only for the
// whole kernel (weights, tables), which may use the non-coherent read-only path.
__device__ __forceinline__ uint4 ld_vec(const void* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ uint4 ldg_vec(const void* p) { return __ldg(reinterpret_cast<const uint4*>(p)); }
__device__ __forceinline__ void st_vec(void* p, const uint4& v) { *reinterpret_cast<uint4*>(p) = v; }

// ---- reductions ------------------------------------------------------------------------------

struct MaxOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};

template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
  return v;
}

// Every thread gets the reduction of the block. NOTE: blockDim.x must be a multiple of 32 and all
// threads must call it (it holds barriers); `scratch` is 32 T of shared memory. Warps are combined
// in a fixed order, so the result is deterministic.
template <typename T, typename Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T* scratch) {
  v = warp_reduce(v, op);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, num_warps = blockDim.x >> 5;
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < num_warps; ++w) v = op(v, scratch[w]);
  return v;
}

// ---- row gather (embedding, gather_rows) ------------------------------------------------------

// dst[r, :] = src[idx[r] - offset, :] in units of U (uint4 when rows are 16-byte multiples and
// aligned, else uint16_t); an index outside [offset, offset + bound) writes zeros.
template <typename U, typename Index>
__global__ void gather_units_kernel(const U* __restrict__ src,     // [bound, units]
                                    const Index* __restrict__ idx,    // [num_rows]
                                    U* __restrict__ dst,              // [num_rows, units]
                                    int64_t num_rows, int64_t units, int64_t bound, int64_t offset) {
  pdl_wait();
  pdl_trigger();
  const int64_t total = num_rows * units;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = i / units, c = i - r * units;
    const int64_t s = static_cast<int64_t>(__ldg(idx + r)) - offset;
    U v{};
    if (s >= 0 && s < bound) v = __ldg(src + s * units + c);
    dst[i] = v;
  }
}

// Launches gather_units_kernel over 2-byte elements, in 16-byte units when alignment allows.
// (A template so that only the files that call it instantiate the kernels.)
template <typename Index = int32_t>
void launch_gather_rows(const void* src, const Index* idx, void* dst, int64_t num_rows, int64_t hidden,
                               int64_t bound, cudaStream_t stream, int64_t offset = 0) {
  constexpr int kThreads = 256;
  const int64_t row_bytes = hidden * 2;
  const bool vec = row_bytes % 16 == 0 && aligned16(src) && aligned16(dst);
  const int64_t units = vec ? row_bytes / 16 : hidden;
  const int64_t blocks = std::min<int64_t>((num_rows * units + kThreads - 1) / kThreads, int64_t{1} << 20);
  if (vec) {
    launch_kernel(gather_units_kernel<uint4, Index>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0, stream,
                  static_cast<const uint4*>(src), idx, static_cast<uint4*>(dst), num_rows, units, bound, offset);
  } else {
    launch_kernel(gather_units_kernel<uint16_t, Index>, dim3(static_cast<unsigned>(blocks)), dim3(kThreads), 0,
                  stream, static_cast<const uint16_t*>(src), idx, static_cast<uint16_t*>(dst), num_rows, units, bound,
                  offset);
  }
}

}  // namespace tk::kernels::detail
