// Sampling on the GPU with exactly the semantics and random numbers of ref::sample_row, so a seeded
// request picks the same token on both backends: penalties, temperature, softmax, top-k, top-p,
// min-p, then the exponential race argmax(p_i / E_i) with E_i = -log(philox_uniform(seed, step, i)).
// One block of 1024 threads per row. Top-k and top-p thresholds are found by radix selection on
// the bits of the probabilities (non-negative floats order like their bits): four 8-bit passes of
// a shared-memory histogram, counting elements (top-k) or summing 2^-60 fixed-point mass (top-p,
// exact and order-independent), never a sort. Greedy rows without penalties take one argmax pass.
// A row with no penalty and no filter (plain temperature sampling, what benchmarks and most
// requests ask for) never writes its probabilities: it reads the logits three times (max, sum,
// race), recomputing each exp, in 16-byte loads where the row allows.
#include <climits>

#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

using detail::block_reduce;
using detail::kFullMask;
using detail::MaxOp;
using detail::SumOp;
using u64 = unsigned long long;

constexpr int kThreads = 1024;
constexpr int32_t kSeenBit = 1 << 30;          // cnt[i]: token i is in the prompt or the output
constexpr int32_t kCountMask = kSeenBit - 1;   // cnt[i] & kCountMask: times i is in the output
constexpr double kFixedScale = 1152921504606846976.0;  // 2^60: probability mass as exact integers

struct Shared {
  alignas(8) unsigned char scratch[32 * 8];  // block_reduce scratch, any type up to 8 bytes
  u64 hist[256];
  int warp_counts[32];
  uint32_t sel_bin;
  int sel_found, tie_cut;
  u64 sel_above, sel_at;
  double sel_target;
  template <typename T>
  __device__ T* as() { return reinterpret_cast<T*>(scratch); }
};

__device__ __forceinline__ bool has_penalties(const SamplingRow& r) {
  return r.repetition_penalty != 1.f || r.presence_penalty != 0.f || r.frequency_penalty != 0.f;
}

// ref::apply_penalties for one logit; explicit _rn ops so no FMA contraction changes the rounding.
__device__ __forceinline__ float penalize(float l, int32_t c, const SamplingRow& r) {
  if (c == 0) return l;
  if (r.repetition_penalty != 1.f) l = l > 0.f ? l / r.repetition_penalty : __fmul_rn(l, r.repetition_penalty);
  const int n = c & kCountMask;
  if (n > 0 && (r.presence_penalty != 0.f || r.frequency_penalty != 0.f))
    l = __fsub_rn(l, __fadd_rn(__fmul_rn(r.frequency_penalty, static_cast<float>(n)), r.presence_penalty));
  return l;
}

// cnt[i] for this row's history: kSeenBit if i occurs at all, plus its count in the output.
__device__ void build_counts(int32_t* cnt /*[vocab]*/, const int32_t* history, const SamplingRow& r, int vocab) {
  for (int i = threadIdx.x; i < vocab; i += kThreads) cnt[i] = 0;
  __syncthreads();
  const int32_t* h = history + r.history_offset;
  const int n = r.num_prompt_tokens + r.num_output_tokens;
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const int32_t id = h[j];
    if (id < 0 || id >= vocab) continue;
    atomicOr(&cnt[id], kSeenBit);
    if (j >= r.num_prompt_tokens) atomicAdd(&cnt[id], 1);
  }
  __syncthreads();
}

// (value, id) packed so that the max is the largest value and, among equal values, the lowest id.
__device__ __forceinline__ u64 argmax_key(float v, int i) {
  if (v != v) v = -INFINITY;
  const uint32_t b = __float_as_uint(v == 0.f ? 0.f : v);
  const uint32_t ord = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
  return (static_cast<u64>(ord) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(i));
}
__device__ __forceinline__ int key_id(u64 key) { return static_cast<int>(~static_cast<uint32_t>(key)); }

// The row is read in 16-byte loads: 16-byte aligned and a multiple of four long.
__device__ __forceinline__ bool vectorized(const float* row, int vocab) {
  return (vocab & 3) == 0 && (reinterpret_cast<uintptr_t>(row) & 15u) == 0;
}

// f(i, x) for every logit x = row[i]; each thread takes its own elements, four at a time when
// the row is vectorized.
template <typename F>
__device__ __forceinline__ void for_each_logit(const float* row, int vocab, F&& f) {
  if (vectorized(row, vocab)) {
    const float4* v = reinterpret_cast<const float4*>(row);
    for (int j = threadIdx.x; j < (vocab >> 2); j += kThreads) {
      const float4 x = __ldg(v + j);
      f(4 * j, x.x), f(4 * j + 1, x.y), f(4 * j + 2, x.z), f(4 * j + 3, x.w);
    }
  } else {
#pragma unroll 4
    for (int i = threadIdx.x; i < vocab; i += kThreads) f(i, __ldg(row + i));
  }
}

template <bool kPenalized>
__device__ int argmax_row(const float* logits, const int32_t* cnt, const SamplingRow& r, int vocab, Shared& sh) {
  u64 best = 0;
  for_each_logit(logits, vocab, [&](int i, float x) {
    if constexpr (kPenalized) x = penalize(x, cnt[i], r);
    best = max(best, argmax_key(x, i));
  });
  return key_id(block_reduce(best, MaxOp{}, sh.as<u64>()));
}

// log_softmax(logits)[token] as ref::token_logprob (fp32 differences, fp64 sum).
__device__ float row_logprob(const float* logits, int vocab, int token, Shared& sh) {
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += kThreads) mx = fmaxf(mx, __ldg(logits + i));
  mx = block_reduce(mx, MaxOp{}, sh.as<float>());
  double sum = 0.0;
#pragma unroll 4
  for (int i = threadIdx.x; i < vocab; i += kThreads) sum += expf(__ldg(logits + i) - mx);
  sum = block_reduce(sum, SumOp{}, sh.as<double>());
  return static_cast<float>(static_cast<double>(logits[token] - mx) - log(sum));
}

// Adds weight w to hist[bin] for the active lanes, one shared atomic per distinct bin in the warp.
template <bool kCount>
__device__ void hist_add(u64* hist, uint32_t bin, u64 w, bool act) {
  unsigned todo = __ballot_sync(kFullMask, act);
  while (todo) {
    const int leader = __ffs(todo) - 1;
    const uint32_t b = __shfl_sync(kFullMask, bin, leader);
    const bool mine = act && bin == b;
    const unsigned peers = __ballot_sync(kFullMask, mine);
    u64 s;
    if constexpr (kCount) s = __popc(peers);
    else s = detail::warp_reduce(mine ? w : 0ull, SumOp{});
    if ((threadIdx.x & 31) == leader) atomicAdd(&hist[b], s);
    todo &= ~peers;
  }
}

// Warp 0: the highest bin whose weight from the top (plus `above`, the weight of larger prefixes)
// reaches the target. The target is absolute, or at the first level a fraction of the total.
__device__ void choose_bin(Shared& sh, u64 above, double target, bool first, bool relative) {
  const int lane = threadIdx.x;
  u64 v[8], lsum = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = sh.hist[lane * 8 + j], lsum += v[j];
  u64 incl = lsum;  // weight of the bins of lanes >= lane
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const u64 t = __shfl_down_sync(kFullMask, incl, o);
    if (lane + o < 32) incl += t;
  }
  if (!first) target = sh.sel_target;
  else if (relative) target *= static_cast<double>(__shfl_sync(kFullMask, incl, 0));
  const unsigned ok = __ballot_sync(kFullMask, static_cast<double>(above + incl) >= target);
  if (ok == 0) {
    if (lane == 0) sh.sel_found = 0, sh.sel_target = target;
    return;
  }
  if (lane != 31 - __clz(ok)) return;
  u64 acc = above + (incl - lsum), at = 0;
  int bin = lane * 8;
  bool done = false;
#pragma unroll
  for (int j = 7; j >= 0; --j) {
    if (done) continue;
    if (static_cast<double>(acc + v[j]) >= target) bin = lane * 8 + j, at = v[j], done = true;
    else acc += v[j];
  }
  sh.sel_bin = bin, sh.sel_above = acc, sh.sel_at = at, sh.sel_found = 1, sh.sel_target = target;
}

struct Selection {
  uint32_t key;  // the selected key
  u64 above;     // weight of keys > key
  u64 at;        // weight of keys == key
  double target; // the absolute target
  bool found;    // false when all weight together falls short of the target
};

// The largest key v with W(key >= v) >= target, where fn(i, key, w) gives element i's key and
// weight (false: it takes no part).
template <bool kCount, typename Fn>
__device__ Selection radix_select(int vocab, double target, bool relative, Fn fn, Shared& sh) {
  uint32_t prefix = 0, mask = 0;
  u64 above = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) sh.hist[b] = 0;
    __syncthreads();
    for (int base = 0; base < vocab; base += kThreads) {  // warp-uniform trip count for the ballots
      const int i = base + threadIdx.x;
      uint32_t key = 0;
      u64 w = 0;
      const bool act = i < vocab && fn(i, key, w) && (key & mask) == prefix;
      hist_add<kCount>(sh.hist, (key >> shift) & 255u, w, act);
    }
    __syncthreads();
    if (threadIdx.x < 32) choose_bin(sh, above, target, shift == 24, relative);
    __syncthreads();
    if (!sh.sel_found) return {0, 0, 0, sh.sel_target, false};
    prefix |= sh.sel_bin << shift, mask |= 0xffu << shift, above = sh.sel_above;
  }
  return {prefix, above, sh.sel_at, sh.sel_target, true};
}

// Id of the m-th (1-based) element, by ascending id, whose probability equals v.
__device__ int find_tie_cut(const float* buf, float inv, float v, long long m, int vocab, Shared& sh) {
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  long long seen = 0;
  if (threadIdx.x == 0) sh.tie_cut = INT_MAX;
  for (int base = 0; base < vocab; base += kThreads) {
    const int i = base + threadIdx.x;
    const bool tie = i < vocab && buf[i] * inv == v;
    const unsigned bal = __ballot_sync(kFullMask, tie);
    __syncthreads();
    if (lane == 0) sh.warp_counts[warp] = __popc(bal);
    __syncthreads();
    int before = 0, total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += sh.warp_counts[w], before += w < warp ? sh.warp_counts[w] : 0;
    if (tie && seen + before + __popc(bal & ((1u << lane) - 1u)) == m - 1) sh.tie_cut = i;
    seen += total;
    if (seen >= m) break;
  }
  __syncthreads();
  return sh.tie_cut;
}

struct Filters {
  float inv = 1.f;        // p_i = e_i * inv, bit-identical to ref's probs[i] *= inv
  float kth = 0.f;        // top-k: keep p >= kth
  float topp = 0.f;       // top-p: keep p > topp, or p == topp with id <= tie_cut
  int tie_cut = INT_MAX;
  float minp = 0.f;       // min-p: keep p >= minp
};

__device__ __forceinline__ bool kept(float p, int i, const Filters& f) {
  return p > 0.f && p >= f.kth && p >= f.minp && (p > f.topp || (p == f.topp && i <= f.tie_cut));
}

// Top-p over the top-k survivors; false when it keeps nothing (top_p <= 0, as ref).
__device__ bool top_p_filter(const float* buf, const SamplingRow& r, int vocab, Filters& f, Shared& sh) {
  if (!(r.top_p > 0.f)) return false;
  const float inv = f.inv, kth = f.kth;
  auto mass = [=](int i, uint32_t& key, u64& w) {
    const float p = buf[i] * inv;
    if (!(p > 0.f && p >= kth)) return false;
    key = __float_as_uint(p), w = static_cast<u64>(static_cast<double>(p) * kFixedScale);
    return true;
  };
  const Selection s = radix_select<false>(vocab, static_cast<double>(r.top_p), true, mass, sh);
  if (!s.found) return true;  // the limit is out of reach: all kept, as ref
  f.topp = __uint_as_float(s.key);
  const u64 wv = static_cast<u64>(static_cast<double>(f.topp) * kFixedScale);
  if (wv == 0) return true;
  // The crossing token and the ties before it (by id) are kept: m of the count_eq equal values.
  const long long count_eq = static_cast<long long>(s.at / wv);
  const long long m = max(1ll, static_cast<long long>(ceil((s.target - static_cast<double>(s.above)) / wv)));
  if (m < count_eq) f.tie_cut = find_tie_cut(buf, inv, f.topp, m, vocab, sh);
  return true;
}

// The unnormalised probability exp((x - max) / T), one expression wherever it is computed, so a
// recomputed value is bit-identical to the one summed.
__device__ __forceinline__ float scaled_exp(float x, float mx, float temperature) {
  return expf((x - mx) / temperature);
}

// Element i's key in the exponential race, p_i / E_i with E_i = -log(u_i), ties to the lowest id.
__device__ __forceinline__ u64 race_key_of(float p, int i, float u) {
  const float score = p / fmaxf(-logf(u), 1e-30f);
  return (static_cast<u64>(__float_as_uint(score)) << 32) | static_cast<uint32_t>(~static_cast<uint32_t>(i));
}
__device__ __forceinline__ u64 race_key(float p, int i, const SamplingRow& r) {
  return race_key_of(p, i, philox_uniform(r.seed, r.step, static_cast<uint64_t>(i)));
}

// No penalty, top-k, top-p or min-p: what sample_filtered computes, from three reads of the logits
// and no workspace (the filters' passes need the probabilities stored; this row does not).
__device__ int sample_plain(const float* logits, const SamplingRow& r, int vocab, Shared& sh) {
  float mx = -INFINITY;
  for_each_logit(logits, vocab, [&](int, float x) { mx = fmaxf(mx, x); });
  mx = block_reduce(mx, MaxOp{}, sh.as<float>());
  double sum = 0.0;
  for_each_logit(logits, vocab, [&](int, float x) { sum += scaled_exp(x, mx, r.temperature); });
  const float inv = static_cast<float>(1.0 / block_reduce(sum, SumOp{}, sh.as<double>()));
  u64 best = 0;
  auto race = [&](int i, float x, float u) {
    const float p = scaled_exp(x, mx, r.temperature) * inv;
    if (p > 0.f) best = max(best, race_key_of(p, i, u));
  };
  if (vectorized(logits, vocab)) {  // one Philox block for the four logits of a 16-byte load
    const float4* v = reinterpret_cast<const float4*>(logits);
    for (int j = threadIdx.x; j < (vocab >> 2); j += kThreads) {
      const float4 x = __ldg(v + j);
      uint32_t bits[4];
      philox4x32(r.seed, r.step, static_cast<uint64_t>(j), bits);
      race(4 * j, x.x, uniform_from_bits(bits[0])), race(4 * j + 1, x.y, uniform_from_bits(bits[1]));
      race(4 * j + 2, x.z, uniform_from_bits(bits[2])), race(4 * j + 3, x.w, uniform_from_bits(bits[3]));
    }
  } else {
    for (int i = threadIdx.x; i < vocab; i += kThreads)
      race(i, __ldg(logits + i), philox_uniform(r.seed, r.step, static_cast<uint64_t>(i)));
  }
  best = block_reduce(best, MaxOp{}, sh.as<u64>());
  return best == 0 ? -1 : key_id(best);
}

__device__ __forceinline__ bool is_plain(const SamplingRow& r, bool pen, int vocab) {
  return !pen && !(r.top_k > 0 && r.top_k < vocab) && !(r.top_p < 1.f) && !(r.min_p > 0.f);
}

// Temperature, softmax, top-k, top-p, min-p and the exponential race; -1 when nothing survives.
__device__ int sample_filtered(const float* logits, float* buf, const int32_t* cnt, bool pen, const SamplingRow& r,
                               int vocab, Shared& sh) {
  float mx = -INFINITY;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    float x = __ldg(logits + i);
    if (pen) x = penalize(x, cnt[i], r);
    buf[i] = x;  // NOTE: each thread only ever touches its own elements i = tid + k * kThreads
    mx = fmaxf(mx, x);
  }
  mx = block_reduce(mx, MaxOp{}, sh.as<float>());
  double sum = 0.0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float e = scaled_exp(buf[i], mx, r.temperature);
    buf[i] = e;
    sum += e;
  }
  Filters f;
  f.inv = static_cast<float>(1.0 / block_reduce(sum, SumOp{}, sh.as<double>()));
  if (r.top_k > 0 && r.top_k < vocab) {
    const float inv = f.inv;
    auto count = [=](int i, uint32_t& key, u64& w) { return key = __float_as_uint(buf[i] * inv), w = 1, true; };
    f.kth = __uint_as_float(radix_select<true>(vocab, r.top_k, false, count, sh).key);
  }
  if (r.top_p < 1.f && !top_p_filter(buf, r, vocab, f, sh)) return -1;
  if (r.min_p > 0.f) f.minp = r.min_p * f.inv;  // the max probability is e = exp(0) = 1 times inv
  u64 best = 0;
  for (int i = threadIdx.x; i < vocab; i += kThreads) {
    const float p = buf[i] * f.inv;
    if (kept(p, i, f)) best = max(best, race_key(p, i, r));
  }
  best = block_reduce(best, MaxOp{}, sh.as<u64>());
  return best == 0 ? -1 : key_id(best);
}

struct SampleArgs {
  const float* logits;        // [num_rows, vocab]
  const SamplingRow* rows;    // [num_rows]
  const int32_t* history;     // token ids referenced by rows, or null
  int32_t* out_tokens;        // [num_rows]
  float* out_logprobs;        // [num_rows] or null
  float* buf;                 // [num_rows, vocab] workspace: penalised logits, then exp
  int32_t* cnt;               // [num_rows, vocab] workspace: history counts
  int vocab;
};

__global__ void __launch_bounds__(kThreads) sample_kernel(SampleArgs a) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x;
  const SamplingRow r = a.rows[row];
  const float* logits = a.logits + row * a.vocab;
  int32_t* cnt = a.cnt + row * a.vocab;
  const bool pen = has_penalties(r) && a.history && r.num_prompt_tokens + r.num_output_tokens > 0;
  if (pen) build_counts(cnt, a.history, r, a.vocab);
  int token;
  if (r.temperature <= 0.f || r.top_k == 1) {
    token = pen ? argmax_row<true>(logits, cnt, r, a.vocab, sh) : argmax_row<false>(logits, cnt, r, a.vocab, sh);
  } else {
    token = is_plain(r, pen, a.vocab) ? sample_plain(logits, r, a.vocab, sh)
                                      : sample_filtered(logits, a.buf + row * a.vocab, cnt, pen, r, a.vocab, sh);
    if (token < 0) token = argmax_row<false>(logits, cnt, r, a.vocab, sh);  // ref: argmax of raw logits
  }
  if (a.out_logprobs) {  // NaN where no logprob was asked for, so no stale value passes for one
    const float lp = r.want_logprob ? row_logprob(logits, a.vocab, token, sh) : NAN;
    if (threadIdx.x == 0) a.out_logprobs[row] = lp;
  }
  if (threadIdx.x == 0) a.out_tokens[row] = token;
}

__global__ void __launch_bounds__(kThreads) token_logprobs_kernel(const float* logits,    // [num_rows, vocab]
                                                                  const int32_t* targets, // [num_rows]
                                                                  float* out,             // [num_rows]
                                                                  int vocab) {
  __shared__ Shared sh;
  const int64_t row = blockIdx.x;
  const int32_t target = targets[row];
  if (target < 0 || target >= vocab) {  // uniform per block: no barrier is skipped by part of it
    if (threadIdx.x == 0) out[row] = NAN;
    return;
  }
  const float lp = row_logprob(logits + row * vocab, vocab, target, sh);
  if (threadIdx.x == 0) out[row] = lp;
}

Status check_rows(const char* op, int num_rows, int64_t vocab) {
  if (num_rows <= 0 || vocab <= 0)
    return invalid_argument(std::string(op) + ": num_rows and vocab must be > 0 (got " + std::to_string(num_rows) +
                            ", " + std::to_string(vocab) + ")");
  if (vocab >= (int64_t{1} << 30)) return unsupported(std::string(op) + ": vocab " + std::to_string(vocab));
  return Status();
}

}  // namespace

size_t sample_workspace_bytes(int num_rows, int64_t vocab) {
  if (num_rows <= 0 || vocab <= 0) return 0;
  return static_cast<size_t>(num_rows) * static_cast<size_t>(vocab) * (sizeof(float) + sizeof(int32_t));
}

Status sample(const SampleParams& p, void* workspace, cudaStream_t stream) {
  if (!p.logits || !p.rows || !p.out_tokens) return invalid_argument("sample: null logits, rows or out_tokens");
  TK_RETURN_IF_ERROR(check_rows("sample", p.num_rows, p.vocab));
  if (!workspace || (reinterpret_cast<uintptr_t>(workspace) & 3u) != 0)
    return invalid_argument("sample: workspace of sample_workspace_bytes() must be non-null and 4-byte aligned");
  float* buf = static_cast<float*>(workspace);
  int32_t* cnt = reinterpret_cast<int32_t*>(buf + static_cast<int64_t>(p.num_rows) * p.vocab);
  const SampleArgs a{p.logits, p.rows, p.history, p.out_tokens, p.out_logprobs, buf, cnt, static_cast<int>(p.vocab)};
  sample_kernel<<<p.num_rows, kThreads, 0, stream>>>(a);
  return detail::launch_status("sample");
}

Status token_logprobs(const TokenLogprobsParams& p, cudaStream_t stream) {
  if (!p.logits || !p.targets || !p.out) return invalid_argument("token_logprobs: null logits, targets or out");
  TK_RETURN_IF_ERROR(check_rows("token_logprobs", p.num_rows, p.vocab));
  token_logprobs_kernel<<<p.num_rows, kThreads, 0, stream>>>(p.logits, p.targets, p.out, static_cast<int>(p.vocab));
  return detail::launch_status("token_logprobs");
}

}  // namespace tk::kernels
