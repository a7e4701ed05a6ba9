// Row-wise reference ops: embedding, RMSNorm, matmul, SiLU-mul. fp32, OpenMP over rows.
#include <cmath>
#include <cstring>

#include "ref/ref.h"

namespace tk::ref {

void embedding(const float* table, const int32_t* ids, int64_t num_tokens, int64_t hidden, float* out) {
#pragma omp parallel for
  for (int64_t t = 0; t < num_tokens; ++t)
    std::memcpy(out + t * hidden, table + static_cast<int64_t>(ids[t]) * hidden, sizeof(float) * hidden);
}

static void rmsnorm_row(const float* x, const float* weight, int64_t hidden, float eps, float* out) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < hidden; ++i) sum += x[i] * x[i];
  float inv = 1.f / std::sqrt(sum / static_cast<float>(hidden) + eps);
  for (int64_t i = 0; i < hidden; ++i) out[i] = x[i] * inv * weight[i];
}

void rmsnorm(const float* x, const float* weight, int64_t num_tokens, int64_t hidden, float eps, float* out) {
#pragma omp parallel for
  for (int64_t t = 0; t < num_tokens; ++t) rmsnorm_row(x + t * hidden, weight, hidden, eps, out + t * hidden);
}

void add_rmsnorm(float* residual, const float* delta, const float* weight, int64_t num_tokens, int64_t hidden,
                 float eps, float* out) {
#pragma omp parallel for
  for (int64_t t = 0; t < num_tokens; ++t) {
    float* r = residual + t * hidden;
    const float* d = delta + t * hidden;
    for (int64_t i = 0; i < hidden; ++i) r[i] += d[i];
    rmsnorm_row(r, weight, hidden, eps, out + t * hidden);
  }
}

static inline float dot(const float* a, const float* b, int64_t k) {
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

// Four rows of x against one row of w, so each w element loaded feeds four products.
static inline void dot4(const float* x, int64_t k, const float* w, float out[4]) {
  float s0 = 0.f, s1 = 0.f, s2 = 0.f, s3 = 0.f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
  for (int64_t i = 0; i < k; ++i) {
    float wi = w[i];
    s0 += x[i] * wi;
    s1 += x[k + i] * wi;
    s2 += x[2 * k + i] * wi;
    s3 += x[3 * k + i] * wi;
  }
  out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

void matmul(const float* x, const float* w, const float* bias, int64_t m, int64_t n, int64_t k, float* out) {
  // Parallel over output columns: each thread streams its own rows of w once (decode is a GEMV
  // bound by reading w) and reuses them across the rows of x.
#pragma omp parallel for schedule(static)
  for (int64_t j = 0; j < n; ++j) {
    const float* wj = w + j * k;
    float b = bias ? bias[j] : 0.f;
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
      float r[4];
      dot4(x + i * k, k, wj, r);
      for (int q = 0; q < 4; ++q) out[(i + q) * n + j] = r[q] + b;
    }
    for (; i < m; ++i) out[i * n + j] = dot(x + i * k, wj, k) + b;
  }
}

void silu_mul(const float* gate_up, int64_t num_tokens, int64_t inter, float* out) {
#pragma omp parallel for
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* g = gate_up + t * 2 * inter;
    const float* u = g + inter;
    float* o = out + t * inter;
    for (int64_t i = 0; i < inter; ++i) o[i] = g[i] / (1.f + std::exp(-g[i])) * u[i];
  }
}

void scatter_int32(int32_t* dst, int64_t dst_size, const int32_t* index, const int32_t* values, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (index[i] >= 0 && index[i] < dst_size) dst[index[i]] = values[i];
}

}  // namespace tk::ref
