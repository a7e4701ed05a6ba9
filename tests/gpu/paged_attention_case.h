// One paged-attention case for the decode and prefill kernel tests: a batch of sequences laid
// out over a shuffled page pool, the fp32 answer of the CPU twin ref::paged_attention, and the
// device copies with a filled kernels::PagedAttentionParams. Everything the kernel must not read
// is NaN (the rest of the qkv row, every cache slot no position owns, hence whole pages nobody
// owns too) and every page-table row ends in at least one far-out-of-range entry, so a stray read
// fails as loudly as a wrong one. The output is left for the caller to poison before each run.
// An FP8 KV cache case (fp8) quantizes the fp32 cache once on the host (f32_to_fp8_e4m3(x /
// scale): NaN slots stay NaN) and hands the kernel and the twin the same bytes, so only the
// kernel's own arithmetic (fp16 Q/P, fp32 accumulation) separates them: kFp8Tolerance.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "gpu_util.h"
#include "kernels/kernels.h"
#include "ref/ref.h"

namespace tk::gpu_test {

struct PagedSeq {
  int new_tokens;  // L: query rows of this step
  int context;     // C >= L: cache positions the last query row sees
};

struct PagedCase {
  std::vector<PagedSeq> seqs;
  int num_q_heads = 32;
  int num_kv_heads = 8;
  int head_dim = 128;
  int page_size = 16;
  DType dtype = DType::kBF16;
  int extra_stride = 0;  // q_stride = (Hq + 2 Hkv) * head_dim + extra_stride
  float q_std = 1.f;     // larger -> more peaked softmax rows
  uint32_t seed = 1;
  bool fp8 = false;      // FP8 KV cache: K/V as e4m3 of x / k_scale, x / v_scale
  float k_scale = 1.f, v_scale = 1.f;
  float kv_std = 1.f;    // of the random K/V values (large against the scales: saturated bytes)
  double tolerance() const;
};

// The bound for FP8 KV cases: the kernel reads the twin's exact bytes and dequantizes exactly, so
// what is left is fp16 Q and P in the MMAs and the output's rounding (~1e-3 rms for a bf16
// output; rows of head_dim 32 reached 2.7e-3 on the H200); 2.5 times tighter than kHalfTolerance.
constexpr double kFp8Tolerance = 4e-3;
inline double PagedCase::tolerance() const { return fp8 ? kFp8Tolerance : kHalfTolerance; }

// Bytes on the device (an fp8 cache), and back.
inline DeviceArray device_bytes(const std::vector<uint8_t>& b) {
  DeviceArray a(b.size(), DType::kU8);
  CUDA_CHECK(cudaMemcpy(a.data(), b.data(), b.size(), cudaMemcpyHostToDevice));
  return a;
}
inline std::vector<uint8_t> host_bytes(const DeviceArray& a) {
  std::vector<uint8_t> b(a.size());
  CUDA_CHECK(cudaMemcpy(b.data(), a.data(), b.size(), cudaMemcpyDeviceToHost));
  return b;
}
inline std::vector<uint8_t> quantize_fp8(const std::vector<float>& x, float scale) {
  std::vector<uint8_t> q(x.size());
  for (size_t i = 0; i < x.size(); ++i) q[i] = f32_to_fp8_e4m3(x[i] / scale);
  return q;
}

// Device copies of one case, its kernel params, and the twin's answer.
struct PreparedAttention {
  DeviceArray q, k, v, out, query_start, context_lens, page_table;
  kernels::PagedAttentionParams params;
  std::vector<int32_t> starts;  // [num_seqs + 1] query_start on the host
  std::vector<float> want;      // [T, Hq * head_dim]
};

// Page-table entry past a sequence's pages: reading through it is an illegal address.
constexpr int kNoPage = 1 << 30;

// Pages handed out in a random order over the pool; every slot no position owns is NaN.
inline void fill_paged_cache(const PagedCase& c, int num_pages, int max_pages, std::mt19937& rng,
                             std::vector<int32_t>& page_table, std::vector<float>& k, std::vector<float>& v) {
  const int ps = c.page_size, num_seqs = static_cast<int>(c.seqs.size());
  std::vector<int32_t> pool(num_pages);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  page_table.assign(static_cast<size_t>(num_seqs) * max_pages, kNoPage);
  const size_t page_elems = static_cast<size_t>(c.num_kv_heads) * ps * c.head_dim;
  k = random_floats(num_pages * page_elems, c.seed + 1, c.kv_std);
  v = random_floats(num_pages * page_elems, c.seed + 2, c.kv_std);
  std::vector<bool> used(static_cast<size_t>(num_pages) * ps, false);  // (page, slot) holds a position
  for (int s = 0, next = 0; s < num_seqs; ++s)
    for (int pos = 0; pos < c.seqs[s].context; ++pos) {
      int32_t& entry = page_table[static_cast<size_t>(s) * max_pages + pos / ps];
      if (pos % ps == 0) entry = pool[next++];
      used[static_cast<size_t>(entry) * ps + pos % ps] = true;
    }
  for (size_t slot = 0; slot < used.size(); ++slot) {
    if (used[slot]) continue;
    const size_t page = slot / ps, in_page = slot % ps;
    for (int h = 0; h < c.num_kv_heads; ++h)
      for (int i = 0; i < c.head_dim; ++i) {
        const size_t at = page * page_elems + (static_cast<size_t>(h) * ps + in_page) * c.head_dim + i;
        k[at] = v[at] = NAN;
      }
  }
  round_to(k, c.dtype);
  round_to(v, c.dtype);
}

inline PreparedAttention prepare_attention(const PagedCase& c) {
  PreparedAttention r;
  const int num_seqs = static_cast<int>(c.seqs.size()), d = c.head_dim, ps = c.page_size;
  std::vector<int32_t> context_lens(num_seqs);
  r.starts.assign(num_seqs + 1, 0);
  int max_q = 0, max_c = 0, max_pages = 1, owned_pages = 0;
  for (int s = 0; s < num_seqs; ++s) {
    r.starts[s + 1] = r.starts[s] + c.seqs[s].new_tokens;
    context_lens[s] = c.seqs[s].context;
    max_q = std::max(max_q, c.seqs[s].new_tokens);
    max_c = std::max(max_c, c.seqs[s].context);
    const int pages = (c.seqs[s].context + ps - 1) / ps;
    max_pages = std::max(max_pages, pages + 1);  // + 1: a trailing out-of-range entry in every row
    owned_pages += pages;
  }
  const int num_tokens = r.starts.back(), num_pages = owned_pages + 3;  // 3 pages nobody owns: NaN throughout
  std::mt19937 rng(c.seed);
  std::vector<int32_t> page_table;
  std::vector<float> k, v;
  fill_paged_cache(c, num_pages, max_pages, rng, page_table, k, v);

  // q inside a qkv row: q heads first, then NaN where k, v (and padding) would be.
  const int64_t q_width = static_cast<int64_t>(c.num_q_heads) * d;
  const int64_t q_stride = static_cast<int64_t>(c.num_q_heads + 2 * c.num_kv_heads) * d + c.extra_stride;
  std::vector<float> qkv = random_floats(static_cast<size_t>(num_tokens) * q_stride, c.seed + 3, c.q_std);
  for (int t = 0; t < num_tokens; ++t)
    for (int64_t i = q_width; i < q_stride; ++i) qkv[t * q_stride + i] = NAN;
  round_to(qkv, c.dtype);

  ref::AttentionParams rp;
  rp.heads = {num_tokens, q_stride, c.num_q_heads, c.num_kv_heads, d};
  rp.scale = 1.f / std::sqrt(static_cast<float>(d));
  rp.num_seqs = num_seqs;
  rp.query_start = r.starts.data();
  rp.context_lens = context_lens.data();
  rp.page_table = page_table.data();
  rp.max_pages_per_seq = max_pages;
  r.want.assign(static_cast<size_t>(num_tokens) * q_width, 0.f);
  r.q = DeviceArray::from(qkv, c.dtype);
  if (c.fp8) {
    std::vector<uint8_t> k8 = quantize_fp8(k, c.k_scale), v8 = quantize_fp8(v, c.v_scale);
    ref::PagedKv cache{nullptr, nullptr, num_pages, ps, k8.data(), v8.data(), c.k_scale, c.v_scale};
    ref::paged_attention(qkv.data(), cache, rp, r.want.data());
    r.k = device_bytes(k8);
    r.v = device_bytes(v8);
  } else {
    ref::paged_attention(qkv.data(), ref::PagedKv{k.data(), v.data(), num_pages, ps}, rp, r.want.data());
    r.k = DeviceArray::from(k, c.dtype);
    r.v = DeviceArray::from(v, c.dtype);
  }
  r.out = DeviceArray(static_cast<size_t>(num_tokens) * q_width, c.dtype);
  r.query_start = DeviceArray::from_ints(r.starts);
  r.context_lens = DeviceArray::from_ints(context_lens);
  r.page_table = DeviceArray::from_ints(page_table);

  kernels::PagedAttentionParams& p = r.params;
  p.q = r.q.data(), p.q_stride = q_stride, p.k_cache = r.k.data(), p.v_cache = r.v.data(), p.out = r.out.data();
  p.query_start = r.query_start.as<int32_t>(), p.context_lens = r.context_lens.as<int32_t>();
  p.page_table = r.page_table.as<int32_t>(), p.max_pages_per_seq = max_pages;
  p.num_seqs = num_seqs, p.num_tokens = num_tokens, p.max_query_len = max_q, p.max_context_len = max_c;
  p.page_size = ps, p.num_q_heads = c.num_q_heads, p.num_kv_heads = c.num_kv_heads, p.head_dim = d;
  p.scale = rp.scale, p.dtype = c.dtype;
  p.kv_quant = {c.fp8, c.k_scale, c.v_scale};
  return r;
}

// `got` against the twin at three grains, each under c.tolerance(): every (query token, q head)
// row on its own (the first few failures named, `detail` appended), every sequence on its own,
// and the whole batch; so one wrong head or one short sequence cannot hide behind the rest.
inline void expect_matches_reference(const PagedCase& c, const PreparedAttention& r, const std::vector<float>& got,
                                     const std::string& detail = "") {
  ASSERT_EQ(got.size(), r.want.size());
  const size_t d = c.head_dim, width = static_cast<size_t>(c.num_q_heads) * d;
  int bad = 0;
  for (size_t s = 0; s + 1 < r.starts.size(); ++s) {
    for (int t = r.starts[s]; t < r.starts[s + 1]; ++t)
      for (int h = 0; h < c.num_q_heads; ++h) {
        const size_t b = (static_cast<size_t>(t) * c.num_q_heads + h) * d;
        const std::vector<float> g(got.begin() + b, got.begin() + b + d), w(r.want.begin() + b, r.want.begin() + b + d);
        const double err = rel_l2(g, w);
        if (err < c.tolerance() || ++bad > 5) continue;  // report the first few
        ADD_FAILURE() << "seq " << s << " (L=" << c.seqs[s].new_tokens << ", C=" << c.seqs[s].context << ") query "
                      << t - r.starts[s] << " head " << h << ": rel L2 " << err << detail;
      }
    const size_t b = r.starts[s] * width, e = r.starts[s + 1] * width;
    const std::vector<float> g(got.begin() + b, got.begin() + e), w(r.want.begin() + b, r.want.begin() + e);
    EXPECT_LT(rel_l2(g, w), c.tolerance()) << "sequence " << s << " (L=" << c.seqs[s].new_tokens
                                            << ", C=" << c.seqs[s].context << ")" << detail;
  }
  EXPECT_EQ(bad, 0) << "rows over tolerance";
  EXPECT_LT(rel_l2(got, r.want), c.tolerance());
}

// Two runs on the same inputs: the same bits, and equal as floats (so an unwritten, still
// poisoned NaN element fails even though its bits repeat).
inline void expect_bitwise_repeat(const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << what;
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin())) << what;
}

// An unsupported input comes back as an error whose message names it.
inline void expect_rejected(const Status& st, const std::string& needle) {
  EXPECT_FALSE(st.ok()) << needle;
  EXPECT_NE(st.message().find(needle), std::string::npos) << "wanted \"" << needle << "\" in: " << st.message();
}

inline std::string describe(const PagedCase& c) {
  return std::string(dtype_name(c.dtype)) + (c.fp8 ? " fp8kv" : "") + " d=" + std::to_string(c.head_dim) +
         " Hq=" + std::to_string(c.num_q_heads) + " Hkv=" + std::to_string(c.num_kv_heads) +
         " page=" + std::to_string(c.page_size);
}

}  // namespace tk::gpu_test
