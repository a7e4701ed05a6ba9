// Helpers for kernel tests: fresh random inputs (never zeros), device copies in bf16/fp16,
// poisoned outputs, and the relative L2 error against the CPU twin.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/core.h"
#include "cuda/cuda.h"

namespace tk::gpu_test {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.f, float mean = 0.f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(mean, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Rounds through `dtype` so the CPU twin sees exactly the values the kernel sees.
inline void round_to(std::vector<float>& v, DType dtype) {
  for (float& x : v) x = dtype == DType::kBF16 ? bf16_to_f32(f32_to_bf16(x)) : f16_to_f32(f32_to_f16(x));
}

// A device buffer holding `v` converted to `dtype` (bf16, fp16 or fp32).
class DeviceArray {
 public:
  DeviceArray() = default;
  DeviceArray(size_t count, DType dtype) : count_(count), dtype_(dtype) {
    auto b = DeviceBuffer::allocate(std::max<size_t>(count * dtype_size(dtype), 16));
    TK_CHECK(b.ok());
    buf_ = std::move(*b);
  }
  static DeviceArray from(const std::vector<float>& v, DType dtype) {
    DeviceArray a(v.size(), dtype);
    a.upload(v);
    return a;
  }
  template <typename T>
  static DeviceArray from_ints(const std::vector<T>& v) {
    DeviceArray a(v.size(), sizeof(T) == 4 ? DType::kI32 : DType::kI64);
    CUDA_CHECK(cudaMemcpy(a.data(), v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
    return a;
  }
  void upload(const std::vector<float>& v) {
    std::vector<uint16_t> h(v.size());
    if (dtype_ == DType::kF32) {
      CUDA_CHECK(cudaMemcpy(data(), v.data(), v.size() * 4, cudaMemcpyHostToDevice));
      return;
    }
    for (size_t i = 0; i < v.size(); ++i) h[i] = dtype_ == DType::kBF16 ? f32_to_bf16(v[i]) : f32_to_f16(v[i]);
    CUDA_CHECK(cudaMemcpy(data(), h.data(), h.size() * 2, cudaMemcpyHostToDevice));
  }
  std::vector<float> download() const {
    std::vector<float> out(count_);
    if (dtype_ == DType::kF32) {
      CUDA_CHECK(cudaMemcpy(out.data(), data(), count_ * 4, cudaMemcpyDeviceToHost));
      return out;
    }
    std::vector<uint16_t> h(count_);
    CUDA_CHECK(cudaMemcpy(h.data(), data(), count_ * 2, cudaMemcpyDeviceToHost));
    convert_to_f32(h.data(), dtype_, out.data(), count_);
    return out;
  }
  // 0xFF bytes: NaN in bf16, fp16 and fp32, so an element the kernel forgot shows up.
  void poison() { CUDA_CHECK(cudaMemset(data(), 0xFF, count_ * dtype_size(dtype_))); }
  void* data() const { return buf_.data(); }
  template <typename T>
  T* as() const { return static_cast<T*>(buf_.data()); }
  size_t size() const { return count_; }

 private:
  DeviceBuffer buf_;
  size_t count_ = 0;
  DType dtype_ = DType::kF32;
};

// ||got - want|| / ||want||; NaN anywhere makes it infinite.
inline double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
  EXPECT_EQ(got.size(), want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

// The relative L2 bound for bf16/fp16 kernels against the fp32 twin (issue 3).
constexpr double kHalfTolerance = 1e-2;

// ---- FP8 operands (the FP8 GEMM and GEMV tests)

// 65536 fp8 codes at the quantiles of N(0, 128): a 16-bit random index draws one from a quantized
// Gaussian, so that filling a 58.7M-element weight costs a table lookup per element (the host work
// of this test was 130-150 s on the H200 host while it quantized floats one by one).
inline std::vector<uint8_t> gaussian_fp8_table(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 128.f);
  std::vector<float> v(65536);
  for (float& x : v) x = d(rng);
  std::sort(v.begin(), v.end());
  std::vector<uint8_t> table(v.size());
  for (size_t i = 0; i < v.size(); ++i) table[i] = f32_to_fp8_e4m3(v[i]);  // saturates at +-448
  return table;
}

// [rows, cols] codes from `table`, row by row from per-row seeds so that rows fill in parallel.
inline std::vector<uint8_t> random_fp8(int64_t rows, int64_t cols, uint32_t seed, const std::vector<uint8_t>& table) {
  std::vector<uint8_t> q(static_cast<size_t>(rows * cols));
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    std::mt19937 rng(seed * 7919u + static_cast<uint32_t>(r));
    for (int64_t c = 0; c < cols; c += 2) {
      const uint32_t u = rng();
      q[r * cols + c] = table[u & 0xffff];
      if (c + 1 < cols) q[r * cols + c + 1] = table[u >> 16];
    }
  }
  return q;
}

// Raw bytes in a fresh device buffer.
inline DeviceBuffer upload_bytes(const std::vector<uint8_t>& v) {
  auto b = DeviceBuffer::allocate(v.size());
  TK_CHECK(b.ok());
  CUDA_CHECK(cudaMemcpy(b->data(), v.data(), v.size(), cudaMemcpyHostToDevice));
  return std::move(*b);
}

}  // namespace tk::gpu_test
