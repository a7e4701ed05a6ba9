// Split-KV flash decoding (kernels::decode_attention) against its CPU twin ref::paged_attention:
// odd context lengths, lengths crossing page, tile and split boundaries, mixed batches, query
// lengths 1..kMaxDecodeQueryLen (speculative verification), GQA groups, every head dim, dtype and
// page size, pages scattered over the pool, forced split counts beside plan_decode's choice.
// Everything the kernel must not read is NaN (the rest of the qkv row, cache slots past each
// context, pages nobody owns) and page-table entries past a sequence are far out of range, so a
// stray read fails as loudly as a wrong one; output and workspace are poisoned before every run.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "gpu_util.h"
#include "kernels/kernels.h"
#include "paged_attention_case.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using gpu_test::PagedSeq;

// new_tokens: 1..kMaxDecodeQueryLen.
struct Case : gpu_test::PagedCase {
  int splits = 0;  // 0: plan_decode's choice; else forced
};

int sm_count() {
  static const int n = device_info().sm_count;
  return n;
}

// The shared case plus the split plan and its workspace.
struct Prepared : gpu_test::PreparedAttention {
  kernels::DecodePlan plan;
  DeviceArray workspace;
};

kernels::DecodePlan make_plan(const Case& c, const kernels::PagedAttentionParams& p) {
  if (c.splits == 0)
    return kernels::plan_decode(p.num_seqs, p.max_context_len, p.max_query_len, p.num_kv_heads, p.page_size,
                                sm_count());
  kernels::DecodePlan plan;
  plan.num_splits = c.splits;
  const int per_split = (p.max_context_len + c.splits - 1) / c.splits;
  plan.split_tokens = (per_split + p.page_size - 1) / p.page_size * p.page_size;
  plan.workspace_bytes =
      c.splits > 1 ? static_cast<size_t>(c.splits) * p.num_tokens * p.num_q_heads * (p.head_dim + 1) * 4 : 0;
  return plan;
}

Prepared prepare(const Case& c) {
  Prepared r{gpu_test::prepare_attention(c)};
  r.plan = make_plan(c, r.params);
  r.workspace = DeviceArray(std::max<size_t>(r.plan.workspace_bytes / 4, 1), DType::kF32);
  return r;
}

std::vector<float> run(Prepared& r) {
  r.out.poison();
  r.workspace.poison();  // the merge must read only what the split kernel wrote
  Status st = kernels::decode_attention(r.params, r.plan, r.workspace.data(), nullptr);
  EXPECT_TRUE(st.ok()) << st.message();
  CUDA_CHECK(cudaDeviceSynchronize());
  return r.out.download();
}

void check(const Case& c, const std::string& what) {
  SCOPED_TRACE(what + " splits=" + (c.splits ? std::to_string(c.splits) : "plan"));
  Prepared r = prepare(c);
  const std::vector<float> got = run(r);
  gpu_test::expect_matches_reference(
      c, r, got, " (plan " + std::to_string(r.plan.num_splits) + " x " + std::to_string(r.plan.split_tokens) + ")");
}

std::string name(const Case& c) { return gpu_test::describe(c); }

std::vector<PagedSeq> contexts(std::initializer_list<int> lens, int new_tokens = 1) {
  std::vector<PagedSeq> seqs;
  for (int len : lens) seqs.push_back({std::min(new_tokens, len), len});
  return seqs;
}

// Splits 2-8 merge inside a cluster (8: the largest), 12 through the workspace and the merge kernel.
TEST(DecodeAttention, OddContextLengths) {
  for (int len : {1, 7, 19, 99, 989, 4097})
    for (int splits : {0, 1, 2, 7, 8, 12}) {
      Case c;
      c.seqs = contexts({len});
      c.splits = splits;
      c.seed = 100 + len + splits;
      check(c, "C=" + std::to_string(len));
    }
}

// Lengths at and around page (16), tile (64), split and planner boundaries, in one batch.
TEST(DecodeAttention, MixedBatchAcrossBoundaries) {
  for (int splits : {0, 1, 2, 7, 12}) {
    Case c;
    c.seqs = contexts({1, 7, 19, 99, 989, 4097, 15, 16, 17, 63, 64, 65, 128, 255, 256, 257, 1024, 2000, 3000, 4096});
    c.splits = splits;
    c.seed = 7 + splits;
    check(c, "mixed");
  }
}

TEST(DecodeAttention, SpeculativeQueryLengths) {
  for (int new_tokens : {3, kernels::kMaxDecodeQueryLen})
    for (int splits : {0, 1, 2, 7}) {
      Case c;
      c.seqs = contexts({8, 19, 99, 989, 4097, 130}, new_tokens);
      c.splits = splits;
      c.seed = 200 + new_tokens * 10 + splits;
      check(c, "L=" + std::to_string(new_tokens));
    }
  Case c;  // mixed query lengths in one batch; padding rows of short sequences write nothing
  c.seqs = {{1, 1}, {3, 3}, {8, 8}, {2, 99}, {8, 989}, {5, 4097}, {1, 700}, {7, 64}};
  for (int splits : {0, 2, 7}) {
    c.splits = splits;
    c.seed = 250 + splits;
    check(c, "mixed L");
  }
}

// Groups 1, 3, 4, 7, 8 and 16: with query lengths up to 8 these give 1, 2 and 4 MMA row tiles per
// block and (16 x 8 = 128 rows) two row chunks.
TEST(DecodeAttention, GqaGroupsAndOddHeadCounts) {
  const int heads[][2] = {{8, 8}, {32, 8}, {28, 4}, {3, 1}, {64, 8}, {16, 1}, {5, 5}};
  for (const auto& h : heads)
    for (int new_tokens : {1, 3, 8}) {
      Case c;
      c.seqs = contexts({19, 99, 989, 2500}, new_tokens);
      c.num_q_heads = h[0];
      c.num_kv_heads = h[1];
      c.seed = 300 + h[0] * 3 + h[1] + new_tokens;
      check(c, name(c) + " L=" + std::to_string(new_tokens));
    }
}

TEST(DecodeAttention, HeadDimsAndDtypes) {
  for (int d : kernels::kSupportedHeadDims)
    for (DType dt : {DType::kBF16, DType::kF16})
      for (int splits : {0, 1, 7}) {
        Case c;
        c.seqs = {{1, 7}, {1, 99}, {3, 333}, {1, 1500}, {2, 4097}};
        c.head_dim = d;
        c.dtype = dt;
        c.splits = splits;
        c.seed = 400 + d + (dt == DType::kF16) + splits;
        check(c, name(c));
      }
}

TEST(DecodeAttention, PageSizesScattered) {
  for (int ps : {1, 8, 16, 32, 64})
    for (int d : kernels::kSupportedHeadDims)
      for (int splits : {0, 2}) {
        Case c;
        c.seqs = {{1, 130}, {1, 19}, {3, 257}, {1, 1}, {2, 1111}};
        c.page_size = ps;
        c.head_dim = d;
        c.splits = splits;
        c.seed = 500 + ps + d + splits;
        check(c, name(c));
      }
}

// Head sizes whose shared rows are padded (80, 96: 10 and 12 of 16 chunks; 32: 4 of 8) and whose
// merge lanes hold partial dim pairs: every GQA shape, verify-sized queries, forced splits.
TEST(DecodeAttention, PaddedHeadSizesGqaAndQueryLengths) {
  const int heads[][2] = {{32, 8}, {28, 4}, {3, 1}, {16, 1}, {5, 5}};
  for (int d : {32, 80, 96})
    for (const auto& h : heads)
      for (int new_tokens : {1, 3, 8}) {
        Case c;
        c.seqs = contexts({19, 99, 989, 2500, 64, 65}, new_tokens);
        c.num_q_heads = h[0];
        c.num_kv_heads = h[1];
        c.head_dim = d;
        c.splits = new_tokens == 3 ? 5 : 0;
        c.extra_stride = new_tokens == 8 ? 8 : 0;
        c.seed = 900 + d + h[0] * 3 + h[1] + new_tokens;
        check(c, name(c) + " L=" + std::to_string(new_tokens));
      }
}

TEST(DecodeAttention, QInsideWiderQkvRowAndPeakedScores) {
  Case c;
  c.seqs = {{1, 99}, {4, 2000}, {1, 4097}};
  c.extra_stride = 24;
  c.q_std = 4.f;  // score std ~4: the running max moves a lot, exercising the rescale and merge
  for (int splits : {0, 1, 7}) {
    c.splits = splits;
    c.seed = 600 + splits;
    check(c, "q_stride = qkv width + 24, q_std 4");
  }
}

TEST(DecodeAttention, BarShapesSmall) {  // the benchmark's Llama-3-8B shape, shorter batches
  Case c;
  c.seqs = contexts({4096});
  c.seed = 700;
  check(c, "1x4096");
  c.seqs = contexts({2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048});
  c.seed = 701;
  check(c, "16x2048");
  c.seqs = contexts({32768});
  c.seed = 702;
  check(c, "1x32768");
}

TEST(DecodeAttention, RunsAreBitwiseIdentical) {
  Case c;
  c.seqs = {{1, 4097}, {3, 989}};
  c.seed = 800;
  Prepared r = prepare(c);
  const std::vector<float> a = run(r), b = run(r);
  gpu_test::expect_bitwise_repeat(a, b, "a race: two runs on the same inputs differ");
}

// ---- FP8 KV cache (kv_quant.fp8): the kernel reads the twin's exact e4m3 bytes; scales != 1.

Case fp8_case(std::vector<PagedSeq> seqs, uint32_t seed, DType dt = DType::kBF16) {
  Case c;
  c.seqs = std::move(seqs);
  c.fp8 = true;
  c.k_scale = 0.37f, c.v_scale = 1.9f;
  c.dtype = dt;
  c.seed = seed;
  return c;
}

TEST(DecodeAttentionFp8, OddContextsSplitsAndDtypes) {
  for (DType dt : {DType::kBF16, DType::kF16})
    for (int splits : {0, 1, 2, 7}) {
      Case c = fp8_case(contexts({1, 7, 19, 99, 989, 4097, 64, 65, 2000}), 2000 + splits, dt);
      c.splits = splits;
      check(c, name(c));
    }
}

// Every head dim (80: an odd count of 16-dim chunks; 32-96: padded shared rows), page sizes,
// GQA groups and speculative query lengths.
TEST(DecodeAttentionFp8, HeadDimsPageSizesAndGroups) {
  const int heads[][2] = {{32, 8}, {28, 4}, {3, 1}, {16, 1}, {5, 5}};
  uint32_t seed = 2100;
  for (int d : kernels::kSupportedHeadDims)
    for (int ps : {1, 16, 64}) {
      const auto& h = heads[seed % 5];
      const int new_tokens = ps == 1 ? 8 : (ps == 16 ? 1 : 3);
      Case c = fp8_case(contexts({19, 99, 257, 1111, 64}, new_tokens), seed++, ps == 64 ? DType::kF16 : DType::kBF16);
      c.head_dim = d, c.page_size = ps, c.num_q_heads = h[0], c.num_kv_heads = h[1];
      c.splits = ps == 16 ? 0 : 3;
      c.extra_stride = ps == 1 ? 8 : 0;
      check(c, name(c) + " L=" + std::to_string(new_tokens));
    }
}

// Scales small against the values: a large share of the bytes is saturated (+-448), and peaked
// scores move the running max; both sides read the same saturated bytes.
TEST(DecodeAttentionFp8, SaturatedBytesAndPeakedScores) {
  for (int d : {64, 128, 256}) {
    Case c = fp8_case({{1, 99}, {4, 2000}, {1, 4097}, {8, 300}}, 2200 + d);
    c.head_dim = d;
    c.k_scale = 0.004f, c.v_scale = 0.003f;  // |x| > 1.79 (k), 1.34 (v) saturate: ~7% of k, ~18% of v
    c.splits = d == 128 ? 0 : 5;
    check(c, name(c) + " saturated");
  }
  Case c = fp8_case({{1, 99}, {4, 2000}, {1, 4097}}, 2300, DType::kF16);
  c.q_std = 4.f;
  check(c, "q_std 4");
}

TEST(DecodeAttentionFp8, BarShapesSmall) {
  check(fp8_case(contexts({4096}), 2400), "1x4096");
  check(fp8_case(contexts({2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048}), 2401), "8x2048");
  check(fp8_case(contexts({32768}), 2402), "1x32768");
}

TEST(DecodeAttentionFp8, RunsAreBitwiseIdentical) {
  Prepared r = prepare(fp8_case({{1, 4097}, {3, 989}}, 2500));
  const std::vector<float> a = run(r), b = run(r);
  gpu_test::expect_bitwise_repeat(a, b, "a race: two runs on the same inputs differ");
}

TEST(DecodeAttentionFp8, RejectsBadScales) {
  Prepared r = prepare(fp8_case({{1, 99}}, 2600));
  for (float bad : {0.f, -1.f, NAN, INFINITY})
    for (bool on_k : {true, false}) {
      kernels::PagedAttentionParams p = r.params;
      (on_k ? p.kv_quant.k_scale : p.kv_quant.v_scale) = bad;
      gpu_test::expect_rejected(kernels::decode_attention(p, r.plan, r.workspace.data(), nullptr), "k_scale");
    }
  CUDA_CHECK(cudaDeviceSynchronize());
}

// Every unsupported combination comes back as an error that names it, before any launch.
TEST(DecodeAttention, RejectsUnsupportedCombinations) {
  Case c;
  c.seqs = {{1, 99}, {2, 300}};
  Prepared r = prepare(c);
  auto expect_error = [&](kernels::PagedAttentionParams p, kernels::DecodePlan plan, const std::string& needle) {
    gpu_test::expect_rejected(kernels::decode_attention(p, plan, r.workspace.data(), nullptr), needle);
  };
  kernels::PagedAttentionParams p = r.params;
  p.head_dim = 72;
  expect_error(p, r.plan, "head_dim 72");
  p = r.params;
  p.max_query_len = kernels::kMaxDecodeQueryLen + 1;
  p.num_tokens = 2;
  expect_error(p, r.plan, "max_query_len");
  p = r.params;
  p.page_size = 24;
  expect_error(p, r.plan, "page_size 24");
  p = r.params;
  p.num_q_heads = 30;
  expect_error(p, r.plan, "num_kv_heads");
  p = r.params;
  p.dtype = DType::kF32;
  expect_error(p, r.plan, "dtype");
  p = r.params;
  p.k_cache = nullptr;
  expect_error(p, r.plan, "null");
  kernels::DecodePlan plan;
  plan.num_splits = 4;
  plan.split_tokens = 80;
  plan.workspace_bytes = 16;
  expect_error(r.params, plan, "workspace");
  plan.workspace_bytes = size_t{1} << 30;
  plan.split_tokens = 72;  // not a multiple of page_size 16
  expect_error(r.params, plan, "page_size");
  plan.split_tokens = 16;  // 4 x 16 does not cover 300 tokens
  expect_error(r.params, plan, "max_context_len");
  CUDA_CHECK(cudaDeviceSynchronize());  // nothing was launched, so nothing failed asynchronously
}

// plan_decode: covers the context in whole pages with no empty split, sizes the workspace, and
// makes the choices the benchmark shapes need.
TEST(DecodePlan, CoversContextInWholePages) {
  for (int sms : {1, 66, 132})
    for (int seqs : {1, 2, 16, 64, 128, 300})
      for (int ctx : {1, 7, 19, 99, 989, 4096, 4097, 32768, 131072})
        for (int page : {1, 16, 64})
          for (int hkv : {1, 8}) {
            const kernels::DecodePlan plan = kernels::plan_decode(seqs, ctx, 1, hkv, page, sms);
            SCOPED_TRACE(std::to_string(seqs) + "x" + std::to_string(ctx) + " page " + std::to_string(page) + " hkv " +
                         std::to_string(hkv) + " sms " + std::to_string(sms));
            ASSERT_GE(plan.num_splits, 1);
            ASSERT_GT(plan.split_tokens, 0);
            EXPECT_EQ(plan.split_tokens % page, 0);
            EXPECT_GE(static_cast<int64_t>(plan.num_splits) * plan.split_tokens, ctx);
            EXPECT_LT(static_cast<int64_t>(plan.num_splits - 1) * plan.split_tokens, ctx) << "an empty split";
            if (seqs * hkv >= sms) EXPECT_EQ(plan.num_splits, 1) << "the batch alone fills the GPU";
            if (plan.num_splits > 1) {
              EXPECT_GE(plan.split_tokens, 128);
              // Llama-3-8B: 4 q heads per kv head, head_dim 128.
              EXPECT_GE(plan.workspace_bytes, static_cast<size_t>(plan.num_splits) * seqs * hkv * 4 * 129 * 4);
            }
          }
}

TEST(DecodePlan, BenchmarkShapes) {
  auto plan = [](int seqs, int ctx) { return kernels::plan_decode(seqs, ctx, 1, 8, 16, 132); };
  EXPECT_GE(plan(1, 4096).num_splits, 16);  // 8 kv heads alone leave 124 of 132 SMs idle
  EXPECT_GE(plan(1, 32768).num_splits * 8, 132);
  EXPECT_GE(plan(1, 131072).num_splits * 8, 132);
  EXPECT_GE(plan(16, 4096).num_splits, 2);
  EXPECT_GE(plan(8, 16384).num_splits, 2);
  EXPECT_EQ(plan(64, 2048).num_splits, 1);
  EXPECT_EQ(plan(128, 1024).num_splits, 1);
  EXPECT_EQ(plan(1, 100).num_splits, 1);  // too short to split
}

}  // namespace
}  // namespace tk
