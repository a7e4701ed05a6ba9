// tokamak model: what a Hugging Face checkpoint says (config.json, generation_config.json,
// safetensors) and the decoder forward, written once against the backend op interface.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/core.h"

namespace tk {

// ---------------------------------------------------------------------------------------------
// Configuration.

enum class Architecture { kLlama, kMistral, kQwen2, kQwen3 };
const char* architecture_name(Architecture arch);

// RoPE frequency scaling as config.json describes it (rope_scaling or rope_parameters).
struct RopeScaling {
  enum class Type { kNone, kLlama3 } type = Type::kNone;
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

// FP8 quantization as config.json's quantization_config (or the older compression_config)
// describes it: compressed-tensors (float-/naive-quantized), fp8, fbgemm_fp8. One scheme for
// every quantized Linear; the `ignore` list keeps modules in the checkpoint's float dtype.
struct QuantizationConfig {
  enum class Method { kNone, kCompressedTensors, kFp8, kFbgemmFp8 };
  Method method = Method::kNone;
  std::string key;            // "quantization_config" or "compression_config", for messages
  Fp8Scheme scheme;
  // The checkpoint's name of the weight scale beside "<module>.weight": "weight_scale", or
  // "weight_scale_inv" (fp8 with weight_block_size; the name says inverse but it multiplies).
  std::string weight_scale_name = "weight_scale";
  // compressed-tensors: module names or "re:" regexes (full match); fp8 / fbgemm_fp8: names of
  // which any substring of a module's name skips it (as transformers matches them).
  std::vector<std::string> ignore;
  bool quantized() const { return method != Method::kNone; }
  // Is "<module>.weight" FP8 in the checkpoint? module: e.g. "model.layers.0.self_attn.q_proj".
  bool quantizes(const std::string& module) const;
};

struct ModelConfig {
  Architecture architecture = Architecture::kLlama;
  std::string architecture_string;  // as written, e.g. "LlamaForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;           // num_hidden_layers
  int64_t num_heads = 0;            // num_attention_heads
  int64_t num_kv_heads = 0;         // num_key_value_heads (defaults to num_heads)
  int64_t head_dim = 0;             // head_dim when given, else hidden_size / num_heads
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool tie_word_embeddings = false;
  int64_t max_position_embeddings = 2048;
  DType torch_dtype = DType::kBF16;  // torch_dtype or dtype
  bool attention_bias = false;      // q/k/v bias (Qwen2 always; Llama when attention_bias=true)
  bool qk_norm = false;             // per-head RMSNorm on q and k (Qwen3)
  std::vector<int32_t> eos_token_ids;  // from config.json, when present
  std::optional<int32_t> bos_token_id;
  QuantizationConfig quantization;  // none unless config.json quantizes the checkpoint
};

// Parses config.json text. `source` names the file in error messages.
Result<ModelConfig> parse_model_config(const std::string& json_text, const std::string& source);
Result<ModelConfig> load_model_config(const std::string& model_dir);

// generation_config.json defaults; every field optional.
struct GenerationConfig {
  std::vector<int32_t> eos_token_ids;  // one id or a list in the file
  std::optional<int32_t> bos_token_id;
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<bool> do_sample;
  std::optional<int> max_new_tokens;  // vLLM's default max_tokens when a request gives none
};
Result<GenerationConfig> parse_generation_config(const std::string& json_text, const std::string& source);
// A missing generation_config.json gives an empty GenerationConfig (not an error).
Result<GenerationConfig> load_generation_config(const std::string& model_dir);

// RoPE inverse frequencies for one head: [head_dim / 2], with llama3 scaling applied, computed
// in float32 in the order transformers uses.
std::vector<float> rope_inv_freq(const ModelConfig& config);

// ---------------------------------------------------------------------------------------------
// safetensors: single file or sharded (model.safetensors.index.json), memory-mapped. Every
// offset, shape and dtype is validated against the file before a tensor is handed out.

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  const void* data = nullptr;  // inside the mapping
  size_t nbytes = 0;
  std::string file;            // which file holds it (for error messages)
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> open(const std::string& path);
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::string& path() const { return path_; }
  size_t size() const;

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorInfo> tensors_;
  friend struct SafetensorsParser;
};

// All the tensors of a checkpoint directory, whichever files hold them.
class Checkpoint {
 public:
  // Opens model.safetensors, or the shards listed in model.safetensors.index.json.
  static Result<std::unique_ptr<Checkpoint>> open(const std::string& model_dir);
  // Errors name the tensor and the file; `expected` (if rank > 0) must match exactly.
  Result<TensorInfo> get(const std::string& name, const Shape& expected = Shape()) const;
  bool contains(const std::string& name) const;
  std::vector<std::string> names() const;
  size_t total_bytes() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*> index_;
};

// ---------------------------------------------------------------------------------------------
// Tensor parallelism (Megatron-style): rank `rank` of `size` holds q/k/v split by heads and
// gate/up by rows (column-parallel), o_proj and down split by input columns (row-parallel: their
// partial products are summed over the ranks by one all-reduce each), the embedding and lm_head
// split by vocabulary rows (vLLM's VocabParallelEmbedding / ParallelLMHead: the partial
// embeddings are all-reduced, the logit slices all-gathered), and the norms and q/k norms whole.

struct TensorParallel {
  int rank = 0;
  int size = 1;
};

// One rank's share of the heads and of the MLP.
struct ShardSizes {
  int64_t num_heads = 0, q_head_begin = 0;     // num_heads / size q heads from rank * that
  // num_kv_heads / size KV heads; one, replicated, when the ranks outnumber them (then
  // size / num_kv_heads ranks share each, as their q heads do).
  int64_t num_kv_heads = 0, kv_head_begin = 0;
  int64_t intermediate_size = 0, intermediate_begin = 0;
  // The rank's rows of the embedding and lm_head: ceil(vocab / size) from rank * that, of the
  // vocabulary padded to a multiple of the ranks (vLLM pads too); rows past the real vocabulary
  // (only on the last ranks, fewer than `size` in all) hold zeros, and their logits are dropped
  // by the gather. The whole vocabulary at size 1.
  int64_t vocab_size = 0, vocab_begin = 0;
};

// ok, or an error naming the sizes that do not split over `size` ranks: the q heads and the
// intermediate size must divide by it, the KV heads divide it or by it.
Status check_tensor_parallel(const ModelConfig& config, int size);
// Rank tp.rank's share (check_tensor_parallel first; the whole model at size 1).
ShardSizes shard_sizes(const ModelConfig& config, TensorParallel tp);

// ---------------------------------------------------------------------------------------------
// The decoder.

// Called while weights load: bytes done of bytes total, and the file being read.
using LoadProgress = std::function<void(size_t done, size_t total, const std::string& file)>;

struct LayerWeights {
  Tensor input_norm;      // [hidden]
  Linear qkv;             // [(Hq + 2*Hkv) * head_dim, hidden] (+ bias, Qwen2): q, k, v fused at load
  Tensor q_norm;          // [head_dim] (Qwen3) or undefined
  Tensor k_norm;          // [head_dim] (Qwen3) or undefined
  Linear o_proj;          // [hidden, Hq * head_dim]
  Tensor post_attn_norm;  // [hidden]
  Linear gate_up;         // [2 * intermediate, hidden]: gate rows then up rows, fused at load
  Linear down;            // [hidden, intermediate]
  // The FP8 KV cache's scales as the checkpoint holds them (k = fp8 * k_scale), 0 where it holds
  // none; used with --kv-cache-dtype fp8 only.
  float k_scale = 0.f, v_scale = 0.f;
};

struct ModelWeights {
  Tensor embed;       // [vocab, hidden]; a tensor-parallel rank's [shard vocab_size, hidden]
  std::vector<LayerWeights> layers;
  Tensor final_norm;  // [hidden]
  Linear lm_head;     // [vocab, hidden] (shares storage with embed when tied); a rank's slice, like embed
  Tensor inv_freq;    // [head_dim / 2] fp32
};

// Reads every weight from the checkpoint into the backend (fusing q/k/v and gate/up); under
// tensor parallelism only rank tp.rank's slice of each tensor is read.
Result<ModelWeights> load_weights(const ModelConfig& config, const Checkpoint& checkpoint,
                                  Backend& backend, const LoadProgress& progress = nullptr, TensorParallel tp = {});

// --quantization fp8: quantizes every layer Linear the checkpoint holds in a float dtype (per
// output channel; inputs dynamic per token) through the backend; lm_head and the embedding stay.
Status quantize_weights_fp8(ModelWeights& weights, Backend& backend);

// Named configurations of published models, for benchmarks that need no checkpoint:
// "llama-3-8b", "llama-3-70b", "mistral-7b" (v0.3), "qwen2.5-7b".
Result<ModelConfig> builtin_model_config(const std::string& name);
std::vector<std::string> builtin_model_names();
std::string builtin_model_names_text();  // "llama-3-8b, llama-3-70b, ...", for help and errors

// Elements of every weight the model holds (q/k/v and gate/up fused, a tied lm_head shared with
// the embedding, RoPE frequencies), for sizing memory before anything is loaded; tensor-parallel
// rank tp.rank's share (its slices and the replicated weights) where tp.size > 1.
int64_t num_parameters(const ModelConfig& config, TensorParallel tp = {});
// Of those, the layer Linears' that an FP8 checkpoint holds and a GPU with FP8 GEMMs keeps in one
// byte each: those quantized per tensor or per channel (block-scaled ones run dequantized), not
// ignored, of shapes the FP8 GEMM takes (in % 16, out % 8). 0 for a float checkpoint, and for
// --quantization fp8, which loads the float weights before it quantizes them. Rank tp.rank's
// share where tp.size > 1.
int64_t num_fp8_parameters(const ModelConfig& config, TensorParallel tp = {});

// Weights drawn on the backend (N(0, 0.02) projections, norms near 1), fused like loaded ones.
// A tensor-parallel rank draws its slices from seeds of its own: the ranks make a model of the
// same shape and statistics, not the one an unsharded draw makes.
Result<ModelWeights> random_weights(const ModelConfig& config, Backend& backend, uint64_t seed, TensorParallel tp = {});

// Scratch activations for up to max_tokens tokens per step (dim 0 of each) and max_logits logit
// rows.
struct Activations {
  Tensor residual;  // [max_tokens, hidden]
  Tensor normed;    // [max_tokens, hidden]
  Tensor qkv;       // [max_tokens, (Hq + 2*Hkv) * head_dim]
  Tensor attn;      // [max_tokens, Hq * head_dim]
  Tensor delta;     // [max_tokens, hidden]: a block's output, added to the residual by the next norm
  Tensor gate_up;   // [max_tokens, 2 * intermediate]
  Tensor mlp;       // [max_tokens, intermediate]
  Tensor last;      // [max_logits, hidden]
  Tensor logits;    // [max_logits, vocab] fp32 (every rank's, gathered, under tensor parallelism)
  Tensor logits_shard;  // [max_logits, shard vocab_size] fp32: the rank's slice (tensor parallelism only)
  // The fp8 input of the linear after a norm or SiLU·up that quantizes for it
  // (Backend::fuses_fp8_input); undefined when no linear takes one.
  Tensor fp8_q;       // [max_tokens * max_in] fp8 e4m3, viewed as [T, in]
  Tensor fp8_scales;  // [2 * max_tokens] fp32: the norms' rows, then SiLU·up's
};

class Model {
 public:
  // Loads config, checkpoint and weights from a Hugging Face model directory.
  // quantize_fp8: --quantization fp8 (quantize_weights_fp8 after loading).
  // tp: the rank's shard of a tensor-parallel model (set_communicator before the first step).
  static Result<std::unique_ptr<Model>> load(const std::string& model_dir, Backend& backend,
                                             const LoadProgress& progress = nullptr, bool quantize_fp8 = false,
                                             TensorParallel tp = {});
  // Builds a model around weights made elsewhere (random weights for benchmarks, tests).
  Model(ModelConfig config, ModelWeights weights, Backend& backend, TensorParallel tp = {});

  // The checkpoint's config (whole-model sizes; the rank's share is shard()).
  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  Backend& backend() const { return backend_; }
  // The heads this rank attends with (all of them at tensor-parallel size 1).
  AttentionShape attention_shape() const;
  const TensorParallel& tensor_parallel() const { return tp_; }
  const ShardSizes& shard() const { return shard_; }
  // The rank's side of the all-reduces after o_proj and down (tensor-parallel size > 1 only).
  void set_communicator(Communicator* comm) { comm_ = comm; }
  Communicator* communicator() const { return comm_; }

  // Sizes the activations (once, before any step: captured graphs refer to these buffers).
  Status reserve(int64_t max_tokens, int64_t max_logits);
  int64_t max_tokens() const { return act_.residual.defined() ? act_.residual.dim(0) : 0; }
  int64_t max_logits() const { return reserved_logits_; }
  // One step as begin_step() planned it. The logits of the plan's logit rows land in logits().
  Status forward(const StepPlan& plan, KvCacheTensors& cache);
  // The logits of the last forward (or of a replayed graph of one): [rows, vocab] fp32.
  Tensor logits(int64_t rows) const { return act_.logits.slice_rows(0, rows); }
  // Linears whose input the norm or SiLU·up before them quantizes, and linears whose scales the
  // fused op after them applies (after reserve()).
  int fp8_fused_inputs() const;
  int fp8_deferred_scales() const;

 private:
  // Which op wrote a linear's fp8 input (Fp8Activation) where it was fused: none (x only), a norm,
  // SiLU·up.
  enum class Fp8Producer { kNone, kNorm, kSiluMul };
  // delta_scales: o_proj's / down's scales where they are left to the next norm.
  void attention_block(const StepPlan& plan, int layer, int64_t num_tokens, KvCacheTensors& cache,
                       Fp8DeferredScales& delta_scales);
  void mlp_block(int layer, int64_t num_tokens, Fp8DeferredScales& delta_scales);
  Status reserve_fp8_inputs(int64_t max_tokens, int64_t max_logits);
  Status reserve_fused_fp8_inputs(int64_t max_tokens, Activations& a);
  // A block's pre-norm: into act_.normed, or quantized for `consumer` where the backend fuses it
  // (then delta may be a raw FP8 product with its scales pending).
  void pre_norm(Tensor& residual, const Tensor* delta, const Fp8DeferredScales& delta_scales, const Tensor& weight,
                const Linear& consumer, int64_t t);
  // out = x @ w^T, from x or from the fp8 input `producer` wrote for w; scales left in *deferred
  // where the backend defers them.
  void linear(const Tensor& x, Fp8Producer producer, const Linear& w, Tensor& out, Fp8DeferredScales* deferred);
  // SiLU·up, likewise (gate_up may be a raw FP8 product).
  void activation(const Tensor& gate_up, const Fp8DeferredScales& gate_up_scales, const Linear& consumer, Tensor& out);
  // Sums a row-parallel linear's partial output over the ranks (tensor parallelism only).
  void all_reduce(Tensor& partial);
  // The rows' logits over the whole vocabulary from every rank's slice (tensor parallelism only).
  void all_gather_logits(const Tensor& shard, Tensor& logits);
  bool fuses_input(const Linear& w) const;
  bool defers_scales(const Linear& w, const Linear* next_consumer) const;
  const Linear* next_qkv(int layer) const;  // the next layer's qkv, or nullptr after the last
  // [t, cols] views of act_.fp8_q and of the producer's half of act_.fp8_scales.
  Fp8Activation fp8_input(int64_t t, int64_t cols, Fp8Producer producer) const;

  ModelConfig config_;
  ModelWeights weights_;
  Backend& backend_;
  TensorParallel tp_;
  ShardSizes shard_;
  Communicator* comm_ = nullptr;  // tp_.size > 1
  Status comm_error_;             // the step's first all-reduce failure, returned by forward()
  Activations act_;
  int64_t reserved_logits_ = 0;
};

}  // namespace tk
