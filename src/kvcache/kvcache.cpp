// Page pool and per-sequence page tables.
#include "kvcache/kvcache.h"

namespace tk {

PagePool::PagePool(int num_pages) : ref_counts_(num_pages, 0) {
  free_.reserve(num_pages);
  for (int p = num_pages - 1; p >= 0; --p) free_.push_back(p);  // page 0 handed out first
}

int PagePool::allocate() {
  if (free_.empty()) return -1;
  int page = free_.back();
  free_.pop_back();
  ref_counts_[page] = 1;
  return page;
}

void PagePool::retain(int page) {
  TK_CHECK(ref_counts_.at(page) > 0);
  ++ref_counts_[page];
}

void PagePool::release(int page) {
  TK_CHECK_MSG(ref_counts_.at(page) > 0, "double release of page " + std::to_string(page));
  if (--ref_counts_[page] == 0) free_.push_back(page);
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
  for (int32_t p : pages_) pool.release(p);
  pages_.clear();
}

}  // namespace tk
