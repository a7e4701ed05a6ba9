// The vocabulary as the matcher needs it: each token's bytes, and all of them in a prefix tree
// laid out in preorder (llguidance's layout), so that a walk skips a whole subtree with one jump
// when its prefix is rejected, and tokens sharing a prefix share its work.
#include <algorithm>
#include <numeric>

#include "vocab.h"

namespace tk::grammar {

std::optional<std::string> byte_level_piece_bytes(std::string_view piece) {
  // GPT-2's bytes_to_unicode: printable Latin-1 maps to itself, the other bytes to U+0100...
  static const std::vector<int> kInverse = [] {
    std::vector<int> inv(512, -1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      inv[printable ? b : next++] = b;
    }
    return inv;
  }();
  std::string out;
  for (size_t i = 0; i < piece.size();) {
    uint32_t cp = 0;
    int len = decode_utf8(piece, i, &cp);
    if (len == 0 || cp >= kInverse.size() || kInverse[cp] < 0) return std::nullopt;
    out += static_cast<char>(kInverse[cp]);
    i += len;
  }
  return out;
}

std::string sentencepiece_piece_bytes(std::string_view piece) {
  auto hex = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  if (piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>' && hex(piece[3]) >= 0 && hex(piece[4]) >= 0) {
    return std::string(1, static_cast<char>(hex(piece[3]) * 16 + hex(piece[4])));
  }
  std::string out;
  static const std::string_view kSpace = "\xE2\x96\x81";  // U+2581
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, 3) == kSpace) {
      out += ' ';
      i += 3;
    } else {
      out += piece[i++];
    }
  }
  return out;
}

Result<std::shared_ptr<const Vocabulary>> Vocabulary::create(std::vector<Token> tokens, std::vector<int32_t> eos_ids,
                                                             int32_t mask_size) {
  if (tokens.size() >= (1u << 30)) return invalid_argument("vocabulary too large");
  if (mask_size < 0) mask_size = static_cast<int32_t>(tokens.size());
  if (mask_size < static_cast<int32_t>(tokens.size())) {
    return invalid_argument("vocabulary: mask size " + std::to_string(mask_size) + " is below the " +
                            std::to_string(tokens.size()) + " tokens");
  }
  for (int32_t id : eos_ids) {
    if (id < 0 || id >= mask_size) return invalid_argument("vocabulary: eos id " + std::to_string(id) + " out of range");
  }
  auto v = std::shared_ptr<Vocabulary>(new Vocabulary());
  v->tokens_ = std::move(tokens);
  v->eos_ids_ = std::move(eos_ids);
  v->mask_size_ = mask_size;
  for (int32_t id : v->eos_ids_) {
    if (id < static_cast<int32_t>(v->tokens_.size())) v->tokens_[id].special = true;  // eos is never grammar text
  }
  v->trie_ = std::make_unique<Trie>(build_trie(v->tokens_));
  return std::shared_ptr<const Vocabulary>(std::move(v));
}

Vocabulary::~Vocabulary() = default;
int32_t Vocabulary::size() const { return static_cast<int32_t>(tokens_.size()); }
int32_t Vocabulary::mask_size() const { return mask_size_; }
const std::string& Vocabulary::token_bytes(int32_t id) const { return tokens_[id].bytes; }
bool Vocabulary::is_special(int32_t id) const { return tokens_[id].special; }
const std::vector<int32_t>& Vocabulary::eos_ids() const { return eos_ids_; }

Vocabulary::Trie build_trie(const std::vector<Vocabulary::Token>& tokens) {
  std::vector<int32_t> order;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (!tokens[i].special && !tokens[i].bytes.empty()) order.push_back(static_cast<int32_t>(i));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return tokens[a].bytes != tokens[b].bytes ? tokens[a].bytes < tokens[b].bytes : a < b;
  });
  Vocabulary::Trie t;
  t.byte.push_back(0);
  t.depth.push_back(0);
  t.end.push_back(0);
  std::vector<int32_t> token_node;  // per entry of `order`
  std::vector<int32_t> path = {0};  // path[d] = node at depth d
  const std::string* prev = nullptr;
  for (int32_t id : order) {
    const std::string& s = tokens[id].bytes;
    size_t lcp = 0;
    if (prev) {
      while (lcp < s.size() && lcp < prev->size() && s[lcp] == (*prev)[lcp]) ++lcp;
    }
    while (path.size() > lcp + 1) {
      t.end[path.back()] = static_cast<int32_t>(t.byte.size());
      path.pop_back();
    }
    for (size_t d = lcp; d < s.size(); ++d) {
      path.push_back(static_cast<int32_t>(t.byte.size()));
      t.byte.push_back(static_cast<uint8_t>(s[d]));
      t.depth.push_back(static_cast<uint16_t>(d + 1));
      t.end.push_back(0);
    }
    token_node.push_back(path.back());
    t.max_depth = std::max<int>(t.max_depth, static_cast<int>(s.size()));
    prev = &s;
  }
  while (!path.empty()) {
    t.end[path.back()] = static_cast<int32_t>(t.byte.size());
    path.pop_back();
  }
  t.tok_begin.assign(t.byte.size() + 1, 0);
  for (int32_t n : token_node) ++t.tok_begin[n + 1];
  std::partial_sum(t.tok_begin.begin(), t.tok_begin.end(), t.tok_begin.begin());
  t.ids = order;  // sorted by bytes = by node
  // Subtree byte sets, children before parents (reverse preorder); parent via the path by depth.
  const int32_t n = t.size();
  std::vector<int32_t> parent(n, 0), at_depth(t.max_depth + 1, 0);
  for (int32_t i = 1; i < n; ++i) {
    at_depth[t.depth[i]] = i;
    parent[i] = at_depth[t.depth[i] - 1];
  }
  t.below.assign(static_cast<size_t>(n) * 4, 0);
  t.height.assign(n, 0);
  for (int32_t i = n - 1; i > 0; --i) {
    t.height[parent[i]] = std::max<uint16_t>(t.height[parent[i]], t.height[i] + 1);
    uint64_t* p = &t.below[static_cast<size_t>(parent[i]) * 4];
    const uint64_t* c = &t.below[static_cast<size_t>(i) * 4];
    for (int w = 0; w < 4; ++w) p[w] |= c[w];
    p[t.byte[i] >> 6] |= uint64_t{1} << (t.byte[i] & 63);
  }
  return t;
}

}  // namespace tk::grammar
