// Reference ops against independent formulations: paged attention equals dense causal attention
// over the same K/V laid out contiguously; RoPE preserves norms and matches the complex form.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numeric>
#include <random>

#include "ref/ref.h"

namespace tk::ref {
namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale = 1.f) {
  std::normal_distribution<float> d(0.f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

TEST(Ref, MatmulMatchesDouble) {
  std::mt19937 rng(7);
  const int m = 7, n = 19, k = 99;
  auto x = random_vec(m * k, rng), w = random_vec(n * k, rng), b = random_vec(n, rng);
  std::vector<float> out(m * n, NAN);
  matmul(x.data(), w.data(), b.data(), m, n, k, out.data());
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) {
      double s = b[j];
      for (int q = 0; q < k; ++q) s += static_cast<double>(x[i * k + q]) * w[j * k + q];
      ASSERT_NEAR(out[i * n + j], s, 1e-4 * (1 + std::fabs(s)));
    }
}

// Dense causal attention over contiguous K/V [seq, kv_heads, d] for one sequence.
void dense_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v, int ctx,
                     int q_len, int hq, int hkv, int d, float scale, std::vector<float>& out) {
  out.assign(static_cast<size_t>(q_len) * hq * d, 0.f);
  for (int i = 0; i < q_len; ++i)
    for (int h = 0; h < hq; ++h) {
      int kh = h / (hq / hkv), visible = ctx - q_len + i + 1;
      std::vector<double> s(visible);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < visible; ++j) {
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += q[(i * hq + h) * d + c] * k[(j * hkv + kh) * d + c];
        s[j] = dot * scale, mx = std::max(mx, s[j]);
      }
      for (double& x : s) sum += (x = std::exp(x - mx));
      for (int j = 0; j < visible; ++j)
        for (int c = 0; c < d; ++c) out[(i * hq + h) * d + c] += static_cast<float>(s[j] / sum) * v[(j * hkv + kh) * d + c];
    }
}

TEST(Ref, PagedAttentionEqualsDense) {
  std::mt19937 rng(11);
  const int hq = 6, hkv = 2, d = 16, page = 4, ctx = 19, q_len = 7, num_pages = 8;
  const int stride = (hq + 2 * hkv) * d;
  auto kc = random_vec(ctx * hkv * d, rng), vc = random_vec(ctx * hkv * d, rng), q = random_vec(q_len * hq * d, rng);
  // Scatter K/V into non-contiguous pages in reverse order.
  std::vector<int32_t> pages = {7, 2, 5, 0, 3};
  std::vector<float> kp(num_pages * hkv * page * d, NAN), vp(kp.size(), NAN);
  for (int t = 0; t < ctx; ++t)
    for (int h = 0; h < hkv; ++h)
      for (int c = 0; c < d; ++c) {
        size_t dst = ((static_cast<size_t>(pages[t / page]) * hkv + h) * page + t % page) * d + c;
        kp[dst] = kc[(t * hkv + h) * d + c], vp[dst] = vc[(t * hkv + h) * d + c];
      }
  std::vector<float> qkv(q_len * stride);
  for (int i = 0; i < q_len; ++i) std::copy_n(&q[i * hq * d], hq * d, &qkv[i * stride]);
  AttentionParams p;
  p.heads = {q_len, stride, hq, hkv, d};
  p.scale = 0.25f, p.num_seqs = 1;
  int32_t qs[2] = {0, q_len}, cl[1] = {ctx};
  p.query_start = qs, p.context_lens = cl, p.page_table = pages.data(), p.max_pages_per_seq = 5;
  std::vector<float> out(q_len * hq * d, NAN), want;
  paged_attention(qkv.data(), PagedKv{kp.data(), vp.data(), num_pages, page}, p, out.data());
  dense_attention(q, kc, vc, ctx, q_len, hq, hkv, d, 0.25f, want);
  for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], want[i], 1e-5) << i;
}

TEST(Ref, RopeRotatesPairsByPositionTimesFrequency) {
  std::mt19937 rng(3);
  const int d = 8, hq = 1, hkv = 1, stride = (hq + 2 * hkv) * d;
  auto qkv = random_vec(stride, rng), orig = qkv;
  std::vector<float> inv_freq = {1.f, 0.1f, 0.01f, 0.001f}, kc(d), vc(d);
  int32_t pos = 5, slot = 0;
  rope_kv_store(qkv.data(), &pos, inv_freq.data(), &slot, HeadLayout{1, stride, hq, hkv, d},
                PagedKv{kc.data(), vc.data(), 1, 1});
  for (int i = 0; i < d / 2; ++i) {
    std::complex<double> z(orig[i], orig[i + d / 2]), r = z * std::polar(1.0, 5.0 * inv_freq[i]);
    EXPECT_NEAR(qkv[i], r.real(), 1e-5);
    EXPECT_NEAR(qkv[i + d / 2], r.imag(), 1e-5);
    EXPECT_NEAR(kc[i], (std::complex<double>(orig[d + i], orig[d + i + d / 2]) * std::polar(1.0, 5.0 * inv_freq[i])).real(), 1e-5);
  }
  for (int i = 0; i < d; ++i) EXPECT_EQ(vc[i], orig[2 * d + i]);  // v stored unrotated
}

// The FP8 KV cache twin: the store writes fp8(x / scale) of what the fp32 cache would hold, and
// attention over the fp8 cache is attention over its dequantized values (fp8 * scale), bit for bit.
TEST(Ref, Fp8KvCacheStoresScaledBytesAndAttendsOverTheirValues) {
  std::mt19937 rng(11);
  const int d = 16, hq = 4, hkv = 2, stride = (hq + 2 * hkv) * d + 8, page = 4, num_pages = 6, ctx = 13;
  const float k_scale = 0.37f, v_scale = 1.9f;
  std::vector<float> qkv = random_vec(ctx * stride, rng);
  for (int t = 0; t < ctx; ++t)  // v large: some |v| / v_scale beyond 448, the saturating store
    for (int i = (hq + hkv) * d; i < (hq + 2 * hkv) * d; ++i) qkv[static_cast<size_t>(t) * stride + i] *= 600.f;
  std::vector<int32_t> positions(ctx), slots(ctx), pages = {5, 1, 3, 0};
  for (int t = 0; t < ctx; ++t) positions[t] = t, slots[t] = pages[t / page] * page + t % page;
  std::vector<float> inv_freq(d / 2);
  for (int i = 0; i < d / 2; ++i) inv_freq[i] = std::pow(10000.f, -2.f * i / d);
  const size_t elems = static_cast<size_t>(num_pages) * hkv * page * d;
  std::vector<float> kf(elems, 0.f), vf(elems, 0.f);
  std::vector<uint8_t> k8(elems, 0), v8(elems, 0);
  std::vector<float> qkv_f = qkv, qkv_8 = qkv;
  const HeadLayout h{ctx, stride, hq, hkv, d};
  rope_kv_store(qkv_f.data(), positions.data(), inv_freq.data(), slots.data(), h, PagedKv{kf.data(), vf.data(), num_pages, page});
  PagedKv fp8{nullptr, nullptr, num_pages, page, k8.data(), v8.data(), k_scale, v_scale};
  rope_kv_store(qkv_8.data(), positions.data(), inv_freq.data(), slots.data(), h, fp8);
  EXPECT_EQ(qkv_f, qkv_8);  // q rotated alike
  int saturated = 0;
  for (size_t i = 0; i < elems; ++i) {
    ASSERT_EQ(k8[i], f32_to_fp8_e4m3(kf[i] / k_scale)) << i;
    ASSERT_EQ(v8[i], f32_to_fp8_e4m3(vf[i] / v_scale)) << i;
    saturated += std::fabs(vf[i] / v_scale) > kFp8E4M3Max;
  }
  EXPECT_GT(saturated, 0);
  // Attention over the fp8 bytes against attention over the fp32 cache of their values.
  std::vector<float> kd(elems), vd(elems);
  for (size_t i = 0; i < elems; ++i) kd[i] = fp8_e4m3_to_f32(k8[i]) * k_scale, vd[i] = fp8_e4m3_to_f32(v8[i]) * v_scale;
  AttentionParams p;
  p.heads = {5, stride, hq, hkv, d};  // the last 5 tokens as queries: causal over 9..13 positions
  p.scale = 0.25f, p.num_seqs = 1;
  int32_t qs[2] = {0, 5}, cl[1] = {ctx};
  p.query_start = qs, p.context_lens = cl, p.page_table = pages.data(), p.max_pages_per_seq = 4;
  const float* q = qkv_8.data() + static_cast<size_t>(ctx - 5) * stride;
  std::vector<float> out8(5 * hq * d, NAN), outd(5 * hq * d, NAN), outf(5 * hq * d, NAN);
  paged_attention(q, fp8, p, out8.data());
  paged_attention(q, PagedKv{kd.data(), vd.data(), num_pages, page}, p, outd.data());
  paged_attention(q, PagedKv{kf.data(), vf.data(), num_pages, page}, p, outf.data());
  EXPECT_EQ(out8, outd);
  EXPECT_NE(out8, outf);  // the fp8 rounding is there
}

TEST(Ref, AddRmsnormAndSilu) {
  std::vector<float> r = {1, 2, 3, 4}, delta = {1, 0, -1, 0}, w = {1, 2, 1, 0.5f}, out(4);
  add_rmsnorm(r.data(), delta.data(), w.data(), 1, 4, 0.f, out.data());
  EXPECT_EQ(r, (std::vector<float>{2, 2, 2, 4}));
  float rms = std::sqrt((4 + 4 + 4 + 16) / 4.f);
  EXPECT_NEAR(out[3], 4 / rms * 0.5f, 1e-6);
  std::vector<float> gu = {1.f, -2.f, 3.f, 4.f}, o(2);
  silu_mul(gu.data(), 1, 2, o.data());
  EXPECT_NEAR(o[0], 1 / (1 + std::exp(-1.f)) * 3, 1e-6);
  EXPECT_NEAR(o[1], -2 / (1 + std::exp(2.f)) * 4, 1e-6);
}

}  // namespace
}  // namespace tk::ref
