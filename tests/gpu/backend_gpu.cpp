// Backend ops on the CUDA backend against the CPU backend through the same calls (in the spirit of
// llama.cpp's test-backend-ops): attention over steps that mix decodes and prefill chunks (the
// CUDA backend splits them between its decode and prefill kernels), at odd sizes.
#include <gtest/gtest.h>

#include <random>

#include "backend_cpu/cpu_backend.h"
#include "backend_cuda/cuda_backend.h"
#include "gpu_util.h"

namespace tk::gpu_test {
namespace {

struct MixedCase {
  std::vector<int> query, context;  // per sequence, decodes (query <= 8) first as the scheduler orders them
  int head_dim, q_heads, kv_heads, page_size;
};

// One step's metadata with each sequence's pages taken in order from a shuffled pool.
StepBatch make_batch(const MixedCase& c, int num_pages, std::mt19937& rng) {
  StepBatch b;
  std::vector<int32_t> free(num_pages);
  for (int i = 0; i < num_pages; ++i) free[i] = i;
  std::shuffle(free.begin(), free.end(), rng);
  int max_pages = 0;
  for (int ctx : c.context) max_pages = std::max(max_pages, (ctx + c.page_size - 1) / c.page_size);
  b.max_pages_per_seq = max_pages;
  b.query_start.push_back(0);
  size_t next = 0;
  for (size_t s = 0; s < c.query.size(); ++s) {
    std::vector<int32_t> row(max_pages, -1);
    for (int p = 0; p < (c.context[s] + c.page_size - 1) / c.page_size; ++p) row[p] = free.at(next++);
    for (int t = c.context[s] - c.query[s]; t < c.context[s]; ++t) {
      b.token_ids.push_back(0);
      b.positions.push_back(t);
      b.slot_mapping.push_back(row[t / c.page_size] * c.page_size + t % c.page_size);
    }
    b.query_start.push_back(b.num_tokens());
    b.context_lens.push_back(c.context[s]);
    b.page_table.insert(b.page_table.end(), row.begin(), row.end());
  }
  return b;
}

// Fills a backend tensor from host fp32 values (converted to its dtype).
void put(Backend& be, Tensor& t, const std::vector<float>& v) {
  Tensor host(const_cast<float*>(v.data()), DType::kF32, t.shape());
  auto up = be.upload(host);
  ASSERT_TRUE(up.ok());
  t = *up;
}

std::vector<float> get(Backend& be, const Tensor& t) {
  std::vector<float> out(t.numel());
  if (t.dtype() == DType::kF32) {
    EXPECT_TRUE(be.download(t, out.data()).ok());
    return out;
  }
  std::vector<uint16_t> half(t.numel());
  EXPECT_TRUE(be.download(t, half.data()).ok());
  for (size_t i = 0; i < half.size(); ++i) out[i] = t.dtype() == DType::kBF16 ? bf16_to_f32(half[i]) : f16_to_f32(half[i]);
  return out;
}

class MixedAttention : public ::testing::TestWithParam<MixedCase> {};

TEST_P(MixedAttention, CudaMatchesCpu) {
  const MixedCase c = GetParam();
  auto gpu = make_cuda_backend();
  ASSERT_TRUE(gpu.ok()) << gpu.status().to_string();
  auto cpu = make_cpu_backend();
  AttentionShape shape{c.q_heads, c.kv_heads, c.head_dim, 1.f / std::sqrt(static_cast<float>(c.head_dim))};
  ASSERT_TRUE((*gpu)->configure(shape, c.page_size).ok());
  ASSERT_TRUE(cpu->configure(shape, c.page_size).ok());
  std::mt19937 rng(c.head_dim * 131 + static_cast<int>(c.query.size()));
  int pages = 0;
  for (int ctx : c.context) pages += (ctx + c.page_size - 1) / c.page_size;
  const int num_pages = pages + 3;
  StepBatch batch = make_batch(c, num_pages, rng);
  const int64_t T = batch.num_tokens(), width = shape.qkv_width();
  std::vector<float> qkv = random_floats(static_cast<size_t>(T * width), 1);
  const size_t cache_elems = static_cast<size_t>(num_pages) * c.kv_heads * c.page_size * c.head_dim;
  std::vector<float> k = random_floats(cache_elems, 2), v = random_floats(cache_elems, 3);
  round_to(qkv, DType::kBF16), round_to(k, DType::kBF16), round_to(v, DType::kBF16);  // the same inputs on both
  std::vector<float> outs[2];
  int i = 0;
  for (Backend* be : {gpu->get(), cpu.get()}) {
    auto cache = be->alloc_kv_cache(1, num_pages, c.page_size, c.kv_heads, c.head_dim);
    ASSERT_TRUE(cache.ok());
    put(*be, cache->k[0], k), put(*be, cache->v[0], v);
    auto plan = be->new_step_plan({static_cast<int>(T), batch.num_seqs(), batch.max_pages_per_seq, 0});
    ASSERT_TRUE(be->begin_step(batch, *plan).ok());
    Tensor q;
    {
      Tensor host(qkv.data(), DType::kF32, {T, width});
      auto up = be->upload(host);
      ASSERT_TRUE(up.ok());
      q = *up;
    }
    auto out = be->alloc(be->compute_dtype(), {T, static_cast<int64_t>(c.q_heads) * c.head_dim});
    ASSERT_TRUE(out.ok());
    be->attention(*plan, q, *cache, 0, shape, *out);
    ASSERT_TRUE(be->take_error().ok());
    outs[i++] = get(*be, *out);
  }
  EXPECT_LT(rel_l2(outs[0], outs[1]), 1e-2);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, MixedAttention,
    ::testing::Values(MixedCase{{1, 1, 1, 37}, {5, 300, 1089, 37}, 128, 32, 8, 16},        // decodes + a first chunk
                      MixedCase{{1, 7, 99, 130}, {19, 999, 1100, 2100}, 128, 8, 2, 16},    // a verify-sized query, chunks
                      MixedCase{{1, 1, 64}, {2049, 17, 1088}, 64, 6, 2, 8},                // head_dim 64
                      MixedCase{{3, 989}, {700, 989}, 256, 4, 4, 32},                      // head_dim 256, no GQA
                      MixedCase{{1, 2, 3, 4, 5, 6, 7, 8, 9}, {9, 40, 99, 300, 5, 6, 700, 8, 19}, 128, 28, 4, 1},
                      MixedCase{{1, 3, 99, 130}, {77, 1000, 99, 1500}, 80, 32, 8, 16},   // head_dim 80 (padded rows)
                      MixedCase{{1, 8, 19, 200}, {2049, 300, 19, 264}, 96, 12, 4, 8},   // head_dim 96
                      MixedCase{{1, 1, 65}, {33, 999, 65}, 32, 16, 16, 32}));            // head_dim 32, no GQA

}  // namespace
}  // namespace tk::gpu_test
