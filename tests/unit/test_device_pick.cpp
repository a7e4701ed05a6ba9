// --device as a pure function (engine_core/device_pick.cpp): what runs where, given the model's
// shape and made-up GPU capabilities, so that CI on a CPU covers the GPU's fallback and errors.
#include <gtest/gtest.h>

#include "engine_core/engine_core.h"

namespace tk {
namespace {

ModelConfig model_with_head_dim(int64_t head_dim) {
  auto c = builtin_model_config("llama-3-8b");
  EXPECT_TRUE(c.ok());
  c->head_dim = head_dim;
  return *c;
}

// An H200 with the kernels' head sizes.
GpuCapabilities h200() {
  GpuCapabilities g;
  g.device_present = true;
  g.head_dims = {32, 64, 80, 96, 128, 256};
  return g;
}

GpuCapabilities no_gpu() {
  GpuCapabilities g;
  g.unusable = "no CUDA device is available";
  return g;
}

GpuCapabilities ampere() {
  GpuCapabilities g = h200();
  g.unusable = "this build has GPU kernels for sm_90a (H100/H200) only; the device is NVIDIA A100 (sm_80)";
  return g;
}

DevicePick pick(DeviceChoice choice, int64_t head_dim, const GpuCapabilities& gpu) {
  auto p = pick_device(choice, model_with_head_dim(head_dim), gpu);
  EXPECT_TRUE(p.ok()) << p.status().to_string();
  return p.ok() ? *p : DevicePick{};
}

std::string error_of(DeviceChoice choice, int64_t head_dim, const GpuCapabilities& gpu) {
  auto p = pick_device(choice, model_with_head_dim(head_dim), gpu);
  EXPECT_FALSE(p.ok());
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), StatusCode::kUnsupported);
  return p.status().message();
}

TEST(DevicePick, AutoTakesTheGpuForEverySupportedHeadSize) {
  for (int d : {32, 64, 80, 96, 128, 256}) {
    const DevicePick p = pick(DeviceChoice::kAuto, d, h200());
    EXPECT_EQ(p.device, Device::kCuda) << "head_dim " << d;
    EXPECT_EQ(p.warning, "") << "head_dim " << d;
  }
}

TEST(DevicePick, AutoFallsBackToTheCpuWithAWarningNamingWhy) {
  const DevicePick p = pick(DeviceChoice::kAuto, 72, h200());
  EXPECT_EQ(p.device, Device::kCpu);
  EXPECT_NE(p.warning.find("head_dim 72"), std::string::npos) << p.warning;
  EXPECT_NE(p.warning.find("32, 64, 80, 96, 128, 256"), std::string::npos) << p.warning;
  EXPECT_NE(p.warning.find("--device cuda"), std::string::npos) << p.warning;

  const DevicePick old_gpu = pick(DeviceChoice::kAuto, 128, ampere());
  EXPECT_EQ(old_gpu.device, Device::kCpu);
  EXPECT_NE(old_gpu.warning.find("sm_80"), std::string::npos) << old_gpu.warning;
}

TEST(DevicePick, AutoWithoutAGpuIsTheCpuSilently) {
  const DevicePick p = pick(DeviceChoice::kAuto, 72, no_gpu());
  EXPECT_EQ(p.device, Device::kCpu);
  EXPECT_EQ(p.warning, "");
  GpuCapabilities cpu_build;
  cpu_build.unusable = "this build of tokamak has no CUDA backend";
  EXPECT_EQ(pick(DeviceChoice::kAuto, 128, cpu_build).device, Device::kCpu);
  EXPECT_EQ(pick(DeviceChoice::kAuto, 128, cpu_build).warning, "");
}

TEST(DevicePick, CudaFailsNamingWhatTheGpuCannotRun) {
  const std::string head = error_of(DeviceChoice::kCuda, 72, h200());
  EXPECT_NE(head.find("--device cuda"), std::string::npos) << head;
  EXPECT_NE(head.find("head_dim 72"), std::string::npos) << head;
  EXPECT_NE(head.find("32, 64, 80, 96, 128, 256"), std::string::npos) << head;
  EXPECT_NE(error_of(DeviceChoice::kCuda, 128, no_gpu()).find("no CUDA device"), std::string::npos);
  EXPECT_NE(error_of(DeviceChoice::kCuda, 128, ampere()).find("sm_80"), std::string::npos);
  EXPECT_EQ(pick(DeviceChoice::kCuda, 80, h200()).device, Device::kCuda);
}

TEST(DevicePick, CpuIsTheCpuWhateverTheGpu) {
  for (const GpuCapabilities& g : {h200(), no_gpu(), ampere()})
    for (int d : {72, 128}) {
      const DevicePick p = pick(DeviceChoice::kCpu, d, g);
      EXPECT_EQ(p.device, Device::kCpu);
      EXPECT_EQ(p.warning, "");
    }
}

// gpu_can_run names the first property the GPU cannot run; the device comes before the model.
TEST(DevicePick, GpuCanRunNamesTheFirstProblem) {
  EXPECT_TRUE(gpu_can_run(model_with_head_dim(96), h200()).ok());
  EXPECT_NE(gpu_can_run(model_with_head_dim(72), ampere()).message().find("sm_80"), std::string::npos);
  GpuCapabilities none = h200();
  none.head_dims.clear();
  EXPECT_FALSE(gpu_can_run(model_with_head_dim(128), none).ok());
}

}  // namespace
}  // namespace tk
