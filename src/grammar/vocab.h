// Vocabulary::Trie: every grammar-eligible token's bytes in a prefix tree in preorder. Node 0 is
// the root; node i's subtree is [i, end[i]); tokens ending at node i are ids[tok_begin[i] ..
// tok_begin[i + 1]) (several ids may share bytes).
#pragma once

#include <cstdint>
#include <vector>

#include "ir.h"

namespace tk::grammar {

struct Vocabulary::Trie {
  std::vector<uint8_t> byte;    // the byte on the edge into the node
  std::vector<uint16_t> depth;  // bytes from the root
  std::vector<int32_t> end;     // one past the node's subtree
  std::vector<int32_t> tok_begin;
  std::vector<int32_t> ids;
  // [size() * 4]: 256 bits per node, the bytes on the edges inside its subtree (below it), so a
  // walk in a state that loops on all of them can decide the whole subtree at once.
  std::vector<uint64_t> below;
  std::vector<uint16_t> height;  // the longest path below the node (0 for a leaf)
  bool below_within(int32_t node, const uint64_t* set) const {
    const uint64_t* b = &below[static_cast<size_t>(node) * 4];
    return !(b[0] & ~set[0]) && !(b[1] & ~set[1]) && !(b[2] & ~set[2]) && !(b[3] & ~set[3]);
  }
  int max_depth = 0;
  int32_t size() const { return static_cast<int32_t>(byte.size()); }
};

Vocabulary::Trie build_trie(const std::vector<Vocabulary::Token>& tokens);

}  // namespace tk::grammar
