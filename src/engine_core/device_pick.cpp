// --device as a decision: which backend runs a model, given what the GPU path supports. Kept a
// pure function of its inputs so that the fallback rule is tested without a GPU
// (tests/unit/test_device_pick.cpp).
#include <algorithm>

#include "engine_core/engine_core.h"

namespace tk {
namespace {

std::string list_text(const std::vector<int>& values) {
  std::string s;
  for (int v : values) s += (s.empty() ? "" : ", ") + std::to_string(v);
  return s;
}

}  // namespace

Status gpu_can_run(const ModelConfig& model, const GpuCapabilities& gpu) {
  if (!gpu.unusable.empty()) return unsupported(gpu.unusable);
  const auto& dims = gpu.head_dims;
  if (std::find(dims.begin(), dims.end(), model.head_dim) == dims.end())
    return unsupported("the GPU kernels support head_dim " + list_text(dims) + "; the model has head_dim " +
                       std::to_string(model.head_dim));
  return Status::ok_status();
}

Result<DevicePick> pick_device(DeviceChoice choice, const ModelConfig& model, const GpuCapabilities& gpu) {
  DevicePick pick;
  if (choice == DeviceChoice::kCpu) return pick;
  const Status can = gpu_can_run(model, gpu);
  if (can.ok()) {
    pick.device = Device::kCuda;
    return pick;
  }
  if (choice == DeviceChoice::kCuda) return unsupported("--device cuda: " + can.message());
  if (gpu.device_present)
    pick.warning = "--device auto: running on the CPU because the GPU path cannot run this model: " + can.message() +
                   " (--device cpu says so without this warning; --device cuda makes it an error)";
  return pick;
}

}  // namespace tk
