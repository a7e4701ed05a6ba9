// Structured output through the real engine on the CPU backend and the demo model: grammars
// (choices, regexes) obeyed at temperature 1 and greedily, n > 1 forks with their own matchers,
// and the interplay with min_tokens, logit_bias, penalties and log-probs; a grammar that dead-ends
// ends its sequence with an error instead of emitting a token outside it.
#include <cmath>
#include <regex>
#include <set>

#include "golden_util.h"

namespace tk::test {
namespace {

const std::string kDemo = std::string(TOKAMAK_SOURCE_DIR) + "/models/demo";

class StructuredTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineConfig c;
    c.model = kDemo;
    c.device = DeviceChoice::kCpu;
    c.max_model_len = 256;
    c.max_num_seqs = 16;
    c.max_num_batched_tokens = 256;
    auto e = Engine::create(c);
    ASSERT_TRUE(e.ok()) << e.status().to_string();
    engine_ = std::move(*e).release();
    auto v = grammar_vocabulary(engine_->tokenizer(), engine_->eos_token_ids(), engine_->model_config().vocab_size);
    ASSERT_TRUE(v.ok()) << v.status().to_string();
    vocab_ = new std::shared_ptr<const grammar::Vocabulary>(*v);
  }
  static void TearDownTestSuite() {
    delete vocab_;
    delete engine_;
  }

  static std::shared_ptr<const grammar::CompiledGrammar> compile(const Result<grammar::Grammar>& g) {
    EXPECT_TRUE(g.ok()) << g.status().to_string();
    auto c = grammar::CompiledGrammar::compile(*g, *vocab_);
    EXPECT_TRUE(c.ok()) << c.status().to_string();
    return *c;
  }
  std::vector<int32_t> prompt(const std::string& text) {
    auto ids = engine_->tokenizer().encode(text, true);
    EXPECT_TRUE(ids.ok());
    return *ids;
  }
  bool is_eos(int32_t id) const {
    const auto& eos = engine_->eos_token_ids();
    return std::find(eos.begin(), eos.end(), id) != eos.end();
  }

  struct Output {
    std::string text;  // without the final eos
    std::vector<int32_t> ids;
    std::vector<float> logprobs;
    std::vector<std::vector<TokenLogprob>> top;
    FinishReason finish = FinishReason::kNone;
    std::string error;
  };
  // Every sequence of one request.
  std::vector<Output> run(const std::vector<int32_t>& p, const SamplingParams& params) {
    std::vector<Output> out(params.n);
    auto s = engine_->loop().add(p, params);
    EXPECT_TRUE(s.ok()) << s.status().to_string();
    if (!s.ok()) return out;
    for (std::vector<RequestOutput> outs; !(outs = (*s)->next()).empty();)
      for (RequestOutput& o : outs) {
        Output& r = out[o.index];
        r.ids.insert(r.ids.end(), o.token_ids.begin(), o.token_ids.end());
        r.logprobs.insert(r.logprobs.end(), o.logprobs.begin(), o.logprobs.end());
        for (auto& t : o.top_logprobs) r.top.push_back(std::move(t));
        if (o.finished()) r.finish = o.finish, r.error = o.error;
      }
    for (Output& r : out) {
      std::vector<int32_t> text_ids = r.ids;
      if (!text_ids.empty() && is_eos(text_ids.back())) text_ids.pop_back();
      r.text = engine_->tokenizer().decode(text_ids, false);
    }
    return out;
  }

  static Engine* engine_;
  static std::shared_ptr<const grammar::Vocabulary>* vocab_;
};

Engine* StructuredTest::engine_ = nullptr;
std::shared_ptr<const grammar::Vocabulary>* StructuredTest::vocab_ = nullptr;

SamplingParams sampled(uint64_t seed, int max_tokens = 64) {
  SamplingParams p;
  p.temperature = 1.f, p.top_p = 1.f, p.max_tokens = max_tokens, p.seed = seed;
  return p;
}

TEST_F(StructuredTest, ChoicesAtTemperatureOneAndGreedy) {
  const std::vector<std::string> choices = {"yes", "no", "maybe not", "Paris, France"};
  auto g = compile(grammar::choice_grammar(choices));
  std::set<std::string> seen;
  for (int k = 0; k < 6; ++k) {
    SamplingParams p = k == 5 ? SamplingParams{} : sampled(100 + k);
    if (k == 5) p.temperature = 0.f, p.max_tokens = 64;
    p.n = k == 5 ? 1 : 3;  // forks: each sequence has its own matcher
    p.grammar = g;
    for (const Output& o : run(prompt(k % 2 ? "The answer is" : "Once upon a time"), p)) {
      EXPECT_EQ(o.finish, FinishReason::kStop) << o.error;
      EXPECT_TRUE(std::find(choices.begin(), choices.end(), o.text) != choices.end()) << "'" << o.text << "'";
      ASSERT_FALSE(o.ids.empty());
      EXPECT_TRUE(is_eos(o.ids.back()));
      seen.insert(o.text);
    }
  }
  EXPECT_GE(seen.size(), 2u) << "temperature 1 should pick more than one choice in 16 samples";
}

TEST_F(StructuredTest, RegexWithPenaltiesAndLogitBias) {
  const std::string re = "[A-Z][a-z]{2,8} (is|was) [0-9]{1,3}";
  auto g = compile(grammar::regex_to_grammar(re));
  const int32_t the = *engine_->tokenizer().encode(" the", false)->begin();
  for (int k = 0; k < 4; ++k) {
    SamplingParams p = sampled(7 + k);
    p.grammar = g;
    p.repetition_penalty = 1.3f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.5f;
    p.logit_bias = {{the, 100.f}};  // a strong bias towards a token the grammar forbids
    for (const Output& o : run(prompt("Tell me"), p)) {
      EXPECT_EQ(o.finish, FinishReason::kStop) << o.error;
      EXPECT_TRUE(std::regex_match(o.text, std::regex(re))) << "'" << o.text << "'";
      EXPECT_TRUE(std::find(o.ids.begin(), o.ids.end(), the) == o.ids.end());
    }
  }
}

// The grammar allows exactly one first token: after the mask it has probability 1, and so has
// the eos that must follow; top log-probs see the masked logits too (vLLM's order).
TEST_F(StructuredTest, LogprobsAreOfTheMaskedLogits) {
  auto g = compile(grammar::choice_grammar({"7"}));
  SamplingParams p = sampled(3);
  p.grammar = g, p.logprobs = 3;
  const Output o = run(prompt("Pick a number:"), p)[0];
  ASSERT_EQ(o.finish, FinishReason::kStop) << o.error;
  EXPECT_EQ(o.text, "7");
  ASSERT_EQ(o.ids.size(), 2u);
  ASSERT_EQ(o.logprobs.size(), 2u);
  EXPECT_NEAR(o.logprobs[0], 0.f, 1e-4);
  ASSERT_EQ(o.top.size(), 2u);
  ASSERT_EQ(o.top[0].size(), 3u);
  EXPECT_EQ(o.top[0][0].token, o.ids[0]);
  EXPECT_NEAR(o.top[0][0].logprob, 0.f, 1e-4);
  for (size_t i = 1; i < o.top[0].size(); ++i) EXPECT_LT(o.top[0][i].logprob, -1e6) << "a masked token has a probability";
  // Then only the eos ids: their probabilities sum to 1, every other token's is 0.
  double eos_mass = 0;
  for (const TokenLogprob& t : o.top[1]) {
    if (is_eos(t.token)) eos_mass += std::exp(static_cast<double>(t.logprob));
    else EXPECT_LT(t.logprob, -1e6) << "token " << t.token << " after a complete grammar";
  }
  EXPECT_NEAR(eos_mass, 1.0, 1e-4);
}

// min_tokens masks eos until then, but a complete grammar allows only eos: the grammar wins.
TEST_F(StructuredTest, MinTokensYieldsToACompleteGrammar) {
  auto g = compile(grammar::choice_grammar({"no"}));
  SamplingParams p = sampled(5);
  p.grammar = g, p.min_tokens = 8;
  const Output o = run(prompt("Answer:"), p)[0];
  EXPECT_EQ(o.finish, FinishReason::kStop) << o.error;
  EXPECT_EQ(o.text, "no");
  // And an unfinished grammar keeps eos masked until min_tokens: "a+" can always go on.
  auto more = compile(grammar::regex_to_grammar("a+"));
  p.grammar = more, p.min_tokens = 6, p.max_tokens = 12;
  const Output m = run(prompt("Answer:"), p)[0];
  EXPECT_NE(m.finish, FinishReason::kError) << m.error;
  EXPECT_GE(m.ids.size(), 6u);
  EXPECT_TRUE(std::regex_match(m.text, std::regex("a+"))) << m.text;
}

// A vocabulary in which the grammar's second character has no token: the sequence ends with an
// error naming the grammar after one token, never with a token outside it.
TEST_F(StructuredTest, DeadEndEndsWithAnError) {
  const grammar::Vocabulary& full = **vocab_;
  std::vector<grammar::Vocabulary::Token> tokens(full.size());
  for (int32_t id = 0; id < full.size(); ++id) {
    tokens[id].bytes = full.token_bytes(id);
    tokens[id].special = full.is_special(id) || full.token_bytes(id).find('q') != std::string::npos;
  }
  auto v = grammar::Vocabulary::create(tokens, full.eos_ids(), full.mask_size());
  ASSERT_TRUE(v.ok()) << v.status().to_string();
  auto g = grammar::CompiledGrammar::compile(*grammar::choice_grammar({"xq"}), *v);
  ASSERT_TRUE(g.ok());
  SamplingParams p = sampled(9);
  p.grammar = *g, p.n = 2;
  for (const Output& o : run(prompt("Go:"), p)) {
    EXPECT_EQ(o.finish, FinishReason::kError);
    EXPECT_NE(o.error.find("structured output"), std::string::npos) << o.error;
    EXPECT_EQ(o.text, "x");
  }
  // The engine keeps serving.
  SamplingParams q = sampled(1, 4);
  q.grammar = compile(grammar::choice_grammar({"ok"}));
  EXPECT_EQ(run(prompt("Go:"), q)[0].text, "ok");
}

TEST_F(StructuredTest, GrammarOfAnotherVocabularyIsRefused) {
  std::vector<grammar::Vocabulary::Token> tokens(10);
  for (int i = 0; i < 10; ++i) tokens[i].bytes = std::string(1, static_cast<char>('a' + i));
  auto v = grammar::Vocabulary::create(tokens, {0});
  ASSERT_TRUE(v.ok());
  auto g = grammar::CompiledGrammar::compile(*grammar::choice_grammar({"ab"}), *v);
  ASSERT_TRUE(g.ok());
  SamplingParams p = sampled(1);
  p.grammar = *g;
  auto s = engine_->loop().add(prompt("x"), p);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("vocabulary"), std::string::npos) << s.status().message();
}

// The vocabulary of the two tokenizer families: byte-level BPE pieces ("Ġthe") and SentencePiece
// pieces ("▁the", "<0x0A>"), special tokens never allowed; a grammar then allows exactly the
// tokens whose bytes continue it.
std::shared_ptr<const grammar::Vocabulary> shared_vocab(const std::string& name, int32_t eos) {
  const std::string dir = std::string(TOKAMAK_SHARED_DIR) + "/data/tokenizers/" + name;
  auto tok = Tokenizer::load(dir);
  if (!tok.ok()) return nullptr;
  auto v = grammar_vocabulary(**tok, {eos}, (*tok)->vocab_size());
  EXPECT_TRUE(v.ok()) << v.status().to_string();
  return v.ok() ? *v : nullptr;
}

int32_t id_of(const grammar::Vocabulary& v, const std::string& bytes) {
  for (int32_t id = 0; id < v.size(); ++id)
    if (!v.is_special(id) && v.token_bytes(id) == bytes) return id;
  return -1;
}

bool allowed(grammar::Matcher& m, const grammar::Vocabulary& v, int32_t id) {
  std::vector<uint32_t> mask(v.mask_words());
  m.fill_next_token_bitmask(mask.data());
  return (mask[id / 32] >> (id % 32)) & 1;
}

TEST(GrammarVocabulary, SentencePieceAndByteLevel) {
  for (const auto& [name, eos] : std::vector<std::pair<std::string, int32_t>>{{"mistral-v1-metaspace", 2}, {"llama3", 128001}}) {
    auto v = shared_vocab(name, eos);
    if (!v) GTEST_SKIP() << "needs ../shared/data/tokenizers/" << name;
    const int32_t the = id_of(*v, " the"), newline = id_of(*v, "\n");
    ASSERT_GE(the, 0) << name << ": no token for ' the'";
    ASSERT_GE(newline, 0) << name << ": no token for a newline";
    EXPECT_TRUE(v->is_special(eos)) << name;
    auto g = grammar::CompiledGrammar::compile(*grammar::choice_grammar({" the\n"}), v);
    ASSERT_TRUE(g.ok());
    grammar::Matcher m(*g);
    EXPECT_TRUE(allowed(m, *v, the)) << name;
    EXPECT_FALSE(allowed(m, *v, newline)) << name;
    ASSERT_TRUE(m.accept_token(the));
    EXPECT_TRUE(allowed(m, *v, newline)) << name;
    ASSERT_TRUE(m.accept_token(newline));
    EXPECT_TRUE(allowed(m, *v, eos)) << name << ": eos ends the grammar";
  }
}

}  // namespace
}  // namespace tk::test
