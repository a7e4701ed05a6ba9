// The NCCL communicator (make_nccl_communicators) over every visible GPU, one thread a rank as the
// tensor-parallel runner calls it: all-reduce of bf16 activations (small integers, so the sum is
// exact whatever NCCL's order), all-gather of fp32 logit slices with the padded columns clipped
// and the one-row direct path, and abort failing later calls. On a one-GPU host this is N = 1:
// the plumbing (streams, dtypes, copies), not the transport. A rank that fails aborts every
// communicator, so the others are released rather than left waiting for it. reserve_gather and
// warm_up (what the runner calls before the KV cache is sized) run first.
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "backend_cuda/cuda_backend.h"
#include "gpu_util.h"

namespace tk::gpu_test {
namespace {

struct Ranks {
  std::vector<std::unique_ptr<Backend>> backends;
  std::vector<std::unique_ptr<Communicator>> comms;
};

Ranks make_ranks() {
  Ranks r;
  const int n = std::min(cuda_device_count(), 8);
  std::vector<Backend*> raw;
  for (int d = 0; d < n; ++d) {
    CudaBackendOptions o;
    o.device = d;
    auto b = make_cuda_backend(o);
    EXPECT_TRUE(b.ok()) << b.status().to_string();
    if (!b.ok()) return {};
    raw.push_back(b->get());
    r.backends.push_back(std::move(*b));
  }
  auto comms = make_nccl_communicators(raw);
  EXPECT_TRUE(comms.ok()) << comms.status().to_string();
  if (comms.ok()) r.comms = std::move(*comms);
  return r;
}

// f(rank) on one thread per rank, each bound to its device.
template <typename F>
void on_every_rank(Ranks& r, F&& f) {
  std::vector<std::thread> threads;
  for (size_t i = 0; i < r.comms.size(); ++i)
    threads.emplace_back([&, i] {
      r.backends[i]->bind_to_current_thread();
      f(static_cast<int>(i));
    });
  for (std::thread& t : threads) t.join();
}

std::vector<float> download_f32(Backend& b, const Tensor& t) {
  Tensor host = Tensor::empty_cpu(t.dtype(), t.shape());
  EXPECT_TRUE(b.download(t, host.data()).ok());
  std::vector<float> f(static_cast<size_t>(host.numel()));
  convert_to_f32(host.data(), host.dtype(), f.data(), f.size());
  return f;
}

TEST(NcclCommunicator, AllReduceAllGatherAndAbort) {
  if (!nccl_available()) GTEST_SKIP() << "built without NCCL";
  Ranks r = make_ranks();
  ASSERT_FALSE(r.comms.empty());
  const int n = static_cast<int>(r.comms.size());
  constexpr int64_t kRows = 3, kCols = 37;  // odd sizes
  std::vector<std::vector<float>> reduced(n), gathered(n), one_row(n);
  on_every_rank(r, [&](int rank) {
    Backend& b = *r.backends[rank];
    Communicator& c = *r.comms[rank];
    auto ok = [&](bool cond, const char* what) {
      if (!cond) {
        ADD_FAILURE() << "rank " << rank << ": " << what;
        for (auto& other : r.comms) other->abort();
      }
      return cond;
    };
    EXPECT_EQ(c.rank(), rank);
    EXPECT_EQ(c.size(), n);
    // As the runner does before the KV cache is sized: the gather's scratch, then a collective of each kind.
    if (!ok(c.reserve_gather(2, 5).ok(), "reserve_gather") || !ok(c.warm_up().ok(), "warm_up")) return;
    Tensor host = Tensor::empty_cpu(DType::kF32, {kRows, kCols});
    for (int64_t i = 0; i < host.numel(); ++i) host.data_as<float>()[i] = static_cast<float>((i % 7) - 3 + rank * 2);
    auto x = b.upload(host);  // bf16 on the device
    if (!ok(x.ok(), "upload") || !ok(c.all_reduce_sum(*x).ok(), "all_reduce_sum") || !ok(b.synchronize().ok(), "sync"))
      return;
    reduced[rank] = download_f32(b, *x);

    // Logit slices [2, 5] per rank, gathered into [2, 5n - 2]: the last rank's padding clipped.
    const int64_t rows = 2, cols = 5, out_cols = std::max<int64_t>(1, cols * n - 2);
    Tensor slice_host = Tensor::empty_cpu(DType::kF32, {rows, cols});
    for (int64_t i = 0; i < rows * cols; ++i) slice_host.data_as<float>()[i] = static_cast<float>(rank * 100 + i);
    auto slice = b.alloc(DType::kF32, {rows, cols});
    auto out = b.alloc(DType::kF32, {rows, out_cols});
    if (!ok(slice.ok() && out.ok(), "alloc") || !ok(b.copy_from_host(slice_host.data(), *slice).ok(), "copy") ||
        !ok(c.all_gather(*slice, *out).ok(), "all_gather") || !ok(b.synchronize().ok(), "sync"))
      return;
    gathered[rank] = download_f32(b, *out);

    // One row, nothing clipped: gathered straight into out.
    Tensor one = slice->slice_rows(0, 1);
    auto out1 = b.alloc(DType::kF32, {1, cols * n});
    if (!ok(out1.ok(), "alloc") || !ok(c.all_gather(one, *out1).ok(), "all_gather of one row") ||
        !ok(b.synchronize().ok(), "sync"))
      return;
    one_row[rank] = download_f32(b, *out1);
  });
  const int64_t cols = 5, out_cols = std::max<int64_t>(1, cols * n - 2);
  for (int rank = 0; rank < n; ++rank) {
    ASSERT_EQ(reduced[rank].size(), static_cast<size_t>(kRows * kCols));
    for (int64_t i = 0; i < kRows * kCols; ++i) {
      float want = 0.f;
      for (int q = 0; q < n; ++q) want += static_cast<float>((i % 7) - 3 + q * 2);
      ASSERT_EQ(reduced[rank][i], want) << "rank " << rank << " element " << i;
    }
    for (int64_t row = 0; row < 2; ++row)
      for (int64_t col = 0; col < out_cols; ++col) {
        const int64_t src_rank = col / cols, j = col % cols;
        ASSERT_EQ(gathered[rank][row * out_cols + col], static_cast<float>(src_rank * 100 + row * cols + j))
            << "rank " << rank << " row " << row << " col " << col;
      }
    for (int64_t col = 0; col < cols * n; ++col)
      ASSERT_EQ(one_row[rank][col], static_cast<float>((col / cols) * 100 + col % cols)) << "rank " << rank;
  }
  // Aborted: every later collective fails at once instead of waiting.
  for (auto& c : r.comms) c->abort();
  r.backends[0]->bind_to_current_thread();
  auto x = r.backends[0]->alloc(r.backends[0]->compute_dtype(), {1, 8});
  ASSERT_TRUE(x.ok());
  EXPECT_FALSE(r.comms[0]->all_reduce_sum(*x).ok());
}

TEST(NcclCommunicator, RefusesTwoRanksOnOneDevice) {
  if (!nccl_available()) GTEST_SKIP() << "built without NCCL";
  auto b = make_cuda_backend({});
  ASSERT_TRUE(b.ok());
  auto comms = make_nccl_communicators({b->get(), b->get()});
  ASSERT_FALSE(comms.ok());
  EXPECT_NE(comms.status().message().find("two ranks on one device"), std::string::npos);
}

}  // namespace
}  // namespace tk::gpu_test
