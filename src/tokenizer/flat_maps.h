// Open-addressing hash maps for the BPE hot path: token text -> id and (left id, right id) ->
// merge. Node-based std::unordered_map spent most of encode() chasing pointers on a 128k vocab.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace tk::tokenizer_detail {

inline uint64_t hash_bytes(std::string_view s) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (s.size() * 0xFF51AFD7ED558CCDull);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    h ^= h >> 29;
  }
  uint64_t tail = 0;
  if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 32);
}

// String -> int32 map; keys live in one arena. Insert keeps the first value of a key.
class FlatStringMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  void insert(std::string_view key, int32_t value) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    const uint64_t h = hash_bytes(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.size == kEmpty) {
        s = {static_cast<uint32_t>(h >> 32), static_cast<uint32_t>(arena_.size()), static_cast<uint32_t>(key.size()), value};
        arena_.append(key);
        ++count_;
        return;
      }
      if (matches(s, h, key)) return;
    }
  }
  const int32_t* find(std::string_view key) const {
    if (slots_.empty()) return nullptr;
    const uint64_t h = hash_bytes(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.size == kEmpty) return nullptr;
      if (matches(s, h, key)) return &s.value;
    }
  }
  size_t size() const { return count_; }

 private:
  static constexpr uint32_t kEmpty = ~0u;
  struct Slot {
    uint32_t tag = 0;  // high hash bits, to skip most string compares
    uint32_t offset = 0;
    uint32_t size = kEmpty;
    int32_t value = 0;
  };
  bool matches(const Slot& s, uint64_t h, std::string_view key) const {
    return s.tag == static_cast<uint32_t>(h >> 32) && s.size == key.size() &&
           std::memcmp(arena_.data() + s.offset, key.data(), key.size()) == 0;
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    reserve(old.empty() ? 16 : old.size());
    for (const Slot& s : old) {
      if (s.size == kEmpty) continue;
      const uint64_t h = hash_bytes(std::string_view(arena_).substr(s.offset, s.size));
      size_t i = h & mask_;
      while (slots_[i].size != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
    }
  }
  std::vector<Slot> slots_;
  std::string arena_;
  size_t mask_ = 0;
  size_t count_ = 0;
};

// (left id, right id) -> (rank, merged id).
class PairMap {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0;
    int32_t id = 0;
  };
  static constexpr uint64_t kEmpty = ~0ull;

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    table_.assign(cap, Entry{});
    mask_ = cap - 1;
  }
  // A repeated pair keeps its last rank, as HF's HashMap collect does. NOTE: reserve() first.
  void insert(int32_t a, int32_t b, int32_t rank, int32_t id) {
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (table_[i].key == key || table_[i].key == kEmpty) {
        table_[i] = {key, rank, id};
        return;
      }
    }
  }
  const Entry* find(int32_t a, int32_t b) const {
    if (table_.empty()) return nullptr;
    const uint64_t key = make_key(a, b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      if (table_[i].key == key) return &table_[i];
      if (table_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static uint64_t make_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t key) {
    key *= 0x9E3779B97F4A7C15ull;
    return static_cast<size_t>(key ^ (key >> 29));
  }
  std::vector<Entry> table_;
  size_t mask_ = 0;
};

}  // namespace tk::tokenizer_detail
