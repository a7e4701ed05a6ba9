// The stream blocker of median_us (bench.cpp) and the launch floor: a kernel that holds the stream until the host has
// queued every timed launch. Without it the GPU catches up with the host after the first few
// launches and each event pair then also times the host's launch call (~3-8 us), which is not the
// kernel's cost and not what a CUDA-graph replay pays. nvbench times kernels the same way.
#include <cuda_runtime.h>

#include <cstdint>

#include "bench/bench.h"
#include "cuda/cuda.h"

namespace tk::bench {
namespace {

__device__ __forceinline__ uint64_t global_ns() {
  uint64_t t;
  asm volatile("mov.u64 %0, %globaltimer;" : "=l"(t));
  return t;
}

// Spins until the host writes *flag != 0, or timeout_ns passes (a host that dies or a queue
// that fills before release must not hang the device forever).
__global__ void hold_stream(const volatile int* flag, uint64_t timeout_ns) {
  const uint64_t start = global_ns();
  while (*flag == 0 && global_ns() - start < timeout_ns) __nanosleep(1000);
}

__global__ void empty_kernel() {}

}  // namespace

double launch_floor_us(const Context& ctx) {
  return median_us(ctx, [&](int) {
    empty_kernel<<<1, 32, 0, ctx.stream>>>();
    CUDA_CHECK_LAUNCH();
  });
}

StreamBlocker::StreamBlocker() {
  CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&flag_), sizeof(int), cudaHostAllocMapped));
  CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_flag_), flag_, 0));
}

StreamBlocker::~StreamBlocker() { cudaFreeHost(flag_); }

void StreamBlocker::hold(cudaStream_t stream) {
  *reinterpret_cast<volatile int*>(flag_) = 0;
  hold_stream<<<1, 1, 0, stream>>>(device_flag_, 2'000'000'000ull);  // 2 s
  CUDA_CHECK_LAUNCH();
}

void StreamBlocker::release() { *reinterpret_cast<volatile int*>(flag_) = 1; }

}  // namespace tk::bench
