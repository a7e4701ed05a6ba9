// tokamak ref: plain fp32 CPU implementations of every op (OpenMP over rows). They are the CPU
// backend and the numerical reference each GPU kernel is tested against, so they favour
// obviously-right loops over cleverness. Raw pointers and a Params struct per op, like the
// kernels they mirror; shapes in the comments.
#pragma once

#include <cstdint>
#include <vector>

#include "core/core.h"

namespace tk::ref {

// out[t, :] = table[ids[t], :]
void embedding(const float* table /*[vocab, hidden]*/, const int32_t* ids /*[T]*/, int64_t num_tokens,
               int64_t hidden, float* out /*[T, hidden]*/);

// out = x / sqrt(mean(x^2) + eps) * weight, per row
void rmsnorm(const float* x /*[T, hidden]*/, const float* weight /*[hidden]*/, int64_t num_tokens,
             int64_t hidden, float eps, float* out /*[T, hidden]*/);

// residual += delta; out = rmsnorm(residual) * weight
void add_rmsnorm(float* residual /*[T, hidden]*/, const float* delta /*[T, hidden]*/,
                 const float* weight /*[hidden]*/, int64_t num_tokens, int64_t hidden, float eps,
                 float* out /*[T, hidden]*/);

// out = x @ w^T + bias
void matmul(const float* x /*[M, K]*/, const float* w /*[N, K]*/, const float* bias /*[N] or null*/,
            int64_t m, int64_t n, int64_t k, float* out /*[M, N]*/);

// Per-head RMSNorm of the q heads (q_weight) and k heads (k_weight) of qkv, in place.
void qk_norm(float* qkv /*[T, qkv_stride]*/, const float* q_weight /*[head_dim]*/,
             const float* k_weight /*[head_dim]*/, const HeadLayout& p, float eps);

// The paged cache of one layer: fp32 (k, v), or fp8 e4m3 (k8, v8) holding x / k_scale (v_scale),
// rounded to nearest even and saturated (f32_to_fp8_e4m3) — the FP8 KV cache every kernel twins.
struct PagedKv {
  float* k = nullptr;    // [num_pages, num_kv_heads, page_size, head_dim] fp32, or nullptr ...
  float* v = nullptr;    // [num_pages, num_kv_heads, page_size, head_dim]
  int num_pages = 0;
  int page_size = 0;
  uint8_t* k8 = nullptr; // ... [num_pages, num_kv_heads, page_size, head_dim] fp8 e4m3
  uint8_t* v8 = nullptr;
  float k_scale = 1.f, v_scale = 1.f;  // fp8 only
  bool fp8() const { return k8 != nullptr; }
};

// RoPE (neox: the head's first and second halves are the pair) on q in place and on k, then k and
// v stored into the cache at slot_mapping[t] = page * page_size + offset.
void rope_kv_store(float* qkv /*[T, qkv_stride]*/, const int32_t* positions /*[T]*/,
                   const float* inv_freq /*[head_dim/2]*/, const int32_t* slot_mapping /*[T]*/,
                   const HeadLayout& p, PagedKv cache);

struct AttentionParams {
  HeadLayout heads;
  float scale = 0.f;
  int num_seqs = 0;
  const int32_t* query_start = nullptr;   // [num_seqs + 1]
  const int32_t* context_lens = nullptr;  // [num_seqs]
  const int32_t* page_table = nullptr;    // [num_seqs, max_pages_per_seq]
  int max_pages_per_seq = 0;
};

// Causal attention over the paged cache (which already holds the new tokens). GQA: q head h reads
// kv head h / (Hq / Hkv). Softmax in fp64-free fp32 with the max subtracted.
void paged_attention(const float* qkv /*[T, qkv_stride]*/, const PagedKv& cache, const AttentionParams& p,
                     float* out /*[T, Hq * head_dim]*/);

// out = silu(gate_up[:, :I]) * gate_up[:, I:]
void silu_mul(const float* gate_up /*[T, 2I]*/, int64_t num_tokens, int64_t inter, float* out /*[T, I]*/);

// dst[index[i]] = values[i]; indices outside [0, dst_size) are skipped.
void scatter_int32(int32_t* dst /*[dst_size]*/, int64_t dst_size, const int32_t* index /*[n]*/,
                   const int32_t* values /*[n]*/, int64_t n);

// ---- sampling

// row[t] = -inf where bit t of mask (word t / 32) is clear: a grammar's allowed tokens.
void apply_token_bitmask(float* row /*[vocab]*/, int64_t vocab, const uint32_t* mask /*[ceil(vocab / 32)]*/);

// One row to sample (the CPU side of kernels::SamplingRow): the draw and the token history the
// penalties read.
struct SamplingRow : SamplingDraw {
  const int32_t* prompt_tokens = nullptr;
  int num_prompt_tokens = 0;
  const int32_t* output_tokens = nullptr;
  int num_output_tokens = 0;
};

// Applies penalties (vLLM order and semantics) to one row of logits in place.
void apply_penalties(float* logits /*[vocab]*/, int64_t vocab, const SamplingRow& p);
// Samples one token from one row: penalties, temperature, top-k, top-p, min-p, then the
// exponential race argmax(p_i / E_i) with E_i = -log(u_i). Greedy is argmax (lowest id on ties).
// `scratch` is reused between calls to avoid allocations.
int32_t sample_row(const float* logits /*[vocab]*/, int64_t vocab, const SamplingRow& p,
                   std::vector<float>& scratch);
// log_softmax(logits)[token]
float token_logprob(const float* logits /*[vocab]*/, int64_t vocab, int32_t token);
// The k most likely tokens with log_softmax(logits), most likely first, ties by lower id.
std::vector<TokenLogprob> top_logprobs(const float* logits /*[vocab]*/, int64_t vocab, int k);

}  // namespace tk::ref
