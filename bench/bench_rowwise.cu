// Row-wise kernels at Llama-3-8B shapes (hidden 4096, 32 q / 8 kv heads of 128, inter 14336,
// page 16): fused add+RMSNorm, RoPE+KV store, SiLU-mul and the embedding gather, 1 to 8192 tokens;
// add+RMSNorm and SiLU-mul writing the fp8 input of the next FP8 linear themselves ("-> fp8")
// beside the unfused pair they replace (the op, then quantize_fp8_rows), both rows with the fused
// op's bytes (equal work: the pair's GB/s is what it achieves on the fused op's traffic); and the
// same fp8-writing ops reading an FP8 GEMM's raw product (scales deferred) beside
// scale_fp8_product + the op (bytes: the fused op's, the scale vectors not counted).
// All memory-bound: bytes are the fewest the op must move (each input read once, each output
// written once), inputs random (fill_random) and rotated so that L2 does not serve them.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "kernels/kernels.h"

namespace tk::bench {
namespace {

constexpr int64_t kHidden = 4096, kInter = 14336, kVocab = 128256;
constexpr int kHq = 32, kHkv = 8, kHeadDim = 128, kPage = 16;
const int64_t kTokenCounts[] = {1, 16, 128, 1024, 8192};
const char* kBar = "bar: >= 3.5 TB/s at large token counts";

Result<DeviceBuffer> random_buffer(int64_t count, DType dtype, uint64_t seed, cudaStream_t stream, float mean = 0.f) {
  TK_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(static_cast<size_t>(count) * dtype_size(dtype)));
  TK_RETURN_IF_ERROR(kernels::fill_random(b.data(), dtype, count, seed, mean, 1.f, stream));
  return Result<DeviceBuffer>(std::move(b));
}

Result<DeviceBuffer> int_buffer(const std::vector<int32_t>& v) {
  TK_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::allocate(v.size() * 4));
  CUDA_CHECK(cudaMemcpy(b.data(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
  return Result<DeviceBuffer>(std::move(b));
}

Row make_row(const std::string& kernel, int64_t t, const std::string& shape, double us, double bytes,
             const char* note = "") {
  Row r;
  r.kernel = kernel, r.shape = "T=" + std::to_string(t) + " " + shape, r.us = us, r.bytes = bytes, r.note = note;
  return r;
}

// How an op's output reaches an FP8 linear: a compute-dtype output only, that output quantized
// by the op itself, or by quantize_fp8_rows after it.
enum class Fp8Out { kNone, kFused, kPair };

// The scratch of an fp8 output: values and per-row scales.
struct Fp8Scratch {
  DeviceBuffer q, scales;
  static Result<Fp8Scratch> make(int64_t rows, int64_t cols) {
    Fp8Scratch f;
    TK_ASSIGN_OR_RETURN(f.q, DeviceBuffer::allocate(static_cast<size_t>(rows * cols)));
    TK_ASSIGN_OR_RETURN(f.scales, DeviceBuffer::allocate(static_cast<size_t>(rows) * 4));
    return Result<Fp8Scratch>(std::move(f));
  }
  Status quantize(const void* x, int64_t rows, int64_t cols, cudaStream_t stream) const {
    kernels::QuantizeFp8RowsParams p;
    p.x = x, p.rows = rows, p.cols = cols, p.ld = cols, p.q = q.data(), p.scales = static_cast<float*>(scales.data());
    return kernels::quantize_fp8_rows(p, stream);
  }
};

const char* fp8_suffix(Fp8Out mode) {
  return mode == Fp8Out::kFused ? " -> fp8" : mode == Fp8Out::kPair ? " + quantize_fp8_rows" : "";
}

// How the op's input (delta, gate_up) comes from an FP8 GEMM whose scales were left for after it:
// already scaled, scaled by scale_fp8_product before the op (timed with it), or by the op itself.
enum class RawIn { kScaled, kScalePass, kFused };

const char* raw_prefix(RawIn mode) {
  return mode == RawIn::kScalePass ? "scale_fp8_product + " : "";
}
const char* raw_suffix(RawIn mode) { return mode == RawIn::kFused ? " <- raw fp8 product" : ""; }

// The scales of a raw product: x_scale [rows], w_scale [cols] (random values: the time does not
// depend on them).
struct RawScales {
  DeviceBuffer x, w;
  static Result<RawScales> make(int64_t rows, int64_t cols, cudaStream_t stream) {
    RawScales r;
    TK_ASSIGN_OR_RETURN(r.x, random_buffer(rows, DType::kF32, 901, stream, 0.008f));
    TK_ASSIGN_OR_RETURN(r.w, random_buffer(cols, DType::kF32, 902, stream, 0.0004f));
    return Result<RawScales>(std::move(r));
  }
  kernels::Fp8ProductScales scales() const {
    return {static_cast<const float*>(x.data()), static_cast<const float*>(w.data()), 1.f};
  }
  Status scale_pass(void* y, int64_t rows, int64_t cols, cudaStream_t stream) const {
    kernels::ScaleFp8ProductParams p;
    p.out = y, p.m = rows, p.n = cols, p.ldo = cols, p.x_scale = static_cast<const float*>(x.data());
    p.w_scale = static_cast<const float*>(w.data());
    return kernels::scale_fp8_product(p, stream);
  }
};

Status bench_add_rmsnorm(const Context& ctx, int64_t t, std::vector<Row>& rows, Fp8Out mode = Fp8Out::kNone,
                         RawIn raw = RawIn::kScaled) {
  const int64_t n = t * kHidden;
  const int sets = rotation_sets(ctx, static_cast<size_t>(n) * 2 * 3);
  std::vector<DeviceBuffer> res, delta, out;
  for (int s = 0; s < sets; ++s) {
    TK_ASSIGN_OR_RETURN(auto r, random_buffer(n, DType::kBF16, 100 + s, ctx.stream));
    TK_ASSIGN_OR_RETURN(auto d, random_buffer(n, DType::kBF16, 200 + s, ctx.stream));
    TK_ASSIGN_OR_RETURN(auto o, random_buffer(n, DType::kBF16, 300 + s, ctx.stream));
    res.push_back(std::move(r)), delta.push_back(std::move(d)), out.push_back(std::move(o));
  }
  TK_ASSIGN_OR_RETURN(auto w, random_buffer(kHidden, DType::kBF16, 7, ctx.stream, 1.f));
  TK_ASSIGN_OR_RETURN(auto f8, Fp8Scratch::make(t, kHidden));
  TK_ASSIGN_OR_RETURN(auto rs, RawScales::make(t, kHidden, ctx.stream));
  Status st;
  const double us = median_us(ctx, [&](int i) {
    kernels::RmsNormParams p;
    p.residual = res[i % sets].data(), p.delta = delta[i % sets].data(), p.out = out[i % sets].data();
    p.weight = w.data(), p.num_tokens = t, p.hidden = kHidden;
    if (mode == Fp8Out::kFused) p.out = nullptr, p.q = f8.q.data(), p.q_scales = static_cast<float*>(f8.scales.data());
    if (raw == RawIn::kFused) p.delta_scales = rs.scales();
    if (raw == RawIn::kScalePass && st.ok()) (void)(st = rs.scale_pass(delta[i % sets].data(), t, kHidden, ctx.stream));
    if (st.ok()) (void)(st = kernels::rmsnorm(p, ctx.stream));
    if (mode == Fp8Out::kPair && st.ok()) (void)(st = f8.quantize(p.out, t, kHidden, ctx.stream));
  });
  TK_RETURN_IF_ERROR(st);
  // residual and delta read, residual and out written (bf16, or fp8 and a scale per row); the weight once.
  const double bytes = mode == Fp8Out::kNone ? 4.0 * n * 2 + kHidden * 2 : 3.0 * n * 2 + n + 4.0 * t + kHidden * 2;
  rows.push_back(make_row(std::string(raw_prefix(raw)) + "add+rmsnorm bf16" + raw_suffix(raw) + fp8_suffix(mode), t,
                          "hidden=4096", us, bytes, mode == Fp8Out::kNone ? kBar : ""));
  return Status::ok_status();
}

Status bench_rope_kv_store(const Context& ctx, int64_t t, std::vector<Row>& rows) {
  const int64_t stride = (kHq + 2 * kHkv) * kHeadDim;
  const int num_pages = static_cast<int>((t + kPage - 1) / kPage);
  const int64_t cache_n = int64_t{num_pages} * kHkv * kPage * kHeadDim;
  const int sets = rotation_sets(ctx, static_cast<size_t>(t * stride + 2 * cache_n) * 2);
  std::vector<DeviceBuffer> qkv, kc, vc;
  for (int s = 0; s < sets; ++s) {
    TK_ASSIGN_OR_RETURN(auto q, random_buffer(t * stride, DType::kBF16, 400 + s, ctx.stream));
    TK_ASSIGN_OR_RETURN(auto k, random_buffer(cache_n, DType::kBF16, 500 + s, ctx.stream));
    TK_ASSIGN_OR_RETURN(auto v, random_buffer(cache_n, DType::kBF16, 600 + s, ctx.stream));
    qkv.push_back(std::move(q)), kc.push_back(std::move(k)), vc.push_back(std::move(v));
  }
  // A prefill's slots: whole pages in a shuffled page order; positions 0..t-1.
  std::vector<int32_t> pages(num_pages), slots(t), pos(t);
  std::iota(pages.begin(), pages.end(), 0);
  std::shuffle(pages.begin(), pages.end(), std::mt19937(3));
  for (int64_t i = 0; i < t; ++i) slots[i] = pages[i / kPage] * kPage + i % kPage, pos[i] = static_cast<int32_t>(i);
  std::vector<float> freq(kHeadDim / 2);
  for (int i = 0; i < kHeadDim / 2; ++i) freq[i] = static_cast<float>(std::pow(500000.0, -2.0 * i / kHeadDim));
  TK_ASSIGN_OR_RETURN(auto dslots, int_buffer(slots));
  TK_ASSIGN_OR_RETURN(auto dpos, int_buffer(pos));
  TK_ASSIGN_OR_RETURN(auto dfreq, DeviceBuffer::allocate(freq.size() * 4));
  CUDA_CHECK(cudaMemcpy(dfreq.data(), freq.data(), freq.size() * 4, cudaMemcpyHostToDevice));
  Status st;
  const double us = median_us(ctx, [&](int i) {
    kernels::RopeKvStoreParams p;
    p.qkv = qkv[i % sets].data(), p.k_cache = kc[i % sets].data(), p.v_cache = vc[i % sets].data();
    p.positions = static_cast<const int32_t*>(dpos.data()), p.slot_mapping = static_cast<const int32_t*>(dslots.data());
    p.inv_freq = static_cast<const float*>(dfreq.data()), p.page_size = kPage, p.num_pages = num_pages;
    p.heads = {t, stride, kHq, kHkv, kHeadDim};
    if (st.ok()) (void)(st = kernels::rope_kv_store(p, ctx.stream));
  });
  TK_RETURN_IF_ERROR(st);
  // qkv read; q written back; k and v written to the cache; positions and slots read.
  const double bytes = 2.0 * t * (stride + kHq * kHeadDim + 2 * kHkv * kHeadDim) + 8.0 * t;
  rows.push_back(make_row("rope+kv_store bf16", t, "32/8 heads d=128 page=16", us, bytes, kBar));
  return Status::ok_status();
}

Status bench_silu_mul(const Context& ctx, int64_t t, std::vector<Row>& rows, Fp8Out mode = Fp8Out::kNone,
                      RawIn raw = RawIn::kScaled) {
  const int sets = rotation_sets(ctx, static_cast<size_t>(t * kInter) * 2 * 3);
  std::vector<DeviceBuffer> gu, out;
  for (int s = 0; s < sets; ++s) {
    TK_ASSIGN_OR_RETURN(auto g, random_buffer(t * 2 * kInter, DType::kBF16, 700 + s, ctx.stream));
    TK_ASSIGN_OR_RETURN(auto o, random_buffer(t * kInter, DType::kBF16, 800 + s, ctx.stream));
    gu.push_back(std::move(g)), out.push_back(std::move(o));
  }
  TK_ASSIGN_OR_RETURN(auto f8, Fp8Scratch::make(t, kInter));
  TK_ASSIGN_OR_RETURN(auto rs, RawScales::make(t, 2 * kInter, ctx.stream));
  Status st;
  const double us = median_us(ctx, [&](int i) {
    kernels::SiluMulParams p{gu[i % sets].data(), out[i % sets].data(), t, kInter, DType::kBF16};
    if (mode == Fp8Out::kFused) p.out = nullptr, p.q = f8.q.data(), p.q_scales = static_cast<float*>(f8.scales.data());
    if (raw == RawIn::kFused) p.gate_up_scales = rs.scales();
    if (raw == RawIn::kScalePass && st.ok()) (void)(st = rs.scale_pass(gu[i % sets].data(), t, 2 * kInter, ctx.stream));
    if (st.ok()) (void)(st = kernels::silu_mul(p, ctx.stream));
    if (mode == Fp8Out::kPair && st.ok()) (void)(st = f8.quantize(p.out, t, kInter, ctx.stream));
  });
  TK_RETURN_IF_ERROR(st);
  // gate and up read; out written (bf16, or fp8 and a scale per row).
  const double bytes = mode == Fp8Out::kNone ? 3.0 * t * kInter * 2 : 2.0 * t * kInter * 2 + t * kInter + 4.0 * t;
  rows.push_back(make_row(std::string(raw_prefix(raw)) + "silu_mul bf16" + raw_suffix(raw) + fp8_suffix(mode), t,
                          "inter=14336", us, bytes));
  return Status::ok_status();
}

Status bench_embedding(const Context& ctx, const DeviceBuffer& table, int64_t t, std::vector<Row>& rows) {
  const int sets = 16;  // the table (1 GB) is far larger than L2; fresh ids per set
  std::vector<DeviceBuffer> ids, out;
  std::mt19937 rng(11);
  for (int s = 0; s < sets; ++s) {
    std::vector<int32_t> v(t);
    for (auto& x : v) x = static_cast<int32_t>(rng() % kVocab);
    TK_ASSIGN_OR_RETURN(auto d, int_buffer(v));
    TK_ASSIGN_OR_RETURN(auto o, DeviceBuffer::allocate(t * kHidden * 2));
    ids.push_back(std::move(d)), out.push_back(std::move(o));
  }
  Status st;
  const double us = median_us(ctx, [&](int i) {
    kernels::EmbeddingParams p{table.data(), static_cast<const int32_t*>(ids[i % sets].data()), out[i % sets].data(),
                               t, kHidden, kVocab, DType::kBF16};
    if (st.ok()) (void)(st = kernels::embedding(p, ctx.stream));
  });
  TK_RETURN_IF_ERROR(st);
  rows.push_back(make_row("embedding bf16", t, "vocab=128256 hidden=4096", us, 2.0 * t * kHidden * 2 + 4.0 * t));
  return Status::ok_status();
}

}  // namespace

Status bench_rowwise(const Context& ctx, std::vector<Row>& rows) {
  for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_add_rmsnorm(ctx, t, rows));
  for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_rope_kv_store(ctx, t, rows));
  for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_silu_mul(ctx, t, rows));
  for (Fp8Out mode : {Fp8Out::kPair, Fp8Out::kFused}) {
    for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_add_rmsnorm(ctx, t, rows, mode));
    for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_silu_mul(ctx, t, rows, mode));
  }
  // The raw product of the FP8 GEMM before (scales deferred): its scale pass then the fused op,
  // against the op applying the scales itself (not wired into the model yet).
  for (RawIn raw : {RawIn::kScalePass, RawIn::kFused}) {
    for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_add_rmsnorm(ctx, t, rows, Fp8Out::kFused, raw));
    for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_silu_mul(ctx, t, rows, Fp8Out::kFused, raw));
  }
  TK_ASSIGN_OR_RETURN(auto table, random_buffer(kVocab * kHidden, DType::kBF16, 9, ctx.stream));
  for (int64_t t : kTokenCounts) TK_RETURN_IF_ERROR(bench_embedding(ctx, table, t, rows));
  return Status::ok_status();
}

}  // namespace tk::bench
