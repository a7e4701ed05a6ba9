// The CUDA backend: memory and the per-layer ops, each a thin adapter from Tensors and the
// uploaded step metadata to a kernel launcher (src/kernels) or a cuBLASLt GEMM (src/gemm).
#include <cstring>

#include "cuda_backend_impl.h"

namespace tk {

std::vector<int> cuda_supported_head_dims() {
  return {kernels::kSupportedHeadDims.begin(), kernels::kSupportedHeadDims.end()};
}

Status cuda_device_supported(int device) {
  if (cuda_device_count() <= device) return unsupported("no CUDA device " + std::to_string(device));
  DeviceInfo info = device_info(device);
  if (info.cc_major != 9 || info.cc_minor != 0)
    return unsupported("this build has GPU kernels for sm_90a (H100/H200) only; the device is " + info.name + " (sm_" +
                       std::to_string(info.cc_major) + std::to_string(info.cc_minor) + ")");
  return Status::ok_status();
}

Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options) {
  TK_RETURN_IF_ERROR(cuda_device_supported(options.device));
  CUDA_CHECK(cudaSetDevice(options.device));
  if (options.dtype != DType::kBF16 && options.dtype != DType::kF16)
    return unsupported(std::string("CUDA backend dtype ") + dtype_name(options.dtype));
  TK_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create());
  gemm->set_autotune(options.gemm_autotune);
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return std::unique_ptr<Backend>(new CudaBackend(options, std::move(gemm), stream));
}

CudaBackend::CudaBackend(const CudaBackendOptions& options, std::unique_ptr<GemmRunner> gemm, cudaStream_t stream)
    : device_(options.device), dtype_(options.dtype), info_(device_info(options.device)), gemm_(std::move(gemm)),
      stream_(stream) {}

CudaBackend::~CudaBackend() {
  free_sampling_host();
  free_upload_staging();
  if (stream_) cudaStreamDestroy(stream_);
}

Status CudaBackend::configure(const AttentionShape& s, int page_size) {
  free_upload_staging();  // the weights are in (a later upload makes the stages again)
  if (!kernels::is_supported_head_dim(s.head_dim))
    return unsupported("the CUDA kernels support head_dim " + kernels::supported_head_dims_text() + ", not " +
                       std::to_string(s.head_dim));
  if (s.num_kv_heads <= 0 || s.num_q_heads % s.num_kv_heads != 0) return unsupported("q heads must be a multiple of kv heads");
  if (!is_supported_page_size(page_size))
    return unsupported("page size " + std::to_string(page_size) + " (supported: " + supported_page_sizes_text() + ")");
  attn_shape_ = s;
  page_size_ = page_size;
  return Status::ok_status();
}

Status CudaBackend::take_error() {
  Status s = error_;
  error_ = Status();
  return s;
}

Result<Tensor> CudaBackend::alloc(DType dtype, Shape shape) { return cuda_alloc_tensor(dtype, shape); }

Status CudaBackend::download(const Tensor& src, void* dst) {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  CUDA_CHECK(cudaMemcpy(dst, src.data(), src.nbytes(), cudaMemcpyDeviceToHost));
  return Status::ok_status();
}

Status CudaBackend::copy_from_host(const void* src, Tensor& dst) {
  // On the stream, behind what is queued: with overlap scheduling a step still out may read the
  // memory this overwrites (a token-history row handed to a new sequence).
  CUDA_CHECK(cudaMemcpyAsync(dst.data(), src, dst.nbytes(), cudaMemcpyHostToDevice, stream_));
  CUDA_CHECK(cudaStreamSynchronize(stream_));  // src may go away
  return Status::ok_status();
}

size_t CudaBackend::free_memory() const { return device_free_memory(); }

HeadLayout CudaBackend::layout(const Tensor& qkv, const AttentionShape& s) {
  HeadLayout h;
  h.num_tokens = qkv.dim(0);
  h.qkv_stride = qkv.stride(0);
  h.num_q_heads = s.num_q_heads, h.num_kv_heads = s.num_kv_heads, h.head_dim = s.head_dim;
  return h;
}

static const CudaStepPlan& cuda_plan(const StepPlan& plan) { return static_cast<const CudaStepPlan&>(plan); }

static kernels::KvCacheQuant kv_quant(const KvCacheTensors& cache, int layer) {
  kernels::KvCacheQuant q;
  if (!cache.fp8()) return q;
  q.fp8 = true, q.k_scale = cache.k_scale.at(layer), q.v_scale = cache.v_scale.at(layer);
  return q;
}

void CudaBackend::embedding(const StepPlan& plan, const Tensor& table, Tensor& out) {
  embedding_shard(plan, table, 0, out);  // the whole vocabulary is the slice from id 0
}

void CudaBackend::embedding_shard(const StepPlan& plan, const Tensor& table, int64_t vocab_begin, Tensor& out) {
  kernels::EmbeddingParams p;
  p.table = table.data(), p.ids = cuda_plan(plan).token_ids, p.out = out.data();
  p.num_tokens = out.dim(0), p.hidden = table.dim(1), p.vocab = table.dim(0), p.dtype = dtype_;
  p.vocab_begin = vocab_begin;
  record(kernels::embedding(p, stream_));
}

void CudaBackend::rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  kernels::RmsNormParams p;
  p.x = x.data(), p.weight = weight.data(), p.out = out.data();
  p.num_tokens = x.dim(0), p.hidden = x.dim(1), p.eps = eps, p.dtype = dtype_;
  record(kernels::rmsnorm(p, stream_));
}

void CudaBackend::add_rmsnorm(Tensor& residual, const Tensor& delta, const Tensor& weight, float eps, Tensor& out) {
  kernels::RmsNormParams p;
  p.residual = residual.data(), p.delta = delta.data(), p.weight = weight.data(), p.out = out.data();
  p.num_tokens = residual.dim(0), p.hidden = residual.dim(1), p.eps = eps, p.dtype = dtype_;
  record(kernels::rmsnorm(p, stream_));
}

// The norms and SiLU·up writing the fp8 input of the FP8 linear after them (and no compute-dtype
// output): kernels::rmsnorm / silu_mul with q set, the consumer's amax clamp.
bool CudaBackend::fp8_output_fits(const Fp8Activation& out, int64_t rows, int64_t cols) {
  return out.q.dtype() == DType::kF8E4M3 && out.q.dim(0) == rows && out.q.dim(1) == cols && out.q.is_contiguous() &&
         out.scales.dtype() == DType::kF32 && out.scales.dim(0) == rows;
}

void CudaBackend::rmsnorm_fp8(const Tensor& x, const Tensor& weight, float eps, const Linear& consumer,
                              Fp8Activation& out) {
  TK_CHECK(fp8_output_fits(out, x.dim(0), x.dim(1)) && fuses_fp8_input(consumer));
  kernels::RmsNormParams p;
  p.x = x.data(), p.weight = weight.data(), p.q = out.q.data(), p.q_scales = out.scales.data_as<float>();
  p.amax_ub = consumer.scheme.input_scale_ub;
  p.num_tokens = x.dim(0), p.hidden = x.dim(1), p.eps = eps, p.dtype = dtype_;
  record(kernels::rmsnorm(p, stream_));
}

// Pending scales of an FP8 linear's raw output, as the kernels take them.
static kernels::Fp8ProductScales product_scales(const Fp8DeferredScales& s, int64_t rows, int64_t cols) {
  if (!s.pending()) return {};
  TK_CHECK(s.x_scales.dim(0) == rows && s.w_scales.dim(0) == cols && s.x_scales.dtype() == DType::kF32);
  return {s.x_scales.data_as<float>(), s.w_scales.data_as<float>(), s.gain};
}

void CudaBackend::add_rmsnorm_fp8(Tensor& residual, const Tensor& delta, const Fp8DeferredScales& delta_scales,
                                  const Tensor& weight, float eps, const Linear& consumer, Fp8Activation& out) {
  TK_CHECK(fp8_output_fits(out, residual.dim(0), residual.dim(1)) && fuses_fp8_input(consumer));
  kernels::RmsNormParams p;
  p.delta_scales = product_scales(delta_scales, residual.dim(0), residual.dim(1));
  p.residual = residual.data(), p.delta = delta.data(), p.weight = weight.data();
  p.q = out.q.data(), p.q_scales = out.scales.data_as<float>(), p.amax_ub = consumer.scheme.input_scale_ub;
  p.num_tokens = residual.dim(0), p.hidden = residual.dim(1), p.eps = eps, p.dtype = dtype_;
  record(kernels::rmsnorm(p, stream_));
}

void CudaBackend::silu_mul_fp8(const Tensor& gate_up, const Fp8DeferredScales& gate_up_scales, const Linear& consumer,
                               Fp8Activation& out) {
  const int64_t inter = gate_up.dim(1) / 2;
  TK_CHECK(fp8_output_fits(out, gate_up.dim(0), inter) && fuses_fp8_input(consumer));
  kernels::SiluMulParams p;
  p.gate_up_scales = product_scales(gate_up_scales, gate_up.dim(0), gate_up.dim(1));
  p.gate_up = gate_up.data(), p.num_tokens = gate_up.dim(0), p.inter = inter, p.dtype = dtype_;
  p.q = out.q.data(), p.q_scales = out.scales.data_as<float>(), p.amax_ub = consumer.scheme.input_scale_ub;
  record(kernels::silu_mul(p, stream_));
}

void CudaBackend::matmul(const Tensor& x, const Linear& w, Tensor& out) {
  if (w.quantizes_input()) return record(matmul_fp8(x, w, out));  // cuda_fp8.cpp
  GemmArgs g;
  g.x = x.data(), g.w = w.weight.data(), g.bias = w.bias.defined() ? w.bias.data() : nullptr, g.out = out.data();
  g.m = x.dim(0), g.n = w.out_features(), g.k = w.in_features();
  g.ldx = x.stride(0), g.ldo = out.stride(0);
  g.in_dtype = x.dtype(), g.out_dtype = out.dtype();
  record(gemm_->matmul(g, stream_));
}

void CudaBackend::qk_norm(Tensor& qkv, const Tensor& qw, const Tensor& kw, float eps, const AttentionShape& s) {
  kernels::QkNormParams p;
  p.qkv = qkv.data(), p.q_weight = qw.data(), p.k_weight = kw.data(), p.heads = layout(qkv, s), p.eps = eps, p.dtype = dtype_;
  record(kernels::qk_norm(p, stream_));
}

void CudaBackend::rope_kv_store(const StepPlan& plan, Tensor& qkv, const Tensor& inv_freq, KvCacheTensors& cache,
                                int layer, const AttentionShape& s) {
  const CudaStepPlan& m = cuda_plan(plan);
  kernels::RopeKvStoreParams p;
  p.qkv = qkv.data(), p.positions = m.positions, p.inv_freq = inv_freq.data_as<float>();
  p.slot_mapping = m.slot_mapping, p.k_cache = cache.k[layer].data(), p.v_cache = cache.v[layer].data();
  p.page_size = cache.page_size(), p.num_pages = cache.num_pages(), p.heads = layout(qkv, s), p.dtype = dtype_;
  p.kv_quant = kv_quant(cache, layer);
  record(kernels::rope_kv_store(p, stream_));
}

void CudaBackend::attention(const StepPlan& plan, const Tensor& qkv, const KvCacheTensors& cache, int layer,
                            const AttentionShape& s, Tensor& out) {
  const CudaStepPlan& m = cuda_plan(plan);
  kernels::PagedAttentionParams p;
  p.q = qkv.data(), p.q_stride = qkv.stride(0);
  p.k_cache = cache.k[layer].data(), p.v_cache = cache.v[layer].data(), p.out = out.data();
  p.max_pages_per_seq = m.page_stride, p.page_size = cache.page_size();
  p.num_q_heads = s.num_q_heads, p.num_kv_heads = s.num_kv_heads, p.head_dim = s.head_dim, p.scale = s.scale;
  p.dtype = dtype_;
  p.kv_quant = kv_quant(cache, layer);
  // Token indices in query_start are absolute, so a subset of sequences is a pointer offset.
  if (m.num_decode_seqs > 0) {
    kernels::PagedAttentionParams d = p;
    d.query_start = m.query_start, d.context_lens = m.context_lens, d.page_table = m.page_table;
    d.num_seqs = m.num_decode_seqs, d.num_tokens = m.decode_tokens;
    d.max_query_len = m.decode_max_query, d.max_context_len = m.decode_max_context;
    record(kernels::decode_attention(d, m.decode, m.attn_workspace.data(), stream_));
  }
  const int num_prefill = m.num_seqs - m.num_decode_seqs;
  if (num_prefill > 0) {
    kernels::PagedAttentionParams f = p;
    f.query_start = m.query_start + m.num_decode_seqs, f.context_lens = m.context_lens + m.num_decode_seqs;
    f.page_table = m.page_table + static_cast<int64_t>(m.num_decode_seqs) * m.page_stride;
    f.num_seqs = num_prefill, f.num_tokens = m.num_tokens - m.decode_tokens;
    f.max_query_len = m.prefill_max_query, f.max_context_len = m.prefill_max_context;
    record(kernels::prefill_attention(f, stream_));
  }
}

void CudaBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  kernels::SiluMulParams p;
  p.gate_up = gate_up.data(), p.out = out.data(), p.num_tokens = gate_up.dim(0), p.inter = out.dim(1), p.dtype = dtype_;
  record(kernels::silu_mul(p, stream_));
}

void CudaBackend::gather_logit_rows(const StepPlan& plan, const Tensor& x, Tensor& out) {
  kernels::GatherRowsParams p;
  p.x = x.data(), p.rows = cuda_plan(plan).logit_rows, p.out = out.data(), p.num_rows = out.dim(0), p.hidden = x.dim(1);
  p.dtype = dtype_;
  record(kernels::gather_rows(p, stream_));
}

Status CudaBackend::fill_random(Tensor& t, uint64_t seed, float mean, float std) {
  return kernels::fill_random(t.data(), t.dtype(), t.numel(), seed, mean, std, stream_);
}

}  // namespace tk
