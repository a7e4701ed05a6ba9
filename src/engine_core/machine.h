// What this machine can hold and run, checked before anything is allocated: the CPU threads a
// user may ask for (and the default, which leaves cores other processes keep busy alone), and
// the memory the weights, activations, logit rows and the smallest KV cache of a config need
// against what the backend's device has. Private to src/engine_core.
#pragma once

#include <cstdint>

#include "engine_core/engine_core.h"

namespace tk {

// --max-num-batched-tokens' range.
constexpr int kMinBatchedTokens = 16;
constexpr int kMaxBatchedTokens = 1 << 20;

// CPU threads per usable CPU that --threads may ask for at most: more only adds barriers.
constexpr int kMaxThreadsPerCpu = 4;

int usable_cpus();       // the CPUs this process may run on (its affinity mask), at least 1
int max_cpu_threads();   // kMaxThreadsPerCpu x usable_cpus()

// The CPU backend's threads: --threads, else TOKAMAK_NUM_THREADS (checked here: a bad value is
// an error naming it), else 0 when OMP_NUM_THREADS is set (OpenMP's own choice) or !pick_default
// (no CPU backend), else the usable CPUs that other processes do not keep busy, sampled over 50 ms
// (at least 1): on a loaded machine a thread per core waits at every barrier for a core that
// another process holds.
Result<int> resolve_cpu_threads(const EngineConfig& config, bool pick_default);

// Tensor-parallel CPU ranks share `threads` (> 0): rank r runs threads / ranks of them and the
// first threads % ranks ranks one more (7 over 2 ranks: 4 and 3), so they add up to `threads`;
// at least 1 each, so fewer threads than ranks gives every rank 1 (more than asked; load_model warns).
std::vector<int> split_cpu_threads(int threads, int ranks);

// Host memory this process can still use: MemAvailable, within the cgroup's limit if any.
size_t host_available_memory();

// What a backend's device has, read once (a plain value, so the check is a pure function).
struct DeviceMemory {
  Device device = Device::kCpu;
  DType dtype = DType::kF32;  // the backend's compute dtype
  size_t available = 0;       // CPU: host_available_memory()
  size_t free = 0, total = 0; // the backend's free_memory() and total_memory()
};
DeviceMemory device_memory(const Backend& backend);

// The memory `config` needs for `model` on `device` against what it has; an error names the
// flag, its value, what it needs and what is left. `model_source` names where the model came
// from (the directory or the built-in name).
Status check_memory(const EngineConfig& config, const ModelConfig& model, const DeviceMemory& device,
                    const std::string& model_source);

// "1.50 GiB", "340 MiB", "12 KiB".
std::string format_bytes(double bytes);

}  // namespace tk
