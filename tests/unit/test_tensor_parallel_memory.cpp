// The memory check under tensor parallelism: on the CPU every rank's share on the one host (the
// embedding and lm_head split by vocabulary), the replicated KV heads counted once per rank; on a
// GPU one rank's share; and the CPU threads the ranks share (engine_core/machine.cpp).
#include <gtest/gtest.h>

#include "machine.h"

namespace tk {
namespace {

constexpr size_t kGiB = size_t{1} << 30;

DeviceMemory host(double gib) {
  DeviceMemory d;
  d.available = d.free = static_cast<size_t>(gib * kGiB);
  d.total = 2 * d.available;
  return d;
}

Status check(int tp, double gib) {
  auto m = builtin_model_config("llama-3-8b");  // 8.0B parameters, 32 q heads, 8 KV heads
  EXPECT_TRUE(m.ok());
  EngineConfig c;
  c.model_config = "llama-3-8b";
  c.max_model_len = 2048;
  c.tensor_parallel_size = tp;
  return check_memory(c, *m, host(gib), "llama-3-8b");
}

// The embedding and lm_head split by vocabulary: the ranks' shares add up to the unsharded
// model's parameters where the ranks divide the vocabulary (Llama-3-8B's 128256), and to that plus
// the padding rows (fewer than the ranks, in each of the two) where they do not.
TEST(TensorParallelMemory, TheRanksSharesAddUpToTheModel) {
  auto preset = builtin_model_config("llama-3-8b");
  ASSERT_TRUE(preset.ok());
  for (int64_t vocab : {int64_t{128256}, int64_t{128257}}) {
    ModelConfig m = *preset;
    m.vocab_size = vocab;
    const int64_t whole = num_parameters(m);
    for (int ranks : {2, 4, 8}) {
      int64_t sum = 0;
      for (int r = 0; r < ranks; ++r) sum += num_parameters(m, {r, ranks});
      const int64_t padding = (vocab + ranks - 1) / ranks * ranks - vocab;
      // Every rank holds the norms and inv_freq; the embedding and (untied) lm_head gain the
      // padding rows.
      const int64_t replicated = (2 * m.num_layers + 1) * m.hidden_size + m.head_dim / 2;
      ASSERT_FALSE(m.tie_word_embeddings);
      EXPECT_EQ(sum, whole + (ranks - 1) * replicated + 2 * padding * m.hidden_size) << vocab << " over " << ranks;
    }
  }
}

TEST(TensorParallelMemory, SplitWeightsCountOnceReplicatedOnesOncePerRank) {
  // fp32 on the CPU: 29.9 GiB of weights unsharded. Were the embedding and lm_head (2 x 525M
  // parameters) replicated, 4 ranks would hold 41.6 GiB of weights; split, they hold about what
  // one does (the norms, per-rank activations and logit rows add little).
  EXPECT_TRUE(check(1, 36).ok()) << check(1, 36).to_string();
  EXPECT_TRUE(check(2, 36).ok()) << check(2, 36).to_string();
  EXPECT_TRUE(check(4, 36).ok()) << check(4, 36).to_string();
  const Status s = check(4, 28);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("its weights"), std::string::npos) << s.message();
}

// A GPU holds one rank: Llama-3-8B's 16 GB of bf16 weights do not fit a 14 GiB device, half of
// them do (at 2 ranks each GPU's check counts its own share, not the ranks' sum as on the host).
TEST(TensorParallelMemory, AGpuHoldsOneRanksShare) {
  auto m = builtin_model_config("llama-3-8b");
  ASSERT_TRUE(m.ok());
  EngineConfig c;
  c.model_config = "llama-3-8b";
  c.max_model_len = 2048;
  c.max_num_seqs = 16;
  c.max_num_batched_tokens = 2048;
  c.gpu_memory_utilization = 1.0;
  DeviceMemory gpu;
  gpu.device = Device::kCuda, gpu.dtype = DType::kBF16;
  gpu.free = gpu.total = 14 * kGiB;
  c.tensor_parallel_size = 1;
  const Status one = check_memory(c, *m, gpu, "llama-3-8b");
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.message().find("its weights"), std::string::npos) << one.message();
  c.tensor_parallel_size = 2;
  EXPECT_TRUE(check_memory(c, *m, gpu, "llama-3-8b").ok()) << check_memory(c, *m, gpu, "llama-3-8b").to_string();
  gpu.free = gpu.total = 7 * kGiB;
  const Status small = check_memory(c, *m, gpu, "llama-3-8b");
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.message().find("a rank's share of its weights"), std::string::npos) << small.message();
}

// Llama-3-70B (70.55B parameters, 141 GB in bf16) does not fit one H200 (139.8 GiB); over 2
// ranks each GPU holds half of it, and the check passes.
TEST(TensorParallelMemory, Llama3_70bNeedsTwoH200s) {
  auto m = builtin_model_config("llama-3-70b");
  ASSERT_TRUE(m.ok());
  EXPECT_NEAR(static_cast<double>(num_parameters(*m)), 70.55e9, 0.01e9);
  EngineConfig c;
  c.model_config = "llama-3-70b";
  c.max_model_len = 8192;
  DeviceMemory h200;
  h200.device = Device::kCuda, h200.dtype = DType::kBF16;
  h200.free = h200.total = static_cast<size_t>(139.8 * static_cast<double>(kGiB));
  const Status one = check_memory(c, *m, h200, "llama-3-70b");
  ASSERT_FALSE(one.ok());
  EXPECT_NE(one.message().find("its weights"), std::string::npos) << one.message();
  for (int tp : {2, 4, 8}) {
    c.tensor_parallel_size = tp;
    EXPECT_TRUE(check_memory(c, *m, h200, "llama-3-70b").ok()) << tp << ": " << check_memory(c, *m, h200, "llama-3-70b").to_string();
  }
}

// The least host memory (bytes, available = free) at which the check passes: it only ever passes
// more as memory grows.
double threshold(const EngineConfig& c, const ModelConfig& m) {
  double lo = 0, hi = 1e13;  // fails at lo, passes at hi
  for (int i = 0; i < 64 && hi - lo > 1; ++i) {
    const double mid = (lo + hi) / 2;
    DeviceMemory d;
    d.available = d.free = static_cast<size_t>(mid);
    d.total = 2 * d.available;
    (check_memory(c, m, d, "model").ok() ? hi : lo) = mid;
  }
  return hi;
}

// One KV head at 2 ranks is held by both: the KV cache a token costs is twice the unsharded
// model's, and the memory a config needs grows by that much per cached token (not by the
// unsharded count a check that forgot the replication would add). 8 KV heads split: the same
// bytes as unsharded. kv_cache_tokens sizes the cache exactly (no quarter-of-free rule).
TEST(TensorParallelMemory, ReplicatedKvHeadsCountOncePerRank) {
  auto preset = builtin_model_config("llama-3-8b");
  ASSERT_TRUE(preset.ok());
  for (int64_t kv_heads : {1, 8}) {
    ModelConfig m = *preset;
    m.num_kv_heads = kv_heads;
    EngineConfig c;
    c.model_config = "llama-3-8b";
    c.max_model_len = 2048;
    c.tensor_parallel_size = 2;
    c.kv_cache_tokens = 1024;
    const double small = threshold(c, m);
    c.kv_cache_tokens = 1024 + 64 * c.page_size;
    const double large = threshold(c, m);
    // fp32 K and V, every layer, the heads every rank holds (one each at 1 KV head), 64 pages.
    const double held_heads = kv_heads == 1 ? 2 : 8;
    const double per_token = 2.0 * 4 * static_cast<double>(m.num_layers) * held_heads * static_cast<double>(m.head_dim);
    EXPECT_NEAR(large - small, 64 * c.page_size * per_token, 1024) << kv_heads << " KV heads";
  }
}

// Ranks share the threads: the remainder goes to the first ranks, so they add up to the count;
// fewer threads than ranks gives each rank one.
TEST(TensorParallelThreads, RanksShareTheThreads) {
  EXPECT_EQ(split_cpu_threads(7, 2), (std::vector<int>{4, 3}));
  EXPECT_EQ(split_cpu_threads(8, 4), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(split_cpu_threads(10, 4), (std::vector<int>{3, 3, 2, 2}));
  EXPECT_EQ(split_cpu_threads(2, 4), (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(split_cpu_threads(5, 1), (std::vector<int>{5}));
}

}  // namespace
}  // namespace tk
