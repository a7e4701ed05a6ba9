// The Hopper prefill kernel (attention_prefill_sm90.cu), behind prefill_attention's checks.
// Private to src/kernels.
#pragma once

#include <cuda_runtime.h>

#include "kernels/kernels.h"

namespace tk::kernels {

// head_dim 128 on a compute-capability-9 device (wgmma needs sm_90a), bf16/fp16 KV cache only.
bool prefill_sm90_supports(const PagedAttentionParams& p);
// p already passed prefill_attention's validation.
void prefill_sm90(const PagedAttentionParams& p, cudaStream_t stream);

}  // namespace tk::kernels
