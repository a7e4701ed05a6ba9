// Questions behind docs/BENCHMARKS.md "Where a batch-1 decode step goes", standalone (no tokamak
// libraries), for one H200 run:
//  1. How fast can a kernel read N bytes once, for N of decode's weights (8-235 MB) and 2 GB?
//     qkv's 50 MB GEMV reads at 2.9 TB/s; is that what any short read gets (the ramp and tail of
//     a grid), or the GEMV's own limit? A plain streaming read with 16-byte loads over a grid of
//     every SM, one launch between events, and 20 launches replayed from one graph (each chained to
//     the one before by a programmatic edge, as in the decode graph).
//  2. Does a grid that issues cp.async.bulk.prefetch.L2 complete before its prefetches land? If
//     the prefetch kernel's time grows with the bytes it asks for, a prefetch can only hide memory
//     time inside a kernel that runs that long anyway (the L2 prefetch experiment lost at every
//     setting, fe4cdd0).
//  3. After such a prefetch, does the read of the same bytes run at the L2's rate?
// Every read kernel folds what it loads into one word, so no load is dead code; question 1's
// buffers rotate through more than the 60 MB L2, questions 2-3 evict it with a 2 GB read first.
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a bench/dev/short_reads.cu -o short_reads
//   ./short_reads
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "dev_check.h"

constexpr int kThreads = 256;

// Reads [p, p + bytes) once in 16-byte loads, 4 in flight per thread per step; xor-folds into *sink.
__global__ void __launch_bounds__(kThreads) read_once(const uint4* __restrict__ p, int64_t n16, unsigned* sink) {
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  unsigned acc = 0;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + 3 * stride < n16; i += 4 * stride) {
    uint4 v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];\n"
                                             : "=r"(v[u].x), "=r"(v[u].y), "=r"(v[u].z), "=r"(v[u].w)
                                             : "l"(p + i + u * stride));
#pragma unroll
    for (int u = 0; u < 4; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n16; i += stride) {
    const uint4 v = p[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;  // practically never: keeps the loads alive
}

// Asks the L2 for [p, p + bytes) in 16 KB pieces spread over the grid, then exits.
__global__ void prefetch_only(const char* p, int64_t bytes) {
  constexpr int64_t kPiece = 16 << 10;
  const int64_t worker = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t workers = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t off = worker * kPiece; off < bytes; off += workers * kPiece) {
    const uint32_t n = static_cast<uint32_t>(bytes - off < kPiece ? bytes - off : kPiece);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(__cvta_generic_to_global(p + off)), "r"(n)
                 : "memory");
  }
}

void launch_read(const void* p, int64_t bytes, unsigned* sink, int sms, cudaStream_t s, bool programmatic) {
  cudaLaunchConfig_t c = {};
  c.gridDim = dim3(sms * 8), c.blockDim = dim3(kThreads), c.stream = s;
  cudaLaunchAttribute a[1];
  a[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  a[0].val.programmaticStreamSerializationAllowed = 1;
  c.attrs = a, c.numAttrs = programmatic ? 1 : 0;
  CK(cudaLaunchKernelEx(&c, read_once, static_cast<const uint4*>(p), bytes / 16, sink));
}

struct Timer {
  cudaEvent_t a, b;
  Timer() {
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
  }
  template <typename F>
  float once(cudaStream_t s, F&& f) {  // one launch between two events
    CK(cudaEventRecord(a, s));
    f();
    CK(cudaEventRecord(b, s));
    CK(cudaEventSynchronize(b));
    float ms = 0.f;
    CK(cudaEventElapsedTime(&ms, a, b));
    return ms * 1e3f;
  }
  template <typename F>
  float us(cudaStream_t s, F&& f) {  // median of 15
    std::vector<float> t;
    for (int r = 0; r < 15; ++r) {
      CK(cudaEventRecord(a, s));
      f(r);
      CK(cudaEventRecord(b, s));
      CK(cudaEventSynchronize(b));
      float ms = 0.f;
      CK(cudaEventElapsedTime(&ms, a, b));
      t.push_back(ms * 1e3f);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }
};

int main() {
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  unsigned* sink;
  CK(cudaMalloc(&sink, sizeof(unsigned)));
  const int64_t kMB = 1 << 20;
  const int64_t sizes[] = {8 * kMB, 16 * kMB, 33 * kMB + kMB / 2, 50 * kMB, 117 * kMB, 235 * kMB, 2048 * kMB};
  constexpr int kCopies = 4;  // 4 x 235 MB rotate past the L2; 2 GB alone is 34x it
  std::vector<char*> bufs(kCopies);
  for (char*& b : bufs) {
    CK(cudaMalloc(&b, 2048 * kMB));
    CK(cudaMemset(b, 0x5a, 2048 * kMB));
  }
  Timer timer;
  std::printf("1. one read of N bytes: one launch | graph of 20 programmatic launches, per launch\n");
  for (int64_t n : sizes) {
    const float one = timer.us(s, [&](int r) { launch_read(bufs[r % kCopies], n, sink, sms, s, false); });
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < 20; ++i) launch_read(bufs[i % kCopies], n, sink, sms, s, i > 0);
    CK(cudaStreamEndCapture(s, &g));
    CK(cudaGraphInstantiate(&ge, g, 0));
    const float graph = timer.us(s, [&](int) { CK(cudaGraphLaunch(ge, s)); }) / 20.f;
    std::printf("  %8.1f MB: %8.2f us %5.2f TB/s | %8.2f us %5.2f TB/s\n", n / 1e6, one, n / one / 1e6, graph,
                n / graph / 1e6);
    CK(cudaGraphExecDestroy(ge));
    CK(cudaGraphDestroy(g));
  }
  std::printf("2-3. after evicting the L2 (a 2 GB read): prefetch_only(N) on B blocks of 32 threads, then one read of\n"
              "     the same N bytes; against one read of N cold bytes (medians of 9, each a single launch)\n");
  auto evict = [&] {
    launch_read(bufs[1], 2048 * kMB, sink, sms, s, false);
    CK(cudaStreamSynchronize(s));
  };
  for (int64_t n : {8 * kMB, 16 * kMB, 33 * kMB + kMB / 2}) {
    for (int blocks : {16, sms}) {
      std::vector<float> pf, after, cold;
      for (int r = 0; r < 9; ++r) {
        evict();
        pf.push_back(timer.once(s, [&] { prefetch_only<<<blocks, 32, 0, s>>>(bufs[0], n); }));
        after.push_back(timer.once(s, [&] { launch_read(bufs[0], n, sink, sms, s, false); }));
        evict();
        cold.push_back(timer.once(s, [&] { launch_read(bufs[2], n, sink, sms, s, false); }));
      }
      std::sort(pf.begin(), pf.end()), std::sort(after.begin(), after.end()), std::sort(cold.begin(), cold.end());
      std::printf("  %6.1f MB, %3d blocks: prefetch kernel %8.2f us (%5.2f TB/s if it waits for its bytes) | read after"
                  " it %7.2f us, cold %7.2f us\n", n / 1e6, blocks, pf[4], n / pf[4] / 1e6, after[4], cold[4]);
    }
  }
  CK(cudaGetLastError());
  for (char* b : bufs) CK(cudaFree(b));
  return 0;
}
