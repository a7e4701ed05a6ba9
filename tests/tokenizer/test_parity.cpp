// Parity with the HF `tokenizers` library: every record of parity.jsonl.gz (ids, ids with special
// tokens, decoded text) must be reproduced exactly.
#include <gtest/gtest.h>

#include <sstream>

#include "test_util.h"

namespace tk::testing {
namespace {

std::string format_ids(const std::vector<int32_t>& ids) {
  std::ostringstream s;
  s << "[";
  for (size_t k = 0; k < ids.size(); ++k) s << (k ? ", " : "") << ids[k];
  s << "]";
  return s.str();
}

// Compares one record; returns a description of the first difference, or "" when it matches.
std::string check_record(const Tokenizer& tok, const ParityRecord& r) {
  auto ids = tok.encode(r.text, false);
  if (!ids.ok()) return "encode failed: " + ids.status().to_string();
  if (*ids != r.ids) return "ids " + format_ids(*ids) + " != expected " + format_ids(r.ids);
  if (r.has_ids_with_special) {
    auto with = tok.encode(r.text, true);
    if (!with.ok()) return "encode(special) failed: " + with.status().to_string();
    if (*with != r.ids_with_special) {
      return "ids_with_special " + format_ids(*with) + " != expected " + format_ids(r.ids_with_special);
    }
  }
  const std::string decoded = tok.decode(r.ids, false);
  if (decoded != r.decoded) return "decoded '" + decoded + "' != expected '" + r.decoded + "'";
  return "";
}

TEST(TokenizerParity, EveryRecordMatchesHfTokenizers) {
  TK_SKIP_WITHOUT_SHARED();
  const auto& records = parity_records();
  ASSERT_FALSE(records.empty());
  std::map<std::string, std::pair<int, int>> counts;  // name -> (passed, total)
  std::vector<std::string> failures;
  for (const ParityRecord& r : records) {
    const Tokenizer* tok = shared_tokenizer(r.tokenizer);
    ASSERT_NE(tok, nullptr) << r.tokenizer;
    const std::string diff = check_record(*tok, r);
    auto& c = counts[r.tokenizer];
    ++c.second;
    if (diff.empty()) ++c.first;
    else failures.push_back(r.tokenizer + " text='" + r.text.substr(0, 200) + "': " + diff);
  }
  for (const auto& [name, c] : counts) std::printf("parity %-22s %d/%d\n", name.c_str(), c.first, c.second);
  for (size_t k = 0; k < failures.size() && k < 10; ++k) ADD_FAILURE() << failures[k];
  EXPECT_TRUE(failures.empty()) << failures.size() << " records differ";
  EXPECT_EQ(counts.size(), tokenizer_names().size());
}

}  // namespace
}  // namespace tk::testing
