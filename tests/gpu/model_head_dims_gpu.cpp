// Whole models at the head sizes no golden checkpoint has (32, 80, 96) on the CUDA backend
// against the CPU backend: a small random-weight checkpoint is written per case (config.json +
// model.safetensors, bf16), loaded by both backends through the real loader, then
//  - teacher-forced logits (one prefill of every prompt, then 8 decode steps) within the bf16 bar
//    of model_gpu.cpp (2e-2 relative L2 per row), and
//  - the engine's greedy tokens (graphs, chunked prefills beside decodes) equal to the CPU's; a
//    divergence passes only as an argmax near-tie of the CPU's own logits (the rule of
//    model_gpu.cpp), and is printed.
// Weights at the goldens' gain (std 0.8 / sqrt(fan_in)), where the goldens' injected bugs moved
// logits 9-49% and bf16's roundings under 1%; the kernel tests check each kernel at these sizes.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include "../unit/golden_util.h"
#include "backend_cpu/cpu_backend.h"
#include "backend_cuda/cuda_backend.h"

namespace tk::test {
namespace {

constexpr double kTolerance = 2e-2;  // model_gpu.cpp's bf16 bar
constexpr int kSteps = 8;

struct HeadCase {
  std::string name;
  std::string arch;       // "llama" or "qwen3" (q/k norm)
  int head_dim, heads, kv_heads;
  std::string tokenizer;  // golden directory whose tokenizer (and vocab size) the model borrows
};

nlohmann::json config_json(const HeadCase& c, int64_t vocab) {
  const bool qwen3 = c.arch == "qwen3";
  return {{"architectures", {qwen3 ? "Qwen3ForCausalLM" : "LlamaForCausalLM"}},
          {"model_type", c.arch},
          {"hidden_size", 128},
          {"intermediate_size", 200},
          {"num_attention_heads", c.heads},
          {"num_key_value_heads", c.kv_heads},
          {"head_dim", c.head_dim},
          {"num_hidden_layers", 2},
          {"vocab_size", vocab},
          {"max_position_embeddings", 512},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", qwen3 ? 1e6 : 10000.0},
          {"attention_bias", false},
          {"tie_word_embeddings", false},
          {"torch_dtype", "bfloat16"},
          {"bos_token_id", 0},
          {"eos_token_id", 0}};
}

struct HostTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint16_t> bf16;
};

// Normal(mean, std) values rounded to bf16, from a seeded generator.
HostTensor random_tensor(const std::string& name, std::vector<int64_t> shape, float mean, float std,
                         std::mt19937& rng) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::normal_distribution<float> dist(mean, std);
  HostTensor t{name, std::move(shape), std::vector<uint16_t>(static_cast<size_t>(n))};
  for (auto& x : t.bf16) x = f32_to_bf16(dist(rng));
  return t;
}

// The Hugging Face names and shapes of a Llama/Qwen3 checkpoint.
std::vector<HostTensor> random_checkpoint(const HeadCase& c, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  const int64_t h = 128, inter = 200, q = int64_t{c.heads} * c.head_dim, kv = int64_t{c.kv_heads} * c.head_dim;
  std::vector<HostTensor> t;
  // Projections at std 0.8 / sqrt(fan_in) (the goldens' gain, tests/data/golden/README.md): at a
  // gain of 2 (the first version of this test) attention scores had std ~5 and bf16's roundings
  // moved llama_d80/d32 logits 3.6-4.3% (H200, 2026-12-01), past the bar, while the q/k-normed
  // qwen3_d96 stayed at 1%; the kernel tests at those sizes passed.
  const auto gain = [](int64_t fan_in) { return 0.8f / std::sqrt(static_cast<float>(fan_in)); };
  t.push_back(random_tensor("model.embed_tokens.weight", {vocab, h}, 0.f, 1.f, rng));
  for (int i = 0; i < 2; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t.push_back(random_tensor(p + "input_layernorm.weight", {h}, 1.f, 0.1f, rng));
    t.push_back(random_tensor(p + "self_attn.q_proj.weight", {q, h}, 0.f, gain(h), rng));
    t.push_back(random_tensor(p + "self_attn.k_proj.weight", {kv, h}, 0.f, gain(h), rng));
    t.push_back(random_tensor(p + "self_attn.v_proj.weight", {kv, h}, 0.f, gain(h), rng));
    if (c.arch == "qwen3") {
      t.push_back(random_tensor(p + "self_attn.q_norm.weight", {c.head_dim}, 1.f, 0.2f, rng));
      t.push_back(random_tensor(p + "self_attn.k_norm.weight", {c.head_dim}, 1.f, 0.2f, rng));
    }
    t.push_back(random_tensor(p + "self_attn.o_proj.weight", {h, q}, 0.f, gain(q), rng));
    t.push_back(random_tensor(p + "post_attention_layernorm.weight", {h}, 1.f, 0.1f, rng));
    t.push_back(random_tensor(p + "mlp.gate_proj.weight", {inter, h}, 0.f, gain(h), rng));
    t.push_back(random_tensor(p + "mlp.up_proj.weight", {inter, h}, 0.f, gain(h), rng));
    t.push_back(random_tensor(p + "mlp.down_proj.weight", {h, inter}, 0.f, gain(inter), rng));
  }
  t.push_back(random_tensor("model.norm.weight", {h}, 1.f, 0.1f, rng));
  t.push_back(random_tensor("lm_head.weight", {vocab, h}, 0.f, 0.3f, rng));
  return t;
}

// safetensors: an 8-byte little-endian header length, the JSON header (padded to 8 bytes), data.
void write_safetensors(const std::string& path, const std::vector<HostTensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  size_t offset = 0;
  for (const HostTensor& t : tensors) {
    const size_t bytes = t.bf16.size() * 2;
    header[t.name] = {{"dtype", "BF16"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  std::ofstream out(path, std::ios::binary);
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const HostTensor& t : tensors)
    out.write(reinterpret_cast<const char*>(t.bf16.data()), static_cast<std::streamsize>(t.bf16.size() * 2));
  ASSERT_TRUE(out.good()) << path;
}

// A checkpoint directory for the case under the test's temporary directory.
std::string write_checkpoint(const HeadCase& c) {
  const int64_t vocab = read_json(golden_dir(c.tokenizer) + "/config.json")["vocab_size"].get<int64_t>();
  const std::string dir = ::testing::TempDir() + "tokamak_head_dim_" + c.name;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/config.json") << config_json(c, vocab).dump(2);
  write_safetensors(dir + "/model.safetensors", random_checkpoint(c, vocab, 1000 + c.head_dim));
  return dir;
}

// A greedy divergence is an argmax near-tie when the GPU's token is the CPU's runner-up and the
// gap is under a tenth of the logits' standard deviation.
bool near_tie(const float* logits, int64_t vocab, int32_t want, int32_t got) {
  double mean = 0, var = 0;
  for (int64_t i = 0; i < vocab; ++i) mean += logits[i];
  mean /= static_cast<double>(vocab);
  for (int64_t i = 0; i < vocab; ++i) var += (logits[i] - mean) * (logits[i] - mean);
  const double std = std::sqrt(var / static_cast<double>(vocab));
  int higher = 0;
  for (int64_t i = 0; i < vocab; ++i) higher += logits[i] > logits[got];
  return higher == 1 && logits[want] - logits[got] < 0.1 * std;
}

// Prompts of odd lengths (one crosses a 64-token prefill tile and several pages).
std::vector<std::vector<int32_t>> prompts(int64_t vocab) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> id(1, static_cast<int32_t>(vocab - 1));
  std::vector<std::vector<int32_t>> out;
  for (int len : {1, 7, 19, 99, 130}) {
    std::vector<int32_t> p(len);
    for (auto& x : p) x = id(rng);
    out.push_back(p);
  }
  return out;
}

std::vector<std::vector<int32_t>> greedy(const std::string& dir, const HeadCase& c, DeviceChoice device,
                                         const std::vector<std::vector<int32_t>>& ps) {
  EngineConfig config;
  config.model = dir;
  config.tokenizer = golden_dir(c.tokenizer);
  config.device = device;
  config.gpu_memory_utilization = 0.2;
  config.max_num_seqs = 8;
  config.max_num_batched_tokens = 16;  // chunked prefills beside decodes: both GPU kernels in a step
  auto engine = Engine::create(config);
  EXPECT_TRUE(engine.ok()) << engine.status().to_string();
  if (!engine.ok()) return {};
  SamplingParams p;
  p.temperature = 0.f, p.max_tokens = kSteps, p.ignore_eos = true;
  return generate_all(**engine, ps, p);
}

// Logits of every prompt's last row (step 0) and of kSteps teacher-forced decode steps over
// `tokens` (prompt + continuation): [steps][prompt][vocab].
std::vector<std::vector<float>> teacher_forced(Backend& backend, const std::string& dir,
                                               const std::vector<std::vector<int32_t>>& ps,
                                               const std::vector<std::vector<int32_t>>& continuation) {
  TeacherForcing tf(backend, dir, 16, 64);
  ScheduledStep prefill;
  std::vector<Sequence*> seqs;
  std::vector<int32_t> rows;
  for (size_t i = 0; i < ps.size(); ++i) {
    std::vector<int32_t> all = ps[i];
    all.insert(all.end(), continuation[i].begin(), continuation[i].end());
    seqs.push_back(tf.add(all));
    prefill.seqs.push_back({seqs.back(), 0, static_cast<int>(ps[i].size()), true});
    rows.push_back(prefill.num_tokens() - 1);
  }
  std::vector<std::vector<float>> out{tf.run(prefill, rows)};
  for (int k = 1; k < kSteps; ++k) {
    ScheduledStep step;
    rows.clear();
    for (size_t i = 0; i < ps.size(); ++i) {
      step.seqs.push_back({seqs[i], static_cast<int>(ps[i].size()) + k - 1, 1, true});
      rows.push_back(static_cast<int32_t>(i));
    }
    out.push_back(tf.run(step, rows));
  }
  return out;
}

class HeadDimModelTest : public ::testing::TestWithParam<HeadCase> {};

TEST_P(HeadDimModelTest, GpuMatchesCpuBackend) {
  const HeadCase& c = GetParam();
  const std::string dir = write_checkpoint(c);
  const int64_t vocab = read_json(dir + "/config.json")["vocab_size"].get<int64_t>();
  const auto ps = prompts(vocab);

  const auto cpu_tokens = greedy(dir, c, DeviceChoice::kCpu, ps);
  const auto gpu_tokens = greedy(dir, c, DeviceChoice::kCuda, ps);
  ASSERT_EQ(cpu_tokens.size(), ps.size());
  ASSERT_EQ(gpu_tokens.size(), ps.size());

  std::unique_ptr<Backend> cpu_backend = make_cpu_backend(2);
  auto gpu_backend = make_cuda_backend(CudaBackendOptions{});
  ASSERT_TRUE(gpu_backend.ok()) << gpu_backend.status().to_string();
  const auto want = teacher_forced(*cpu_backend, dir, ps, cpu_tokens);
  const auto got = teacher_forced(**gpu_backend, dir, ps, cpu_tokens);
  double worst = 0;
  for (int k = 0; k < kSteps; ++k)
    for (size_t i = 0; i < ps.size(); ++i) {
      const double e = rel_l2(&got[k][i * vocab], &want[k][i * vocab], vocab);
      worst = std::max(worst, e);
      EXPECT_LT(e, kTolerance) << "prompt " << i << " (length " << ps[i].size() << ") step " << k;
    }

  int equal = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    ASSERT_EQ(cpu_tokens[i].size(), static_cast<size_t>(kSteps));
    ASSERT_EQ(gpu_tokens[i].size(), static_cast<size_t>(kSteps));
    size_t k = 0;
    while (k < kSteps && gpu_tokens[i][k] == cpu_tokens[i][k]) ++k;
    if (k == kSteps) {
      ++equal;
      continue;
    }
    EXPECT_TRUE(near_tie(&want[k][i * vocab], vocab, cpu_tokens[i][k], gpu_tokens[i][k]))
        << "prompt " << i << " diverges at step " << k << ": " << gpu_tokens[i][k] << " instead of "
        << cpu_tokens[i][k];
    std::printf("%s prompt %zu: argmax near-tie at step %zu\n", c.name.c_str(), i, k);
  }
  std::printf("%s: worst logit row rel L2 %.4f (bar %.0e); greedy tokens equal for %d of %zu prompts\n",
              c.name.c_str(), worst, kTolerance, equal, ps.size());
}

INSTANTIATE_TEST_SUITE_P(HeadSizes, HeadDimModelTest,
                         ::testing::Values(HeadCase{"llama_d80_gqa3", "llama", 80, 6, 2, "llama_gqa"},
                                           HeadCase{"qwen3_d96_gqa4", "qwen3", 96, 4, 1, "qwen3_qknorm"},
                                           HeadCase{"llama_d32_mha", "llama", 32, 8, 8, "llama_gqa"}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace tk::test
