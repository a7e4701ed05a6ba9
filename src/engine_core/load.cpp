// Loading what a config names: a checkpoint directory (tokenizer, generation config, config.json,
// safetensors) or a built-in configuration with random weights made on the device.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <optional>
#include <thread>

#include "backend_cpu/cpu_backend.h"
#include "engine_core/engine_core.h"
#include "machine.h"

namespace tk {
namespace {

// The ids that end a sequence: generation_config.json's, config.json's, else the tokenizer's eos.
std::vector<int32_t> collect_eos_ids(const GenerationConfig& generation, const ModelConfig& config,
                                     const Tokenizer* tokenizer) {
  std::vector<int32_t> ids = generation.eos_token_ids;
  for (int32_t id : config.eos_token_ids)
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  if (ids.empty() && tokenizer)
    if (auto eos = tokenizer->eos_token())
      if (auto id = tokenizer->token_to_id(*eos)) ids.push_back(*id);
  return ids;
}

Result<std::unique_ptr<Model>> make_model(const EngineConfig& c, Backend& backend, const LoadProgress& progress,
                                          TensorParallel tp) {
  if (!c.model.empty()) return Model::load(c.model, backend, progress, c.quantize_fp8, tp);
  TK_ASSIGN_OR_RETURN(ModelConfig config, builtin_model_config(c.model_config));
  TK_ASSIGN_OR_RETURN(ModelWeights weights, random_weights(config, backend, c.random_weights_seed, tp));
  if (c.quantize_fp8) TK_RETURN_IF_ERROR(quantize_weights_fp8(weights, backend));
  return std::make_unique<Model>(config, std::move(weights), backend, tp);
}

// Each rank's CPU threads [size]: the resolved count (OpenMP's when only OMP_NUM_THREADS chose
// it) split over the ranks, which run their ops at the same time; {threads} at size 1.
std::vector<int> rank_cpu_threads(int threads, int size) {
  if (size == 1) return {threads};
  const int total = threads > 0 ? threads : cpu_default_threads();
  if (total < size)
    TK_LOG_WARN(std::to_string(total) + " CPU thread" + (total > 1 ? "s" : "") + " for --tensor-parallel-size " +
                std::to_string(size) + ": each rank runs 1 (" + std::to_string(size) + " in all)");
  return split_cpu_threads(total, size);
}

// Rank r > 0 of a tensor-parallel model, on its own backend: a CPU backend with its share of the
// threads, or a CUDA backend on device r (current on this thread, which loads its weights; its
// memory checked as rank 0's is: the host's check counts every CPU rank already).
Result<LoadedRank> make_rank(const EngineConfig& c, const ModelConfig& shape, const std::string& source, Device device,
                             int threads, TensorParallel tp) {
  LoadedRank rank;
  const DeviceChoice choice = device == Device::kCpu ? DeviceChoice::kCpu : DeviceChoice::kCuda;
  TK_ASSIGN_OR_RETURN(rank.backend, make_backend(choice, c.dtype, threads, c.gemm_autotune, tp.rank));
  if (device != Device::kCpu)
    TK_RETURN_IF_ERROR(check_memory(c, shape, device_memory(*rank.backend), source + " (rank " + std::to_string(tp.rank) + ")"));
  rank.free_memory_before = rank.backend->free_memory();
  TK_ASSIGN_OR_RETURN(rank.model, make_model(c, *rank.backend, nullptr, tp));
  return rank;
}

// Ranks 1..N-1, each read on a thread of its own while `rank0` (the one the progress reports
// follow, made as an unsharded model is) reads on this one: each reads only its slices, so the
// ranks' reads of the memory-mapped files overlap. The first failure, in rank order, is returned.
Status make_ranks(const EngineConfig& c, const ModelConfig& shape, const std::string& source,
                  const std::vector<int>& threads, LoadedModel& m, const std::function<Status()>& rank0) {
  const int n = c.tensor_parallel_size;
  std::vector<std::optional<Result<LoadedRank>>> others(static_cast<size_t>(std::max(n - 1, 0)));
  std::vector<std::thread> readers;
  for (int r = 1; r < n; ++r)
    readers.emplace_back([&, r] {
      try {
        others[r - 1].emplace(make_rank(c, shape, source, m.backend->device(), threads[r], {r, n}));
      } catch (const std::exception& e) {  // e.g. bad_alloc: an error of this rank, not a terminate
        others[r - 1].emplace(internal_error("tensor-parallel rank " + std::to_string(r) + ": " + e.what()));
      }
    });
  Status first = rank0();
  for (std::thread& t : readers) t.join();
  std::string split = std::to_string(threads[0]);
  for (int r = 1; r < n; ++r) {
    Result<LoadedRank>& rank = *others[r - 1];
    if (!rank.ok()) {
      if (first.ok()) first = rank.status();
      continue;
    }
    m.other_ranks.push_back(std::move(*rank));
    split += "+" + std::to_string(threads[r]);
  }
  TK_RETURN_IF_ERROR(first);
  if (n == 1) return Status::ok_status();
  const bool cpu = m.backend->device() == Device::kCpu;
  TK_LOG_INFO("tensor parallel: " + std::to_string(n) + " ranks " +
              (cpu ? "on the CPU, " + split + " threads" : "on GPUs 0-" + std::to_string(n - 1) + " (NCCL)") +
              ", KV heads " + (m.model->config().num_kv_heads >= n ? "split" : "replicated"));
  std::vector<Backend*> backends = {m.backend.get()};
  for (LoadedRank& rank : m.other_ranks) backends.push_back(rank.backend.get());
  TK_ASSIGN_OR_RETURN(m.communicators, make_communicators(backends));
  m.backend->bind_to_current_thread();  // NCCL's set-up may leave another device current
  m.model->set_communicator(m.communicators[0].get());
  for (int r = 1; r < n; ++r) m.other_ranks[r - 1].model->set_communicator(m.communicators[r].get());
  return Status::ok_status();
}

}  // namespace

Status tensor_parallel_supported(const ModelConfig& model, int size, Device device, const GpuCapabilities& gpu) {
  if (size == 1) return Status::ok_status();
  const std::string flag = "--tensor-parallel-size " + std::to_string(size);
  if (device != Device::kCpu && !gpu.nccl)
    return unsupported(flag + " on the GPU: this build of tokamak has no NCCL (CMake looks for it in the CUDA toolkit); "
                              "use --tensor-parallel-size 1, or --device cpu");
  if (device != Device::kCpu && gpu.device_count < size)
    return invalid_argument(flag + ": one GPU per rank, and " + std::to_string(gpu.device_count) + " " +
                            (gpu.device_count == 1 ? "is" : "are") + " visible");
  return check_tensor_parallel(model, size);
}

// The model's shape, read before anything is allocated.
Result<ModelConfig> model_shape(const EngineConfig& c) {
  if (c.model.empty()) return builtin_model_config(c.model_config);
  if (file_exists(c.model))
    return invalid_argument("--model " + c.model +
                            ": is a file, not a directory; give the Hugging Face model directory that holds it");
  if (!is_directory(c.model)) return not_found(c.model + ": model directory does not exist");
  return load_model_config(c.model);
}

Result<LoadedModel> load_model(const EngineConfig& c, const LoadProgress& progress) {
  TK_RETURN_IF_ERROR(c.validate());
  TK_ASSIGN_OR_RETURN(const ModelConfig shape, model_shape(c));
  const std::string source = c.model.empty() ? "--model-config " + c.model_config : c.model;
  if (c.max_model_len > shape.max_position_embeddings)
    return invalid_argument("--max-model-len " + std::to_string(c.max_model_len) + ": longer than the model's context, " +
                            std::to_string(shape.max_position_embeddings) + " (max_position_embeddings of " +
                            (c.model.empty() ? source : join_path(c.model, "config.json")) + ")");
  // Decided before anything is allocated: auto falls back to the CPU (with a warning) when the GPU
  // path cannot run this model; cuda fails here, naming what it cannot run.
  const GpuCapabilities gpu = c.device == DeviceChoice::kCpu ? GpuCapabilities{} : gpu_capabilities();
  auto pick = pick_device(c.device, shape, gpu);
  if (!pick.ok()) return Status(pick.status().code(), source + ": " + pick.status().message());
  if (!pick->warning.empty()) TK_LOG_WARN(source + ": " + pick->warning);
  const bool cpu = pick->device == Device::kCpu;
  if (Status s = tensor_parallel_supported(shape, c.tensor_parallel_size, pick->device, gpu); !s.ok())
    return Status(s.code(), source + ": " + s.message());
  TK_ASSIGN_OR_RETURN(const int threads, resolve_cpu_threads(c, /*pick_default=*/cpu));
  const std::vector<int> rank_threads = rank_cpu_threads(threads, c.tensor_parallel_size);  // CPU only at size > 1
  LoadedModel m;
  TK_ASSIGN_OR_RETURN(m.backend,
                      make_backend(cpu ? DeviceChoice::kCpu : DeviceChoice::kCuda, c.dtype, rank_threads[0], c.gemm_autotune));
  if (m.backend->device() == Device::kCpu && c.dtype != DTypeChoice::kAuto)
    TK_LOG_WARN(std::string("--dtype ") + dtype_choice_name(c.dtype) +
                " is ignored: the CPU backend computes in float32 (--dtype is for the GPU)");
  TK_RETURN_IF_ERROR(check_memory(c, shape, device_memory(*m.backend), source));
  const std::string tokenizer_dir = c.tokenizer.empty() ? c.model : c.tokenizer;
  if (!tokenizer_dir.empty()) {
    TK_ASSIGN_OR_RETURN(m.tokenizer, Tokenizer::load(tokenizer_dir));
  }
  if (!c.model.empty()) {
    TK_ASSIGN_OR_RETURN(m.generation, load_generation_config(c.model));
  }
  m.free_memory_before = m.backend->free_memory();
  const double start = now_seconds();
  TK_RETURN_IF_ERROR(make_ranks(c, shape, source, rank_threads, m, [&]() -> Status {
    TK_ASSIGN_OR_RETURN(m.model, make_model(c, *m.backend, progress, {0, c.tensor_parallel_size}));
    return Status::ok_status();
  }));
  const double seconds = now_seconds() - start;
  // What the weights took of the device (on the host, free pages move for other reasons too).
  const size_t free_after = m.backend->free_memory();
  const double gb = free_after < m.free_memory_before ? static_cast<double>(m.free_memory_before - free_after) / 1e9 : 0.0;
  char line[160];
  std::snprintf(line, sizeof(line), "%s: weights %s in %.2f s (%.2f GB on the %s, %.1f GB/s)", source.c_str(),
                c.model.empty() ? "made" : "loaded", seconds, gb, m.backend->device() == Device::kCpu ? "host" : "GPU",
                seconds > 0 ? gb / seconds : 0.0);
  TK_LOG_INFO(line);
  TK_RETURN_IF_ERROR(m.backend->configure(m.model->attention_shape(), c.page_size));
  for (LoadedRank& rank : m.other_ranks)
    TK_RETURN_IF_ERROR(on_rank_device(*rank.backend, *m.backend,
                                      [&] { return rank.backend->configure(rank.model->attention_shape(), c.page_size); }));
  m.eos_token_ids = collect_eos_ids(m.generation, m.model->config(), m.tokenizer.get());
  return m;
}

}  // namespace tk
