// Page pool, per-sequence page tables and the prefix cache.
//
// A cached page is found by a 64-bit hash chained over (parent hash, the page's tokens, the salt
// at the root), then confirmed exactly: its stored tokens must equal the request's, and its parent
// must be the page matched one level up, in the same epoch (a page's epoch is bumped whenever it is
// handed out again, so children computed over its old contents can no longer be reached). A hash collision
// therefore costs a comparison, never another prefix's KV.
#include <algorithm>

#include "kvcache/kvcache.h"

namespace tk {
namespace {

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

uint64_t chain_hash(uint64_t parent, const int32_t* tokens, int n, const std::string& salt, bool root) {
  uint64_t h = mix(parent, static_cast<uint64_t>(n));
  for (int i = 0; i < n; ++i) h = mix(h, static_cast<uint32_t>(tokens[i]));
  if (root)
    for (unsigned char c : salt) h = mix(h, c);
  return h;
}

}  // namespace

PagePool::PagePool(int num_pages)
    : ref_counts_(num_pages, 0), records_(num_pages), epoch_(num_pages, 0), prev_(num_pages, -1), next_(num_pages, -1) {
  free_.reserve(num_pages);
  for (int p = num_pages - 1; p >= 0; --p) free_.push_back(p);  // page 0 handed out first
}

void PagePool::lru_push_back(int page) {
  prev_[page] = lru_tail_, next_[page] = -1;
  if (lru_tail_ >= 0) next_[lru_tail_] = page;
  else lru_head_ = page;
  lru_tail_ = page;
  ++num_evictable_;
}

void PagePool::lru_remove(int page) {
  if (prev_[page] >= 0) next_[prev_[page]] = next_[page];
  else lru_head_ = next_[page];
  if (next_[page] >= 0) prev_[next_[page]] = prev_[page];
  else lru_tail_ = prev_[page];
  prev_[page] = next_[page] = -1;
  --num_evictable_;
}

void PagePool::evict(int page) {
  Record& r = records_[page];
  auto range = index_.equal_range(r.hash);
  for (auto it = range.first; it != range.second; ++it)
    if (it->second == page) {
      index_.erase(it);
      break;
    }
  r = Record();
}

int PagePool::allocate() {
  int page = -1;
  if (!free_.empty()) {
    page = free_.back();
    free_.pop_back();
  } else if (lru_head_ >= 0) {
    page = lru_head_;
    lru_remove(page);
    evict(page);
  } else {
    return -1;
  }
  ref_counts_[page] = 1;
  ++epoch_[page];  // new contents: links made to the old ones go stale
  return page;
}

void PagePool::retain(int page) {
  if (ref_counts_.at(page) == 0) {
    TK_CHECK_MSG(records_[page].cached, "retain of free page " + std::to_string(page));
    lru_remove(page);
  }
  ++ref_counts_[page];
}

void PagePool::release(int page) {
  TK_CHECK_MSG(ref_counts_.at(page) > 0, "double release of page " + std::to_string(page));
  if (--ref_counts_[page] > 0) return;
  if (records_[page].cached) lru_push_back(page);
  else free_.push_back(page);
}

void PagePool::check_writable(int page) const {
  TK_CHECK_MSG(ref_counts_.at(page) == 1 && !records_[page].cached,
               "a step would write page " + std::to_string(page) + ", which is shared or cached");
}

int PagePool::find(uint64_t hash, const int32_t* tokens, int page_size, int parent, uint32_t parent_epoch,
                   const std::string& salt) const {
  auto range = index_.equal_range(hash);
  for (auto it = range.first; it != range.second; ++it) {
    const int page = it->second;
    const Record& r = records_[page];
    if (r.parent != parent || (parent >= 0 && r.parent_epoch != parent_epoch)) continue;
    if (parent < 0 && r.salt != salt) continue;
    if (std::equal(r.tokens.begin(), r.tokens.end(), tokens, tokens + page_size)) return page;
  }
  return -1;
}

int PagePool::match(PageTable& table, const int32_t* tokens, int n, const std::string& salt) {
  TK_CHECK(table.pages_.empty());
  const int ps = table.page_size_;
  for (int k = 0; (k + 1) * ps <= n; ++k) {
    const int32_t* page_tokens = tokens + static_cast<size_t>(k) * ps;
    const uint64_t h = chain_hash(table.chain_hash_, page_tokens, ps, salt, k == 0);
    const int page = find(h, page_tokens, ps, table.chain_page_, table.chain_epoch_, salt);
    if (page < 0) break;
    retain(page);
    table.pages_.push_back(page);
    table.num_committed_ = k + 1, table.chain_page_ = page, table.chain_epoch_ = epoch_[page], table.chain_hash_ = h;
  }
  return table.num_committed_ * ps;
}

void PagePool::commit(PageTable& table, const int32_t* page_tokens, const std::string& salt) {
  const int ps = table.page_size_, k = table.num_committed_;
  TK_CHECK(k < static_cast<int>(table.pages_.size()));
  const uint64_t h = chain_hash(table.chain_hash_, page_tokens, ps, salt, k == 0);
  int canonical = find(h, page_tokens, ps, table.chain_page_, table.chain_epoch_, salt);
  if (canonical < 0) {  // new contents: this page becomes the cached one
    canonical = table.pages_[k];
    Record& r = records_[canonical];
    r.cached = true, r.hash = h, r.parent = table.chain_page_, r.parent_epoch = table.chain_epoch_;
    r.tokens.assign(page_tokens, page_tokens + ps);
    if (k == 0) r.salt = salt;
    index_.emplace(h, canonical);
  }
  // A duplicate (another sequence computed the same page meanwhile) stays private; the chain
  // continues from the cached copy so that later pages link to what a lookup finds.
  table.num_committed_ = k + 1, table.chain_page_ = canonical, table.chain_epoch_ = epoch_[canonical];
  table.chain_hash_ = h;
}

int PageTable::pages_needed(int num_tokens) const {
  int want = (num_tokens + page_size_ - 1) / page_size_;
  return std::max(0, want - static_cast<int>(pages_.size()));
}

bool PageTable::grow(PagePool& pool, int num_tokens) {
  int need = pages_needed(num_tokens);
  if (need > pool.num_free()) return false;
  for (int i = 0; i < need; ++i) pages_.push_back(pool.allocate());
  return true;
}

int32_t PageTable::slot(int index) const {
  TK_CHECK(index >= 0 && index < capacity_tokens());
  return pages_[index / page_size_] * page_size_ + index % page_size_;
}

void PageTable::release_all(PagePool& pool) {
  for (auto it = pages_.rbegin(); it != pages_.rend(); ++it) pool.release(*it);
  pages_.clear();
  num_committed_ = 0, chain_page_ = -1, chain_epoch_ = 0, chain_hash_ = 0;
}

}  // namespace tk
