// Launch checks both attention kernels share (closed-set dtype, head_dim and page size; head
// counts; scale and the FP8 KV cache's scales; page-table capacity; pointers), and the one dispatch from a runtime head_dim to
// the template argument of every head-dim kernel (attention, RoPE, q/k norm). Private to
// src/kernels.
#pragma once

#include <array>
#include <string>
#include <type_traits>

#include "kernels/kernels.h"

namespace tk::kernels {

// `who` prefixes every message, e.g. "decode_attention: ".
Status check_paged_attention(const PagedAttentionParams& p, const std::string& who);

// f(std::integral_constant<int, D>{}) for the head size D == head_dim. Callers have checked
// is_supported_head_dim; each kernel file instantiates exactly the sizes listed here.
template <typename F>
decltype(auto) dispatch_head_dim(int head_dim, F&& f) {
  static_assert(kSupportedHeadDims == std::array<int, 6>{32, 64, 80, 96, 128, 256},
                "dispatch_head_dim must list kSupportedHeadDims");
  switch (head_dim) {
    case 32: return f(std::integral_constant<int, 32>{});
    case 64: return f(std::integral_constant<int, 64>{});
    case 80: return f(std::integral_constant<int, 80>{});
    case 96: return f(std::integral_constant<int, 96>{});
    case 128: return f(std::integral_constant<int, 128>{});
    default: return f(std::integral_constant<int, 256>{});
  }
}

}  // namespace tk::kernels
