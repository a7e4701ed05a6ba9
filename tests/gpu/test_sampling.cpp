// The GPU sampler against ref::sample_row: greedy exactly, seeded sampling (temperature, top-k,
// top-p, min-p, penalties) picking the same token for many (seed, step) pairs, ties, logprobs.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "gpu_util.h"
#include "kernels/kernels.h"
#include "ref/ref.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using kernels::SamplingRow;

struct Batch {
  std::vector<float> logits;    // [rows, vocab]
  std::vector<SamplingRow> rows;
  std::vector<int32_t> history;
  int64_t vocab = 0;
};

struct Outputs {
  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
};

Outputs run_gpu(const Batch& b) {
  const int n = static_cast<int>(b.rows.size());
  DeviceArray logits = DeviceArray::from(b.logits, DType::kF32);
  DeviceArray rows(n * sizeof(SamplingRow), DType::kU8);
  CUDA_CHECK(cudaMemcpy(rows.data(), b.rows.data(), n * sizeof(SamplingRow), cudaMemcpyHostToDevice));
  std::vector<int32_t> hist = b.history.empty() ? std::vector<int32_t>{0} : b.history;
  DeviceArray dhist = DeviceArray::from_ints(hist), tokens(n, DType::kI32), lps(n, DType::kF32);
  CUDA_CHECK(cudaMemset(tokens.data(), 0xFF, n * 4));
  lps.poison();
  auto ws = DeviceBuffer::allocate(kernels::sample_workspace_bytes(n, b.vocab));
  EXPECT_TRUE(ws.ok());
  CUDA_CHECK(cudaMemset(ws->data(), 0xFF, ws->size()));  // the sampler must not rely on a clean workspace
  kernels::SampleParams p{logits.as<float>(), rows.as<SamplingRow>(), dhist.as<int32_t>(), n, b.vocab,
                          tokens.as<int32_t>(), lps.as<float>()};
  EXPECT_TRUE(kernels::sample(p, ws->data(), nullptr).ok());
  CUDA_CHECK(cudaDeviceSynchronize());
  Outputs o{std::vector<int32_t>(n), lps.download()};
  CUDA_CHECK(cudaMemcpy(o.tokens.data(), tokens.data(), n * 4, cudaMemcpyDeviceToHost));
  return o;
}

int32_t run_ref(const Batch& b, int r, std::vector<float>& scratch) {
  const SamplingRow& s = b.rows[r];
  ref::SamplingRow p;
  p.temperature = s.temperature, p.top_k = s.top_k, p.top_p = s.top_p, p.min_p = s.min_p;
  p.repetition_penalty = s.repetition_penalty, p.presence_penalty = s.presence_penalty;
  p.frequency_penalty = s.frequency_penalty, p.seed = s.seed, p.step = s.step;
  const int32_t* h = b.history.data() + s.history_offset;
  p.prompt_tokens = h, p.num_prompt_tokens = s.num_prompt_tokens;
  p.output_tokens = h + s.num_prompt_tokens, p.num_output_tokens = s.num_output_tokens;
  return ref::sample_row(b.logits.data() + r * b.vocab, b.vocab, p, scratch);
}

// Appends a prompt and output history (repeats included, a few ids out of range) to row r.
void add_history(Batch& b, SamplingRow& row, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> id(0, static_cast<int32_t>(b.vocab) - 1);
  row.history_offset = static_cast<int64_t>(b.history.size());
  row.num_prompt_tokens = 1 + static_cast<int>(rng() % 300);
  row.num_output_tokens = static_cast<int>(rng() % 60);
  for (int i = 0; i < row.num_prompt_tokens + row.num_output_tokens; ++i) {
    int32_t t = id(rng);
    if (i > 3 && rng() % 3 == 0) t = b.history[b.history.size() - 1 - rng() % 3];  // repeats
    if (rng() % 97 == 0) t = rng() % 2 ? -5 : static_cast<int32_t>(b.vocab) + 3;  // out of range: ignored
    b.history.push_back(t);
  }
}

// Logits like an LM head's: a few strong candidates over a long tail.
std::vector<float> lm_logits(int64_t n, uint32_t seed, float scale) {
  auto v = gpu_test::random_floats(n, seed, scale);
  std::mt19937 rng(seed ^ 0x9e37u);
  for (int k = 0; k < 8 && n > 8; ++k) v[rng() % n] += 3.f * scale;
  return v;
}

// Checks tokens (exactly, up to `allowed` mismatches) and requested logprobs (1e-4 abs).
void check(const Batch& b, int allowed = 0) {
  const Outputs o = run_gpu(b);
  std::vector<float> scratch;
  int mismatches = 0;
  for (size_t r = 0; r < b.rows.size(); ++r) {
    const int32_t want = run_ref(b, static_cast<int>(r), scratch);
    if (o.tokens[r] != want) {
      ++mismatches;
      ADD_FAILURE_AT(__FILE__, __LINE__) << "row " << r << " (vocab " << b.vocab << ", T " << b.rows[r].temperature
                                         << ", top_k " << b.rows[r].top_k << ", top_p " << b.rows[r].top_p
                                         << ", min_p " << b.rows[r].min_p << ", seed " << b.rows[r].seed
                                         << ", step " << b.rows[r].step << "): gpu " << o.tokens[r]
                                         << " ref " << want;
    }
    if (b.rows[r].want_logprob && o.tokens[r] >= 0 && o.tokens[r] < b.vocab) {
      const float lp = ref::token_logprob(b.logits.data() + r * b.vocab, b.vocab, o.tokens[r]);
      EXPECT_NEAR(o.logprobs[r], lp, 1e-4) << "row " << r;
    }
  }
  EXPECT_LE(mismatches, allowed);
}

TEST(Sampling, GreedyMatchesRefExactly) {
  uint32_t seed = 1;
  for (int64_t vocab : {1, 7, 1000, 32000, 151936}) {
    Batch b;
    b.vocab = vocab;
    const int n = 6;
    for (int r = 0; r < n; ++r) {
      auto l = lm_logits(vocab, seed++, 2.f);
      if (r == 1 && vocab > 5) l[vocab - 1] = l[2] = l[vocab / 2] = 100.f;  // tied max: lowest id wins
      if (r == 2) for (auto& x : l) x = -x;  // all-negative maxima
      b.logits.insert(b.logits.end(), l.begin(), l.end());
      SamplingRow row;
      row.temperature = r % 2 ? 0.f : 0.8f;
      row.top_k = r % 2 ? 0 : 1;  // top_k == 1 is greedy whatever the temperature
      row.want_logprob = 1;
      b.rows.push_back(row);
    }
    check(b);
  }
}

TEST(Sampling, GreedyWithPenaltiesMatchesRef) {
  std::mt19937 rng(7);
  for (int64_t vocab : {1000, 32000, 151936}) {
    Batch b;
    b.vocab = vocab;
    for (int r = 0; r < 8; ++r) {
      auto l = lm_logits(vocab, 50 + r, 1.f);
      SamplingRow row;
      row.temperature = 0.f;
      row.repetition_penalty = r % 4 == 3 ? 1.f : 1.1f + 0.3f * (r % 3);
      row.presence_penalty = r % 2 ? 0.5f : 0.f;
      row.frequency_penalty = r % 3 == 1 ? 0.3f : 0.f;
      row.want_logprob = r % 2;
      add_history(b, row, rng);
      // Make the penalised history tokens the top candidates, so the penalties decide the argmax.
      for (int i = 0; i < row.num_prompt_tokens + row.num_output_tokens; i += 2) {
        const int32_t t = b.history[row.history_offset + i];
        if (t >= 0 && t < vocab) l[t] = 6.f + 0.01f * static_cast<float>(i % 7) - (i % 5 == 0 ? 12.f : 0.f);
      }
      b.logits.insert(b.logits.end(), l.begin(), l.end());
      b.rows.push_back(row);
    }
    check(b);
  }
}

struct Config {
  float temperature;
  int top_k;
  float top_p, min_p, rep, presence, frequency;
};

const Config kConfigs[] = {
    {1.0f, 0, 1.f, 0.f, 1.f, 0.f, 0.f},    {0.7f, 0, 1.f, 0.f, 1.f, 0.f, 0.f},
    {1.3f, 50, 1.f, 0.f, 1.f, 0.f, 0.f},   {0.8f, 5, 1.f, 0.f, 1.f, 0.f, 0.f},
    {1.0f, 0, 0.9f, 0.f, 1.f, 0.f, 0.f},   {0.6f, 0, 0.5f, 0.f, 1.f, 0.f, 0.f},
    {1.0f, 0, 1.f, 0.05f, 1.f, 0.f, 0.f},  {1.0f, 40, 0.95f, 0.02f, 1.f, 0.f, 0.f},
    {0.9f, 20, 0.8f, 0.f, 1.2f, 0.4f, 0.2f}, {1.1f, 0, 0.99f, 0.1f, 1.05f, 0.f, 0.5f},
    {2.0f, 0, 0.3f, 0.f, 1.f, 0.f, 0.f},   {1.0f, 1000, 0.f, 0.f, 1.f, 0.f, 0.f},  // top_p 0: ref falls back to argmax
};

Batch seeded_batch(int64_t vocab, int rows, uint32_t seed, bool tied) {
  Batch b;
  b.vocab = vocab;
  std::mt19937 rng(seed);
  for (int r = 0; r < rows; ++r) {
    auto l = lm_logits(vocab, seed * 131 + r, 2.f);
    if (tied) for (auto& x : l) x = std::round(x * 2.f) / 2.f;  // many exactly equal probabilities
    b.logits.insert(b.logits.end(), l.begin(), l.end());
    const Config& c = kConfigs[r % (sizeof(kConfigs) / sizeof(kConfigs[0]))];
    SamplingRow row;
    row.temperature = c.temperature, row.top_k = c.top_k, row.top_p = c.top_p, row.min_p = c.min_p;
    row.repetition_penalty = c.rep, row.presence_penalty = c.presence, row.frequency_penalty = c.frequency;
    row.seed = (static_cast<uint64_t>(rng()) << 32) | rng();
    row.step = rng() % 4096;
    row.want_logprob = r % 3 == 0;
    if (c.rep != 1.f || c.presence != 0.f || c.frequency != 0.f) add_history(b, row, rng);
    b.rows.push_back(row);
  }
  return b;
}

TEST(Sampling, SeededSamplingMatchesRef) {
  // NOTE: the GPU's expf/logf may differ from glibc's by an ulp, which can flip a pick only when
  // two race scores or a filter boundary tie to within an ulp (~1e-4 per draw); allow 1 in 500.
  int total = 0;
  for (int64_t vocab : {50, 1000, 32000, 151936})
    for (uint32_t seed = 1; seed <= (vocab > 40000 ? 2u : 6u); ++seed) {
      Batch b = seeded_batch(vocab, 48, seed + static_cast<uint32_t>(vocab), false);
      total += static_cast<int>(b.rows.size());
      check(b, static_cast<int>(b.rows.size()) / 500);
    }
  EXPECT_GT(total, 500);
}

TEST(Sampling, SameLogitsManyStepsMatchRef) {
  // One row of logits, many (seed, step) pairs: the race draws must be the ref's Philox numbers.
  for (int64_t vocab : {1000, 32000}) {
    Batch b = seeded_batch(vocab, 1, 99, false);
    const std::vector<float> row(b.logits.begin(), b.logits.end());
    b.rows[0].top_k = 0, b.rows[0].top_p = 1.f, b.rows[0].min_p = 0.f, b.rows[0].temperature = 1.5f;
    for (int s = 1; s < 256; ++s) {
      b.logits.insert(b.logits.end(), row.begin(), row.end());
      SamplingRow r = b.rows[0];
      r.seed = 1234 + s % 7, r.step = static_cast<uint64_t>(s) * 977;
      b.rows.push_back(r);
    }
    check(b, 0);
  }
}

TEST(Sampling, TiedProbabilitiesMatchRef) {
  for (int64_t vocab : {1000, 32000})
    for (uint32_t seed = 1; seed <= 4; ++seed) check(seeded_batch(vocab, 48, 1000 + seed, true), 0);
}

TEST(Sampling, TokenLogprobsMatchRef) {
  for (int64_t vocab : {1, 7, 1000, 151936}) {
    const int n = 9;
    std::vector<float> logits;
    std::vector<int32_t> targets;
    for (int r = 0; r < n; ++r) {
      auto l = lm_logits(vocab, 77 + r, 4.f);
      logits.insert(logits.end(), l.begin(), l.end());
      targets.push_back(static_cast<int32_t>((r * 7919) % vocab));
    }
    DeviceArray dl = DeviceArray::from(logits, DType::kF32), dt = DeviceArray::from_ints(targets);
    DeviceArray out(n, DType::kF32);
    out.poison();
    kernels::TokenLogprobsParams p{dl.as<float>(), dt.as<int32_t>(), out.as<float>(), n, vocab};
    ASSERT_TRUE(kernels::token_logprobs(p, nullptr).ok());
    auto got = out.download();
    for (int r = 0; r < n; ++r)
      EXPECT_NEAR(got[r], ref::token_logprob(logits.data() + r * vocab, vocab, targets[r]), 1e-4)
          << "vocab " << vocab << " row " << r;
  }
}

TEST(Sampling, RejectsBadArguments) {
  DeviceArray buf(1024, DType::kF32);
  auto* f = buf.as<float>();
  auto* i = buf.as<int32_t>();
  kernels::SampleParams p{f, reinterpret_cast<const SamplingRow*>(f), i, 2, 0, i, f};
  EXPECT_EQ(kernels::sample(p, f, nullptr).code(), StatusCode::kInvalidArgument) << "vocab 0";
  p.vocab = 10;
  EXPECT_EQ(kernels::sample(p, nullptr, nullptr).code(), StatusCode::kInvalidArgument) << "no workspace";
  p.logits = nullptr;
  EXPECT_EQ(kernels::sample(p, f, nullptr).code(), StatusCode::kInvalidArgument) << "null logits";
  kernels::TokenLogprobsParams t{f, i, f, 0, 10};
  EXPECT_EQ(kernels::token_logprobs(t, nullptr).code(), StatusCode::kInvalidArgument) << "no rows";
  EXPECT_EQ(kernels::sample_workspace_bytes(3, 100), size_t{3 * 100 * 8});
}

}  // namespace
}  // namespace tk
