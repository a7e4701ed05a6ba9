// Reference attention path: per-head q/k RMSNorm, RoPE fused with the paged KV store, and causal
// attention over the paged cache. These define what the GPU kernels must compute.
#include <algorithm>
#include <array>
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
        if (cache.fp8()) {  // a true division, as the kernel's
          cache.k8[dst + i] = f32_to_fp8_e4m3(k[h * p.head_dim + i] / cache.k_scale);
          cache.v8[dst + i] = f32_to_fp8_e4m3(v[h * p.head_dim + i] / cache.v_scale);
        } else {
          cache.k[dst + i] = k[h * p.head_dim + i];
          cache.v[dst + i] = v[h * p.head_dim + i];
        }
      }
    }
  }
}

// fp8 e4m3 byte -> float, as fp8_e4m3_to_f32, by table: the FP8 cache is read per position and
// query head.
static float fp8_value(uint8_t b) {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = fp8_e4m3_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table[b];
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

// The FP8 cache: each (sequence, kv head)'s context dequantized once (fp8 * scale), then every
// query row of its group attends to it as to an fp32 cache of one page.
static void paged_attention_fp8(const float* qkv, const PagedKv& cache, const AttentionParams& p, float* out) {
  const HeadLayout& h = p.heads;
  const int group = h.num_q_heads / h.num_kv_heads, d = h.head_dim;
  const int64_t out_stride = static_cast<int64_t>(h.num_q_heads) * d;
  const int64_t head_stride = static_cast<int64_t>(cache.page_size) * d, page_stride = head_stride * h.num_kv_heads;
#pragma omp parallel
  {
    std::vector<float> k, v, scores;
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int s = 0; s < p.num_seqs; ++s) {
      for (int kvh = 0; kvh < h.num_kv_heads; ++kvh) {
        const int ctx = p.context_lens[s], q0 = p.query_start[s], q_len = p.query_start[s + 1] - q0;
        const int32_t* pages = p.page_table + static_cast<int64_t>(s) * p.max_pages_per_seq;
        k.resize(static_cast<size_t>(ctx) * d), v.resize(k.size());
        for (int pos = 0; pos < ctx; ++pos) {
          const int64_t off = pages[pos / cache.page_size] * page_stride + kvh * head_stride +
                              static_cast<int64_t>(pos % cache.page_size) * d;
          for (int i = 0; i < d; ++i) {
            k[static_cast<size_t>(pos) * d + i] = fp8_value(cache.k8[off + i]) * cache.k_scale;
            v[static_cast<size_t>(pos) * d + i] = fp8_value(cache.v8[off + i]) * cache.v_scale;
          }
        }
        const PagedKv dense{k.data(), v.data(), 1, std::max(ctx, 1)};
        const int32_t page0 = 0;
        for (int i = 0; i < q_len; ++i)
          for (int head = kvh * group; head < (kvh + 1) * group; ++head)
            attend_one(qkv + (q0 + i) * h.qkv_stride + static_cast<int64_t>(head) * d, dense, &page0, 0, 1, d,
                       ctx - q_len + i + 1, p.scale, scores, out + (q0 + i) * out_stride + head * d);
      }
    }
  }
}

void paged_attention(const float* qkv, const PagedKv& cache, const AttentionParams& p, float* out) {
  if (cache.fp8()) return paged_attention_fp8(qkv, cache, p, out);
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
