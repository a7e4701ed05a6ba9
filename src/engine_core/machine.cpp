// Machine checks: CPU threads and memory, before anything is allocated. The memory model follows
// what the engine reserves (ModelRunner::create, EngineCore::size_kv_cache): weights in the
// backend's compute dtype; activations for max(--max-num-batched-tokens, the padded batch); logit
// rows for the padded batch plus the prompt log-prob rows; the penalties' token history; and at
// least one full-length sequence of KV cache.
#include "machine.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace tk {
namespace {

constexpr double kCpuKvShare = 0.25;                  // EngineCore::size_kv_cache's share of free RAM
constexpr int64_t kGraphMemoryMargin = 256ll << 20;   // EngineCore's margin for graphs on the GPU
constexpr int64_t kGpuWorkspaces = 64ll << 20;        // cuBLASLt and attention workspaces

// Per-CPU (idle, total) jiffies from /proc/stat.
std::map<int, std::pair<uint64_t, uint64_t>> cpu_times() {
  std::map<int, std::pair<uint64_t, uint64_t>> out;
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("cpu", 0) != 0 || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    std::istringstream s(line.substr(3));
    int cpu = 0;
    uint64_t v[8] = {}, total = 0;
    s >> cpu;
    for (uint64_t& x : v) s >> x, total += x;
    out[cpu] = {v[3] + v[4], total};  // idle + iowait
  }
  return out;
}

std::vector<int> affinity_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  return cpus;
}

// How many of `cpus` other processes keep busy: their busy shares over a short window, summed.
double busy_cpus(const std::vector<int>& cpus) {
  const auto before = cpu_times();
  if (before.empty()) return 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto after = cpu_times();
  double busy = 0;
  for (int cpu : cpus) {
    auto b = before.find(cpu), a = after.find(cpu);
    if (b == before.end() || a == after.end()) continue;
    const double total = static_cast<double>(a->second.second - b->second.second);
    const double idle = static_cast<double>(a->second.first - b->second.first);
    if (total > 0) busy += std::clamp(1.0 - idle / total, 0.0, 1.0);
  }
  return busy;
}

std::optional<int64_t> read_number(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s) || s == "max") return std::nullopt;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0' || v < 0) return std::nullopt;
  return v;
}

std::string format_count(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof(buf), "%.2fB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof(buf), "%.1fM", v / 1e6);
  else std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

// The smallest graph batch size at or above n (runner.cpp's graph_batch_sizes: 1, 2, 4, then
// multiples of 8): the batch the runner sizes its buffers for.
int64_t padded_batch(int64_t n) {
  if (n <= 4) return n <= 1 ? 1 : n <= 2 ? 2 : 4;
  return (n + 7) / 8 * 8;
}

// One thing the config needs memory for, and the flag that decides how much.
struct Need {
  std::string flag;    // "--max-num-seqs 256"
  std::string what;    // "logit rows (264 x 8192 vocab) and the penalty history"
  double bytes = 0;
};

}  // namespace

std::string format_bytes(double bytes) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024 && u < 6) bytes /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : bytes < 10 ? "%.2f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

int usable_cpus() {
  const size_t n = affinity_cpus().size();
  if (n > 0) return static_cast<int>(n);
  return static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
}

int max_cpu_threads() { return kMaxThreadsPerCpu * usable_cpus(); }

Result<int> resolve_cpu_threads(const EngineConfig& c, bool pick_default) {
  if (c.num_threads > 0) return c.num_threads;  // EngineConfig::validate bounded it
  const EnvFlags& env = env_flags();
  if (env.num_threads_text) {
    const std::string& v = *env.num_threads_text;
    const std::string bound = "at most " + std::to_string(max_cpu_threads()) + " (" + std::to_string(kMaxThreadsPerCpu) +
                              " per usable CPU; " + std::to_string(usable_cpus()) + " here)";
    if (!env.num_threads) {
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      const bool number = !v.empty() && *end == '\0';
      return invalid_argument("TOKAMAK_NUM_THREADS=" + v + ": " +
                              (!number ? std::string("not a whole number") :
                               n < 1   ? std::string("must be at least 1")
                                       : "too many threads, " + bound));
    }
    if (*env.num_threads > max_cpu_threads())
      return invalid_argument("TOKAMAK_NUM_THREADS=" + v + ": too many threads, " + bound);
    return *env.num_threads;
  }
  if (env.omp_num_threads || !pick_default) return 0;
  const std::vector<int> cpus = affinity_cpus();
  const int usable = usable_cpus();
  const int busy = static_cast<int>(std::lround(busy_cpus(cpus)));
  const int threads = std::max(1, usable - busy);
  if (busy > 0)
    TK_LOG_INFO("CPU backend: " + std::to_string(threads) + " thread" + (threads > 1 ? "s" : "") + " (" +
                std::to_string(usable) + " CPUs, " + std::to_string(busy) +
                " kept busy by other processes; --threads to choose)");
  return threads;
}

std::vector<int> split_cpu_threads(int threads, int ranks) {
  const int n = std::max(ranks, 1);
  std::vector<int> out(static_cast<size_t>(n));
  for (int r = 0; r < n; ++r) out[r] = std::max(1, threads / n + (r < threads % n ? 1 : 0));
  return out;
}

size_t host_available_memory() {
  size_t available = static_cast<size_t>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::ifstream meminfo("/proc/meminfo");
  for (std::string key; meminfo >> key;) {
    size_t kb = 0;
    meminfo >> kb;
    if (key == "MemAvailable:") {
      available = kb * 1024;
      break;
    }
    meminfo.ignore(1 << 10, '\n');
  }
  // cgroup v2: the limit of this process's group ("0::/path" in /proc/self/cgroup).
  std::ifstream cgroup("/proc/self/cgroup");
  for (std::string line; std::getline(cgroup, line);) {
    if (line.rfind("0::", 0) != 0) continue;
    const std::string dir = "/sys/fs/cgroup" + line.substr(3);
    const auto limit = read_number(dir + "/memory.max"), used = read_number(dir + "/memory.current");
    if (limit && used) available = std::min<size_t>(available, *limit > *used ? *limit - *used : 0);
  }
  return available;
}

DeviceMemory device_memory(const Backend& backend) {
  DeviceMemory d;
  d.device = backend.device(), d.dtype = backend.compute_dtype();
  d.free = backend.free_memory(), d.total = backend.total_memory();
  if (d.device == Device::kCpu) d.available = host_available_memory();
  return d;
}

namespace {

// What the config needs, in the order the engine allocates it: weights, activations, the
// per-sequence buffers, the KV cache.
std::vector<Need> memory_needs(const EngineConfig& c, const ModelConfig& m, const DeviceMemory& dev,
                               const std::string& model_source) {
  const bool cpu = dev.device == Device::kCpu;
  const double dt = static_cast<double>(dtype_size(dev.dtype));
  const int64_t max_len = c.max_model_len > 0 ? c.max_model_len : m.max_position_embeddings;
  const int64_t seqs = padded_batch(c.max_num_seqs);
  const int64_t max_tokens = std::max<int64_t>(c.max_num_batched_tokens, seqs);
  const int64_t page = c.page_size, seq_pages = (max_len + page - 1) / page;
  // Tensor parallelism. The CPU's ranks are all on this host: every rank's share (its slice of the
  // embedding and lm_head among them), the replicated weights and KV heads once per rank, and the
  // logit rows once per rank (each gathers the whole vocabulary) plus each rank's slice of them.
  // A GPU holds one rank: the largest rank's weights, and one rank's activations, rows and cache.
  const int ranks = check_tensor_parallel(m, c.tensor_parallel_size).ok() ? c.tensor_parallel_size : 1;
  const int shares = cpu ? ranks : 1;  // ranks in the memory checked
  const ShardSizes rank = shard_sizes(m, {0, ranks});
  // An FP8 checkpoint's weights stay FP8 on the GPU (one byte each); the CPU holds them
  // dequantized, and --quantization fp8 loads the float weights first (its peak).
  double params = 0, fp8 = 0;
  for (int r = 0; r < ranks; ++r) {
    const auto p = static_cast<double>(num_parameters(m, {r, ranks}));
    const double f = cpu ? 0.0 : static_cast<double>(num_fp8_parameters(m, {r, ranks}));
    if (cpu) params += p;
    else if ((p - f) * dt + f > (params - fp8) * dt + fp8) params = p, fp8 = f;
  }
  const double h = static_cast<double>(m.hidden_size), v = static_cast<double>(m.vocab_size);
  const double qkv = static_cast<double>((rank.num_heads + 2 * rank.num_kv_heads) * m.head_dim);
  const double per_token = shares * dt * (3 * h + qkv + static_cast<double>(rank.num_heads * m.head_dim) +
                                          3 * static_cast<double>(rank.intermediate_size));
  const double logit_rows = static_cast<double>(seqs + RunnerConfig{}.max_prompt_logprob_rows);
  const double kv_dt = c.kv_cache_fp8 ? 1.0 : dt;
  const double kv_token = 2 * kv_dt * static_cast<double>(m.num_layers * rank.num_kv_heads * shares * m.head_dim);
  const int64_t kv_pages = c.kv_cache_tokens > 0 ? (c.kv_cache_tokens + page - 1) / page : seq_pages;

  const std::string len_flag = c.max_model_len > 0 ? "--max-model-len " + std::to_string(c.max_model_len)
                                                   : "--max-model-len (the model's " + std::to_string(max_len) + ")";
  std::vector<Need> needs;
  const std::string weight_dtypes = fp8 > 0 ? ", " + format_count(fp8) + " in fp8, the rest in " + dtype_name(dev.dtype) + ","
                                            : std::string(" in ") + dtype_name(dev.dtype);
  needs.push_back({model_source, std::string(shares < ranks ? "a rank's share of its weights (" : "its weights (") +
                                     format_count(params) + " parameters" + weight_dtypes +
                                     (cpu ? " on the CPU)" : " on the GPU)"),
                   (params - fp8) * dt + fp8});
  const bool by_seqs = seqs > c.max_num_batched_tokens;
  needs.push_back({by_seqs ? "--max-num-seqs " + std::to_string(c.max_num_seqs)
                           : "--max-num-batched-tokens " + std::to_string(c.max_num_batched_tokens),
                   "activations for " + std::to_string(max_tokens) + " tokens per step", static_cast<double>(max_tokens) * per_token});
  const double shard_logits = ranks > 1 ? static_cast<double>(rank.vocab_size) * 4 : 0.0;  // fp32, a rank's slice
  double seq_bytes = shares * logit_rows * (h * dt + v * 4 + shard_logits)     // hidden and fp32 logit rows
                     + static_cast<double>(c.max_num_seqs) * static_cast<double>(max_len) * 4  // penalty history
                     + static_cast<double>(seqs) * static_cast<double>(seq_pages) * 8;         // page tables
  if (!cpu) seq_bytes += static_cast<double>(c.max_num_seqs) * v * 8;             // the sampler's workspace
  if (!cpu && ranks > 1)  // NCCL's all-gather scratch: every rank's slice of the logit rows
    seq_bytes += logit_rows * static_cast<double>(rank.vocab_size * ranks) * 4;
  needs.push_back({"--max-num-seqs " + std::to_string(c.max_num_seqs),
                   "logit rows (" + format_count(logit_rows) + " x " + std::to_string(m.vocab_size) +
                       " vocab)" + (cpu ? "" : ", the sampler's workspace") + " and the penalty history (" +
                       std::to_string(c.max_num_seqs) + " x " +
                       std::to_string(max_len) + " tokens)",
                   seq_bytes});
  needs.push_back({c.kv_cache_tokens > 0 ? "kv_cache_tokens " + std::to_string(c.kv_cache_tokens) : len_flag,
                   c.kv_cache_tokens > 0 ? "its KV cache" : "the KV cache of one full-length sequence",
                   static_cast<double>((kv_pages + 1) * page) * kv_token});
  return needs;
}

}  // namespace

Status check_memory(const EngineConfig& c, const ModelConfig& m, const DeviceMemory& dev, const std::string& model_source) {
  const bool cpu = dev.device == Device::kCpu;
  const std::vector<Need> needs = memory_needs(c, m, dev, model_source);
  double budget = 0;
  std::string first, of_what;  // "21.0 GiB of memory is available"; "of memory available"
  if (cpu) {
    budget = static_cast<double>(dev.available);
    first = format_bytes(budget) + " of memory is available";
    of_what = " of memory available";
  } else {
    const double total = static_cast<double>(dev.total), free = static_cast<double>(dev.free);
    const double allowed = c.gpu_memory_utilization * total;
    char util[16];
    std::snprintf(util, sizeof(util), "%.2f", c.gpu_memory_utilization);
    if (free < allowed)
      return out_of_memory("--gpu-memory-utilization " + std::string(util) + " asks for " + format_bytes(allowed) +
                           " of the device's " + format_bytes(total) + " but " + format_bytes(free) +
                           " is free (other processes hold the rest): lower --gpu-memory-utilization");
    budget = allowed - static_cast<double>(kGraphMemoryMargin + kGpuWorkspaces);
    first = format_bytes(budget) + " is available (--gpu-memory-utilization " + util + " of the device's " +
            format_bytes(total) + ", less " + format_bytes(kGraphMemoryMargin + kGpuWorkspaces) +
            " for graphs and workspaces)";
    of_what = std::string(" that --gpu-memory-utilization ") + util + " allows";
  }
  double used = 0;
  std::string after;
  for (const Need& n : needs) {
    if (used + n.bytes > budget) {
      const std::string have = used == 0 ? first
                                         : format_bytes(std::max(0.0, budget - used)) + " is left of the " +
                                               format_bytes(budget) + of_what + ", after " + after;
      return out_of_memory(n.flag + ": " + n.what + " would take " + format_bytes(n.bytes) + "; " + have);
    }
    used += n.bytes;
    after += (after.empty() ? "" : " and ") + format_bytes(n.bytes) + " for " + n.what.substr(0, n.what.find(" ("));
  }
  // The CPU KV cache may take a quarter of the free memory (EngineCore::size_kv_cache).
  const Need& kv = needs.back();
  const double kv_budget = kCpuKvShare * std::max(0.0, static_cast<double>(dev.free) - needs[0].bytes);
  if (cpu && c.kv_cache_tokens == 0 && kv.bytes > kv_budget)
    return out_of_memory(kv.flag + ": " + kv.what + " would take " + format_bytes(kv.bytes) +
                         "; the CPU KV cache may use a quarter of the free memory after the weights, " +
                         format_bytes(kv_budget) + ": lower --max-model-len");
  return Status::ok_status();
}

}  // namespace tk
