// The in-process communicator: tensor-parallel ranks that are threads of one process, on host
// memory. An all-reduce is two barriers: every rank publishes its tensor; then rank r sums slice r
// of every rank's tensor, in rank order, and writes the sum back into all of them (slice r is read
// and written by rank r alone, so no scratch is needed); after the second barrier every tensor
// holds the whole sum. The order of the additions is fixed by the ranks, not by thread timing.
// An all-gather is two barriers too: every rank publishes its slice and its output; then each
// rank copies every rank's slice into its own output, and the second barrier keeps the slices
// alive until all have read them. abort() (a rank that threw) releases the ranks at a barrier and
// fails every later call.
#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "backend/backend.h"

namespace tk {
namespace {

// std::barrier, but abortable: a rank that will never arrive must not keep the others waiting.
class AbortableBarrier {
 public:
  explicit AbortableBarrier(int size) : size_(size) {}
  // True when all `size` ranks arrived; false, at once, once abort() was called.
  bool arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mu_);
    if (aborted_) return false;
    const uint64_t generation = generation_;
    if (++arrived_ == size_) {
      arrived_ = 0, ++generation_;
      all_arrived_.notify_all();
      return true;
    }
    all_arrived_.wait(lock, [&] { return aborted_ || generation_ != generation; });
    return generation_ != generation;
  }
  void abort() {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
    all_arrived_.notify_all();
  }

 private:
  const int size_;
  std::mutex mu_;
  std::condition_variable all_arrived_;
  int arrived_ = 0;
  uint64_t generation_ = 0;  // one per completed barrier
  bool aborted_ = false;
};

struct SharedState {
  explicit SharedState(int size) : barrier(size), data(size, nullptr), numel(size, 0), shapes(size) {}
  AbortableBarrier barrier;
  std::vector<float*> data;     // [size]: each rank's tensor of the current all-reduce, or its x of an all-gather
  std::vector<int64_t> numel;   // [size]
  // An all-gather's: each rank's x shape [rows, cols] and out shape [rows, out_cols] (0 when unusable).
  std::vector<std::array<int64_t, 3>> shapes;  // [size]: rows, cols, out_cols
};

class InProcessCommunicator final : public Communicator {
 public:
  InProcessCommunicator(int rank, std::shared_ptr<SharedState> shared) : rank_(rank), shared_(std::move(shared)) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(shared_->data.size()); }

  Status all_reduce_sum(Tensor& x) override {
    SharedState& s = *shared_;
    const bool usable = x.dtype() == DType::kF32 && x.device() == Device::kCpu && x.is_contiguous();
    s.data[rank_] = usable ? x.data_as<float>() : nullptr;
    s.numel[rank_] = x.numel();
    if (!s.barrier.arrive_and_wait()) return aborted("all_reduce_sum");
    // Every rank sees the same published sizes, so every rank takes the same branch: an error
    // leaves no rank waiting at a barrier the others skipped.
    bool same = true;
    for (int r = 0; r < size(); ++r) same = same && s.data[r] != nullptr && s.numel[r] == s.numel[0];
    if (same) sum_my_slice(s);
    if (!s.barrier.arrive_and_wait()) return aborted("all_reduce_sum");
    if (!same)
      return internal_error("all_reduce_sum: the ranks' tensors differ in size or are not contiguous host fp32 (rank " +
                            std::to_string(rank_) + ": " + x.shape().to_string() + " " + dtype_name(x.dtype()) + ")");
    return Status::ok_status();
  }

  Status all_gather(const Tensor& x, Tensor& out) override {
    SharedState& s = *shared_;
    auto host_f32 = [](const Tensor& t) {
      return t.dtype() == DType::kF32 && t.device() == Device::kCpu && t.is_contiguous() && t.shape().rank == 2;
    };
    const bool usable = host_f32(x) && host_f32(out);
    s.data[rank_] = usable ? x.data_as<float>() : nullptr;
    s.shapes[rank_] = usable ? std::array<int64_t, 3>{x.dim(0), x.dim(1), out.dim(1)}
                             : std::array<int64_t, 3>{0, 0, 0};
    if (usable && out.dim(0) != x.dim(0)) s.data[rank_] = nullptr;
    if (!s.barrier.arrive_and_wait()) return aborted("all_gather");
    // As in all_reduce_sum, every rank decides on the same published shapes.
    const auto [rows, cols, out_cols] = s.shapes[0];
    bool same = out_cols > 0 && out_cols <= size() * cols;
    for (int r = 0; r < size(); ++r) same = same && s.data[r] != nullptr && s.shapes[r] == s.shapes[0];
    if (same) {
      float* dst = out.data_as<float>();
      for (int r = 0; r < size(); ++r) {
        const int64_t n = std::clamp<int64_t>(out_cols - r * cols, 0, cols);  // the last ranks' padding dropped
        for (int64_t i = 0; i < rows; ++i)
          std::memcpy(dst + i * out_cols + r * cols, s.data[r] + i * cols, sizeof(float) * static_cast<size_t>(n));
      }
    }
    if (!s.barrier.arrive_and_wait()) return aborted("all_gather");
    if (!same)
      return internal_error("all_gather: the ranks' slices differ in shape, are not contiguous 2-D host fp32, or do not "
                            "fit the output (rank " + std::to_string(rank_) + ": " + x.shape().to_string() + " into " +
                            out.shape().to_string() + ")");
    return Status::ok_status();
  }

  void abort() override { shared_->barrier.abort(); }

 private:
  Status aborted(const char* op) const {
    return internal_error(std::string(op) + " on rank " + std::to_string(rank_) +
                          ": the communicator was aborted (a tensor-parallel rank failed in the middle of a step)");
  }

  void sum_my_slice(SharedState& s) const {
    const int n = size();
    const int64_t total = s.numel[0];
    const int64_t begin = total * rank_ / n, end = total * (rank_ + 1) / n;
    for (int64_t i = begin; i < end; ++i) {
      float sum = s.data[0][i];
      for (int r = 1; r < n; ++r) sum += s.data[r][i];
      for (int r = 0; r < n; ++r) s.data[r][i] = sum;
    }
  }

  int rank_;
  std::shared_ptr<SharedState> shared_;
};

}  // namespace

void Backend::embedding_shard(const StepPlan&, const Tensor&, int64_t, Tensor&) {
  TK_CHECK_MSG(false, name() + " has no vocabulary-parallel embedding (tensor parallelism)");
}

std::vector<std::unique_ptr<Communicator>> make_in_process_communicators(int size) {
  TK_CHECK(size >= 1);
  auto shared = std::make_shared<SharedState>(size);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < size; ++r) out.push_back(std::make_unique<InProcessCommunicator>(r, shared));
  return out;
}

}  // namespace tk
