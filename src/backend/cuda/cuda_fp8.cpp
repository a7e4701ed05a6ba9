// FP8 linears on the GPU: weights kept in fp8 e4m3 with fp32 scales, inputs quantized per token
// (or with the checkpoint's static scale) into a scratch buffer of fixed address, then one
// cuBLASLt FP8 GEMM with the scales in its epilogue: scalars when both are per tensor, outer
// vectors (per-token x per-channel) otherwise. What cuBLASLt cannot serve here — 128x128 block
// weights, weight-only FP8, in_features not a multiple of 16 — is dequantized to the compute dtype
// at load (the base class), and its input is quantized and dequantized (per token or 1x128 group,
// as the CPU does) before a bf16/fp16 product: the same arithmetic, without the FP8 speed.
#include <algorithm>
#include <vector>

#include "cuda_backend_impl.h"

namespace tk {

namespace {

// Per-tensor weights with static inputs run in scalar mode; the rest (per-channel weights or
// per-token inputs) needs cuBLASLt's outer-vector scales, which it may not serve on the device.
bool fp8_gemm_serves(const Fp8Scheme& s, int64_t in_features, bool outer_vectors) {
  if (in_features % 16 != 0) return false;
  if (s.weight == WeightScale::kTensor && s.input == InputQuant::kStaticTensor) return true;
  const bool weights = s.weight == WeightScale::kTensor || s.weight == WeightScale::kChannel;
  const bool inputs = s.input == InputQuant::kStaticTensor || s.input == InputQuant::kDynamicToken;
  return outer_vectors && weights && inputs;
}

}  // namespace

// Asked once: on the H200 with CUDA 13's cuBLASLt (2026-12-01) no FP8 outer-vector algorithm was
// returned for any shape, and a linear that counted on one produced garbage.
bool CudaBackend::fp8_outer_vectors_served() {
  if (fp8_outer_vectors_) return *fp8_outer_vectors_;
  constexpr int64_t kM = 16, kN = 128, kK = 128;
  DeviceBuffer x, w, xs, ws, out;
  bool ok = ensure_bytes(x, kM * kK).ok() && ensure_bytes(w, kN * kK).ok() && ensure_bytes(xs, kM * 4).ok() &&
            ensure_bytes(ws, kN * 4).ok() && ensure_bytes(out, kM * kN * 2).ok();
  if (ok) {
    CUDA_CHECK(cudaMemset(x.data(), 0, kM * kK));
    CUDA_CHECK(cudaMemset(w.data(), 0, kN * kK));
    CUDA_CHECK(cudaMemset(xs.data(), 0, kM * 4));
    CUDA_CHECK(cudaMemset(ws.data(), 0, kN * 4));
    Fp8GemmArgs g;
    g.x = x.data(), g.w = w.data(), g.x_scale = static_cast<const float*>(xs.data());
    g.w_scale = static_cast<const float*>(ws.data()), g.out = out.data(), g.m = kM, g.n = kN, g.k = kK;
    g.per_row_scales = true, g.out_dtype = DType::kBF16;
    ok = gemm_->matmul_fp8(g, stream_).ok();
    CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  fp8_outer_vectors_ = ok;
  if (!ok)
    TK_LOG_INFO("fp8: cuBLASLt serves no outer-vector (per-token x per-channel) FP8 GEMM on this device; "
                "such linears run dequantized in the compute dtype");
  return ok;
}

Result<Linear> CudaBackend::upload_fp8_linear(const Fp8HostLinear& h) {
  const int64_t out = h.weight.dim(0), in = h.weight.dim(1);
  if (!fp8_gemm_serves(h.scheme, in, fp8_outer_vectors_served())) {
    TK_LOG_DEBUG(std::string("fp8: ") + weight_scale_name(h.scheme.weight) + " weights with " +
                 input_quant_name(h.scheme.input) + " inputs, in_features " + std::to_string(in) +
                 ": dequantized to the compute dtype (no FP8 GEMM for it)");
    return Backend::upload_fp8_linear(h);
  }
  Linear l;
  l.scheme = h.scheme;
  TK_ASSIGN_OR_RETURN(l.weight, cuda_alloc_tensor(DType::kF8E4M3, {out, in}));
  CUDA_CHECK(cudaMemcpy(l.weight.data(), h.weight.data(), l.weight.nbytes(), cudaMemcpyHostToDevice));
  // Per-tensor weights with per-token inputs run the outer-vector GEMM: the scale repeated per row.
  const bool scalar = h.scheme.weight == WeightScale::kTensor && h.scheme.input == InputQuant::kStaticTensor;
  std::vector<float> scale(h.weight_scale.data_as<float>(), h.weight_scale.data_as<float>() + h.weight_scale.numel());
  if (!scalar && h.scheme.weight == WeightScale::kTensor) {
    scale.assign(static_cast<size_t>(out), scale[0]);
    l.scheme.weight = WeightScale::kChannel;
  }
  TK_ASSIGN_OR_RETURN(l.weight_scale, cuda_alloc_tensor(DType::kF32, {static_cast<int64_t>(scale.size())}));
  CUDA_CHECK(cudaMemcpy(l.weight_scale.data(), scale.data(), scale.size() * sizeof(float), cudaMemcpyHostToDevice));
  if (h.scheme.input == InputQuant::kStaticTensor) {
    TK_ASSIGN_OR_RETURN(l.input_scale, cuda_alloc_tensor(DType::kF32, {1}));
    CUDA_CHECK(cudaMemcpy(l.input_scale.data(), &h.input_scale, sizeof(float), cudaMemcpyHostToDevice));
  }
  return l;
}

// Per output channel on the device (an 8B model's weights never visit the host): the rows of the
// weight are quantized like per-token inputs.
Status CudaBackend::quantize_linear_fp8(Linear& w) {
  const int64_t out = w.out_features(), in = w.in_features();
  // No FP8 GEMM for it (tiny test models): quantized per channel on the host and held
  // dequantized, its input quantized per token, as on the CPU.
  if (in % 16 != 0) return Backend::quantize_linear_fp8(w);
  TK_ASSIGN_OR_RETURN(Tensor scale, cuda_alloc_tensor(DType::kF32, {out}));
  kernels::QuantizeFp8RowsParams p;
  p.x = w.weight.data(), p.rows = out, p.cols = in, p.ld = w.weight.stride(0);
  p.scales = scale.data_as<float>(), p.dtype = w.weight.dtype();
  if (!fp8_outer_vectors_served()) {
    // No per-channel FP8 GEMM: the weight as FP8 sees it (per-channel), held in the compute dtype.
    TK_ASSIGN_OR_RETURN(Tensor deq, cuda_alloc_tensor(w.weight.dtype(), {out, in}));
    p.dequantized = deq.data();
    TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(p, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    w.weight = deq;
    w.scheme = {WeightScale::kNone, InputQuant::kDynamicToken, 0.f};
    return Status::ok_status();
  }
  TK_ASSIGN_OR_RETURN(Tensor q, cuda_alloc_tensor(DType::kF8E4M3, {out, in}));
  p.q = q.data();
  TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(p, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // before the bf16 weight is freed
  w.weight = q;
  w.weight_scale = scale;
  w.scheme = {WeightScale::kChannel, InputQuant::kDynamicToken, 0.f};
  return Status::ok_status();
}

Status CudaBackend::reserve_fp8_inputs(int64_t max_tokens, int64_t max_in) {
  TK_RETURN_IF_ERROR(ensure_bytes(fp8_input_, static_cast<size_t>(max_tokens * max_in)));
  const int64_t groups = (max_in + kFp8BlockSize - 1) / kFp8BlockSize;
  TK_RETURN_IF_ERROR(ensure_bytes(fp8_input_scales_, static_cast<size_t>(max_tokens * groups) * sizeof(float)));
  TK_RETURN_IF_ERROR(ensure_bytes(fp8_dequantized_, static_cast<size_t>(max_tokens * max_in) * dtype_size(dtype_)));
  fp8_input_rows_ = std::max(fp8_input_rows_, max_tokens);
  fp8_input_cols_ = std::max(fp8_input_cols_, max_in);
  return Status::ok_status();
}

Status CudaBackend::matmul_fp8(const Tensor& x, const Linear& w, Tensor& out) {
  const int64_t m = x.dim(0), k = x.dim(1);
  if (m > fp8_input_rows_ || k > fp8_input_cols_)
    return internal_error("fp8 matmul: " + std::to_string(m) + "x" + std::to_string(k) +
                          " exceeds the reserved quantized-input scratch (" + std::to_string(fp8_input_rows_) + "x" +
                          std::to_string(fp8_input_cols_) + ")");
  kernels::QuantizeFp8RowsParams q;
  q.x = x.data(), q.rows = m, q.cols = k, q.ld = x.stride(0);
  q.static_scale = w.input_scale.defined() ? w.input_scale.data_as<float>() : nullptr;
  q.amax_ub = w.scheme.input_scale_ub;
  q.group_size = w.scheme.input == InputQuant::kDynamicGroup ? kFp8BlockSize : 0;
  q.scales = static_cast<float*>(fp8_input_scales_.data()), q.dtype = x.dtype();
  if (w.weight.dtype() != DType::kF8E4M3) {  // a dequantized weight: x as FP8 sees it, then bf16/fp16
    q.dequantized = fp8_dequantized_.data();
    TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(q, stream_));
    Tensor xq(fp8_dequantized_.data(), x.dtype(), {m, k}, Device::kCuda);
    GemmArgs g;
    g.x = xq.data(), g.w = w.weight.data(), g.bias = w.bias.defined() ? w.bias.data() : nullptr, g.out = out.data();
    g.m = m, g.n = w.out_features(), g.k = k, g.ldo = out.stride(0), g.in_dtype = x.dtype(), g.out_dtype = out.dtype();
    return gemm_->matmul(g, stream_);
  }
  q.q = fp8_input_.data();
  TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(q, stream_));
  Fp8GemmArgs g;
  g.x = fp8_input_.data(), g.w = w.weight.data(), g.bias = w.bias.defined() ? w.bias.data() : nullptr;
  g.out = out.data(), g.m = m, g.n = w.out_features(), g.k = k, g.ldo = out.stride(0), g.out_dtype = out.dtype();
  g.per_row_scales = w.scheme.weight == WeightScale::kChannel;
  // Scalar mode: the static input scale itself; outer vectors: the per-row scales just written.
  g.x_scale = g.per_row_scales ? static_cast<const float*>(fp8_input_scales_.data()) : w.input_scale.data_as<float>();
  g.w_scale = w.weight_scale.data_as<float>();
  return gemm_->matmul_fp8(g, stream_);
}

}  // namespace tk
