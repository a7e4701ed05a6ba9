// The default Backend::upload_stacked: the parts stacked on the host (one dtype when they all
// share it, else fp32), then one upload().
#include <cstring>

#include "backend/backend.h"

namespace tk {

Result<Tensor> Backend::upload_stacked(const std::vector<Tensor>& parts) {
  if (parts.empty()) return invalid_argument("upload_stacked: no parts");
  if (parts.size() == 1) return upload(parts[0]);
  Shape shape = parts[0].shape();
  int64_t rows = 0;
  bool same = true;
  for (const Tensor& p : parts) {
    rows += p.dim(0);
    same = same && p.dtype() == parts[0].dtype();
  }
  shape[0] = rows;
  const DType dtype = same ? parts[0].dtype() : DType::kF32;
  Tensor host = Tensor::empty_cpu(dtype, shape);
  char* dst = static_cast<char*>(host.data());
  for (const Tensor& p : parts) {
    const size_t n = static_cast<size_t>(p.numel());
    if (same) std::memcpy(dst, p.data(), n * dtype_size(dtype));
    else convert_to_f32(p.data(), p.dtype(), reinterpret_cast<float*>(dst), n);
    dst += n * dtype_size(dtype);
  }
  return upload(host);
}

}  // namespace tk
