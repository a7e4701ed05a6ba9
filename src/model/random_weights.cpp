// Random weights drawn on the backend, in the fused layout load_weights() produces, from the same
// weight table: for benchmarks at real model sizes without a checkpoint (an 8B model never
// touches the host).
#include "weight_table.h"

namespace tk {

Result<ModelWeights> random_weights(const ModelConfig& c, Backend& backend, uint64_t seed) {
  ModelWeights w;
  for (const model_detail::WeightSpec& spec : model_detail::weight_table(c, w)) {
    if (spec.tied_to_embedding) {
      *spec.dest = w.embed;
      continue;
    }
    TK_ASSIGN_OR_RETURN(*spec.dest, backend.alloc(backend.compute_dtype(), spec.shape()));
    TK_RETURN_IF_ERROR(backend.fill_random(*spec.dest, seed++, spec.init_mean, spec.init_std));
  }
  TK_RETURN_IF_ERROR(model_detail::upload_inv_freq(c, backend, w));
  return w;
}

}  // namespace tk
