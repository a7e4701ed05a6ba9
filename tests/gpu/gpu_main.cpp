// Main of the gpu-labelled tests: without a CUDA device they exit 77, which ctest reports as
// skipped (SKIP_RETURN_CODE), so CI machines without a GPU skip rather than fail.
#include <gtest/gtest.h>

#include <cstdio>

#include "cuda/cuda.h"

int main(int argc, char** argv) {
  if (tk::cuda_device_count() == 0) {
    std::printf("no CUDA device: skipping the gpu tests\n");
    return 77;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
