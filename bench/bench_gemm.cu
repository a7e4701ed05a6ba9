// GEMMs at Llama-3-8B shapes. Decode: M = 1, 2, 4, 8, 16, 32 rows against the q/k/v, o, gate/up,
// down and lm_head weights, memory-bound, reported as TB/s of weight bytes, through cuBLASLt ("lt")
// and, up to 16 rows, kernels::gemv ("gemv"). Large M (the decode
// batches and prefill chunks of a serving run, compute-bound, TFLOP/s): cuBLASLt's first heuristic
// against the fastest of its 16 candidates (GemmRunner::set_autotune), with lm_head's fp32 logits.
#include <cstdio>
#include <string>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk::bench {
namespace {

Status bench_gemm_large_m(const Context& ctx, std::vector<Row>& rows) {
  TK_ASSIGN_OR_RETURN(auto heuristic, GemmRunner::create());
  TK_ASSIGN_OR_RETURN(auto tuned, GemmRunner::create());
  tuned->set_autotune(16);
  struct Shape {
    int64_t k, n;
    const char* what;
    bool logits;  // fp32 out, M only up to a decode batch
  };
  const Shape shapes[] = {{4096, 6144, "qkv", false},
                          {4096, 4096, "o_proj", false},
                          {4096, 28672, "gate_up", false},
                          {14336, 4096, "down", false},
                          {4096, 128256, "lm_head", true}};
  const int64_t max_m = 16384;
  TK_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate(max_m * 14336 * 2));
  TK_RETURN_IF_ERROR(kernels::fill_random(x.data(), DType::kBF16, max_m * 14336, 7, 0.f, 1.f, ctx.stream));
  TK_ASSIGN_OR_RETURN(DeviceBuffer o, DeviceBuffer::allocate(max_m * 28672 * 2));
  for (const Shape& s : shapes) {
    TK_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::allocate(s.k * s.n * 2));
    TK_RETURN_IF_ERROR(kernels::fill_random(w.data(), DType::kBF16, s.k * s.n, 11, 0.f, 0.02f, ctx.stream));
    for (int64_t m : {256, 512, 964, 1024, 2048, 4096, 16384}) {
      if (s.logits && m > 1024) continue;
      GemmArgs g;
      g.x = x.data(), g.w = w.data(), g.out = o.data(), g.m = m, g.n = s.n, g.k = s.k;
      g.out_dtype = s.logits ? DType::kF32 : DType::kBF16;
      for (GemmRunner* r : {heuristic.get(), tuned.get()}) {
        Status st = r->matmul(g, ctx.stream);  // tunes here, outside the timed launches
        TK_RETURN_IF_ERROR(st);
        const double us = median_us(ctx, [&](int) {
          if (st.ok()) (void)(st = r->matmul(g, ctx.stream));
        }, 20, 3);
        TK_RETURN_IF_ERROR(st);
        Row row;
        row.kernel = std::string("gemm ") + s.what + (r == tuned.get() ? " autotuned" : " heuristic");
        row.shape = "M=" + std::to_string(m) + " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
        row.us = us;
        row.bytes = static_cast<double>(s.k * s.n * 2 + m * s.k * 2 + m * s.n * (s.logits ? 4 : 2));
        row.flops = 2.0 * m * s.k * s.n;
        row.note = "TFLOP/s; compute-bound";
        rows.push_back(row);
      }
    }
  }
  for (const std::string& line : tuned->tuning_log()) std::fprintf(stderr, "gemm autotune: %s\n", line.c_str());
  // What a new M costs the host before its first launch: the heuristic query (a prompt length
  // never seen before pays it once per shape).
  for (const Shape& s : shapes) {
    TK_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::allocate(s.k * s.n * 2));
    for (int64_t m : {6, 13, 100, 101}) {  // 101: 100's bucket, served by its choice
      GemmArgs g;
      g.x = x.data(), g.w = w.data(), g.out = o.data(), g.m = m, g.n = s.n, g.k = s.k;
      g.out_dtype = s.logits ? DType::kF32 : DType::kBF16;
      double first = 0, again = 0;
      for (double* t : {&first, &again}) {
        const double t0 = now_seconds();
        TK_RETURN_IF_ERROR(heuristic->matmul(g, ctx.stream));
        *t = (now_seconds() - t0) * 1e6;
      }
      CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
      std::fprintf(stderr, "gemm plan %s M=%lld: first call %.0f us on the host, the next %.0f us\n", s.what,
                   static_cast<long long>(m), first, again);
    }
  }
  return Status::ok_status();
}

}  // namespace

Status bench_gemm(const Context& ctx, std::vector<Row>& rows) {
  TK_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create());
  struct Shape2 {
    int64_t k, n;
    const char* what;
    DType out = DType::kBF16;
  };
  const Shape2 shapes[] = {{4096, 6144, "qkv"},
                           {4096, 4096, "o_proj"},
                           {4096, 28672, "gate_up"},
                           {14336, 4096, "down"},
                           {4096, 128256, "lm_head", DType::kF32}};
  for (const Shape2& s : shapes) {
    const size_t w_bytes = static_cast<size_t>(s.k * s.n) * 2;
    const int sets = rotation_sets(ctx, w_bytes, 16);
    std::vector<DeviceBuffer> ws;
    for (int i = 0; i < sets; ++i) {
      TK_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::allocate(w_bytes));
      TK_RETURN_IF_ERROR(kernels::fill_random(w.data(), DType::kBF16, s.k * s.n, 10 + i, 0.f, 0.02f, ctx.stream));
      ws.push_back(std::move(w));
    }
    for (int64_t m : {1, 2, 4, 8, 16, 32}) {
      TK_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate(m * s.k * 2));
      TK_ASSIGN_OR_RETURN(DeviceBuffer o, DeviceBuffer::allocate(m * s.n * 4));
      TK_RETURN_IF_ERROR(kernels::fill_random(x.data(), DType::kBF16, m * s.k, 7, 0.f, 1.f, ctx.stream));
      GemmArgs g;
      g.x = x.data(), g.out = o.data(), g.m = m, g.n = s.n, g.k = s.k, g.out_dtype = s.out;
      // cuBLASLt, then (m <= 16) kernels::gemv on the same operands: launched one at a time, so
      // the GEMV's programmatic launch has no kernel before it to overlap (bench latency shows that).
      for (GemvUse use : {GemvUse::kNever, GemvUse::kAlways}) {
        if (use == GemvUse::kAlways && m > kernels::kGemvMaxM) continue;
        gemm->set_gemv(use);
        Status st;
        double us = median_us(ctx, [&](int i) {
          g.w = ws[i % sets].data();
          if (st.ok()) (void)(st = gemm->matmul(g, ctx.stream));
        });
        TK_RETURN_IF_ERROR(st);
        Row r;
        r.kernel = std::string(use == GemvUse::kNever ? "gemm lt " : "gemm gemv ") + s.what;
        r.shape = "M=" + std::to_string(m) + " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
        r.us = us;
        r.bytes = static_cast<double>(w_bytes + m * s.k * 2 + m * s.n * dtype_size(s.out));
        r.flops = 2.0 * m * s.k * s.n;
        r.note = use == GemvUse::kNever ? "TB/s of weight bytes; cuBLAS via PyTorch 1.8-3.4 TB/s at M=1"
                                        : "kernels::gemv, the same product";
        rows.push_back(r);
      }
    }
  }
  return bench_gemm_large_m(ctx, rows);
}

}  // namespace tk::bench
