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
  config.model = kDemo;
  config.device = DeviceChoice::kCpu;
  config.max_model_len = 512;
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  for (const auto& g : ref["greedy"]) {
    auto prompt = (*engine)->tokenizer().encode(g["text"].get<std::string>(), true);
    ASSERT_TRUE(prompt.ok());
    ASSERT_EQ(*prompt, g["prompt_ids"].get<std::vector<int32_t>>()) << g["text"];
    SamplingParams p;
    p.temperature = 0.f, p.max_tokens = static_cast<int>(g["greedy_ids"].size()), p.ignore_eos = true;
    auto stream = (*engine)->loop().add(*prompt, p);
    ASSERT_TRUE(stream.ok()) << stream.status().to_string();
    OutputProcessor detok((*engine)->tokenizer(), p, *prompt);
    std::vector<int32_t> got;
    std::string text;
    for (std::vector<RequestOutput> outs; !(outs = (*stream)->next()).empty();)
      for (const auto& o : outs) got.insert(got.end(), o.token_ids.begin(), o.token_ids.end()), text += detok.process(o).text;
    EXPECT_EQ(got, g["greedy_ids"].get<std::vector<int32_t>>()) << g["text"];
    EXPECT_EQ(text, g["greedy_text"].get<std::string>());
  }
}

TEST(DemoModel, HeldOutPerplexityMatchesTransformers) {
  nlohmann::json ref = read_json(kDemo + "/reference.json");
  const int ctx = ref["n_ctx"];
  EngineConfig config;
  config.model = kDemo;
  config.device = DeviceChoice::kCpu;
  config.max_model_len = ctx + 1;  // the window plus the token a request generates
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
    for (float x : score_window(**engine, window, ctx / 2)) nll -= x, ++count;
  }
  EXPECT_EQ(count, ref["count"].get<int64_t>());
  const double ppl = std::exp(nll / static_cast<double>(count));
  EXPECT_NEAR(ppl / ref["ppl"].get<double>(), 1.0, 5e-3) << "tokamak " << ppl << " transformers " << ref["ppl"];
}

}  // namespace
}  // namespace tk::test
