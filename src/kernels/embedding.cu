// Token embedding lookup: a row gather from the table, 16-byte vectorised. Ids outside
// [vocab_begin, vocab_begin + vocab) write zeros instead of reading out of bounds (ids are device
// data we cannot check; under tensor parallelism they are the other ranks' rows).
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {

Status embedding(const EmbeddingParams& p, cudaStream_t stream) {
  if (!p.table || !p.ids || !p.out) return invalid_argument("embedding: null table, ids or out");
  if (p.num_tokens <= 0 || p.hidden <= 0 || p.vocab <= 0)
    return invalid_argument("embedding: num_tokens, hidden and vocab must be > 0 (got " +
                            std::to_string(p.num_tokens) + ", " + std::to_string(p.hidden) + ", " +
                            std::to_string(p.vocab) + ")");
  if (p.dtype != DType::kBF16 && p.dtype != DType::kF16)
    return unsupported(std::string("embedding: dtype ") + dtype_name(p.dtype) + " (bf16 and fp16 only)");
  // The copy is dtype-agnostic (2-byte elements); any hidden works, 16-byte vectors when aligned.
  detail::launch_gather_rows(p.table, p.ids, p.out, p.num_tokens, p.hidden, p.vocab, stream, p.vocab_begin);
  return detail::launch_status("embedding");
}

}  // namespace tk::kernels
