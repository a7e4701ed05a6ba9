// The CUDA backend: memory and the per-layer ops, each a thin adapter from Tensors and the
// uploaded step metadata to a kernel launcher (src/kernels) or a cuBLASLt GEMM (src/gemm).
#include <cstring>

#include "cuda_backend_impl.h"

namespace tk {

Result<std::unique_ptr<Backend>> make_cuda_backend(const CudaBackendOptions& options) {
  if (cuda_device_count() <= options.device) return unsupported("no CUDA device " + std::to_string(options.device));
  CUDA_CHECK(cudaSetDevice(options.device));
  DeviceInfo info = device_info(options.device);
  if (info.cc_major != 9 || info.cc_minor != 0)
    return unsupported("this build has GPU kernels for sm_90a (H100/H200) only; the device is " + info.name + " (sm_" +
                       std::to_string(info.cc_major) + std::to_string(info.cc_minor) + ")");
  if (options.dtype != DType::kBF16 && options.dtype != DType::kF16)
    return unsupported(std::string("CUDA backend dtype ") + dtype_name(options.dtype));
  TK_ASSIGN_OR_RETURN(auto gemm, GemmRunner::create());
  cudaStream_t stream = nullptr;
  CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  return std::unique_ptr<Backend>(new CudaBackend(options, std::move(gemm), stream));
}

CudaBackend::CudaBackend(const CudaBackendOptions& options, std::unique_ptr<GemmRunner> gemm, cudaStream_t stream)
    : options_(options), dtype_(options.dtype), info_(device_info(options.device)), gemm_(std::move(gemm)), stream_(stream) {}

CudaBackend::~CudaBackend() {
  clear_graphs();
  if (meta_host_) cudaFreeHost(meta_host_);
  if (stream_) cudaStreamDestroy(stream_);
}

Status CudaBackend::configure(const AttentionShape& s, int page_size) {
  if (s.head_dim != 64 && s.head_dim != 128 && s.head_dim != 256)
    return unsupported("the CUDA kernels support head_dim 64, 128 and 256, not " + std::to_string(s.head_dim));
  if (s.num_kv_heads <= 0 || s.num_q_heads % s.num_kv_heads != 0) return unsupported("q heads must be a multiple of kv heads");
  if (page_size != 1 && page_size != 8 && page_size != 16 && page_size != 32 && page_size != 64)
    return unsupported("the CUDA kernels support page sizes 1, 8, 16, 32 and 64, not " + std::to_string(page_size));
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

Result<Tensor> CudaBackend::upload(const Tensor& host) {
  TK_ASSIGN_OR_RETURN(Tensor t, cuda_alloc_tensor(dtype_, host.shape()));
  const size_t n = static_cast<size_t>(host.numel());
  if (host.dtype() == dtype_) {
    CUDA_CHECK(cudaMemcpy(t.data(), host.data(), t.nbytes(), cudaMemcpyHostToDevice));
    return t;
  }
  // Convert on the host in slices so that a large tensor never needs a second full copy.
  constexpr size_t kSlice = 1 << 22;
  std::vector<float> f32(std::min(n, kSlice));
  std::vector<uint16_t> half(f32.size());
  const char* src = static_cast<const char*>(host.data());
  for (size_t off = 0; off < n; off += kSlice) {
    const size_t len = std::min(kSlice, n - off);
    convert_to_f32(src + off * dtype_size(host.dtype()), host.dtype(), f32.data(), len);
    for (size_t i = 0; i < len; ++i) half[i] = dtype_ == DType::kBF16 ? f32_to_bf16(f32[i]) : f32_to_f16(f32[i]);
    CUDA_CHECK(cudaMemcpy(static_cast<uint16_t*>(t.data()) + off, half.data(), len * 2, cudaMemcpyHostToDevice));
  }
  return t;
}

Status CudaBackend::download(const Tensor& src, void* dst) {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  CUDA_CHECK(cudaMemcpy(dst, src.data(), src.nbytes(), cudaMemcpyDeviceToHost));
  return Status::ok_status();
}

Status CudaBackend::copy_from_host(const void* src, Tensor& dst) {
  CUDA_CHECK(cudaMemcpy(dst.data(), src, dst.nbytes(), cudaMemcpyHostToDevice));
  return Status::ok_status();
}

Result<KvCache> CudaBackend::alloc_kv_cache(int num_layers, int num_pages, int page_size, int num_kv_heads, int head_dim) {
  KvCache cache;
  cache.num_pages = num_pages, cache.page_size = page_size, cache.num_kv_heads = num_kv_heads, cache.head_dim = head_dim;
  Shape shape{num_pages, num_kv_heads, page_size, head_dim};
  for (int l = 0; l < num_layers; ++l) {
    TK_ASSIGN_OR_RETURN(Tensor k, cuda_alloc_tensor(dtype_, shape));
    TK_ASSIGN_OR_RETURN(Tensor v, cuda_alloc_tensor(dtype_, shape));
    cache.k.push_back(k);
    cache.v.push_back(v);
  }
  return cache;
}

size_t CudaBackend::free_memory() const { return device_free_memory(); }

kernels::HeadLayout CudaBackend::layout(const Tensor& qkv, const AttentionShape& s) const {
  kernels::HeadLayout h;
  h.num_tokens = meta_.num_tokens;
  h.qkv_stride = qkv.stride(0);
  h.num_q_heads = s.num_q_heads, h.num_kv_heads = s.num_kv_heads, h.head_dim = s.head_dim;
  return h;
}

void CudaBackend::embedding(const Tensor& table, Tensor& out) {
  kernels::EmbeddingParams p;
  p.table = table.data(), p.ids = meta_.token_ids, p.out = out.data();
  p.num_tokens = meta_.num_tokens, p.hidden = table.dim(1), p.vocab = table.dim(0), p.dtype = dtype_;
  record(kernels::embedding(p, stream_));
}

void CudaBackend::rmsnorm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  kernels::RmsNormParams p;
  p.x = x.data(), p.weight = weight.data(), p.out = out.data();
  p.num_tokens = meta_.num_tokens, p.hidden = x.dim(1), p.eps = eps, p.dtype = dtype_;
  record(kernels::rmsnorm(p, stream_));
}

void CudaBackend::add_rmsnorm(Tensor& residual, const Tensor& delta, const Tensor& weight, float eps, Tensor& out) {
  kernels::RmsNormParams p;
  p.residual = residual.data(), p.delta = delta.data(), p.weight = weight.data(), p.out = out.data();
  p.num_tokens = meta_.num_tokens, p.hidden = residual.dim(1), p.eps = eps, p.dtype = dtype_;
  record(kernels::rmsnorm(p, stream_));
}

void CudaBackend::matmul(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& out) {
  GemmArgs g;
  g.x = x.data(), g.w = w.data(), g.bias = bias ? bias->data() : nullptr, g.out = out.data();
  g.m = x.dim(0), g.n = w.dim(0), g.k = w.dim(1);
  g.ldx = x.stride(0), g.ldo = out.stride(0);
  g.in_dtype = x.dtype(), g.out_dtype = out.dtype();
  record(gemm_->matmul(g, stream_));
}

void CudaBackend::qk_norm(Tensor& qkv, const Tensor& qw, const Tensor& kw, float eps, const AttentionShape& s) {
  kernels::QkNormParams p;
  p.qkv = qkv.data(), p.q_weight = qw.data(), p.k_weight = kw.data(), p.heads = layout(qkv, s), p.eps = eps, p.dtype = dtype_;
  record(kernels::qk_norm(p, stream_));
}

void CudaBackend::rope_kv_store(Tensor& qkv, const Tensor& inv_freq, KvCache& cache, int layer, const AttentionShape& s) {
  kernels::RopeKvStoreParams p;
  p.qkv = qkv.data(), p.positions = meta_.positions, p.inv_freq = inv_freq.data_as<float>();
  p.slot_mapping = meta_.slot_mapping, p.k_cache = cache.k[layer].data(), p.v_cache = cache.v[layer].data();
  p.page_size = cache.page_size, p.num_pages = cache.num_pages, p.heads = layout(qkv, s), p.dtype = dtype_;
  record(kernels::rope_kv_store(p, stream_));
}

void CudaBackend::attention(const Tensor& qkv, const KvCache& cache, int layer, const AttentionShape& s, Tensor& out) {
  kernels::PagedAttentionParams p;
  p.q = qkv.data(), p.q_stride = qkv.stride(0);
  p.k_cache = cache.k[layer].data(), p.v_cache = cache.v[layer].data(), p.out = out.data();
  p.query_start = meta_.query_start, p.context_lens = meta_.context_lens, p.page_table = meta_.page_table;
  p.max_pages_per_seq = meta_.page_cap, p.num_seqs = meta_.num_seqs, p.num_tokens = meta_.num_tokens;
  p.max_query_len = meta_.max_query_len, p.max_context_len = meta_.max_context_len, p.page_size = cache.page_size;
  p.num_q_heads = s.num_q_heads, p.num_kv_heads = s.num_kv_heads, p.head_dim = s.head_dim, p.scale = s.scale;
  p.dtype = dtype_;
  if (meta_.use_decode_kernel) record(kernels::decode_attention(p, meta_.plan, attn_workspace_.data(), stream_));
  else record(kernels::prefill_attention(p, stream_));
}

void CudaBackend::silu_mul(const Tensor& gate_up, Tensor& out) {
  kernels::SiluMulParams p;
  p.gate_up = gate_up.data(), p.out = out.data(), p.num_tokens = meta_.num_tokens, p.inter = out.dim(1), p.dtype = dtype_;
  record(kernels::silu_mul(p, stream_));
}

void CudaBackend::gather_logit_rows(const Tensor& x, Tensor& out) {
  kernels::GatherRowsParams p;
  p.x = x.data(), p.rows = meta_.logit_rows, p.out = out.data(), p.num_rows = meta_.num_logits, p.hidden = x.dim(1);
  p.dtype = dtype_;
  record(kernels::gather_rows(p, stream_));
}

Status CudaBackend::fill_random(Tensor& t, uint64_t seed, float mean, float std) {
  return kernels::fill_random(t.data(), t.dtype(), t.numel(), seed, mean, std, stream_);
}

Status CudaBackend::synchronize() {
  CUDA_CHECK(cudaStreamSynchronize(stream_));
  return Status::ok_status();
}

}  // namespace tk
