// kernels::l2_prefetch: the bulk prefetch of a weight into the L2 as a kernel of its own, placed
// in the decode step after a product and before the small kernels that follow it (RoPE,
// attention, a norm, SiLU·up), so the memory, idle while they run, streams the next product's
// weight. It waits for the kernel before it first: issued earlier, the prefetch would compete
// with that product's own stream and could evict it. Every placement measured slower on the H200
// (docs/BENCHMARKS.md, session 6), so the model issues none unless TOKAMAK_L2_PREFETCH asks.
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

constexpr int kBlocks = 16, kThreads = 32;

__global__ void __launch_bounds__(kThreads) l2_prefetch_kernel(const void* p, int64_t bytes) {
  detail::pdl_wait();
  detail::pdl_trigger();
  detail::prefetch_l2_range(p, bytes, static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x, kBlocks * kThreads);
}

}  // namespace

Status l2_prefetch(const L2PrefetchParams& p, cudaStream_t stream) {
  if (!p.p || p.bytes < 0) return invalid_argument("l2_prefetch: null pointer or negative size");
  if (!detail::aligned16(p.p)) return unsupported("l2_prefetch: the address must be 16-byte aligned");
  const int64_t bytes = p.bytes / 16 * 16;
  if (bytes == 0) return Status();
  detail::launch_kernel(l2_prefetch_kernel, dim3(kBlocks), dim3(kThreads), 0, stream, p.p, bytes);
  return detail::launch_status("l2_prefetch");
}

}  // namespace tk::kernels
