// Random weights drawn on the backend, in the fused layout load_weights() produces, from the same
// weight table: for benchmarks at real model sizes without a checkpoint (an 8B model never
// touches the host).
#include "weight_table.h"

namespace tk {

Result<ModelWeights> random_weights(const ModelConfig& c, Backend& backend, uint64_t seed, TensorParallel tp) {
  TK_RETURN_IF_ERROR(check_tensor_parallel(c, tp.size));
  ModelWeights w;
  // Sharded weights draw from seeds of the rank's own (rank 0, and an unsharded model, keep the
  // plain ones); replicated weights from the same seed on every rank, so every rank's residual
  // stream stays the same.
  const uint64_t rank_mix = static_cast<uint64_t>(tp.rank) * 0x9E3779B97F4A7C15ull;
  for (const model_detail::WeightSpec& spec : model_detail::weight_table(c, w, tp)) {
    if (spec.tied_to_embedding) {
      *spec.dest = w.embed;
      continue;
    }
    TK_ASSIGN_OR_RETURN(*spec.dest, backend.alloc(backend.compute_dtype(), spec.shape()));
    const uint64_t draw = seed++ ^ (spec.sharding == model_detail::Sharding::kReplicated ? 0 : rank_mix);
    TK_RETURN_IF_ERROR(backend.fill_random(*spec.dest, draw, spec.init_mean, spec.init_std));
  }
  TK_RETURN_IF_ERROR(model_detail::upload_inv_freq(c, backend, w));
  return w;
}

}  // namespace tk
