// Random weights drawn on the backend, in the fused layout load_weights() produces: for
// benchmarks at real model sizes without a checkpoint (an 8B model never touches the host).
#include "model/model.h"

namespace tk {
namespace {

class RandomFiller {
 public:
  RandomFiller(Backend& backend, uint64_t seed) : backend_(backend), seed_(seed) {}
  Result<Tensor> make(Shape shape, float mean, float std) {
    TK_ASSIGN_OR_RETURN(Tensor t, backend_.alloc(backend_.compute_dtype(), shape));
    TK_RETURN_IF_ERROR(backend_.fill_random(t, seed_++, mean, std));
    return t;
  }

 private:
  Backend& backend_;
  uint64_t seed_;
};

}  // namespace

Result<ModelWeights> random_weights(const ModelConfig& c, Backend& backend, uint64_t seed) {
  RandomFiller r(backend, seed);
  const int64_t h = c.hidden_size, d = c.head_dim, inter = c.intermediate_size;
  const int64_t qkv = (c.num_heads + 2 * c.num_kv_heads) * d;
  constexpr float kStd = 0.02f, kNormStd = 0.05f;
  ModelWeights w;
  TK_ASSIGN_OR_RETURN(w.embed, r.make({c.vocab_size, h}, 0.f, kStd));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights l;
    TK_ASSIGN_OR_RETURN(l.input_norm, r.make({h}, 1.f, kNormStd));
    TK_ASSIGN_OR_RETURN(l.qkv, r.make({qkv, h}, 0.f, kStd));
    if (c.attention_bias) {
      TK_ASSIGN_OR_RETURN(l.qkv_bias, r.make({qkv}, 0.f, kStd));
    }
    if (c.qk_norm) {
      TK_ASSIGN_OR_RETURN(l.q_norm, r.make({d}, 1.f, kNormStd));
      TK_ASSIGN_OR_RETURN(l.k_norm, r.make({d}, 1.f, kNormStd));
    }
    TK_ASSIGN_OR_RETURN(l.o_proj, r.make({h, c.num_heads * d}, 0.f, kStd));
    TK_ASSIGN_OR_RETURN(l.post_attn_norm, r.make({h}, 1.f, kNormStd));
    TK_ASSIGN_OR_RETURN(l.gate_up, r.make({2 * inter, h}, 0.f, kStd));
    TK_ASSIGN_OR_RETURN(l.down, r.make({h, inter}, 0.f, kStd));
    w.layers.push_back(std::move(l));
  }
  TK_ASSIGN_OR_RETURN(w.final_norm, r.make({h}, 1.f, kNormStd));
  if (c.tie_word_embeddings) {
    w.lm_head = w.embed;
  } else {
    TK_ASSIGN_OR_RETURN(w.lm_head, r.make({c.vocab_size, h}, 0.f, kStd));
  }
  std::vector<float> inv_freq = rope_inv_freq(c);
  TK_ASSIGN_OR_RETURN(w.inv_freq, backend.alloc(DType::kF32, {static_cast<int64_t>(inv_freq.size())}));
  TK_RETURN_IF_ERROR(backend.copy_from_host(inv_freq.data(), w.inv_freq));
  return w;
}

}  // namespace tk
