// GEMMs at Llama-3-8B decode shapes through cuBLASLt: M = 1, 8, 32 rows against the q/k/v,
// o, gate/up and down weights. Memory-bound at these M: reported as TB/s of weight bytes.
#include <string>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk::bench {

Status bench_gemm(const Context& ctx, std::vector<Row>& rows) {
  TK_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create());
  struct Shape2 {
    int64_t k, n;
    const char* what;
  };
  const Shape2 shapes[] = {{4096, 6144, "qkv"}, {4096, 4096, "o_proj"}, {4096, 28672, "gate_up"}, {14336, 4096, "down"}};
  for (const Shape2& s : shapes) {
    const size_t w_bytes = static_cast<size_t>(s.k * s.n) * 2;
    const int sets = rotation_sets(ctx, w_bytes, 16);
    std::vector<DeviceBuffer> ws;
    for (int i = 0; i < sets; ++i) {
      TK_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::allocate(w_bytes));
      TK_RETURN_IF_ERROR(kernels::fill_random(w.data(), DType::kBF16, s.k * s.n, 10 + i, 0.f, 0.02f, ctx.stream));
      ws.push_back(std::move(w));
    }
    for (int64_t m : {1, 8, 32}) {
      TK_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate(m * s.k * 2));
      TK_ASSIGN_OR_RETURN(DeviceBuffer o, DeviceBuffer::allocate(m * s.n * 2));
      TK_RETURN_IF_ERROR(kernels::fill_random(x.data(), DType::kBF16, m * s.k, 7, 0.f, 1.f, ctx.stream));
      GemmArgs g;
      g.x = x.data(), g.out = o.data(), g.m = m, g.n = s.n, g.k = s.k;
      Status st;
      double us = median_us(ctx, [&](int i) {
        g.w = ws[i % sets].data();
        if (st.ok()) (void)(st = gemm->matmul(g, ctx.stream));
      });
      TK_RETURN_IF_ERROR(st);
      Row r;
      r.kernel = std::string("gemm ") + s.what;
      r.shape = "M=" + std::to_string(m) + " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
      r.us = us;
      r.bytes = static_cast<double>(w_bytes + (m * s.k + m * s.n) * 2);
      r.flops = 2.0 * m * s.k * s.n;
      r.note = "TB/s of weight bytes; cuBLAS via PyTorch 1.8-3.4 TB/s at M=1";
      rows.push_back(r);
    }
  }
  return Status::ok_status();
}

}  // namespace tk::bench
