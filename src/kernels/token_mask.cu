// Structured output's token masks: the logits of every token a grammar forbids become -inf before
// sampling. The mask is a bitset per row (bit t of word t / 32 set = token t allowed), made on the
// host while the GPU runs the forward. CPU twin: ref::apply_token_bitmask.
#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {
namespace {

__global__ void token_mask_kernel(float* __restrict__ logits,          // [*, vocab]
                                  const int32_t* __restrict__ rows,    // [num_rows]
                                  const uint32_t* __restrict__ mask,   // [num_rows, words]
                                  int64_t vocab, int words) {
  const int r = blockIdx.y;
  float* row = logits + static_cast<int64_t>(rows[r]) * vocab;
  const uint32_t* m = mask + static_cast<int64_t>(r) * words;
  for (int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; t < vocab;
       t += static_cast<int64_t>(gridDim.x) * blockDim.x)
    if (!((m[t >> 5] >> (t & 31)) & 1u)) row[t] = -INFINITY;
}

}  // namespace

Status apply_token_bitmask(float* logits, int64_t vocab, const int32_t* rows, int num_rows, const uint32_t* bitmask,
                           int words, cudaStream_t stream) {
  if (num_rows < 0 || vocab <= 0) return invalid_argument("apply_token_bitmask: num_rows >= 0 and vocab > 0");
  if (num_rows == 0) return Status::ok_status();
  if (static_cast<int64_t>(words) * 32 < vocab)
    return invalid_argument("apply_token_bitmask: " + std::to_string(words) + " words cannot cover " + std::to_string(vocab) +
                            " tokens");
  if (!logits || !rows || !bitmask) return invalid_argument("apply_token_bitmask: null pointer");
  constexpr int kThreads = 256;
  const dim3 grid(static_cast<unsigned>(std::min<int64_t>((vocab + kThreads - 1) / kThreads, 64)), num_rows);
  token_mask_kernel<<<grid, kThreads, 0, stream>>>(logits, rows, bitmask, vocab, words);
  return detail::launch_status("apply_token_bitmask");
}

}  // namespace tk::kernels
