// Overlap scheduling (EngineConfig::async_scheduling) against the synchronous loop, token for
// token, on the CPU backend and the demo model: greedy and seeded sampling, penalties, log-probs,
// logit_bias and min_tokens, stop tokens and eos, n > 1, prompt log-probs and grammars (which run
// synchronously), prefix caching, preemption under a tight cache, aborts, stop strings on the
// client's side, shutdown with a step out. The CPU samples at once, but the overlapped path —
// pending tokens in the scheduler, the next step's inputs filled in by the backend from its copy
// of the last sampling, update() one step behind — is the one the GPU takes.
#include <map>
#include <random>
#include <thread>

#include "golden_util.h"

namespace tk::test {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

EngineConfig demo_config(bool async, int max_num_seqs = 16, int64_t kv_tokens = 0) {
  EngineConfig c;
  c.model = kDemo;
  c.device = DeviceChoice::kCpu;
  c.max_model_len = 256;
  c.max_num_seqs = max_num_seqs;
  c.max_num_batched_tokens = 256;
  c.kv_cache_tokens = kv_tokens;
  c.async_scheduling = async;
  return c;
}

std::unique_ptr<Engine> demo_engine(bool async, int max_num_seqs = 16, int64_t kv_tokens = 0) {
  auto e = Engine::create(demo_config(async, max_num_seqs, kv_tokens));
  EXPECT_TRUE(e.ok()) << e.status().to_string();
  return e.ok() ? std::move(*e) : nullptr;
}

std::vector<int32_t> random_prompt(std::mt19937& rng, int len) {
  std::vector<int32_t> p(len);
  for (int32_t& t : p) t = static_cast<int32_t>(2 + rng() % 8000);
  return p;
}

// Everything a sequence's outputs carry that the two loops must agree on.
struct SeqOut {
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::vector<std::vector<TokenLogprob>> top;
  std::vector<float> prompt_logprobs;
  FinishReason finish = FinishReason::kNone;
  std::optional<int32_t> stop_token;
  int num_cached_tokens = -1;
  int finals = 0;  // final outputs seen (exactly one)
};
using RequestOuts = std::map<int, SeqOut>;  // by sequence index

std::vector<RequestOuts> run_all(Engine& e, const std::vector<EngineLoop::NewRequest>& requests) {
  auto streams = e.loop().add_all(requests);
  EXPECT_TRUE(streams.ok()) << streams.status().to_string();
  std::vector<RequestOuts> all(requests.size());
  if (!streams.ok()) return all;
  for (size_t i = 0; i < requests.size(); ++i)
    for (std::vector<RequestOutput> outs; !(outs = (*streams)[i]->next()).empty();)
      for (RequestOutput& o : outs) {
        EXPECT_NE(o.finish, FinishReason::kError) << o.error;
        SeqOut& s = all[i][o.index];
        s.ids.insert(s.ids.end(), o.token_ids.begin(), o.token_ids.end());
        s.logprobs.insert(s.logprobs.end(), o.logprobs.begin(), o.logprobs.end());
        for (auto& t : o.top_logprobs) s.top.push_back(std::move(t));
        s.prompt_logprobs.insert(s.prompt_logprobs.end(), o.prompt_logprobs.begin(), o.prompt_logprobs.end());
        if (o.finished()) {
          ++s.finals;
          s.finish = o.finish, s.stop_token = o.stop_token, s.num_cached_tokens = o.num_cached_tokens;
        }
      }
  return all;
}

// The first difference, or "".
std::string difference(const std::vector<RequestOuts>& a, const std::vector<RequestOuts>& b) {
  if (a.size() != b.size()) return "request counts differ";
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string r = "request " + std::to_string(i);
    if (a[i].size() != b[i].size()) return r + ": sequence counts differ";
    for (const auto& [index, x] : a[i]) {
      const auto it = b[i].find(index);
      if (it == b[i].end()) return r + ": sequence " + std::to_string(index) + " missing";
      const SeqOut& y = it->second;
      const std::string s = r + " sequence " + std::to_string(index);
      auto text = [](const std::vector<int32_t>& v) {
        std::string t;
        for (int32_t id : v) t += " " + std::to_string(id);
        return t;
      };
      if (x.ids != y.ids)
        return s + ": tokens differ:" + text(x.ids) + " (" + finish_reason_name(x.finish) + ") vs" + text(y.ids) + " (" +
               finish_reason_name(y.finish) + ")";
      if (x.logprobs != y.logprobs) return s + ": log-probs differ";
      if (x.top.size() != y.top.size()) return s + ": top log-prob counts differ";
      for (size_t t = 0; t < x.top.size(); ++t) {
        if (x.top[t].size() != y.top[t].size()) return s + ": top log-probs differ";
        for (size_t k = 0; k < x.top[t].size(); ++k)
          if (x.top[t][k].token != y.top[t][k].token || x.top[t][k].logprob != y.top[t][k].logprob)
            return s + ": top log-probs differ";
      }
      if (x.prompt_logprobs != y.prompt_logprobs) return s + ": prompt log-probs differ";
      if (x.finish != y.finish) return s + ": finish " + finish_reason_name(x.finish) + " vs " + finish_reason_name(y.finish);
      if (x.stop_token != y.stop_token) return s + ": stop tokens differ";
      if (x.num_cached_tokens != y.num_cached_tokens) return s + ": cached tokens differ";
      if (x.finals != 1 || y.finals != 1) return s + ": not exactly one final output";
    }
  }
  return "";
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

// A mix of what a request can ask for; prompts 3 and up share a 64-token prefix.
std::vector<EngineLoop::NewRequest> mixed_requests(int count) {
  std::mt19937 rng(11);
  const std::vector<int32_t> prefix = random_prompt(rng, 64);
  std::vector<EngineLoop::NewRequest> out;
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> prompt = random_prompt(rng, 5 + static_cast<int>(rng() % 60));
    if (i >= 3 && i % 2 == 1) prompt.insert(prompt.begin(), prefix.begin(), prefix.end());
    SamplingParams p;
    p.max_tokens = 6 + static_cast<int>(rng() % 20);
    p.seed = 100 + i;
    p.temperature = 0.f;
    switch (i % 8) {
      case 0: p.ignore_eos = true; break;
      case 1: p.temperature = 1.f, p.top_p = 0.9f, p.top_k = 50; break;
      case 2: p.temperature = 0.8f, p.repetition_penalty = 1.3f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.3f; break;
      case 3: p.temperature = 1.f, p.n = 3; break;
      case 4: p.logprobs = 3; break;
      case 5: p.min_tokens = 4, p.logit_bias = {{17, 4.f}, {29, -100.f}}, p.temperature = 1.f; break;
      case 6: p.prompt_logprobs_from = 1, p.prompt_top_logprobs = 0; break;
      case 7: p.temperature = 1.f, p.min_p = 0.05f, p.logprobs = 0; break;
    }
    out.push_back({std::move(prompt), p});
  }
  return out;
}

// Stop tokens that end sequences part-way: for every third request, a token its sequence 0
// generates at step 2..7 of `ref`.
void add_stop_tokens(std::vector<EngineLoop::NewRequest>& requests, const std::vector<RequestOuts>& ref) {
  for (size_t i = 0; i < requests.size(); i += 3) {
    const std::vector<int32_t>& ids = ref[i].at(0).ids;
    if (ids.size() < 3) continue;
    requests[i].params.stop_token_ids = {ids[std::min(ids.size() - 1, 2 + i % 6)]};
  }
}

TEST(Overlap, SameOutputsAsTheSynchronousLoop) {
  auto sync = demo_engine(false), async = demo_engine(true);
  ASSERT_TRUE(sync && async);
  std::vector<EngineLoop::NewRequest> requests = mixed_requests(24);
  const std::vector<RequestOuts> plain = run_all(*sync, requests);
  EXPECT_EQ(difference(run_all(*async, requests), plain), "");  // also fills both prefix caches alike
  add_stop_tokens(requests, plain);
  const std::vector<RequestOuts> want = run_all(*sync, requests);
  int stopped = 0;
  for (const RequestOuts& r : want) stopped += r.at(0).finish == FinishReason::kStop;
  EXPECT_GE(stopped, 5) << "the stop tokens should end sequences part-way";
  const EngineStats before = settled_stats(*async);
  const std::vector<RequestOuts> got = run_all(*async, requests);  // prompts cached on both engines now
  EXPECT_EQ(difference(got, want), "");
  const EngineStats s = settled_stats(*async);
  EXPECT_GT(s.overlapped_steps - before.overlapped_steps, 20) << "the overlapped path did not run";
  EXPECT_LT(s.overlapped_steps - before.overlapped_steps, s.steps - before.steps)
      << "prompt log-prob steps should have run synchronously";
  EXPECT_EQ(settled_stats(*sync).overlapped_steps, 0);
  EXPECT_EQ(s.kv_cache_usage, 0.0) << "KV pages leaked";
  EXPECT_GT(s.prefix_cache.hits, 0);
  EXPECT_GT(s.decode_steps, 0);
  EXPECT_GT(s.step_host_seconds, 0);
  EXPECT_EQ(s.step_device_seconds, 0) << "the CPU backend does not time steps";
}

TEST(Overlap, PreemptionUnderATightCacheKeepsOutputs) {
  auto roomy = demo_engine(false), tight = demo_engine(true, 16, /*kv_tokens=*/640);
  ASSERT_TRUE(roomy && tight);
  std::vector<EngineLoop::NewRequest> requests = mixed_requests(10);
  for (auto& r : requests) r.params.prompt_logprobs_from = -1, r.params.max_tokens += 10;
  add_stop_tokens(requests, run_all(*roomy, requests));
  for (auto& r : requests) r.params.cache_salt = "cold";  // both engines compute every prompt
  const int64_t tight_before = settled_stats(*tight).tokens_computed, roomy_before = settled_stats(*roomy).tokens_computed;
  EXPECT_EQ(difference(run_all(*tight, requests), run_all(*roomy, requests)), "");
  const EngineStats s = settled_stats(*tight);
  EXPECT_GT(s.tokens_computed - tight_before, settled_stats(*roomy).tokens_computed - roomy_before)
      << "no sequence was preempted and recomputed";
  EXPECT_EQ(s.kv_cache_usage, 0.0);
}

// The cost of overlap: a sequence that ends on a stop token at step N is already in step N+1,
// which computes one more row for it; that row's token is never emitted.
TEST(Overlap, AStopTokenCostsOneComputedRowAndNoEmittedToken) {
  auto sync = demo_engine(false), async = demo_engine(true);
  ASSERT_TRUE(sync && async);
  std::mt19937 rng(3);
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 30, p.ignore_eos = true;
  std::vector<EngineLoop::NewRequest> one = {{random_prompt(rng, 40), p}};
  const std::vector<int32_t> ids = run_all(*sync, one)[0].at(0).ids;
  ASSERT_EQ(ids.size(), 30u);
  EXPECT_EQ(run_all(*async, one)[0].at(0).ids, ids);  // both caches hold the prompt now
  one[0].params.stop_token_ids = {ids[9]};
  const int64_t sync_before = settled_stats(*sync).tokens_computed, async_before = settled_stats(*async).tokens_computed;
  const auto want = run_all(*sync, one), got = run_all(*async, one);
  EXPECT_EQ(difference(got, want), "");
  const auto first = std::find(ids.begin(), ids.end(), ids[9]) - ids.begin();
  EXPECT_EQ(got[0].at(0).ids.size(), static_cast<size_t>(first + 1));
  EXPECT_EQ(got[0].at(0).finish, FinishReason::kStop);
  const int64_t sync_ran = settled_stats(*sync).tokens_computed - sync_before;
  const int64_t async_ran = settled_stats(*async).tokens_computed - async_before;
  EXPECT_EQ(async_ran, sync_ran + 1);
  // A length limit is known when the step is launched: no extra row.
  one[0].params.stop_token_ids.clear();
  const int64_t a = settled_stats(*async).tokens_computed, b = settled_stats(*sync).tokens_computed;
  EXPECT_EQ(difference(run_all(*async, one), run_all(*sync, one)), "");
  EXPECT_EQ(settled_stats(*async).tokens_computed - a, settled_stats(*sync).tokens_computed - b);
}

// Aborts driven step by step on the engine core (no thread): a request aborted while its step is
// out ends at once with kAbort, what it emitted is a prefix of its unaborted output, its token
// still on the device is dropped, and every page comes back.
TEST(Overlap, AbortsWhileAStepIsOut) {
  for (bool async : {false, true}) {
    EngineConfig c = demo_config(async);
    auto loaded = load_model(c);
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    auto core = EngineCore::create(c, std::move(*loaded));
    ASSERT_TRUE(core.ok()) << core.status().to_string();
    EngineCore& e = **core;
    std::mt19937 rng(5);
    SamplingParams p;
    p.temperature = 1.f, p.max_tokens = 24, p.ignore_eos = true, p.n = 2;
    std::vector<std::vector<int32_t>> prompts;
    for (int i = 0; i < 6; ++i) prompts.push_back(random_prompt(rng, 10 + i * 7));
    std::map<std::pair<int64_t, int>, std::vector<int32_t>> full, cut;
    std::map<std::pair<int64_t, int>, FinishReason> finish;
    std::map<std::pair<int64_t, int>, int> finals;
    auto drive = [&](int64_t id_base, int abort_at_step, std::map<std::pair<int64_t, int>, std::vector<int32_t>>& got) {
      for (int i = 0; i < 6; ++i) {
        p.seed = 7 + i;
        e.add(id_base + i, prompts[i], p);
      }
      for (int step = 0; e.has_work() && step < 200; ++step) {
        std::vector<RequestOutput> outs = e.step();
        if (step == abort_at_step) {
          e.abort(id_base + 1, -1, outs);  // both sequences
          e.abort(id_base + 4, 1, outs);   // one of two
        }
        for (const RequestOutput& o : outs) {
          auto key = std::make_pair(o.request_id - id_base, o.index);
          got[key].insert(got[key].end(), o.token_ids.begin(), o.token_ids.end());
          if (o.finished() && id_base > 0) finish[key] = o.finish, ++finals[key];
        }
      }
      EXPECT_FALSE(e.has_work());
    };
    drive(0, -1, full);
    drive(100, 5, cut);
    for (const auto& [key, ids] : full) {
      const bool aborted = key.first == 1 || (key.first == 4 && key.second == 1);
      ASSERT_TRUE(cut.count(key)) << "async " << async;
      EXPECT_EQ(finals[key], 1) << "async " << async;
      EXPECT_EQ(finish[key], aborted ? FinishReason::kAbort : FinishReason::kLength) << "async " << async;
      if (!aborted) {
        EXPECT_EQ(cut[key], ids) << "async " << async;
        continue;
      }
      ASSERT_LT(cut[key].size(), ids.size()) << "async " << async;
      EXPECT_TRUE(std::equal(cut[key].begin(), cut[key].end(), ids.begin())) << "not a prefix, async " << async;
    }
    EXPECT_EQ(e.stats().kv_cache_usage, 0.0) << "async " << async;
  }
}

// Stop strings end sequences on the client's side, which then aborts them; the text is the same.
TEST(Overlap, StopStringsGiveTheSameText) {
  auto sync = demo_engine(false), async = demo_engine(true);
  ASSERT_TRUE(sync && async);
  const Tokenizer& tok = sync->tokenizer();
  auto text_of = [&](Engine& e, const std::string& prompt, const SamplingParams& p) {
    auto ids = tok.encode(prompt, true);
    EXPECT_TRUE(ids.ok());
    auto stream = e.loop().add(*ids, p);
    EXPECT_TRUE(stream.ok());
    OutputProcessor proc(tok, p, *ids);
    std::string text;
    FinishReason finish = FinishReason::kNone;
    for (std::vector<RequestOutput> outs; !(outs = (*stream)->next()).empty();)
      for (const RequestOutput& o : outs) {
        if (proc.finished()) continue;
        TextDelta d = proc.process(o);
        text += d.text;
        if (d.finish != FinishReason::kNone) finish = d.finish, (*stream)->abort(o.index);
      }
    return std::make_pair(text, finish);
  };
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 40, p.ignore_eos = true;
  const std::string prompt = "Once upon a time, in a small village by the sea,";
  const std::string whole = text_of(*sync, prompt, p).first;
  ASSERT_GT(whole.size(), 20u);
  int checked = 0;
  for (size_t at : {whole.size() / 3, whole.size() - 3}) {
    SamplingParams s = p;
    s.stop = {whole.substr(at, 3)};
    const auto want = text_of(*sync, prompt, s);
    EXPECT_EQ(want.second, FinishReason::kStop);
    EXPECT_EQ(text_of(*async, prompt, s), want) << "stop '" << s.stop[0] << "'";
    ++checked;
  }
  EXPECT_EQ(checked, 2);
}

// Grammar rows need the tokens before them on the host: those steps run synchronously, the
// others overlap, and the outputs agree.
TEST(Overlap, GrammarStepsRunSynchronously) {
  auto sync = demo_engine(false), async = demo_engine(true);
  ASSERT_TRUE(sync && async);
  auto vocab = grammar_vocabulary(sync->tokenizer(), sync->eos_token_ids(), sync->model_config().vocab_size);
  ASSERT_TRUE(vocab.ok()) << vocab.status().to_string();
  auto g = grammar::choice_grammar({"yes", "no", "maybe not"});
  ASSERT_TRUE(g.ok());
  auto compiled = grammar::CompiledGrammar::compile(*g, *vocab);
  ASSERT_TRUE(compiled.ok()) << compiled.status().to_string();
  std::vector<EngineLoop::NewRequest> requests = mixed_requests(8);
  for (size_t i = 0; i < requests.size(); i += 3) {
    requests[i].params.grammar = *compiled;
    requests[i].params.ignore_eos = false, requests[i].params.temperature = 1.f, requests[i].params.min_tokens = 0;
  }
  const EngineStats before = settled_stats(*async);
  EXPECT_EQ(difference(run_all(*async, requests), run_all(*sync, requests)), "");
  const EngineStats s = settled_stats(*async);
  EXPECT_GT(s.overlapped_steps - before.overlapped_steps, 0);
  EXPECT_LT(s.overlapped_steps - before.overlapped_steps, s.steps - before.steps);
}

// Shutdown with a step out: every stream still ends.
TEST(Overlap, ShutdownWithAStepOutEndsEveryStream) {
  auto engine = demo_engine(true);
  ASSERT_TRUE(engine);
  std::mt19937 rng(9);
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 200, p.ignore_eos = true;
  std::vector<EngineLoop::NewRequest> requests;
  for (int i = 0; i < 8; ++i) requests.push_back({random_prompt(rng, 20), p});
  auto streams = engine->loop().add_all(requests);
  ASSERT_TRUE(streams.ok());
  EXPECT_FALSE((*streams)[0]->next().empty());
  engine->loop().shutdown();
  for (auto& s : *streams) {
    int finals = 0;
    for (std::vector<RequestOutput> outs; !(outs = s->next()).empty();)
      for (const RequestOutput& o : outs) finals += o.finished();
    EXPECT_EQ(finals, 1);
    EXPECT_TRUE(s->ended());
  }
}

}  // namespace
}  // namespace tk::test
