// FlashAttention-2 prefill (kernels::prefill_attention) against its CPU twin ref::paged_attention:
// odd query lengths, mixed batches, chunked prefill over a cached prefix, GQA groups, every head
// dim, dtype and page size, pages scattered over the pool. Everything the kernel must not read is
// NaN (the rest of the qkv row, cache slots past each context, pages nobody owns), so a stray read
// fails the test as loudly as a wrong one; the output is poisoned before every run.
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

namespace tk {
namespace {

using gpu_test::DeviceArray;

struct Seq {
  int new_tokens;  // L: query rows of this step
  int context;     // C >= L: cache positions the last query row sees
};

struct Case {
  std::vector<Seq> seqs;
  int num_q_heads = 8;
  int num_kv_heads = 2;
  int head_dim = 128;
  int page_size = 16;
  DType dtype = DType::kBF16;
  int extra_stride = 0;  // q_stride = (Hq + 2 Hkv) * head_dim + extra_stride
  float q_std = 1.f;     // larger -> more peaked softmax rows
  uint32_t seed = 1;
};

// Host and device copies of one case, plus the twin's answer.
struct Prepared {
  DeviceArray q, k, v, out, query_start, context_lens, page_table;
  kernels::PagedAttentionParams params;
  std::vector<int32_t> starts;
  std::vector<float> want;  // [T, Hq * head_dim]
};

constexpr int kNoPage = 1 << 30;

Prepared prepare(const Case& c) {
  Prepared r;
  const int num_seqs = static_cast<int>(c.seqs.size());
  const int d = c.head_dim, ps = c.page_size;
  std::vector<int32_t> context_lens(num_seqs);
  r.starts.assign(num_seqs + 1, 0);
  int max_q = 0, max_c = 0, max_pages = 1, owned_pages = 0;
  for (int s = 0; s < num_seqs; ++s) {
    r.starts[s + 1] = r.starts[s] + c.seqs[s].new_tokens;
    context_lens[s] = c.seqs[s].context;
    max_q = std::max(max_q, c.seqs[s].new_tokens);
    max_c = std::max(max_c, c.seqs[s].context);
    const int pages = (c.seqs[s].context + ps - 1) / ps;
    max_pages = std::max(max_pages, pages);
    owned_pages += pages;
  }
  const int num_tokens = r.starts.back();
  const int num_pages = owned_pages + 3;  // a few pages nobody owns: NaN throughout
  std::mt19937 rng(c.seed);

  // Pages handed out in a random order over the pool; table entries past a sequence's pages are
  // far out of range, so reading one is an illegal address, not a silent pass.
  std::vector<int32_t> pool(num_pages);
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  std::vector<int32_t> page_table(static_cast<size_t>(num_seqs) * max_pages, kNoPage);
  const size_t page_elems = static_cast<size_t>(c.num_kv_heads) * ps * d;
  std::vector<float> k = gpu_test::random_floats(num_pages * page_elems, c.seed + 1);
  std::vector<float> v = gpu_test::random_floats(num_pages * page_elems, c.seed + 2);
  std::vector<bool> used(static_cast<size_t>(num_pages) * ps, false);  // (page, slot) holds a position
  for (int s = 0, next = 0; s < num_seqs; ++s)
    for (int pos = 0; pos < c.seqs[s].context; ++pos) {
      if (pos % ps == 0) page_table[static_cast<size_t>(s) * max_pages + pos / ps] = pool[next++];
      used[static_cast<size_t>(page_table[static_cast<size_t>(s) * max_pages + pos / ps]) * ps + pos % ps] = true;
    }
  for (size_t slot = 0; slot < used.size(); ++slot) {
    if (used[slot]) continue;
    const size_t page = slot / ps, in_page = slot % ps;
    for (int h = 0; h < c.num_kv_heads; ++h)
      for (int i = 0; i < d; ++i) {
        const size_t at = page * page_elems + (static_cast<size_t>(h) * ps + in_page) * d + i;
        k[at] = v[at] = NAN;
      }
  }
  gpu_test::round_to(k, c.dtype);
  gpu_test::round_to(v, c.dtype);

  // q inside a qkv row: q heads first, then NaN where k, v (and padding) would be.
  const int64_t q_width = static_cast<int64_t>(c.num_q_heads) * d;
  const int64_t q_stride = static_cast<int64_t>(c.num_q_heads + 2 * c.num_kv_heads) * d + c.extra_stride;
  std::vector<float> qkv = gpu_test::random_floats(static_cast<size_t>(num_tokens) * q_stride, c.seed + 3, c.q_std);
  for (int t = 0; t < num_tokens; ++t)
    for (int64_t i = q_width; i < q_stride; ++i) qkv[t * q_stride + i] = NAN;
  gpu_test::round_to(qkv, c.dtype);

  ref::AttentionParams rp;
  rp.heads = {num_tokens, c.num_q_heads, c.num_kv_heads, d, q_stride};
  rp.scale = 1.f / std::sqrt(static_cast<float>(d));
  rp.num_seqs = num_seqs;
  rp.query_start = r.starts.data();
  rp.context_lens = context_lens.data();
  rp.page_table = page_table.data();
  rp.max_pages_per_seq = max_pages;
  r.want.assign(static_cast<size_t>(num_tokens) * q_width, 0.f);
  ref::paged_attention(qkv.data(), ref::PagedKv{k.data(), v.data(), num_pages, ps}, rp, r.want.data());

  r.q = DeviceArray::from(qkv, c.dtype);
  r.k = DeviceArray::from(k, c.dtype);
  r.v = DeviceArray::from(v, c.dtype);
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
  return r;
}

std::vector<float> run(Prepared& r) {
  r.out.poison();
  Status st = kernels::prefill_attention(r.params, nullptr);
  EXPECT_TRUE(st.ok()) << st.message();
  CUDA_CHECK(cudaDeviceSynchronize());
  return r.out.download();
}

// Relative L2 error of every sequence on its own, so a small sequence in a batch cannot hide
// behind a large one.
void check(const Case& c, const std::string& what) {
  SCOPED_TRACE(what);
  Prepared r = prepare(c);
  const std::vector<float> got = run(r);
  const size_t width = static_cast<size_t>(c.num_q_heads) * c.head_dim;
  for (size_t s = 0; s + 1 < r.starts.size(); ++s) {
    const size_t b = r.starts[s] * width, e = r.starts[s + 1] * width;
    const std::vector<float> g(got.begin() + b, got.begin() + e), w(r.want.begin() + b, r.want.begin() + e);
    const double err = gpu_test::rel_l2(g, w);
    EXPECT_LT(err, gpu_test::kHalfTolerance) << "sequence " << s << " (L=" << c.seqs[s].new_tokens
                                             << ", C=" << c.seqs[s].context << ")";
  }
}

std::string name(const Case& c) {
  return std::string(dtype_name(c.dtype)) + " d=" + std::to_string(c.head_dim) + " Hq=" + std::to_string(c.num_q_heads) +
         " Hkv=" + std::to_string(c.num_kv_heads) + " page=" + std::to_string(c.page_size);
}

TEST(PrefillAttention, OddQueryLengths) {
  for (int len : {1, 7, 19, 99, 989}) {
    Case c;
    c.seqs = {{len, len}};
    c.seed = 100 + len;
    check(c, "L=" + std::to_string(len));
  }
}

TEST(PrefillAttention, MixedBatch) {
  Case c;
  c.seqs = {{1, 1}, {7, 7}, {19, 19}, {99, 99}, {989, 989}, {128, 128}, {129, 129}, {64, 64}, {2, 2}};
  c.seed = 7;
  check(c, "mixed");
}

TEST(PrefillAttention, ChunkedPrefillOnCachedPrefix) {
  Case c;
  c.seqs = {{99, 1000}, {1, 77}, {128, 300}, {200, 264}, {7, 7}, {989, 1500}, {64, 129}, {19, 20}};
  c.seed = 11;
  check(c, name(c));
  c.page_size = 1;
  c.seed = 12;
  check(c, name(c));
}

TEST(PrefillAttention, GqaGroupsAndOddHeadCounts) {
  const int heads[][2] = {{4, 4}, {8, 2}, {8, 1}, {3, 1}, {28, 4}, {5, 5}};
  for (const auto& h : heads) {
    Case c;
    c.seqs = {{19, 19}, {99, 150}, {200, 200}};
    c.num_q_heads = h[0];
    c.num_kv_heads = h[1];
    c.seed = 20 + h[0] * 3 + h[1];
    check(c, name(c));
  }
}

TEST(PrefillAttention, HeadDimsAndDtypes) {
  for (int d : {64, 128, 256})
    for (DType dt : {DType::kBF16, DType::kF16}) {
      Case c;
      c.seqs = {{7, 7}, {99, 99}, {300, 333}, {129, 129}, {65, 97}};
      c.head_dim = d;
      c.dtype = dt;
      c.seed = 40 + d + (dt == DType::kF16);
      check(c, name(c));
    }
}

TEST(PrefillAttention, PageSizesScattered) {
  for (int ps : {1, 8, 16, 32, 64})
    for (int d : {64, 128, 256}) {
      Case c;
      c.seqs = {{99, 130}, {19, 19}, {257, 257}, {1, 33}};
      c.page_size = ps;
      c.head_dim = d;
      c.seed = 60 + ps + d;
      check(c, name(c));
    }
}

TEST(PrefillAttention, QInsideWiderQkvRow) {
  Case c;
  c.seqs = {{99, 99}, {130, 200}};
  c.extra_stride = 24;
  c.seed = 80;
  check(c, "q_stride = qkv width + 24");
}

TEST(PrefillAttention, PeakedScoresAndLlamaShape) {
  Case c;
  c.seqs = {{1024, 1024}, {300, 2000}};
  c.num_q_heads = 32;
  c.num_kv_heads = 8;
  c.q_std = 4.f;  // score std ~4: the running max moves a lot, exercising the rescale
  c.seed = 90;
  check(c, "Hq=32 Hkv=8 q_std=4");
}

TEST(PrefillAttention, RunsAreBitwiseIdentical) {
  Case c;
  c.seqs = {{989, 989}, {99, 300}};
  c.seed = 95;
  Prepared r = prepare(c);
  const std::vector<float> a = run(r), b = run(r);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << "a race between warps or blocks";
}

TEST(PrefillAttention, RejectsUnsupportedShapes) {
  Case c;
  c.seqs = {{19, 19}};
  Prepared r = prepare(c);
  auto rejects = [&](auto mutate, const char* what) {
    kernels::PagedAttentionParams p = r.params;
    mutate(p);
    Status st = kernels::prefill_attention(p, nullptr);
    EXPECT_FALSE(st.ok()) << what;
  };
  rejects([](auto& p) { p.head_dim = 96; }, "head_dim 96");
  rejects([](auto& p) { p.dtype = DType::kF32; }, "fp32");
  rejects([](auto& p) { p.num_q_heads = 7; }, "Hq not a multiple of Hkv");
  rejects([](auto& p) { p.page_size = 12; }, "page size 12");
  rejects([](auto& p) { p.q_stride += 4; }, "q_stride not 16-byte aligned");
  rejects([](auto& p) { p.q = static_cast<const char*>(p.q) + 2; }, "q pointer misaligned");
  rejects([](auto& p) { p.max_context_len = p.max_pages_per_seq * p.page_size + 1; }, "pages too few for the context");
  rejects([](auto& p) { p.page_table = nullptr; }, "null page table");
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace tk
