// Overlap scheduling on the CUDA backend: the decode inputs come from the last sampling in device
// memory (begin_step's scatter), the ids back through pinned memory and events. With the same
// schedule in both loops (length limits only: they are known when a step is launched) every token
// and log-prob equals the synchronous loop's; a stop token ends a lone sequence at the same token;
// the engine stats time the steps on the device.
#include <map>
#include <random>

#include "../unit/golden_util.h"

namespace tk::test {
namespace {

std::unique_ptr<Engine> demo_on_gpu(bool async) {
  EngineConfig c;
  c.model = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";
  c.device = DeviceChoice::kCuda;
  c.gpu_memory_utilization = 0.2;
  c.max_model_len = 256, c.max_num_seqs = 32, c.max_num_batched_tokens = 64;  // chunked prefills beside decodes
  c.async_scheduling = async;
  auto e = Engine::create(c);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

struct Out {
  std::map<int, std::vector<int32_t>> ids;
  std::map<int, std::vector<float>> logprobs;
  bool operator==(const Out& o) const { return ids == o.ids && logprobs == o.logprobs; }
};

std::vector<Out> run(Engine& e, const std::vector<EngineLoop::NewRequest>& requests) {
  auto streams = e.loop().add_all(requests);
  EXPECT_TRUE(streams.ok());
  std::vector<Out> out(requests.size());
  if (!streams.ok()) return out;
  for (size_t i = 0; i < requests.size(); ++i)
    for (std::vector<RequestOutput> outs; !(outs = (*streams)[i]->next()).empty();)
      for (const RequestOutput& o : outs) {
        EXPECT_NE(o.finish, FinishReason::kError) << o.error;
        auto& ids = out[i].ids[o.index];
        ids.insert(ids.end(), o.token_ids.begin(), o.token_ids.end());
        auto& lp = out[i].logprobs[o.index];
        lp.insert(lp.end(), o.logprobs.begin(), o.logprobs.end());
      }
  return out;
}

TEST(GpuOverlap, SameTokensAsTheSynchronousLoop) {
  auto sync = demo_on_gpu(false), async = demo_on_gpu(true);
  ASSERT_TRUE(sync && async);
  std::mt19937 rng(1);
  std::vector<EngineLoop::NewRequest> requests;
  for (int i = 0; i < 24; ++i) {
    std::vector<int32_t> prompt(5 + rng() % 120);
    for (int32_t& t : prompt) t = static_cast<int32_t>(2 + rng() % 8000);
    SamplingParams p;
    p.max_tokens = 8 + static_cast<int>(rng() % 40), p.ignore_eos = true, p.seed = i;
    p.temperature = i % 4 == 0 ? 0.f : 1.f;
    if (i % 4 == 1) p.repetition_penalty = 1.3f, p.presence_penalty = 0.4f, p.frequency_penalty = 0.2f;
    if (i % 4 == 2) p.n = 2;
    if (i % 4 == 3) p.logprobs = 0, p.top_p = 0.9f;
    requests.push_back({std::move(prompt), p});
  }
  const auto want = run(*sync, requests);
  const auto got = run(*async, requests);
  for (size_t i = 0; i < requests.size(); ++i) EXPECT_TRUE(got[i] == want[i]) << "request " << i;
  const EngineStats s = async->loop().stats();
  EXPECT_GT(s.overlapped_steps, 0);
  EXPECT_GT(s.step_device_seconds, 0) << "the CUDA backend times steps";
  EXPECT_GT(s.decode_device_seconds, 0);
  // A stop token: the lone sequence ends at the same token (its extra step's token is dropped).
  std::vector<EngineLoop::NewRequest> one = {requests[0]};
  one[0].params.max_tokens = 40;
  const auto full = run(*sync, one)[0].ids.at(0);
  ASSERT_EQ(full.size(), 40u);
  one[0].params.stop_token_ids = {full[12]};
  EXPECT_TRUE(run(*async, one)[0] == run(*sync, one)[0]);
}

// The graphs captured at start-up serve the first decode steps: a batch of 1 and one of 5
// (padded to 8) at contexts under 256 tokens (the plan's first context bucket) capture nothing
// while serving. (Before the decode workspace was sized at start-up, every capture of a larger
// batch grew it and made the smaller batches' graphs stale.)
TEST(GpuGraphs, StartUpGraphsServeShortDecodes) {
  auto e = demo_on_gpu(true);
  ASSERT_TRUE(e);
  for (int n : {1, 5}) {
    std::vector<EngineLoop::NewRequest> requests;
    for (int i = 0; i < n; ++i) {
      SamplingParams p;
      p.max_tokens = 16, p.ignore_eos = true, p.temperature = 0.f;
      requests.push_back({std::vector<int32_t>(6 + 3 * i, 100 + i), p});
    }
    run(*e, requests);
  }
  const EngineStats s = e->loop().stats();
  EXPECT_GT(s.decode_steps, 0);
  EXPECT_EQ(s.late_graph_captures, 0);
}

}  // namespace
}  // namespace tk::test
