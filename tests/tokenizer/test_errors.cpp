// Error paths: anything wrong in the files or the input comes back as a Status naming the problem.
#include <gtest/gtest.h>

#include "test_util.h"

namespace tk::testing {
namespace {

const char* kTinyModel = R"({"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]})";

std::string tiny_json(const std::string& model, const std::string& extra = "") {
  return std::string(R"({"version": "1.0", "added_tokens": [], )") + extra + R"("model": )" + model + "}";
}

TEST(TokenizerErrors, MissingDirectoryNamesTheFile) {
  auto tok = Tokenizer::load("/nonexistent/tokamak/tokenizer");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kNotFound);
  EXPECT_NE(tok.status().message().find("tokenizer.json"), std::string::npos) << tok.status().to_string();
}

TEST(TokenizerErrors, LoadAcceptsTheJsonFilePath) {
  TK_SKIP_WITHOUT_SHARED();
  auto tok = Tokenizer::load(tokenizers_dir() + "/gpt2-style/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->vocab_size(), 3000);
}

TEST(TokenizerErrors, MalformedJson) {
  auto tok = Tokenizer::from_json("{\"model\": {", "");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(tok.status().message().find("tokenizer.json"), std::string::npos);
}

TEST(TokenizerErrors, UnknownModelType) {
  auto tok = Tokenizer::from_json(tiny_json(R"({"type": "Unigram", "vocab": []})"), "");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kUnsupported);
  EXPECT_NE(tok.status().message().find("Unigram"), std::string::npos) << tok.status().to_string();
}

TEST(TokenizerErrors, UnknownPreTokenizerAndBadShapes) {
  auto a = Tokenizer::from_json(tiny_json(kTinyModel, R"("pre_tokenizer": {"type": "Nope"}, )"), "");
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("Nope"), std::string::npos);
  auto b = Tokenizer::from_json(tiny_json(R"({"type": "BPE", "vocab": {"a": "x"}, "merges": []})"), "");
  EXPECT_FALSE(b.ok());
  auto c = Tokenizer::from_json(tiny_json(R"({"type": "BPE", "vocab": {"a": 0}, "merges": ["a q"]})"), "");
  EXPECT_FALSE(c.ok());
  auto d = Tokenizer::from_json(tiny_json(kTinyModel, R"("pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(("}}, )"), "");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("regex"), std::string::npos);
  auto e = Tokenizer::from_json("[1, 2, 3]", "");
  EXPECT_FALSE(e.ok());
  auto f = Tokenizer::from_json(tiny_json(kTinyModel), "{not json");
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("tokenizer_config.json"), std::string::npos);
}

TEST(TokenizerErrors, InvalidUtf8InputIsAnErrorValue) {
  auto tok = Tokenizer::from_json(tiny_json(kTinyModel), "");
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  auto ids = (*tok)->encode("a\xFF" "b", false);
  EXPECT_FALSE(ids.ok());
  auto good = (*tok)->encode("ab", false);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, std::vector<int32_t>{2});
  EXPECT_EQ((*tok)->decode({2, 99, -1}), "ab");  // unknown ids are dropped, as HF does
}

TEST(TokenizerErrors, ConfigFieldsAreRead) {
  const std::string config = R"({"bos_token": {"content": "<s>"}, "eos_token": "</s>", "add_bos_token": true,
      "chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "y"}]})";
  auto tok = Tokenizer::from_json(tiny_json(kTinyModel), config);
  ASSERT_TRUE(tok.ok()) << tok.status().to_string();
  EXPECT_EQ((*tok)->bos_token(), "<s>");
  EXPECT_EQ((*tok)->eos_token(), "</s>");
  EXPECT_EQ((*tok)->chat_template(), "y");
  EXPECT_TRUE((*tok)->add_bos_token());
  EXPECT_FALSE((*tok)->add_eos_token());
  EXPECT_EQ((*tok)->vocab_size(), 3);
  EXPECT_EQ((*tok)->token_to_id("ab"), 2);
  EXPECT_EQ((*tok)->id_to_token(1), "b");
  EXPECT_FALSE((*tok)->id_to_token(7).has_value());
}

}  // namespace
}  // namespace tk::testing
