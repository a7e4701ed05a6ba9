// tokamak kernels: every GPU op of the decoder, one .cu per op. Framework-free: raw device
// pointers and one Params struct per op (a comment on every field). Each launcher validates
// shapes, strides and alignment and returns an error naming an unsupported combination; dispatch
// is over a closed set (dtype bf16/fp16; head_dim 32/64/80/96/128/256; page size). Each op's CPU twin is
// in src/ref and its test in tests/gpu.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <string>

#include "core/core.h"

namespace tk::kernels {

// ---------------------------------------------------------------------------------------------
// Row-wise ops (embedding.cu, rmsnorm.cu, silu_mul.cu). `dtype` is bf16 or fp16 for every
// activation/weight pointer.

struct EmbeddingParams {
  const void* table = nullptr;   // [vocab, hidden]
  const int32_t* ids = nullptr;  // [num_tokens] device
  void* out = nullptr;           // [num_tokens, hidden]
  int64_t num_tokens = 0;
  int64_t hidden = 0;
  int64_t vocab = 0;             // rows of the table; ids outside [vocab_begin, vocab_begin + vocab) write zeros
  DType dtype = DType::kBF16;
  int64_t vocab_begin = 0;       // tensor parallelism: the table is the vocabulary slice from this id
};
Status embedding(const EmbeddingParams& p, cudaStream_t stream);

// An input that is an FP8 GEMM's raw product, its scales not applied yet (the scalar GEMM at
// kFp8ProductPrescale): the kernel reads T(raw * (x_scale[r] * gain) * w_scale[c]) — what
// scale_fp8_product (no bias) would have written, bit for bit — and saves that pass.
struct Fp8ProductScales {
  const float* x_scale = nullptr;  // [rows] device; nullptr: the input is already scaled
  const float* w_scale = nullptr;  // [cols of the product] device
  float gain = 1.f;                // kFp8ProductGain
};

// out = rmsnorm(x) * weight; with `residual` set: residual += delta first and x = residual.
// With `q` set, the output is also (or only, out == nullptr) quantized per token for the FP8
// linear that reads it: q and q_scales are what quantize_fp8_rows (dynamic, one scale per row)
// writes from `out`, bit for bit.
struct RmsNormParams {
  const void* x = nullptr;       // [num_tokens, hidden] input when residual == nullptr
  void* residual = nullptr;      // [num_tokens, hidden] in/out, or nullptr
  const void* delta = nullptr;   // [num_tokens, hidden] added to residual (with residual only)
  const void* weight = nullptr;  // [hidden]
  void* out = nullptr;           // [num_tokens, hidden], or nullptr when q is set
  int64_t num_tokens = 0;
  int64_t hidden = 0;            // multiple of 8 (16-byte vectors)
  float eps = 1e-6f;
  DType dtype = DType::kBF16;
  void* q = nullptr;             // [num_tokens, hidden] fp8 e4m3, contiguous, or nullptr
  float* q_scales = nullptr;     // [num_tokens] with q
  float amax_ub = 0.f;           // > 0: the amax clamped to it (QuantizeFp8RowsParams::amax_ub)
  Fp8ProductScales delta_scales; // delta is a raw FP8 product (with residual only): w_scale [hidden]
};
Status rmsnorm(const RmsNormParams& p, cudaStream_t stream);

// out = silu(gate_up[:, :inter]) * gate_up[:, inter:]. With `q` set, quantized per token as
// RmsNormParams::q says (a block per row then, or for at most 64 tokens a cluster of 8 blocks;
// inter <= kSiluMulFp8MaxInter).
struct SiluMulParams {
  const void* gate_up = nullptr;  // [num_tokens, 2 * inter]
  void* out = nullptr;            // [num_tokens, inter], or nullptr when q is set
  int64_t num_tokens = 0;
  int64_t inter = 0;              // multiple of 8
  DType dtype = DType::kBF16;
  void* q = nullptr;              // [num_tokens, inter] fp8 e4m3, contiguous, or nullptr
  float* q_scales = nullptr;      // [num_tokens] with q
  float amax_ub = 0.f;            // > 0: the amax clamped to it
  Fp8ProductScales gate_up_scales;  // gate_up is a raw FP8 product: w_scale [2 * inter]
};
constexpr int64_t kSiluMulFp8MaxInter = 32768;  // the row held in registers: 512 threads x 8 vectors
Status silu_mul(const SiluMulParams& p, cudaStream_t stream);

// FP8 e4m3 rows (fp8_quant.cu): q[r, c] = fp8(x[r, c] / scales[r]) with scales[r] the static
// scale, or max(min(amax(x[r]), amax_ub) / 448, 1 / (448 * 512)) (per group of columns when
// group_size > 0): the per-token inputs of FP8 GEMMs, the per-channel weights of --quantization
// fp8, and (dequantized) the inputs of FP8 linears whose product runs in bf16/fp16. CPU twin:
// fp8::quantize_input (src/backend).
struct QuantizeFp8RowsParams {
  const void* x = nullptr;               // [rows, ld] bf16/fp16, the first `cols` of each row read
  int64_t rows = 0, cols = 0, ld = 0;
  const float* static_scale = nullptr;   // device [1], or nullptr: dynamic per row
  float amax_ub = 0.f;                   // > 0: the amax is clamped to it (fbgemm's activation_scale_ub)
  int64_t group_size = 0;                // 0: one scale per row; else per group of columns
  void* q = nullptr;                     // [rows, cols] fp8 e4m3, contiguous, or nullptr
  float* scales = nullptr;               // [rows, ceil(cols / group)]
  void* dequantized = nullptr;           // [rows, cols] dtype: fp8(x / s) * s, or nullptr
  DType dtype = DType::kBF16;
};
Status quantize_fp8_rows(const QuantizeFp8RowsParams& p, cudaStream_t stream);

// The scales of an FP8 product, in place (fp8_scale.cu): out[r, c] = out[r, c] * (x_scale[r] *
// gain) * w_scale[c] (+ bias[c]) in fp32, rounded once to dtype. What an FP8 linear with
// per-token or per-channel scales runs after a cuBLASLt FP8 GEMM with constant scalar scales
// (cuBLASLt serves no outer-vector scales on the H200). CPU twin: fp8::scale_product (src/backend).
struct ScaleFp8ProductParams {
  void* out = nullptr;            // [m, ldo] bf16/fp16/fp32, the first n of each row: the product in, scaled out
  int64_t m = 0, n = 0, ldo = 0;  // ldo >= n
  const float* x_scale = nullptr;  // device [m] (x_scale_per_row) or [1]
  const float* w_scale = nullptr;  // device [n] (w_scale_per_col) or [1]
  bool x_scale_per_row = true, w_scale_per_col = true;
  float gain = 1.f;               // undoes the constant scales the GEMM ran with
  const void* bias = nullptr;     // [n] dtype, or nullptr
  DType dtype = DType::kBF16;
};
Status scale_fp8_product(const ScaleFp8ProductParams& p, cudaStream_t stream);

// An FP8 product of few rows (gemv.cu; decode's linears, where cuBLASLt's FP8 GEMMs read the
// weight well below the copy bandwidth): out[r, c] = T(alpha * sum_k x[r, k] w[c, k] (+ bias[c]))
// with alpha = x_scale[0] * w_scale[0] — cuBLASLt's scalar-scale FP8 contract
// (GemmRunner::matmul_fp8 runs it where it applies) — fp32 accumulation, one rounding to T. CPU
// twin: the fp32 product of the decoded fp8 values (tests/gpu/test_fp8_gemv.cpp).
constexpr int64_t kFp8GemvMaxM = 16;
struct Fp8GemvParams {
  const void* x = nullptr;          // [m, k] fp8 e4m3, contiguous, 16-byte aligned
  const void* w = nullptr;          // [n, k] fp8 e4m3, 16-byte aligned
  const float* x_scale = nullptr;   // device [1]
  const float* w_scale = nullptr;   // device [1]
  const void* bias = nullptr;       // [n] out_dtype, or nullptr
  void* out = nullptr;              // [m, ldo], the first n of each row written
  int64_t m = 0, n = 0, k = 0;      // 1 <= m <= kFp8GemvMaxM; k a multiple of 16
  int64_t ldo = 0;                  // >= n
  DType out_dtype = DType::kBF16;   // bf16, fp16 or fp32
};
Status fp8_gemv(const Fp8GemvParams& p, cudaStream_t stream);

// A bf16/fp16 product of few rows (gemv.cu, the FP8 GEMV's kernel with 16-bit operands):
// out[r, c] = T(sum_k x[r, k] w[c, k] (+ bias[c])), GemmRunner::matmul's contract, fp32
// accumulation, one rounding to T. Launched as a programmatic dependent of the kernel before it.
// CPU twin: the fp32 product of the same operands (tests/gpu/test_gemv.cpp).
constexpr int64_t kGemvMaxM = 16;
struct GemvParams {
  const void* x = nullptr;         // [m, ldx] in_dtype, 16-byte aligned
  const void* w = nullptr;         // [n, k] in_dtype, 16-byte aligned
  const void* bias = nullptr;      // [n] out_dtype (= in_dtype), or nullptr
  void* out = nullptr;             // [m, ldo], the first n of each row written
  int64_t m = 0, n = 0, k = 0;     // 1 <= m <= kGemvMaxM; k a multiple of 8
  int64_t ldx = 0, ldo = 0;        // 0: k and n; ldx a multiple of 8
  DType in_dtype = DType::kBF16;   // bf16 or fp16
  DType out_dtype = DType::kBF16;  // in_dtype or fp32
};
Status gemv(const GemvParams& p, cudaStream_t stream);

// out[r] = x[rows[r]]
struct GatherRowsParams {
  const void* x = nullptr;        // [num_tokens, hidden]
  const int32_t* rows = nullptr;  // [num_rows] device
  void* out = nullptr;            // [num_rows, hidden]
  int64_t num_rows = 0;
  int64_t hidden = 0;
  DType dtype = DType::kBF16;
};
Status gather_rows(const GatherRowsParams& p, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// Attention inputs (qk_norm.cu, rope.cu). qkv rows hold q heads, then k heads, then v heads.

// Per-head RMSNorm of q heads (q_weight) and k heads (k_weight), in place (Qwen3).
struct QkNormParams {
  void* qkv = nullptr;             // [num_tokens, qkv_stride]
  const void* q_weight = nullptr;  // [head_dim]
  const void* k_weight = nullptr;  // [head_dim]
  HeadLayout heads;
  float eps = 1e-6f;
  DType dtype = DType::kBF16;
};
Status qk_norm(const QkNormParams& p, cudaStream_t stream);

// An FP8 KV cache (--kv-cache-dtype fp8): k_cache and v_cache hold fp8 e4m3 (one byte per
// value) of k / k_scale and v / v_scale, rounded to nearest even and saturated to +-448; readers
// multiply by the scales again (folded into the softmax scale and the output). Off: the caches
// hold `dtype` like q. Per-tensor scales per layer, from the checkpoint or 1.0.
struct KvCacheQuant {
  bool fp8 = false;
  float k_scale = 1.f;
  float v_scale = 1.f;
};

// RoPE (neox pairs i, i + head_dim/2) on q in place and on k, then k and v written to the paged
// cache at slot_mapping[t] = page * page_size + offset. Angles in fp32: position * inv_freq[i].
struct RopeKvStoreParams {
  void* qkv = nullptr;                   // [num_tokens, qkv_stride]
  const int32_t* positions = nullptr;    // [num_tokens]
  const float* inv_freq = nullptr;       // [head_dim / 2]
  const int32_t* slot_mapping = nullptr; // [num_tokens]
  void* k_cache = nullptr;               // [num_pages, num_kv_heads, page_size, head_dim]
  void* v_cache = nullptr;               // [num_pages, num_kv_heads, page_size, head_dim]
  int page_size = 16;
  int num_pages = 0;
  HeadLayout heads;
  DType dtype = DType::kBF16;            // of qkv (and of the caches unless kv_quant.fp8)
  KvCacheQuant kv_quant;                 // fp8: the rotated k and v stored as fp8(x / scale) from fp32
};
Status rope_kv_store(const RopeKvStoreParams& p, cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// Attention over the paged cache. The cache already holds the step's new tokens (rope_kv_store
// ran first). Query i of a sequence with L new tokens and context C sees cache positions
// [0, C - L + i]. GQA by head index: q head h reads kv head h / (Hq / Hkv); K/V are never copied.

// The head sizes every head-dim kernel (attention, RoPE + KV store, q/k norm) is built for: one
// list for the launch checks and the backend's load-time check. 32/80/96: small Llama-family,
// Qwen and Phi-style widths; 256: Gemma-style and some Qwen3 variants.
constexpr std::array<int, 6> kSupportedHeadDims = {32, 64, 80, 96, 128, 256};
bool is_supported_head_dim(int head_dim);
std::string supported_head_dims_text();  // "32, 64, 80, 96, 128, 256"

struct PagedAttentionParams {
  const void* q = nullptr;                // [num_tokens, q_stride]; q heads at the start of each row
  int64_t q_stride = 0;                   // elements between tokens (qkv_stride when q lives in qkv)
  const void* k_cache = nullptr;          // [num_pages, num_kv_heads, page_size, head_dim]
  const void* v_cache = nullptr;          // [num_pages, num_kv_heads, page_size, head_dim]
  void* out = nullptr;                    // [num_tokens, num_q_heads * head_dim]
  const int32_t* query_start = nullptr;   // [num_seqs + 1] device
  const int32_t* context_lens = nullptr;  // [num_seqs] device
  const int32_t* page_table = nullptr;    // [num_seqs, max_pages_per_seq] device
  int max_pages_per_seq = 0;
  int num_seqs = 0;
  int num_tokens = 0;
  int max_query_len = 0;                  // host-known bounds used to size the grid
  int max_context_len = 0;
  int page_size = 16;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  float scale = 0.f;
  DType dtype = DType::kBF16;             // of q and out (and of the caches unless kv_quant.fp8)
  KvCacheQuant kv_quant;                  // fp8: the caches hold fp8 e4m3, dequantized on the fly
};

// Flash decoding (attention_decode.cu): each sequence's context is split into `num_splits`
// chunks of `split_tokens` processed by separate blocks; each block loads a K/V page once for
// all query heads of its KV group (and all of the sequence's query tokens, up to
// kMaxDecodeQueryLen); partial outputs are merged by log-sum-exp: within a thread-block cluster
// of the splits (2-8 splits, through distributed shared memory) or, past 8, through the
// workspace in a second kernel.
constexpr int kMaxDecodeQueryLen = 8;

struct DecodePlan {
  int num_splits = 1;        // splits per sequence (the same for every sequence of the batch)
  int split_tokens = 0;      // tokens per split, a multiple of page_size
  size_t workspace_bytes = 0;  // partial outputs and log-sum-exps, fp32 (used past 8 splits)
};
// Chosen on the host from the SM count and the real lengths: enough blocks to fill the GPU,
// no split shorter than a few pages, one split when the batch alone fills the GPU.
DecodePlan plan_decode(int num_seqs, int max_context_len, int max_query_len, int num_kv_heads, int page_size,
                       int sm_count);
Status decode_attention(const PagedAttentionParams& p, const DecodePlan& plan, void* workspace, cudaStream_t stream);

// FlashAttention prefill: tiles of query rows of one (sequence, head) per block, online softmax,
// tensor-core MMA, K/V tiles staged through shared memory from the paged cache; causal; packed
// variable-length sequences, no padding. Two implementations: warpgroup MMAs on Hopper for
// head_dim 128 (attention_prefill_sm90.cu, FlashAttention-3 style) and mma.sync everywhere else
// (attention_prefill.cu, FlashAttention-2). kAuto takes the first that applies; kMmaSync forces
// the portable one (tests and benchmarks compare the two).
enum class PrefillImpl { kAuto, kMmaSync };
Status prefill_attention(const PagedAttentionParams& p, cudaStream_t stream, PrefillImpl impl = PrefillImpl::kAuto);

// ---------------------------------------------------------------------------------------------
// Sampling (sampling.cu): the same semantics and Philox numbers as ref::sample_row, so a seeded
// request picks the same token on both backends from the same logits.

struct SamplingRow : SamplingDraw {
  int64_t history_offset = 0;  // into SampleParams::history: prompt tokens then output tokens
  int num_prompt_tokens = 0;
  int num_output_tokens = 0;
  int want_logprob = 0;
};

struct SampleParams {
  const float* logits = nullptr;          // [num_rows, vocab] fp32; not modified
  const SamplingRow* rows = nullptr;      // [num_rows] device
  const int32_t* history = nullptr;       // token ids referenced by the rows, device
  int num_rows = 0;
  int64_t vocab = 0;
  int32_t* out_tokens = nullptr;          // [num_rows] device
  float* out_logprobs = nullptr;          // [num_rows] device: log_softmax(raw logits)[token]
};
// Scratch the sampler needs for `num_rows` rows of `vocab`.
size_t sample_workspace_bytes(int num_rows, int64_t vocab);
Status sample(const SampleParams& p, void* workspace, cudaStream_t stream);

// logprobs[r] = log_softmax(logits[r])[targets[r]]
struct TokenLogprobsParams {
  const float* logits = nullptr;      // [num_rows, vocab] fp32
  const int32_t* targets = nullptr;   // [num_rows] device
  float* out = nullptr;               // [num_rows] device
  int num_rows = 0;
  int64_t vocab = 0;
};
Status token_logprobs(const TokenLogprobsParams& p, cudaStream_t stream);

// dst[index[i]] = values[i] for i < n (scatter.cu): the step's tokens into the sampler's history
// table. Indices outside [0, dst_size) are skipped.
Status scatter_int32(int32_t* dst /*[dst_size]*/, const int32_t* index /*[n] device*/, const int32_t* values /*[n] device*/,
                     int n, int64_t dst_size, cudaStream_t stream);
// dst[index[i]] += values[i] for i < n (logit biases; indices may repeat). Indices outside
// [0, dst_size) are skipped.
Status scatter_add_f32(float* dst /*[dst_size]*/, const int64_t* index /*[n] device*/, const float* values /*[n] device*/,
                       int n, int64_t dst_size, cudaStream_t stream);

// logits[rows[r], t] = -inf where bit t of bitmask[r] is clear (token_mask.cu): structured
// output's grammar masks. words = ceil(vocab / 32) per row.
Status apply_token_bitmask(float* logits /*[*, vocab] fp32*/, int64_t vocab, const int32_t* rows /*[num_rows] device*/,
                           int num_rows, const uint32_t* bitmask /*[num_rows, words] device*/, int words,
                           cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// Utilities shared by tests, benchmarks and random-weight models (fill.cu).

// Deterministic pseudo-random fill: x[i] = mean + std * N(0,1) from a counter-based hash of
// (seed, i), in bf16/fp16/fp32.
Status fill_random(void* x, DType dtype, int64_t count, uint64_t seed, float mean, float std, cudaStream_t stream);

}  // namespace tk::kernels
