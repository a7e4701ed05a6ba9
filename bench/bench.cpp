// Benchmark harness: ceilings measured on the device at hand, event timing with warm-up and
// median, L2 defeated by rotating input sets, and the printed table.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk::bench {

int rotation_sets(const Context& ctx, size_t bytes_per_set, int max_sets) {
  const size_t want = 4 * std::max<size_t>(ctx.l2_bytes, 1);
  const size_t sets = (want + bytes_per_set - 1) / std::max<size_t>(bytes_per_set, 1);
  return static_cast<int>(std::clamp<size_t>(sets, 1, static_cast<size_t>(max_sets)));
}

double median_us(const Context& ctx, const std::function<void(int)>& launch, int reps, int warmup) {
  // Warm up by time as well as by count: after a host pause (building the next shape's inputs)
  // the first launches run before the clocks are back up. Measured: at 1x4096 decode, whichever
  // split count was timed first read ~1.7 us slower than the same count timed later.
  constexpr auto kMinWarmup = std::chrono::milliseconds(20);
  const auto start = std::chrono::steady_clock::now();
  int done = 0;
  for (; done < warmup || std::chrono::steady_clock::now() - start < kMinWarmup; ++done) {
    launch(done);
    if (done % 8 == 7) CUDA_CHECK(cudaStreamSynchronize(ctx.stream));  // time the device, not the queue
  }
  std::vector<cudaEvent_t> events(2 * reps);
  for (auto& e : events) CUDA_CHECK(cudaEventCreate(&e));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  // All launches are queued behind the blocker, each bracketed by its own pair of events.
  static StreamBlocker blocker;
  blocker.hold(ctx.stream);
  for (int i = 0; i < reps; ++i) {
    CUDA_CHECK(cudaEventRecord(events[2 * i], ctx.stream));
    launch(done + i);
    CUDA_CHECK(cudaEventRecord(events[2 * i + 1], ctx.stream));
  }
  blocker.release();
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  std::vector<double> us(reps);
  for (int i = 0; i < reps; ++i) {
    float ms = 0;
    CUDA_CHECK(cudaEventElapsedTime(&ms, events[2 * i], events[2 * i + 1]));
    us[i] = ms * 1e3;
  }
  for (auto& e : events) cudaEventDestroy(e);
  std::nth_element(us.begin(), us.begin() + reps / 2, us.end());
  return us[reps / 2];
}

Ceilings measure_ceilings(cudaStream_t stream) {
  Ceilings c;
  c.device = device_info().name;
  Context ctx;
  ctx.stream = stream;
  // Copy: 2 GiB device to device, counting bytes read plus bytes written.
  const size_t bytes = 2ull << 30;
  auto src = DeviceBuffer::allocate(bytes), dst = DeviceBuffer::allocate(bytes);
  TK_CHECK(src.ok() && dst.ok());
  TK_CHECK(kernels::fill_random(src->data(), DType::kF32, bytes / 4, 1, 0.f, 1.f, stream).ok());
  double copy_us = median_us(ctx, [&](int) { CUDA_CHECK(cudaMemcpyAsync(dst->data(), src->data(), bytes, cudaMemcpyDeviceToDevice, stream)); }, 20, 3);
  c.copy_bytes_per_s = 2.0 * bytes / (copy_us * 1e-6);
  // GEMM: 8192^3 bf16 on random data through cuBLASLt.
  const int64_t n = 8192;
  auto a = DeviceBuffer::allocate(n * n * 2), b = DeviceBuffer::allocate(n * n * 2), o = DeviceBuffer::allocate(n * n * 2);
  TK_CHECK(a.ok() && b.ok() && o.ok());
  TK_CHECK(kernels::fill_random(a->data(), DType::kBF16, n * n, 2, 0.f, 1.f, stream).ok());
  TK_CHECK(kernels::fill_random(b->data(), DType::kBF16, n * n, 3, 0.f, 1.f, stream).ok());
  auto gemm = GemmRunner::create();
  TK_CHECK(gemm.ok());
  GemmArgs g;
  g.x = a->data(), g.w = b->data(), g.out = o->data(), g.m = g.n = g.k = n;
  double gemm_us = median_us(ctx, [&](int) { TK_CHECK((*gemm)->matmul(g, stream).ok()); }, 20, 3);
  c.gemm_flops_per_s = 2.0 * n * n * n / (gemm_us * 1e-6);
  return c;
}

namespace {

struct Suite {
  const char* name;
  Status (*run)(const Context&, std::vector<Row>&);
};

void print_table(const Ceilings& c, const std::vector<Row>& rows, std::ostream& out) {
  char line[512];
  std::snprintf(line, sizeof line,
                "device: %s | copy ceiling %.2f TB/s | bf16 GEMM ceiling %.0f TFLOP/s | launch floor %.2f us\n",
                c.device.c_str(), c.copy_bytes_per_s / 1e12, c.gemm_flops_per_s / 1e12, c.launch_floor_us);
  out << line;
  std::snprintf(line, sizeof line, "%-24s %-30s %10s %8s %9s %7s  %s\n", "kernel", "shape", "us", "TB/s", "TFLOP/s",
                "%ceil", "note");
  out << line;
  for (const Row& r : rows) {
    double tbs = r.bytes / (r.us * 1e-6) / 1e12, tfl = r.flops / (r.us * 1e-6) / 1e12;
    double pct = 100 * std::max(tbs * 1e12 / c.copy_bytes_per_s, tfl * 1e12 / c.gemm_flops_per_s);
    std::snprintf(line, sizeof line, "%-24s %-30s %10.2f %8.3f %9.1f %6.1f%%  %s\n", r.kernel.c_str(), r.shape.c_str(),
                  r.us, tbs, tfl, pct, r.note.c_str());
    out << line;
  }
}

void print_json(const Ceilings& c, const std::vector<Row>& rows, std::ostream& out) {
  nlohmann::json j;
  j["device"] = c.device;
  j["copy_tb_s"] = c.copy_bytes_per_s / 1e12;
  j["gemm_tflop_s"] = c.gemm_flops_per_s / 1e12;
  j["launch_floor_us"] = c.launch_floor_us;
  for (const Row& r : rows)
    j["rows"].push_back({{"kernel", r.kernel}, {"shape", r.shape}, {"us", r.us}, {"bytes", r.bytes},
                         {"flops", r.flops}, {"tb_s", r.bytes / (r.us * 1e-6) / 1e12},
                         {"tflop_s", r.flops / (r.us * 1e-6) / 1e12}, {"note", r.note}});
  out << j.dump(1) << "\n";
}

}  // namespace

Status run_kernel_benchmarks(const std::string& filter, bool json, std::ostream& out) {
  if (cuda_device_count() == 0) return unsupported("tokamak bench kernels needs a CUDA device");
  Context ctx;
  CUDA_CHECK(cudaStreamCreate(&ctx.stream));
  DeviceInfo info = device_info();
  ctx.sm_count = info.sm_count;
  ctx.l2_bytes = info.l2_bytes;
  ctx.ceilings = measure_ceilings(ctx.stream);
  ctx.ceilings.launch_floor_us = launch_floor_us(ctx);
  const Suite suites[] = {{"rowwise", bench_rowwise},
                          {"decode", bench_decode_attention},
                          {"prefill", bench_prefill_attention},
                          {"gemm", bench_gemm},
                          {"fp8_gemm", bench_fp8_gemm}};
  std::vector<Row> rows;
  for (const Suite& s : suites) {
    if (!filter.empty() && std::string(s.name).find(filter) == std::string::npos) continue;
    Status st = s.run(ctx, rows);
    if (!st.ok()) return st.with_context(std::string("bench ") + s.name);
  }
  if (json) print_json(ctx.ceilings, rows, out);
  else print_table(ctx.ceilings, rows, out);
  CUDA_CHECK(cudaStreamDestroy(ctx.stream));
  return Status::ok_status();
}

}  // namespace tk::bench
