// Row gather out[r] = x[rows[r]] (e.g. the last token of each sequence before the LM head),
// 16-byte vectorised. A negative row index writes zeros (rows are device data we cannot check;
// the caller guarantees rows[r] < the number of rows of x).
#include <cstdint>
#include <limits>

#include "common.cuh"
#include "kernels/kernels.h"

namespace tk::kernels {

Status gather_rows(const GatherRowsParams& p, cudaStream_t stream) {
  if (!p.x || !p.rows || !p.out) return invalid_argument("gather_rows: null x, rows or out");
  if (p.num_rows <= 0 || p.hidden <= 0)
    return invalid_argument("gather_rows: num_rows and hidden must be > 0 (got " + std::to_string(p.num_rows) +
                            ", " + std::to_string(p.hidden) + ")");
  if (p.dtype != DType::kBF16 && p.dtype != DType::kF16)
    return unsupported(std::string("gather_rows: dtype ") + dtype_name(p.dtype) + " (bf16 and fp16 only)");
  detail::launch_gather_rows(p.x, p.rows, p.out, p.num_rows, p.hidden, std::numeric_limits<int64_t>::max(),
                             stream);
  return detail::launch_status("gather_rows");
}

}  // namespace tk::kernels
