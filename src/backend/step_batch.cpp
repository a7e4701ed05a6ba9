// StepBatch invariants, checked once per step before any op reads the metadata; the closed set
// of page sizes; the KV cache allocation every backend shares.
#include <algorithm>

#include "backend/backend.h"

namespace tk {

bool is_supported_page_size(int page_size) {
  return std::find(kSupportedPageSizes.begin(), kSupportedPageSizes.end(), page_size) != kSupportedPageSizes.end();
}

std::string supported_page_sizes_text() {
  std::string s;
  for (int p : kSupportedPageSizes) s += (s.empty() ? "" : ", ") + std::to_string(p);
  return s;
}

int StepBatch::max_query_len() const {
  int m = 0;
  for (size_t s = 0; s + 1 < query_start.size(); ++s) m = std::max(m, query_start[s + 1] - query_start[s]);
  return m;
}

int StepBatch::max_context_len() const {
  int m = 0;
  for (int c : context_lens) m = std::max(m, c);
  return m;
}

Status StepBatch::validate(int page_size, int num_pages) const {
  auto fail = [](const std::string& m) { return internal_error("StepBatch: " + m); };
  const int seqs = num_seqs(), tokens = num_tokens();
  if (seqs <= 0 || tokens <= 0) return fail("empty batch");
  if (static_cast<int>(positions.size()) != tokens || static_cast<int>(slot_mapping.size()) != tokens)
    return fail("per-token arrays do not have num_tokens entries");
  if (static_cast<int>(query_start.size()) != seqs + 1) return fail("query_start is not [num_seqs + 1]");
  if (static_cast<int64_t>(page_table.size()) != static_cast<int64_t>(seqs) * max_pages_per_seq)
    return fail("page table is not [num_seqs, max_pages_per_seq]");
  if (query_start[0] != 0 || query_start[seqs] != tokens) return fail("query_start does not span the tokens");
  if (history_index.size() != history_tokens.size()) return fail("history writes are not index/token pairs");
  for (int s = 0; s < seqs; ++s) {
    const int q = query_start[s + 1] - query_start[s], c = context_lens[s];
    if (q <= 0 || q > c) return fail("sequence " + std::to_string(s) + " has query_len outside [1, context]");
    const int pages = (c + page_size - 1) / page_size;
    if (pages > max_pages_per_seq) return fail("context needs more pages than the page table has");
    for (int p = 0; p < pages; ++p) {
      const int id = page_table[static_cast<size_t>(s) * max_pages_per_seq + p];
      if (id < 0 || id >= num_pages) return fail("page id out of range");
    }
    for (int t = query_start[s]; t < query_start[s + 1]; ++t) {
      const int pos = c - q + (t - query_start[s]);
      if (positions[t] != pos) return fail("positions disagree with context_lens");
      const int page = page_table[static_cast<size_t>(s) * max_pages_per_seq + pos / page_size];
      if (slot_mapping[t] != page * page_size + pos % page_size) return fail("slot_mapping disagrees with page table");
    }
  }
  for (int r : logit_rows)
    if (r < 0 || r >= tokens) return fail("logit row out of range");
  if (last_sample_to_token.size() != last_sample_to_history.size())
    return fail("last_sample_to_token and last_sample_to_history differ in length");
  for (size_t r = 0; r < last_sample_to_token.size(); ++r) {
    if (last_sample_to_token[r] < -1 || last_sample_to_token[r] >= tokens) return fail("last_sample_to_token out of range");
    if (last_sample_to_history[r] < -1 || last_sample_to_history[r] >= static_cast<int>(history_tokens.size()))
      return fail("last_sample_to_history out of range");
  }
  return Status::ok_status();
}

Result<KvCacheTensors> Backend::alloc_kv_cache(int num_layers, int num_pages, int page_size, int num_kv_heads,
                                               int head_dim, bool fp8) {
  KvCacheTensors cache;
  const Shape shape{num_pages, num_kv_heads, page_size, head_dim};
  const DType dtype = fp8 ? DType::kF8E4M3 : compute_dtype();
  cache.k_scale.assign(num_layers, 1.f);
  cache.v_scale.assign(num_layers, 1.f);
  for (int l = 0; l < num_layers; ++l) {
    TK_ASSIGN_OR_RETURN(Tensor k, alloc(dtype, shape));
    TK_ASSIGN_OR_RETURN(Tensor v, alloc(dtype, shape));
    cache.k.push_back(std::move(k));
    cache.v.push_back(std::move(v));
  }
  return cache;
}

}  // namespace tk
