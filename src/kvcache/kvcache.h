// tokamak kvcache: host bookkeeping of the paged KV cache — which pages are free, which pages
// each sequence owns, reference counts so that pages can later be shared between sequences.
// No device code and no CUDA header: the device tensors live in backend::KvCache.
#pragma once

#include <cstdint>
#include <vector>

#include "core/core.h"

namespace tk {

class PagePool {
 public:
  explicit PagePool(int num_pages);
  int num_pages() const { return static_cast<int>(ref_counts_.size()); }
  int num_free() const { return static_cast<int>(free_.size()); }
  // A free page with reference count 1, or -1 when none is left.
  int allocate();
  void retain(int page);
  // Drops one reference; the page returns to the free list at zero.
  void release(int page);
  int ref_count(int page) const { return ref_counts_.at(page); }

 private:
  std::vector<int> ref_counts_;
  std::vector<int> free_;  // a stack: the most recently freed page is reused first (warm in cache)
};

// The pages of one sequence, in order: token i lives in pages()[i / page_size] at i % page_size.
class PageTable {
 public:
  explicit PageTable(int page_size) : page_size_(page_size) {}
  int page_size() const { return page_size_; }
  const std::vector<int32_t>& pages() const { return pages_; }
  int capacity_tokens() const { return static_cast<int>(pages_.size()) * page_size_; }
  // Pages that growing to `num_tokens` needs beyond those held.
  int pages_needed(int num_tokens) const;
  // Grows to hold `num_tokens` tokens; all or nothing: false (and nothing taken) when the pool
  // has too few free pages.
  bool grow(PagePool& pool, int num_tokens);
  // Slot (page * page_size + offset) of token `index`; the page must be held.
  int32_t slot(int index) const;
  void release_all(PagePool& pool);

 private:
  int page_size_;
  std::vector<int32_t> pages_;
};

}  // namespace tk
