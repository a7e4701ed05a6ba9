// The memory check under tensor parallelism on the CPU: every rank's share on the one host, the
// replicated embedding, lm_head and KV heads counted once per rank (engine_core/machine.cpp).
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

TEST(TensorParallelMemory, ReplicatedWeightsCountOncePerRank) {
  // fp32 on the CPU: 29.9 GiB of weights unsharded; at 4 ranks the embedding and lm_head (2 x
  // 525M parameters) are held 4 times: 41.6 GiB.
  EXPECT_TRUE(check(1, 36).ok()) << check(1, 36).to_string();
  EXPECT_TRUE(check(2, 36).ok()) << check(2, 36).to_string();  // 33.8 GiB
  const Status s = check(4, 36);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("its weights"), std::string::npos) << s.message();
  EXPECT_TRUE(check(4, 46).ok()) << check(4, 46).to_string();
}

}  // namespace
}  // namespace tk
