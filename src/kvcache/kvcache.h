// tokamak kvcache: host bookkeeping of the paged KV cache — which pages are free, which pages
// each sequence holds, reference counts so that pages are shared between sequences, and the
// automatic prefix cache (full pages keyed by a hash chained over their tokens). No device code
// and no CUDA header: the device tensors live in backend::KvCacheTensors.
//
// NOTE: the invariant that makes sharing safe — no kernel ever writes a shared page. Only full,
// computed pages are committed to the prefix cache and only committed pages are adopted by other
// sequences; a step writes K/V at positions >= the sequence's computed count, which always fall
// in pages after its committed ones. PagePool::check_writable() asserts it for every page a step
// writes.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/core.h"

namespace tk {

class PageTable;

// The pages of the KV cache. A page is held (reference count > 0), free, or free but cached: it
// keeps the K/V of a committed prefix page and can be adopted again until it is evicted. Free
// uncached pages are handed out first; cached ones are evicted least recently released first.
class PagePool {
 public:
  explicit PagePool(int num_pages);
  int num_pages() const { return static_cast<int>(ref_counts_.size()); }
  // Pages that allocate() can hand out: free ones plus cached ones nobody holds.
  int num_free() const { return static_cast<int>(free_.size()) + num_evictable_; }
  int num_cached() const { return static_cast<int>(index_.size()); }
  int ref_count(int page) const { return ref_counts_.at(page); }
  bool is_cached(int page) const { return records_.at(page).cached; }

  // A page with reference count 1, or -1 when none is left. Evicts the least recently released
  // cached page when no uncached page is free.
  int allocate();
  void retain(int page);
  // Drops one reference; at zero a cached page goes to the eviction queue (most recent last),
  // any other page to the free list.
  void release(int page);
  // Fatal when `page` is shared or cached: a step is about to write it (see the NOTE above).
  void check_writable(int page) const;

  // ---- the prefix cache
  // Adopts into the empty `table` the longest chain of cached pages that holds tokens[0, n) page
  // by page (n rounded down to whole pages), salted by `salt` (only requests with the same salt
  // share pages). Returns the number of tokens adopted.
  int match(PageTable& table, const int32_t* tokens, int n, const std::string& salt);
  // Commits the table's next page (index table.num_committed()), which must be full and computed
  // and hold `page_tokens` [page_size], so that later requests can adopt it.
  void commit(PageTable& table, const int32_t* page_tokens, const std::string& salt);

 private:
  struct Record {
    bool cached = false;
    uint64_t hash = 0;
    int parent = -1;               // the cached page of the previous page of the chain, -1 at the root
    uint32_t parent_epoch = 0;     // the parent's epoch when this page was committed
    std::vector<int32_t> tokens;   // the page's tokens: a hash match is confirmed token by token
    std::string salt;              // root pages only
  };
  int find(uint64_t hash, const int32_t* tokens, int page_size, int parent, uint32_t parent_epoch,
           const std::string& salt) const;
  void evict(int page);
  void lru_push_back(int page);
  void lru_remove(int page);

  std::vector<int> ref_counts_;
  std::vector<int> free_;            // uncached free pages, a stack
  std::vector<Record> records_;
  std::vector<uint32_t> epoch_;      // bumped each time a page is handed out: links to its old contents go stale
  std::unordered_multimap<uint64_t, int> index_;  // chain hash -> cached page
  // Eviction queue of cached pages nobody holds: a doubly linked list through prev_/next_.
  std::vector<int> prev_, next_;
  int lru_head_ = -1, lru_tail_ = -1, num_evictable_ = 0;
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
  // Releases every page, the last one first (so a chain's deepest pages are evicted first).
  void release_all(PagePool& pool);
  int num_committed() const { return num_committed_; }

 private:
  friend class PagePool;
  int page_size_;
  std::vector<int32_t> pages_;
  // Prefix-cache state: pages [0, num_committed_) are committed; the chain continues from
  // chain_page_ (the cached page holding the last committed tokens, seen in chain_epoch_) with
  // hash chain_hash_. chain_page_ may be another sequence's copy, which this table does not hold.
  int num_committed_ = 0;
  int chain_page_ = -1;
  uint32_t chain_epoch_ = 0;
  uint64_t chain_hash_ = 0;
};

}  // namespace tk
