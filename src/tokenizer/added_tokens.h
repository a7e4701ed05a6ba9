// Added tokens (special or not) are cut out of the input before normalization, with HF's
// leftmost-longest matching and its lstrip / rstrip / single_word / normalized rules.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "pipeline.h"

namespace tk::tokenizer_detail {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A byte trie over token contents that finds leftmost-longest, non-overlapping matches (what
// HF's Aho-Corasick with MatchKind::LeftmostLongest returns).
class TokenMatcher {
 public:
  void add(std::string_view pattern, int32_t token_index);
  struct Match {
    size_t begin, end;
    int32_t token_index;
  };
  std::vector<Match> find_all(std::string_view text) const;
  bool empty() const { return nodes_.size() <= 1; }

 private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> children;
    int32_t token_index = -1;
  };
  int32_t child(int32_t node, unsigned char byte) const;
  std::vector<Node> nodes_{Node{}};
  std::array<bool, 256> first_byte_{};
};

class AddedVocabulary {
 public:
  // `normalizer` (may be null) is applied to the contents of tokens marked normalized.
  Status build(std::vector<AddedToken> tokens, const Normalizer* normalizer);
  // Cuts `text` into added-token splits (with ids) and normalized pieces, as HF's
  // extract_and_normalize does. Empty pieces are dropped.
  Status extract_and_normalize(std::string_view text, const Normalizer* normalizer, SplitList& out) const;

  const AddedToken* by_id(int32_t id) const;
  std::optional<int32_t> id_of(std::string_view content) const;
  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  struct Piece {
    size_t begin, end;
    int32_t token_index;  // -1: text between tokens
  };
  std::vector<Piece> split_pieces(std::string_view text, const TokenMatcher& matcher) const;

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> index_by_id_;
  std::unordered_map<std::string, size_t> index_by_content_;
  TokenMatcher raw_matcher_;         // tokens matched against the original text
  TokenMatcher normalized_matcher_;  // tokens matched against normalized pieces
};

}  // namespace tk::tokenizer_detail
