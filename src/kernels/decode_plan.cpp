// Host planner of split-KV decode (attention_decode.cu): how many splits per sequence, chosen
// from the SM count and the real lengths (which the host knows; a device-side heuristic that
// cannot see them splits short contexts for nothing, the failure of seed 000's fixed split).
// Decode streams K/V, so a block's time is its split's bytes over its share of the bandwidth:
// with B blocks on S resident slots the kernel takes ceil(B / S) waves of split_tokens each. We
// pick the fewest wave-tokens (plus the merge), and the fewest splits among near-ties.
#include <algorithm>
#include <cstdint>

#include "kernels/kernels.h"

namespace tk::kernels {
namespace {
constexpr int kPlanBlocksPerSm = 2;   // split blocks resident per SM at head_dim 128 (96 KB smem each)
constexpr int kMinSplitTokens = 128;  // shorter splits: setup and merge outweigh the parallelism
constexpr int kMergeCostTokens = 64;  // the merge's ~1 us, in tokens one block streams meanwhile
constexpr int kPlanMaxGroup = 16;     // q heads per kv head the workspace is sized for (see NOTE)
constexpr int kPlanMaxHeadDim = 256;

int64_t ceil_div64(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

// NOTE: plan_decode is not told num_q_heads, head_dim or num_tokens, so workspace_bytes is an
// upper bound for groups up to kPlanMaxGroup, head_dim up to 256 and num_seqs * max_query_len
// tokens; decode_attention checks the exact need and names it when the plan's bytes fall short.
DecodePlan plan_decode(int num_seqs, int max_context_len, int max_query_len, int num_kv_heads, int page_size,
                       int sm_count) {
  DecodePlan plan;
  const int64_t page = std::max(page_size, 1), ctx = std::max(max_context_len, 1);
  const int64_t base = static_cast<int64_t>(std::max(num_seqs, 1)) * std::max(num_kv_heads, 1);
  const int64_t slots = static_cast<int64_t>(std::max(sm_count, 1)) * kPlanBlocksPerSm;
  // One split when the batch alone gives every SM a block.
  const int64_t max_splits =
      base >= std::max(sm_count, 1) ? 1 : std::max<int64_t>(1, std::min<int64_t>(ctx / kMinSplitTokens, 4096));
  auto split_len = [&](int64_t s) { return ceil_div64(ceil_div64(ctx, s), page) * page; };
  auto cost = [&](int64_t s) {
    const int64_t len = split_len(s), n = ceil_div64(ctx, len);
    return ceil_div64(base * n, slots) * len + (n > 1 ? kMergeCostTokens : 0);
  };
  int64_t best = cost(1);
  for (int64_t s = 2; s <= max_splits; ++s) best = std::min(best, cost(s));
  int64_t pick = 1;  // the fewest splits within 3% of the best
  const double good_enough = 1.03 * static_cast<double>(best);
  while (pick < max_splits && static_cast<double>(cost(pick)) > good_enough) ++pick;
  plan.split_tokens = static_cast<int>(split_len(pick));
  plan.num_splits = static_cast<int>(ceil_div64(ctx, plan.split_tokens));
  if (plan.num_splits > 1)
    plan.workspace_bytes = static_cast<size_t>(plan.num_splits) * std::max(num_seqs, 1) * std::max(max_query_len, 1) *
                           std::max(num_kv_heads, 1) * kPlanMaxGroup * (kPlanMaxHeadDim + 1) * sizeof(float);
  return plan;
}

}  // namespace tk::kernels
