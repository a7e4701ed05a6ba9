// RoPE inverse frequencies, in the order and precision transformers computes them.
//
// transformers builds inv_freq with float32 torch ops (modeling_rope_utils.py,
// _compute_default_rope_parameters and _compute_llama3_parameters, unchanged in v5):
//   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
// so the exponent is rounded to float32 before the power, and every later step (the llama3
// wavelength test and smoothing) is float32 arithmetic with Python scalars cast to float32;
// `x / tensor` in torch is `tensor.reciprocal() * x`, which we mirror. The power is evaluated in
// double and rounded once (the correctly rounded float32 pow; torch's CPU pow is within an ulp of
// it). Staying this close matters because the angles are inv_freq times positions of 10^5 and
// more, and because the llama3 regime of a frequency is decided by float32 comparisons.
#include <cmath>
#include <numbers>

#include "model/model.h"

namespace tk {

namespace {

float default_inv_freq(float base, int64_t i, int64_t dim) {
  float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
  float power = static_cast<float>(std::pow(static_cast<double>(base), static_cast<double>(exponent)));
  return (1.0f / power) * 1.0f;
}

// Llama 3.1: leave high frequencies alone, divide low ones by `factor`, blend in between.
float llama3_inv_freq(float inv_freq, const RopeScaling& s) {
  const float factor = static_cast<float>(s.factor);
  const float low = static_cast<float>(s.low_freq_factor);
  const double old_context = static_cast<double>(s.original_max_position_embeddings);
  // Python floats: computed in double, then meet the float32 tensor.
  const float low_freq_wavelen = static_cast<float>(old_context / s.low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(old_context / s.high_freq_factor);
  const float two_pi = static_cast<float>(2.0 * std::numbers::pi);

  float wavelen = (1.0f / inv_freq) * two_pi;
  float scaled = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
  float smooth = ((1.0f / wavelen) * static_cast<float>(old_context) - low) /
                 static_cast<float>(s.high_freq_factor - s.low_freq_factor);
  float smoothed = (1.0f - smooth) * scaled / factor + smooth * scaled;
  bool is_medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
  return is_medium ? smoothed : scaled;
}

}  // namespace

std::vector<float> rope_inv_freq(const ModelConfig& config) {
  const int64_t dim = config.head_dim;
  const float base = static_cast<float>(config.rope_theta);
  std::vector<float> inv_freq(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    float f = default_inv_freq(base, i, dim);
    if (config.rope_scaling.type == RopeScaling::Type::kLlama3) f = llama3_inv_freq(f, config.rope_scaling);
    inv_freq[static_cast<size_t>(i)] = f;
  }
  return inv_freq;
}

}  // namespace tk
