// Launch checks shared by decode_attention and prefill_attention: one place decides what the
// attention kernels accept, each kernel adds only its own limits.
#include "attention_checks.h"

#include <algorithm>
#include <cmath>

namespace tk::kernels {

bool is_supported_head_dim(int head_dim) {
  return std::find(kSupportedHeadDims.begin(), kSupportedHeadDims.end(), head_dim) != kSupportedHeadDims.end();
}

std::string supported_head_dims_text() {
  std::string s;
  for (int d : kSupportedHeadDims) s += (s.empty() ? "" : ", ") + std::to_string(d);
  return s;
}

Status check_paged_attention(const PagedAttentionParams& p, const std::string& who) {
  if (p.dtype != DType::kBF16 && p.dtype != DType::kF16)
    return unsupported(who + "dtype " + dtype_name(p.dtype) + " (bf16 or fp16)");
  if (!is_supported_head_dim(p.head_dim))
    return unsupported(who + "head_dim " + std::to_string(p.head_dim) + " (" + supported_head_dims_text() + ")");
  if (p.page_size < 1 || p.page_size > 1024 || (p.page_size & (p.page_size - 1)) != 0)
    return unsupported(who + "page_size " + std::to_string(p.page_size) + " (a power of two up to 1024)");
  if (p.num_q_heads <= 0 || p.num_kv_heads <= 0 || p.num_q_heads % p.num_kv_heads != 0)
    return invalid_argument(who + "num_q_heads " + std::to_string(p.num_q_heads) +
                            " is not a multiple of num_kv_heads " + std::to_string(p.num_kv_heads));
  if (!(p.scale > 0.f) || !std::isfinite(p.scale)) return invalid_argument(who + "scale must be positive and finite");
  if (p.kv_quant.fp8 && !(p.kv_quant.k_scale > 0.f && std::isfinite(p.kv_quant.k_scale) &&
                          p.kv_quant.v_scale > 0.f && std::isfinite(p.kv_quant.v_scale)))
    return invalid_argument(who + "fp8 KV cache: k_scale and v_scale must be positive and finite");
  if (p.max_context_len < p.max_query_len || p.max_pages_per_seq <= 0 ||
      static_cast<int64_t>(p.max_pages_per_seq) * p.page_size < p.max_context_len)
    return invalid_argument(who + "max_context_len must lie in [max_query_len, max_pages_per_seq * page_size]");
  if (!p.q || !p.k_cache || !p.v_cache || !p.out || !p.query_start || !p.context_lens || !p.page_table)
    return invalid_argument(who + "null pointer");
  return Status::ok_status();
}

}  // namespace tk::kernels
