// Weight loading: safetensors (memory-mapped) -> backend tensors, with q/k/v and gate/up fused
// into one matrix each so every layer runs two fewer GEMMs.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "weight_table.h"

namespace tk {
namespace {

class WeightLoader {
 public:
  WeightLoader(const Checkpoint& ckpt, Backend& backend, const LoadProgress& progress)
      : ckpt_(ckpt), backend_(backend), progress_(progress), total_(ckpt.total_bytes()) {}

  // Tensors stacked along dim 0 (all with the same trailing dims), e.g. q/k/v -> qkv; each
  // checked against the shape the config implies.
  Result<Tensor> stacked(const std::vector<model_detail::WeightPart>& specs) {
    std::vector<TensorInfo> parts;
    for (const model_detail::WeightPart& spec : specs) {
      TK_ASSIGN_OR_RETURN(TensorInfo info, ckpt_.get(spec.name, spec.shape));
      if (info.dtype != DType::kF32 && info.dtype != DType::kF16 && info.dtype != DType::kBF16)
        return unsupported(info.file + ": tensor '" + info.name + "' has dtype " + dtype_name(info.dtype) +
                           "; weights must be float32, float16 or bfloat16");
      parts.push_back(info);
    }
    // Views of the memory-mapped parts (of the rank's slice of each); the backend stacks them (on
    // the GPU, straight into the rows of one device tensor, with no host copy of the whole).
    std::vector<Tensor> views;
    for (size_t i = 0; i < parts.size(); ++i) views.push_back(slice(parts[i], specs[i]));
    TK_ASSIGN_OR_RETURN(Tensor t, backend_.upload_stacked(views));
    for (const TensorInfo& p : parts) report(p);
    return t;
  }

  // A tensor-parallel rank's slice of a checkpoint tensor: rows are a view into the mapping;
  // columns are copied row by row into host memory (only the slice's bytes are read). Rows past
  // the tensor's end (the padded vocabulary on the last ranks) make a copy: the real rows, then zeros.
  static Tensor slice(const TensorInfo& info, const model_detail::WeightPart& part) {
    void* data = const_cast<void*>(info.data);
    const Shape local = part.local_shape();
    if (part.split_dim < 0 || local == info.shape) return Tensor(data, info.dtype, info.shape);
    const size_t elem = dtype_size(info.dtype);
    const int64_t row_elems = info.shape.rank > 1 ? info.shape.numel() / info.shape[0] : 1;
    if (part.split_dim == 0) {
      const int64_t real_rows = std::clamp<int64_t>(info.shape[0] - part.begin, 0, part.count);
      const size_t row_bytes = static_cast<size_t>(row_elems) * elem;
      char* first = static_cast<char*>(data) + std::min(part.begin, info.shape[0]) * static_cast<int64_t>(row_bytes);
      if (real_rows == part.count) return Tensor(first, info.dtype, local);
      Tensor padded = Tensor::empty_cpu(info.dtype, local);
      std::memset(padded.data(), 0, padded.nbytes());
      std::memcpy(padded.data(), first, static_cast<size_t>(real_rows) * row_bytes);
      return padded;
    }
    TK_CHECK(part.split_dim == 1 && info.shape.rank == 2);
    Tensor out = Tensor::empty_cpu(info.dtype, local);
    const size_t bytes = static_cast<size_t>(part.count) * elem;
    for (int64_t r = 0; r < info.shape[0]; ++r)
      std::memcpy(static_cast<char*>(out.data()) + r * bytes,
                  static_cast<const char*>(info.data) + (r * row_elems + part.begin) * elem, bytes);
    return out;
  }

 public:
  // The FP8 weight of a Linear (q/k/v or gate/up fused) with its scales, as `q` describes them.
  Result<Linear> fp8_linear(const model_detail::WeightSpec& spec, const QuantizationConfig& q) {
    std::vector<Fp8Part> parts;
    for (size_t i = 0; i < spec.parts.size(); ++i) {
      TK_ASSIGN_OR_RETURN(Fp8Part p, fp8_part(spec, i, q));
      parts.push_back(std::move(p));
    }
    TK_ASSIGN_OR_RETURN(Linear l, fuse(parts, q.scheme, spec));
    for (const Fp8Part& p : parts)
      for (const TensorInfo* t : {&p.weight, &p.scale_info}) report(*t);
    return l;
  }

  // The per-tensor FP8 KV cache scales of every layer where the checkpoint holds them, under the
  // names the quantizers write: self_attn.k_scale / v_scale (compressed-tensors' kv_cache_scheme,
  // ModelOpt under k_proj / v_proj), k_proj / v_proj.output_scale (older compressed-tensors),
  // self_attn.kv_scale (AutoFP8: one for both). Per-head scales become their largest: coarser for
  // the other heads, never saturating.
  Status kv_cache_scales(const ModelConfig& c, ModelWeights& w) {
    for (int64_t l = 0; l < c.num_layers; ++l) {
      const std::string attn = "model.layers." + std::to_string(l) + ".self_attn.";
      LayerWeights& layer = w.layers[static_cast<size_t>(l)];
      TK_ASSIGN_OR_RETURN(layer.k_scale, kv_scale(attn, {"k_scale", "k_proj.k_scale", "k_proj.output_scale"}));
      TK_ASSIGN_OR_RETURN(layer.v_scale, kv_scale(attn, {"v_scale", "v_proj.v_scale", "v_proj.output_scale"}));
      TK_ASSIGN_OR_RETURN(const float shared, kv_scale(attn, {"kv_scale"}));
      if (layer.k_scale == 0.f) layer.k_scale = shared;
      if (layer.v_scale == 0.f) layer.v_scale = shared;
    }
    return Status::ok_status();
  }

 private:
  // The first of `names` (under `prefix`) the checkpoint holds, as one positive scale; 0 if none.
  Result<float> kv_scale(const std::string& prefix, std::initializer_list<const char*> names) {
    for (const char* name : names) {
      if (!ckpt_.contains(prefix + name)) continue;
      TK_ASSIGN_OR_RETURN(TensorInfo info, ckpt_.get(prefix + name));
      if (info.shape.numel() < 1)
        return corrupt(info.file + ": tensor '" + info.name + "' is empty; a KV cache scale has at least one element");
      TK_ASSIGN_OR_RETURN(std::vector<float> v, read_scale(info, /*positive=*/true));
      report(info);
      return *std::max_element(v.begin(), v.end());
    }
    return 0.f;
  }

  // One checkpoint module's FP8 weight, its scales in fp32 and its static input scale; and the
  // rank's slice of them (tensor parallelism; the whole at one rank).
  struct Fp8Part {
    TensorInfo weight, scale_info;  // the checkpoint's, whole
    std::vector<float> scale;       // whole, fp32
    float input_scale = 0.f;
    model_detail::WeightPart part;
    Tensor local;                     // the slice of the weight: a view of the mapping, or a copy of columns
    std::vector<float> local_scale;   // its scales; empty where block scales do not fit the slice
  };

  // The scale shape a scheme implies for a weight of `out` x `in` (per tensor: any shape of one
  // element; per channel: [out] or [out, 1]).
  static bool scale_shape_ok(WeightScale s, const Shape& shape, int64_t out, int64_t in) {
    const int64_t b = kFp8BlockSize;
    switch (s) {
      case WeightScale::kTensor: return shape.numel() == 1 && shape.rank <= 2;
      case WeightScale::kChannel: return shape == Shape{out} || shape == Shape{out, 1};
      case WeightScale::kBlock: return shape == Shape{(out + b - 1) / b, (in + b - 1) / b};
      case WeightScale::kNone: return false;
    }
    return false;
  }

  static std::string scale_shape_text(WeightScale s, int64_t out, int64_t in) {
    const int64_t b = kFp8BlockSize;
    switch (s) {
      case WeightScale::kTensor: return "one element";
      case WeightScale::kChannel: return Shape{out, 1}.to_string() + " or " + Shape{out}.to_string();
      case WeightScale::kBlock: return Shape{(out + b - 1) / b, (in + b - 1) / b}.to_string();
      case WeightScale::kNone: break;
    }
    return "?";
  }

  // A scale tensor in fp32: float storage, every value finite and >= 0 (static input scales > 0).
  Result<std::vector<float>> read_scale(const TensorInfo& t, bool positive) {
    if (t.dtype != DType::kF32 && t.dtype != DType::kF16 && t.dtype != DType::kBF16)
      return unsupported(t.file + ": tensor '" + t.name + "' has dtype " + dtype_name(t.dtype) +
                         "; FP8 scales must be float32, float16 or bfloat16");
    std::vector<float> v(static_cast<size_t>(t.shape.numel()));
    convert_to_f32(t.data, t.dtype, v.data(), v.size());
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]) || v[i] < 0.f || (positive && v[i] == 0.f))
        return corrupt(t.file + ": tensor '" + t.name + "' holds the scale " + std::to_string(v[i]) + " at element " +
                       std::to_string(i) + "; scales must be finite and " + (positive ? "positive" : "non-negative"));
    return v;
  }

  Result<Fp8Part> fp8_part(const model_detail::WeightSpec& spec, size_t i, const QuantizationConfig& q) {
    const model_detail::WeightPart& part = spec.parts[i];
    const std::string module = spec.module(i);
    const std::string method = q.key + " (" + quant_method_name(q.method) + ")";
    Fp8Part p;
    TK_ASSIGN_OR_RETURN(p.weight, ckpt_.get(part.name, part.shape));
    if (p.weight.dtype != DType::kF8E4M3)
      return unsupported(p.weight.file + ": tensor '" + part.name + "' has dtype " + dtype_name(p.weight.dtype) + "; " +
                         method + " makes it FP8 (F8_E4M3)");
    const int64_t out = part.shape[0], in = part.shape[1];
    TK_ASSIGN_OR_RETURN(p.scale_info, ckpt_.get(module + "." + q.weight_scale_name));
    if (!scale_shape_ok(q.scheme.weight, p.scale_info.shape, out, in))
      return corrupt(p.scale_info.file + ": tensor '" + p.scale_info.name + "' has shape " +
                     p.scale_info.shape.to_string() + " but " + method + " " + weight_scale_name(q.scheme.weight) +
                     " scales of a " + part.shape.to_string() + " weight need " +
                     scale_shape_text(q.scheme.weight, out, in));
    TK_ASSIGN_OR_RETURN(p.scale, read_scale(p.scale_info, /*positive=*/false));
    if (q.scheme.input == InputQuant::kStaticTensor) {
      TK_ASSIGN_OR_RETURN(TensorInfo in_scale, ckpt_.get(module + ".input_scale"));
      if (in_scale.shape.numel() != 1 || in_scale.shape.rank > 2)
        return corrupt(in_scale.file + ": tensor '" + in_scale.name + "' has shape " + in_scale.shape.to_string() +
                       " but a static per-tensor input scale is one element");
      TK_ASSIGN_OR_RETURN(std::vector<float> v, read_scale(in_scale, /*positive=*/true));
      p.input_scale = v[0];
      report(in_scale);
    }
    p.part = part;
    p.local = slice(p.weight, part);
    p.local_scale = local_scales(p, q.scheme.weight);
    return p;
  }

  // The scales of the rank's slice: a per-tensor scale stays; per-channel scales follow the rows
  // (a column slice keeps them all); 128x128 block scales follow a slice that starts on a block
  // and ends on one or at the tensor's end, and are empty otherwise (the part is then dequantized).
  static std::vector<float> local_scales(const Fp8Part& p, WeightScale s) {
    const model_detail::WeightPart& part = p.part;
    const int64_t out = part.shape[0], in = part.shape[1], b = kFp8BlockSize;
    if (part.split_dim < 0 || s == WeightScale::kTensor || (s == WeightScale::kChannel && part.split_dim == 1))
      return p.scale;
    const auto first = p.scale.begin();
    if (s == WeightScale::kChannel) return std::vector<float>(first + part.begin, first + part.begin + part.count);
    const int64_t extent = part.split_dim == 0 ? out : in;
    if (part.begin % b != 0 || (part.count % b != 0 && part.begin + part.count != extent)) return {};
    const int64_t block_cols = (in + b - 1) / b, lo = part.begin / b, hi = (part.begin + part.count + b - 1) / b;
    std::vector<float> v;
    for (int64_t r = 0; r < (out + b - 1) / b; ++r)
      for (int64_t c = 0; c < block_cols; ++c)
        if (part.split_dim == 0 ? r >= lo && r < hi : c >= lo && c < hi) v.push_back(p.scale[r * block_cols + c]);
    return v;
  }

  static const char* quant_method_name(QuantizationConfig::Method m) {
    switch (m) {
      case QuantizationConfig::Method::kCompressedTensors: return "compressed-tensors";
      case QuantizationConfig::Method::kFp8: return "fp8";
      case QuantizationConfig::Method::kFbgemmFp8: return "fbgemm_fp8";
      case QuantizationConfig::Method::kNone: break;
    }
    return "none";
  }

  // Stacks the parts into one FP8 weight. Per-tensor scales that differ are unified to the
  // largest: each part's values are requantized, fp8(q * s_i / s_max), as vLLM does (one
  // rounding of a value that only shrinks, so nothing saturates); the static input scale is the
  // largest of the parts' (they all quantize the same input). Per-channel and block scales
  // stack like the weights, blocks only when every part but the last fills whole 128-row blocks;
  // otherwise the parts are dequantized on the host and the Linear holds them in the compute
  // dtype (its input still quantized as the scheme says).
  Result<Linear> fuse(const std::vector<Fp8Part>& parts, const Fp8Scheme& scheme, const model_detail::WeightSpec& spec) {
    const Shape shape = spec.shape();
    const int64_t out = shape[0], in = shape[1];
    Fp8HostLinear h;
    h.scheme = scheme;
    for (const Fp8Part& p : parts) h.input_scale = std::max(h.input_scale, p.input_scale);
    bool aligned = true;  // the parts stack on one block grid, each slice's scales known
    for (size_t i = 0; i < parts.size(); ++i)
      aligned = aligned && (i + 1 == parts.size() || parts[i].local.dim(0) % kFp8BlockSize == 0) &&
                !parts[i].local_scale.empty();
    if (scheme.weight == WeightScale::kBlock && !aligned) return dequantized_parts(parts, h, out, in);
    h.weight = Tensor::empty_cpu(DType::kF8E4M3, shape);
    uint8_t* dst = h.weight.data_as<uint8_t>();
    std::vector<float> scales;
    float s_max = 0.f;
    for (const Fp8Part& p : parts) s_max = std::max(s_max, p.local_scale[0]);
    for (const Fp8Part& p : parts) {
      const uint8_t* src = p.local.data_as<uint8_t>();
      const size_t n = p.local.nbytes();
      if (scheme.weight == WeightScale::kTensor && p.local_scale[0] != s_max) {
        const float ratio = s_max > 0.f ? p.local_scale[0] / s_max : 0.f;
        for (size_t e = 0; e < n; ++e) dst[e] = f32_to_fp8_e4m3(fp8_e4m3_to_f32(src[e]) * ratio);
      } else {
        std::memcpy(dst, src, n);
      }
      dst += n;
      if (scheme.weight != WeightScale::kTensor) scales.insert(scales.end(), p.local_scale.begin(), p.local_scale.end());
    }
    if (scheme.weight == WeightScale::kTensor) scales = {s_max};
    const int64_t rows = scheme.weight == WeightScale::kBlock ? static_cast<int64_t>(scales.size()) / ((in + kFp8BlockSize - 1) / kFp8BlockSize) : static_cast<int64_t>(scales.size());
    h.weight_scale = Tensor::empty_cpu(DType::kF32, scheme.weight == WeightScale::kBlock
                                                        ? Shape{rows, (in + kFp8BlockSize - 1) / kFp8BlockSize}
                                                        : Shape{rows});
    std::memcpy(h.weight_scale.data(), scales.data(), scales.size() * sizeof(float));
    (void)out;
    return backend_.upload_fp8_linear(h);
  }

  // Block-scaled parts that cannot share one block grid, or whose slice cuts through blocks:
  // each dequantized whole, its slice kept, held in the compute dtype.
  Result<Linear> dequantized_parts(const std::vector<Fp8Part>& parts, const Fp8HostLinear& h, int64_t out, int64_t in) {
    Tensor w = Tensor::empty_cpu(DType::kF32, {out, in});
    char* dst = static_cast<char*>(w.data());
    for (const Fp8Part& p : parts) {
      const Shape whole = p.weight.shape;
      Tensor full = Tensor::empty_cpu(DType::kF32, whole);
      fp8::dequantize_weight(static_cast<const uint8_t*>(p.weight.data), p.scale.data(), WeightScale::kBlock, whole[0],
                             whole[1], full.data_as<float>());
      TensorInfo info = p.weight;
      info.dtype = DType::kF32, info.data = full.data(), info.nbytes = full.nbytes();
      const Tensor local = slice(info, p.part);  // a view of `full`, or a copy
      std::memcpy(dst, local.data(), local.nbytes());
      dst += local.nbytes();
    }
    Linear l;
    TK_ASSIGN_OR_RETURN(l.weight, backend_.upload(w));
    l.scheme = h.scheme;
    l.scheme.weight = WeightScale::kNone;
    return l;
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

// Whether the checkpoint holds this weight in FP8: a Linear the quantization config does not
// ignore. Fused parts must agree.
Result<bool> quantized_in_checkpoint(const QuantizationConfig& q, const model_detail::WeightSpec& spec) {
  if (spec.linear == nullptr || !q.quantized()) return false;
  const bool first = q.quantizes(spec.module(0));
  for (size_t i = 1; i < spec.parts.size(); ++i)
    if (q.quantizes(spec.module(i)) != first)
      return unsupported(q.key + ": '" + spec.module(0) + "' is " + (first ? "quantized" : "ignored") + " but '" +
                         spec.module(i) + "', fused with it, is " + (first ? "ignored" : "quantized"));
  return first;
}

}  // namespace

Result<ModelWeights> load_weights(const ModelConfig& c, const Checkpoint& ckpt, Backend& backend,
                                  const LoadProgress& progress, TensorParallel tp) {
  TK_RETURN_IF_ERROR(check_tensor_parallel(c, tp.size));
  WeightLoader loader(ckpt, backend, progress);
  ModelWeights w;
  for (const model_detail::WeightSpec& spec : model_detail::weight_table(c, w, tp)) {
    if (spec.tied_to_embedding && !ckpt.contains(spec.parts[0].name)) {
      *spec.dest = w.embed;
      continue;
    }
    TK_ASSIGN_OR_RETURN(const bool fp8, quantized_in_checkpoint(c.quantization, spec));
    if (fp8) {
      TK_ASSIGN_OR_RETURN(*spec.linear, loader.fp8_linear(spec, c.quantization));
      continue;
    }
    TK_ASSIGN_OR_RETURN(*spec.dest, loader.stacked(spec.parts));
  }
  TK_RETURN_IF_ERROR(loader.kv_cache_scales(c, w));
  TK_RETURN_IF_ERROR(model_detail::upload_inv_freq(c, backend, w));
  return w;
}

}  // namespace tk
