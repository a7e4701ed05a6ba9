// The Llama-family weight table (Llama, Mistral, Qwen2 with q/k/v biases, Qwen3 with q/k norms):
// names as Hugging Face checkpoints write them, shapes from config.json.
#include "weight_table.h"

namespace tk::model_detail {
namespace {

constexpr float kProjectionStd = 0.02f;
constexpr float kNormStd = 0.05f;  // norms near 1

WeightSpec norm(const std::string& name, int64_t size, Tensor* dest) {
  return {{{name, {size}}}, dest, nullptr, 1.f, kNormStd, false};
}

WeightSpec projection(std::vector<WeightPart> parts, Tensor* dest) {
  return {std::move(parts), dest, nullptr, 0.f, kProjectionStd, false};
}

WeightSpec linear(std::vector<WeightPart> parts, Linear* l) {
  return {std::move(parts), &l->weight, l, 0.f, kProjectionStd, false};
}

// A part split along `dim` (0: rows, 1: columns): `count` from `begin`.
WeightPart split(std::string name, Shape shape, int dim, int64_t begin, int64_t count) {
  return {std::move(name), shape, dim, begin, count};
}

void add_layer(const ModelConfig& c, const ShardSizes& r, int64_t i, LayerWeights& l, std::vector<WeightSpec>& t) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  const int64_t h = c.hidden_size, d = c.head_dim, q = c.num_heads * d, kv = c.num_kv_heads * d;
  const int64_t inter = c.intermediate_size;
  // The rank's rows of q, of k and v (its KV heads), and of gate and up: at one rank, all.
  const int64_t q0 = r.q_head_begin * d, qn = r.num_heads * d, kv0 = r.kv_head_begin * d, kvn = r.num_kv_heads * d;
  const int64_t i0 = r.intermediate_begin, in = r.intermediate_size;
  const std::string attn = p + "self_attn.", mlp = p + "mlp.";
  t.push_back(norm(p + "input_layernorm.weight", h, &l.input_norm));
  WeightSpec qkv = linear({split(attn + "q_proj.weight", {q, h}, 0, q0, qn), split(attn + "k_proj.weight", {kv, h}, 0, kv0, kvn),
                           split(attn + "v_proj.weight", {kv, h}, 0, kv0, kvn)},
                          &l.qkv);
  qkv.sharding = Sharding::kColumn;
  t.push_back(qkv);
  if (c.attention_bias) {
    WeightSpec bias = projection({split(attn + "q_proj.bias", {q}, 0, q0, qn), split(attn + "k_proj.bias", {kv}, 0, kv0, kvn),
                                  split(attn + "v_proj.bias", {kv}, 0, kv0, kvn)},
                                 &l.qkv.bias);
    bias.sharding = Sharding::kColumn;
    t.push_back(bias);
  }
  if (c.qk_norm) {  // one weight per head dimension, the same for every head: replicated
    t.push_back(norm(attn + "q_norm.weight", d, &l.q_norm));
    t.push_back(norm(attn + "k_norm.weight", d, &l.k_norm));
  }
  WeightSpec o = linear({split(attn + "o_proj.weight", {h, q}, 1, q0, qn)}, &l.o_proj);
  o.sharding = Sharding::kRow;
  t.push_back(o);
  t.push_back(norm(p + "post_attention_layernorm.weight", h, &l.post_attn_norm));
  WeightSpec gate_up = linear({split(mlp + "gate_proj.weight", {inter, h}, 0, i0, in), split(mlp + "up_proj.weight", {inter, h}, 0, i0, in)},
                              &l.gate_up);
  gate_up.sharding = Sharding::kColumn;
  t.push_back(gate_up);
  WeightSpec down = linear({split(mlp + "down_proj.weight", {h, inter}, 1, i0, in)}, &l.down);
  down.sharding = Sharding::kRow;
  t.push_back(down);
}

}  // namespace

Shape WeightPart::local_shape() const {
  Shape s = shape;
  if (split_dim >= 0) s[split_dim] = count;
  return s;
}

Shape WeightSpec::shape() const {
  Shape s = parts.at(0).local_shape();
  for (size_t i = 1; i < parts.size(); ++i) s[0] += parts[i].local_shape()[0];
  return s;
}

std::string WeightSpec::module(size_t i) const {
  const std::string& n = parts.at(i).name;
  const size_t dot = n.rfind('.');
  return dot == std::string::npos ? n : n.substr(0, dot);
}

std::vector<WeightSpec> weight_table(const ModelConfig& c, ModelWeights& w, TensorParallel tp) {
  w.layers.resize(static_cast<size_t>(c.num_layers));
  const ShardSizes rank = shard_sizes(c, tp);
  std::vector<WeightSpec> t;
  const Shape vocab_rows{c.vocab_size, c.hidden_size};
  WeightSpec embed = projection({split("model.embed_tokens.weight", vocab_rows, 0, rank.vocab_begin, rank.vocab_size)}, &w.embed);
  embed.sharding = Sharding::kVocab;
  t.push_back(embed);
  for (int64_t i = 0; i < c.num_layers; ++i) add_layer(c, rank, i, w.layers[i], t);
  t.push_back(norm("model.norm.weight", c.hidden_size, &w.final_norm));
  // Tied: the embedding's slice serves as the lm_head's too.
  WeightSpec head = linear({split("lm_head.weight", vocab_rows, 0, rank.vocab_begin, rank.vocab_size)}, &w.lm_head);
  head.tied_to_embedding = c.tie_word_embeddings;
  head.sharding = Sharding::kVocab;
  t.push_back(head);
  return t;
}

Status upload_inv_freq(const ModelConfig& c, Backend& backend, ModelWeights& w) {
  std::vector<float> inv_freq = rope_inv_freq(c);
  TK_ASSIGN_OR_RETURN(w.inv_freq, backend.alloc(DType::kF32, {static_cast<int64_t>(inv_freq.size())}));
  return backend.copy_from_host(inv_freq.data(), w.inv_freq);
}

}  // namespace tk::model_detail

namespace tk {

int64_t num_parameters(const ModelConfig& config, TensorParallel tp) {
  ModelWeights w;
  int64_t n = config.head_dim / 2;  // inv_freq
  for (const model_detail::WeightSpec& spec : model_detail::weight_table(config, w, tp))
    if (!spec.tied_to_embedding) n += spec.shape().numel();
  return n;
}

int64_t num_fp8_parameters(const ModelConfig& config, TensorParallel tp) {
  const QuantizationConfig& q = config.quantization;
  const bool per_tensor_or_channel = q.scheme.weight == WeightScale::kTensor || q.scheme.weight == WeightScale::kChannel;
  if (!q.quantized() || !per_tensor_or_channel) return 0;
  ModelWeights w;
  int64_t n = 0;
  for (const model_detail::WeightSpec& spec : model_detail::weight_table(config, w, tp)) {
    if (spec.linear == nullptr || spec.linear == &w.lm_head) continue;
    const Shape s = spec.shape();
    if (s[1] % 16 != 0 || s[0] % 8 != 0) continue;
    if (q.quantizes(spec.module(0))) n += s.numel();
  }
  return n;
}

}  // namespace tk
