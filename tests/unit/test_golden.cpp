// The whole model on the CPU backend against transformers' fp32 logits, for every architecture:
// all prompts of a case in one batch of mixed lengths, prefilled in chunks through the paged
// cache, then 8 decode steps fed the golden greedy tokens. Every logit row within 1e-4 relative
// L2; then the engine, sampling greedily on its own, must produce the same tokens.
#include "golden_util.h"

#include "backend_cpu/cpu_backend.h"

namespace tk::test {
namespace {

constexpr double kTolerance = 1e-4;

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, TeacherForcedLogitsMatchTransformers) {
  auto backend = make_cpu_backend();
  TeacherForcing tf(*backend, golden_dir(GetParam()), /*page_size=*/8, 64);  // small pages: prompts cross them
  const int64_t vocab = tf.model->config().vocab_size;
  auto golden = load_golden(GetParam());
  std::vector<Sequence*> seqs;
  for (const GoldenPrompt& g : golden) {
    std::vector<int32_t> all = g.prompt_ids;
    all.insert(all.end(), g.greedy_ids.begin(), g.greedy_ids.end());
    seqs.push_back(tf.add(all));
  }
  // Prefill in two chunks per prompt (the second on top of the cached first), all prompts batched.
  std::vector<int> done(golden.size(), 0);
  for (int chunk = 0; chunk < 2; ++chunk) {
    ScheduledStep step;
    std::vector<int32_t> rows;
    std::vector<std::pair<size_t, int>> row_src;  // (prompt, position)
    for (size_t i = 0; i < golden.size(); ++i) {
      const int len = static_cast<int>(golden[i].prompt_ids.size());
      const int n = chunk == 0 ? (len + 1) / 2 : len - done[i];
      if (n == 0) continue;
      for (int t = 0; t < n; ++t) rows.push_back(step.num_tokens() + t), row_src.push_back({i, done[i] + t});
      step.seqs.push_back({seqs[i], done[i], n, false});
      done[i] += n;
    }
    std::vector<float> logits = tf.run(step, rows);
    for (size_t r = 0; r < rows.size(); ++r) {
      auto [i, pos] = row_src[r];
      double err = rel_l2(&logits[r * vocab], &golden[i].prefill[pos * vocab], vocab);
      EXPECT_LT(err, kTolerance) << GetParam() << " prompt " << i << " prefill position " << pos;
    }
  }
  // Decode: one token per prompt per step, the golden greedy token as input.
  for (int k = 1; k <= 8; ++k) {
    ScheduledStep step;
    std::vector<int32_t> rows;
    for (size_t i = 0; i < golden.size(); ++i) {
      rows.push_back(static_cast<int32_t>(i));
      step.seqs.push_back({seqs[i], done[i]++, 1, true});
    }
    std::vector<float> logits = tf.run(step, rows);
    for (size_t i = 0; i < golden.size(); ++i) {
      double err = rel_l2(&logits[i * vocab], &golden[i].steps[k * vocab], vocab);
      EXPECT_LT(err, kTolerance) << GetParam() << " prompt " << i << " decode step " << k;
    }
  }
}

TEST_P(GoldenTest, EngineGreedyTokensMatchTransformers) {
  EngineConfig config;
  config.model = golden_dir(GetParam());
  config.device = DeviceChoice::kCpu;
  config.page_size = 8;
  config.max_num_batched_tokens = 16;  // forces chunked prefill of the longer prompts
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto golden = load_golden(GetParam());
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = 8, p.ignore_eos = true;
  std::vector<std::vector<int32_t>> prompts;
  for (const GoldenPrompt& g : golden) prompts.push_back(g.prompt_ids);
  const auto got = generate_all(**engine, prompts, p);
  for (size_t i = 0; i < golden.size(); ++i) EXPECT_EQ(got[i], golden[i].greedy_ids) << GetParam() << " prompt " << i;
}

INSTANTIATE_TEST_SUITE_P(Architectures, GoldenTest, ::testing::ValuesIn(golden_cases()));

TEST(GoldenPerplexity, MatchesTransformersLlamaCppMethod) {
  nlohmann::json ref = read_json(std::string(TOKAMAK_TEST_DATA) + "/golden/perplexity_case.json");
  EngineConfig config;
  config.model = golden_dir(ref["case"]);
  config.device = DeviceChoice::kCpu;
  config.max_num_batched_tokens = 32;  // each window prefilled in two chunks
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto text = read_text_file(std::string(TOKAMAK_TEST_DATA) + "/golden/" + ref["text_file"].get<std::string>());
  ASSERT_TRUE(text.ok());
  auto tokens = (*engine)->tokenizer().encode(*text, true);
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(static_cast<int64_t>(tokens->size()), ref["num_tokens"].get<int64_t>());
  const int ctx = ref["n_ctx"];
  const std::vector<double> want = ref["logprobs"].get<std::vector<double>>();
  double nll = 0;
  size_t k = 0;
  for (int c = 0; c < ref["n_chunk"].get<int>(); ++c) {
    std::vector<int32_t> window(tokens->begin() + c * ctx, tokens->begin() + (c + 1) * ctx);
    const std::vector<float> lp = score_window(**engine, window, ctx / 2);
    for (float x : lp) {
      ASSERT_LT(k, want.size());
      EXPECT_NEAR(x, want[k], 1e-3 * std::max(1.0, std::fabs(want[k]))) << "token " << k;
      nll -= x, ++k;
    }
  }
  EXPECT_EQ(k, want.size());
  const double ppl = std::exp(nll / static_cast<double>(k));
  EXPECT_NEAR(ppl / ref["ppl"].get<double>(), 1.0, 1e-4);
}

}  // namespace
}  // namespace tk::test
