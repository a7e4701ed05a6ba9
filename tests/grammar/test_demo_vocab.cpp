// Masks against brute force on a real BPE vocabulary: the demo model's 8192 byte-level tokens
// (models/demo/tokenizer.json), whose tokens mix JSON punctuation with text and whitespace
// (`",`, `"}`, `":`, `",\n`, ` "`, runs of spaces) as no hand-made small vocabulary does. Random
// walks through schemas of the corpus; at every state the mask must equal the tokens that the
// matcher accepts one by one.
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace tk::grammar::testing {
namespace {

std::shared_ptr<const Vocabulary> demo_vocab() {
  static std::shared_ptr<const Vocabulary> v = []() -> std::shared_ptr<const Vocabulary> {
    std::ifstream in(std::string(TOKAMAK_SOURCE_DIR) + "/models/demo/tokenizer.json");
    if (!in) return nullptr;
    nlohmann::json t = nlohmann::json::parse(in);
    std::vector<Vocabulary::Token> tokens;
    for (const auto& [piece, id] : t["model"]["vocab"].items()) {
      auto i = id.get<size_t>();
      if (tokens.size() <= i) tokens.resize(i + 1);
      auto bytes = byte_level_piece_bytes(piece);
      tokens[i] = {bytes ? *bytes : piece, !bytes};
    }
    for (const auto& a : t["added_tokens"]) {
      auto i = a["id"].get<size_t>();
      if (tokens.size() <= i) tokens.resize(i + 1);
      tokens[i] = {a["content"].get<std::string>(), true};
    }
    return Vocabulary::create(std::move(tokens), {1}).value();  // eos: config.json's eos_token_id
  }();
  return v;
}

TEST(DemoVocabulary, MasksMatchBruteForceOnTheCorpus) {
  auto vocab = demo_vocab();
  if (!vocab) GTEST_SKIP() << "needs models/demo/tokenizer.json";
  ASSERT_EQ(vocab->size(), 8192);
  std::ifstream in(test_data_dir() + "/schemas.jsonl");
  std::string line;
  int i = 0, states = 0;
  while (std::getline(in, line)) {
    if (i++ % 9 != 0) continue;  // 15 of the 134 schemas: the brute force costs 8192 steps per state
    nlohmann::ordered_json row = nlohmann::ordered_json::parse(line);
    JsonSchemaOptions o;
    o.compact = i % 2 == 0;
    auto g = json_schema_to_grammar(row["schema"].dump(), o);
    ASSERT_TRUE(g.ok()) << row["name"] << ": " << g.status().to_string();
    auto c = compile_or_die(g.value(), vocab);
    WalkStats stats;
    check_masks_on_walks(c, 7 + i, 1, 30, &stats);
    states += stats.states;
    if (::testing::Test::HasFailure()) {
      ADD_FAILURE() << "schema " << row["name"];
      return;
    }
  }
  EXPECT_GT(states, 200);
}

}  // namespace
}  // namespace tk::grammar::testing
