// Which sizes split over tensor-parallel ranks, and each rank's share. KV heads follow vLLM's
// rule: split when the ranks divide them, replicated (one per rank, each shared by size / Hkv
// ranks) when they divide the ranks; q heads and the MLP always split evenly; the vocabulary is
// padded to a multiple of the ranks, so it always splits.
#include "model/model.h"

namespace tk {
namespace {

std::string ranks_text(int size) { return "--tensor-parallel-size " + std::to_string(size); }

}  // namespace

Status check_tensor_parallel(const ModelConfig& c, int size) {
  if (size < 1) return invalid_argument(ranks_text(size) + ": must be at least 1");
  if (size == 1) return Status::ok_status();
  if (c.num_heads % size != 0)
    return invalid_argument(ranks_text(size) + ": the model's " + std::to_string(c.num_heads) +
                            " attention heads (num_attention_heads) do not split evenly over " + std::to_string(size) +
                            " ranks");
  if (c.num_kv_heads % size != 0 && size % c.num_kv_heads != 0)
    return invalid_argument(ranks_text(size) + ": the model's " + std::to_string(c.num_kv_heads) +
                            " KV heads (num_key_value_heads) neither split evenly over " + std::to_string(size) +
                            " ranks nor replicate onto them (the ranks must be a multiple of the KV heads)");
  if (c.intermediate_size % size != 0)
    return invalid_argument(ranks_text(size) + ": the model's intermediate_size " + std::to_string(c.intermediate_size) +
                            " does not split evenly over " + std::to_string(size) + " ranks");
  return Status::ok_status();
}

ShardSizes shard_sizes(const ModelConfig& c, TensorParallel tp) {
  TK_CHECK(tp.size >= 1 && tp.rank >= 0 && tp.rank < tp.size);
  ShardSizes s;
  if (tp.size == 1) {  // the whole model, whatever its sizes
    s.num_heads = c.num_heads, s.num_kv_heads = c.num_kv_heads, s.intermediate_size = c.intermediate_size;
    s.vocab_size = c.vocab_size;
    return s;
  }
  s.num_heads = c.num_heads / tp.size;
  s.q_head_begin = s.num_heads * tp.rank;
  if (c.num_kv_heads >= tp.size) {
    s.num_kv_heads = c.num_kv_heads / tp.size;
    s.kv_head_begin = s.num_kv_heads * tp.rank;
  } else {  // replicated: rank r's q heads all read KV head r * Hkv / size
    s.num_kv_heads = 1;
    s.kv_head_begin = static_cast<int64_t>(tp.rank) * c.num_kv_heads / tp.size;
  }
  s.intermediate_size = c.intermediate_size / tp.size;
  s.intermediate_begin = s.intermediate_size * tp.rank;
  s.vocab_size = (c.vocab_size + tp.size - 1) / tp.size;  // of the vocabulary padded to a multiple of size
  s.vocab_begin = s.vocab_size * tp.rank;
  return s;
}

}  // namespace tk
