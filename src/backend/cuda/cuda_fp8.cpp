// FP8 linears on the GPU: weights kept in fp8 e4m3 with fp32 scales, inputs quantized per token
// (or with the checkpoint's static scale) into a scratch buffer of fixed address, then one
// cuBLASLt FP8 GEMM. Per-tensor weights with static inputs: the two scalars in cuBLASLt's
// epilogue. Per-channel weights or per-token inputs: outer vectors (per-token x per-channel) in
// the epilogue where cuBLASLt serves them; where it does not (the H200 with CUDA 13: none for any
// shape), the GEMM runs with constant scalar scales and kernels::scale_fp8_product applies the
// real ones and the bias in place — the FP8 speed at the cost of one pass over the output. What
// no FP8 GEMM here runs — 128x128 block weights (cuBLASLt's block modes are not wired), weight-only
// FP8, in_features not a multiple of 16, out_features not a multiple of 8 (cuBLASLt's FP8 needs
// 16-byte output rows) — is dequantized to the compute dtype at load (the base class), and its
// input is quantized and dequantized (per token or 1x128 group, as the CPU does) before a
// bf16/fp16 product: the same arithmetic, without the FP8 speed.
#include <algorithm>
#include <vector>

#include "cuda_backend_impl.h"

namespace tk {

namespace {

// The FP8 GEMM whose scales are applied afterwards runs with the constant scales
// kFp8ProductPrescale (gemm.h): it writes raw * 2^-18 with raw = sum_k xq * wq, |raw| <= 448 * 448
// * K (2.9e9 at K = 14336): bf16 (max 3.4e38) would hold raw itself, fp16 (max 65504) holds
// raw * 2^-18 <= 0.77 K up to K = 85,000. Outputs that land in fp16's subnormals (|raw| < 16)
// lose relative precision, never more than 2^-6 of raw in absolute terms, against typical |raw|
// of 1e4-1e6.
constexpr int64_t kMaxFp16PrescaledK = 85000;

bool is_scalar_scheme(const Fp8Scheme& s) {
  return s.weight == WeightScale::kTensor && s.input == InputQuant::kStaticTensor;
}

// Which FP8 linears run an FP8 GEMM here (the rest run dequantized). Per-tensor weights with
// static inputs: cuBLASLt's scalar mode; per-tensor or per-channel weights with static or
// per-token inputs: outer vectors or the scalar GEMM plus scale_fp8_product.
bool fp8_gemm_serves(const Fp8Scheme& s, int64_t out_features, int64_t in_features, DType dtype) {
  if (in_features % 16 != 0 || out_features % 8 != 0) return false;
  if (is_scalar_scheme(s)) return true;
  const bool weights = s.weight == WeightScale::kTensor || s.weight == WeightScale::kChannel;
  const bool inputs = s.input == InputQuant::kStaticTensor || s.input == InputQuant::kDynamicToken;
  return weights && inputs && (dtype != DType::kF16 || in_features <= kMaxFp16PrescaledK);
}

// Host to device on the backend's stream, finished on return. A plain cudaMemcpy from pageable
// memory runs on the legacy stream, which the backend's non-blocking stream does not wait for, and
// may return before its DMA lands: a kernel launched next on the stream can read the old bytes.
void copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
  CUDA_CHECK(cudaStreamSynchronize(stream));
}

}  // namespace

// Asked once, by running one: cuBLASLt may return an algorithm, or none (the H200 with CUDA 13's
// cuBLASLt, 2026-12-01: none for any shape), and a served one must also compute the product.
// x = w = 1 (fp8 0x38), x_scale[m] = (m + 1) / 16, w_scale[n] = (n % 8 + 1) / 8 over k = 128:
// out[m, n] = (m + 1) (n % 8 + 1), integers of at most 128, exact in bf16.
bool CudaBackend::fp8_outer_vectors_served() {
  if (fp8_outer_vectors_) return *fp8_outer_vectors_;
  constexpr int64_t kM = 16, kN = 128, kK = 128;
  DeviceBuffer x, w, xs, ws, out;
  bool ok = ensure_bytes(x, kM * kK).ok() && ensure_bytes(w, kN * kK).ok() && ensure_bytes(xs, kM * 4).ok() &&
            ensure_bytes(ws, kN * 4).ok() && ensure_bytes(out, kM * kN * 2).ok();
  if (ok) {
    const std::vector<uint8_t> ones(kN * kK, 0x38);
    std::vector<float> x_scale(kM), w_scale(kN);
    for (int64_t m = 0; m < kM; ++m) x_scale[m] = static_cast<float>(m + 1) / 16.f;
    for (int64_t n = 0; n < kN; ++n) w_scale[n] = static_cast<float>(n % 8 + 1) / 8.f;
    copy_to_device(x.data(), ones.data(), kM * kK, stream_);
    copy_to_device(w.data(), ones.data(), kN * kK, stream_);
    copy_to_device(xs.data(), x_scale.data(), kM * 4, stream_);
    copy_to_device(ws.data(), w_scale.data(), kN * 4, stream_);
    Fp8GemmArgs g;
    g.x = x.data(), g.w = w.data(), g.x_scale = static_cast<const float*>(xs.data());
    g.w_scale = static_cast<const float*>(ws.data()), g.out = out.data(), g.m = kM, g.n = kN, g.k = kK;
    g.per_row_scales = true, g.out_dtype = DType::kBF16;
    ok = gemm_->matmul_fp8(g, stream_).ok();
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    if (ok) {
      std::vector<uint16_t> got(kM * kN);
      CUDA_CHECK(cudaMemcpy(got.data(), out.data(), got.size() * 2, cudaMemcpyDeviceToHost));
      for (int64_t m = 0; m < kM && ok; ++m)
        for (int64_t n = 0; n < kN && ok; ++n) ok = bf16_to_f32(got[m * kN + n]) == static_cast<float>((m + 1) * (n % 8 + 1));
      if (!ok) TK_LOG_INFO("fp8: cuBLASLt returned an outer-vector FP8 GEMM that computed a wrong product; not used");
    }
  }
  fp8_outer_vectors_ = ok;
  if (!ok)
    TK_LOG_INFO("fp8: cuBLASLt serves no outer-vector (per-token x per-channel) FP8 GEMM on this device; such "
                "linears run its scalar-scaled FP8 GEMM and apply their scales in a pass of their own");
  return ok;
}

// The device constant kFp8ProductPrescale, before any step (graphs capture its address).
Status CudaBackend::ensure_fp8_prescale() {
  if (fp8_prescale_.size() > 0) return Status::ok_status();
  TK_ASSIGN_OR_RETURN(fp8_prescale_, DeviceBuffer::allocate(sizeof(float)));
  copy_to_device(fp8_prescale_.data(), &kFp8ProductPrescale, sizeof(float), stream_);
  return Status::ok_status();
}

Result<Linear> CudaBackend::upload_fp8_linear(const Fp8HostLinear& h) {
  const int64_t out = h.weight.dim(0), in = h.weight.dim(1);
  if (!fp8_gemm_serves(h.scheme, out, in, dtype_)) {
    TK_LOG_DEBUG(std::string("fp8: ") + weight_scale_name(h.scheme.weight) + " weights with " +
                 input_quant_name(h.scheme.input) + " inputs, " + std::to_string(out) + "x" + std::to_string(in) +
                 ": dequantized to the compute dtype (no FP8 GEMM for it)");
    return Backend::upload_fp8_linear(h);
  }
  const bool scalar = is_scalar_scheme(h.scheme);
  if (!scalar) {
    fp8_outer_vectors_served();
    TK_RETURN_IF_ERROR(ensure_fp8_prescale());
  }
  Linear l;
  l.scheme = h.scheme;
  TK_ASSIGN_OR_RETURN(l.weight, cuda_alloc_tensor(DType::kF8E4M3, {out, in}));
  copy_to_device(l.weight.data(), h.weight.data(), l.weight.nbytes(), stream_);
  // Per-tensor weights with per-token inputs run as per-channel ones: the scale repeated per row.
  std::vector<float> scale(h.weight_scale.data_as<float>(), h.weight_scale.data_as<float>() + h.weight_scale.numel());
  if (!scalar && h.scheme.weight == WeightScale::kTensor) {
    scale.assign(static_cast<size_t>(out), scale[0]);
    l.scheme.weight = WeightScale::kChannel;
  }
  TK_ASSIGN_OR_RETURN(l.weight_scale, cuda_alloc_tensor(DType::kF32, {static_cast<int64_t>(scale.size())}));
  copy_to_device(l.weight_scale.data(), scale.data(), scale.size() * sizeof(float), stream_);
  if (h.scheme.input == InputQuant::kStaticTensor) {
    TK_ASSIGN_OR_RETURN(l.input_scale, cuda_alloc_tensor(DType::kF32, {1}));
    copy_to_device(l.input_scale.data(), &h.input_scale, sizeof(float), stream_);
  }
  return l;
}

// Per output channel on the device (an 8B model's weights never visit the host): the rows of the
// weight are quantized like per-token inputs.
Status CudaBackend::quantize_linear_fp8(Linear& w) {
  const int64_t out = w.out_features(), in = w.in_features();
  // No FP8 GEMM for it (tiny test models): quantized per channel on the host and held
  // dequantized, its input quantized per token, as on the CPU.
  const Fp8Scheme scheme{WeightScale::kChannel, InputQuant::kDynamicToken, 0.f};
  if (!fp8_gemm_serves(scheme, out, in, dtype_)) return Backend::quantize_linear_fp8(w);
  fp8_outer_vectors_served();
  TK_RETURN_IF_ERROR(ensure_fp8_prescale());
  TK_ASSIGN_OR_RETURN(Tensor scale, cuda_alloc_tensor(DType::kF32, {out}));
  TK_ASSIGN_OR_RETURN(Tensor q, cuda_alloc_tensor(DType::kF8E4M3, {out, in}));
  kernels::QuantizeFp8RowsParams p;
  p.x = w.weight.data(), p.rows = out, p.cols = in, p.ld = w.weight.stride(0);
  p.scales = scale.data_as<float>(), p.dtype = w.weight.dtype(), p.q = q.data();
  TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(p, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // before the bf16 weight is freed
  w.weight = q;
  w.weight_scale = scale;
  w.scheme = scheme;
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

// x [m, k] quantized into fp8_input_ (scales [m] in fp8_input_scales_), then the product.
Status CudaBackend::matmul_fp8(const Tensor& x, const Linear& w, Tensor& out, Fp8DeferredScales* deferred) {
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
  // The quantizer writes a scale per row for static inputs too (the static one).
  return fp8_weight_product(fp8_input_.data(), static_cast<const float*>(fp8_input_scales_.data()), m, k, w, out,
                            deferred);
}

// Linears whose input the norm or SiLU·up before them may quantize (Backend::fuses_fp8_input):
// FP8 weights with dynamic per-token inputs, as wide as the fused kernels hold in registers.
// Static input scales and 1x128 groups keep matmul_fp8's own quantization.
bool CudaBackend::serves_fused_fp8_input(const Linear& w) const {
  return w.weight.dtype() == DType::kF8E4M3 && w.scheme.input == InputQuant::kDynamicToken &&
         w.in_features() <= kernels::kSiluMulFp8MaxInter;
}

void CudaBackend::matmul_quantized(const Fp8Activation& x, const Linear& w, Tensor& out) {
  TK_CHECK(serves_fused_fp8_input(w) && x.q.dtype() == DType::kF8E4M3 && x.q.dim(1) == w.in_features() &&
           x.q.is_contiguous() && x.scales.dim(0) == x.q.dim(0));
  record(fp8_weight_product(x.q.data(), x.scales.data_as<float>(), x.q.dim(0), x.q.dim(1), w, out, nullptr));
}

// Linears whose scale pass the op after them may take over: those that would run the scalar GEMM
// and scale_fp8_product, without a bias (the pass adds it after the scales).
bool CudaBackend::serves_deferred_fp8_scales(const Linear& w) const {
  return w.weight.dtype() == DType::kF8E4M3 && !is_scalar_scheme(w.scheme) && !fp8_outer_vectors_.value_or(false) &&
         !w.bias.defined() && w.weight_scale.defined() && w.weight_scale.numel() == w.out_features();
}

void CudaBackend::matmul_unscaled(const Tensor& x, const Linear& w, Tensor& out, Fp8DeferredScales& scales) {
  TK_CHECK(serves_deferred_fp8_scales(w) && w.quantizes_input());
  record(matmul_fp8(x, w, out, &scales));
}

void CudaBackend::matmul_quantized_unscaled(const Fp8Activation& x, const Linear& w, Tensor& out,
                                            Fp8DeferredScales& scales) {
  TK_CHECK(serves_fused_fp8_input(w) && serves_deferred_fp8_scales(w) && x.q.dim(1) == w.in_features() &&
           x.q.is_contiguous() && x.scales.dim(0) == x.q.dim(0));
  record(fp8_weight_product(x.q.data(), x.scales.data_as<float>(), x.q.dim(0), x.q.dim(1), w, out, &scales));
}

// xq [m, k] fp8 with row_scales [m] (the static scale repeated, for static inputs) times the FP8
// weight: cuBLASLt's scalars, its outer vectors, or the scalar GEMM and scale_fp8_product.
Status CudaBackend::fp8_weight_product(const void* xq, const float* row_scales, int64_t m, int64_t k, const Linear& w,
                                       Tensor& out, Fp8DeferredScales* deferred) {
  Fp8GemmArgs g;
  g.x = xq, g.w = w.weight.data(), g.bias = w.bias.defined() ? w.bias.data() : nullptr;
  g.out = out.data(), g.m = m, g.n = w.out_features(), g.k = k, g.ldo = out.stride(0), g.out_dtype = out.dtype();
  if (is_scalar_scheme(w.scheme)) {  // the checkpoint's two scalars in cuBLASLt's epilogue
    g.x_scale = w.input_scale.data_as<float>(), g.w_scale = w.weight_scale.data_as<float>();
    return gemm_->matmul_fp8(g, stream_);
  }
  if (fp8_outer_vectors_.value_or(false)) {  // per-token x per-channel in cuBLASLt's epilogue
    g.per_row_scales = true, g.x_scale = row_scales, g.w_scale = w.weight_scale.data_as<float>();
    return gemm_->matmul_fp8(g, stream_);
  }
  // The constant scalar scales, then the real ones and the bias (after scaling) in place.
  if (fp8_prescale_.size() == 0) return internal_error("fp8 matmul: the FP8 prescale constant was never uploaded");
  g.bias = nullptr;
  g.x_scale = g.w_scale = static_cast<const float*>(fp8_prescale_.data());
  TK_RETURN_IF_ERROR(gemm_->matmul_fp8(g, stream_));
  if (deferred != nullptr) {  // the op after it applies them (no bias here: serves_deferred_fp8_scales)
    deferred->x_scales = Tensor(const_cast<float*>(row_scales), DType::kF32, {m}, Device::kCuda);
    deferred->w_scales = w.weight_scale;
    deferred->gain = kFp8ProductGain;
    return Status::ok_status();
  }
  kernels::ScaleFp8ProductParams s;
  s.out = out.data(), s.m = m, s.n = w.out_features(), s.ldo = out.stride(0);
  s.x_scale = row_scales, s.w_scale = w.weight_scale.data_as<float>();
  s.x_scale_per_row = true, s.w_scale_per_col = true, s.gain = kFp8ProductGain;
  s.bias = w.bias.defined() ? w.bias.data() : nullptr, s.dtype = out.dtype();
  return kernels::scale_fp8_product(s, stream_);
}

}  // namespace tk
