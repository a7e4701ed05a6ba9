// apply_token_bitmask against ref::apply_token_bitmask: odd vocabularies (not multiples of 32),
// row subsets, random masks; the masked logits must be bit-identical.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "gpu_util.h"
#include "kernels/kernels.h"
#include "ref/ref.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;

TEST(TokenMask, MatchesRefOnOddVocabularies) {
  for (int64_t vocab : {1, 7, 33, 989, 32000, 128256}) {
    const int total_rows = 5;
    const std::vector<int32_t> rows = {4, 0, 2};
    const int words = static_cast<int>((vocab + 31) / 32);
    std::vector<float> logits = gpu_test::random_floats(static_cast<size_t>(total_rows * vocab), static_cast<uint32_t>(vocab));
    std::mt19937 rng(static_cast<uint32_t>(vocab));
    std::vector<uint32_t> mask(rows.size() * words);
    for (uint32_t& w : mask) w = rng();
    std::vector<float> want = logits;
    for (size_t r = 0; r < rows.size(); ++r) ref::apply_token_bitmask(&want[rows[r] * vocab], vocab, &mask[r * words]);
    DeviceArray d_logits = DeviceArray::from(logits, DType::kF32);
    auto d_rows = DeviceBuffer::allocate(rows.size() * 4);
    auto d_mask = DeviceBuffer::allocate(mask.size() * 4);
    ASSERT_TRUE(d_rows.ok() && d_mask.ok());
    ASSERT_EQ(cudaMemcpy(d_rows->data(), rows.data(), rows.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_EQ(cudaMemcpy(d_mask->data(), mask.data(), mask.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    ASSERT_TRUE(kernels::apply_token_bitmask(static_cast<float*>(d_logits.data()), vocab, static_cast<int32_t*>(d_rows->data()),
                                             static_cast<int>(rows.size()), static_cast<uint32_t*>(d_mask->data()), words, nullptr)
                    .ok());
    const std::vector<float> got = d_logits.download();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << "vocab " << vocab << " element " << i;
  }
  EXPECT_FALSE(kernels::apply_token_bitmask(nullptr, 40, nullptr, 1, nullptr, 1, nullptr).ok()) << "1 word for 40 tokens";
}

}  // namespace
}  // namespace tk
