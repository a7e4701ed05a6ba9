// tokamak bench: kernel benchmarks. Each suite times its kernels with CUDA events (median of
// >= 50 runs after warm-up, inputs rotated so that L2 does not serve them) and reports bytes
// and FLOPs, printed beside the ceilings measured on the same device in the same run.
#pragma once

#include <cuda_runtime.h>

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "core/core.h"

namespace tk::bench {

struct Ceilings {
  std::string device;
  double copy_bytes_per_s = 0;  // large device-to-device copy, bytes read + written
  double gemm_flops_per_s = 0;  // large cuBLAS bf16 GEMM on random data
  double launch_floor_us = 0;   // an empty kernel, timed like every row
};

struct Context {
  cudaStream_t stream = nullptr;
  Ceilings ceilings;
  int sm_count = 0;
  size_t l2_bytes = 0;
};

struct Row {
  std::string kernel;
  std::string shape;
  double us = 0;
  double bytes = 0;  // the fewest bytes the op must move (each input read once, output written once)
  double flops = 0;
  std::string note;  // e.g. the bar from the issue
};

// Copies of a working set of `bytes_per_set` to rotate through so that together they exceed
// L2 several times over (at least 1, at most `max_sets`).
int rotation_sets(const Context& ctx, size_t bytes_per_set, int max_sets = 64);

// Holds a stream behind a spinning kernel until release(), so that launches queued meanwhile run
// back to back on the device, as in a CUDA graph (blocker.cu).
class StreamBlocker {
 public:
  StreamBlocker();
  ~StreamBlocker();
  StreamBlocker(const StreamBlocker&) = delete;
  StreamBlocker& operator=(const StreamBlocker&) = delete;
  void hold(cudaStream_t stream);
  void release();

 private:
  int* flag_ = nullptr;         // pinned, mapped host memory
  int* device_flag_ = nullptr;  // its device address
};

// Median time in microseconds of launch(i) (i = 0, 1, ...; rotate inputs with i % sets), timed
// one launch at a time with events after `warmup` launches. The timed launches are queued behind
// a StreamBlocker, so the events time the device's work, not the host's launch calls.
double median_us(const Context& ctx, const std::function<void(int)>& launch, int reps = 50, int warmup = 10);

Ceilings measure_ceilings(cudaStream_t stream);

// median_us of an empty one-block kernel: what every row below pays before doing any work (the
// device's launch processing plus the two events), printed beside the ceilings.
double launch_floor_us(const Context& ctx);

// Suites, one per file.
Status bench_rowwise(const Context& ctx, std::vector<Row>& rows);           // bench_rowwise.cu
Status bench_decode_attention(const Context& ctx, std::vector<Row>& rows);  // bench_decode.cu
Status bench_prefill_attention(const Context& ctx, std::vector<Row>& rows); // bench_prefill.cu
Status bench_gemm(const Context& ctx, std::vector<Row>& rows);              // bench_gemm.cu
Status bench_fp8_gemm(const Context& ctx, std::vector<Row>& rows);          // bench_fp8_gemm.cu

// Runs every suite (or those whose name contains `filter`) and prints the table (or JSON).
Status run_kernel_benchmarks(const std::string& filter, bool json, std::ostream& out);

}  // namespace tk::bench
