// Reference attention path: per-head q/k RMSNorm, RoPE fused with the paged KV store, and causal
// attention over the paged cache. These define what the GPU kernels must compute.
#include <cmath>
#include <vector>

#include "ref/ref.h"

namespace tk::ref {

void qk_norm(float* qkv, const float* q_weight, const float* k_weight, const HeadLayout& p, float eps) {
  const int heads = p.num_q_heads + p.num_kv_heads;  // q heads then k heads; v untouched
#pragma omp parallel for
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    for (int h = 0; h < heads; ++h) {
      float* x = qkv + t * p.qkv_stride + static_cast<int64_t>(h) * p.head_dim;
      const float* w = h < p.num_q_heads ? q_weight : k_weight;
      float sum = 0.f;
      for (int i = 0; i < p.head_dim; ++i) sum += x[i] * x[i];
      float inv = 1.f / std::sqrt(sum / static_cast<float>(p.head_dim) + eps);
      for (int i = 0; i < p.head_dim; ++i) x[i] = x[i] * inv * w[i];
    }
  }
}

// Neox-style rotation of one head: pairs (i, i + d/2).
static void rotate_head(float* x, const float* cos_t, const float* sin_t, int half) {
  for (int i = 0; i < half; ++i) {
    float a = x[i], b = x[i + half];
    x[i] = a * cos_t[i] - b * sin_t[i];
    x[i + half] = b * cos_t[i] + a * sin_t[i];
  }
}

void rope_kv_store(float* qkv, const int32_t* positions, const float* inv_freq, const int32_t* slot_mapping,
                   const HeadLayout& p, PagedKv cache) {
  const int half = p.head_dim / 2;
  const int64_t head_stride = static_cast<int64_t>(cache.page_size) * p.head_dim;
  const int64_t page_stride = head_stride * p.num_kv_heads;
#pragma omp parallel for
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    std::vector<float> cos_t(half), sin_t(half);
    for (int i = 0; i < half; ++i) {
      // fp32 angle like transformers (inv_freq fp32 times position fp32).
      float angle = static_cast<float>(positions[t]) * inv_freq[i];
      cos_t[i] = std::cos(angle);
      sin_t[i] = std::sin(angle);
    }
    float* row = qkv + t * p.qkv_stride;
    for (int h = 0; h < p.num_q_heads + p.num_kv_heads; ++h) rotate_head(row + h * p.head_dim, cos_t.data(), sin_t.data(), half);
    const int64_t slot = slot_mapping[t];
    const int64_t page = slot / cache.page_size, offset = slot % cache.page_size;
    const float* k = row + static_cast<int64_t>(p.num_q_heads) * p.head_dim;
    const float* v = k + static_cast<int64_t>(p.num_kv_heads) * p.head_dim;
    for (int h = 0; h < p.num_kv_heads; ++h) {
      int64_t dst = page * page_stride + h * head_stride + offset * p.head_dim;
      for (int i = 0; i < p.head_dim; ++i) {
        cache.k[dst + i] = k[h * p.head_dim + i];
        cache.v[dst + i] = v[h * p.head_dim + i];
      }
    }
  }
}

// One query head of one token against `visible` cached positions.
static void attend_one(const float* q, const PagedKv& cache, const int32_t* pages, int kv_head, int num_kv_heads,
                       int head_dim, int visible, float scale, std::vector<float>& scores, float* out) {
  const int64_t head_stride = static_cast<int64_t>(cache.page_size) * head_dim;
  const int64_t page_stride = head_stride * num_kv_heads;
  auto at = [&](const float* base, int pos) {
    return base + pages[pos / cache.page_size] * page_stride + kv_head * head_stride +
           static_cast<int64_t>(pos % cache.page_size) * head_dim;
  };
  scores.resize(visible);
  float max_score = -INFINITY;
  for (int j = 0; j < visible; ++j) {
    const float* k = at(cache.k, j);
    float s = 0.f;
    for (int i = 0; i < head_dim; ++i) s += q[i] * k[i];
    scores[j] = s * scale;
    max_score = std::max(max_score, scores[j]);
  }
  float denom = 0.f;
  for (int j = 0; j < visible; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    denom += scores[j];
  }
  for (int i = 0; i < head_dim; ++i) out[i] = 0.f;
  for (int j = 0; j < visible; ++j) {
    const float* v = at(cache.v, j);
    float w = scores[j] / denom;
    for (int i = 0; i < head_dim; ++i) out[i] += w * v[i];
  }
}

void paged_attention(const float* qkv, const PagedKv& cache, const AttentionParams& p, float* out) {
  const HeadLayout& h = p.heads;
  const int group = h.num_q_heads / h.num_kv_heads;
  const int64_t out_stride = static_cast<int64_t>(h.num_q_heads) * h.head_dim;
#pragma omp parallel
  {
    std::vector<float> scores;
#pragma omp for collapse(2) schedule(dynamic, 4)
    for (int64_t t = 0; t < h.num_tokens; ++t) {
      for (int head = 0; head < h.num_q_heads; ++head) {
        int s = 0;
        while (p.query_start[s + 1] <= t) ++s;
        const int q_len = p.query_start[s + 1] - p.query_start[s];
        const int visible = p.context_lens[s] - q_len + static_cast<int>(t - p.query_start[s]) + 1;
        const int32_t* pages = p.page_table + static_cast<int64_t>(s) * p.max_pages_per_seq;
        attend_one(qkv + t * h.qkv_stride + static_cast<int64_t>(head) * h.head_dim, cache, pages, head / group,
                   h.num_kv_heads, h.head_dim, visible, p.scale, scores, out + t * out_stride + head * h.head_dim);
      }
    }
  }
}

}  // namespace tk::ref
