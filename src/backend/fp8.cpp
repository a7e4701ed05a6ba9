// FP8 on the host: the arithmetic every FP8 kernel is checked against (quantizing inputs and
// weights, dequantizing weights), and the default FP8 linears of a backend without FP8 GEMMs:
// weights dequantized at load, inputs quantized and dequantized before an fp32 product.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backend/backend.h"

namespace tk {

const char* weight_scale_name(WeightScale s) {
  switch (s) {
    case WeightScale::kNone: return "none";
    case WeightScale::kTensor: return "per-tensor";
    case WeightScale::kChannel: return "per-channel";
    case WeightScale::kBlock: return "128x128 block";
  }
  return "?";
}

const char* input_quant_name(InputQuant q) {
  switch (q) {
    case InputQuant::kNone: return "none";
    case InputQuant::kStaticTensor: return "static per-tensor";
    case InputQuant::kDynamicToken: return "dynamic per-token";
    case InputQuant::kDynamicGroup: return "dynamic per-token 1x128 group";
  }
  return "?";
}

namespace fp8 {
namespace {

int64_t blocks(int64_t n) { return (n + kFp8BlockSize - 1) / kFp8BlockSize; }

// The scale of a dynamic group: its amax (clamped to ub when ub > 0) over 448, never below the
// floor. Division, not a multiply by 1/448: the GPU kernel computes the same expression.
float dynamic_scale(const float* x, int64_t n, float ub) {
  float amax = 0.f;
  for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  if (ub > 0.f) amax = std::min(amax, ub);
  return std::max(amax / kFp8E4M3Max, kFp8MinScale);
}

void quantize_span(const float* x, int64_t n, float scale, uint8_t* q) {
  for (int64_t i = 0; i < n; ++i) q[i] = f32_to_fp8_e4m3(x[i] / scale);  // saturates at +-448
}

}  // namespace

int64_t input_scales_per_row(InputQuant q, int64_t cols) { return q == InputQuant::kDynamicGroup ? blocks(cols) : 1; }

void dequantize_weight(const uint8_t* q, const float* scale, WeightScale s, int64_t out, int64_t in, float* w) {
  const int64_t col_blocks = blocks(in);
  for (int64_t n = 0; n < out; ++n)
    for (int64_t k = 0; k < in; ++k) {
      float sc = 1.f;
      switch (s) {
        case WeightScale::kNone: sc = 1.f; break;
        case WeightScale::kTensor: sc = scale[0]; break;
        case WeightScale::kChannel: sc = scale[n]; break;
        case WeightScale::kBlock: sc = scale[(n / kFp8BlockSize) * col_blocks + k / kFp8BlockSize]; break;
      }
      w[n * in + k] = fp8_e4m3_to_f32(q[n * in + k]) * sc;
    }
}

void quantize_weight_per_channel(const float* w, int64_t out, int64_t in, uint8_t* q, float* scale) {
  for (int64_t n = 0; n < out; ++n) {
    scale[n] = dynamic_scale(w + n * in, in, 0.f);
    quantize_span(w + n * in, in, scale[n], q + n * in);
  }
}

void quantize_input(const float* x, int64_t rows, int64_t cols, int64_t ld, const Fp8Scheme& scheme,
                    float static_scale, uint8_t* q, float* scales) {
  const int64_t per_row = input_scales_per_row(scheme.input, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * ld;
    uint8_t* qr = q + r * cols;
    float* sr = scales + r * per_row;
    switch (scheme.input) {
      case InputQuant::kNone:
      case InputQuant::kStaticTensor:
        sr[0] = static_scale;
        quantize_span(xr, cols, static_scale, qr);
        break;
      case InputQuant::kDynamicToken:
        sr[0] = dynamic_scale(xr, cols, scheme.input_scale_ub);
        quantize_span(xr, cols, sr[0], qr);
        break;
      case InputQuant::kDynamicGroup:
        for (int64_t g = 0; g < per_row; ++g) {
          const int64_t begin = g * kFp8BlockSize, n = std::min<int64_t>(kFp8BlockSize, cols - begin);
          sr[g] = dynamic_scale(xr + begin, n, 0.f);
          quantize_span(xr + begin, n, sr[g], qr + begin);
        }
        break;
    }
  }
}

void scale_product(float* out, int64_t m, int64_t n, int64_t ldo, const float* x_scale, bool x_per_row,
                   const float* w_scale, bool w_per_col, float gain, const float* bias) {
  for (int64_t r = 0; r < m; ++r) {
    const float row_scale = x_scale[x_per_row ? r : 0] * gain;
    for (int64_t c = 0; c < n; ++c) {
      const float v = out[r * ldo + c] * row_scale * w_scale[w_per_col ? c : 0];
      out[r * ldo + c] = bias ? v + bias[c] : v;
    }
  }
}

}  // namespace fp8

// The default: dequantize at load; the input keeps its quantization (the backend's matmul
// quantizes and dequantizes it).
Result<Linear> Backend::upload_fp8_linear(const Fp8HostLinear& h) {
  const int64_t out = h.weight.dim(0), in = h.weight.dim(1);
  Tensor w = Tensor::empty_cpu(DType::kF32, {out, in});
  fp8::dequantize_weight(h.weight.data_as<uint8_t>(), h.weight_scale.data_as<float>(), h.scheme.weight, out, in,
                         w.data_as<float>());
  Linear l;
  TK_ASSIGN_OR_RETURN(l.weight, upload(w));
  l.scheme = h.scheme;
  l.scheme.weight = WeightScale::kNone;
  if (h.scheme.input == InputQuant::kStaticTensor) {
    TK_ASSIGN_OR_RETURN(l.input_scale, alloc(DType::kF32, {1}));
    TK_RETURN_IF_ERROR(copy_from_host(&h.input_scale, l.input_scale));
  }
  return l;
}

// The default: per-channel quantization on the host, held dequantized.
Status Backend::quantize_linear_fp8(Linear& w) {
  const int64_t out = w.out_features(), in = w.in_features();
  Tensor host = Tensor::empty_cpu(w.weight.dtype(), w.weight.shape());
  TK_RETURN_IF_ERROR(download(w.weight, host.data()));
  std::vector<float> f32(static_cast<size_t>(out * in));
  convert_to_f32(host.data(), host.dtype(), f32.data(), f32.size());
  std::vector<uint8_t> q(f32.size());
  Tensor scale = Tensor::empty_cpu(DType::kF32, {out});
  fp8::quantize_weight_per_channel(f32.data(), out, in, q.data(), scale.data_as<float>());
  Tensor deq = Tensor::empty_cpu(DType::kF32, {out, in});
  fp8::dequantize_weight(q.data(), scale.data_as<float>(), WeightScale::kChannel, out, in, deq.data_as<float>());
  TK_ASSIGN_OR_RETURN(w.weight, upload(deq));
  w.scheme = {WeightScale::kNone, InputQuant::kDynamicToken, 0.f};
  return Status::ok_status();
}

// The defaults of the fused FP8-input and deferred-scale ops: never called, since the default
// serves_fused_fp8_input and serves_deferred_fp8_scales serve none (a backend that serves some
// overrides the ops).
void Backend::rmsnorm_fp8(const Tensor&, const Tensor&, float, const Linear&, Fp8Activation&) {
  TK_CHECK_MSG(false, name() + " does not fuse FP8 input quantization into rmsnorm");
}
void Backend::add_rmsnorm_fp8(Tensor&, const Tensor&, const Fp8DeferredScales&, const Tensor&, float, const Linear&,
                              Fp8Activation&) {
  TK_CHECK_MSG(false, name() + " does not fuse FP8 input quantization into add_rmsnorm");
}
void Backend::silu_mul_fp8(const Tensor&, const Fp8DeferredScales&, const Linear&, Fp8Activation&) {
  TK_CHECK_MSG(false, name() + " does not fuse FP8 input quantization into silu_mul");
}
void Backend::matmul_quantized(const Fp8Activation&, const Linear&, Tensor&) {
  TK_CHECK_MSG(false, name() + " takes no pre-quantized FP8 inputs");
}
void Backend::matmul_unscaled(const Tensor&, const Linear&, Tensor&, Fp8DeferredScales&) {
  TK_CHECK_MSG(false, name() + " leaves no FP8 scales for later");
}
void Backend::matmul_quantized_unscaled(const Fp8Activation&, const Linear&, Tensor&, Fp8DeferredScales&) {
  TK_CHECK_MSG(false, name() + " leaves no FP8 scales for later");
}

}  // namespace tk
