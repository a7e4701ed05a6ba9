// The memory check (engine_core/machine.cpp) as a pure function of the config, the model's shape
// and what a device has: the GPU rule (--gpu-memory-utilization of the device) and the CPU rule
// (available host memory, a quarter of free memory for the KV cache) with made-up devices, so
// that CI on a CPU covers the GPU's messages too.
#include <gtest/gtest.h>

#include "machine.h"

namespace tk {
namespace {

constexpr size_t kGiB = size_t{1} << 30;

DeviceMemory h200(double free_gib = 140) {
  DeviceMemory d;
  d.device = Device::kCuda, d.dtype = DType::kBF16;
  d.total = static_cast<size_t>(140.4 * kGiB), d.free = static_cast<size_t>(free_gib * kGiB);
  return d;
}

DeviceMemory host(double available_gib, double free_gib) {
  DeviceMemory d;
  d.available = static_cast<size_t>(available_gib * kGiB), d.free = static_cast<size_t>(free_gib * kGiB);
  d.total = 2 * d.available;
  return d;
}

ModelConfig llama8b() {
  auto c = builtin_model_config("llama-3-8b");
  EXPECT_TRUE(c.ok());
  return *c;
}

EngineConfig builtin() {
  EngineConfig c;
  c.model_config = "llama-3-8b";
  return c;
}

std::string error_of(const EngineConfig& c, const ModelConfig& m, const DeviceMemory& d) {
  const Status s = check_memory(c, m, d, "--model-config " + c.model_config);
  if (s.ok()) return "";
  EXPECT_EQ(s.code(), StatusCode::kOutOfMemory);
  return s.message();
}

TEST(MemoryCheck, GpuDefaultsAndTheBenchmarksFit) {
  EXPECT_EQ(error_of(builtin(), llama8b(), h200()), "");
  EngineConfig bench = builtin();  // bench latency --batch 64 --prompt-len 128 --gen-len 256
  bench.max_num_seqs = 64, bench.max_num_batched_tokens = 8192, bench.max_model_len = 384, bench.kv_cache_tokens = 64 * 384;
  EXPECT_EQ(error_of(bench, llama8b(), h200()), "");
  bench.gpu_memory_utilization = 0.2;  // what the GPU tests ask for: 28 GiB
  EXPECT_EQ(error_of(bench, llama8b(), h200()), "");
}

TEST(MemoryCheck, GpuErrorsNameTheFlagTheNeedAndWhatIsLeft) {
  EngineConfig c = builtin();
  c.gpu_memory_utilization = 0.1;
  EXPECT_EQ(error_of(c, llama8b(), h200()),
            "--model-config llama-3-8b: its weights (8.03B parameters in bfloat16 on the GPU) would take 15.0 GiB; "
            "13.7 GiB is available (--gpu-memory-utilization 0.10 of the device's 140.4 GiB, less 320.0 MiB for graphs "
            "and workspaces)");
  c = builtin();
  EXPECT_EQ(error_of(c, llama8b(), h200(/*free_gib=*/60)),
            "--gpu-memory-utilization 0.90 asks for 126.4 GiB of the device's 140.4 GiB but 60.0 GiB is free (other "
            "processes hold the rest): lower --gpu-memory-utilization");
  c = builtin(), c.max_num_seqs = 100000;  // logit rows and the sampler's workspace over a 128k vocabulary
  const std::string seqs = error_of(c, llama8b(), h200());
  EXPECT_EQ(seqs.rfind("--max-num-seqs 100000: ", 0), 0u) << seqs;
  EXPECT_NE(seqs.find("logit rows (100512 x 128256 vocab), the sampler's workspace and the penalty history (100000 x 8192 "
                       "tokens) would take 147.8 GiB; 98.9 GiB is left of the 126.0 GiB that --gpu-memory-utilization "
                       "0.90 allows, after 15.0 GiB for its weights and 12.2 GiB for activations"),
            std::string::npos) << seqs;
  c = builtin(), c.max_num_batched_tokens = 1 << 20;  // 128 KiB of bf16 activations per token
  EXPECT_EQ(error_of(c, llama8b(), h200()).rfind("--max-num-batched-tokens 1048576: activations for 1048576 tokens per step "
                                                 "would take 128.0 GiB",
                                                 0),
            0u);
  ModelConfig long_context = llama8b();
  long_context.max_position_embeddings = 1 << 20;  // one sequence's KV: 1M tokens x 128 KiB
  EXPECT_EQ(error_of(builtin(), long_context, h200()).rfind("--max-model-len (the model's 1048576): the KV cache of one "
                                                            "full-length sequence would take 128.0 GiB",
                                                            0),
            0u);
}

// An FP8 checkpoint's weights are one byte on the GPU (the layer Linears; embeddings and lm_head
// stay bf16), and an FP8 KV cache one byte a value. --quantization fp8 loads bf16 first: its peak.
TEST(MemoryCheck, GpuFp8WeightsAndKvCacheCountOneByte) {
  ModelConfig fp8 = llama8b();
  fp8.quantization.method = QuantizationConfig::Method::kCompressedTensors;
  fp8.quantization.scheme = {WeightScale::kChannel, InputQuant::kDynamicToken, 0.f};
  fp8.quantization.ignore = {"lm_head"};
  EngineConfig c = builtin();
  c.gpu_memory_utilization = 0.06;
  EXPECT_EQ(error_of(c, fp8, h200()).rfind("--model-config llama-3-8b: its weights (8.03B parameters, 6.98B in fp8, "
                                                 "the rest in bfloat16, on the GPU) would take 8.46 GiB; 8.11 GiB is "
                                                 "available",
                                                 0),
            0u)
      << error_of(c, fp8, h200());
  c.gpu_memory_utilization = 0.07;  // 9.5 GiB: the weights fit (the bf16 model's 15.0 GiB would not), the KV cache not
  EXPECT_EQ(error_of(c, fp8, h200()).rfind("--max-model-len (the model's 8192): the KV cache", 0), 0u);
  c.quantize_fp8 = true;  // a bf16 model quantized at load
  EXPECT_EQ(error_of(c, llama8b(), h200()).rfind("--model-config llama-3-8b: its weights (8.03B parameters in bfloat16", 0), 0u);
  // One sequence of 1M tokens: 128 GiB of bf16 KV does not fit (above), 64 GiB of FP8 does.
  ModelConfig long_context = llama8b();
  long_context.max_position_embeddings = 1 << 20;
  c = builtin(), c.kv_cache_fp8 = true;
  EXPECT_EQ(error_of(c, long_context, h200()), "");
  long_context.max_position_embeddings = 1 << 21;
  EXPECT_EQ(error_of(c, long_context, h200()).rfind("--max-model-len (the model's 2097152): the KV cache of one "
                                                    "full-length sequence would take 128.0 GiB",
                                                    0),
            0u)
      << error_of(c, long_context, h200());
}

TEST(MemoryCheck, CpuHostMemoryAndTheKvShare) {
  EXPECT_EQ(error_of(builtin(), llama8b(), host(64, 60)), "");
  EXPECT_EQ(error_of(builtin(), llama8b(), host(16, 16)),
            "--model-config llama-3-8b: its weights (8.03B parameters in float32 on the CPU) would take 29.9 GiB; "
            "16.0 GiB of memory is available");
  // 8192 tokens x 256 KiB of fp32 KV = 2 GiB; a quarter of (36 - 29.9) GiB free is 1.5 GiB.
  EXPECT_EQ(error_of(builtin(), llama8b(), host(64, 36)),
            "--max-model-len (the model's 8192): the KV cache of one full-length sequence would take 2.00 GiB; the CPU KV "
            "cache may use a quarter of the free memory after the weights, 1.52 GiB: lower --max-model-len");
  EngineConfig c = builtin();
  c.max_model_len = 4096;
  EXPECT_EQ(error_of(c, llama8b(), host(64, 36)), "");
  c.kv_cache_tokens = int64_t{1} << 30;  // an exact KV size is held to the available memory, not the quarter
  EXPECT_EQ(error_of(c, llama8b(), host(64, 36)).rfind("kv_cache_tokens 1073741824: its KV cache would take 256.0 TiB", 0), 0u);
}

}  // namespace
}  // namespace tk
