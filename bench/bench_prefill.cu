// Prefill attention at the bar shapes: causal, Llama-3-8B heads (32 q / 8 kv, head_dim 128),
// bf16, q read from inside the fused qkv rows, K/V from a paged cache (page 16, pages scattered).
// Compute-bound: reported as TFLOP/s of causal FLOPs, 4 * sum(L^2 / 2) * Hq * d. A head-size sweep
// (32, 64, 80, 96, 256 at 4x4096, the same head counts) and two FP8 KV cache rows (e4m3 K/V, the
// mma.sync kernel: kAuto routes fp8 there) close the table.
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

constexpr int kHq = 32, kHkv = 8, kPage = 16;

// One input set: qkv activations, the paged cache and the page table of `seqs` sequences of `len`.
struct PrefillSet {
  DeviceBuffer qkv, k, v, page_table;
};

// The bf16 cache `x` of `rows` head rows as fp8 e4m3 (per-row scales: random bytes, never NaN).
Result<DeviceBuffer> to_fp8(const DeviceBuffer& x, int64_t rows, int d, cudaStream_t stream) {
  TK_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::allocate(rows * d));
  TK_ASSIGN_OR_RETURN(DeviceBuffer scales, DeviceBuffer::allocate(rows * sizeof(float)));
  kernels::QuantizeFp8RowsParams qp;
  qp.x = x.data(), qp.rows = rows, qp.cols = d, qp.ld = d;
  qp.q = q.data(), qp.scales = static_cast<float*>(scales.data()), qp.dtype = DType::kBF16;
  TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(qp, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return Result<DeviceBuffer>(std::move(q));
}

Result<PrefillSet> make_set(int seqs, int len, int d, uint64_t seed, cudaStream_t stream, bool fp8) {
  const int64_t tokens = static_cast<int64_t>(seqs) * len;
  const int64_t qkv_width = (kHq + 2 * kHkv) * d;
  const int pages_per_seq = (len + kPage - 1) / kPage, num_pages = seqs * pages_per_seq;
  const int64_t cache_elems = static_cast<int64_t>(num_pages) * kHkv * kPage * d;
  PrefillSet s;
  TK_ASSIGN_OR_RETURN(s.qkv, DeviceBuffer::allocate(tokens * qkv_width * 2));
  TK_ASSIGN_OR_RETURN(s.k, DeviceBuffer::allocate(cache_elems * 2));
  TK_ASSIGN_OR_RETURN(s.v, DeviceBuffer::allocate(cache_elems * 2));
  TK_ASSIGN_OR_RETURN(s.page_table, DeviceBuffer::allocate(num_pages * sizeof(int32_t)));
  TK_RETURN_IF_ERROR(kernels::fill_random(s.qkv.data(), DType::kBF16, tokens * qkv_width, seed, 0.f, 1.f, stream));
  TK_RETURN_IF_ERROR(kernels::fill_random(s.k.data(), DType::kBF16, cache_elems, seed + 1, 0.f, 1.f, stream));
  TK_RETURN_IF_ERROR(kernels::fill_random(s.v.data(), DType::kBF16, cache_elems, seed + 2, 0.f, 1.f, stream));
  if (fp8) {
    TK_ASSIGN_OR_RETURN(s.k, to_fp8(s.k, cache_elems / d, d, stream));
    TK_ASSIGN_OR_RETURN(s.v, to_fp8(s.v, cache_elems / d, d, stream));
  }
  // Pages scattered over the pool like a cache that has been in use.
  std::vector<int32_t> table(num_pages);
  std::iota(table.begin(), table.end(), 0);
  std::shuffle(table.begin(), table.end(), std::mt19937(static_cast<uint32_t>(seed)));
  CUDA_CHECK(cudaMemcpyAsync(s.page_table.data(), table.data(), table.size() * sizeof(int32_t), cudaMemcpyHostToDevice,
                             stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
  return Result<PrefillSet>(std::move(s));
}

// d: the head size. Head sizes other than 128 and the FP8 KV cache have only the mma.sync kernel
// (kAuto picks it).
Status bench_shape(const Context& ctx, int seqs, int len, std::vector<Row>& rows, int d = 128, bool fp8 = false) {
  const int64_t tokens = static_cast<int64_t>(seqs) * len;
  const double qo_bytes = 2.0 * tokens * kHq * d * 2, kv_bytes = 2.0 * tokens * kHkv * d * (fp8 ? 1 : 2);
  const int sets = rotation_sets(ctx, static_cast<size_t>(qo_bytes + kv_bytes), 8);
  std::vector<PrefillSet> in;
  for (int i = 0; i < sets; ++i) {
    TK_ASSIGN_OR_RETURN(PrefillSet s, make_set(seqs, len, d, 1000 + 10 * i, ctx.stream, fp8));
    in.push_back(std::move(s));
  }
  std::vector<int32_t> starts(seqs + 1), lens(seqs, len);
  for (int s = 0; s <= seqs; ++s) starts[s] = s * len;
  TK_ASSIGN_OR_RETURN(DeviceBuffer starts_d, DeviceBuffer::allocate(starts.size() * 4));
  TK_ASSIGN_OR_RETURN(DeviceBuffer lens_d, DeviceBuffer::allocate(lens.size() * 4));
  TK_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::allocate(static_cast<size_t>(tokens) * kHq * d * 2));
  CUDA_CHECK(cudaMemcpy(starts_d.data(), starts.data(), starts.size() * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(lens_d.data(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice));

  kernels::PagedAttentionParams p;
  p.q_stride = (kHq + 2 * kHkv) * d;
  p.out = out.data();
  p.query_start = static_cast<const int32_t*>(starts_d.data());
  p.context_lens = static_cast<const int32_t*>(lens_d.data());
  p.max_pages_per_seq = (len + kPage - 1) / kPage;
  p.num_seqs = seqs, p.num_tokens = static_cast<int>(tokens), p.max_query_len = len, p.max_context_len = len;
  p.page_size = kPage, p.num_q_heads = kHq, p.num_kv_heads = kHkv, p.head_dim = d;
  p.scale = 1.f / std::sqrt(static_cast<float>(d)), p.dtype = DType::kBF16;
  p.kv_quant = {fp8, 0.37f, 1.9f};
  // The default (wgmma on Hopper) and the portable mma.sync kernel side by side.
  for (auto impl : {kernels::PrefillImpl::kAuto, kernels::PrefillImpl::kMmaSync}) {
    if ((d != 128 || fp8) && impl == kernels::PrefillImpl::kAuto) continue;  // the same kernel as kMmaSync
    Status st;
    const double us = median_us(ctx, [&](int i) {
      const PrefillSet& s = in[i % sets];
      p.q = s.qkv.data(), p.k_cache = s.k.data(), p.v_cache = s.v.data();
      p.page_table = static_cast<const int32_t*>(s.page_table.data());
      if (st.ok()) (void)(st = kernels::prefill_attention(p, ctx.stream, impl));
    });
    TK_RETURN_IF_ERROR(st);
    Row r;
    r.kernel = impl == kernels::PrefillImpl::kAuto ? "prefill_attention" : "prefill_attention mma.sync";
    if (fp8) r.kernel += " fp8kv";
    r.shape = std::to_string(seqs) + "x" + std::to_string(len) + " Hq=32 Hkv=8 d=" + std::to_string(d) +
              (fp8 ? " bf16 q, fp8 KV causal" : " bf16 causal");
    r.us = us;
    r.bytes = qo_bytes + kv_bytes;
    r.flops = 4.0 * seqs * (static_cast<double>(len) * len / 2) * kHq * d;
    r.note = impl == kernels::PrefillImpl::kAuto ? "bar >= 350 TFLOP/s (PyTorch FA2 265/322/341, cuDNN 441/540/581)"
             : fp8                                ? "FP8 KV cache (no bar); compare the bf16 mma.sync row of this shape"
                                                  : "FA2 kernel, for comparison";
    rows.push_back(r);
  }
  return Status::ok_status();
}

}  // namespace

Status bench_prefill_attention(const Context& ctx, std::vector<Row>& rows) {
  TK_RETURN_IF_ERROR(bench_shape(ctx, 16, 1024, rows));
  TK_RETURN_IF_ERROR(bench_shape(ctx, 4, 4096, rows));
  TK_RETURN_IF_ERROR(bench_shape(ctx, 1, 16384, rows));
  for (int d : {32, 64, 80, 96, 256}) TK_RETURN_IF_ERROR(bench_shape(ctx, 4, 4096, rows, d));
  TK_RETURN_IF_ERROR(bench_shape(ctx, 16, 1024, rows, 128, true));
  TK_RETURN_IF_ERROR(bench_shape(ctx, 4, 4096, rows, 128, true));
  return Status::ok_status();
}

}  // namespace tk::bench
