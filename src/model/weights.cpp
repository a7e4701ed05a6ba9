// Weight loading: safetensors (memory-mapped) -> backend tensors, with q/k/v and gate/up fused
// into one matrix each so every layer runs two fewer GEMMs.
#include <cstring>

#include "model/model.h"

namespace tk {
namespace {

class WeightLoader {
 public:
  WeightLoader(const Checkpoint& ckpt, Backend& backend, const LoadProgress& progress)
      : ckpt_(ckpt), backend_(backend), progress_(progress), total_(ckpt.total_bytes()) {}

  // One tensor, checked against the shape the config implies.
  Result<Tensor> one(const std::string& name, const Shape& shape) { return rows({name}, {shape}); }

  // Tensors stacked along dim 0 (all with the same trailing dims), e.g. q/k/v -> qkv.
  Result<Tensor> rows(const std::vector<std::string>& names, const std::vector<Shape>& shapes) {
    std::vector<TensorInfo> parts;
    int64_t total_rows = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      TK_ASSIGN_OR_RETURN(TensorInfo info, ckpt_.get(names[i], shapes[i]));
      if (info.dtype != DType::kF32 && info.dtype != DType::kF16 && info.dtype != DType::kBF16)
        return unsupported(info.file + ": tensor '" + info.name + "' has dtype " + dtype_name(info.dtype) +
                           "; weights must be float32, float16 or bfloat16");
      total_rows += info.shape[0];
      parts.push_back(info);
    }
    Tensor host = stack(parts, total_rows);
    TK_ASSIGN_OR_RETURN(Tensor t, backend_.upload(host));
    for (const TensorInfo& p : parts) report(p);
    return t;
  }

 private:
  // A zero-copy view when there is one part of one dtype; otherwise a host copy in fp32 (or the
  // common dtype when all parts agree).
  static Tensor stack(const std::vector<TensorInfo>& parts, int64_t total_rows) {
    Shape shape = parts[0].shape;
    if (parts.size() == 1) return Tensor(const_cast<void*>(parts[0].data), parts[0].dtype, shape);
    shape[0] = total_rows;
    bool same = true;
    for (const TensorInfo& p : parts) same = same && p.dtype == parts[0].dtype;
    DType dtype = same ? parts[0].dtype : DType::kF32;
    Tensor host = Tensor::empty_cpu(dtype, shape);
    char* dst = static_cast<char*>(host.data());
    for (const TensorInfo& p : parts) {
      size_t n = static_cast<size_t>(p.shape.numel());
      if (same) std::memcpy(dst, p.data, p.nbytes);
      else convert_to_f32(p.data, p.dtype, reinterpret_cast<float*>(dst), n);
      dst += n * dtype_size(dtype);
    }
    return host;
  }

  void report(const TensorInfo& info) {
    done_ += info.nbytes;
    if (progress_) progress_(done_, total_, info.file);
  }

  const Checkpoint& ckpt_;
  Backend& backend_;
  const LoadProgress& progress_;
  size_t total_;
  size_t done_ = 0;
};

Result<LayerWeights> load_layer(const ModelConfig& c, int64_t i, WeightLoader& w) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  const int64_t h = c.hidden_size, d = c.head_dim, q = c.num_heads * d, kv = c.num_kv_heads * d;
  const int64_t inter = c.intermediate_size;
  LayerWeights l;
  TK_ASSIGN_OR_RETURN(l.input_norm, w.one(p + "input_layernorm.weight", {h}));
  TK_ASSIGN_OR_RETURN(l.qkv, w.rows({p + "self_attn.q_proj.weight", p + "self_attn.k_proj.weight",
                                     p + "self_attn.v_proj.weight"},
                                    {{q, h}, {kv, h}, {kv, h}}));
  if (c.attention_bias) {
    TK_ASSIGN_OR_RETURN(l.qkv_bias, w.rows({p + "self_attn.q_proj.bias", p + "self_attn.k_proj.bias",
                                            p + "self_attn.v_proj.bias"},
                                           {{q}, {kv}, {kv}}));
  }
  if (c.qk_norm) {
    TK_ASSIGN_OR_RETURN(l.q_norm, w.one(p + "self_attn.q_norm.weight", {d}));
    TK_ASSIGN_OR_RETURN(l.k_norm, w.one(p + "self_attn.k_norm.weight", {d}));
  }
  TK_ASSIGN_OR_RETURN(l.o_proj, w.one(p + "self_attn.o_proj.weight", {h, q}));
  TK_ASSIGN_OR_RETURN(l.post_attn_norm, w.one(p + "post_attention_layernorm.weight", {h}));
  TK_ASSIGN_OR_RETURN(l.gate_up, w.rows({p + "mlp.gate_proj.weight", p + "mlp.up_proj.weight"},
                                        {{inter, h}, {inter, h}}));
  TK_ASSIGN_OR_RETURN(l.down, w.one(p + "mlp.down_proj.weight", {h, inter}));
  return l;
}

}  // namespace

Result<ModelWeights> load_weights(const ModelConfig& c, const Checkpoint& ckpt, Backend& backend,
                                  const LoadProgress& progress) {
  WeightLoader w(ckpt, backend, progress);
  ModelWeights mw;
  TK_ASSIGN_OR_RETURN(mw.embed, w.one("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    TK_ASSIGN_OR_RETURN(LayerWeights l, load_layer(c, i, w));
    mw.layers.push_back(std::move(l));
  }
  TK_ASSIGN_OR_RETURN(mw.final_norm, w.one("model.norm.weight", {c.hidden_size}));
  if (c.tie_word_embeddings && !ckpt.contains("lm_head.weight")) {
    mw.lm_head = mw.embed;
  } else {
    TK_ASSIGN_OR_RETURN(mw.lm_head, w.one("lm_head.weight", {c.vocab_size, c.hidden_size}));
  }
  std::vector<float> inv_freq = rope_inv_freq(c);
  TK_ASSIGN_OR_RETURN(mw.inv_freq, backend.alloc(DType::kF32, {static_cast<int64_t>(inv_freq.size())}));
  TK_RETURN_IF_ERROR(backend.copy_from_host(inv_freq.data(), mw.inv_freq));
  return mw;
}

}  // namespace tk
