// The engine's own checks of sizing values (the CLI and the server share them): bounds that hold
// on any machine in EngineConfig::validate, then the memory the config needs against the device,
// all before anything is allocated.
#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>

#include "engine/engine.h"

namespace tk {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

EngineConfig demo() {
  EngineConfig c;
  c.model = kDemo;
  c.device = DeviceChoice::kCpu;
  return c;
}

void expect_error(const EngineConfig& c, StatusCode code, const std::string& needle) {
  const double start = now_seconds();
  auto engine = Engine::create(c);
  ASSERT_FALSE(engine.ok()) << needle;
  EXPECT_EQ(engine.status().code(), code) << engine.status().to_string();
  EXPECT_NE(engine.status().message().find(needle), std::string::npos) << engine.status().message();
  EXPECT_LT(now_seconds() - start, 5.0) << needle;
}

TEST(EngineLimits, BoundsThatHoldOnAnyMachine) {
  EngineConfig c = demo();
  c.num_threads = 100000;
  const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  expect_error(c, StatusCode::kInvalidArgument,
               "--threads 100000: too many threads, at most " + std::to_string(4 * cpus) + " (4 per usable CPU");
  c = demo(), c.max_num_seqs = 0;
  expect_error(c, StatusCode::kInvalidArgument, "--max-num-seqs 0: must be at least 1");
  c = demo(), c.max_num_batched_tokens = 1 << 21;
  expect_error(c, StatusCode::kInvalidArgument, "--max-num-batched-tokens 2097152: must be in [16, 1048576]");
  c = demo(), c.max_model_len = 4096;
  expect_error(c, StatusCode::kInvalidArgument, "--max-model-len 4096: longer than the model's context, 512");
  c = demo(), c.model = kDemo + "/config.json";
  expect_error(c, StatusCode::kInvalidArgument, "is a file, not a directory");
}

TEST(EngineLimits, MemoryIsCheckedBeforeAnythingIsAllocated) {
  EngineConfig c = demo();
  c.max_num_seqs = INT_MAX;
  expect_error(c, StatusCode::kOutOfMemory, "--max-num-seqs 2147483647: activations for 2147483648 tokens per step would take");
  c = demo(), c.kv_cache_tokens = int64_t{1} << 40;
  expect_error(c, StatusCode::kOutOfMemory, "kv_cache_tokens 1099511627776: its KV cache would take");
  c = EngineConfig{}, c.model_config = "llama-3-8b", c.device = DeviceChoice::kCpu, c.max_num_seqs = 1 << 20;
  expect_error(c, StatusCode::kOutOfMemory, "");  // the weights or the logit rows, whichever comes first
}

TEST(EngineLimits, TheDemoModelFitsWithTheDefaults) {
  auto engine = Engine::create(demo());
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  EXPECT_EQ((*engine)->config().max_model_len, 512);
}

}  // namespace
}  // namespace tk
