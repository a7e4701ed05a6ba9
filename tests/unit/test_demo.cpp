// The bundled demo model (models/demo) against the figures transformers produced when it was
// trained (reference.json): held-out perplexity within 0.5% on the CPU, and the same 32-token
// greedy continuations. The model declares the 512 positions it was trained on.
#include "backend_cpu/cpu_backend.h"
#include "golden_util.h"

namespace tk::test {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

TEST(DemoModel, GreedyContinuationsMatchTransformers) {
  nlohmann::json ref = read_json(kDemo + "/reference.json");
  EngineConfig config;
  config.model = kDemo;
  config.device = DeviceChoice::kCpu;
  auto engine = Engine::create(config);
  ASSERT_TRUE(engine.ok()) << engine.status().to_string();
  EXPECT_EQ((*engine)->config().max_model_len, 512);  // max_position_embeddings: the training context
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

// llama.cpp's windows of n_ctx = 512 tokens: the model's whole context.
TEST(DemoModel, HeldOutPerplexityMatchesTransformers) {
  nlohmann::json ref = read_json(kDemo + "/reference.json");
  auto backend = make_cpu_backend();
  const Perplexity p = teacher_forced_perplexity(*backend, kDemo, kDemo + "/heldout.txt", ref["n_ctx"].get<int>());
  EXPECT_EQ(p.count, ref["count"].get<int64_t>());
  EXPECT_NEAR(p.ppl / ref["ppl"].get<double>(), 1.0, 5e-3) << "tokamak " << p.ppl << " transformers " << ref["ppl"];
}

}  // namespace
}  // namespace tk::test
