// The engine loop with the real engine on the CPU backend and the demo model: concurrent clients
// with aborts at random moments, the prefix cache on a real model, forks, the penalties' device
// history, stop strings on the client's side, per-request errors and shutdown.
#include <atomic>
#include <random>
#include <thread>

#include "golden_util.h"

namespace tk::test {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

std::unique_ptr<Engine> demo_engine(bool caching = true, int max_num_seqs = 64, int64_t kv_tokens = 0) {
  EngineConfig c;
  c.model = kDemo;
  c.device = DeviceChoice::kCpu;
  c.max_model_len = 512;
  c.max_num_seqs = max_num_seqs;
  c.max_num_batched_tokens = 512;
  c.enable_prefix_caching = caching;
  c.kv_cache_tokens = kv_tokens;
  auto e = Engine::create(c);
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<int32_t> random_prompt(std::mt19937& rng, int len) {
  std::vector<int32_t> p(len);
  for (int32_t& t : p) t = static_cast<int32_t>(2 + rng() % 8000);
  return p;
}

SamplingParams greedy(int max_tokens) {
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = max_tokens, p.ignore_eos = true;
  return p;
}

// The loop refreshes its stats after it has delivered a step's outputs.
EngineStats settled_stats(Engine& e) {
  EngineStats s = e.loop().stats();
  for (int i = 0; i < 200 && (s.num_running > 0 || s.num_waiting > 0 || s.kv_cache_usage > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    s = e.loop().stats();
  }
  return s;
}

TEST(EngineLoop, ConcurrentClientsWithAbortsLeaveNothingBehind) {
  auto engine = demo_engine();
  ASSERT_TRUE(engine);
  std::mt19937 rng(1);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 32; ++i) prompts.push_back(random_prompt(rng, 5 + static_cast<int>(rng() % 40)));
  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : prompts) alone.push_back(generate_all(*engine, {p}, greedy(8))[0]);

  constexpr int kThreads = 4, kPerThread = 64;
  std::atomic<int> checked{0}, aborted{0}, mismatched{0}, unended{0};
  auto client = [&](int t) {
    std::mt19937 r(100 + t);
    std::vector<std::pair<int, std::shared_ptr<RequestStream>>> streams;
    for (int k = 0; k < kPerThread; ++k) {
      const int which = static_cast<int>(r() % prompts.size());
      auto s = engine->loop().add(prompts[which], greedy(8));
      if (!s.ok()) continue;
      streams.push_back({which, *s});
      if (k % 8 == 7) std::this_thread::sleep_for(std::chrono::milliseconds(r() % 5));
    }
    for (auto& [which, stream] : streams) {
      const bool abort = r() % 3 == 0;
      const int abort_after = static_cast<int>(r() % 4);  // outputs read before aborting
      std::vector<int32_t> got;
      int reads = 0;
      bool ended_by_abort = false;
      for (std::vector<RequestOutput> outs; !(outs = stream->next()).empty();) {
        for (const RequestOutput& o : outs) {
          got.insert(got.end(), o.token_ids.begin(), o.token_ids.end());
          if (o.finish == FinishReason::kAbort) ended_by_abort = true;
        }
        if (abort && ++reads > abort_after) {
          if (r() % 2) stream->abort();
          else stream.reset();  // dropping the stream aborts the request
          break;
        }
      }
      if (abort) {
        ++aborted;
        continue;
      }
      if (!stream->ended()) ++unended;
      if (ended_by_abort || got != alone[which]) ++mismatched;
      ++checked;
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(client, t);
  for (auto& th : threads) th.join();
  EXPECT_EQ(checked + aborted, kThreads * kPerThread);
  EXPECT_GT(aborted, 40);
  EXPECT_EQ(mismatched, 0) << "greedy outputs under concurrency differ from the same prompt alone";
  EXPECT_EQ(unended, 0);
  const EngineStats s = settled_stats(*engine);
  EXPECT_EQ(s.num_running, 0);
  EXPECT_EQ(s.num_waiting, 0);
  EXPECT_EQ(s.kv_cache_usage, 0.0) << "KV pages leaked";
  EXPECT_GT(s.prefix_cache.hits, 0);
}

TEST(EngineLoop, PreemptionUnderATightCacheKeepsOutputs) {
  auto roomy = demo_engine(true, 16), tight = demo_engine(true, 16, /*kv_tokens=*/600);
  ASSERT_TRUE(roomy && tight);
  std::mt19937 rng(2);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 12; ++i) prompts.push_back(random_prompt(rng, 60 + static_cast<int>(rng() % 60)));
  EXPECT_EQ(generate_all(*tight, prompts, greedy(24)), generate_all(*roomy, prompts, greedy(24)));
  EXPECT_EQ(settled_stats(*tight).kv_cache_usage, 0.0);
}

TEST(PrefixCache, NinetyPercentSharedPromptComputesOnlyTheRest) {
  std::mt19937 rng(3);
  const std::vector<int32_t> first = random_prompt(rng, 320);
  std::vector<int32_t> second(first.begin(), first.begin() + 288);
  const std::vector<int32_t> tail = random_prompt(rng, 32);
  second.insert(second.end(), tail.begin(), tail.end());
  std::map<bool, std::vector<int32_t>> out;
  for (bool caching : {true, false}) {
    auto engine = demo_engine(caching);
    ASSERT_TRUE(engine);
    generate_all(*engine, {first}, greedy(4));
    const int64_t before = settled_stats(*engine).tokens_computed;
    out[caching] = generate_all(*engine, {second}, greedy(4))[0];
    const EngineStats s = settled_stats(*engine);
    // 288 shared tokens are 18 full pages of 16; the 32 others and 3 decode steps are computed.
    EXPECT_EQ(s.tokens_computed - before, caching ? 32 + 3 : 320 + 3) << "caching " << caching;
    EXPECT_EQ(s.prefix_cache.hits, caching ? 288 : 0);
  }
  EXPECT_EQ(out[true], out[false]);
}

TEST(Sampling, NSequencesFromOnePrefillAreSeededAndShared) {
  auto engine = demo_engine();
  ASSERT_TRUE(engine);
  std::mt19937 rng(4);
  const std::vector<int32_t> prompt = random_prompt(rng, 100);
  SamplingParams p;
  p.temperature = 1.f, p.max_tokens = 12, p.ignore_eos = true, p.seed = 77, p.n = 3;
  auto collect = [&](const SamplingParams& params) {
    auto stream = engine->loop().add(prompt, params);
    EXPECT_TRUE(stream.ok());
    std::map<int, std::vector<int32_t>> by_index;
    for (std::vector<RequestOutput> outs; !(outs = (*stream)->next()).empty();)
      for (const RequestOutput& o : outs) by_index[o.index].insert(by_index[o.index].end(), o.token_ids.begin(), o.token_ids.end());
    return by_index;
  };
  const int64_t before = settled_stats(*engine).tokens_computed;
  auto three = collect(p);
  const int64_t ran = settled_stats(*engine).tokens_computed - before;
  EXPECT_EQ(three.size(), 3u);
  EXPECT_NE(three[0], three[1]);
  EXPECT_NE(three[1], three[2]);
  // One prefill of 100 tokens; each fork recomputes only the last partial page (4 tokens).
  EXPECT_EQ(ran, 100 + 2 * 4 + 3 * 11);
  EXPECT_EQ(collect(p), three) << "the same seed gives the same samples";
  SamplingParams one = p;
  one.n = 1;
  EXPECT_EQ(collect(one)[0], three[0]);
}

TEST(Sampling, PenaltyHistoryIsTheSameWithAndWithoutCachedPrefixes) {
  std::mt19937 rng(5);
  const std::vector<int32_t> prompt = random_prompt(rng, 150);
  SamplingParams p = greedy(20);
  p.repetition_penalty = 1.8f, p.presence_penalty = 0.7f, p.frequency_penalty = 0.4f;
  auto cached = demo_engine(true), uncached = demo_engine(false);
  ASSERT_TRUE(cached && uncached);
  const auto fresh = generate_all(*cached, {prompt}, p)[0];
  const auto hit = generate_all(*cached, {prompt}, p)[0];  // 144 prompt tokens from the cache
  EXPECT_EQ(settled_stats(*cached).prefix_cache.hits, 144);
  EXPECT_EQ(hit, fresh);
  EXPECT_EQ(generate_all(*uncached, {prompt}, p)[0], fresh);
  EXPECT_NE(generate_all(*uncached, {prompt}, greedy(20))[0], fresh) << "the penalties changed nothing";
}

std::vector<RequestOutput> all_outputs(Engine& e, const std::vector<int32_t>& prompt, const SamplingParams& p) {
  auto stream = e.loop().add(prompt, p);
  EXPECT_TRUE(stream.ok()) << stream.status().to_string();
  std::vector<RequestOutput> all;
  if (!stream.ok()) return all;
  for (std::vector<RequestOutput> outs; !(outs = (*stream)->next()).empty();)
    for (auto& o : outs) all.push_back(std::move(o));
  return all;
}

TEST(Sampling, LogitBiasMinTokensAndTopLogprobs) {
  auto engine = demo_engine();
  ASSERT_TRUE(engine);
  std::mt19937 rng(7);
  const std::vector<int32_t> prompt = random_prompt(rng, 20);
  const int32_t eos = engine->eos_token_ids().at(0);
  SamplingParams p = greedy(10);
  p.ignore_eos = false, p.logit_bias = {{eos, 100.f}}, p.min_tokens = 4, p.logprobs = 5;
  std::vector<int32_t> tokens;
  std::vector<std::vector<TokenLogprob>> tops;
  FinishReason finish = FinishReason::kNone;
  for (const RequestOutput& o : all_outputs(*engine, prompt, p)) {
    tokens.insert(tokens.end(), o.token_ids.begin(), o.token_ids.end());
    tops.insert(tops.end(), o.top_logprobs.begin(), o.top_logprobs.end());
    ASSERT_EQ(o.logprobs.size(), o.token_ids.size());
    if (o.finished()) finish = o.finish;
  }
  // eos is pushed to the top but masked for the first min_tokens tokens, then it ends the sequence.
  ASSERT_EQ(tokens.size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_NE(tokens[i], eos);
  EXPECT_EQ(tokens[4], eos);
  EXPECT_EQ(finish, FinishReason::kStop);
  ASSERT_EQ(tops.size(), 5u);
  for (size_t i = 0; i < tops.size(); ++i) {
    ASSERT_EQ(tops[i].size(), 5u);
    EXPECT_EQ(tops[i][0].token, tokens[i]) << "greedy picks the most likely";
    for (size_t j = 1; j < 5; ++j) EXPECT_LE(tops[i][j].logprob, tops[i][j - 1].logprob);
  }
  EXPECT_NEAR(tops[4][0].logprob, 0.f, 1e-3) << "a +100 bias makes eos certain";
  SamplingParams scored = greedy(1);
  scored.prompt_logprobs_from = 1, scored.prompt_top_logprobs = 3;
  const auto outs = all_outputs(*engine, prompt, scored);
  std::vector<float> lp;
  std::vector<std::vector<TokenLogprob>> ptop;
  for (const auto& o : outs) {
    lp.insert(lp.end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
    ptop.insert(ptop.end(), o.prompt_top_logprobs.begin(), o.prompt_top_logprobs.end());
  }
  ASSERT_EQ(lp.size(), prompt.size() - 1);
  ASSERT_EQ(ptop.size(), lp.size());
  for (size_t i = 0; i < lp.size(); ++i) {
    ASSERT_EQ(ptop[i].size(), 3u);
    EXPECT_LE(lp[i], ptop[i][0].logprob + 1e-5f);
  }
}

TEST(EngineLoop, BadRequestsFailAloneAndShutdownAbortsTheRest) {
  auto engine = demo_engine();
  ASSERT_TRUE(engine);
  std::mt19937 rng(6);
  auto ok = engine->loop().add(random_prompt(rng, 10), greedy(400));
  ASSERT_TRUE(ok.ok());
  SamplingParams bad = greedy(4);
  bad.top_p = 0.f;
  EXPECT_FALSE(engine->loop().add(random_prompt(rng, 10), bad).ok());
  EXPECT_FALSE(engine->loop().add({}, greedy(4)).ok());
  EXPECT_FALSE(engine->loop().add({1, 2, 99999}, greedy(4)).ok());
  EXPECT_FALSE(engine->loop().add(random_prompt(rng, 600), greedy(4)).ok());
  (*ok)->next();  // it runs
  engine->loop().shutdown();
  FinishReason last = FinishReason::kNone;
  for (std::vector<RequestOutput> outs; !(outs = (*ok)->next()).empty();) last = outs.back().finish;
  EXPECT_EQ(last, FinishReason::kAbort);
  EXPECT_FALSE(engine->loop().add(random_prompt(rng, 10), greedy(4)).ok());
}

TEST(OutputProcessor, StopStringsAreHeldBackAndNeverEmitted) {
  std::string pending = "Hello wor";
  int stop = -1;
  EXPECT_EQ(release_text(pending, {"world!"}, false, &stop), "Hello ");
  EXPECT_EQ(pending, "wor");
  pending += "ld!!";
  EXPECT_EQ(release_text(pending, {"world!"}, false, &stop), "");
  EXPECT_EQ(stop, 0);
  pending = "abc";
  EXPECT_EQ(release_text(pending, {"x", "bcd"}, false, &stop), "a");
  EXPECT_EQ(release_text(pending, {"x", "bcd"}, true, &stop), "bc");
  EXPECT_EQ(stop, -1);
}

TEST(OutputProcessor, AStopStringEndsTheSequenceOnTheClientSide) {
  auto engine = demo_engine();
  ASSERT_TRUE(engine);
  auto prompt = engine->tokenizer().encode("def fibonacci(n):", true);
  ASSERT_TRUE(prompt.ok());
  const std::vector<int32_t> ids = generate_all(*engine, {*prompt}, greedy(32))[0];
  const std::string full = engine->tokenizer().decode(ids, true);
  ASSERT_GT(full.size(), 20u);
  SamplingParams p = greedy(32);
  p.stop = {full.substr(10, 4)};
  OutputProcessor text(engine->tokenizer(), p, *prompt);
  auto stream = engine->loop().add(*prompt, p);
  ASSERT_TRUE(stream.ok());
  std::string got;
  FinishReason finish = FinishReason::kNone;
  for (std::vector<RequestOutput> outs; !(outs = (*stream)->next()).empty();)
    for (const RequestOutput& o : outs) {
      if (text.finished()) break;
      TextDelta d = text.process(o);
      got += d.text;
      if (d.finish != FinishReason::kNone) finish = d.finish;
      if (text.finished() && !o.finished()) (*stream)->abort();
    }
  EXPECT_EQ(finish, FinishReason::kStop);
  EXPECT_EQ(got, full.substr(0, full.find(p.stop[0])));
  EXPECT_EQ(settled_stats(*engine).kv_cache_usage, 0.0);
}

}  // namespace
}  // namespace tk::test
