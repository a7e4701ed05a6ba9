// The streaming detokenizer must add up to decode(ids) for every parity text of every tokenizer,
// and never hand out a chunk that is not valid UTF-8.
#include <gtest/gtest.h>

#include "test_util.h"

namespace tk::testing {
namespace {

// Returns "" when streaming `ids` reproduces decode(ids, skip); otherwise what went wrong.
std::string check_stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDetokenizer detok(tok, skip);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string chunk = detok.push(id);
    if (!valid_utf8(chunk)) return "invalid UTF-8 chunk";
    streamed += chunk;
  }
  const std::string tail = detok.flush();
  if (!valid_utf8(tail)) return "invalid UTF-8 in flush()";
  streamed += tail;
  const std::string expected = tok.decode(ids, skip);
  if (streamed != expected) return "streamed '" + streamed + "' != decode '" + expected + "'";
  return "";
}

TEST(IncrementalDetokenizer, ConcatenationEqualsDecodeOnParityTexts) {
  TK_SKIP_WITHOUT_SHARED();
  int failures = 0, checked = 0;
  for (const ParityRecord& r : parity_records()) {
    const Tokenizer* tok = shared_tokenizer(r.tokenizer);
    ASSERT_NE(tok, nullptr);
    for (bool skip : {true, false}) {
      // With special tokens in the stream too, as generation produces them.
      const auto& ids = r.has_ids_with_special ? r.ids_with_special : r.ids;
      const std::string diff = check_stream(*tok, ids, skip);
      ++checked;
      if (!diff.empty() && ++failures <= 10) {
        ADD_FAILURE() << r.tokenizer << " skip=" << skip << " text='" << r.text.substr(0, 120) << "': " << diff;
      }
    }
  }
  std::printf("detokenizer: %d/%d streams match decode()\n", checked - failures, checked);
  EXPECT_EQ(failures, 0);
}

TEST(IncrementalDetokenizer, PrimedStreamKeepsLeadingSpace) {
  TK_SKIP_WITHOUT_SHARED();
  const Tokenizer* tok = shared_tokenizer("mistral-v1-metaspace");
  ASSERT_NE(tok, nullptr);
  auto prompt = tok->encode("Hello", true);
  auto all = tok->encode("Hello world again", true);
  ASSERT_TRUE(prompt.ok() && all.ok());
  ASSERT_GT(all->size(), prompt->size());
  IncrementalDetokenizer detok(*tok);
  detok.prime(*prompt);
  std::string generated;
  for (size_t k = prompt->size(); k < all->size(); ++k) generated += detok.push((*all)[k]);
  generated += detok.flush();
  EXPECT_EQ(generated, " world again");
}

TEST(IncrementalDetokenizer, HoldsBackPartialCharacter) {
  TK_SKIP_WITHOUT_SHARED();
  const Tokenizer* tok = shared_tokenizer("llama3");
  ASSERT_NE(tok, nullptr);
  // U+1F600 is split over byte-level tokens; no chunk may carry half of it.
  auto ids = tok->encode("a\xF0\x9F\x98\x80 b", false);
  ASSERT_TRUE(ids.ok());
  IncrementalDetokenizer detok(*tok);
  std::string out;
  for (int32_t id : *ids) {
    const std::string chunk = detok.push(id);
    EXPECT_TRUE(valid_utf8(chunk));
    out += chunk;
  }
  out += detok.flush();
  EXPECT_EQ(out, "a\xF0\x9F\x98\x80 b");
}

}  // namespace
}  // namespace tk::testing
