// The BPE model: splits one pre-token into characters (with unk / byte-fallback handling) and
// applies merges lowest rank first, leftmost first, exactly as HF's Word::merge_all. Merge ranks
// sit in a flat hash map keyed by the pair of ids; whole words are cached because text repeats.
#include <mutex>
#include <queue>
#include <shared_mutex>
#include <unordered_map>

#include "flat_maps.h"
#include "pipeline.h"
#include "unicode.h"

namespace tk::tokenizer_detail {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

struct MergeCandidate {
  int32_t rank;
  int32_t pos;
  bool operator>(const MergeCandidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
};

class BpeModel final : public Model {
 public:
  Status load(const Json& j);
  void tokenize(std::string_view word, std::vector<int32_t>& out) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override {
    const int32_t* id = vocab_.find(token);
    if (!id) return std::nullopt;
    return *id;
  }
  const std::string* id_to_token(int32_t id) const override {
    if (id < 0 || id >= static_cast<int32_t>(id_to_token_.size()) || !has_id_[id]) return nullptr;
    return &id_to_token_[id];
  }
  int32_t vocab_size() const override { return static_cast<int32_t>(id_to_token_.size()); }

 private:
  Status load_vocab(const Json& vocab);
  Status load_merges(const Json& merges);
  void initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const;
  void merge_all(std::vector<Symbol>& symbols) const;

  FlatStringMap vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  PairMap merges_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_, end_of_word_suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // id of "<0xXX>", -1 when absent

  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kMaxCachedWordBytes = 256;
  mutable std::shared_mutex cache_mutex_;
  mutable StringMap<std::vector<int32_t>> cache_;
};

Status BpeModel::load_vocab(const Json& vocab) {
  if (!vocab.is_object()) return corrupt("BPE model: 'vocab' must be an object");
  vocab_.reserve(vocab.size());
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) return corrupt("BPE model: vocab id of '" + it.key() + "' is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > (1 << 30)) return corrupt("BPE model: vocab id out of range for '" + it.key() + "'");
    vocab_.insert(it.key(), static_cast<int32_t>(id));
    if (id >= static_cast<int64_t>(id_to_token_.size())) {
      id_to_token_.resize(id + 1);
      has_id_.resize(id + 1, false);
    }
    id_to_token_[id] = it.key();
    has_id_[id] = true;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const int32_t* found = vocab_.find(std::string_view(name));
    byte_ids_[b] = found ? *found : -1;
  }
  return Status::ok_status();
}

Status BpeModel::load_merges(const Json& merges) {
  if (!merges.is_array()) return corrupt("BPE model: 'merges' must be a list");
  merges_.reserve(merges.size());
  const size_t prefix_len = continuing_subword_prefix_.size();
  int32_t rank = 0;
  for (const Json& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t space = s.find(' ');
      if (space == std::string::npos) return corrupt("BPE model: merge '" + s + "' is not two tokens");
      a = s.substr(0, space);
      b = s.substr(space + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      return corrupt("BPE model: merge #" + std::to_string(rank) + " is neither \"a b\" nor [a, b]");
    }
    const int32_t *ia = vocab_.find(a), *ib = vocab_.find(b);
    if (!ia || !ib) return corrupt("BPE model: merge '" + a + " " + b + "' uses a token missing from the vocab");
    // With a continuing-subword prefix, "a ##b" merges into "a" + "b".
    const bool strip = prefix_len > 0 && b.compare(0, prefix_len, continuing_subword_prefix_) == 0;
    const int32_t* im = vocab_.find(a + (strip ? b.substr(prefix_len) : b));
    if (!im) return corrupt("BPE model: merged token of '" + a + " " + b + "' is missing from the vocab");
    merges_.insert(*ia, *ib, rank, *im);
    ++rank;
  }
  return Status::ok_status();
}

Status BpeModel::load(const Json& j) {
  if (!j.contains("vocab")) return corrupt("BPE model without 'vocab'");
  continuing_subword_prefix_ = json_string(j, "continuing_subword_prefix", "");
  end_of_word_suffix_ = json_string(j, "end_of_word_suffix", "");
  fuse_unk_ = json_bool(j, "fuse_unk", false);
  byte_fallback_ = json_bool(j, "byte_fallback", false);
  ignore_merges_ = json_bool(j, "ignore_merges", false);
  TK_RETURN_IF_ERROR(load_vocab(j["vocab"]));
  TK_RETURN_IF_ERROR(load_merges(j.contains("merges") ? j["merges"] : Json::array()));
  const std::string unk = json_string(j, "unk_token", "");
  if (!unk.empty()) {
    const int32_t* id = vocab_.find(unk);
    if (!id) return corrupt("BPE model: unk_token '" + unk + "' is not in the vocab");
    unk_id_ = *id;
  }
  return Status::ok_status();
}

// HF's BPE::merge_word before the merges: one symbol per character, byte fallback for unknown
// characters, and unk tokens (fused into one when fuse_unk).
void BpeModel::initial_symbols(std::string_view word, std::vector<Symbol>& symbols) const {
  int32_t pending_unk = -1;  // an unk waiting to be fused with the next one
  auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(symbols.size());
    symbols.push_back({id, n - 1, -1, true});
    if (n > 0) symbols[n - 1].next = n;
  };
  std::string piece;
  for (size_t i = 0; i < word.size();) {
    const size_t len = std::min<size_t>(utf8_len(static_cast<unsigned char>(word[i])), word.size() - i);
    const std::string_view ch = word.substr(i, len);
    const bool is_first = i == 0, is_last = i + len == word.size();
    i += len;
    std::string_view key = ch;
    if ((!is_first && !continuing_subword_prefix_.empty()) || (is_last && !end_of_word_suffix_.empty())) {
      piece.assign(is_first ? "" : continuing_subword_prefix_);
      piece.append(ch);
      if (is_last) piece.append(end_of_word_suffix_);
      key = piece;
    }
    if (const int32_t* id = vocab_.find(key)) {
      if (pending_unk >= 0) add(pending_unk), pending_unk = -1;
      add(*id);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : key) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        for (char c : key) add(byte_ids_[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk >= 0 && !fuse_unk_) add(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);
}

void BpeModel::merge_all(std::vector<Symbol>& symbols) const {
  std::priority_queue<MergeCandidate, std::vector<MergeCandidate>, std::greater<>> queue;
  for (size_t i = 0; i + 1 < symbols.size(); ++i) {
    if (const auto* m = merges_.find(symbols[i].id, symbols[i + 1].id)) queue.push({m->rank, static_cast<int32_t>(i)});
  }
  while (!queue.empty()) {
    const MergeCandidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[top.pos];
    if (!left.alive || left.next < 0) continue;
    Symbol& right = symbols[left.next];
    const auto* m = merges_.find(left.id, right.id);
    if (!m || m->rank != top.rank) continue;  // stale: one side merged since it was queued
    left.id = m->id;
    right.alive = false;
    left.next = right.next;
    if (left.next >= 0) symbols[left.next].prev = top.pos;
    if (left.prev >= 0) {
      if (const auto* p = merges_.find(symbols[left.prev].id, left.id)) queue.push({p->rank, left.prev});
    }
    if (left.next >= 0) {
      if (const auto* n = merges_.find(left.id, symbols[left.next].id)) queue.push({n->rank, top.pos});
    }
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const int32_t* id = vocab_.find(word)) {
      out.push_back(*id);
      return;
    }
  }
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mutex_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  initial_symbols(word, symbols);
  merge_all(symbols);
  const size_t first = out.size();
  for (const Symbol& s : symbols) {
    if (s.alive) out.push_back(s.id);
  }
  if (cacheable) {
    std::unique_lock lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity) cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + first, out.end()));
  }
}

}  // namespace

Result<std::unique_ptr<Model>> make_bpe_model(const Json& j) {
  auto model = std::make_unique<BpeModel>();
  TK_RETURN_IF_ERROR(model->load(j));
  return std::unique_ptr<Model>(std::move(model));
}

}  // namespace tk::tokenizer_detail
