// Prefill attention (kernels::prefill_attention, both implementations: the Hopper wgmma kernel for
// head_dim 128 and the portable mma.sync one) against its CPU twin ref::paged_attention:
// odd query lengths, mixed batches, chunked prefill over a cached prefix, GQA groups, every head
// dim, dtype and page size, pages scattered over the pool. Everything the kernel must not read is
// NaN (the rest of the qkv row, cache slots past each context, pages nobody owns), so a stray read
// fails the test as loudly as a wrong one; the output is poisoned before every run.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu_util.h"
#include "kernels/kernels.h"
#include "paged_attention_case.h"

namespace tk {
namespace {

using Prepared = gpu_test::PreparedAttention;

// Prefill cases default to 8 q / 2 kv heads: long query runs stay cheap on the CPU twin.
struct Case : gpu_test::PagedCase {
  Case() {
    num_q_heads = 8;
    num_kv_heads = 2;
  }
};

Prepared prepare(const Case& c) { return gpu_test::prepare_attention(c); }

using Impl = kernels::PrefillImpl;
constexpr Impl kImpls[] = {Impl::kAuto, Impl::kMmaSync};
const char* impl_name(Impl impl) { return impl == Impl::kAuto ? " [auto]" : " [mma.sync]"; }

std::vector<float> run(Prepared& r, Impl impl = Impl::kAuto) {
  r.out.poison();
  Status st = kernels::prefill_attention(r.params, nullptr, impl);
  EXPECT_TRUE(st.ok()) << st.message();
  CUDA_CHECK(cudaDeviceSynchronize());
  return r.out.download();
}

void check(const Case& c, const std::string& what) {
  SCOPED_TRACE(what);
  Prepared r = prepare(c);
  for (Impl impl : kImpls) gpu_test::expect_matches_reference(c, r, run(r, impl), impl_name(impl));
}

std::string name(const Case& c) { return gpu_test::describe(c); }

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
  for (int d : kernels::kSupportedHeadDims)
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
    for (int d : kernels::kSupportedHeadDims) {
      Case c;
      c.seqs = {{99, 130}, {19, 19}, {257, 257}, {1, 33}};
      c.page_size = ps;
      c.head_dim = d;
      c.seed = 60 + ps + d;
      check(c, name(c));
    }
}

// Head sizes whose shared rows are padded (80, 96: 10 and 12 of 16 chunks; 32: 4 of 8): GQA
// groups, odd lengths, chunks over a cached prefix, q inside a wider qkv row.
TEST(PrefillAttention, PaddedHeadSizesGqaAndChunks) {
  const int heads[][2] = {{8, 2}, {28, 4}, {3, 1}, {5, 5}};
  for (int d : {32, 80, 96})
    for (const auto& h : heads) {
      Case c;
      c.seqs = {{1, 1}, {7, 7}, {19, 19}, {99, 150}, {200, 264}, {129, 129}, {65, 1000}};
      c.num_q_heads = h[0];
      c.num_kv_heads = h[1];
      c.head_dim = d;
      c.extra_stride = h[0] == 3 ? 24 : 0;
      c.seed = 120 + d + h[0] * 3 + h[1];
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
  for (Impl impl : kImpls) {
    const std::vector<float> a = run(r, impl), b = run(r, impl);
    gpu_test::expect_bitwise_repeat(a, b, std::string("a race between warps or blocks") + impl_name(impl));
  }
}

// ---- FP8 KV cache (kv_quant.fp8): both entry points (kAuto routes fp8 past the sm90 kernel to
// mma.sync), the kernel reading the twin's exact e4m3 bytes; scales != 1.

Case fp8_case(std::vector<gpu_test::PagedSeq> seqs, uint32_t seed, DType dt = DType::kBF16) {
  Case c;
  c.seqs = std::move(seqs);
  c.fp8 = true;
  c.k_scale = 0.37f, c.v_scale = 1.9f;
  c.dtype = dt;
  c.seed = seed;
  return c;
}

TEST(PrefillAttentionFp8, OddLengthsChunksAndDtypes) {
  for (DType dt : {DType::kBF16, DType::kF16}) {
    check(fp8_case({{1, 1}, {7, 7}, {19, 19}, {99, 99}, {989, 989}, {129, 129}}, 3000 + (dt == DType::kF16), dt),
          "odd lengths");
    check(fp8_case({{99, 1000}, {1, 77}, {128, 300}, {200, 264}, {64, 129}}, 3010 + (dt == DType::kF16), dt),
          "chunked prefill on a cached prefix");
  }
}

// Every head dim (80: an odd count of 16-dim chunks), page sizes, GQA groups, wider qkv rows.
TEST(PrefillAttentionFp8, HeadDimsPageSizesAndGroups) {
  const int heads[][2] = {{8, 2}, {28, 4}, {3, 1}, {5, 5}};
  uint32_t seed = 3100;
  for (int d : kernels::kSupportedHeadDims)
    for (int ps : {1, 16, 64}) {
      const auto& h = heads[seed % 4];
      Case c = fp8_case({{19, 19}, {99, 150}, {257, 257}, {1, 33}}, seed++, ps == 64 ? DType::kF16 : DType::kBF16);
      c.head_dim = d, c.page_size = ps, c.num_q_heads = h[0], c.num_kv_heads = h[1];
      c.extra_stride = ps == 1 ? 24 : 0;
      check(c, name(c));
    }
}

TEST(PrefillAttentionFp8, SaturatedBytesAndPeakedScores) {
  for (int d : {64, 128, 256}) {
    Case c = fp8_case({{300, 333}, {129, 129}}, 3200 + d);
    c.head_dim = d;
    c.k_scale = 0.004f, c.v_scale = 0.003f;  // |x| > 1.79 (k), 1.34 (v) saturate: ~7% of k, ~18% of v
    check(c, name(c) + " saturated");
  }
  Case c = fp8_case({{1024, 1024}, {300, 2000}}, 3300);
  c.num_q_heads = 32, c.num_kv_heads = 8, c.q_std = 4.f;
  check(c, "Hq=32 Hkv=8 q_std=4");
}

TEST(PrefillAttentionFp8, RunsAreBitwiseIdenticalAndBadScalesRejected) {
  Prepared r = prepare(fp8_case({{989, 989}, {99, 300}}, 3400));
  const std::vector<float> a = run(r, Impl::kMmaSync), b = run(r, Impl::kMmaSync);
  gpu_test::expect_bitwise_repeat(a, b, "a race between warps or blocks");
  for (float bad : {0.f, NAN}) {
    kernels::PagedAttentionParams p = r.params;
    p.kv_quant.v_scale = bad;
    gpu_test::expect_rejected(kernels::prefill_attention(p, nullptr), "k_scale");
  }
  CUDA_CHECK(cudaDeviceSynchronize());
}

// Every unsupported shape comes back as an error that names it, before any launch.
TEST(PrefillAttention, RejectsUnsupportedShapes) {
  Case c;
  c.seqs = {{19, 19}};
  Prepared r = prepare(c);
  auto rejects = [&](auto mutate, const char* what, const std::string& needle) {
    SCOPED_TRACE(what);
    kernels::PagedAttentionParams p = r.params;
    mutate(p);
    gpu_test::expect_rejected(kernels::prefill_attention(p, nullptr), needle);
  };
  rejects([](auto& p) { p.head_dim = 72; }, "head_dim 72", "head_dim 72");
  rejects([](auto& p) { p.dtype = DType::kF32; }, "fp32", "dtype");
  rejects([](auto& p) { p.num_q_heads = 7; }, "Hq not a multiple of Hkv", "num_kv_heads");
  rejects([](auto& p) { p.page_size = 12; }, "page size 12", "page_size 12");
  rejects([](auto& p) { p.q_stride += 4; }, "q_stride not 16-byte aligned", "q_stride");
  rejects([](auto& p) { p.q = static_cast<const char*>(p.q) + 2; }, "q pointer misaligned", "16-byte aligned");
  rejects([](auto& p) { p.max_context_len = p.max_pages_per_seq * p.page_size + 1; }, "pages too few for the context",
          "max_context_len");
  rejects([](auto& p) { p.page_table = nullptr; }, "null page table", "null pointer");
  CUDA_CHECK(cudaDeviceSynchronize());
}

}  // namespace
}  // namespace tk
