// TOKAMAK_L2_PREFETCH's form (model.h, WeightPrefetch): name:MB items, anything else skipped.
#include <gtest/gtest.h>

#include "model/model.h"

namespace tk {
namespace {

TEST(WeightPrefetch, ParsesNamedMegabytes) {
  const WeightPrefetch p = parse_weight_prefetch("o_proj:32,gate_up:8,down:0,qkv:16,lm_head:1");
  EXPECT_EQ(p.o_proj, int64_t{32} << 20);
  EXPECT_EQ(p.gate_up, int64_t{8} << 20);
  EXPECT_EQ(p.down, 0);
  EXPECT_EQ(p.qkv, int64_t{16} << 20);
  EXPECT_EQ(p.lm_head, int64_t{1} << 20);
}

TEST(WeightPrefetch, SkipsWhatIsNotNameColonMegabytes) {
  const WeightPrefetch p = parse_weight_prefetch("o_proj:,gate:8,down:-1,qkv:4x,lm_head,up_proj:2,gate_up:3");
  EXPECT_EQ(p.o_proj, 0) << "no digits";
  EXPECT_EQ(p.down, 0) << "negative";
  EXPECT_EQ(p.qkv, 0) << "trailing junk";
  EXPECT_EQ(p.lm_head, 0) << "no colon";
  EXPECT_EQ(p.gate_up, int64_t{3} << 20) << "the valid item after the bad ones";
  const WeightPrefetch none = parse_weight_prefetch("");
  EXPECT_EQ(none.o_proj + none.qkv + none.gate_up + none.down + none.lm_head, 0);
  EXPECT_EQ(parse_weight_prefetch("o_proj:2000000").o_proj, 0) << "past 1 TB";
}

}  // namespace
}  // namespace tk
