// The bundled demo model (models/demo) against the figures transformers produced when it was
// trained (reference.json): held-out perplexity within 0.5% on the CPU, and the same 32-token
// greedy continuations.
#include "golden_util.h"

namespace tk::test {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

TEST(DemoModel, GreedyContinuationsMatchTransformers) {
  nlohmann::json ref = read_json(kDemo + "/reference.json");
  EngineConfig config;
  config.model_dir = kDemo;
  config.device = "cpu";
  config.max_model_len = 512;
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  for (const auto& g : ref["greedy"]) {
    auto prompt = (*engine)->tokenizer().encode(g["text"].get<std::string>(), true);
    ASSERT_TRUE(prompt.ok());
    ASSERT_EQ(*prompt, g["prompt_ids"].get<std::vector<int32_t>>()) << g["text"];
    SamplingParams p;
    p.temperature = 0.f, p.max_tokens = static_cast<int>(g["greedy_ids"].size()), p.ignore_eos = true;
    ASSERT_TRUE((*engine)->add_request(*prompt, p).ok());
    std::vector<int32_t> got;
    std::string text;
    while ((*engine)->has_unfinished()) {
      auto outs = (*engine)->step();
      ASSERT_TRUE(outs.ok()) << outs.status().to_string();
      for (const auto& o : *outs) got.insert(got.end(), o.token_ids.begin(), o.token_ids.end()), text += o.text;
    }
    EXPECT_EQ(got, g["greedy_ids"].get<std::vector<int32_t>>()) << g["text"];
    EXPECT_EQ(text, g["greedy_text"].get<std::string>());
  }
}

TEST(DemoModel, HeldOutPerplexityMatchesTransformers) {
  nlohmann::json ref = read_json(kDemo + "/reference.json");
  const int ctx = ref["n_ctx"];
  EngineConfig config;
  config.model_dir = kDemo;
  config.device = "cpu";
  config.max_model_len = ctx;
  config.max_num_batched_tokens = ctx;
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  auto text = read_text_file(kDemo + "/heldout.txt");
  ASSERT_TRUE(text.ok());
  auto tokens = (*engine)->tokenizer().encode(*text, true);
  auto bos = (*engine)->tokenizer().encode("", true);
  ASSERT_TRUE(tokens.ok() && bos.ok() && !bos->empty());
  double nll = 0;
  int64_t count = 0;
  for (size_t c = 0; c + ctx <= tokens->size(); c += ctx) {
    std::vector<int32_t> window(tokens->begin() + c, tokens->begin() + c + ctx);
    window[0] = (*bos)[0];
    auto lp = (*engine)->score(window, ctx / 2);
    ASSERT_TRUE(lp.ok());
    for (float x : *lp) nll -= x, ++count;
  }
  EXPECT_EQ(count, ref["count"].get<int64_t>());
  const double ppl = std::exp(nll / static_cast<double>(count));
  EXPECT_NEAR(ppl / ref["ppl"].get<double>(), 1.0, 5e-3) << "tokamak " << ppl << " transformers " << ref["ppl"];
}

}  // namespace
}  // namespace tk::test
