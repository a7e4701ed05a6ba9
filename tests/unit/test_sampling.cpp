// Sampler semantics: greedy, seeded determinism, filters, penalties, and that the exponential
// race draws from the right distribution.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "ref/ref.h"

namespace tk::ref {
namespace {

TEST(Sampling, GreedyIsArgmaxLowestIdOnTies) {
  std::vector<float> logits = {0.1f, 2.f, 2.f, -1.f}, scratch;
  SamplingRow p;
  p.temperature = 0.f;
  EXPECT_EQ(sample_row(logits.data(), 4, p, scratch), 1);
}

TEST(Sampling, SameSeedSameTokensDifferentSeedDiffers) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  std::vector<float> logits(1000), scratch;
  for (float& x : logits) x = d(rng);
  SamplingRow p;
  p.seed = 1234;
  std::vector<int32_t> a, b, c;
  for (uint64_t s = 0; s < 50; ++s) {
    p.step = s;
    a.push_back(sample_row(logits.data(), 1000, p, scratch));
    b.push_back(sample_row(logits.data(), 1000, p, scratch));
  }
  p.seed = 99;
  for (uint64_t s = 0; s < 50; ++s) p.step = s, c.push_back(sample_row(logits.data(), 1000, p, scratch));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Sampling, ExponentialRaceMatchesSoftmax) {
  std::vector<float> logits = {0.f, 1.f, 2.f, -1.f}, scratch;
  SamplingRow p;
  p.seed = 42;
  std::map<int, int> counts;
  const int n = 40000;
  for (int s = 0; s < n; ++s) p.step = s, ++counts[sample_row(logits.data(), 4, p, scratch)];
  double z = 0;
  for (float l : logits) z += std::exp(l);
  for (int i = 0; i < 4; ++i) {
    double want = std::exp(logits[i]) / z, got = static_cast<double>(counts[i]) / n;
    EXPECT_NEAR(got, want, 4 * std::sqrt(want * (1 - want) / n)) << i;
  }
}

TEST(Sampling, FiltersRestrictTheSupport) {
  std::vector<float> logits = {3.f, 2.9f, 0.f, -5.f, 1.f}, scratch;
  SamplingRow p;
  p.seed = 7;
  for (int s = 0; s < 200; ++s) {
    p.step = s;
    p.top_k = 2, p.top_p = 1.f, p.min_p = 0.f;
    int t = sample_row(logits.data(), 5, p, scratch);
    EXPECT_TRUE(t == 0 || t == 1);
    p.top_k = 0, p.top_p = 0.3f;  // the top token alone holds more than 30%
    EXPECT_EQ(sample_row(logits.data(), 5, p, scratch), 0);
    p.top_p = 1.f, p.min_p = 0.5f;  // tokens below half the top probability go
    t = sample_row(logits.data(), 5, p, scratch);
    EXPECT_TRUE(t == 0 || t == 1);
  }
}

TEST(Sampling, PenaltiesFollowVllm) {
  std::vector<float> logits = {2.f, -2.f, 1.f, 0.5f};
  int32_t prompt[] = {0, 1}, output[] = {2, 2, 3};
  SamplingRow p;
  p.repetition_penalty = 2.f, p.presence_penalty = 0.5f, p.frequency_penalty = 0.25f;
  p.prompt_tokens = prompt, p.num_prompt_tokens = 2, p.output_tokens = output, p.num_output_tokens = 3;
  apply_penalties(logits.data(), 4, p);
  EXPECT_FLOAT_EQ(logits[0], 1.f);                 // positive: divided
  EXPECT_FLOAT_EQ(logits[1], -4.f);                // negative: multiplied
  EXPECT_FLOAT_EQ(logits[2], 0.5f - 0.5f - 0.5f);  // /2, then presence 0.5 + 2 x 0.25
  EXPECT_FLOAT_EQ(logits[3], 0.25f - 0.5f - 0.25f);
}

TEST(Sampling, TokenLogprob) {
  std::vector<float> logits = {1.f, 2.f, 3.f};
  double z = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(token_logprob(logits.data(), 3, 2), 3.0 - z, 1e-6);
}

TEST(TokenMask, ClearedBitsBecomeMinusInfinity) {
  std::vector<float> row(70, 1.5f);
  std::vector<uint32_t> mask = {0x1u, 0x80000000u, 0x3Fu};  // tokens 0, 63 and 64..69
  apply_token_bitmask(row.data(), 70, mask.data());
  for (int t = 0; t < 70; ++t) {
    const bool allowed = t == 0 || t == 63 || t >= 64;
    if (allowed) EXPECT_EQ(row[t], 1.5f) << t;
    else EXPECT_TRUE(std::isinf(row[t]) && row[t] < 0) << t;
  }
  std::vector<float> scratch;
  SamplingRow p;
  p.temperature = 0.f;
  EXPECT_EQ(sample_row(row.data(), 70, p, scratch), 0) << "greedy picks an allowed token";
}

}  // namespace
}  // namespace tk::ref
