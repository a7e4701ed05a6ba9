// FP8 GEMMs at Llama-3-8B's shapes (q/k/v, o, gate/up, down) for M = 1 (decode) to 8192
// (prefill), against the bf16 GEMM of the same shape. Rows per shape:
//   bf16            cuBLASLt bf16
//   fp8 tensor      cuBLASLt FP8 e4m3, per-tensor scalar scales in its epilogue (per-tensor
//                   checkpoints; the FP8 GEMM's own speed)
//   fp8 scaled      per-token x per-channel as the CUDA backend runs it where cuBLASLt serves no
//                   outer vectors (the H200, CUDA 13): the scalar GEMM at kFp8ProductPrescale, then
//                   scale_fp8_product in place
//   quant+fp8 scl   quantize_fp8_rows (the input per token) in front of it: what a layer pays
//   scale pass      scale_fp8_product alone
//   quantize        quantize_fp8_rows alone (the input per token)
//   fp8 outer       cuBLASLt's outer-vector scales, where served (else the fp8 scaled rows say so)
// Those rows run cuBLASLt at every M (GemvUse::kNever). Then, at M = 1, 2, 4, 8, 16 (decode):
//   fp8 lt          cuBLASLt e4m3, per-tensor scalars (the "fp8 tensor" GEMM)
//   fp8 gemv        kernels::fp8_gemv, the same product (GemvUse::kAlways); matmul_fp8 takes it
//                   up to kFp8GemvAutoMaxM rows with TOKAMAK_FP8_GEMV=1. Timed one launch at a time,
//                   these rows do not see the GEMV's programmatic launch (its overlap with the
//                   kernel before it); bench latency does
// Small M is weight-bound (TB/s of the bytes the op must move, the weight's above all), large M
// compute-bound (TFLOP/s; the %ceil column is against the bf16 GEMM ceiling, so FP8 can pass 100%).
// Every GEMM row counts the bytes of the logical op (weight, x, out once), so rows compare directly.
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "gemm/gemm.h"
#include "kernels/kernels.h"

namespace tk::bench {

namespace {

struct LinearShape {
  int64_t k, n;
  const char* what;
};

// One shape's weights, rotated through so that L2 does not serve them: bf16 and its FP8 copy
// quantized per output channel (as --quantization fp8 does), with the channel scales.
struct RotatedWeights {
  std::vector<DeviceBuffer> bf16, fp8, scales;
  int sets = 0;
};

Result<RotatedWeights> make_weights(const Context& ctx, const LinearShape& s) {
  RotatedWeights w;
  const size_t bf16_bytes = static_cast<size_t>(s.k * s.n) * 2;
  w.sets = rotation_sets(ctx, bf16_bytes + bf16_bytes / 2, 8);
  for (int i = 0; i < w.sets; ++i) {
    TK_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(bf16_bytes));
    TK_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::allocate(bf16_bytes / 2));
    TK_ASSIGN_OR_RETURN(DeviceBuffer sc, DeviceBuffer::allocate(s.n * sizeof(float)));
    TK_RETURN_IF_ERROR(kernels::fill_random(b.data(), DType::kBF16, s.k * s.n, 10 + i, 0.f, 0.02f, ctx.stream));
    kernels::QuantizeFp8RowsParams p;
    p.x = b.data(), p.rows = s.n, p.cols = s.k, p.ld = s.k, p.q = q.data(), p.scales = static_cast<float*>(sc.data());
    TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(p, ctx.stream));
    w.bf16.push_back(std::move(b)), w.fp8.push_back(std::move(q)), w.scales.push_back(std::move(sc));
  }
  return Result<RotatedWeights>(std::move(w));  // moved: DeviceBuffer does not copy
}

// cuBLASLt's scalar FP8 GEMM and the GEMV side by side at decode's M; TB/s of the op's bytes.
Status bench_small_m(const Context& ctx, GemmRunner& gemm, const LinearShape& s, const RotatedWeights& w,
                     const DeviceBuffer& xq, const float* unit, const DeviceBuffer& out, std::vector<Row>& rows) {
  for (int64_t m : {1, 2, 4, 8, 16}) {
    Fp8GemmArgs f;
    f.x = xq.data(), f.x_scale = f.w_scale = unit, f.out = out.data(), f.m = m, f.n = s.n, f.k = s.k;
    Status st;
    auto timed = [&](GemvUse use) {
      gemm.set_fp8_gemv(use);
      return median_us(ctx, [&](int i) {
        f.w = w.fp8[i % w.sets].data();
        if (st.ok()) (void)(st = gemm.matmul_fp8(f, ctx.stream));
      });
    };
    const double lt_us = timed(GemvUse::kNever), gemv_us = timed(GemvUse::kAlways);
    gemm.set_fp8_gemv(GemvUse::kNever);
    TK_RETURN_IF_ERROR(st);
    const std::string shape = "M=" + std::to_string(m) + " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
    const double bytes = static_cast<double>(s.k * s.n + m * s.k + m * s.n * 2);
    for (auto [name, us, note] : {std::tuple{"fp8 lt ", lt_us, "cuBLASLt e4m3, per-tensor scalars"},
                                  std::tuple{"fp8 gemv ", gemv_us, "kernels::fp8_gemv, the same product"}}) {
      Row r;
      r.kernel = std::string(name) + s.what;
      r.shape = shape;
      r.us = us, r.bytes = bytes, r.flops = 2.0 * m * s.k * s.n, r.note = note;
      rows.push_back(r);
    }
  }
  return Status::ok_status();
}

}  // namespace

Status bench_fp8_gemm(const Context& ctx, std::vector<Row>& rows) {
  TK_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create());
  gemm->set_fp8_gemv(GemvUse::kNever);  // the GEMV has rows of its own below
  const LinearShape shapes[] = {{4096, 6144, "qkv"}, {4096, 4096, "o_proj"}, {4096, 28672, "gate_up"}, {14336, 4096, "down"}};
  const int64_t ms[] = {1, 16, 64, 256, 1024, 8192};
  constexpr int64_t kMaxM = 8192;
  TK_ASSIGN_OR_RETURN(DeviceBuffer prescale, DeviceBuffer::allocate(sizeof(float)));
  CUDA_CHECK(cudaMemcpyAsync(prescale.data(), &kFp8ProductPrescale, sizeof(float), cudaMemcpyHostToDevice, ctx.stream));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  const float* unit = static_cast<const float*>(prescale.data());
  bool outer_served = true;
  for (const LinearShape& s : shapes) {
    TK_ASSIGN_OR_RETURN(RotatedWeights w, make_weights(ctx, s));
    TK_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::allocate(kMaxM * s.k * 2));
    TK_ASSIGN_OR_RETURN(DeviceBuffer xq, DeviceBuffer::allocate(kMaxM * s.k));
    TK_ASSIGN_OR_RETURN(DeviceBuffer xs, DeviceBuffer::allocate(kMaxM * sizeof(float)));
    TK_ASSIGN_OR_RETURN(DeviceBuffer o, DeviceBuffer::allocate(kMaxM * s.n * 2));
    TK_RETURN_IF_ERROR(kernels::fill_random(x.data(), DType::kBF16, kMaxM * s.k, 7, 0.f, 1.f, ctx.stream));
    for (int64_t m : ms) {
      kernels::QuantizeFp8RowsParams q;
      q.x = x.data(), q.rows = m, q.cols = s.k, q.ld = s.k, q.q = xq.data(), q.scales = static_cast<float*>(xs.data());
      TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(q, ctx.stream));
      GemmArgs g;
      g.x = x.data(), g.out = o.data(), g.m = m, g.n = s.n, g.k = s.k;
      Fp8GemmArgs f;  // scalar mode at the constant scales: the tensor row and the scaled rows
      f.x = xq.data(), f.x_scale = f.w_scale = unit, f.out = o.data(), f.m = m, f.n = s.n, f.k = s.k;
      kernels::ScaleFp8ProductParams sp;
      sp.out = o.data(), sp.m = m, sp.n = s.n, sp.ldo = s.n, sp.x_scale = static_cast<const float*>(xs.data());
      sp.gain = kFp8ProductGain;
      Status st;
      auto fp8_gemm = [&](int i) {
        f.w = w.fp8[i % w.sets].data();
        if (st.ok()) (void)(st = gemm->matmul_fp8(f, ctx.stream));
      };
      auto scale_pass = [&](int i) {
        sp.w_scale = static_cast<const float*>(w.scales[i % w.sets].data());
        if (st.ok()) (void)(st = kernels::scale_fp8_product(sp, ctx.stream));
      };
      const double bf16_us = median_us(ctx, [&](int i) {
        g.w = w.bf16[i % w.sets].data();
        if (st.ok()) (void)(st = gemm->matmul(g, ctx.stream));
      });
      const double tensor_us = median_us(ctx, fp8_gemm);
      const double scaled_us = median_us(ctx, [&](int i) { fp8_gemm(i), scale_pass(i); });
      const double quant_scaled_us = median_us(ctx, [&](int i) {
        if (st.ok()) (void)(st = kernels::quantize_fp8_rows(q, ctx.stream));
        fp8_gemm(i), scale_pass(i);
      });
      const double pass_us = median_us(ctx, scale_pass);
      const double quant_us = median_us(ctx, [&](int) {
        if (st.ok()) (void)(st = kernels::quantize_fp8_rows(q, ctx.stream));
      });
      TK_RETURN_IF_ERROR(st);
      double outer_us = -1;
      if (outer_served) {
        Fp8GemmArgs v = f;
        v.per_row_scales = true, v.x_scale = static_cast<const float*>(xs.data());
        v.w = w.fp8[0].data(), v.w_scale = static_cast<const float*>(w.scales[0].data());
        const Status probe = gemm->matmul_fp8(v, ctx.stream);
        if (probe.code() == StatusCode::kUnsupported) {
          outer_served = false;
        } else {
          TK_RETURN_IF_ERROR(probe);
          outer_us = median_us(ctx, [&](int i) {
            v.w = w.fp8[i % w.sets].data(), v.w_scale = static_cast<const float*>(w.scales[i % w.sets].data());
            if (st.ok()) (void)(st = gemm->matmul_fp8(v, ctx.stream));
          });
          TK_RETURN_IF_ERROR(st);
        }
      }
      const std::string shape = "M=" + std::to_string(m) + " K=" + std::to_string(s.k) + " N=" + std::to_string(s.n);
      const double flops = 2.0 * m * s.k * s.n;
      const double fp8_bytes = static_cast<double>(s.k * s.n + m * s.k + m * s.n * 2);
      struct Variant {
        const char* name;
        double us, bytes, flops;
        const char* note;
      };
      const Variant variants[] = {
          {"bf16 ", bf16_us, static_cast<double>((s.k * s.n + m * s.k + m * s.n) * 2), flops, "cuBLASLt bf16"},
          {"fp8 tensor ", tensor_us, fp8_bytes, flops, "cuBLASLt e4m3, per-tensor scalars"},
          {"fp8 scaled ", scaled_us, fp8_bytes, flops,
           outer_served ? "per-token x per-channel: scalar GEMM + scale pass"
                        : "per-token x per-channel: scalar GEMM + scale pass (no outer vectors served here)"},
          {"quant+fp8 scl ", quant_scaled_us, fp8_bytes + m * s.k * 2.0, flops, "the input quantized first"},
          {"scale pass ", pass_us, m * s.n * 4.0 + (m + s.n) * 4.0, 0, "scale_fp8_product in place"},
          {"quantize ", quant_us, m * s.k * 3.0 + m * 4.0, 0, "quantize_fp8_rows per token"},
          {"fp8 outer ", outer_us, fp8_bytes, flops, "cuBLASLt outer-vector scales"}};
      for (const Variant& v : variants) {
        if (v.us < 0) continue;
        Row r;
        r.kernel = std::string(v.name) + s.what;
        r.shape = shape;
        r.us = v.us, r.bytes = v.bytes, r.flops = v.flops, r.note = v.note;
        rows.push_back(r);
      }
    }
    TK_RETURN_IF_ERROR(bench_small_m(ctx, *gemm, s, w, xq, unit, o, rows));
  }
  return Status::ok_status();
}

}  // namespace tk::bench
