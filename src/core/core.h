// tokamak core: the small vocabulary every module speaks — errors as values, dtypes, tensors,
// memory-mapped files, logging and environment flags. Standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tk {

// ---------------------------------------------------------------------------------------------
// Errors. Anything a user or client controls comes back as a Status; broken invariants are fatal.

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad flag, bad request, bad shape handed to a launcher
  kNotFound,         // missing file, tensor, token
  kIoError,          // read/open/mmap failure
  kCorrupt,          // a file whose contents contradict themselves (safetensors, json)
  kUnsupported,      // a valid input we do not handle (architecture, dtype, head_dim)
  kOutOfMemory,      // KV pages or device memory exhausted
  kInternal,         // a failure we cannot attribute to the input (CUDA error, ...)
};

const char* status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok_status() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "kind: message", for one-line error reports.
  std::string to_string() const;
  // Prefixes context (a file name, a tensor name) to the message; no-op when ok.
  Status with_context(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status invalid_argument(std::string message);
Status not_found(std::string message);
Status io_error(std::string message);
Status corrupt(std::string message);
Status unsupported(std::string message);
Status out_of_memory(std::string message);
Status internal_error(std::string message);

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) { check_not_ok(); }  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  void check_not_ok() const;
  std::variant<T, Status> v_;
};

[[noreturn]] void fatal(const char* file, int line, const std::string& message);

template <typename T>
void Result<T>::check_not_ok() const {
  if (std::get<1>(v_).ok()) fatal(__FILE__, __LINE__, "Result constructed from an ok Status");
}

#define TK_CONCAT_INNER(a, b) a##b
#define TK_CONCAT(a, b) TK_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function when `expr` is not ok.
#define TK_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    ::tk::Status tk_status_ = (expr);             \
    if (!tk_status_.ok()) return tk_status_;      \
  } while (0)

// `TK_ASSIGN_OR_RETURN(auto x, make_x());` binds the value or returns the error.
#define TK_ASSIGN_OR_RETURN(lhs, expr) TK_ASSIGN_OR_RETURN_IMPL(TK_CONCAT(tk_result_, __LINE__), lhs, expr)
#define TK_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.ok()) return tmp.status();            \
  lhs = std::move(tmp).value()

// A broken invariant: fatal with file:line. Never for user-controlled input.
#define TK_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) ::tk::fatal(__FILE__, __LINE__, "check failed: " #cond);      \
  } while (0)
#define TK_CHECK_MSG(cond, msg)                                                \
  do {                                                                         \
    if (!(cond)) ::tk::fatal(__FILE__, __LINE__, std::string("check failed: " #cond ": ") + (msg)); \
  } while (0)

// ---------------------------------------------------------------------------------------------
// Data types.

// kF8E4M3: OCP FP8 e4m3fn (no infinities, max 448), as FP8 checkpoints store weights.
enum class DType : uint8_t { kF32, kF16, kBF16, kI32, kI64, kU8, kF64, kI8, kI16, kBool, kF8E4M3 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// Names as safetensors writes them ("F32", "BF16", ...).
std::optional<DType> dtype_from_safetensors(std::string_view name);
// Names as config.json writes them ("float32", "bfloat16", "float16").
std::optional<DType> dtype_from_torch_name(std::string_view name);

float bf16_to_f32(uint16_t bits);
uint16_t f32_to_bf16(float value);  // round to nearest even, NaN kept NaN
float f16_to_f32(uint16_t bits);
uint16_t f32_to_f16(float value);   // round to nearest even
// FP8 e4m3fn. The conversion rounds to nearest even and saturates to +-448 (the largest finite
// value; e4m3fn has no infinity), as cuda_fp8.h's __NV_SATFINITE does; NaN stays NaN.
constexpr float kFp8E4M3Max = 448.f;
float fp8_e4m3_to_f32(uint8_t bits);
uint8_t f32_to_fp8_e4m3(float value);
// Converts `count` elements of `src_dtype` (f32/f16/bf16/fp8 e4m3) to fp32.
void convert_to_f32(const void* src, DType src_dtype, float* dst, size_t count);

// ---------------------------------------------------------------------------------------------
// Tensors. A Tensor is a view (pointer, dtype, shape, strides, device) that may share ownership
// of its storage; copying a Tensor never copies data.

enum class Device : uint8_t { kCpu, kCuda };
const char* device_name(Device device);

constexpr int kMaxDims = 4;

struct Shape {
  int rank = 0;
  int64_t dims[kMaxDims] = {0, 0, 0, 0};
  Shape() = default;
  Shape(std::initializer_list<int64_t> list);
  int64_t operator[](int i) const { return dims[i]; }
  int64_t& operator[](int i) { return dims[i]; }
  int64_t numel() const;
  bool operator==(const Shape& other) const;
  std::string to_string() const;  // "[2, 3]"
};

class Tensor {
 public:
  Tensor() = default;
  // A view of memory someone else owns (`owner` may keep it alive).
  Tensor(void* data, DType dtype, Shape shape, Device device = Device::kCpu,
         std::shared_ptr<void> owner = nullptr);

  // Fresh contiguous host memory, zero-filled.
  static Tensor empty_cpu(DType dtype, Shape shape);

  bool defined() const { return shape_.rank > 0 || data_ != nullptr; }
  void* data() const { return data_; }
  template <typename T>
  T* data_as() const { return static_cast<T*>(data_); }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank; }
  int64_t dim(int i) const { return shape_.dims[i < 0 ? i + shape_.rank : i]; }
  int64_t stride(int i) const { return strides_[i < 0 ? i + shape_.rank : i]; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool is_contiguous() const;

  // Views. Each checks its arguments (fatal on misuse: callers are engine code, not users).
  Tensor reshape(Shape shape) const;               // contiguous only
  Tensor slice_rows(int64_t begin, int64_t end) const;  // along dim 0
  Tensor select_row(int64_t index) const;          // drops dim 0

 private:
  void* data_ = nullptr;
  DType dtype_ = DType::kF32;
  Shape shape_;
  int64_t strides_[kMaxDims] = {0, 0, 0, 0};  // in elements
  Device device_ = Device::kCpu;
  std::shared_ptr<void> owner_;
};

// ---------------------------------------------------------------------------------------------
// The heads of a packed qkv activation (q heads, then k heads, then v heads in each token's row),
// as the attention-input ops of the CPU twin and the GPU kernels read it.

struct HeadLayout {
  int64_t num_tokens = 0;
  int64_t qkv_stride = 0;  // elements between consecutive tokens (>= (Hq + 2 Hkv) * head_dim)
  int num_q_heads = 0;
  int num_kv_heads = 0;    // divides num_q_heads
  int head_dim = 0;
};

// ---------------------------------------------------------------------------------------------
// Sampling knobs: the per-sequence settings every layer hands down (engine request -> backend ->
// CPU twin and GPU kernel), defined once. Semantics in ref::sample_row.

struct SamplingKnobs {
  float temperature = 1.f;         // 0 = greedy
  int top_k = 0;                   // 0 = off
  float top_p = 1.f;               // 1 = off
  float min_p = 0.f;               // 0 = off
  float repetition_penalty = 1.f;  // 1 = off
  float presence_penalty = 0.f;
  float frequency_penalty = 0.f;
};

// A token and its log-probability (the chosen one, or one of the most likely).
struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.f;
  bool operator==(const TokenLogprob& o) const { return token == o.token && logprob == o.logprob; }
};

// One draw of one sequence: the knobs plus the counter of the counter-based RNG.
struct SamplingDraw : SamplingKnobs {
  uint64_t seed = 0;  // the sequence's seed
  uint64_t step = 0;  // index of the token being sampled in the sequence's output
};

// A counter-based RNG (Philox-4x32-10), one definition for the CPU twin and the GPU kernels: the
// same (seed, counter) gives the same numbers on both, so a seeded request samples the same
// tokens on either backend. TK_HOST_DEVICE marks it callable from device code under nvcc.
#if defined(__CUDACC__)
#define TK_HOST_DEVICE __host__ __device__
#else
#define TK_HOST_DEVICE
#endif

TK_HOST_DEVICE inline void philox4x32(uint64_t seed, uint64_t counter_hi, uint64_t counter_lo, uint32_t out[4]) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u, kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int round = 0; round < 10; ++round) {
    uint64_t p0 = static_cast<uint64_t>(kM0) * c0;
    uint64_t p1 = static_cast<uint64_t>(kM1) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c0 = n0, c1 = static_cast<uint32_t>(p1), c2 = n2, c3 = static_cast<uint32_t>(p0);
    k0 += kW0, k1 += kW1;
  }
  out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;
}

// A uniform in (0, 1] from the top 24 of 32 random bits: never 0, so -log(u) is finite.
TK_HOST_DEVICE inline float uniform_from_bits(uint32_t bits) {
  return static_cast<float>((bits >> 8) + 1u) * (1.0f / 16777216.0f);
}

// The uniform for (seed, step, index): word index % 4 of Philox block index / 4, so a sampler
// that walks four consecutive indices draws one block for them (the GPU's 16-byte loads do).
TK_HOST_DEVICE inline float philox_uniform(uint64_t seed, uint64_t step, uint64_t index) {
  uint32_t r[4];
  philox4x32(seed, step, index >> 2, r);
  return uniform_from_bits(r[index & 3]);
}

// ---------------------------------------------------------------------------------------------
// Files.

// A read-only memory map of a whole file. Empty files map to size 0 with a null pointer.
class MappedFile {
 public:
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

Result<std::string> read_text_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Appends a code point (<= 0x10FFFF) as UTF-8: the one encoder the tokenizer, jinja and the
// grammar engine share.
void append_utf8(std::string& out, char32_t cp);

// ---------------------------------------------------------------------------------------------
// Logging and environment. Environment variables are read only here (TOKAMAK_LOG_LEVEL, ...).

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kSilent = 4 };
// "debug", "info", "warning" (or "warn"), "error", "silent" (or "none"); nullopt for anything else.
std::optional<LogLevel> parse_log_level(std::string_view name);
void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, const std::string& message);
#define TK_LOG_INFO(msg) ::tk::log_message(::tk::LogLevel::kInfo, (msg))
#define TK_LOG_WARN(msg) ::tk::log_message(::tk::LogLevel::kWarning, (msg))
#define TK_LOG_DEBUG(msg) ::tk::log_message(::tk::LogLevel::kDebug, (msg))

// Environment flags tokamak reads, in one place.
struct EnvFlags {
  std::optional<std::string> log_level;  // TOKAMAK_LOG_LEVEL=debug|info|warning|error|silent
  std::optional<int> num_threads;        // TOKAMAK_NUM_THREADS: CPU backend threads (when a number >= 1)
  std::optional<std::string> num_threads_text;  // TOKAMAK_NUM_THREADS as written, for the engine to check
  bool omp_num_threads = false;          // OMP_NUM_THREADS is set: OpenMP's own thread count is kept
  bool disable_cuda_graphs = false;      // TOKAMAK_DISABLE_CUDA_GRAPHS=1
  std::optional<bool> fp8_gemv;          // TOKAMAK_FP8_GEMV=1|0: FP8 products of few rows by kernels::fp8_gemv or cuBLASLt (gemm.h)
  std::optional<bool> gemv;              // TOKAMAK_GEMV=1|0: bf16/fp16 products of few rows by kernels::gemv or cuBLASLt (gemm.h)
  std::optional<int64_t> gemv_max_mb;    // TOKAMAK_GEMV_MAX_MB: the largest 16-bit weight kernels::gemv takes in kAuto (gemm.h)
  bool disable_pdl = false;              // TOKAMAK_DISABLE_PDL=1: kernels launched without programmatic dependent launch
  std::optional<bool> decode_cluster_merge;  // TOKAMAK_DECODE_CLUSTER_MERGE=0|1: split-KV decode merges 2-8 splits in a cluster (kernels.h)
  std::optional<std::string> api_key;    // TOKAMAK_API_KEY: the server's key when --api-key is not given
  std::optional<std::string> profile;    // TOKAMAK_PROFILE=decode|prefill:MIN_TOKENS:COUNT (cuda_step.cpp)
};
const EnvFlags& env_flags();

// Monotonic wall clock in seconds.
double now_seconds();

}  // namespace tk
