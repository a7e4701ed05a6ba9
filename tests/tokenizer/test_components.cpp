// Pipeline pieces the parity data does not exercise (Split behaviours other than Isolated, added
// token lstrip/rstrip/single_word, decoders' byte handling), checked against the examples of the
// HF documentation and its unit tests. Includes the module's internal headers on purpose.
#include <gtest/gtest.h>

#include <thread>

#include "added_tokens.h"
#include "pipeline.h"
#include "test_util.h"
#include "unicode.h"

namespace tk::testing {
namespace {

using tokenizer_detail::Json;
using tokenizer_detail::SplitList;

std::vector<std::string> pre_tokenize(const std::string& json, const std::string& text) {
  auto pre = tokenizer_detail::make_pre_tokenizer(Json::parse(json));
  EXPECT_TRUE(pre.ok()) << pre.status().to_string();
  if (!pre.ok()) return {};
  SplitList splits;
  splits.add(text, true);
  EXPECT_TRUE((*pre)->pre_tokenize(splits).ok());
  std::vector<std::string> out;
  for (const auto& r : splits.refs) out.emplace_back(splits.text(r));
  return out;
}

std::string split_json(const std::string& behavior, bool invert = false) {
  return R"({"type": "Split", "pattern": {"String": "-"}, "behavior": ")" + behavior +
         R"(", "invert": )" + (invert ? "true" : "false") + "}";
}

TEST(Components, SplitBehaviorsAsInHfDocs) {
  using V = std::vector<std::string>;
  const std::string text = "the-final--countdown";
  EXPECT_EQ(pre_tokenize(split_json("Removed"), text), (V{"the", "final", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("Isolated"), text), (V{"the", "-", "final", "-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("MergedWithPrevious"), text), (V{"the-", "final-", "-", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("MergedWithNext"), text), (V{"the", "-final", "-", "-countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("Contiguous"), text), (V{"the", "-", "final", "--", "countdown"}));
  EXPECT_EQ(pre_tokenize(split_json("Removed", true), text), (V{"-", "-", "-"}));
}

TEST(Components, MetaspaceSplitsAndPrepends) {
  using V = std::vector<std::string>;
  const std::string always = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": true})";
  EXPECT_EQ(pre_tokenize(always, "Hey   friend!"), (V{"▁Hey", "▁", "▁", "▁friend!"}));
  const std::string never = R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "never", "split": false})";
  EXPECT_EQ(pre_tokenize(never, "Hey friend"), (V{"Hey▁friend"}));
}

TEST(Components, ByteLevelWithOwnRegexAndPrefixSpace) {
  using V = std::vector<std::string>;
  const std::string json = R"({"type": "ByteLevel", "add_prefix_space": true, "use_regex": true})";
  EXPECT_EQ(pre_tokenize(json, "Hello my friend"), (V{"ĠHello", "Ġmy", "Ġfriend"}));
}

std::vector<std::pair<std::string, int32_t>> extract(const tokenizer_detail::AddedToken& token, const std::string& text) {
  tokenizer_detail::AddedVocabulary vocab;
  EXPECT_TRUE(vocab.build({token}, nullptr).ok());
  SplitList splits;
  EXPECT_TRUE(vocab.extract_and_normalize(text, nullptr, splits).ok());
  std::vector<std::pair<std::string, int32_t>> out;
  for (const auto& r : splits.refs) out.emplace_back(std::string(splits.text(r)), r.token_id);
  return out;
}

TEST(Components, AddedTokenStripAndSingleWord) {
  using V = std::vector<std::pair<std::string, int32_t>>;
  tokenizer_detail::AddedToken mask{"<mask>", 7, true, false, false, false, false};
  EXPECT_EQ(extract(mask, "I saw a <mask> cat"), (V{{"I saw a ", -1}, {"<mask>", 7}, {" cat", -1}}));
  mask.lstrip = true;
  EXPECT_EQ(extract(mask, "I saw a <mask> cat"), (V{{"I saw a", -1}, {" <mask>", 7}, {" cat", -1}}));
  mask.lstrip = false;
  mask.rstrip = true;
  EXPECT_EQ(extract(mask, "I saw a <mask> cat"), (V{{"I saw a ", -1}, {"<mask> ", 7}, {"cat", -1}}));
  tokenizer_detail::AddedToken word{"ab", 3, false, false, false, true, false};
  EXPECT_EQ(extract(word, "ab abc cab ab"), (V{{"ab", 3}, {" abc cab ", -1}, {"ab", 3}}));
}

TEST(Components, LeftmostLongestAddedTokens) {
  tokenizer_detail::AddedVocabulary vocab;
  ASSERT_TRUE(vocab.build({{"<a>", 1, true}, {"<a><b>", 2, true}, {"<b>", 3, true}}, nullptr).ok());
  SplitList splits;
  ASSERT_TRUE(vocab.extract_and_normalize("x<a><b><b>", nullptr, splits).ok());
  std::vector<int32_t> ids;
  for (const auto& r : splits.refs) ids.push_back(r.token_id);
  EXPECT_EQ(ids, (std::vector<int32_t>{-1, 2, 3}));
}

std::string run_decoder(const std::string& json, std::vector<std::string> tokens) {
  auto dec = tokenizer_detail::make_decoder(Json::parse(json));
  EXPECT_TRUE(dec.ok()) << dec.status().to_string();
  if (!dec.ok()) return {};
  (*dec)->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

TEST(Components, DecodersHandleBytesLikeHf) {
  // Invalid byte runs become one U+FFFD per byte in ByteFallback...
  EXPECT_EQ(run_decoder(R"({"type": "ByteFallback"})", {"a", "<0xE2>", "<0x96>", "b"}), "a\uFFFD\uFFFDb");
  EXPECT_EQ(run_decoder(R"({"type": "ByteFallback"})", {"<0xE2>", "<0x96>", "<0x81>"}), "\u2581");
  // ...and one per maximal invalid subpart in ByteLevel (Rust's from_utf8_lossy).
  EXPECT_EQ(tokenizer_detail::utf8_lossy("a\xE2\x96" "b\xFF\xF0\x9F"), "a\uFFFDb\uFFFD\uFFFD");
  EXPECT_EQ(run_decoder(R"({"type": "Strip", "content": " ", "start": 1, "stop": 1})", {"  x  "}), " x ");
  EXPECT_EQ(run_decoder(R"({"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always"})", {"▁Hey", "▁friend"}),
            "Hey friend");
}

TEST(Components, EncodeIsThreadSafe) {
  TK_SKIP_WITHOUT_SHARED();
  const Tokenizer* tok = shared_tokenizer("llama3");
  ASSERT_NE(tok, nullptr);
  std::vector<const ParityRecord*> records;
  for (const auto& r : parity_records()) {
    if (r.tokenizer == "llama3") records.push_back(&r);
  }
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (size_t k = t; k < records.size() * 4; k += 4) {
        const ParityRecord& r = *records[k % records.size()];
        auto ids = tok->encode(r.text, false);
        if (!ids.ok() || *ids != r.ids) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace tk::testing
