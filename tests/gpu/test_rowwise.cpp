// Row-wise kernels (embedding, gather_rows, rmsnorm, silu_mul, qk_norm, rope_kv_store, fill_random)
// against their CPU twins in src/ref: fresh random inputs, outputs poisoned, odd sizes, both dtypes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "gpu_util.h"
#include "kernels/kernels.h"
#include "ref/ref.h"

namespace tk {
namespace {

using gpu_test::DeviceArray;
using gpu_test::kHalfTolerance;
using gpu_test::random_floats;
using gpu_test::rel_l2;
using gpu_test::round_to;

const DType kDtypes[] = {DType::kBF16, DType::kF16};
const int64_t kTokens[] = {1, 7, 19, 99, 989};

std::vector<float> rounded(size_t n, uint32_t seed, DType dt, float scale = 1.f, float mean = 0.f) {
  auto v = random_floats(n, seed, scale, mean);
  round_to(v, dt);
  return v;
}

std::vector<uint16_t> raw_bits(const DeviceArray& a) {
  std::vector<uint16_t> h(a.size());
  CUDA_CHECK(cudaMemcpy(h.data(), a.data(), h.size() * 2, cudaMemcpyDeviceToHost));
  return h;
}

std::vector<int32_t> random_ids(size_t n, int32_t hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> d(0, hi - 1);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

void sync() { CUDA_CHECK(cudaDeviceSynchronize()); }

// ---- embedding / gather_rows: exact copies

TEST(Rowwise, EmbeddingMatchesRefExactly) {
  uint32_t seed = 1;
  for (DType dt : kDtypes)
    for (int64_t hidden : {64, 67, 1336, 4096, 5120})  // 67: the 2-byte (unaligned) path
      for (int64_t t : kTokens) {
        const int64_t vocab = 1001;
        auto table = rounded(vocab * hidden, seed++, dt);
        auto ids = random_ids(t, vocab, seed++);
        DeviceArray dtable = DeviceArray::from(table, dt), dout(t * hidden, dt);
        DeviceArray dids = DeviceArray::from_ints(ids);
        dout.poison();
        kernels::EmbeddingParams p{dtable.data(), dids.as<int32_t>(), dout.data(), t, hidden, vocab, dt};
        ASSERT_TRUE(kernels::embedding(p, nullptr).ok());
        std::vector<float> want(t * hidden);
        ref::embedding(table.data(), ids.data(), t, hidden, want.data());
        EXPECT_EQ(dout.download(), want) << dtype_name(dt) << " hidden " << hidden << " tokens " << t;
      }
}

TEST(Rowwise, EmbeddingOutOfRangeIdsWriteZeros) {
  const int64_t vocab = 100, hidden = 4096;
  auto table = rounded(vocab * hidden, 5, DType::kBF16);
  std::vector<int32_t> ids = {3, -1, 100, 99, 1 << 30};
  DeviceArray dtable = DeviceArray::from(table, DType::kBF16), dout(ids.size() * hidden, DType::kBF16);
  DeviceArray dids = DeviceArray::from_ints(ids);
  dout.poison();
  kernels::EmbeddingParams p{dtable.data(), dids.as<int32_t>(), dout.data(), 5, hidden, vocab, DType::kBF16};
  ASSERT_TRUE(kernels::embedding(p, nullptr).ok());
  auto out = dout.download();
  for (size_t r = 0; r < ids.size(); ++r)
    for (int64_t i = 0; i < hidden; ++i) {
      const bool valid = ids[r] >= 0 && ids[r] < vocab;
      ASSERT_EQ(out[r * hidden + i], valid ? table[ids[r] * hidden + i] : 0.f) << "row " << r;
    }
}

// Tensor parallelism's vocabulary slice: the table holds ids [begin, begin + rows); every other id
// (the other ranks' rows, and ids past the vocabulary) writes zeros.
TEST(Rowwise, EmbeddingShardWritesOnlyItsRows) {
  for (DType dt : kDtypes)
    for (int64_t hidden : {67, 4096}) {
      const int64_t rows = 100, begin = 250;
      auto table = rounded(rows * hidden, 21, dt);
      std::vector<int32_t> ids = {0, 249, 250, 251, 300, 349, 350, 400, -1, 1 << 30, 299};
      const int64_t t = static_cast<int64_t>(ids.size());
      DeviceArray dtable = DeviceArray::from(table, dt), dout(t * hidden, dt), dids = DeviceArray::from_ints(ids);
      dout.poison();
      kernels::EmbeddingParams p{dtable.data(), dids.as<int32_t>(), dout.data(), t, hidden, rows, dt, begin};
      ASSERT_TRUE(kernels::embedding(p, nullptr).ok());
      auto out = dout.download();
      for (int64_t r = 0; r < t; ++r) {
        const int64_t row = int64_t{ids[r]} - begin;
        for (int64_t i = 0; i < hidden; ++i)
          ASSERT_EQ(out[r * hidden + i], row >= 0 && row < rows ? table[row * hidden + i] : 0.f)
              << dtype_name(dt) << " hidden " << hidden << " id " << ids[r];
      }
    }
}

TEST(Rowwise, GatherRowsMatchesHostGather) {
  uint32_t seed = 11;
  for (DType dt : kDtypes)
    for (int64_t hidden : {64, 1336, 4096, 5120})
      for (int64_t t : kTokens) {
        auto x = rounded(t * hidden, seed++, dt);
        auto rows = random_ids(t, static_cast<int32_t>(t), seed++);  // duplicates and any order
        DeviceArray dx = DeviceArray::from(x, dt), dout(t * hidden, dt), drows = DeviceArray::from_ints(rows);
        dout.poison();
        kernels::GatherRowsParams p{dx.data(), drows.as<int32_t>(), dout.data(), t, hidden, dt};
        ASSERT_TRUE(kernels::gather_rows(p, nullptr).ok());
        std::vector<float> want(t * hidden);
        for (int64_t r = 0; r < t; ++r) std::copy_n(&x[rows[r] * hidden], hidden, &want[r * hidden]);
        EXPECT_EQ(dout.download(), want) << dtype_name(dt) << " hidden " << hidden << " tokens " << t;
      }
}

// ---- rmsnorm (plain and fused with the residual add)

void check_rmsnorm(DType dt, int64_t t, int64_t hidden, bool fused, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " tokens " << t << " hidden " << hidden
                                    << (fused ? " fused" : ""));
  auto x = rounded(t * hidden, seed, dt, 2.f, 0.5f);
  auto delta = rounded(t * hidden, seed + 1, dt);
  auto w = rounded(hidden, seed + 2, dt, 0.2f, 1.f);
  DeviceArray dx = DeviceArray::from(x, dt), dd = DeviceArray::from(delta, dt), dw = DeviceArray::from(w, dt);
  DeviceArray dout(t * hidden, dt);
  dout.poison();
  kernels::RmsNormParams p;
  p.weight = dw.data(), p.out = dout.data(), p.num_tokens = t, p.hidden = hidden, p.eps = 1e-6f, p.dtype = dt;
  if (fused) p.residual = dx.data(), p.delta = dd.data();
  else p.x = dx.data();
  ASSERT_TRUE(kernels::rmsnorm(p, nullptr).ok());
  sync();
  std::vector<float> want(t * hidden);
  if (fused) {
    ref::add_rmsnorm(x.data(), delta.data(), w.data(), t, hidden, 1e-6f, want.data());
    EXPECT_LT(rel_l2(dx.download(), x), kHalfTolerance) << "residual";
  } else {
    ref::rmsnorm(x.data(), w.data(), t, hidden, 1e-6f, want.data());
    EXPECT_EQ(dx.download(), x) << "x must not be written";
  }
  EXPECT_LT(rel_l2(dout.download(), want), kHalfTolerance) << "out";
}

TEST(Rowwise, RmsNormMatchesRef) {
  uint32_t seed = 100;
  for (DType dt : kDtypes)
    for (int64_t hidden : {64, 1336, 4096, 5120, 16384})
      for (int64_t t : kTokens)
        for (bool fused : {false, true}) check_rmsnorm(dt, t, hidden, fused, seed += 3);
}

// ---- silu_mul

TEST(Rowwise, SiluMulMatchesRef) {
  uint32_t seed = 200;
  for (DType dt : kDtypes)
    for (int64_t inter : {64, 1336, 4096})
      for (int64_t t : kTokens) {
        auto gu = rounded(t * 2 * inter, seed++, dt, 3.f);
        DeviceArray dgu = DeviceArray::from(gu, dt), dout(t * inter, dt);
        dout.poison();
        kernels::SiluMulParams p{dgu.data(), dout.data(), t, inter, dt};
        ASSERT_TRUE(kernels::silu_mul(p, nullptr).ok());
        std::vector<float> want(t * inter);
        ref::silu_mul(gu.data(), t, inter, want.data());
        EXPECT_LT(rel_l2(dout.download(), want), kHalfTolerance) << dtype_name(dt) << " inter " << inter << " t " << t;
      }
}

// ---- qk_norm and rope_kv_store over qkv rows (q heads, k heads, v heads, then padding)

struct Heads {
  int hq, hkv, d;
  int64_t pad;  // extra elements per qkv row beyond the heads
  int64_t stride() const { return static_cast<int64_t>(hq + 2 * hkv) * d + pad; }
};

// Compares the element range [begin, end) of each row of two [t, stride] tensors.
double rel_l2_cols(const std::vector<float>& got, const std::vector<float>& want, int64_t t, int64_t stride,
                   int64_t begin, int64_t end) {
  std::vector<float> g, w;
  for (int64_t r = 0; r < t; ++r)
    for (int64_t i = begin; i < end; ++i) g.push_back(got[r * stride + i]), w.push_back(want[r * stride + i]);
  return rel_l2(g, w);
}

TEST(Rowwise, QkNormMatchesRefAndLeavesVUntouched) {
  uint32_t seed = 300;
  for (DType dt : kDtypes)
    // 80 and 96: lane groups of 10 and 12 of 16 lanes; 32: 4 lanes.
    for (Heads h : {Heads{4, 2, 64, 0}, Heads{32, 8, 128, 8}, Heads{8, 1, 256, 24}, Heads{3, 3, 128, 0},
                    Heads{5, 1, 80, 8}, Heads{7, 7, 96, 0}, Heads{12, 4, 32, 16}, Heads{9, 3, 80, 0}})
      for (int64_t t : {1, 7, 19, 99, 989}) {
        SCOPED_TRACE(::testing::Message() << dtype_name(dt) << " d " << h.d << " t " << t);
        const int64_t stride = h.stride();
        auto qkv = rounded(t * stride, seed++, dt, 2.f);
        auto qw = rounded(h.d, seed++, dt, 0.2f, 1.f), kw = rounded(h.d, seed++, dt, 0.2f, 1.f);
        DeviceArray dqkv = DeviceArray::from(qkv, dt), dqw = DeviceArray::from(qw, dt), dkw = DeviceArray::from(kw, dt);
        kernels::QkNormParams p{dqkv.data(), dqw.data(), dkw.data(), {t, stride, h.hq, h.hkv, h.d}, 1e-6f, dt};
        ASSERT_TRUE(kernels::qk_norm(p, nullptr).ok());
        auto want = qkv;
        ref::qk_norm(want.data(), qw.data(), kw.data(), {t, stride, h.hq, h.hkv, h.d}, 1e-6f);
        auto got = dqkv.download();
        const int64_t qk_end = static_cast<int64_t>(h.hq + h.hkv) * h.d;
        EXPECT_LT(rel_l2_cols(got, want, t, stride, 0, qk_end), kHalfTolerance);
        EXPECT_EQ(rel_l2_cols(got, qkv, t, stride, qk_end, stride), 0.0) << "v and padding must be untouched";
      }
}

struct RopeCase {
  Heads h;
  int page_size;
  int64_t t;
  DType dt;
};

// Distinct slots scattered over shuffled pages, with spare pages that nobody writes.
std::vector<int32_t> scattered_slots(int64_t t, int page_size, int num_pages, uint32_t seed) {
  std::vector<int32_t> all(static_cast<size_t>(num_pages) * page_size);
  std::iota(all.begin(), all.end(), 0);
  std::shuffle(all.begin(), all.end(), std::mt19937(seed));
  return {all.begin(), all.begin() + t};
}

void check_rope(const RopeCase& c, uint32_t seed) {
  const Heads& h = c.h;
  SCOPED_TRACE(::testing::Message() << dtype_name(c.dt) << " d " << h.d << " hq " << h.hq << " hkv " << h.hkv
                                    << " page " << c.page_size << " t " << c.t);
  const int64_t stride = h.stride(), t = c.t;
  const int num_pages = static_cast<int>((t + c.page_size - 1) / c.page_size) + 3;
  const int64_t cache_n = static_cast<int64_t>(num_pages) * h.hkv * c.page_size * h.d;
  auto qkv = rounded(t * stride, seed, c.dt, 1.5f);
  std::vector<int32_t> pos = random_ids(t, 131072, seed + 1);  // angles up to ~1.3e5 rad
  pos[0] = 0;
  std::vector<float> inv_freq(h.d / 2);
  for (int i = 0; i < h.d / 2; ++i) inv_freq[i] = static_cast<float>(std::pow(1e6, -2.0 * i / h.d));
  auto slots = scattered_slots(t, c.page_size, num_pages, seed + 2);

  DeviceArray dqkv = DeviceArray::from(qkv, c.dt), dk(cache_n, c.dt), dv(cache_n, c.dt);
  DeviceArray dpos = DeviceArray::from_ints(pos), dslots = DeviceArray::from_ints(slots);
  DeviceArray dfreq = DeviceArray::from(inv_freq, DType::kF32);
  dk.poison(), dv.poison();
  kernels::RopeKvStoreParams p{dqkv.data(), dpos.as<int32_t>(), dfreq.as<float>(), dslots.as<int32_t>(),
                               dk.data(), dv.data(), c.page_size, num_pages, {t, stride, h.hq, h.hkv, h.d}, c.dt};
  ASSERT_TRUE(kernels::rope_kv_store(p, nullptr).ok());
  sync();

  auto want = qkv;
  std::vector<float> rk(cache_n, NAN), rv(cache_n, NAN);
  ref::rope_kv_store(want.data(), pos.data(), inv_freq.data(), slots.data(), {t, stride, h.hq, h.hkv, h.d},
                     {rk.data(), rv.data(), num_pages, c.page_size});
  auto got = dqkv.download();
  const int64_t q_end = static_cast<int64_t>(h.hq) * h.d;
  EXPECT_LT(rel_l2_cols(got, want, t, stride, 0, q_end), kHalfTolerance) << "q";
  EXPECT_EQ(rel_l2_cols(got, qkv, t, stride, q_end, stride), 0.0) << "k, v and padding of qkv must be untouched";

  // Written slots against ref; every other cache entry still holds the poison bits.
  auto gk = dk.download(), gv = dv.download();
  auto bk = raw_bits(dk), bv = raw_bits(dv);
  std::vector<char> written(cache_n, 0);
  std::vector<float> got_k, want_k, got_v, want_v;
  for (int64_t tok = 0; tok < t; ++tok)
    for (int kv = 0; kv < h.hkv; ++kv) {
      const int64_t page = slots[tok] / c.page_size, off = slots[tok] % c.page_size;
      const int64_t base = ((page * h.hkv + kv) * c.page_size + off) * h.d;
      for (int i = 0; i < h.d; ++i) {
        written[base + i] = 1;
        got_k.push_back(gk[base + i]), want_k.push_back(rk[base + i]);
        got_v.push_back(gv[base + i]), want_v.push_back(rv[base + i]);
      }
    }
  EXPECT_LT(rel_l2(got_k, want_k), kHalfTolerance) << "k cache";
  EXPECT_EQ(got_v, want_v) << "v cache is an exact copy";
  int64_t clobbered = 0;
  for (int64_t i = 0; i < cache_n; ++i) clobbered += !written[i] && (bk[i] != 0xFFFF || bv[i] != 0xFFFF);
  EXPECT_EQ(clobbered, 0) << "cache entries outside this step's slots were written";
}

TEST(Rowwise, RopeKvStoreMatchesRef) {
  uint32_t seed = 400;
  for (DType dt : kDtypes)
    // 80 and 96: 5 and 6 lanes a head, so the block's last threads own no head; 32: 2 lanes.
    for (Heads h : {Heads{32, 8, 128, 0}, Heads{4, 2, 64, 8}, Heads{8, 4, 256, 0}, Heads{6, 6, 128, 16},
                    Heads{32, 8, 80, 0}, Heads{5, 1, 96, 8}, Heads{14, 2, 96, 0}, Heads{3, 3, 32, 24}})
      for (int page : {1, 16})
        for (int64_t t : kTokens) check_rope({h, page, t, dt}, seed += 5);
}

// FP8 KV cache: the caches get f32_to_fp8_e4m3(x / scale) of the fp32 rotated k and of v. v is
// no rotation, only a true division and one rounding on both sides: its bytes must equal the
// twin's. k's fp32 rotation differs from the twin's in the last bits (sincosf against std::cos,
// FMA contraction), so a k byte may be the twin's fp8 neighbour, but only where the twin's fp32
// x / k_scale lies within 2e-5 * (1 + |x|) of the rounding midpoint between the two codes, and in
// at most 1 of 500 bytes. q as in check_rope; every other cache byte keeps its poison (0xFF).
void check_rope_fp8(const RopeCase& c, float k_scale, float v_scale, uint32_t seed) {
  const Heads& h = c.h;
  SCOPED_TRACE(::testing::Message() << dtype_name(c.dt) << " fp8 d " << h.d << " hq " << h.hq << " hkv " << h.hkv
                                    << " page " << c.page_size << " t " << c.t << " scales " << k_scale << ", "
                                    << v_scale);
  const int64_t stride = h.stride(), t = c.t;
  const int num_pages = static_cast<int>((t + c.page_size - 1) / c.page_size) + 3;
  const int64_t cache_n = static_cast<int64_t>(num_pages) * h.hkv * c.page_size * h.d;
  auto qkv = rounded(t * stride, seed, c.dt, 1.5f);
  std::vector<int32_t> pos = random_ids(t, 131072, seed + 1);
  pos[0] = 0;
  std::vector<float> inv_freq(h.d / 2);
  for (int i = 0; i < h.d / 2; ++i) inv_freq[i] = static_cast<float>(std::pow(1e6, -2.0 * i / h.d));
  auto slots = scattered_slots(t, c.page_size, num_pages, seed + 2);

  DeviceArray dqkv = DeviceArray::from(qkv, c.dt), dk(cache_n, DType::kU8), dv(cache_n, DType::kU8);
  DeviceArray dpos = DeviceArray::from_ints(pos), dslots = DeviceArray::from_ints(slots);
  DeviceArray dfreq = DeviceArray::from(inv_freq, DType::kF32);
  dk.poison(), dv.poison();
  kernels::RopeKvStoreParams p{dqkv.data(), dpos.as<int32_t>(), dfreq.as<float>(), dslots.as<int32_t>(),
                               dk.data(),   dv.data(),          c.page_size,       num_pages,
                               {t, stride, h.hq, h.hkv, h.d},   c.dt,              {true, k_scale, v_scale}};
  ASSERT_TRUE(kernels::rope_kv_store(p, nullptr).ok());
  sync();

  // The twin twice: fp8 bytes, and the fp32 values they were rounded from.
  auto want = qkv, want32 = qkv;
  std::vector<uint8_t> rk8(cache_n, 0xFF), rv8(cache_n, 0xFF);
  std::vector<float> rk(cache_n, NAN), rv(cache_n, NAN);
  const HeadLayout layout{t, stride, h.hq, h.hkv, h.d};
  ref::rope_kv_store(want.data(), pos.data(), inv_freq.data(), slots.data(), layout,
                     {nullptr, nullptr, num_pages, c.page_size, rk8.data(), rv8.data(), k_scale, v_scale});
  ref::rope_kv_store(want32.data(), pos.data(), inv_freq.data(), slots.data(), layout,
                     {rk.data(), rv.data(), num_pages, c.page_size});
  auto got = dqkv.download();
  const int64_t q_end = static_cast<int64_t>(h.hq) * h.d;
  EXPECT_LT(rel_l2_cols(got, want, t, stride, 0, q_end), kHalfTolerance) << "q";
  EXPECT_EQ(rel_l2_cols(got, qkv, t, stride, q_end, stride), 0.0) << "k, v and padding of qkv must be untouched";

  std::vector<uint8_t> gk(cache_n), gv(cache_n);
  CUDA_CHECK(cudaMemcpy(gk.data(), dk.data(), cache_n, cudaMemcpyDeviceToHost));
  CUDA_CHECK(cudaMemcpy(gv.data(), dv.data(), cache_n, cudaMemcpyDeviceToHost));
  std::vector<char> written(cache_n, 0);
  int64_t v_wrong = 0, k_neighbours = 0, k_wrong = 0, saturated = 0;
  for (int64_t tok = 0; tok < t; ++tok)
    for (int kv = 0; kv < h.hkv; ++kv) {
      const int64_t page = slots[tok] / c.page_size, off = slots[tok] % c.page_size;
      const int64_t base = ((page * h.hkv + kv) * c.page_size + off) * h.d;
      for (int64_t i = base; i < base + h.d; ++i) {
        written[i] = 1;
        v_wrong += gv[i] != rv8[i];
        saturated += (rk8[i] & 0x7f) == 0x7e;
        if (gk[i] == rk8[i]) continue;
        const float a = fp8_e4m3_to_f32(gk[i]), b = fp8_e4m3_to_f32(rk8[i]), x = rk[i] / k_scale;
        const float mid = 0.5f * (a + b);
        // Neighbours: the same sign, codes one apart (e4m3 codes are monotone in |value|).
        const bool adjacent = (gk[i] & 0x80) == (rk8[i] & 0x80) && std::abs(int{gk[i] & 0x7f} - int{rk8[i] & 0x7f}) == 1;
        if (adjacent && std::fabs(x - mid) <= 2e-5f * (1.f + std::fabs(x))) {
          ++k_neighbours;
        } else if (++k_wrong <= 5) {
          ADD_FAILURE() << "k byte " << i << ": got " << int{gk[i]} << " (" << a << ") want " << int{rk8[i]} << " ("
                        << b << ") from x / k_scale = " << x;
        }
      }
    }
  const int64_t stored = t * h.hkv * h.d;
  EXPECT_EQ(v_wrong, 0) << "v bytes are exactly the twin's";
  EXPECT_EQ(k_wrong, 0) << "k bytes other than rounding-boundary neighbours";
  EXPECT_LE(k_neighbours * 500, stored) << k_neighbours << " of " << stored << " k bytes differ by one code";
  if (k_scale < 0.01f) EXPECT_GT(saturated, 0) << "the small scale saturates some k bytes";
  int64_t clobbered = 0;
  for (int64_t i = 0; i < cache_n; ++i) clobbered += !written[i] && (gk[i] != 0xFF || gv[i] != 0xFF);
  EXPECT_EQ(clobbered, 0) << "cache bytes outside this step's slots were written";
}

TEST(Rowwise, RopeKvStoreFp8MatchesRef) {
  uint32_t seed = 700;
  for (DType dt : kDtypes)
    for (Heads h : {Heads{32, 8, 128, 0}, Heads{4, 2, 64, 8}, Heads{8, 4, 256, 0}, Heads{32, 8, 80, 0},
                    Heads{5, 1, 96, 8}, Heads{3, 3, 32, 24}})
      for (int page : {1, 16})
        for (int64_t t : {int64_t{1}, int64_t{19}, int64_t{989}}) {
          check_rope_fp8({h, page, t, dt}, 0.37f, 1.9f, seed += 5);
          if (t == 19) check_rope_fp8({h, page, t, dt}, 0.003f, 0.004f, seed += 5);  // saturates ~35% of k, ~23% of v
        }
}

TEST(Rowwise, RopeKvStoreFp8RejectsBadScales) {
  DeviceArray buf(1 << 16, DType::kBF16);
  auto* base = static_cast<char*>(buf.data());
  int32_t* ids = reinterpret_cast<int32_t*>(base);
  for (float bad : {0.f, -2.f, NAN, INFINITY}) {
    kernels::RopeKvStoreParams rp{base, ids, reinterpret_cast<float*>(base), ids, base, base, 16, 4,
                                  {2, 6 * 128, 4, 1, 128}, DType::kBF16, {true, 1.f, bad}};
    EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kInvalidArgument) << "v_scale " << bad;
    rp.kv_quant = {true, bad, 1.f};
    EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kInvalidArgument) << "k_scale " << bad;
  }
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "a rejected call must not launch";
}

TEST(Rowwise, RopeKvStoreSkipsPaddingSlots) {
  // slot -1 (padding) and out-of-range slots write nothing; q is still rotated.
  const Heads h{4, 2, 128, 0};
  const int64_t t = 5, stride = h.stride();
  const int page = 16, num_pages = 2;
  const int64_t cache_n = int64_t{num_pages} * h.hkv * page * h.d;
  auto qkv = rounded(t * stride, 9, DType::kBF16);
  std::vector<int32_t> pos = {1, 2, 3, 4, 5}, slots = {-1, 40, -7, 1 << 20, 32};
  std::vector<float> inv_freq(h.d / 2, 0.5f);
  DeviceArray dqkv = DeviceArray::from(qkv, DType::kBF16), dk(cache_n, DType::kBF16), dv(cache_n, DType::kBF16);
  DeviceArray dpos = DeviceArray::from_ints(pos), dslots = DeviceArray::from_ints(slots);
  DeviceArray dfreq = DeviceArray::from(inv_freq, DType::kF32);
  dk.poison(), dv.poison();
  kernels::RopeKvStoreParams p{dqkv.data(), dpos.as<int32_t>(), dfreq.as<float>(), dslots.as<int32_t>(),
                               dk.data(), dv.data(), page, num_pages, {t, stride, h.hq, h.hkv, h.d}, DType::kBF16};
  ASSERT_TRUE(kernels::rope_kv_store(p, nullptr).ok());
  for (auto bits : {raw_bits(dk), raw_bits(dv)})
    EXPECT_EQ(std::count(bits.begin(), bits.end(), uint16_t{0xFFFF}), cache_n) << "every valid slot is out of range";
  auto want = qkv;
  std::vector<float> rk(cache_n), rv(cache_n);
  std::vector<int32_t> ref_slots(t, 0);  // ref needs real slots; only q is compared
  ref::rope_kv_store(want.data(), pos.data(), inv_freq.data(), ref_slots.data(), {t, stride, h.hq, h.hkv, h.d},
                     {rk.data(), rv.data(), num_pages, page});
  EXPECT_LT(rel_l2_cols(dqkv.download(), want, t, stride, 0, int64_t{h.hq} * h.d), kHalfTolerance);
}

// ---- fill_random

TEST(Rowwise, FillRandomIsDeterministicNormal) {
  for (DType dt : {DType::kBF16, DType::kF16, DType::kF32}) {
    const int64_t n = 100003;
    DeviceArray a(n, dt), b(n, dt), c(n, dt);
    a.poison(), b.poison(), c.poison();
    ASSERT_TRUE(kernels::fill_random(a.data(), dt, n, 42, 0.5f, 2.f, nullptr).ok());
    ASSERT_TRUE(kernels::fill_random(b.data(), dt, n, 42, 0.5f, 2.f, nullptr).ok());
    ASSERT_TRUE(kernels::fill_random(c.data(), dt, n, 43, 0.5f, 2.f, nullptr).ok());
    auto va = a.download(), vb = b.download(), vc = c.download();
    EXPECT_EQ(va, vb) << "same seed, same values";
    EXPECT_NE(va, vc) << "another seed, other values";
    double sum = 0, sq = 0;
    int64_t zeros = 0;
    for (float x : va) {
      ASSERT_TRUE(std::isfinite(x));
      sum += x, sq += static_cast<double>(x) * x, zeros += x == 0.f;
    }
    const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
    EXPECT_NEAR(mean, 0.5, 0.03) << dtype_name(dt);
    EXPECT_NEAR(sd, 2.0, 0.03) << dtype_name(dt);
    EXPECT_LT(zeros, 10);
  }
}

// ---- validation: bad shapes and pointers come back as errors, never a launch

TEST(Rowwise, LaunchersRejectBadArguments) {
  DeviceArray buf(1 << 16, DType::kBF16);
  auto* base = static_cast<char*>(buf.data());
  kernels::RmsNormParams r;
  r.x = base, r.weight = base, r.out = base, r.num_tokens = 4, r.hidden = 4096;
  r.hidden = 4092;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "hidden % 8";
  r.hidden = 4096, r.x = base + 2;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "misaligned x";
  r.x = base, r.num_tokens = 0;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument) << "no tokens";
  r.num_tokens = 4, r.dtype = DType::kF32;
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kUnsupported) << "fp32";
  r.dtype = DType::kBF16, r.residual = base;  // residual without delta
  EXPECT_EQ(kernels::rmsnorm(r, nullptr).code(), StatusCode::kInvalidArgument);

  kernels::SiluMulParams s{base + 16, base, 2, 100, DType::kBF16};
  EXPECT_EQ(kernels::silu_mul(s, nullptr).code(), StatusCode::kInvalidArgument) << "inter % 8";

  int32_t* ids = reinterpret_cast<int32_t*>(base);
  kernels::RopeKvStoreParams rp{base, ids, reinterpret_cast<float*>(base), ids, base, base, 16, 4,
                                {2, 6 * 72, 4, 1, 72}, DType::kBF16};
  EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kUnsupported) << "head_dim 72";
  rp.heads = {2, 6 * 128, 4, 3, 128};
  EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kInvalidArgument) << "3 does not divide 4";
  rp.heads = {2, 100, 4, 1, 128};
  EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kInvalidArgument) << "short stride";
  rp.heads = {2, 6 * 128, 4, 1, 128}, rp.k_cache = base + 8;
  EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kInvalidArgument) << "misaligned cache";
  rp.k_cache = nullptr;
  EXPECT_EQ(kernels::rope_kv_store(rp, nullptr).code(), StatusCode::kInvalidArgument) << "null cache";

  kernels::QkNormParams q{base, base, base, {2, 6 * 48, 4, 1, 48}, 1e-6f, DType::kBF16};
  EXPECT_EQ(kernels::qk_norm(q, nullptr).code(), StatusCode::kUnsupported) << "head_dim 48";
  kernels::EmbeddingParams e{base, ids, base, 3, 64, 0, DType::kBF16};
  EXPECT_EQ(kernels::embedding(e, nullptr).code(), StatusCode::kInvalidArgument) << "vocab 0";
  EXPECT_EQ(kernels::fill_random(base, DType::kI32, 8, 1, 0.f, 1.f, nullptr).code(), StatusCode::kUnsupported);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "a rejected call must not launch";
}

}  // namespace
}  // namespace tk
