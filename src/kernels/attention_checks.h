// Launch checks both attention kernels share (closed-set dtype, head_dim and page size; head
// counts; scale; page-table capacity; pointers). Private to src/kernels.
#pragma once

#include <string>

#include "kernels/kernels.h"

namespace tk::kernels {

// `who` prefixes every message, e.g. "decode_attention: ".
Status check_paged_attention(const PagedAttentionParams& p, const std::string& who);

}  // namespace tk::kernels
