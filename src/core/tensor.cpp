// Tensor views and shapes.
#include <cstdlib>

#include <sys/mman.h>

#include "core/core.h"

namespace tk {

const char* device_name(Device device) { return device == Device::kCpu ? "cpu" : "cuda"; }

Shape::Shape(std::initializer_list<int64_t> list) {
  TK_CHECK(list.size() <= kMaxDims);
  for (int64_t d : list) dims[rank++] = d;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[i];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (rank != other.rank) return false;
  for (int i = 0; i < rank; ++i)
    if (dims[i] != other.dims[i]) return false;
  return true;
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims[i]);
  }
  return s + "]";
}

static void contiguous_strides(const Shape& shape, int64_t* strides) {
  int64_t s = 1;
  for (int i = shape.rank - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape.dims[i];
  }
}

Tensor::Tensor(void* data, DType dtype, Shape shape, Device device, std::shared_ptr<void> owner)
    : data_(data), dtype_(dtype), shape_(shape), device_(device), owner_(std::move(owner)) {
  contiguous_strides(shape_, strides_);
}

Tensor Tensor::empty_cpu(DType dtype, Shape shape) {
  size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  // Large buffers (a KV cache sized for many sequences) are mapped: the kernel hands out zeroed
  // pages as they are first touched, so memory follows what runs, not what was reserved.
  constexpr size_t kMapThreshold = 1 << 20;
  if (bytes >= kMapThreshold) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    TK_CHECK_MSG(p != MAP_FAILED, "host allocation of " + std::to_string(bytes) + " bytes failed");
    std::shared_ptr<void> owner(p, [bytes](void* q) { munmap(q, bytes); });
    return Tensor(p, dtype, shape, Device::kCpu, std::move(owner));
  }
  // 64-byte alignment keeps SIMD loads aligned for every row whose width is a multiple of 16 floats.
  size_t padded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, padded == 0 ? 64 : padded);
  TK_CHECK_MSG(p != nullptr, "host allocation of " + std::to_string(bytes) + " bytes failed");
  std::memset(p, 0, padded == 0 ? 64 : padded);
  std::shared_ptr<void> owner(p, [](void* q) { std::free(q); });
  return Tensor(p, dtype, shape, Device::kCpu, std::move(owner));
}

bool Tensor::is_contiguous() const {
  int64_t expect[kMaxDims];
  contiguous_strides(shape_, expect);
  for (int i = 0; i < shape_.rank; ++i)
    if (shape_.dims[i] > 1 && strides_[i] != expect[i]) return false;
  return true;
}

Tensor Tensor::reshape(Shape shape) const {
  TK_CHECK_MSG(is_contiguous(), "reshape of a strided tensor");
  TK_CHECK_MSG(shape.numel() == numel(), "reshape " + shape_.to_string() + " -> " + shape.to_string());
  Tensor t = *this;
  t.shape_ = shape;
  contiguous_strides(shape, t.strides_);
  return t;
}

Tensor Tensor::slice_rows(int64_t begin, int64_t end) const {
  TK_CHECK(rank() >= 1 && 0 <= begin && begin <= end && end <= shape_.dims[0]);
  Tensor t = *this;
  t.shape_.dims[0] = end - begin;
  t.data_ = static_cast<char*>(data_) + begin * strides_[0] * static_cast<int64_t>(dtype_size(dtype_));
  return t;
}

Tensor Tensor::select_row(int64_t index) const {
  TK_CHECK(rank() >= 2 && 0 <= index && index < shape_.dims[0]);
  Tensor t = *this;
  t.data_ = static_cast<char*>(data_) + index * strides_[0] * static_cast<int64_t>(dtype_size(dtype_));
  for (int i = 1; i < rank(); ++i) {
    t.shape_.dims[i - 1] = shape_.dims[i];
    t.strides_[i - 1] = strides_[i];
  }
  t.shape_.rank = rank() - 1;
  t.shape_.dims[t.shape_.rank] = 0;
  return t;
}

}  // namespace tk
