// Weight loading: safetensors (memory-mapped) -> backend tensors, with q/k/v and gate/up fused
// into one matrix each so every layer runs two fewer GEMMs.
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
    int64_t total_rows = 0;
    for (const model_detail::WeightPart& spec : specs) {
      TK_ASSIGN_OR_RETURN(TensorInfo info, ckpt_.get(spec.name, spec.shape));
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

}  // namespace

Result<ModelWeights> load_weights(const ModelConfig& c, const Checkpoint& ckpt, Backend& backend,
                                  const LoadProgress& progress) {
  WeightLoader loader(ckpt, backend, progress);
  ModelWeights w;
  for (const model_detail::WeightSpec& spec : model_detail::weight_table(c, w)) {
    if (spec.tied_to_embedding && !ckpt.contains(spec.parts[0].name)) {
      *spec.dest = w.embed;
      continue;
    }
    TK_ASSIGN_OR_RETURN(*spec.dest, loader.stacked(spec.parts));
  }
  TK_RETURN_IF_ERROR(model_detail::upload_inv_freq(c, backend, w));
  return w;
}

}  // namespace tk
