// Added-token extraction. NOTE: the order of operations mirrors HF exactly: non-normalized tokens
// are found in the raw text, each remaining piece is normalized on its own, then normalized tokens
// are found in the normalized pieces. Normalizers that prepend (SentencePiece's "▁") therefore
// prepend once per piece, which is what the library's users get.
#include "added_tokens.h"

#include "unicode.h"

namespace tk::tokenizer_detail {

int32_t TokenMatcher::child(int32_t node, unsigned char byte) const {
  for (const auto& [b, next] : nodes_[node].children) {
    if (b == byte) return next;
  }
  return -1;
}

void TokenMatcher::add(std::string_view pattern, int32_t token_index) {
  if (pattern.empty()) return;
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
  int32_t node = 0;
  for (char c : pattern) {
    const auto byte = static_cast<unsigned char>(c);
    int32_t next = child(node, byte);
    if (next < 0) {
      next = static_cast<int32_t>(nodes_.size());
      nodes_[node].children.emplace_back(byte, next);
      nodes_.emplace_back();
    }
    node = next;
  }
  if (nodes_[node].token_index < 0) nodes_[node].token_index = token_index;  // first one wins
}

std::vector<TokenMatcher::Match> TokenMatcher::find_all(std::string_view text) const {
  std::vector<Match> matches;
  if (empty()) return matches;
  for (size_t i = 0; i < text.size();) {
    if (!first_byte_[static_cast<unsigned char>(text[i])]) {
      ++i;
      continue;
    }
    int32_t node = 0, best_token = -1;
    size_t best_end = 0;
    for (size_t k = i; k < text.size(); ++k) {
      node = child(node, static_cast<unsigned char>(text[k]));
      if (node < 0) break;
      if (nodes_[node].token_index >= 0) best_token = nodes_[node].token_index, best_end = k + 1;
    }
    if (best_token >= 0) {
      matches.push_back({i, best_end, best_token});
      i = best_end;
    } else {
      ++i;
    }
  }
  return matches;
}

Status AddedVocabulary::build(std::vector<AddedToken> tokens, const Normalizer* normalizer) {
  tokens_ = std::move(tokens);
  for (size_t k = 0; k < tokens_.size(); ++k) {
    const AddedToken& t = tokens_[k];
    index_by_id_[t.id] = k;
    index_by_content_.emplace(t.content, k);
    if (!t.normalized) {
      raw_matcher_.add(t.content, static_cast<int32_t>(k));
      continue;
    }
    std::string pattern = t.content;
    if (normalizer) TK_RETURN_IF_ERROR(normalizer->normalize(pattern));
    normalized_matcher_.add(pattern, static_cast<int32_t>(k));
  }
  return Status::ok_status();
}

namespace {

bool ends_with_word(std::string_view s) { return !s.empty() && is_rust_alphanumeric(last_code_point(s)); }

bool starts_with_word(std::string_view s) {
  size_t i = 0;
  return !s.empty() && is_rust_alphanumeric(next_code_point(s, i));
}

// Byte offset where the trailing whitespace of `s` begins.
size_t trailing_space_start(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = 0;
    if (!is_rust_whitespace(last_code_point(s.substr(0, end), &start))) break;
    end = start;
  }
  return end;
}

// Number of bytes of leading whitespace in `s`.
size_t leading_space_len(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t next = i;
    if (!is_rust_whitespace(next_code_point(s, next))) break;
    i = next;
  }
  return i;
}

}  // namespace

// HF's AddedVocabulary::find_matches: applies single_word / lstrip / rstrip to each match.
std::vector<AddedVocabulary::Piece> AddedVocabulary::split_pieces(std::string_view text,
                                                                  const TokenMatcher& matcher) const {
  std::vector<Piece> pieces;
  size_t start_offset = 0;
  for (const TokenMatcher::Match& m : matcher.find_all(text)) {
    const AddedToken& t = tokens_[m.token_index];
    size_t start = m.begin, stop = m.end;
    if (t.single_word) {
      const bool space_before = start == 0 || !ends_with_word(text.substr(0, start));
      const bool space_after = stop == text.size() || !starts_with_word(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
    if (t.rstrip) stop += leading_space_len(text.substr(stop));
    if (start_offset < start) pieces.push_back({start_offset, start, -1});
    pieces.push_back({start, stop, m.token_index});
    start_offset = stop;
  }
  if (start_offset < text.size()) pieces.push_back({start_offset, text.size(), -1});
  return pieces;
}

Status AddedVocabulary::extract_and_normalize(std::string_view text, const Normalizer* normalizer,
                                              SplitList& out) const {
  if (raw_matcher_.empty() && !normalizer && normalized_matcher_.empty()) {  // nothing to cut or rewrite
    if (!text.empty()) out.add(text, true);
    return Status::ok_status();
  }
  std::string piece;
  for (const Piece& p : split_pieces(text, raw_matcher_)) {
    if (p.end <= p.begin) continue;
    const std::string_view raw = text.substr(p.begin, p.end - p.begin);
    if (p.token_index >= 0) {
      out.add(raw, p.begin == 0, tokens_[p.token_index].id);
      continue;
    }
    piece.assign(raw);
    if (normalizer) TK_RETURN_IF_ERROR(normalizer->normalize(piece));
    if (piece.empty()) continue;
    if (normalized_matcher_.empty()) {
      out.add(piece, p.begin == 0);
      continue;
    }
    for (const Piece& q : split_pieces(piece, normalized_matcher_)) {
      if (q.end <= q.begin) continue;
      const int32_t id = q.token_index >= 0 ? tokens_[q.token_index].id : -1;
      out.add(std::string_view(piece).substr(q.begin, q.end - q.begin), p.begin == 0 && q.begin == 0, id);
    }
  }
  return Status::ok_status();
}

const AddedToken* AddedVocabulary::by_id(int32_t id) const {
  auto it = index_by_id_.find(id);
  return it == index_by_id_.end() ? nullptr : &tokens_[it->second];
}

std::optional<int32_t> AddedVocabulary::id_of(std::string_view content) const {
  auto it = index_by_content_.find(std::string(content));
  if (it == index_by_content_.end()) return std::nullopt;
  return tokens_[it->second].id;
}

}  // namespace tk::tokenizer_detail
