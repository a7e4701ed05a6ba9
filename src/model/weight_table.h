// One table of weights per architecture: for every weight of the decoder, which checkpoint tensors
// make it (fused along dim 0 in order, e.g. q/k/v -> qkv), the shape the config implies for each,
// how random weights draw it, where it lands, and how it splits over tensor-parallel ranks. Checkpoint loading and random weights both walk
// this table, so a new kind of layer (MoE experts, FP8 scales, TP shards) is written once.
// Private to src/model.
#pragma once

#include <string>
#include <vector>

#include "model/model.h"

namespace tk::model_detail {

struct WeightPart {
  std::string name;  // the checkpoint tensor, e.g. "model.layers.3.self_attn.q_proj.weight"
  Shape shape;       // what the config implies (the whole checkpoint tensor)
  // Tensor parallelism: the rank's slice, `count` rows (dim 0) or columns (dim 1) from `begin`;
  // split_dim -1 is the whole tensor. Rows past the tensor's end (the padded vocabulary of the
  // embedding and lm_head) are zeros.
  int split_dim = -1;
  int64_t begin = 0, count = 0;
  Shape local_shape() const;  // the slice's shape
};

// How a weight splits over tensor-parallel ranks (Megatron-style).
enum class Sharding {
  kReplicated,  // every rank holds all of it: norms, q/k norms
  kVocab,       // split by vocabulary rows (padded to a multiple of the ranks): embedding, lm_head
  kColumn,      // split by output rows: q/k/v by heads (and their biases), gate/up by rows
  kRow,         // split by input columns: o_proj, down (their partial products are all-reduced)
};

struct WeightSpec {
  std::vector<WeightPart> parts;  // stacked along dim 0, in order (each part's slice)
  Tensor* dest = nullptr;         // inside the ModelWeights being built
  // The weight of a Linear (dest == &linear->weight): what an FP8 checkpoint may quantize.
  Linear* linear = nullptr;
  float init_mean = 0.f;          // random weights: mean + std * N(0, 1)
  float init_std = 0.02f;
  // lm_head of a model with tied embeddings: shares the embedding's storage when the checkpoint
  // has no tensor of its own (always, for random weights).
  bool tied_to_embedding = false;
  Sharding sharding = Sharding::kReplicated;
  Shape shape() const;            // the fused shape of the rank's slices
  // The module of part i: its name without ".weight", e.g. "model.layers.0.self_attn.q_proj".
  std::string module(size_t i) const;
};

// Sizes `w.layers` and returns the table whose dest pointers point into `w`: rank tp.rank's
// slices (the whole weights at tp.size 1; check_tensor_parallel first).
std::vector<WeightSpec> weight_table(const ModelConfig& config, ModelWeights& w, TensorParallel tp = {});

// Uploads the RoPE inverse frequencies, the one weight that is computed rather than stored.
Status upload_inv_freq(const ModelConfig& config, Backend& backend, ModelWeights& w);

}  // namespace tk::model_detail
