// StepBatch invariants, checked once per step before any op reads the metadata.
#include "backend/backend.h"

namespace tk {

Status StepBatch::validate(int page_size, int num_pages) const {
  auto fail = [](const std::string& m) { return internal_error("StepBatch: " + m); };
  if (num_seqs <= 0 || num_tokens <= 0) return fail("empty batch");
  if (static_cast<int>(token_ids.size()) != num_tokens || static_cast<int>(positions.size()) != num_tokens ||
      static_cast<int>(slot_mapping.size()) != num_tokens)
    return fail("per-token arrays do not have num_tokens entries");
  if (static_cast<int>(query_start.size()) != num_seqs + 1 || static_cast<int>(context_lens.size()) != num_seqs)
    return fail("per-sequence arrays have the wrong length");
  if (static_cast<int64_t>(page_table.size()) != static_cast<int64_t>(num_seqs) * max_pages_per_seq)
    return fail("page table is not [num_seqs, max_pages_per_seq]");
  if (query_start[0] != 0 || query_start[num_seqs] != num_tokens) return fail("query_start does not span the tokens");
  for (int s = 0; s < num_seqs; ++s) {
    int q = query_start[s + 1] - query_start[s];
    int c = context_lens[s];
    if (q <= 0 || q > c) return fail("sequence " + std::to_string(s) + " has query_len outside [1, context]");
    if (q > max_query_len || c > max_context_len) return fail("max_query_len/max_context_len too small");
    int pages = (c + page_size - 1) / page_size;
    if (pages > max_pages_per_seq) return fail("context needs more pages than the page table has");
    for (int p = 0; p < pages; ++p) {
      int id = page_table[static_cast<size_t>(s) * max_pages_per_seq + p];
      if (id < 0 || id >= num_pages) return fail("page id out of range");
    }
    for (int t = query_start[s]; t < query_start[s + 1]; ++t) {
      int pos = c - q + (t - query_start[s]);
      if (positions[t] != pos) return fail("positions disagree with context_lens");
      int page = page_table[static_cast<size_t>(s) * max_pages_per_seq + pos / page_size];
      if (slot_mapping[t] != page * page_size + pos % page_size) return fail("slot_mapping disagrees with page table");
    }
  }
  for (int r : logit_rows)
    if (r < 0 || r >= num_tokens) return fail("logit row out of range");
  return Status::ok_status();
}

}  // namespace tk
