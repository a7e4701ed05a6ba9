// FP8 GEMMs at Llama-3-8B's shapes (q/k/v, o, gate/up, down) for M = 1, 16, 64, 1024, 4096:
// cuBLASLt FP8 e4m3 with per-token x per-channel scales (outer vectors) against the bf16 GEMM of
// the same shape, and the FP8 product with its input quantization (quantize_fp8_rows) in front,
// which is what a layer pays. Small M is weight-bound (TB/s of weight bytes), large M
// compute-bound (TFLOP/s).
#include <string>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk::bench {

Status bench_fp8_gemm(const Context& ctx, std::vector<Row>& rows) {
  TK_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create());
  struct Shape2 {
    int64_t k, n;
    const char* what;
  };
  const Shape2 shapes[] = {{4096, 6144, "qkv"}, {4096, 4096, "o_proj"}, {4096, 28672, "gate_up"}, {14336, 4096, "down"}};
  constexpr int64_t kMaxM = 4096;
  for (const Shape2& s : shapes) {
    const size_t w_bf16 = static_cast<size_t>(s.k * s.n) * 2, w_fp8 = w_bf16 / 2;
    const int sets = rotation_sets(ctx, w_bf16 + w_fp8, 8);
    std::vector<DeviceBuffer> wb, wq, wscale;
    for (int i = 0; i < sets; ++i) {
      TK_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(w_bf16));
      TK_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::allocate(w_fp8));
      TK_ASSIGN_OR_RETURN(DeviceBuffer sc, DeviceBuffer::allocate(s.n * sizeof(float)));
      TK_RETURN_IF_ERROR(kernels::fill_random(b.data(), DType::kBF16, s.k * s.n, 10 + i, 0.f, 0.02f, ctx.stream));
      kernels::QuantizeFp8RowsParams p;  // the weight per output channel, as --quantization fp8 does
      p.x = b.data(), p.rows = s.n, p.cols = s.k, p.ld = s.k, p.q = q.data(), p.scales = static_cast<float*>(sc.data());
      TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(p, ctx.stream));
      wb.push_back(std::move(b)), wq.push_back(std::move(q)), wscale.push_back(std::move(sc));
    }
    TK_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate(kMaxM * s.k * 2));
    TK_ASSIGN_OR_RETURN(DeviceBuffer xq, DeviceBuffer::allocate(kMaxM * s.k));
    TK_ASSIGN_OR_RETURN(DeviceBuffer xs, DeviceBuffer::allocate(kMaxM * sizeof(float)));
    TK_ASSIGN_OR_RETURN(DeviceBuffer o, DeviceBuffer::allocate(kMaxM * s.n * 2));
    TK_RETURN_IF_ERROR(kernels::fill_random(x.data(), DType::kBF16, kMaxM * s.k, 7, 0.f, 1.f, ctx.stream));
    for (int64_t m : {1, 16, 64, 1024, 4096}) {
      kernels::QuantizeFp8RowsParams q;
      q.x = x.data(), q.rows = m, q.cols = s.k, q.ld = s.k, q.q = xq.data(), q.scales = static_cast<float*>(xs.data());
      TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(q, ctx.stream));
      Fp8GemmArgs f;
      f.x = xq.data(), f.x_scale = static_cast<float*>(xs.data()), f.out = o.data();
      f.m = m, f.n = s.n, f.k = s.k, f.per_row_scales = true;
      GemmArgs g;
      g.x = x.data(), g.out = o.data(), g.m = m, g.n = s.n, g.k = s.k;
      Status st;
      const double bf16_us = median_us(ctx, [&](int i) {
        g.w = wb[i % sets].data();
        if (st.ok()) (void)(st = gemm->matmul(g, ctx.stream));
      });
      const double fp8_us = median_us(ctx, [&](int i) {
        f.w = wq[i % sets].data(), f.w_scale = static_cast<float*>(wscale[i % sets].data());
        if (st.ok()) (void)(st = gemm->matmul_fp8(f, ctx.stream));
      });
      const double quant_fp8_us = median_us(ctx, [&](int i) {
        f.w = wq[i % sets].data(), f.w_scale = static_cast<float*>(wscale[i % sets].data());
        if (st.ok()) (void)(st = kernels::quantize_fp8_rows(q, ctx.stream));
        if (st.ok()) (void)(st = gemm->matmul_fp8(f, ctx.stream));
      });
      TK_RETURN_IF_ERROR(st);
      const std::string shape = "M=" + std::to_string(m) + " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
      const double flops = 2.0 * m * s.k * s.n;
      struct Variant {
        const char* name;
        double us;
        double bytes;
      };
      const Variant variants[] = {
          {"gemm bf16 ", bf16_us, static_cast<double>(w_bf16 + (m * s.k + m * s.n) * 2)},
          {"gemm fp8 ", fp8_us, static_cast<double>(w_fp8 + m * s.k + m * s.n * 2)},
          {"quantize+gemm fp8 ", quant_fp8_us, static_cast<double>(w_fp8 + m * s.k * 3 + m * s.n * 2)}};
      for (const Variant& v : variants) {
        Row r;
        r.kernel = std::string(v.name) + s.what;
        r.shape = shape;
        r.us = v.us;
        r.bytes = v.bytes;
        r.flops = flops;
        r.note = "fp8: e4m3, per-token x per-channel scales (cuBLASLt outer vectors)";
        rows.push_back(r);
      }
    }
  }
  return Status::ok_status();
}

}  // namespace tk::bench
