// Reference sampler: penalties, temperature, top-k/top-p/min-p filtering and a seeded exponential
// race over tk::philox_uniform (core), the same numbers the GPU sampler draws, so both pick the
// same token from the same logits.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "ref/ref.h"

namespace tk::ref {

void apply_penalties(float* logits, int64_t vocab, const SamplingRow& p) {
  if (p.repetition_penalty != 1.f) {
    auto penalise = [&](const int32_t* ids, int n) {
      for (int i = 0; i < n; ++i) {
        if (ids[i] < 0 || ids[i] >= vocab) continue;
        float& l = logits[ids[i]];
        l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
      }
    };
    // NOTE: each distinct token is penalised once, however often it appears.
    std::vector<int32_t> seen;
    seen.insert(seen.end(), p.prompt_tokens, p.prompt_tokens + p.num_prompt_tokens);
    seen.insert(seen.end(), p.output_tokens, p.output_tokens + p.num_output_tokens);
    std::sort(seen.begin(), seen.end());
    seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
    penalise(seen.data(), static_cast<int>(seen.size()));
  }
  if (p.presence_penalty != 0.f || p.frequency_penalty != 0.f) {
    std::unordered_map<int32_t, int> counts;
    for (int i = 0; i < p.num_output_tokens; ++i) ++counts[p.output_tokens[i]];
    for (auto [id, n] : counts) {
      if (id < 0 || id >= vocab) continue;
      logits[id] -= p.frequency_penalty * static_cast<float>(n) + p.presence_penalty;
    }
  }
}

static int32_t argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return static_cast<int32_t>(best);
}

// Softmax of logits / temperature into probs.
static void softmax_scaled(const float* logits, int64_t n, float temperature, float* probs) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    probs[i] = std::exp((logits[i] - mx) / temperature);
    sum += probs[i];
  }
  float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) probs[i] *= inv;
}

// Zeroes all but the k largest probabilities (ties at the k-th value are kept).
static void filter_top_k(float* probs, int64_t n, int k) {
  if (k <= 0 || k >= n) return;
  std::vector<float> copy(probs, probs + n);
  std::nth_element(copy.begin(), copy.begin() + (k - 1), copy.end(), std::greater<float>());
  float kth = copy[k - 1];
  for (int64_t i = 0; i < n; ++i)
    if (probs[i] < kth) probs[i] = 0.f;
}

// Keeps the smallest set of most likely tokens whose mass reaches top_p of the remaining mass
// (the token that crosses the threshold is kept).
static void filter_top_p(float* probs, int64_t n, float top_p) {
  if (top_p >= 1.f) return;
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  });
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += probs[i];
  double cum = 0.0, limit = static_cast<double>(top_p) * total;
  int64_t i = 0;
  for (; i < n && cum < limit; ++i) cum += probs[order[i]];
  for (; i < n; ++i) probs[order[i]] = 0.f;
}

static void filter_min_p(float* probs, int64_t n, float min_p) {
  if (min_p <= 0.f) return;
  float mx = 0.f;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, probs[i]);
  float threshold = min_p * mx;
  for (int64_t i = 0; i < n; ++i)
    if (probs[i] < threshold) probs[i] = 0.f;
}

int32_t sample_row(const float* logits, int64_t vocab, const SamplingRow& p, std::vector<float>& scratch) {
  scratch.assign(logits, logits + vocab);
  float* x = scratch.data();
  apply_penalties(x, vocab, p);
  if (p.temperature <= 0.f || p.top_k == 1) return argmax(x, vocab);
  softmax_scaled(x, vocab, p.temperature, x);
  filter_top_k(x, vocab, p.top_k);
  filter_top_p(x, vocab, p.top_p);
  filter_min_p(x, vocab, p.min_p);
  // Exponential race: argmax p_i / E_i samples i with probability p_i / sum(p).
  int32_t best = -1;
  float best_score = -1.f;
  for (int64_t i = 0; i < vocab; ++i) {
    if (x[i] <= 0.f) continue;
    float e = -std::log(philox_uniform(p.seed, p.step, static_cast<uint64_t>(i)));
    float score = x[i] / std::max(e, 1e-30f);
    if (score > best_score) best_score = score, best = static_cast<int32_t>(i);
  }
  return best >= 0 ? best : argmax(logits, vocab);
}

float token_logprob(const float* logits, int64_t vocab, int32_t token) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  return static_cast<float>(static_cast<double>(logits[token] - mx) - std::log(sum));
}

std::vector<TokenLogprob> top_logprobs(const float* logits, int64_t vocab, int k) {
  float max = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - max);
  const float log_z = max + static_cast<float>(std::log(sum));
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  k = static_cast<int>(std::min<int64_t>(k, vocab));
  auto better = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), better);
  std::vector<TokenLogprob> out;
  for (int i = 0; i < k; ++i) out.push_back({ids[i], logits[ids[i]] - log_z});
  return out;
}

void apply_token_bitmask(float* row, int64_t vocab, const uint32_t* mask) {
  for (int64_t t = 0; t < vocab; ++t)
    if (!((mask[t >> 5] >> (t & 31)) & 1u)) row[t] = -INFINITY;
}

}  // namespace tk::ref
